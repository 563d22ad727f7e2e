//! ACME accounts registered through the service on behalf of a user.

use super::{AccountCredentials, AccountId, CsrSubject, Email, UserId};
use std::fmt;
use time::OffsetDateTime;

/// An ACME directory URL. HTTPS only, as RFC 8555 requires.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DirectoryUrl(String);

/// The text is not an HTTPS URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ACME directory must be an https:// URL: {0}")]
pub struct DirectoryUrlError(pub String);

impl DirectoryUrl {
    /// Let's Encrypt's production directory, the out-of-the-box default.
    pub const LETS_ENCRYPT: &'static str = "https://acme-v02.api.letsencrypt.org/directory";

    /// Parses an `https://` URL with a host.
    ///
    /// # Errors
    ///
    /// Anything that is not an absolute HTTPS URL with a host.
    pub fn parse(input: &str) -> Result<Self, DirectoryUrlError> {
        let url = url::Url::parse(input.trim())
            .map_err(|e| DirectoryUrlError(format!("{input}: {e}")))?;
        if url.scheme() != "https" || url.host_str().is_none() {
            return Err(DirectoryUrlError(input.to_owned()));
        }
        Ok(Self(url.to_string()))
    }

    /// The URL.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DirectoryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DirectoryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DirectoryUrl({})", self.0)
    }
}

/// Whether an account may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    /// The account can register orders.
    Valid,
    /// The account was deactivated at the CA; it takes no new orders and is never renewed.
    Deactivated,
}

impl AccountStatus {
    /// The API name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Deactivated => "deactivated",
        }
    }
}

/// An ACME account held for a user.
#[derive(Debug, Clone, PartialEq)]
pub struct AcmeAccount {
    /// Assigned by the repository.
    pub id: AccountId,
    /// The user who owns the account.
    pub user_id: UserId,
    /// The contact address registered at the CA.
    pub email: Email,
    /// The ACME directory of the CA the account lives at.
    pub directory: DirectoryUrl,
    /// The account URL the ACME server assigned.
    pub uri: String,
    /// Whether the account may still be used.
    pub status: AccountStatus,
    /// Defaults for the CSR subjects of this account's orders.
    pub subject: CsrSubject,
    /// The account key and URL, serialized by the ACME adapter. Encrypted at rest.
    pub credentials: AccountCredentials,
    /// When it was registered.
    pub created_at: OffsetDateTime,
}

/// An account to be stored; the repository assigns the id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAcmeAccount {
    /// The user who owns the account.
    pub user_id: UserId,
    /// The contact address registered at the CA.
    pub email: Email,
    /// The ACME directory of the CA the account lives at.
    pub directory: DirectoryUrl,
    /// The account URL the ACME server assigned.
    pub uri: String,
    /// Defaults for the CSR subjects of this account's orders.
    pub subject: CsrSubject,
    /// The account key and URL, serialized by the ACME adapter.
    pub credentials: AccountCredentials,
    /// When it was registered.
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_must_be_https() {
        assert!(DirectoryUrl::parse("https://127.0.0.1:14000/dir").is_ok());
        assert!(DirectoryUrl::parse(DirectoryUrl::LETS_ENCRYPT).is_ok());
        assert!(DirectoryUrl::parse("http://acme.example/dir").is_err());
        assert!(DirectoryUrl::parse("not a url").is_err());
    }
}
