//! Account key material from users: the External Account Binding HMAC key and an own
//! account key in PEM.

use acmeport_domain::ports::AcmeError;
use acmeport_domain::{ExternalAccountBinding, PrivateKeyPem};
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use instant_acme::ExternalAccountKey;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The EAB key for instant-acme, which wants the raw HMAC bytes: CAs hand the key out
/// base64url-encoded (RFC 8555 section 7.3.4), some with padding, some in standard base64.
pub(crate) fn eab_key(eab: &ExternalAccountBinding) -> Result<ExternalAccountKey, AcmeError> {
    let text = eab.hmac_key.expose().trim().trim_end_matches('=');
    let raw = URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .map_err(|_| {
            AcmeError::Credentials("the External Account Binding HMAC key is not base64url".into())
        })?;
    if raw.is_empty() {
        return Err(AcmeError::Credentials(
            "the External Account Binding HMAC key is empty".into(),
        ));
    }
    if eab.kid.trim().is_empty() {
        return Err(AcmeError::Credentials(
            "the External Account Binding key id is empty".into(),
        ));
    }
    Ok(ExternalAccountKey::new(eab.kid.trim().to_owned(), &raw))
}

/// A user's account key as PKCS#8 DER. instant-acme signs with ES256 only, so the key must
/// be ECDSA P-256; PKCS#8 (`PRIVATE KEY`) and SEC1 (`EC PRIVATE KEY`) PEM are accepted.
pub(crate) fn account_key(pem: &PrivateKeyPem) -> Result<PrivatePkcs8KeyDer<'static>, AcmeError> {
    let unusable = || {
        AcmeError::Credentials(
            "the account key must be an unencrypted ECDSA P-256 private key in PEM \
             (PKCS#8 or SEC1); the ACME client signs with ES256 only"
                .into(),
        )
    };
    let der = PrivateKeyDer::from_pem_slice(pem.expose().as_bytes()).map_err(|_| unusable())?;
    let pair = match &der {
        PrivateKeyDer::Pkcs8(_) | PrivateKeyDer::Sec1(_) => {
            EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der.secret_der())
                .map_err(|_| unusable())?
        }
        _ => return Err(unusable()),
    };
    let pkcs8 = pair.to_pkcs8v1().map_err(|_| unusable())?;
    Ok(PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use acmeport_domain::Password;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{KeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};

    fn eab(kid: &str, key: &str) -> ExternalAccountBinding {
        ExternalAccountBinding {
            kid: kid.into(),
            hmac_key: Password::new(key),
        }
    }

    #[test]
    fn eab_keys_decode_in_every_common_spelling() {
        // 0xfb 0xff encodes to `-_8` in base64url and `+/8` in standard base64.
        for key in ["-_8", "-_8=", "+/8=", " -_8 "] {
            assert!(eab_key(&eab("kid-1", key)).is_ok(), "`{key}` must decode");
        }
        for (kid, key) in [("kid-1", "not base64 !"), ("kid-1", ""), (" ", "-_8")] {
            assert!(
                matches!(eab_key(&eab(kid, key)), Err(AcmeError::Credentials(_))),
                "kid `{kid}` key `{key}` must be refused"
            );
        }
    }

    fn pem(label: &str, der: &[u8]) -> PrivateKeyPem {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        PrivateKeyPem::new(format!(
            "-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n"
        ))
    }

    #[test]
    fn account_keys_must_be_p256() {
        let rng = SystemRandom::new();
        let p256 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let der = account_key(&pem("PRIVATE KEY", p256.as_ref())).expect("P-256 PKCS#8");
        let again =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.secret_pkcs8_der())
                .expect("the result is PKCS#8");
        let original =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, p256.as_ref()).unwrap();
        assert_eq!(
            again.public_key().as_ref(),
            original.public_key().as_ref(),
            "the same key must come out"
        );

        let sec1 = original.private_key().as_der().expect("SEC1 DER");
        let from_sec1 = account_key(&pem("EC PRIVATE KEY", sec1.as_ref())).expect("P-256 SEC1");
        let again = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            from_sec1.secret_pkcs8_der(),
        )
        .expect("SEC1 is converted to PKCS#8");
        assert_eq!(again.public_key().as_ref(), original.public_key().as_ref());

        let p384 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        for (what, key) in [
            ("a P-384 key", pem("PRIVATE KEY", p384.as_ref())),
            ("garbage", PrivateKeyPem::new("garbage")),
            ("RSA label", pem("RSA PRIVATE KEY", b"\x30\x00")),
        ] {
            assert!(
                matches!(account_key(&key), Err(AcmeError::Credentials(_))),
                "{what} must be refused"
            );
        }
    }
}
