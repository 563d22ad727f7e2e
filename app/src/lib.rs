//! The acmeport server: configuration, its translation into the `acmeport` facade's
//! builder, the listeners and the command line. `main.rs` only parses arguments and
//! calls [`cli::run`]; the workers and the wiring of the adapters are the facade's.
//!
//! Architecture invariant: no business logic lives here. [`Application::build`] is what
//! `acmeport serve` runs and what the end-to-end tests start.

pub mod application;
pub mod cli;
pub mod config;
pub mod dns;
pub mod error;
pub mod keys;
pub mod lifecycle;
pub mod telemetry;
pub mod wiring;

pub use application::{Application, StopHandle};
pub use config::{Config, ConfigError};
pub use error::StartError;
