//! Certificate keys, CSRs and facts about issued certificates, with rcgen (aws-lc-rs) and
//! x509-parser.
//!
//! [`RcgenCsrFactory`] implements the domain ports [`CsrFactory`] and
//! [`CertificateInspector`]. It is stateless and cheap to share.
//!
//! Architecture invariant: this crate is the only place that knows about PEM, DER, ASN.1
//! and key formats. Every failure leaves it as a [`CsrError`] whose text is fit for a user;
//! no key material ever appears in an error or a log line.

#![warn(missing_docs)]

mod csr;
mod inspect;
mod key;

use acmeport_domain::ports::{CertificateInspector, Csr, CsrError, CsrFactory};
use acmeport_domain::{
    CertificateInfo, CsrSubject, DomainName, Email, Identifiers, KeySpec, PrivateKeyPem,
};
use async_trait::async_trait;

/// Keys and CSRs made with rcgen on the aws-lc-rs backend; certificates read with
/// x509-parser.
#[derive(Debug, Clone, Copy, Default)]
pub struct RcgenCsrFactory;

impl RcgenCsrFactory {
    /// A new factory.
    #[must_use]
    pub fn new() -> Self {
        Self
    }

    /// True when `key` is the private key of the certificate `leaf_pem` (its public key is
    /// the certificate's subject public key).
    ///
    /// # Errors
    ///
    /// [`CsrError::InvalidKey`] or [`CsrError::InvalidCertificate`] when either cannot be
    /// read.
    pub fn key_matches_certificate(
        &self,
        key: &PrivateKeyPem,
        leaf_pem: &str,
    ) -> Result<bool, CsrError> {
        let key = key::parse(key)?;
        let public = inspect::leaf_public_key(leaf_pem)?;
        Ok(key.public_key_raw() == public.as_slice())
    }
}

#[async_trait]
impl CsrFactory for RcgenCsrFactory {
    async fn generate_key(&self, spec: KeySpec) -> Result<PrivateKeyPem, CsrError> {
        key::generate(spec).await
    }

    fn check_key(&self, key: &PrivateKeyPem) -> Result<(), CsrError> {
        key::parse(key).map(|_| ())
    }

    fn build_csr(
        &self,
        key: &PrivateKeyPem,
        identifiers: &Identifiers,
        subject: &CsrSubject,
        email: Option<Email>,
    ) -> Result<Csr, CsrError> {
        let key = key::parse(key)?;
        csr::build(&key, identifiers, subject, email.as_ref())
    }

    fn parse_csr(&self, pem: &str) -> Result<(Vec<DomainName>, Csr), CsrError> {
        csr::parse(pem)
    }
}

impl CertificateInspector for RcgenCsrFactory {
    fn inspect(&self, chain_pem: &str) -> Result<CertificateInfo, CsrError> {
        inspect::inspect(chain_pem)
    }

    fn public_key(&self, pem: &str) -> Result<Vec<u8>, CsrError> {
        inspect::certificate_public_key(pem)
            .or_else(|| csr::public_key(pem))
            .ok_or_else(|| {
                CsrError::InvalidCertificate(
                    "neither a certificate nor a certificate request".into(),
                )
            })
    }
}

#[cfg(test)]
mod tests;
