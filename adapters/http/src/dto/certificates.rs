//! Bodies of the certificate endpoints.

use super::rfc3339;
use acmeport_domain::Certificate;
use serde::Serialize;
use utoipa::ToSchema;

/// A certificate without its private key, as lists show it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CertificateSummary {
    #[schema(example = 12)]
    pub id: i64,
    pub order_id: i64,
    /// `valid` or `revoked`.
    #[schema(example = "valid")]
    pub status: String,
    /// SHA-256 of the DER, lower-case hex.
    pub fingerprint: String,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// The DNS names of the certificate.
    pub domains: Vec<String>,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    /// The leaf certificate, PEM.
    pub body: String,
    /// The issuer certificates, PEM.
    pub chain: String,
    /// Leaf followed by issuers, PEM.
    pub fullchain: String,
    /// The CSR the certificate was issued for, PEM.
    pub csr: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, when revoked.
    pub revoked_at: Option<String>,
}

impl From<&Certificate> for CertificateSummary {
    fn from(c: &Certificate) -> Self {
        Self {
            id: c.id.get(),
            order_id: c.order_id.get(),
            status: c.status.as_str().to_owned(),
            fingerprint: c.info.fingerprint.clone(),
            serial: c.info.serial.clone(),
            domains: c.info.names.clone(),
            not_before: rfc3339(c.info.not_before),
            not_after: rfc3339(c.info.not_after),
            body: c.info.leaf_pem.clone(),
            chain: c.info.chain_pem.clone(),
            fullchain: c.fullchain(),
            csr: c.csr.clone(),
            created_at: rfc3339(c.created_at),
            revoked_at: c.revoked_at.map(rfc3339),
        }
    }
}

/// One certificate with its private key, when the service holds it.
#[derive(Serialize, ToSchema)]
pub(crate) struct CertificateResponse {
    #[serde(flatten)]
    pub certificate: CertificateSummary,
    /// The private key, PEM; null when the service does not hold it (uploaded CSR).
    pub key: Option<String>,
}

// The key must never reach a log through `{:?}`.
impl std::fmt::Debug for CertificateResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateResponse")
            .field("certificate", &self.certificate)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .finish()
    }
}

impl From<&Certificate> for CertificateResponse {
    fn from(c: &Certificate) -> Self {
        Self {
            certificate: CertificateSummary::from(c),
            key: c.key.as_ref().map(|k| k.expose().to_owned()),
        }
    }
}
