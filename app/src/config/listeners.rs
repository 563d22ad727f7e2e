//! The `[api]` and `[challenge]` sections: the two listeners and their limits.

use super::{Config, ConfigError};
use acmeport_http::PublicUrl;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// The REST API listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    pub listen: SocketAddr,
    /// Base of the URLs in `Location` and `Link` headers; `http://<listen>` by default.
    pub public_url: Option<String>,
    /// Largest request body in bytes.
    pub body_limit: u64,
    pub header_read_timeout_secs: u64,
    pub body_read_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

impl Default for ApiSection {
    fn default() -> Self {
        let limits = acmeport_http::ListenerLimits::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            body_limit: acmeport_http::HttpConfig::DEFAULT_BODY_LIMIT,
            header_read_timeout_secs: limits.header_read_timeout.as_secs(),
            body_read_timeout_secs: limits.body_read_timeout.as_secs(),
            idle_timeout_secs: limits.idle_timeout.as_secs(),
            max_connections: limits.max_connections,
            max_connections_per_address: limits.max_connections_per_address,
        }
    }
}

impl ApiSection {
    /// The listener limits of the API.
    #[must_use]
    pub fn limits(&self) -> acmeport_http::ListenerLimits {
        listener_limits(
            self.header_read_timeout_secs,
            self.body_read_timeout_secs,
            self.idle_timeout_secs,
            self.max_connections,
            self.max_connections_per_address,
        )
    }
}

fn listener_limits(
    header: u64,
    body: u64,
    idle: u64,
    max: usize,
    per_address: usize,
) -> acmeport_http::ListenerLimits {
    acmeport_http::ListenerLimits {
        header_read_timeout: Duration::from_secs(header),
        body_read_timeout: Duration::from_secs(body),
        idle_timeout: Duration::from_secs(idle),
        max_connections: max,
        max_connections_per_address: per_address,
    }
}

/// The HTTP-01 challenge listener (port 80 in production).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChallengeSection {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub header_read_timeout_secs: u64,
    pub body_read_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

impl Default for ChallengeSection {
    /// Tighter than the API's: validators send one small GET and read a short answer.
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            header_read_timeout_secs: 5,
            body_read_timeout_secs: 5,
            idle_timeout_secs: 30,
            max_connections: 512,
            max_connections_per_address: 16,
        }
    }
}

impl ChallengeSection {
    /// The listener limits of the HTTP-01 responder.
    #[must_use]
    pub fn limits(&self) -> acmeport_http::ListenerLimits {
        listener_limits(
            self.header_read_timeout_secs,
            self.body_read_timeout_secs,
            self.idle_timeout_secs,
            self.max_connections,
            self.max_connections_per_address,
        )
    }
}

impl Config {
    /// The public base URL: configured, or `http://<listen address>`.
    ///
    /// # Errors
    ///
    /// When `api.public_url` is invalid.
    pub fn public_url(&self, bound: SocketAddr) -> Result<PublicUrl, ConfigError> {
        match &self.api.public_url {
            Some(url) => {
                PublicUrl::parse(url).map_err(|e| ConfigError::invalid("api.public_url", e))
            }
            None => PublicUrl::parse(&format!("http://{bound}"))
                .map_err(|e| ConfigError::invalid("api.listen", e)),
        }
    }
}
