//! The errors of the use cases: one enum per use case, business variants first.

use crate::models::{IdentifiersError, TransitionError};
use crate::ports::{AcmeError, CsrError, HashError, RepoError};

/// Authentication failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password, or a bad or expired token; deliberately one variant.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error(transparent)]
    /// Storage failed.
    Repo(#[from] RepoError),
}

/// Creating a user failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("only an admin may create users")]
    /// The caller is not an admin.
    Forbidden,
    #[error("username `{0}` is taken")]
    /// The username is taken; names it.
    Duplicate(String),
    #[error(transparent)]
    /// Hashing the password failed.
    Hash(#[from] HashError),
    #[error(transparent)]
    /// Storage failed.
    Repo(RepoError),
}

/// A lookup by id failed. Absent and not-yours are the same answer on purpose, so that
/// ids of other users cannot be probed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("{0} not found")]
    /// Absent or not the caller's; names what.
    NotFound(&'static str),
    #[error(transparent)]
    /// Storage failed.
    Repo(#[from] RepoError),
}

/// Registering an ACME account failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterAccountError {
    /// The directory is not one the configuration allows for this user.
    #[error("server: `{0}` is not an allowed ACME directory")]
    DirectoryNotAllowed(String),
    /// The ACME server refused or could not be reached.
    #[error(transparent)]
    Acme(#[from] AcmeError),
    /// A per-user quota was hit.
    #[error(transparent)]
    Quota(super::QuotaExceeded),
    #[error(transparent)]
    /// Storage failed.
    Repo(#[from] RepoError),
}

/// Deregistering an ACME account failed.
#[derive(Debug, thiserror::Error)]
pub enum DeregisterAccountError {
    #[error("account not found")]
    /// The account does not exist or belongs to another user.
    NotFound,
    #[error("account is already deactivated")]
    /// The account was deactivated before.
    AlreadyDeactivated,
    #[error(transparent)]
    /// The ACME server refused or could not be reached.
    Acme(#[from] AcmeError),
    #[error(transparent)]
    /// Storage failed.
    Repo(#[from] RepoError),
}

/// Creating an order failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateOrderError {
    /// A name is not covered by the caller's grants; names it.
    #[error("domain `{0}` is not granted to this user")]
    NotGranted(String),
    /// The account does not exist or belongs to another user.
    #[error("account not found")]
    AccountNotFound,
    #[error("account is deactivated")]
    /// The account was deactivated.
    AccountDeactivated,
    #[error("wildcard names need `type: dns`")]
    /// A wildcard name can only be validated with DNS-01.
    WildcardNeedsDns,
    #[error("unknown DNS provider `{name}`; configured: {known}", known = if .known.is_empty() { "none".to_owned() } else { .known.join(", ") })]
    /// The order names a DNS provider instance that is not configured.
    UnknownProvider {
        /// The name asked for.
        name: String,
        /// The configured instances.
        known: Vec<String>,
    },
    #[error("the CSR names {csr:?} differ from the order's domains")]
    /// The uploaded CSR's names differ from the order's identifiers; lists the CSR's.
    CsrMismatch {
        /// The DNS names the CSR holds.
        csr: Vec<String>,
    },
    #[error("csr: {0}")]
    /// The uploaded CSR cannot be read or is badly signed; says why.
    InvalidCsr(String),
    #[error("key: {0}")]
    /// The uploaded private key is not usable; says why.
    InvalidKey(String),
    #[error("domains: {0}")]
    /// The identifiers are not acceptable.
    Identifiers(#[from] IdentifiersError),
    /// A per-user quota was hit.
    #[error(transparent)]
    Quota(super::QuotaExceeded),
    #[error(transparent)]
    /// Storage failed.
    Repo(#[from] RepoError),
    #[error("key check failed")]
    /// Checking an uploaded key or CSR failed for a reason of our own.
    Internal(#[source] CsrError),
}

impl From<super::quotas::QuotaFailure> for CreateOrderError {
    fn from(f: super::quotas::QuotaFailure) -> Self {
        match f {
            super::quotas::QuotaFailure::Exceeded(q) => Self::Quota(q),
            super::quotas::QuotaFailure::Repo(r) => Self::Repo(r),
        }
    }
}

impl From<super::quotas::QuotaFailure> for ReorderError {
    fn from(f: super::quotas::QuotaFailure) -> Self {
        match f {
            super::quotas::QuotaFailure::Exceeded(q) => Self::Quota(q),
            super::quotas::QuotaFailure::Repo(r) => Self::Repo(r),
        }
    }
}

impl From<super::quotas::QuotaFailure> for RegisterAccountError {
    fn from(f: super::quotas::QuotaFailure) -> Self {
        match f {
            super::quotas::QuotaFailure::Exceeded(q) => Self::Quota(q),
            super::quotas::QuotaFailure::Repo(r) => Self::Repo(r),
        }
    }
}

/// Reordering (reissuing) failed.
#[derive(Debug, thiserror::Error)]
pub enum ReorderError {
    #[error("order not found")]
    /// The order does not exist or belongs to another user.
    NotFound,
    /// A name is not (any longer) covered by the caller's grants; names it.
    #[error("domain `{0}` is not granted to this user")]
    NotGranted(String),
    #[error("the order is still being processed")]
    /// The order is still pending: one attempt at a time.
    StillPending,
    #[error("account is deactivated")]
    /// The order's account was deactivated.
    AccountDeactivated,
    /// A per-user quota was hit.
    #[error(transparent)]
    Quota(super::QuotaExceeded),
    #[error(transparent)]
    /// Storage failed.
    Repo(#[from] RepoError),
}

/// Revoking or purging a certificate failed.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("certificate not found")]
    /// The certificate does not exist or belongs to another user.
    NotFound,
    #[error("certificate is already revoked")]
    /// The certificate was revoked before.
    AlreadyRevoked,
    #[error(transparent)]
    /// The ACME server refused the revocation or could not be reached.
    Acme(#[from] AcmeError),
    #[error(transparent)]
    /// Storage failed.
    Repo(#[from] RepoError),
}

/// Working an order stopped without finishing it. Business failures do not show up here:
/// they end the order `invalid` with its reason.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// Another worker took the order over; this one stopped touching it.
    #[error("lease lost")]
    LeaseLost,
    /// The order was changed by an API request while it was worked: this worker's copy is
    /// stale. The worker lets it go; it is worked again from its fresh state.
    #[error("the order changed while it was worked")]
    Stale,
    /// Storage failed; the order stays pending and is resumed later.
    #[error(transparent)]
    Repo(RepoError),
    /// A bug: a step out of turn.
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

impl From<RepoError> for WorkError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::LeaseLost => Self::LeaseLost,
            RepoError::Conflict(_) => Self::Stale,
            other => Self::Repo(other),
        }
    }
}
