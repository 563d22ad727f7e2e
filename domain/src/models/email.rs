//! `Email`: a contact address for ACME accounts and certificate subjects.

use super::DomainName;
use std::fmt;

/// Why a string is not an acceptable e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("e-mail address must have the form local@domain")]
    /// Not of the form `local@domain`.
    Shape,
    #[error(
        "the local part of the e-mail address is empty, too long or holds forbidden characters"
    )]
    /// The local part is empty, too long or holds forbidden characters.
    LocalPart,
    #[error("the domain of the e-mail address is invalid: {0}")]
    /// The domain is not a valid domain name; says why.
    Domain(String),
}

/// An e-mail address: a local part of at most 64 printable characters and a valid,
/// non-wildcard domain (lower-cased). The local part keeps its case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses an address.
    ///
    /// # Errors
    ///
    /// Returns which part of the address is wrong.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let input = input.trim();
        let (local, domain) = input.rsplit_once('@').ok_or(EmailError::Shape)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_graphic() && !"()<>[]:;@\\,\"".contains(c));
        if !local_ok {
            return Err(EmailError::LocalPart);
        }
        let domain = DomainName::parse(domain).map_err(|e| EmailError::Domain(e.to_string()))?;
        if domain.is_wildcard() {
            return Err(EmailError::Domain("a wildcard is not a mail domain".into()));
        }
        Ok(Self(format!("{local}@{domain}")))
    }

    /// The address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalizes_domain_case() {
        let e = Email::parse(" Admin+acme@Example.COM ").expect("valid address");
        assert_eq!(e.as_str(), "Admin+acme@example.com");
    }

    #[test]
    fn rejects_bad_addresses() {
        assert_eq!(Email::parse("no-at-sign"), Err(EmailError::Shape));
        assert_eq!(Email::parse("@example.com"), Err(EmailError::LocalPart));
        assert_eq!(Email::parse("a b@example.com"), Err(EmailError::LocalPart));
        assert_eq!(Email::parse("a..b@example.com"), Err(EmailError::LocalPart));
        assert!(matches!(
            Email::parse("a@localhost"),
            Err(EmailError::Domain(_))
        ));
        assert!(matches!(
            Email::parse("a@*.example.com"),
            Err(EmailError::Domain(_))
        ));
    }
}
