//! DNS providers spoken over small HTTP APIs: a generic `webhook` (lego's `httpreq`
//! convention), the PowerDNS Authoritative API and acme-dns.
//!
//! They live in one crate because they share everything below the API itself: one
//! reqwest client setup, one translation of HTTP answers into [`DnsError`]s (401/403 are
//! credentials, 429 and 5xx are temporary, the rest carries the server's own reason),
//! and the domain's [`Secret`](acmeport_domain::Secret) for their keys. None of them
//! pulls an SDK, so separate crates would only add manifests and link units.
//!
//! [`DnsError`]: acmeport_domain::ports::DnsError

#![warn(missing_docs)]

mod acme_dns;
mod http;
mod powerdns;
mod webhook;

pub use acme_dns::{AcmeDnsAccount, AcmeDnsProvider, AcmeDnsSettings};
pub use http::SettingsError;
pub use powerdns::{PowerDnsProvider, PowerDnsSettings};
pub use webhook::{WebhookAuth, WebhookProvider, WebhookSettings};
