//! The `[workers]` and `[renewal]` sections: how orders are worked, retried and renewed.

use super::{positive, Config, ConfigError};
use acmeport_domain::{Backoff, RenewalSettings};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The background workers that run orders. A worker runs steps; an order that waits
/// (DNS propagation, the CA, a backoff) holds no worker, so a few workers carry any
/// number of orders in flight.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersSection {
    /// Worker tasks in this process (steps run at the same time); 0 serves the API only.
    pub count: usize,
    /// The longest an idle worker sleeps before looking for due orders (a new order, and
    /// the next known due time, wake it sooner).
    pub poll_interval_secs: u64,
    /// How long a claim on an order lasts without renewal.
    pub lease_secs: u64,
    /// How long transient failures of one step are retried before the order fails.
    pub retry_budget_secs: u64,
    /// The first pause between retries; it doubles up to `retry_backoff_max_secs`.
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_secs: u64,
    /// The longest one workflow step may take before it counts as a transient failure.
    pub step_deadline_secs: u64,
    /// The first pause between polls of a wait (DNS propagation, the CA); it doubles up to
    /// `poll_backoff_max_secs` (and `dns.propagation.interval_secs` for DNS).
    pub poll_backoff_ms: u64,
    pub poll_backoff_max_secs: u64,
    /// How many fresh ACME orders an attempt places after the CA's validation failed
    /// (a responder that was restarting, a vantage point that did not see the record yet)
    /// before the order ends `invalid`; 0 fails at the first failed validation.
    pub validation_retries: u32,
}

impl Default for WorkersSection {
    fn default() -> Self {
        Self {
            count: 8,
            poll_interval_secs: 5,
            lease_secs: 30,
            retry_budget_secs: 600,
            retry_backoff_ms: 2000,
            retry_backoff_max_secs: 60,
            step_deadline_secs: 120,
            poll_backoff_ms: 50,
            poll_backoff_max_secs: 5,
            validation_retries: 1,
        }
    }
}

/// Automatic renewal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RenewalSection {
    /// False: no certificate is renewed on its own (orders' `auto_renew` is ignored).
    pub enabled: bool,
    /// Renew when this fraction of a certificate's lifetime is left, unless the CA
    /// suggests a window through ACME Renewal Information.
    pub fraction_left: f64,
    /// Spread renewals over this fraction of the lifetime before the renewal time, so
    /// certificates issued together are not renewed in one burst.
    pub spread: f64,
    /// Ask the CA for renewal windows (RFC 9773 ARI) where its directory offers them.
    pub ari: bool,
    /// How often the window is fetched again when the CA sends no `Retry-After`.
    pub ari_poll_secs: u64,
    /// The first pause after a failed renewal; it doubles up to `backoff_max_secs`. A
    /// CA's `Retry-After` is a floor. Failed renewals are retried until the certificate
    /// expires.
    pub backoff_secs: u64,
    pub backoff_max_secs: u64,
}

impl Default for RenewalSection {
    fn default() -> Self {
        let domain = RenewalSettings::default();
        Self {
            enabled: domain.enabled,
            fraction_left: domain.fraction_left,
            spread: domain.spread,
            ari: domain.ari,
            ari_poll_secs: domain.ari_poll.as_secs(),
            backoff_secs: domain.backoff.initial.as_secs(),
            backoff_max_secs: domain.backoff.max.as_secs(),
        }
    }
}

fn fraction(key: &str, value: f64, max: f64) -> Result<f64, ConfigError> {
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(value)
    } else {
        Err(ConfigError::invalid(
            key,
            format!("must be a number greater than 0 and at most {max}"),
        ))
    }
}

impl Config {
    /// Checks the `[workers]` durations.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the key.
    pub fn workflow_check(&self) -> Result<(), ConfigError> {
        let w = &self.workers;
        positive("workers.retry_budget_secs", w.retry_budget_secs)?;
        positive("workers.retry_backoff_ms", w.retry_backoff_ms)?;
        positive("workers.retry_backoff_max_secs", w.retry_backoff_max_secs)?;
        positive("workers.step_deadline_secs", w.step_deadline_secs)?;
        // Each failed validation counts against the CA's failed-validation limit
        // (Let's Encrypt: 5 per account, name and hour).
        if w.validation_retries > 3 {
            return Err(ConfigError::invalid(
                "workers.validation_retries",
                "must be at most 3: each failed validation counts against the CA's limit",
            ));
        }
        positive("workers.poll_backoff_ms", w.poll_backoff_ms)?;
        positive("workers.poll_backoff_max_secs", w.poll_backoff_max_secs)?;
        Ok(())
    }

    /// The renewal settings of the domain.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the key.
    pub fn renewal_settings(&self) -> Result<RenewalSettings, ConfigError> {
        let r = &self.renewal;
        Ok(RenewalSettings {
            enabled: r.enabled,
            fraction_left: fraction("renewal.fraction_left", r.fraction_left, 1.0)?,
            spread: if r.spread == 0.0 {
                0.0
            } else {
                fraction("renewal.spread", r.spread, 0.5)?
            },
            ari: r.ari,
            ari_poll: positive("renewal.ari_poll_secs", r.ari_poll_secs)?,
            backoff: Backoff {
                initial: positive("renewal.backoff_secs", r.backoff_secs)?,
                max: positive("renewal.backoff_max_secs", r.backoff_max_secs)?
                    .max(Duration::from_secs(r.backoff_secs)),
            },
        })
    }
}
