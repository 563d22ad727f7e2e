//! Reading issued chains: splitting leaf and issuers, and the leaf's facts.

use acmeport_domain::ports::CsrError;
use acmeport_domain::CertificateInfo;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// One certificate of a chain: its PEM text as found, and its DER.
struct Block {
    pem: String,
    der: Vec<u8>,
}

/// Splits a PEM chain (leaf first) and reads the leaf.
pub(crate) fn inspect(chain_pem: &str) -> Result<CertificateInfo, CsrError> {
    let blocks = split(chain_pem)?;
    let (leaf, issuers) = blocks
        .split_first()
        .ok_or_else(|| invalid("no certificate in the chain"))?;
    let cert = parse(&leaf.der)?;

    let validity = cert.validity();
    let mut names = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|e| invalid(format!("bad subject alternative name extension: {e}")))?;
    for general in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
        if let GeneralName::DNSName(dns) = general {
            names.push((*dns).to_owned());
        }
    }
    Ok(CertificateInfo {
        leaf_pem: leaf.pem.clone(),
        chain_pem: issuers.iter().map(|b| b.pem.as_str()).collect(),
        fingerprint: hex::encode(Sha256::digest(&leaf.der)),
        serial: cert.tbs_certificate.serial.to_str_radix(16),
        // The leaf's issuer field is the issuing CA's subject.
        issuer: cert.issuer().to_string(),
        not_before: validity.not_before.to_datetime(),
        not_after: validity.not_after.to_datetime(),
        names,
    })
}

/// The raw subject public key (RSA: the PKCS#1 `RSAPublicKey`; EC: the point) of the first
/// certificate in `pem`, to compare with a private key's public half.
pub(crate) fn leaf_public_key(pem: &str) -> Result<Vec<u8>, CsrError> {
    let blocks = split(pem)?;
    let leaf = blocks
        .first()
        .ok_or_else(|| invalid("no certificate found"))?;
    let cert = parse(&leaf.der)?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

/// The DER `SubjectPublicKeyInfo` of the first certificate in `pem`, if any.
pub(crate) fn certificate_public_key(pem: &str) -> Option<Vec<u8>> {
    let blocks = split(pem).ok()?;
    let cert = parse(&blocks.first()?.der).ok()?;
    Some(cert.public_key().raw.to_vec())
}

/// Cuts the text into its certificate blocks, each kept verbatim (normalised to end in one
/// newline) so that what the CA sent is what is stored.
fn split(chain_pem: &str) -> Result<Vec<Block>, CsrError> {
    let mut blocks = Vec::new();
    let mut rest = chain_pem;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start..];
        let end = after
            .find(END)
            .ok_or_else(|| invalid("a certificate block has no END line"))?
            + END.len();
        let text = &after[..end];
        let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes())
            .map_err(|e| invalid(format!("malformed PEM: {e}")))?;
        let Pem { contents, .. } = pem;
        blocks.push(Block {
            pem: format!("{text}\n"),
            der: contents,
        });
        rest = &after[end..];
    }
    if blocks.is_empty() {
        return Err(invalid("no PEM certificate block found"));
    }
    Ok(blocks)
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CsrError> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| invalid(format!("not an X.509 certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(invalid("trailing data after the certificate"));
    }
    Ok(cert)
}

fn invalid(reason: impl Into<String>) -> CsrError {
    CsrError::InvalidCertificate(reason.into())
}
