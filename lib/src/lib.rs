//! acmeport as a library: TLS certificates from ACME certificate authorities (Let's
//! Encrypt, ZeroSSL, a private step-ca, ...) inside your own Rust program.
//!
//! A [`Builder`] wires every part with a default (SQLite storage, rcgen keys, the system
//! clock, a propagation check against every authoritative nameserver, Let's Encrypt), so
//! that a program sets only what differs: its DNS provider, its directory, its storage.
//! The [`Engine`] it builds runs its background work (the order workflow and renewals)
//! as tasks on your tokio runtime ([`Engine::start`], stopped with [`Background::stop`]),
//! and hands out certificates as a future ([`Engine::certificate`]) or a stream of
//! [`OrderEvent`]s ([`Engine::order_events`]).
//!
//! # Issuing a certificate
//!
//! ```no_run
//! use acmeport::{Builder, OrderRequest};
//! use std::time::Duration;
//!
//! # #[cfg(feature = "route53")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Builder::new()
//!     .directory(acmeport::LETS_ENCRYPT_STAGING)?
//!     .sqlite("/var/lib/my-program/acme.db")
//!     .route53("aws", acmeport::route53::Route53Settings::default())?
//!     .default_dns_provider("aws")?
//!     .build()
//!     .await?;
//! let background = engine.start();
//!
//! let account = engine.register_account("admin@example.com").await?;
//! let order = engine
//!     .order(OrderRequest::new(&account, &["example.com", "*.example.com"])?)
//!     .await?;
//! let issued = engine.certificate(order.id()).await?;
//! std::fs::write("fullchain.pem", issued.fullchain_pem())?;
//! std::fs::write("privkey.pem", issued.key_pem().unwrap_or_default())?;
//!
//! // Keep the engine running to renew; stop gracefully on shutdown.
//! background.stop(Duration::from_secs(30)).await;
//! # Ok(()) }
//! ```
//!
//! Everything an order does is committed step by step: a program that stops (or
//! crashes) in the middle resumes the order at its next start, from the step it had
//! finished. Certificates are renewed on their own (`auto_renew`, on by default) while
//! the background tasks run; an order's stream of events reports the renewal's result.
//!
//! # DNS providers
//!
//! DNS-01 records go through named provider instances: the built-in kinds
//! ([`Builder::route53`], [`Builder::cloudflare`], [`Builder::rfc2136`], each behind the
//! feature of the same name) or your own implementation of [`DnsProvider`]
//! ([`Builder::dns_provider`]). A provider adds and removes exactly the TXT value it is
//! given (`present`, `cleanup`) and leaves other values of the same name alone; presenting
//! twice and cleaning up what is gone must both succeed. See
//! `examples/custom_dns_provider.rs`.
//!
//! # HTTP-01
//!
//! [`Engine::http01`] is the challenge responder: a plain async function from a request
//! path to an [`http::Response`] for axum, hyper or any other server
//! ([`Http01Responder::respond`]), and a warp filter with feature `http`
//! ([`Http01Responder::warp_filter`]). Mount it on port 80 of every name you order with
//! [`OrderRequest::http01`].
//!
//! # Users are optional
//!
//! The engine's shortcuts ([`Engine::register_account`], [`Engine::order`], ...) act as
//! one owner, [`OWNER_USERNAME`], created on first use, disabled and without a usable
//! password: nobody can log in as it. Programs that serve several people use the domain
//! service ([`Engine::service`]) with their users, grants and API keys, and may serve the
//! REST API of the `acmeport` server ([`Engine::api`], feature `http`).
//!
//! # Features
//!
//! | feature | what | default |
//! |---------|------|---------|
//! | `sqlite` | SQLite storage (files, temporary databases) | on |
//! | `postgres` | PostgreSQL storage, for several instances | on |
//! | `route53` | the Route53 provider (the AWS SDK) | on |
//! | `cloudflare` | the Cloudflare provider | on |
//! | `rfc2136` | the RFC 2136 provider (BIND, Knot, PowerDNS) | on |
//! | `http` | the REST API and the HTTP-01 warp filter (warp) | on |
//!
//! `default-features = false, features = ["sqlite", "rfc2136"]` compiles neither the AWS
//! SDK nor warp.

#![warn(missing_docs)]

mod background;
mod builder;
mod dns;
mod engine;
mod http01;

#[cfg(feature = "http")]
mod api;

pub use background::{worker_id, Background, StopHandle};
pub use builder::{system_resolvers, BuildError, Builder, Storage};
pub use dns::{DnsSetup, DnsSetupError};
pub use engine::{
    Engine, EngineError, IssuedCertificate, OrderEvent, OrderRequest, OWNER_USERNAME,
};
pub use http01::Http01Responder;

/// Let's Encrypt's staging directory: untrusted certificates, generous rate limits; try
/// here first.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// Let's Encrypt's production directory (the default).
pub const LETS_ENCRYPT: &str = acmeport_domain::DirectoryUrl::LETS_ENCRYPT;

// The domain: its models, ports and use cases.
pub use acmeport_domain as domain;
pub use acmeport_domain::ports::{DnsError, DnsProvider};
pub use acmeport_domain::{
    AccountId, AcmeAccount, Acmeport, Certificate, CertificateId, ChallengeKind, DomainName,
    KeySpec, Order, OrderId, OrderStatus, OrderStep, ProviderName, Secret, Settings, TxtRecord,
};

/// The adapters' settings, for [`Builder`] and [`DnsSetup`].
pub use acmeport_acme::AcmeClientConfig;
pub use acmeport_dns_check::PropagationSettings as PropagationCheckSettings;
pub use acmeport_store::KeyCipher;

/// The Route53 provider's settings (feature `route53`).
#[cfg(feature = "route53")]
pub mod route53 {
    pub use acmeport_route53::{Route53Settings, StaticCredentials};
}

/// The Cloudflare provider's settings (feature `cloudflare`).
#[cfg(feature = "cloudflare")]
pub mod cloudflare {
    pub use acmeport_cloudflare::CloudflareSettings;
}

/// The RFC 2136 provider's settings (feature `rfc2136`).
#[cfg(feature = "rfc2136")]
pub mod rfc2136 {
    pub use acmeport_rfc2136::Rfc2136Settings;
}

/// The REST API (feature `http`): [`Engine::api`] builds it.
#[cfg(feature = "http")]
pub mod http_api {
    pub use acmeport_http::{
        serve_with_limits, Api, HttpConfig, ListenerLimits, LoginLimits, PublicUrl,
    };
}
