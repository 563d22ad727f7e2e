//! Signed webhook delivery: the [`WebhookSender`] port over reqwest, signing each request
//! the way the Standard Webhooks convention does.
//!
//! Every request is a `POST` of a JSON body `{"type", "timestamp", "data"}` with three
//! headers:
//!
//! - `webhook-id`: `evt_<event id>`, the same on every attempt (receivers deduplicate on
//!   it: delivery is at least once);
//! - `webhook-timestamp`: the attempt's Unix time in seconds;
//! - `webhook-signature`: `v1,<base64 of HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>`.
//!
//! The secret is configured as `whsec_<base64>`; the HMAC key is the decoded bytes.
//!
//! Architecture invariant: secrets never reach logs or `Debug`; a redirect is not
//! followed (the signed request goes only where it was configured to go).

#![warn(missing_docs)]

use acmeport_domain::ports::{WebhookEndpoint, WebhookError, WebhookSender};
use acmeport_domain::{EventKind, StoredEvent};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use serde::Serialize;
use sha2::Sha256;
use std::fmt;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A webhook signing secret: the bytes of `whsec_<base64>`.
#[derive(Clone)]
pub struct WebhookSecret(SecretSlice<u8>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// The secret is not `whsec_` followed by base64 of at least 24 bytes.
#[derive(Debug, thiserror::Error)]
#[error("must be `whsec_` followed by the base64 of 24 to 64 random bytes")]
pub struct SecretError;

impl WebhookSecret {
    /// Parses `whsec_<base64>`.
    ///
    /// # Errors
    ///
    /// [`SecretError`] for anything else, or a key shorter than 24 bytes.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text.trim().strip_prefix(SECRET_PREFIX).ok_or(SecretError)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| SecretError)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(SecretError);
        }
        Ok(Self(SecretSlice::from(bytes)))
    }

    /// The `webhook-signature` value of a message: `v1,<base64 HMAC-SHA256>` over
    /// `<id>.<timestamp>.<body>`.
    #[must_use]
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret())
            .expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// True when one of the space-separated signatures of a `webhook-signature` header is
    /// this secret's signature of the message (compared in constant time), what a
    /// receiver checks.
    #[must_use]
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret())
            .expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        header.split(' ').any(|sig| {
            sig.strip_prefix("v1,")
                .and_then(|b64| STANDARD.decode(b64).ok())
                .is_some_and(|given| mac.clone().verify_slice(&given).is_ok())
        })
    }
}

/// One configured endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Where the events are posted.
    pub url: url::Url,
    /// The signing secret (`whsec_<base64>` in the Standard Webhooks convention).
    pub secret: WebhookSecret,
    /// The events it wants; `None` means all.
    pub events: Option<Vec<EventKind>>,
}

/// The webhook body.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    /// RFC 3339: when the event happened.
    timestamp: String,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    event_id: i64,
    user_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced_certificate_id: Option<i64>,
    domains: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_after: Option<String>,
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// The JSON body sent for `event`.
#[must_use]
pub fn body(event: &StoredEvent) -> Vec<u8> {
    let e = &event.event;
    let body = Body {
        kind: e.kind.as_str(),
        timestamp: rfc3339(event.created_at),
        data: Data {
            event_id: event.id.get(),
            user_id: e.user_id.get(),
            order_id: e.order_id.map(|o| o.get()),
            certificate_id: e.certificate_id.map(|c| c.get()),
            replaced_certificate_id: e.replaced_certificate_id.map(|c| c.get()),
            domains: &e.domains,
            error: e.error.as_deref(),
            reason: e.reason.map(|r| r.as_str()),
            days: e.days,
            not_after: e.not_after.map(rfc3339),
        },
    };
    serde_json::to_vec(&body).expect("the body serializes")
}

/// The `webhook-id` of an event: the same on every attempt.
#[must_use]
pub fn message_id(event: &StoredEvent) -> String {
    format!("evt_{}", event.id)
}

/// Sends events to the configured endpoints over HTTP(S).
pub struct HttpWebhookSender {
    endpoints: Vec<Endpoint>,
    client: reqwest::Client,
}

impl fmt::Debug for HttpWebhookSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpWebhookSender")
            .field("endpoints", &self.endpoints.len())
            .finish_non_exhaustive()
    }
}

/// The HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client")]
pub struct ClientError(#[source] reqwest::Error);

impl HttpWebhookSender {
    /// A sender to `endpoints`, each request bounded by `timeout`.
    ///
    /// # Errors
    ///
    /// [`ClientError`] when the TLS client cannot be built.
    pub fn new(endpoints: Vec<Endpoint>, timeout: Duration) -> Result<Self, ClientError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("acmeport/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError)?;
        Ok(Self { endpoints, client })
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    fn endpoints(&self) -> Vec<WebhookEndpoint> {
        self.endpoints
            .iter()
            .map(|e| WebhookEndpoint {
                url: e.url.to_string(),
                events: e.events.clone(),
            })
            .collect()
    }

    async fn send(&self, endpoint: &str, event: &StoredEvent) -> Result<(), WebhookError> {
        let target = self
            .endpoints
            .iter()
            .find(|e| e.url.as_str() == endpoint)
            .ok_or_else(|| WebhookError::Transport("the endpoint is not configured".into()))?;
        let body = body(event);
        let id = message_id(event);
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = target.secret.sign(&id, timestamp, &body);
        let response = self
            .client
            .post(target.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                // reqwest's text names the URL, which is configuration, not a secret.
                WebhookError::Transport(e.without_url().to_string())
            })?;
        let status = response.status();
        if status.is_success() {
            tracing::debug!(event.id = %event.id, endpoint, "webhook delivered");
            Ok(())
        } else {
            Err(WebhookError::Status {
                status: status.as_u16(),
                retry_after: retry_after(&response),
            })
        }
    }
}

#[cfg(test)]
mod tests;
