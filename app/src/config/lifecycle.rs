//! The `[lifecycle]`, `[[webhooks]]` and `[metrics]` sections: expiry warnings, signed
//! webhook endpoints and their delivery, the Prometheus endpoint.

use super::{positive, Config, ConfigError, Secret};
use acmeport_domain::service::{DeliveryPolicy, LifecycleSettings};
use acmeport_domain::EventKind;
use acmeport_webhooks::{Endpoint, WebhookSecret};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// Expiry warnings and webhook delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleSection {
    /// `certificate.expiring` is raised this many days before `not_after` (once per
    /// certificate and threshold).
    pub expiry_warning_days: Vec<u32>,
    /// How often the certificates are scanned for expiry warnings.
    pub expiry_scan_interval_secs: u64,
    pub delivery: DeliverySection,
}

impl Default for LifecycleSection {
    fn default() -> Self {
        Self {
            expiry_warning_days: vec![14, 7, 1],
            expiry_scan_interval_secs: 3600,
            delivery: DeliverySection::default(),
        }
    }
}

/// How webhook deliveries are retried.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySection {
    /// Attempts before an event is given up (`failed`).
    pub max_attempts: u32,
    /// The pause after the first failure; doubled after each further one.
    pub backoff_secs: u64,
    /// The longest pause between attempts.
    pub max_backoff_secs: u64,
    /// How often the outbox is checked for due events.
    pub poll_interval_secs: u64,
    /// The time one request to an endpoint may take.
    pub timeout_secs: u64,
}

impl Default for DeliverySection {
    fn default() -> Self {
        let policy = DeliveryPolicy::default();
        Self {
            max_attempts: policy.max_attempts,
            backoff_secs: policy.backoff.as_secs(),
            max_backoff_secs: policy.max_backoff.as_secs(),
            poll_interval_secs: 5,
            timeout_secs: 10,
        }
    }
}

/// One `[[webhooks]]` endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// Where events are POSTed (http or https).
    pub url: String,
    /// `whsec_<base64>`: the HMAC key of the `webhook-signature` header.
    pub secret: Secret,
    /// The event types to send; all when absent.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// `GET /metrics` (Prometheus text format).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Serves `/metrics` on the API listener to requests with `Authorization: Bearer
    /// <token>`.
    pub token: Option<Secret>,
    /// Serves `/metrics` on a listener of its own (for a private interface); the token,
    /// when set, is required there too.
    pub listen: Option<SocketAddr>,
}

/// The shortest metrics token accepted.
const MIN_TOKEN_LEN: usize = 16;

impl Config {
    /// The lifecycle settings of the domain.
    ///
    /// # Errors
    ///
    /// Naming the `lifecycle.*` key that is invalid.
    pub fn lifecycle_settings(&self) -> Result<LifecycleSettings, ConfigError> {
        let l = &self.lifecycle;
        if l.expiry_warning_days.contains(&0) {
            return Err(ConfigError::invalid(
                "lifecycle.expiry_warning_days",
                "thresholds must be at least 1 day",
            ));
        }
        positive(
            "lifecycle.expiry_scan_interval_secs",
            l.expiry_scan_interval_secs,
        )?;
        let d = &l.delivery;
        if d.max_attempts == 0 {
            return Err(ConfigError::invalid(
                "lifecycle.delivery.max_attempts",
                "must be greater than 0",
            ));
        }
        positive(
            "lifecycle.delivery.poll_interval_secs",
            d.poll_interval_secs,
        )?;
        let timeout = positive("lifecycle.delivery.timeout_secs", d.timeout_secs)?;
        let backoff = positive("lifecycle.delivery.backoff_secs", d.backoff_secs)?;
        let max_backoff = positive("lifecycle.delivery.max_backoff_secs", d.max_backoff_secs)?;
        let defaults = DeliveryPolicy::default();
        Ok(LifecycleSettings {
            expiry_warning_days: l.expiry_warning_days.clone(),
            delivery: DeliveryPolicy {
                max_attempts: d.max_attempts,
                backoff,
                max_backoff: max_backoff.max(backoff),
                // A claimed batch must be sent before its lease lapses.
                lease: defaults
                    .lease
                    .max(timeout * defaults.batch * (self.webhooks.len().max(1) as u32 + 1)),
                batch: defaults.batch,
            },
        })
    }

    /// The configured webhook endpoints.
    ///
    /// # Errors
    ///
    /// Naming the `webhooks[i].*` key that is invalid.
    pub fn webhook_endpoints(&self) -> Result<Vec<Endpoint>, ConfigError> {
        self.webhooks
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let url = url::Url::parse(&w.url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                    .ok_or_else(|| {
                        ConfigError::invalid(format!("webhooks[{i}].url"), "must be an http(s) URL")
                    })?;
                let secret = WebhookSecret::parse(w.secret.expose())
                    .map_err(|e| ConfigError::invalid(format!("webhooks[{i}].secret"), e))?;
                let events = w
                    .events
                    .as_ref()
                    .map(|names| {
                        names
                            .iter()
                            .map(|n| {
                                EventKind::from_name(n).ok_or_else(|| {
                                    let known: Vec<_> =
                                        EventKind::ALL.iter().map(|k| k.as_str()).collect();
                                    ConfigError::invalid(
                                        format!("webhooks[{i}].events"),
                                        format!(
                                            "unknown event `{n}`, expected one of {}",
                                            known.join(", ")
                                        ),
                                    )
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .transpose()?;
                Ok(Endpoint {
                    url,
                    secret,
                    events,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()
            .and_then(|endpoints| {
                for (i, e) in endpoints.iter().enumerate() {
                    if endpoints[..i].iter().any(|o| o.url == e.url) {
                        return Err(ConfigError::invalid(
                            format!("webhooks[{i}].url"),
                            "configured twice",
                        ));
                    }
                }
                Ok(endpoints)
            })
    }

    /// Checks `[metrics]`.
    ///
    /// # Errors
    ///
    /// A token shorter than 16 bytes.
    pub fn check_metrics(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.metrics.token {
            if token.expose().len() < MIN_TOKEN_LEN {
                return Err(ConfigError::invalid(
                    "metrics.token",
                    format!("must be at least {MIN_TOKEN_LEN} bytes"),
                ));
            }
        }
        Ok(())
    }

    /// How often the webhook outbox is polled.
    #[must_use]
    pub fn delivery_poll(&self) -> Duration {
        Duration::from_secs(self.lifecycle.delivery.poll_interval_secs.max(1))
    }

    /// The request timeout of webhook deliveries.
    #[must_use]
    pub fn delivery_timeout(&self) -> Duration {
        Duration::from_secs(self.lifecycle.delivery.timeout_secs.max(1))
    }

    /// How often certificates are scanned for expiry warnings.
    #[must_use]
    pub fn expiry_scan_interval(&self) -> Duration {
        Duration::from_secs(self.lifecycle.expiry_scan_interval_secs.max(1))
    }
}
