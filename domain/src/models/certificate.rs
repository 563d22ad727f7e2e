//! Issued certificates and what is known about them.

use super::{AccountId, CertificateId, OrderId, PrivateKeyPem, RenewalPlan, UserId};
use time::OffsetDateTime;

/// Whether a certificate may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateStatus {
    /// Usable.
    Valid,
    /// Revoked at the CA; `revoked_at` says when.
    Revoked,
}

impl CertificateStatus {
    /// The API name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Revoked => "revoked",
        }
    }
}

/// Why a certificate is revoked (RFC 5280 reason codes that ACME accepts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationReason {
    #[default]
    /// No reason given (code 0).
    Unspecified,
    /// The private key is compromised (code 1); the key is never used again.
    KeyCompromise,
    /// The subject's name or other information changed (code 3).
    AffiliationChanged,
    /// A newer certificate replaces it (code 4).
    Superseded,
    /// The certificate is no longer needed (code 5).
    CessationOfOperation,
}

impl RevocationReason {
    /// The RFC 5280 reason code.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
        }
    }

    /// Every reason ACME accepts.
    pub const ALL: [Self; 5] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
    ];

    /// The RFC 5280 name (`keyCompromise`, ...), as the API spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
        }
    }

    /// Parses [`Self::as_str`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// Facts read from an issued chain by a [`crate::ports::CertificateInspector`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The leaf certificate, PEM.
    pub leaf_pem: String,
    /// The issuer certificates, PEM, leaf's issuer first.
    pub chain_pem: String,
    /// SHA-256 of the leaf's DER, lower-case hex.
    pub fingerprint: String,
    /// The subject of the issuing CA, as RFC 4514 text (empty when unknown).
    pub issuer: String,
    /// The serial number, lower-case hex.
    pub serial: String,
    /// The start of the validity period.
    pub not_before: OffsetDateTime,
    /// The end of the validity period.
    pub not_after: OffsetDateTime,
    /// The DNS names of the subject alternative name extension.
    pub names: Vec<String>,
}

/// A certificate as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Certificate {
    /// Assigned by the repository.
    pub id: CertificateId,
    /// The order it was issued for.
    pub order_id: OrderId,
    /// The user who owns it (the order's user).
    pub user_id: UserId,
    /// The ACME account it was issued through.
    pub account_id: AccountId,
    /// Whether it may still be used.
    pub status: CertificateStatus,
    /// What was read from the issued chain.
    pub info: CertificateInfo,
    /// The private key, when the service generated it or the user uploaded it.
    pub key: Option<PrivateKeyPem>,
    /// The CSR the certificate was finalized with, PEM.
    pub csr: String,
    /// When it was stored.
    pub created_at: OffsetDateTime,
    /// When it was revoked (revoked certificates only).
    pub revoked_at: Option<OffsetDateTime>,
    /// Why it was revoked (revoked certificates only).
    pub revocation_reason: Option<RevocationReason>,
    /// When it is planned to be renewed and why: its order's plan, filled by the service
    /// when the certificate is its order's current one and will be renewed; `None`
    /// otherwise (and as stored).
    pub renewal: Option<RenewalPlan>,
    /// Why the last renewal of its order failed, with `renewal`.
    pub renewal_error: Option<String>,
}

impl Certificate {
    /// True when it was revoked because its key is compromised: that key must never be
    /// used again, not even by a renewal of an order placed with an uploaded key or CSR.
    #[must_use]
    pub fn key_compromised(&self) -> bool {
        self.status == CertificateStatus::Revoked
            && self.revocation_reason == Some(RevocationReason::KeyCompromise)
    }

    /// The leaf followed by its issuers.
    #[must_use]
    pub fn fullchain(&self) -> String {
        let mut full = self.info.leaf_pem.trim_end().to_owned();
        full.push('\n');
        if !self.info.chain_pem.trim().is_empty() {
            full.push_str(self.info.chain_pem.trim_end());
            full.push('\n');
        }
        full
    }
}

/// A certificate to be stored; the repository assigns the id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCertificate {
    /// The order it was issued for.
    pub order_id: OrderId,
    /// The user who owns it (the order's user).
    pub user_id: UserId,
    /// The ACME account it was issued through.
    pub account_id: AccountId,
    /// What was read from the issued chain.
    pub info: CertificateInfo,
    /// The private key, when the service generated it or the user uploaded it.
    pub key: Option<PrivateKeyPem>,
    /// The CSR the certificate was finalized with, PEM.
    pub csr: String,
    /// When it is stored.
    pub created_at: OffsetDateTime,
}
