//! Settings of the HTTP front end: the public base URL and the body size limit.

use std::fmt;

/// The absolute base URL clients use to reach the API (scheme, host, port and an
/// optional path prefix), used to build `Location` and `Link` headers. Behind a reverse
/// proxy this differs from the listen address.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

/// The text is not an absolute http(s) URL usable as a base.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("public URL must be an absolute http:// or https:// URL without query or fragment: {0}")]
pub struct PublicUrlError(String);

impl PublicUrl {
    /// Parses a base URL; a trailing `/` is dropped.
    ///
    /// # Errors
    ///
    /// Anything that is not an absolute `http`/`https` URL with a host, or that carries
    /// a query or fragment.
    pub fn parse(input: &str) -> Result<Self, PublicUrlError> {
        let url =
            url::Url::parse(input.trim()).map_err(|e| PublicUrlError(format!("{input}: {e}")))?;
        let usable = matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some()
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !usable {
            return Err(PublicUrlError(input.to_owned()));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The absolute URL of `path` (which starts with `/`).
    #[must_use]
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// The base URL, without trailing `/`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicUrl({})", self.0)
    }
}

/// Settings of the API listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Base of the absolute URIs in `Location` and `Link` headers.
    pub public_url: PublicUrl,
    /// The largest request body accepted, in bytes; larger ones answer 413.
    pub body_limit: u64,
}

impl HttpConfig {
    /// The default body limit: 1 MiB.
    pub const DEFAULT_BODY_LIMIT: u64 = 1024 * 1024;

    /// Settings with the default body limit.
    #[must_use]
    pub fn new(public_url: PublicUrl) -> Self {
        Self {
            public_url,
            body_limit: Self::DEFAULT_BODY_LIMIT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_absolute_bases() {
        let url = PublicUrl::parse("https://acme.example.com/prefix/").expect("valid");
        assert_eq!(
            url.join("/api/order/7"),
            "https://acme.example.com/prefix/api/order/7"
        );
        let url = PublicUrl::parse("http://127.0.0.1:8080").expect("valid");
        assert_eq!(url.join("/api/acme/1"), "http://127.0.0.1:8080/api/acme/1");
        for bad in [
            "",
            "/api",
            "ftp://x.example",
            "http://x.example/?q=1",
            "http://u:p@x.example",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
