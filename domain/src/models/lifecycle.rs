//! The life of a certificate after issuance: the events that tell the outside world
//! (webhooks, `GET /api/events`) what happened, and their delivery.

use super::{CertificateId, EventId, OrderId, RevocationReason, UserId};
use std::fmt;
use time::OffsetDateTime;

/// What happened, as webhooks and `GET /api/events` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EventKind {
    /// An order (or a reissue of it) ended with a stored certificate.
    OrderValid,
    /// An order (or a reissue of it) failed.
    OrderInvalid,
    /// A renewal stored a new certificate for an order.
    CertificateRenewed,
    /// A renewal attempt failed (it is retried with backoff).
    CertificateRenewalFailed,
    /// A certificate is a configured number of days or fewer from `not_after`.
    CertificateExpiring,
    /// A certificate was revoked.
    CertificateRevoked,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::OrderValid,
        Self::OrderInvalid,
        Self::CertificateRenewed,
        Self::CertificateRenewalFailed,
        Self::CertificateExpiring,
        Self::CertificateRevoked,
    ];

    /// The name in webhook bodies and filters.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderValid => "order.valid",
            Self::OrderInvalid => "order.invalid",
            Self::CertificateRenewed => "certificate.renewed",
            Self::CertificateRenewalFailed => "certificate.renewal_failed",
            Self::CertificateExpiring => "certificate.expiring",
            Self::CertificateRevoked => "certificate.revoked",
        }
    }

    /// Parses [`Self::as_str`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to an order or certificate, to be stored in the same
/// transaction as the change that caused it and then delivered to webhooks.
///
/// `key` makes it unique: storing the same event twice (a resumed worker saving the same
/// order again) keeps one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEvent {
    /// What happened.
    pub kind: EventKind,
    /// The user whose order or certificate it concerns.
    pub user_id: UserId,
    /// The order concerned, if any.
    pub order_id: Option<OrderId>,
    /// The certificate concerned (issued, revoked, expiring), if any.
    pub certificate_id: Option<CertificateId>,
    /// The certificate a renewal replaced.
    pub replaced_certificate_id: Option<CertificateId>,
    /// The names of the order or certificate.
    pub domains: Vec<String>,
    /// The error of a failed order or renewal.
    pub error: Option<String>,
    /// The reason of a revocation.
    pub reason: Option<RevocationReason>,
    /// The threshold (days before `not_after`) an expiry warning is for.
    pub days: Option<u32>,
    /// The end of the certificate's validity, when a certificate is concerned.
    pub not_after: Option<OffsetDateTime>,
    key: String,
}

impl DomainEvent {
    fn new(kind: EventKind, user_id: UserId, key: String) -> Self {
        Self {
            kind,
            user_id,
            order_id: None,
            certificate_id: None,
            replaced_certificate_id: None,
            domains: Vec::new(),
            error: None,
            reason: None,
            days: None,
            not_after: None,
            key,
        }
    }

    /// Rebuilds a stored event (for storage adapters).
    #[must_use]
    pub fn restore(mut self, key: String) -> Self {
        self.key = key;
        self
    }

    /// An empty event of `kind` for `user`, to be filled by storage adapters before
    /// [`Self::restore`] gives it its stored key.
    #[must_use]
    pub fn blank(kind: EventKind, user_id: UserId) -> Self {
        Self::new(kind, user_id, String::new())
    }

    /// What makes the event unique.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// An order's attempt ended valid with `certificate`.
    #[must_use]
    pub fn order_valid(
        user_id: UserId,
        order_id: OrderId,
        attempt: u32,
        certificate: CertificateId,
        domains: Vec<String>,
    ) -> Self {
        let mut e = Self::new(
            EventKind::OrderValid,
            user_id,
            format!("order.valid:{order_id}:{attempt}"),
        );
        e.order_id = Some(order_id);
        e.certificate_id = Some(certificate);
        e.domains = domains;
        e
    }

    /// An order's attempt failed.
    #[must_use]
    pub fn order_invalid(
        user_id: UserId,
        order_id: OrderId,
        attempt: u32,
        error: String,
        domains: Vec<String>,
    ) -> Self {
        let mut e = Self::new(
            EventKind::OrderInvalid,
            user_id,
            format!("order.invalid:{order_id}:{attempt}"),
        );
        e.order_id = Some(order_id);
        e.error = Some(error);
        e.domains = domains;
        e
    }

    /// A renewal of `order_id` stored `certificate`, replacing `replaced`.
    #[must_use]
    pub fn certificate_renewed(
        user_id: UserId,
        order_id: OrderId,
        certificate: CertificateId,
        replaced: Option<CertificateId>,
        domains: Vec<String>,
    ) -> Self {
        let mut e = Self::new(
            EventKind::CertificateRenewed,
            user_id,
            format!("certificate.renewed:{order_id}:{certificate}"),
        );
        e.order_id = Some(order_id);
        e.certificate_id = Some(certificate);
        e.replaced_certificate_id = replaced;
        e.domains = domains;
        e
    }

    /// The `failure`-th failed attempt to renew `certificate` of `order_id`.
    #[must_use]
    pub fn certificate_renewal_failed(
        user_id: UserId,
        order_id: OrderId,
        certificate: Option<CertificateId>,
        failure: u32,
        error: String,
        domains: Vec<String>,
    ) -> Self {
        let cert = certificate.map_or_else(|| "-".to_owned(), |c| c.to_string());
        let mut e = Self::new(
            EventKind::CertificateRenewalFailed,
            user_id,
            format!("certificate.renewal_failed:{order_id}:{cert}:{failure}"),
        );
        e.order_id = Some(order_id);
        e.certificate_id = certificate;
        e.error = Some(error);
        e.domains = domains;
        e
    }

    /// `certificate` is `days` or fewer days from `not_after` (one event per certificate
    /// and threshold).
    #[must_use]
    pub fn certificate_expiring(
        user_id: UserId,
        order_id: OrderId,
        certificate: CertificateId,
        days: u32,
        not_after: OffsetDateTime,
        domains: Vec<String>,
    ) -> Self {
        let mut e = Self::new(
            EventKind::CertificateExpiring,
            user_id,
            format!("certificate.expiring:{certificate}:{days}"),
        );
        e.order_id = Some(order_id);
        e.certificate_id = Some(certificate);
        e.days = Some(days);
        e.not_after = Some(not_after);
        e.domains = domains;
        e
    }

    /// `certificate` was revoked for `reason`.
    #[must_use]
    pub fn certificate_revoked(
        user_id: UserId,
        order_id: OrderId,
        certificate: CertificateId,
        reason: RevocationReason,
        domains: Vec<String>,
    ) -> Self {
        let mut e = Self::new(
            EventKind::CertificateRevoked,
            user_id,
            format!("certificate.revoked:{certificate}"),
        );
        e.order_id = Some(order_id);
        e.certificate_id = Some(certificate);
        e.reason = Some(reason);
        e.domains = domains;
        e
    }
}

/// Events raised by an order's transitions and not yet stored.
///
/// They are transient: two orders that differ only in their pending events are equal
/// (an order read back from storage has none).
#[derive(Debug, Clone, Default)]
pub struct PendingEvents(Vec<DomainEvent>);

impl PendingEvents {
    pub(crate) fn push(&mut self, event: DomainEvent) {
        if !self.0.iter().any(|e| e.key == event.key) {
            self.0.push(event);
        }
    }

    pub(crate) fn as_slice(&self) -> &[DomainEvent] {
        &self.0
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

impl PartialEq for PendingEvents {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

/// Where the delivery of a stored event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Pending,
    /// Every endpoint that wants it accepted it.
    Delivered,
    /// Given up after the configured number of attempts.
    Failed,
    /// No configured endpoint wants this event.
    Skipped,
}

impl DeliveryState {
    /// The API name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    /// Parses [`Self::as_str`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed, Self::Skipped]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// How a stored event's delivery went so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Where the delivery stands.
    pub state: DeliveryState,
    /// Delivery attempts made (each tries every endpoint still missing the event).
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The last failure, per endpoint URL, readable.
    pub last_error: Option<String>,
    /// The endpoint URLs that accepted the event.
    pub delivered_to: Vec<String>,
    /// When the event reached its last endpoint.
    pub finished_at: Option<OffsetDateTime>,
}

impl Delivery {
    /// A new event's delivery: due at `at`.
    #[must_use]
    pub fn new(at: OffsetDateTime) -> Self {
        Self {
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: Some(at),
            last_error: None,
            delivered_to: Vec::new(),
            finished_at: None,
        }
    }
}

/// An event as stored, with its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Assigned by the repository.
    pub id: EventId,
    /// The event itself.
    pub event: DomainEvent,
    /// When it was stored.
    pub created_at: OffsetDateTime,
    /// How its webhook delivery went so far.
    pub delivery: Delivery,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn event_names_round_trip_and_keys_identify_the_occurrence() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_name(k.as_str()), Some(k));
        }
        let a = DomainEvent::certificate_expiring(
            UserId::new(1),
            OrderId::new(2),
            CertificateId::new(3),
            7,
            datetime!(2026-01-01 0:00 UTC),
            vec![],
        );
        assert_eq!(a.key(), "certificate.expiring:3:7");
        let mut pending = PendingEvents::default();
        pending.push(a.clone());
        pending.push(a);
        assert_eq!(pending.as_slice().len(), 1, "one event per key");
    }
}
