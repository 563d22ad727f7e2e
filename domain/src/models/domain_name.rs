//! `DomainName`: a DNS name as a certificate identifier, normalized once at the edge.

use std::fmt;

/// Why a string is not an acceptable domain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainNameError {
    #[error("domain name is empty")]
    /// The text is empty.
    Empty,
    #[error("domain name is longer than 253 characters")]
    /// Over 253 characters.
    TooLong,
    #[error("label `{0}` is longer than 63 characters")]
    /// A label is over 63 characters; names it.
    LabelTooLong(String),
    #[error("domain name has an empty label")]
    /// A label is empty (two dots in a row).
    EmptyLabel,
    #[error("label `{0}` may only hold letters, digits and inner hyphens")]
    /// A label holds something other than letters, digits and inner hyphens; names it.
    InvalidLabel(String),
    #[error("a wildcard is only allowed as the whole leftmost label (`*.example.com`)")]
    /// A `*` anywhere but as the whole leftmost label.
    MisplacedWildcard,
    #[error("domain name needs at least two labels")]
    /// Only one label (`localhost`).
    SingleLabel,
    #[error("the top-level label may not be numeric (IP addresses are not domain names)")]
    /// The top-level label is numeric (an IP address).
    NumericTld,
    #[error("domain name is not valid IDNA: {0}")]
    /// The internationalized name cannot be converted to punycode; says why.
    Idna(String),
}

/// A fully qualified domain name, lower-case ASCII (internationalized names as punycode),
/// without trailing dot, optionally a wildcard (`*.` as the whole leftmost label).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    /// Parses and normalizes a domain name.
    ///
    /// Surrounding whitespace and a single trailing dot are removed, letters are
    /// lower-cased, Unicode labels become punycode (IDNA), and the LDH rule, the label
    /// (63) and name (253) length limits and the wildcard position are checked.
    ///
    /// # Errors
    ///
    /// Returns the first rule the input breaks.
    pub fn parse(input: &str) -> Result<Self, DomainNameError> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err(DomainNameError::Empty);
        }
        let (wildcard, rest) = match trimmed.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        if rest.split('.').any(|label| label.contains('*')) {
            return Err(DomainNameError::MisplacedWildcard);
        }
        if rest.split('.').any(str::is_empty) {
            return Err(DomainNameError::EmptyLabel);
        }
        let ascii = if rest.is_ascii() {
            rest.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(rest).map_err(|e| DomainNameError::Idna(e.to_string()))?
        };
        let labels: Vec<&str> = ascii.split('.').collect();
        for label in &labels {
            check_label(label)?;
        }
        if labels.len() < 2 {
            return Err(DomainNameError::SingleLabel);
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(DomainNameError::NumericTld);
        }
        let name = if wildcard {
            format!("*.{ascii}")
        } else {
            ascii
        };
        if name.len() > 253 {
            return Err(DomainNameError::TooLong);
        }
        Ok(Self(name))
    }

    /// The normalized name, for example `*.example.com` or `xn--bcher-kva.example`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `*.example.com`.
    #[must_use]
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// The name without its wildcard label: `example.com` for `*.example.com`.
    #[must_use]
    pub fn base(&self) -> &str {
        self.0.strip_prefix("*.").unwrap_or(&self.0)
    }

    /// The DNS-01 record name for this identifier: `_acme-challenge.<base>`.
    /// A wildcard and its apex share one record name.
    #[must_use]
    pub fn acme_challenge_name(&self) -> String {
        format!("_acme-challenge.{}", self.base())
    }
}

fn check_label(label: &str) -> Result<(), DomainNameError> {
    if label.is_empty() {
        return Err(DomainNameError::EmptyLabel);
    }
    if label.len() > 63 {
        return Err(DomainNameError::LabelTooLong(label.to_owned()));
    }
    let ldh = label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ldh || label.starts_with('-') || label.ends_with('-') {
        return Err(DomainNameError::InvalidLabel(label.to_owned()));
    }
    Ok(())
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({})", self.0)
    }
}

/// The ordered identifiers of one certificate: at least one, at most 100, no duplicates.
/// The first name becomes the common name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identifiers(Vec<DomainName>);

/// Why a list of names cannot be the identifiers of one certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifiersError {
    #[error("at least one domain name is required")]
    /// No name at all.
    Empty,
    #[error("at most {max} domain names are allowed in one order", max = Identifiers::MAX)]
    /// More than [`Identifiers::MAX`] names.
    TooMany,
    #[error("domain `{0}` is listed twice")]
    /// A name appears twice; names it.
    Duplicate(String),
    #[error("domain #{index}: {error}")]
    /// A name is invalid.
    Invalid {
        /// Its position in the list, from 0.
        index: usize,
        /// Why it is invalid.
        error: DomainNameError,
    },
}

impl Identifiers {
    /// The most names one order may hold (Let's Encrypt's limit).
    pub const MAX: usize = 100;

    /// Builds the list from parsed names, keeping their order.
    ///
    /// # Errors
    ///
    /// Empty lists, more than [`Self::MAX`] names and duplicates are rejected.
    pub fn new(names: Vec<DomainName>) -> Result<Self, IdentifiersError> {
        if names.is_empty() {
            return Err(IdentifiersError::Empty);
        }
        if names.len() > Self::MAX {
            return Err(IdentifiersError::TooMany);
        }
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(IdentifiersError::Duplicate(name.to_string()));
            }
        }
        Ok(Self(names))
    }

    /// Parses each string and builds the list.
    ///
    /// # Errors
    ///
    /// As [`Self::new`], and the first name that does not parse, with its position.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, IdentifiersError> {
        let parsed = names
            .iter()
            .enumerate()
            .map(|(index, s)| {
                DomainName::parse(s.as_ref())
                    .map_err(|error| IdentifiersError::Invalid { index, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(parsed)
    }

    /// The names, in the order given.
    #[must_use]
    pub fn as_slice(&self) -> &[DomainName] {
        &self.0
    }

    /// The first name, used as common name.
    #[must_use]
    pub fn common_name(&self) -> &DomainName {
        &self.0[0]
    }

    /// True when any name is a wildcard.
    #[must_use]
    pub fn has_wildcard(&self) -> bool {
        self.0.iter().any(DomainName::is_wildcard)
    }

    /// True when both lists hold the same names, in any order.
    #[must_use]
    pub fn same_set(&self, other: &[DomainName]) -> bool {
        let mut a: Vec<&DomainName> = self.0.iter().collect();
        let mut b: Vec<&DomainName> = other.iter().collect();
        a.sort();
        b.sort();
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        DomainName::parse(s)
            .unwrap_or_else(|e| panic!("`{s}` should parse: {e}"))
            .to_string()
    }

    #[test]
    fn lowercases_and_trims() {
        assert_eq!(ok("  WWW.Example.COM "), "www.example.com");
    }

    #[test]
    fn single_trailing_dot_is_the_same_name() {
        assert_eq!(ok("example.com."), "example.com");
        assert_eq!(
            DomainName::parse("example.com.."),
            Err(DomainNameError::EmptyLabel)
        );
    }

    #[test]
    fn unicode_becomes_punycode() {
        assert_eq!(ok("Bücher.example"), "xn--bcher-kva.example");
    }

    #[test]
    fn wildcard_only_as_whole_leftmost_label() {
        let w = DomainName::parse("*.Example.com").expect("wildcard parses");
        assert!(w.is_wildcard());
        assert_eq!(w.base(), "example.com");
        assert_eq!(w.acme_challenge_name(), "_acme-challenge.example.com");
        for bad in [
            "a*.example.com",
            "*.*.example.com",
            "foo.*.example.com",
            "*example.com",
        ] {
            assert!(DomainName::parse(bad).is_err(), "`{bad}` must be rejected");
        }
        assert_eq!(
            DomainName::parse("*"),
            Err(DomainNameError::MisplacedWildcard)
        );
    }

    #[test]
    fn label_and_name_length_limits() {
        let label63 = "a".repeat(63);
        assert!(DomainName::parse(&format!("{label63}.com")).is_ok());
        assert!(matches!(
            DomainName::parse(&format!("{}.com", "a".repeat(64))),
            Err(DomainNameError::LabelTooLong(_))
        ));
        let long = format!("{label63}.{label63}.{label63}.{}.com", "a".repeat(60));
        assert_eq!(DomainName::parse(&long), Err(DomainNameError::TooLong));
    }

    #[test]
    fn ldh_rule() {
        assert!(DomainName::parse("my-host.example.com").is_ok());
        for bad in [
            "-host.example.com",
            "host-.example.com",
            "ho_st.example.com",
            "ho st.example.com",
        ] {
            assert!(
                matches!(
                    DomainName::parse(bad),
                    Err(DomainNameError::InvalidLabel(_)) | Err(DomainNameError::Idna(_))
                ),
                "`{bad}` must break the LDH rule"
            );
        }
    }

    #[test]
    fn rejects_empty_single_label_and_ip() {
        assert_eq!(DomainName::parse(" "), Err(DomainNameError::Empty));
        assert_eq!(
            DomainName::parse("localhost"),
            Err(DomainNameError::SingleLabel)
        );
        assert_eq!(
            DomainName::parse("127.0.0.1"),
            Err(DomainNameError::NumericTld)
        );
        assert_eq!(DomainName::parse("a..b"), Err(DomainNameError::EmptyLabel));
    }

    #[test]
    fn identifiers_keep_order_and_reject_duplicates() {
        let ids = Identifiers::parse(&["b.example.com", "a.example.com"]).expect("valid list");
        assert_eq!(ids.common_name().as_str(), "b.example.com");
        assert_eq!(
            Identifiers::parse(&["a.example.com", "A.example.com."]),
            Err(IdentifiersError::Duplicate("a.example.com".into()))
        );
        assert_eq!(
            Identifiers::parse::<&str>(&[]),
            Err(IdentifiersError::Empty)
        );
        let many: Vec<String> = (0..101).map(|i| format!("h{i}.example.com")).collect();
        assert_eq!(Identifiers::parse(&many), Err(IdentifiersError::TooMany));
        assert!(matches!(
            Identifiers::parse(&["ok.example.com", "bad_name.example.com"]),
            Err(IdentifiersError::Invalid { index: 1, .. })
        ));
    }

    #[test]
    fn identifiers_compare_as_sets() {
        let ids = Identifiers::parse(&["a.example.com", "b.example.com"]).expect("valid list");
        let other = Identifiers::parse(&["b.example.com", "a.example.com"]).expect("valid list");
        assert!(ids.same_set(other.as_slice()));
        let third = Identifiers::parse(&["a.example.com"]).expect("valid list");
        assert!(!ids.same_set(third.as_slice()));
    }
}
