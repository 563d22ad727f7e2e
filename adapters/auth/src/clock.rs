//! The wall clock and tokio's timer, as the domain's [`Clock`].

use acmeport_domain::ports::Clock;
use async_trait::async_trait;
use std::time::Duration;
use time::OffsetDateTime;

/// The system time (UTC) and `tokio::time::sleep`, so a paused tokio clock in tests also
/// pauses the service's waits.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    fn random(&self) -> f64 {
        rand::random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sleeps_on_the_tokio_timer() {
        let start = tokio::time::Instant::now();
        SystemClock.sleep(Duration::from_secs(3600)).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(3600),
            "paused time advances exactly"
        );
    }

    #[test]
    fn random_numbers_lie_in_the_unit_interval_and_vary() {
        let draws: Vec<f64> = (0..64).map(|_| SystemClock.random()).collect();
        assert!(draws.iter().all(|r| (0.0..1.0).contains(r)), "{draws:?}");
        assert!(draws.windows(2).any(|w| w[0] != w[1]), "{draws:?}");
    }

    #[test]
    fn now_is_utc_and_current() {
        let now = SystemClock.now();
        assert_eq!(now.offset(), time::UtcOffset::UTC);
        let std_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs() as i64;
        assert!((now.unix_timestamp() - std_now).abs() <= 1, "{now}");
    }
}
