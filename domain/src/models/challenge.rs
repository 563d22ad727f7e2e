//! Challenge kinds, DNS provider names, and the challenge material published for an order.

use std::fmt;
use std::str::FromStr;

/// How domain control is proven.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChallengeKind {
    /// A TXT record at `_acme-challenge.<name>` (the API's `type: dns`, the default).
    #[default]
    Dns01,
    /// A file at `http://<name>/.well-known/acme-challenge/<token>` (`type: http`).
    Http01,
}

/// The text is not a known challenge type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown challenge type `{0}`: expected `dns` or `http`")]
pub struct ChallengeKindError(pub String);

impl ChallengeKind {
    /// The API name: `dns` or `http`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns01 => "dns",
            Self::Http01 => "http",
        }
    }

    /// The RFC 8555 name: `dns-01` or `http-01`.
    #[must_use]
    pub fn acme_name(self) -> &'static str {
        match self {
            Self::Dns01 => "dns-01",
            Self::Http01 => "http-01",
        }
    }
}

impl FromStr for ChallengeKind {
    type Err = ChallengeKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dns" | "dns-01" => Ok(Self::Dns01),
            "http" | "http-01" => Ok(Self::Http01),
            _ => Err(ChallengeKindError(s.to_owned())),
        }
    }
}

impl fmt::Display for ChallengeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The path prefix under which a CA fetches HTTP-01 responses (RFC 8555 section 8.3).
pub const HTTP01_PATH_PREFIX: &str = "/.well-known/acme-challenge/";

/// The longest HTTP-01 token looked up; ACME tokens are 43 characters (32 random bytes in
/// base64url), so anything far longer is not worth a storage lookup.
const MAX_HTTP01_TOKEN_LEN: usize = 256;

/// True when `token` can be an HTTP-01 token: base64url (RFC 8555 section 8.3) of a
/// sane length. Anything else cannot be one of ours and is answered 404 unseen.
#[must_use]
pub fn is_http01_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_HTTP01_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The token of an HTTP-01 request path (`/.well-known/acme-challenge/<token>`, without
/// query), or `None` for any other path.
#[must_use]
pub fn http01_token(path: &str) -> Option<&str> {
    path.strip_prefix(HTTP01_PATH_PREFIX)
        .filter(|token| is_http01_token(token))
}

/// The name of a configured DNS provider instance: 1 to 63 characters of lower-case
/// letters, digits, `-` and `_`, starting with a letter or digit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderName(String);

/// The text cannot name a provider instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider name `{0}` must be 1-63 characters of a-z, 0-9, `-` and `_`")]
pub struct ProviderNameError(pub String);

impl ProviderName {
    /// Parses a provider name (case-insensitive, stored lower-case).
    ///
    /// # Errors
    ///
    /// Empty, over-long or names with other characters.
    pub fn parse(input: &str) -> Result<Self, ProviderNameError> {
        let name = input.trim().to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && name.as_bytes()[0].is_ascii_alphanumeric();
        if valid {
            Ok(Self(name))
        } else {
            Err(ProviderNameError(input.to_owned()))
        }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderName({})", self.0)
    }
}

/// A TXT record to publish for DNS-01: the full name (`_acme-challenge.example.com`,
/// no trailing dot) and the value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxtRecord {
    /// The full record name, without trailing dot.
    pub name: String,
    /// The TXT value, unquoted.
    pub value: String,
}

/// One challenge the ACME server asks us to answer, for one authorization that is not
/// valid yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeToSolve {
    /// The identifier this authorization is for (`*.example.com` for a wildcard).
    pub identifier: String,
    /// The challenge type to answer.
    pub kind: ChallengeKind,
    /// The challenge token.
    pub token: String,
    /// The key authorization: the HTTP-01 response body.
    pub key_authorization: String,
    /// The DNS-01 TXT value (base64url of the SHA-256 of the key authorization).
    pub dns_value: String,
}

/// Material published so that a challenge can be validated. It is recorded on the order
/// before it is published, so that it is removed even if the process dies in between.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Published {
    /// A TXT record written through the named DNS provider.
    Dns {
        /// The provider instance that wrote the record (and must remove it).
        provider: ProviderName,
        /// The record written.
        record: TxtRecord,
    },
    /// An HTTP-01 token served by the built-in responder.
    Http {
        /// The challenge token (the last segment of the path the CA requests).
        token: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http01_paths_yield_their_token_and_nothing_else() {
        assert_eq!(
            http01_token("/.well-known/acme-challenge/abc-DEF_123"),
            Some("abc-DEF_123")
        );
        for path in [
            "/.well-known/acme-challenge/",
            "/.well-known/acme-challenge/a/b",
            "/.well-known/acme-challenge/a.b",
            "/.well-known/acme-challenge/../x",
            "/other/abc",
            "",
        ] {
            assert_eq!(http01_token(path), None, "{path:?}");
        }
        let long = format!("{HTTP01_PATH_PREFIX}{}", "a".repeat(257));
        assert_eq!(http01_token(&long), None);
    }

    #[test]
    fn challenge_kinds_parse_both_spellings() {
        assert_eq!("dns".parse(), Ok(ChallengeKind::Dns01));
        assert_eq!("HTTP-01".parse(), Ok(ChallengeKind::Http01));
        assert!("tls-alpn-01".parse::<ChallengeKind>().is_err());
        assert_eq!(ChallengeKind::default(), ChallengeKind::Dns01);
    }

    #[test]
    fn provider_names() {
        assert_eq!(
            ProviderName::parse("Route53").expect("valid").as_str(),
            "route53"
        );
        assert!(ProviderName::parse("my_dns-2").is_ok());
        for bad in ["", "-x", "a b", "ä", &"x".repeat(64)] {
            assert!(ProviderName::parse(bad).is_err(), "{bad}");
        }
    }
}
