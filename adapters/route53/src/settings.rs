//! Settings of the Route53 provider, with keys that never print.

use acmeport_domain::Secret;
use std::time::Duration;

/// How to reach Route53 and which zone to write to.
#[derive(Debug, Clone)]
pub struct Route53Settings {
    /// Signing region; `None` takes the default chain's, else `us-east-1`.
    pub region: Option<String>,
    /// Another endpoint than AWS's (moto, LocalStack).
    pub endpoint_url: Option<String>,
    /// Static keys; `None` uses the AWS default credential chain.
    pub credentials: Option<StaticCredentials>,
    /// The hosted zone id (`Z123...`); `None` finds the zone by walking up the name.
    pub hosted_zone_id: Option<String>,
    /// TTL of new TXT sets.
    pub ttl: i64,
    /// How long to wait for `GetChange` to report `INSYNC`.
    pub insync_timeout: Duration,
    /// Pause between `GetChange` polls.
    pub insync_poll: Duration,
    /// Attempts per request, the first included, for throttling and 5xx answers.
    pub max_attempts: u32,
    /// First retry delay; it doubles up to `max_backoff` (with jitter, by the SDK).
    pub initial_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// The deadline of one attempt of one API call (connect, answer and body); an attempt
    /// past it fails as a transient error and counts against `max_attempts`.
    pub request_timeout: Duration,
}

impl Default for Route53Settings {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            credentials: None,
            hosted_zone_id: None,
            ttl: 60,
            insync_timeout: Duration::from_secs(180),
            insync_poll: Duration::from_secs(2),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// An access key pair from configuration.
#[derive(Debug, Clone)]
pub struct StaticCredentials {
    /// The AWS access key id.
    pub access_key_id: String,
    /// The AWS secret access key.
    pub secret_access_key: Secret,
    /// The session token of temporary credentials, if any.
    pub session_token: Option<Secret>,
}
