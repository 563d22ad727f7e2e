//! The HTTP front end of acmeport: warp routes for the whole REST contract
//! (`shared/API.md` and `seed/orders.md`), HTTP Basic and token authentication, the
//! OpenAPI document, health and readiness probes, and the server loop.
//!
//! Architecture invariant: this is the only crate that knows about JSON and HTTP status
//! codes. Request bodies are parsed into DTOs (`dto`), turned into domain values with
//! `try_into_domain()`, handed to [`acmeport_domain::Acmeport`], and the result is turned
//! back into response DTOs. Every failure becomes an [`ApiError`], and
//! [`ApiError::status`] is the one place that decides status codes.
//!
//! The HTTP-01 challenge responder lives in [`challenge`] and is served on its own
//! listener.

#![warn(missing_docs)]

mod auth;
mod body;
pub mod challenge;
mod config;
mod docs;
mod dto;
mod error;
mod handlers;
mod limits;
mod login_guard;
mod metrics;
mod openapi;
mod pagination;
mod readiness;
mod reply;
mod routes;

pub use config::{HttpConfig, PublicUrl, PublicUrlError};
pub use error::ApiError;
pub use limits::ListenerLimits;
pub use login_guard::{LoginLimits, LoginRefused};
pub use metrics::{metrics_routes, serve_metrics, MetricsEndpoint, MetricsSource};
pub use openapi::openapi;
pub use readiness::{NotReady, Readiness};
pub use routes::{routes, serve, serve_with_limits, Api};
