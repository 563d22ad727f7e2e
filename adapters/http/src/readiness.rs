//! The readiness probe behind `GET /readyz`, implemented by the application over its
//! storage so that this crate needs no database.

use async_trait::async_trait;

/// Why the service cannot take traffic; logged, never sent.
#[derive(Debug, thiserror::Error)]
#[error("not ready: {reason}")]
pub struct NotReady {
    reason: String,
    #[source]
    source: Option<acmeport_domain::BoxError>,
}

impl NotReady {
    /// Not ready, for the reason given, caused by `source` when there is one.
    #[must_use]
    pub fn new(reason: impl Into<String>, source: Option<acmeport_domain::BoxError>) -> Self {
        Self {
            reason: reason.into(),
            source,
        }
    }
}

/// Tells whether the service can serve requests (for example: the database answers).
#[async_trait]
pub trait Readiness: Send + Sync {
    /// Checks the dependencies; should return within a second or two.
    ///
    /// # Errors
    ///
    /// [`NotReady`] naming what is missing.
    async fn check(&self) -> Result<(), NotReady>;
}
