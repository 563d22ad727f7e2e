//! Private keys: generating them per [`KeySpec`] and reading the PEM keys users upload.

use acmeport_domain::ports::CsrError;
use acmeport_domain::{KeySpec, PrivateKeyPem};
use rcgen::{
    KeyPair, PublicKeyData, RsaKeySize, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384,
    PKCS_RSA_SHA256,
};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// The RSA sizes public CAs accept (Let's Encrypt: 2048 to 4096 bits).
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// Generates a key of the given kind as PKCS#8 PEM.
///
/// RSA generation takes from tens of milliseconds to seconds of CPU, so it runs on the
/// blocking pool instead of stalling the async workers that drive other orders.
pub(crate) async fn generate(spec: KeySpec) -> Result<PrivateKeyPem, CsrError> {
    let pair = match spec {
        KeySpec::EcdsaP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(internal)?,
        KeySpec::EcdsaP384 => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(internal)?,
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            let size = match spec {
                KeySpec::Rsa3072 => RsaKeySize::_3072,
                KeySpec::Rsa4096 => RsaKeySize::_4096,
                _ => RsaKeySize::_2048,
            };
            tokio::task::spawn_blocking(move || KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, size))
                .await
                .map_err(|e| CsrError::Internal(Box::new(e)))?
                .map_err(internal)?
        }
        other => {
            return Err(CsrError::Internal(
                format!("key type {other} is not supported by this key factory").into(),
            ))
        }
    };
    // Generated keys are PKCS#8 DER, so rcgen's "PRIVATE KEY" label is right here.
    Ok(PrivateKeyPem::new(pair.serialize_pem()))
}

/// Reads a PEM private key: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
/// (`EC PRIVATE KEY`); RSA of 2048 to 4096 bits, or ECDSA on P-256 or P-384.
pub(crate) fn parse(key: &PrivateKeyPem) -> Result<KeyPair, CsrError> {
    let block = Pem::iter_from_buffer(key.expose().as_bytes())
        .find(|block| match block {
            Ok(pem) => pem.label.ends_with("PRIVATE KEY"),
            Err(_) => true,
        })
        .ok_or_else(|| invalid("no PEM private key block (-----BEGIN PRIVATE KEY-----) found"))?
        // The PEM error says only what is malformed, never the content.
        .map_err(|e| invalid(format!("malformed PEM: {e}")))?;
    let format = match block.label.as_str() {
        "PRIVATE KEY" => "PKCS#8",
        "RSA PRIVATE KEY" => "PKCS#1",
        "EC PRIVATE KEY" => "SEC1",
        "ENCRYPTED PRIVATE KEY" => {
            return Err(invalid(
                "encrypted private keys are not supported: upload the key without a passphrase",
            ))
        }
        other => return Err(invalid(format!("unsupported PEM block `{other}`"))),
    };
    // The crypto backend refuses small RSA keys without saying why: read the modulus
    // first so that the refusal names the size.
    if let Some(bits) = rsa_private_key_bits(&block.contents, format) {
        rsa_size_allowed(bits).map_err(invalid)?;
    }
    let pair = KeyPair::try_from(block.contents.as_slice()).map_err(|_| {
        invalid(format!(
            "the {format} block is not a readable RSA or EC key"
        ))
    })?;
    check_algorithm(&pair)?;
    Ok(pair)
}

fn check_algorithm(pair: &KeyPair) -> Result<(), CsrError> {
    let alg = pair.algorithm();
    if alg == &PKCS_ECDSA_P256_SHA256 || alg == &PKCS_ECDSA_P384_SHA384 {
        return Ok(());
    }
    if alg != &PKCS_RSA_SHA256 {
        return Err(invalid(
            "unsupported key algorithm: use RSA (2048 to 4096 bits) or ECDSA P-256/P-384",
        ));
    }
    let spki = pair.subject_public_key_info();
    let bits = SubjectPublicKeyInfo::from_der(&spki)
        .ok()
        .and_then(|(_, info)| match info.parsed() {
            Ok(PublicKey::RSA(rsa)) => Some(rsa.key_size()),
            _ => None,
        })
        .ok_or_else(|| invalid("cannot read the RSA public key"))?;
    rsa_size_allowed(bits).map_err(invalid)
}

/// The RSA size rule of generated keys, for every key that comes in.
fn rsa_size_allowed(bits: usize) -> Result<(), String> {
    if RSA_BITS.contains(&bits) {
        Ok(())
    } else {
        Err(format!(
            "RSA key has {bits} bits: {} to {} bits are accepted",
            RSA_BITS.start(),
            RSA_BITS.end()
        ))
    }
}

/// Checks a public key (from an uploaded CSR) against the rules of generated keys: RSA
/// of 2048 to 4096 bits, or ECDSA on P-256 or P-384. The error says why.
pub(crate) fn check_public_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<(), String> {
    use x509_parser::oid_registry::{OID_EC_P256, OID_NIST_EC_P384};
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => rsa_size_allowed(rsa.key_size()),
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve {
                Some(oid) if oid == OID_EC_P256 || oid == OID_NIST_EC_P384 => Ok(()),
                _ => Err("ECDSA key on an unsupported curve: P-256 or P-384 are accepted".into()),
            }
        }
        _ => Err(
            "unsupported key algorithm: use RSA (2048 to 4096 bits) or ECDSA P-256/P-384".into(),
        ),
    }
}

/// The modulus size of an RSA private key (PKCS#1, or PKCS#8 holding PKCS#1); `None` for
/// other keys or anything unreadable (left to the crypto backend to refuse).
fn rsa_private_key_bits(der: &[u8], format: &str) -> Option<usize> {
    use x509_parser::der_parser::ber::BerObjectContent;
    use x509_parser::der_parser::parse_der;
    use x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;
    let (_, outer) = parse_der(der).ok()?;
    let BerObjectContent::Sequence(items) = &outer.content else {
        return None;
    };
    let pkcs1 = match format {
        "PKCS#1" => items.clone(),
        "PKCS#8" => {
            let BerObjectContent::Sequence(algorithm) = &items.get(1)?.content else {
                return None;
            };
            let BerObjectContent::OID(oid) = &algorithm.first()?.content else {
                return None;
            };
            if *oid != OID_PKCS1_RSAENCRYPTION {
                return None;
            }
            let BerObjectContent::OctetString(inner) = &items.get(2)?.content else {
                return None;
            };
            let (_, inner) = parse_der(inner).ok()?;
            let BerObjectContent::Sequence(inner) = inner.content else {
                return None;
            };
            inner
        }
        _ => return None,
    };
    let BerObjectContent::Integer(modulus) = &pkcs1.get(1)?.content else {
        return None;
    };
    let modulus: Vec<u8> = modulus.iter().copied().skip_while(|b| *b == 0).collect();
    let first = *modulus.first()?;
    Some((modulus.len() - 1) * 8 + (8 - first.leading_zeros() as usize))
}

fn invalid(reason: impl Into<String>) -> CsrError {
    CsrError::InvalidKey(reason.into())
}

fn internal(e: rcgen::Error) -> CsrError {
    CsrError::Internal(Box::new(e))
}
