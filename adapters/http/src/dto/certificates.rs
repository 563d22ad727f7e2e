//! Bodies of the certificate endpoints.

use super::rfc3339;
use crate::error::ApiError;
use acmeport_domain::{Certificate, RenewalPlan, RevocationReason};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// When acmeport plans to renew a certificate, and why.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RenewalView {
    /// RFC 3339.
    pub at: String,
    /// `ari_window` (the CA's ACME Renewal Information) or `lifetime` (the configured
    /// fraction of the lifetime is left).
    #[schema(example = "lifetime")]
    pub reason: String,
    /// The window the CA suggested (ARI), RFC 3339 start and end, when it did.
    pub window: Option<[String; 2]>,
    /// Why the last renewal attempt failed, if it did.
    pub last_error: Option<String>,
}

impl RenewalView {
    fn new(p: &RenewalPlan, last_error: Option<&String>) -> Self {
        Self {
            at: rfc3339(p.at),
            reason: p.reason.as_str().to_owned(),
            window: p.window.map(|(start, end)| [rfc3339(start), rfc3339(end)]),
            last_error: last_error.cloned(),
        }
    }
}

/// The optional body of `DELETE` and `PURGE /api/certificate/<id>`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeRequest {
    /// An RFC 5280 reason ACME accepts: `unspecified` (default), `keyCompromise`,
    /// `affiliationChanged`, `superseded`, `cessationOfOperation`.
    #[schema(example = "keyCompromise")]
    pub reason: Option<String>,
}

impl RevokeRequest {
    /// The reason, `unspecified` when absent.
    ///
    /// # Errors
    ///
    /// A 400 listing the accepted names.
    pub(crate) fn try_into_domain(self) -> Result<RevocationReason, ApiError> {
        match self.reason.as_deref() {
            None => Ok(RevocationReason::Unspecified),
            Some(name) => RevocationReason::from_name(name).ok_or_else(|| {
                let known: Vec<_> = RevocationReason::ALL.iter().map(|r| r.as_str()).collect();
                ApiError::bad_request(format!(
                    "reason: unknown revocation reason `{name}`, expected one of {}",
                    known.join(", ")
                ))
            }),
        }
    }
}

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
    /// The subject of the issuing CA (RFC 4514).
    #[schema(example = "CN=Pebble Intermediate CA 4b5c6d")]
    pub issuer: String,
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
    /// The revocation reason (RFC 5280 name), when revoked.
    pub reason: Option<String>,
    /// True when revoked for `keyCompromise`: its key is never used again, not even by
    /// a renewal of an order placed with an uploaded key or CSR.
    pub key_compromised: bool,
    /// When acmeport plans to renew it; null when it will not be renewed (revoked,
    /// replaced by a newer certificate of its order, or `auto_renew` off).
    pub renewal: Option<RenewalView>,
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
            issuer: c.info.issuer.clone(),
            reason: c.revocation_reason.map(|r| r.as_str().to_owned()),
            key_compromised: c.key_compromised(),
            renewal: c
                .renewal
                .as_ref()
                .map(|p| RenewalView::new(p, c.renewal_error.as_ref())),
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
