//! When an order is worked next: the bookkeeping of waits, retries and renewals, and the
//! one backoff policy every retry and poll of the workflow uses.

use std::time::Duration;
use time::OffsetDateTime;

/// Why a certificate is renewed when it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RenewalReason {
    /// A fraction of the certificate's lifetime is left (the configured lifetime rule).
    Lifetime,
    /// A random time inside the window the CA suggested through ACME Renewal Information.
    AriWindow,
}

impl RenewalReason {
    /// The API and storage name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lifetime => "lifetime",
            Self::AriWindow => "ari_window",
        }
    }

    /// Parses [`Self::as_str`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Lifetime, Self::AriWindow]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

/// When acmeport plans to renew an order's current certificate, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalPlan {
    /// When the renewal is due.
    pub at: OffsetDateTime,
    /// Why then.
    pub reason: RenewalReason,
    /// The window the CA suggested (ARI), when it did.
    pub window: Option<(OffsetDateTime, OffsetDateTime)>,
}

/// One authoritative nameserver's answer for one TXT record of a waiting DNS-01 order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameserverStatus {
    /// The record's name.
    pub record: String,
    /// The server, as the propagation checker names it.
    pub server: String,
    /// True once it serves the value.
    pub serves: bool,
    /// When it was last asked.
    pub asked_at: OffsetDateTime,
}

/// The bookkeeping of an order's waits, retries and renewals. Stored with the order;
/// changed only through the transition methods of [`super::Order`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Progress {
    /// Transient failures in a row of the step in flight.
    pub failures: u32,
    /// When the first of those failures happened: the retry budget counts from here.
    pub failing_since: Option<OffsetDateTime>,
    /// When the current wait (DNS propagation, the CA's validation or issuance) began.
    pub waiting_since: Option<OffsetDateTime>,
    /// How often the current wait has polled.
    pub polls: u32,
    /// While a DNS-01 order waits for propagation: every authoritative nameserver's last
    /// answer for every record.
    pub nameservers: Vec<NameserverStatus>,
    /// When the attempt in flight began (a reissue or renewal; the first attempt began
    /// when the order was created).
    pub attempt_started: Option<OffsetDateTime>,
    /// The attempt in flight renews the current certificate: a failure keeps the order
    /// `valid` with its certificate and schedules another try.
    pub renewal: bool,
    /// The ARI identifier of the certificate the attempt in flight replaces.
    pub replaces: Option<String>,
    /// The renewal plan of a valid order.
    pub plan: Option<RenewalPlan>,
    /// Renewals that failed in a row, and the last reason.
    pub renewal_failures: u32,
    /// The reason of the last failed renewal.
    pub renewal_error: Option<String>,
    /// Fresh ACME orders placed in this attempt after the CA's validation failed (a
    /// responder restarting, one vantage point not yet seeing the record).
    pub validation_retries: u32,
}

/// Exponential backoff with jitter: the one policy for retries, polls and renewals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first pause.
    pub initial: Duration,
    /// No pause is longer.
    pub max: Duration,
}

impl Backoff {
    /// The pause before try `n` (1 for the first retry): `initial * 2^(n-1)`, capped at
    /// `max`, then spread by `jitter` (a number in `[0, 1)`) over its upper quarter
    /// removed, so that many orders failing together do not retry together. A server's
    /// `Retry-After` is a floor.
    #[must_use]
    pub fn delay(&self, n: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        let exp = n.saturating_sub(1).min(30);
        let base = self
            .initial
            .saturating_mul(1u32 << exp.min(20))
            .min(self.max);
        let jitter = jitter.clamp(0.0, 1.0);
        let spread = base.mul_f64(1.0 - 0.25 * jitter);
        retry_after.map_or(spread, |floor| spread.max(floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_honours_retry_after() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        assert_eq!(b.delay(1, 0.0, None), Duration::from_secs(1));
        assert_eq!(b.delay(2, 0.0, None), Duration::from_secs(2));
        assert_eq!(b.delay(4, 0.0, None), Duration::from_secs(8));
        assert_eq!(b.delay(5, 0.0, None), Duration::from_secs(10));
        assert_eq!(b.delay(500, 0.0, None), Duration::from_secs(10));
        assert_eq!(b.delay(4, 1.0, None), Duration::from_secs(6));
        assert_eq!(
            b.delay(1, 0.0, Some(Duration::from_secs(30))),
            Duration::from_secs(30),
            "Retry-After is a floor, even above the cap"
        );
    }

    #[test]
    fn renewal_reasons_round_trip() {
        for r in [RenewalReason::Lifetime, RenewalReason::AriWindow] {
            assert_eq!(RenewalReason::from_name(r.as_str()), Some(r));
        }
    }
}
