//! Configuration of the ACME client: trusted roots, HTTP timeouts and retries. Waiting
//! for the CA is the workflow's business (it polls through due times).

use std::time::Duration;

/// How the ACME client connects and how long it waits.
#[derive(Debug, Clone)]
pub struct AcmeClientConfig {
    /// Extra trusted root certificates, each entry PEM text holding one or more
    /// certificates: a private CA's root, or Pebble's test root.
    pub extra_roots_pem: Vec<String>,
    /// Also trust the Mozilla roots (webpki-roots), as public CAs need. On by default; turn
    /// it off to trust only `extra_roots_pem`.
    pub webpki_roots: bool,
    /// The deadline of one HTTP request to the CA: connecting, sending, the response
    /// headers and the whole body. A server that answers slowly or trickles its body gets
    /// no longer; the request fails as a transient [`AcmeError::Transport`].
    ///
    /// [`AcmeError::Transport`]: acmeport_domain::ports::AcmeError::Transport
    pub request_timeout: Duration,
    /// The largest response body accepted from the CA, in bytes; a larger one fails the
    /// request as soon as it passes the cap (ACME answers and certificate chains are a few
    /// kilobytes).
    pub max_body_bytes: usize,
    /// How many times a whole operation is tried while the server keeps answering
    /// `badNonce`. instant-acme already sends each request up to three times; with a CA
    /// that rejects 30 % of nonces one request in 37 still fails, which is too often for
    /// a batch of orders, so idempotent operations are repeated as a whole.
    pub bad_nonce_attempts: u32,
    /// Hosts (names or IP addresses, as in their URLs) that may be reached although they
    /// are or resolve to loopback, private or link-local addresses: the configured
    /// directory of a private CA. Every other such address is refused before connecting,
    /// so that a user-supplied directory URL cannot reach the service's own network.
    pub allowed_private_hosts: Vec<String>,
}

impl Default for AcmeClientConfig {
    fn default() -> Self {
        Self {
            extra_roots_pem: Vec::new(),
            webpki_roots: true,
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            bad_nonce_attempts: 6,
            allowed_private_hosts: Vec::new(),
        }
    }
}

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcmeConfigError {
    /// An extra root is not a PEM certificate.
    #[error("extra root certificate #{index} cannot be used: {reason}")]
    Root {
        /// Its position in the configuration, from 0.
        index: usize,
        /// Why it cannot be used.
        reason: String,
    },
    /// Neither webpki roots nor extra roots are configured.
    #[error("no trusted root certificates: enable webpki roots or configure extra roots")]
    NoRoots,
    /// rustls refused the TLS setup.
    #[error("TLS setup failed")]
    Tls(#[source] rustls::Error),
}
