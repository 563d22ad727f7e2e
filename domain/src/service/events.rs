//! Lifecycle events: listing them, warning before expiry, and delivering them to
//! webhooks through the durable outbox (at least once, with bounded retries).

use super::Acmeport;
use crate::metrics;
use crate::models::{
    Certificate, CertificateStatus, DeliveryState, DomainEvent, Listing, OrderStatus, Page,
    RenewalPlan, RenewalReason, StoredEvent, User, WorkerId,
};
use crate::ports::{RepoError, WebhookError, WebhookSender};
use std::collections::HashMap;
use std::time::Duration;

/// How webhook deliveries are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Attempts before an event is given up as `failed`.
    pub max_attempts: u32,
    /// The pause after the first failed attempt; doubled after each further one.
    pub backoff: Duration,
    /// The longest pause between two attempts.
    pub max_backoff: Duration,
    /// How long a claimed event is held by one instance.
    pub lease: Duration,
    /// Events claimed per pass.
    pub batch: u32,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
            // Longer than a batch can take (10 events, a few endpoints, 10 s timeouts),
            // so that another instance does not send the same events meanwhile.
            lease: Duration::from_secs(300),
            batch: 10,
        }
    }
}

impl DeliveryPolicy {
    /// The pause after the `attempts`-th failed attempt: `backoff * 2^(attempts-1)`,
    /// capped, or the endpoint's Retry-After when that is longer (still capped).
    #[must_use]
    pub fn pause(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let pause = self
            .backoff
            .saturating_mul(1_u32 << exp)
            .min(self.max_backoff);
        retry_after.map_or(pause, |r| r.max(pause).min(self.max_backoff))
    }
}

/// Settings of the certificate lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleSettings {
    /// `certificate.expiring` is raised this many days before `not_after`, once per
    /// certificate and threshold.
    pub expiry_warning_days: Vec<u32>,
    /// How webhook deliveries are retried.
    pub delivery: DeliveryPolicy,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            expiry_warning_days: vec![14, 7, 1],
            delivery: DeliveryPolicy::default(),
        }
    }
}

/// Certificates looked at per expiry scan.
const EXPIRY_SCAN_LIMIT: u32 = 1000;

impl Acmeport {
    /// A page of the user's events with their delivery state.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn list_events(
        &self,
        user: &User,
        page: Page,
    ) -> Result<Listing<StoredEvent>, RepoError> {
        self.ports.events.list(user.id, page).await
    }

    /// Fills in the renewal plan of certificates that will be renewed: valid, their
    /// order's current certificate, the order `valid` with `auto_renew`. The plan is the
    /// order's (the scheduler's, ARI or lifetime rule) or, before the scheduler has made
    /// one, the lifetime rule's.
    pub(super) async fn with_renewal_plans(
        &self,
        certificates: &mut [Certificate],
    ) -> Result<(), RepoError> {
        let mut auto_renew_current = HashMap::new();
        for certificate in certificates.iter_mut() {
            if certificate.renewal.is_some() || certificate.status != CertificateStatus::Valid {
                continue;
            }
            let id = certificate.order_id;
            if let std::collections::hash_map::Entry::Vacant(slot) = auto_renew_current.entry(id) {
                let order = self.ports.orders.get(id).await?.filter(|o| {
                    self.settings.renewal.enabled
                        && o.spec().auto_renew
                        && o.status() == OrderStatus::Valid
                });
                slot.insert(order);
            }
            let Some(order) = auto_renew_current.get(&id).and_then(Option::as_ref) else {
                continue;
            };
            if order.resolved_cert_id() != Some(certificate.id) {
                continue;
            }
            let plan = order.renewal_plan().cloned().unwrap_or_else(|| {
                let lifetime = certificate.info.not_after - certificate.info.not_before;
                let left = lifetime * self.settings.renewal.fraction_left;
                RenewalPlan {
                    at: certificate.info.not_after - time::Duration::seconds(left.whole_seconds()),
                    reason: RenewalReason::Lifetime,
                    window: None,
                }
            });
            certificate.renewal = Some(plan);
            certificate.renewal_error = order.state().progress.renewal_error.clone();
        }
        Ok(())
    }

    /// Raises `certificate.expiring` for every current valid certificate within one of
    /// the configured thresholds of its `not_after` (once per certificate and threshold;
    /// a certificate already replaced by a renewal is not warned about). Returns how many
    /// events were stored.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn scan_expiring(&self) -> Result<usize, RepoError> {
        let Some(widest) = self.settings.lifecycle.expiry_warning_days.iter().max() else {
            return Ok(0);
        };
        let now = self.now();
        let before = now + time::Duration::days(i64::from(*widest));
        let due = self
            .ports
            .certificates
            .valid_expiring(now, before, EXPIRY_SCAN_LIMIT)
            .await?;
        let mut stored = 0;
        for certificate in due {
            let Some(order) = self.ports.orders.get(certificate.order_id).await? else {
                continue;
            };
            if order.resolved_cert_id() != Some(certificate.id) {
                continue;
            }
            let left = certificate.info.not_after - now;
            for days in &self.settings.lifecycle.expiry_warning_days {
                if left <= time::Duration::days(i64::from(*days)) {
                    let event = DomainEvent::certificate_expiring(
                        certificate.user_id,
                        certificate.order_id,
                        certificate.id,
                        *days,
                        certificate.info.not_after,
                        certificate.info.names.clone(),
                    );
                    if self.ports.events.record(event).await? {
                        stored += 1;
                    }
                }
            }
        }
        Ok(stored)
    }

    /// One delivery pass: claims the due events and sends each to every endpoint that
    /// wants it and has not accepted it yet. An event every such endpoint accepted is
    /// `delivered`; otherwise it is retried with exponential backoff until
    /// `max_attempts`, then `failed`. Returns how many events were handled.
    ///
    /// An instance that dies after sending but before recording sends again once its
    /// lease lapses: delivery is at least once, and receivers deduplicate on the
    /// `webhook-id`, which stays the same across attempts.
    ///
    /// # Errors
    ///
    /// Storage failures (a lost lease is not one: that event is left to its new owner).
    pub async fn deliver_events(
        &self,
        worker: &WorkerId,
        sender: &dyn WebhookSender,
    ) -> Result<usize, RepoError> {
        let policy = &self.settings.lifecycle.delivery;
        let now = self.now();
        let lease_until = now + policy.lease;
        let claimed = self
            .ports
            .events
            .claim_due(worker, now, lease_until, policy.batch)
            .await?;
        let endpoints = sender.endpoints();
        let handled = claimed.len();
        for stored in claimed {
            let mut delivery = stored.delivery.clone();
            let wanted: Vec<_> = endpoints
                .iter()
                .filter(|e| e.wants(stored.event.kind))
                .filter(|e| !delivery.delivered_to.contains(&e.url))
                .collect();
            let mut errors = Vec::new();
            let mut retry_after = None;
            for endpoint in &wanted {
                match sender.send(&endpoint.url, &stored).await {
                    Ok(()) => {
                        metrics::webhook_delivery("delivered");
                        delivery.delivered_to.push(endpoint.url.clone());
                    }
                    Err(e) => {
                        metrics::webhook_delivery("failed");
                        if let WebhookError::Status {
                            retry_after: Some(r),
                            ..
                        } = &e
                        {
                            retry_after = Some(retry_after.map_or(*r, |p: Duration| p.max(*r)));
                        }
                        errors.push(format!("{}: {e}", endpoint.url));
                    }
                }
            }
            let finished = self.now();
            if wanted.is_empty() && delivery.delivered_to.is_empty() {
                delivery.state = DeliveryState::Skipped;
                delivery.next_attempt_at = None;
                delivery.finished_at = Some(finished);
            } else if errors.is_empty() {
                delivery.state = DeliveryState::Delivered;
                delivery.attempts += u32::from(!wanted.is_empty());
                delivery.next_attempt_at = None;
                delivery.last_error = None;
                delivery.finished_at = Some(finished);
            } else {
                delivery.attempts += 1;
                delivery.last_error = Some(errors.join("; "));
                if delivery.attempts >= policy.max_attempts {
                    metrics::webhook_delivery("gave_up");
                    tracing::warn!(event.id = %stored.id, attempts = delivery.attempts, "webhook delivery given up");
                    delivery.state = DeliveryState::Failed;
                    delivery.next_attempt_at = None;
                    delivery.finished_at = Some(finished);
                } else {
                    delivery.next_attempt_at =
                        Some(finished + policy.pause(delivery.attempts, retry_after));
                }
            }
            match self
                .ports
                .events
                .update_delivery(stored.id, worker, &delivery)
                .await
            {
                Ok(()) | Err(RepoError::LeaseLost) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(handled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_up_to_the_cap_and_honours_retry_after() {
        let p = DeliveryPolicy {
            backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(60),
            ..DeliveryPolicy::default()
        };
        assert_eq!(p.pause(1, None), Duration::from_secs(5));
        assert_eq!(p.pause(2, None), Duration::from_secs(10));
        assert_eq!(p.pause(4, None), Duration::from_secs(40));
        assert_eq!(p.pause(5, None), Duration::from_secs(60));
        assert_eq!(p.pause(40, None), Duration::from_secs(60));
        assert_eq!(
            p.pause(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            p.pause(1, Some(Duration::from_secs(9999))),
            Duration::from_secs(60),
            "a Retry-After never exceeds the cap"
        );
    }
}
