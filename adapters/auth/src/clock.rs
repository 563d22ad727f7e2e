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
