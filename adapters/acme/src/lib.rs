//! The ACME protocol (RFC 8555) over instant-acme: [`InstantAcmeClient`] implements the
//! domain port [`acmeport_domain::ports::AcmeClient`].
//!
//! Architecture invariants:
//! - Only this crate knows instant-acme. The domain's `AccountCredentials` hold
//!   instant-acme's own `AccountCredentials` serialized as JSON, opaque to everyone else.
//! - Every operation is idempotent, so a resumed order or a retried call never answers a
//!   challenge or finalizes twice: state is read from the server first.
//! - Problem documents leave this crate as readable text (`type: detail; ...`), never as
//!   library types; credentials never appear in logs or errors.

#![warn(missing_docs)]

mod account_keys;
mod client;
mod config;
mod guard;
mod https;
mod problem;

pub use client::InstantAcmeClient;
pub use config::{AcmeClientConfig, AcmeConfigError};
