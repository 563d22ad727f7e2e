//! Why the application could not start or run.

use crate::config::ConfigError;
use acmeport_domain::BoxError;
use std::net::SocketAddr;

/// Start-up failed; the message names the key, address or adapter at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr} (`{key}`)")]
    Bind {
        key: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The database cannot be opened, reached or migrated.
    #[error("storage: {what}")]
    Storage {
        what: String,
        #[source]
        source: BoxError,
    },
    /// An adapter is not available in this build yet.
    #[error("not wired yet: {0}")]
    NotWired(&'static str),
    /// A user-facing operation of the service failed (for example `user add`).
    /// Transparent, so that the command line prints its text once, not again as its
    /// own source.
    #[error(transparent)]
    Service(BoxError),
}
