//! Bodies of the ACME account endpoints.

use super::{optional, rfc3339, subject, SubjectView};
use crate::error::ApiError;
use acmeport_domain::service::RegisterAccount;
use acmeport_domain::{
    AcmeAccount, DirectoryUrl, Email, ExternalAccountBinding, Password, PrivateKeyPem,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/acme`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterAccountRequest {
    /// The contact address registered with the ACME server.
    #[schema(example = "admin@example.com")]
    pub email: String,
    /// The ACME directory URL (https). Default from configuration.
    #[schema(example = "https://acme-v02.api.letsencrypt.org/directory")]
    pub server: Option<String>,
    /// Default CSR subject organization (O) for this account's orders.
    pub organization: Option<String>,
    /// Default organizational unit (OU).
    pub organizational_unit: Option<String>,
    /// Default country (C), two letters.
    #[schema(example = "DE")]
    pub country: Option<String>,
    /// Default state or province (ST).
    pub state: Option<String>,
    /// Default locality (L).
    pub location: Option<String>,
    /// The account's private key, PEM. Generated when absent.
    pub key: Option<String>,
    /// External Account Binding key id, when the CA requires one.
    pub eab_kid: Option<String>,
    /// External Account Binding HMAC key, base64url as the CA gave it (padding and
    /// standard base64 are accepted); at least 32 bytes.
    pub eab_hmac_key: Option<String>,
}

impl std::fmt::Debug for RegisterAccountRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterAccountRequest")
            .field("email", &self.email)
            .field("server", &self.server)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .field("eab_kid", &self.eab_kid)
            .field("eab_hmac_key", &self.eab_hmac_key.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl RegisterAccountRequest {
    /// Parses the fields.
    ///
    /// # Errors
    ///
    /// A 400 naming the field that is refused.
    pub(crate) fn try_into_domain(self) -> Result<RegisterAccount, ApiError> {
        let email =
            Email::parse(&self.email).map_err(|e| ApiError::bad_request(format!("email: {e}")))?;
        let directory = optional("server", self.server.as_deref(), DirectoryUrl::parse)?;
        let subject = subject(
            self.organization.as_deref(),
            self.organizational_unit.as_deref(),
            self.country.as_deref(),
            self.state.as_deref(),
            self.location.as_deref(),
        )?;
        let key = match self.key {
            Some(pem) if pem.trim().is_empty() => {
                return Err(ApiError::bad_request("key: must be a PEM private key"))
            }
            Some(pem) => Some(PrivateKeyPem::new(pem)),
            None => None,
        };
        let eab = match (self.eab_kid, self.eab_hmac_key) {
            (None, None) => None,
            (Some(kid), Some(hmac)) if !kid.trim().is_empty() && !hmac.trim().is_empty() => {
                Some(ExternalAccountBinding {
                    kid: kid.trim().to_owned(),
                    hmac_key: eab_hmac_key(&hmac)?,
                })
            }
            (Some(_), None) => {
                return Err(ApiError::bad_request("eab_hmac_key: required with eab_kid"))
            }
            (None, Some(_)) => {
                return Err(ApiError::bad_request("eab_kid: required with eab_hmac_key"))
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "eab_kid, eab_hmac_key: must not be empty",
                ))
            }
        };
        Ok(RegisterAccount {
            email,
            directory,
            subject,
            key,
            eab,
        })
    }
}

/// The shortest EAB HMAC key accepted, in bytes: EAB is signed with HS256, whose key
/// must be at least as long as its 256-bit output (RFC 7518, section 3.2).
const EAB_KEY_MIN_BYTES: usize = 32;

/// [`eab_hmac_key`]'s rule as a pattern for the OpenAPI document: base64url or base64 of
/// at least 32 bytes (ten groups of four characters then three more, or eleven groups
/// and more), optionally padded.
pub(crate) const EAB_KEY_PATTERN: &str = concat!(
    "^(?:(?:[A-Za-z0-9_-]{4}){10}(?:[A-Za-z0-9_-]{3}|(?:[A-Za-z0-9_-]{4})+(?:[A-Za-z0-9_-]{2,3})?)",
    "|(?:[A-Za-z0-9+/]{4}){10}(?:[A-Za-z0-9+/]{3}|(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2,3})?))=*$"
);

/// Checks an External Account Binding HMAC key as CAs hand it out (base64url, some with
/// padding, some in standard base64) and passes it on in one spelling, unpadded
/// base64url, so that a bad key is the caller's 400 here and not a failure at the CA.
///
/// The OpenAPI document states the same rule as a pattern ([`EAB_KEY_PATTERN`]), so the
/// decoder accepts exactly what that pattern describes: either alphabet, any trailing
/// `=`, and final bits that a canonical encoder would have left zero.
fn eab_hmac_key(text: &str) -> Result<Password, ApiError> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
    use base64::engine::DecodePaddingMode;
    use base64::{alphabet, Engine as _};
    let lenient = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone);
    let text = text.trim_end_matches('=');
    let raw = secrecy::zeroize::Zeroizing::new(
        GeneralPurpose::new(&alphabet::URL_SAFE, lenient)
            .decode(text)
            .or_else(|_| GeneralPurpose::new(&alphabet::STANDARD, lenient).decode(text))
            .map_err(|_| {
                ApiError::bad_request(
                    "eab_hmac_key: must be the base64url key the certificate authority gave",
                )
            })?,
    );
    if raw.len() < EAB_KEY_MIN_BYTES {
        return Err(ApiError::bad_request(format!(
            "eab_hmac_key: must be at least {EAB_KEY_MIN_BYTES} bytes (HS256), this one has {}",
            raw.len()
        )));
    }
    Ok(Password::new(URL_SAFE_NO_PAD.encode(raw.as_slice())))
}

/// An ACME account. Never carries its private key.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccountResponse {
    #[schema(example = 3)]
    pub id: i64,
    pub email: String,
    /// The ACME directory URL.
    pub server: String,
    /// The account URL at the ACME server.
    pub uri: String,
    /// `valid` or `deactivated`.
    #[schema(example = "valid")]
    pub status: String,
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub location: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&AcmeAccount> for AccountResponse {
    fn from(a: &AcmeAccount) -> Self {
        let s = SubjectView::from(&a.subject);
        Self {
            id: a.id.get(),
            email: a.email.to_string(),
            server: a.directory.to_string(),
            uri: a.uri.clone(),
            status: a.status.as_str().to_owned(),
            organization: s.organization,
            organizational_unit: s.organizational_unit,
            country: s.country,
            state: s.state,
            location: s.location,
            created_at: rfc3339(a.created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{eab_hmac_key, EAB_KEY_PATTERN};

    /// The document's pattern and the service's check agree: every string the pattern
    /// accepts is accepted, every other one is refused (so neither a client validating
    /// against the document nor a fuzzer finds a difference).
    #[test]
    fn the_documented_pattern_is_exactly_the_eab_key_rule() {
        let pattern = regex::Regex::new(EAB_KEY_PATTERN).expect("the pattern compiles");
        let alphabet: Vec<char> =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .!"
                .chars()
                .collect();
        // A small deterministic generator: lengths around the 32-byte boundary, mostly
        // one alphabet, sometimes a stray character or padding.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % n as u64).expect("small")
        };
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let len = 38 + next(16);
            let base: &[char] = match next(3) {
                0 => &alphabet[..64],             // base64url
                1 => &alphabet[..62],             // alphanumerics only
                _ => &alphabet[..alphabet.len()], // anything, strays included
            };
            let mut text: String = (0..len).map(|_| base[next(base.len())]).collect();
            if next(4) == 0 {
                text.push_str(&"=".repeat(next(3)));
            }
            if next(10) == 0 {
                text = text.replace('-', "+");
            }
            let documented = pattern.is_match(&text);
            let served = eab_hmac_key(&text).is_ok();
            assert_eq!(documented, served, "{text:?} (length {})", text.len());
            if served {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        assert!(
            accepted > 1000 && refused > 1000,
            "{accepted} accepted, {refused} refused"
        );
        // The boundary itself: 42 characters are 31 bytes, 43 are 32.
        assert!(eab_hmac_key(&"A".repeat(42)).is_err() && !pattern.is_match(&"A".repeat(42)));
        assert!(eab_hmac_key(&"A".repeat(43)).is_ok() && pattern.is_match(&"A".repeat(43)));
    }
}
