//! Settings of the RFC 2136 provider.

use acmeport_domain::Secret;
use std::net::SocketAddr;
use std::time::Duration;

/// How to reach and authenticate to the primary server.
#[derive(Debug, Clone)]
pub struct Rfc2136Settings {
    /// The primary server that accepts updates, `addr:port`.
    pub server: SocketAddr,
    /// The zone to update; `None` asks the server for the SOA of each name.
    pub zone: Option<String>,
    /// The TSIG key name, as configured on the server (`acmeport` in `key "acmeport" {..}`).
    pub key_name: String,
    /// The TSIG secret (HMAC-SHA256), base64 as in BIND's `secret "..."`.
    pub secret: Secret,
    /// TTL of the records written.
    pub ttl: u32,
    /// Limit for one exchange with the server (connect, send, answer).
    pub timeout: Duration,
}

impl Rfc2136Settings {
    /// Settings with the defaults: zone discovered, TTL 60 s, 10 s timeout.
    #[must_use]
    pub fn new(server: SocketAddr, key_name: impl Into<String>, secret: Secret) -> Self {
        Self {
            server,
            zone: None,
            key_name: key_name.into(),
            secret,
            ttl: 60,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Settings that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The zone is not a domain name.
    #[error("invalid zone name {0:?}")]
    Zone(String),
    /// The key name is not a domain name.
    #[error("invalid TSIG key name {0:?}")]
    KeyName(String),
    /// The secret is not base64 or is empty (its text is deliberately not shown).
    #[error("the TSIG secret is not valid base64")]
    Secret,
}
