//! Errors of the store, and their translation into the domain's [`RepoError`] at the seam.

use crate::cipher::CipherError;
use acmeport_domain::ports::RepoError;
use sea_orm::{DbErr, SqlErr};
use std::fmt;

/// A failure connecting to or migrating the database (start-up only; the repository
/// operations answer [`RepoError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is neither `sqlite:` nor `postgres:`.
    #[error("unsupported database URL scheme `{0}`: use sqlite:// or postgres://")]
    UnsupportedUrl(String),
    /// The database cannot be reached or opened.
    #[error("cannot connect to the database")]
    Connect(#[source] DbErr),
    /// Applying the migrations failed.
    #[error("database migration failed")]
    Migrate(#[source] DbErr),
    /// Re-sealing the stored secrets failed in the database.
    #[error("re-sealing the stored secrets failed")]
    Reseal(#[source] DbErr),
}

/// A stored value that cannot be read back into a domain type (a bug or a hand-edited
/// database). The text names the column and why; it carries no secret.
#[derive(Debug, thiserror::Error)]
#[error("stored {column} is invalid: {reason}")]
pub struct Corrupt {
    column: &'static str,
    reason: String,
}

impl Corrupt {
    pub(crate) fn new(column: &'static str, reason: impl fmt::Display) -> Self {
        Self {
            column,
            reason: reason.to_string(),
        }
    }
}

impl From<Corrupt> for RepoError {
    fn from(e: Corrupt) -> Self {
        RepoError::Backend(Box::new(e))
    }
}

/// A stored secret cannot be opened (wrong master key) or sealed.
impl From<CipherError> for RepoError {
    fn from(e: CipherError) -> Self {
        RepoError::Backend(Box::new(e))
    }
}

/// Translates a database error: a unique-constraint failure becomes
/// [`RepoError::Duplicate`] naming `what`, a missing row [`RepoError::NotFound`], the rest
/// [`RepoError::Backend`].
pub(crate) fn translate(what: &'static str) -> impl Fn(DbErr) -> RepoError {
    move |e| match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => RepoError::Duplicate(what),
        _ => match e {
            DbErr::RecordNotFound(_) | DbErr::RecordNotUpdated => RepoError::NotFound(what),
            other => RepoError::Backend(Box::new(other)),
        },
    }
}

/// Wraps any database error as a backend failure (for operations where no business
/// error is possible).
pub(crate) fn backend(e: DbErr) -> RepoError {
    RepoError::Backend(Box::new(e))
}
