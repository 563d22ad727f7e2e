//! The pure core of acmeport: models, the order state machine, ports and use cases.
//!
//! This crate performs no I/O. Everything that touches the outside world (ACME servers,
//! DNS, databases, HTTP) sits behind the traits in [`ports`] and is implemented by the
//! adapter crates. The [`service::Acmeport`] type is the one entry point that the HTTP
//! layer and library users call.

#![warn(missing_docs)]

pub mod metrics;
pub mod models;
pub mod ports;
pub mod service;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use models::*;
pub use service::{
    Acmeport, CreateOrder, DnsProviders, Outcome, Ports, PropagationSettings, RegisterAccount,
    RenewalSettings, Settings,
};

/// A boxed error from an adapter, kept as the source of a port error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
