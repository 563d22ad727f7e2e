//! Bodies of the events endpoint.

use super::rfc3339;
use acmeport_domain::StoredEvent;
use serde::Serialize;
use utoipa::ToSchema;

/// Where an event's webhook delivery stands.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryView {
    /// `pending`, `delivered`, `failed` (given up) or `skipped` (no endpoint wants it).
    #[schema(example = "delivered")]
    pub state: String,
    /// Delivery attempts made.
    pub attempts: u32,
    /// RFC 3339, when the next attempt is due (pending only).
    pub next_attempt_at: Option<String>,
    /// The last failure, per endpoint.
    pub last_error: Option<String>,
    /// The endpoint URLs that accepted the event.
    pub delivered_to: Vec<String>,
    /// RFC 3339, when delivery ended.
    pub finished_at: Option<String>,
}

/// One lifecycle event of the caller's orders and certificates.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventResponse {
    #[schema(example = 41)]
    pub id: i64,
    /// `order.valid`, `order.invalid`, `certificate.renewed`,
    /// `certificate.renewal_failed`, `certificate.expiring`, `certificate.revoked`.
    #[serde(rename = "type")]
    #[schema(example = "order.valid")]
    pub kind: String,
    /// RFC 3339.
    pub created_at: String,
    pub order_id: Option<i64>,
    pub certificate_id: Option<i64>,
    /// The certificate a renewal replaced.
    pub replaced_certificate_id: Option<i64>,
    pub domains: Vec<String>,
    /// The error of a failed order or renewal.
    pub error: Option<String>,
    /// The reason of a revocation.
    pub reason: Option<String>,
    /// The threshold in days of an expiry warning.
    pub days: Option<u32>,
    /// RFC 3339, the certificate's `not_after` (expiry warnings).
    pub not_after: Option<String>,
    pub delivery: DeliveryView,
}

impl From<&StoredEvent> for EventResponse {
    fn from(s: &StoredEvent) -> Self {
        let e = &s.event;
        let d = &s.delivery;
        Self {
            id: s.id.get(),
            kind: e.kind.as_str().to_owned(),
            created_at: rfc3339(s.created_at),
            order_id: e.order_id.map(|o| o.get()),
            certificate_id: e.certificate_id.map(|c| c.get()),
            replaced_certificate_id: e.replaced_certificate_id.map(|c| c.get()),
            domains: e.domains.clone(),
            error: e.error.clone(),
            reason: e.reason.map(|r| r.as_str().to_owned()),
            days: e.days,
            not_after: e.not_after.map(rfc3339),
            delivery: DeliveryView {
                state: d.state.as_str().to_owned(),
                attempts: d.attempts,
                next_attempt_at: d.next_attempt_at.map(rfc3339),
                last_error: d.last_error.clone(),
                delivered_to: d.delivered_to.clone(),
                finished_at: d.finished_at.map(rfc3339),
            },
        }
    }
}
