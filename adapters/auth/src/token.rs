//! HMAC-SHA256 signed API tokens.
//!
//! A token reads `at2.<user id>.<user generation>.<expiry, unix seconds>.<signature>`, the
//! signature being the unpadded base64url HMAC-SHA256 of everything before it. The
//! generation ties a token to the user's password and enabled state: the service refuses
//! tokens of an older generation. Tokens are stateless:
//! every instance sharing the secret accepts them, and changing the secret revokes them
//! all. They contain only `.`, digits and base64url characters, so they fit in the
//! username field of HTTP Basic authentication.

use acmeport_domain::ports::{TokenClaims, TokenSigner};
use acmeport_domain::{ApiToken, UserId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use time::OffsetDateTime;

const VERSION: &str = "at2";

/// The configured token secret is unusable.
#[derive(Debug, thiserror::Error)]
#[error("the token secret must be at least {min} bytes, got {got}", min = HmacTokenSigner::MIN_SECRET_LEN)]
pub struct TokenSecretError {
    got: usize,
}

/// Signs and verifies API tokens with HMAC-SHA256.
pub struct HmacTokenSigner {
    secret: SecretBox<Vec<u8>>,
}

impl std::fmt::Debug for HmacTokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacTokenSigner(***)")
    }
}

impl HmacTokenSigner {
    /// The shortest secret accepted: the size of the HMAC-SHA256 output.
    pub const MIN_SECRET_LEN: usize = 32;

    /// A signer with a configured secret (shared by every instance of the service).
    ///
    /// # Errors
    ///
    /// [`TokenSecretError`] when the secret is shorter than [`Self::MIN_SECRET_LEN`].
    pub fn new(secret: &[u8]) -> Result<Self, TokenSecretError> {
        if secret.len() < Self::MIN_SECRET_LEN {
            return Err(TokenSecretError { got: secret.len() });
        }
        Ok(Self {
            secret: SecretBox::new(Box::new(secret.to_vec())),
        })
    }

    /// A signer with a random secret: tokens then die with the process and are not
    /// accepted by other instances.
    #[must_use]
    pub fn generate() -> Self {
        let mut secret = vec![0u8; Self::MIN_SECRET_LEN];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Self {
            secret: SecretBox::new(Box::new(secret)),
        }
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret.expose_secret())
            .expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        mac
    }
}

impl TokenSigner for HmacTokenSigner {
    fn sign(&self, claims: TokenClaims) -> ApiToken {
        let payload = format!(
            "{VERSION}.{}.{}.{}",
            claims.user.get(),
            claims.generation,
            claims.expires_at.unix_timestamp()
        );
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        ApiToken::new(format!("{payload}.{signature}"))
    }

    fn verify(&self, token: &str) -> Option<TokenClaims> {
        let (payload, signature) = token.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        // Check the signature before looking at the claims, in constant time.
        self.mac(payload).verify_slice(&signature).ok()?;
        let mut parts = payload.split('.');
        if parts.next()? != VERSION {
            return None;
        }
        let user: i64 = parts.next()?.parse().ok()?;
        let generation: i64 = parts.next()?.parse().ok()?;
        let expires: i64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(TokenClaims {
            user: UserId::new(user),
            generation,
            expires_at: OffsetDateTime::from_unix_timestamp(expires).ok()?,
        })
    }

    /// `at<digits>.` followed by three integers and a base64url signature: this version's
    /// tokens and earlier ones, signed by any key.
    fn is_token_shaped(&self, text: &str) -> bool {
        let parts: Vec<&str> = text.split('.').collect();
        let [version, user, generation, expires, signature] = parts.as_slice() else {
            return false;
        };
        let is_integer = |p: &&str| p.parse::<i64>().is_ok();
        version
            .strip_prefix("at")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            && [user, generation, expires].into_iter().all(is_integer)
            && URL_SAFE_NO_PAD
                .decode(signature)
                .is_ok_and(|bytes| !bytes.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn claims() -> TokenClaims {
        TokenClaims {
            user: UserId::new(42),
            generation: 3,
            expires_at: datetime!(2030-01-01 12:00 UTC),
        }
    }

    fn signer() -> HmacTokenSigner {
        HmacTokenSigner::new(&[7u8; 32]).expect("32 bytes is enough")
    }

    #[test]
    fn signed_tokens_verify_to_their_claims() {
        let token = signer().sign(claims());
        assert!(
            token.expose().starts_with("at2.42.3.1893499200."),
            "{}",
            token.expose()
        );
        assert_eq!(signer().verify(token.expose()), Some(claims()));
    }

    #[test]
    fn tokens_fit_in_a_basic_username() {
        let token = signer().sign(claims());
        assert!(
            token
                .expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            "token has characters that break Basic auth or usernames: {}",
            token.expose()
        );
    }

    #[test]
    fn tampered_tokens_are_rejected() {
        let token = signer().sign(claims()).expose().to_owned();
        let (payload, sig) = token.rsplit_once('.').expect("has a signature");
        let forged_user = format!("{}.{sig}", payload.replace(".42.", ".43."));
        let later = payload.replace("1893499200", "1993499200");
        let forged_expiry = format!("{later}.{sig}");
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        for bad in [
            forged_user.as_str(),
            forged_expiry.as_str(),
            flipped.as_str(),
            payload,
            "",
            "at2.42",
            "not a token",
            &format!("{token}.x"),
        ] {
            assert_eq!(
                signer().verify(bad),
                None,
                "tampered token {bad:?} must be refused"
            );
        }
    }

    #[test]
    fn another_secret_does_not_verify() {
        let token = signer().sign(claims());
        let other = HmacTokenSigner::new(&[8u8; 32]).expect("32 bytes");
        assert_eq!(other.verify(token.expose()), None);
        assert_eq!(HmacTokenSigner::generate().verify(token.expose()), None);
    }

    #[test]
    fn expired_tokens_still_verify_so_the_caller_can_check_expiry() {
        let old = TokenClaims {
            user: UserId::new(1),
            generation: 0,
            expires_at: datetime!(2000-01-01 0:00 UTC),
        };
        let token = signer().sign(old);
        assert_eq!(signer().verify(token.expose()), Some(old));
    }

    #[test]
    fn short_secrets_are_refused_and_debug_is_redacted() {
        let err = HmacTokenSigner::new(b"short").expect_err("5 bytes is too short");
        assert_eq!(
            err.to_string(),
            "the token secret must be at least 32 bytes, got 5"
        );
        assert_eq!(format!("{:?}", signer()), "HmacTokenSigner(***)");
    }

    #[test]
    fn tokens_of_any_key_are_token_shaped_and_usernames_are_not() {
        let foreign = HmacTokenSigner::new(&[9u8; 32])
            .expect("32 bytes")
            .sign(claims());
        assert_eq!(signer().verify(foreign.expose()), None, "another key");
        assert!(signer().is_token_shaped(foreign.expose()));
        assert!(signer().is_token_shaped(signer().sign(claims()).expose()));
        for name in [
            "alice",
            "alice.smith",
            "ops@example.com",
            "at2.42.3.1893499200",
            "at.1.2.3.c2ln",
            "at2.x.3.1893499200.c2ln",
            "at2.42.3.1893499200.",
        ] {
            assert!(!signer().is_token_shaped(name), "{name} is no token");
        }
    }
}
