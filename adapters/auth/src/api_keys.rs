//! Secrets of named API keys: 256 random bits, stored as their SHA-256 digest.
//!
//! A fast digest is enough here (unlike passwords): the secret is random and long, so a
//! copy of the database gives nothing to guess from.

use acmeport_domain::ports::ApiKeySecrets;
use acmeport_domain::{ApiKeyDigest, ApiToken};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Random API key secrets and their SHA-256 digests.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomKeySecrets;

impl ApiKeySecrets for RandomKeySecrets {
    fn generate(&self) -> ApiToken {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        ApiToken::new(URL_SAFE_NO_PAD.encode(bytes))
    }

    fn digest(&self, secret: &str) -> ApiKeyDigest {
        let digest = Sha256::digest(secret.as_bytes());
        ApiKeyDigest::new(format!("sha256:{}", URL_SAFE_NO_PAD.encode(digest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_digests_stable() {
        let a = RandomKeySecrets.generate();
        let b = RandomKeySecrets.generate();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43, "256 bits in base64url");
        assert_eq!(
            RandomKeySecrets.digest(a.expose()),
            RandomKeySecrets.digest(a.expose())
        );
        assert_ne!(
            RandomKeySecrets.digest(a.expose()),
            RandomKeySecrets.digest(b.expose())
        );
        assert!(!RandomKeySecrets
            .digest(a.expose())
            .as_str()
            .contains(a.expose()));
    }
}
