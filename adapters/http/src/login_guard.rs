//! Protection of password logins: a bound on concurrent password checks (each one is an
//! Argon2 run of ~19 MiB on the blocking pool), a bounded queue in front of it, and rate
//! limits on failed logins per client address and per username.
//!
//! Every password login goes through [`LoginGuard::login`], unknown usernames included
//! (the domain verifies them against a decoy hash, which costs the same), so the decoy
//! path is bounded and limited exactly like a real one. Token logins are cheap and do not
//! pass here.
//!
//! Failed logins are counted with governor's GCRA limiters: each key (an address, a
//! username) may fail `burst` times, and earns one more try every `refill`. Once a key
//! is over its budget, logins for it are refused with `429` and `Retry-After` before any
//! password is checked, so a refused guess costs nothing and reveals nothing. A client
//! address that logged in successfully as a user is remembered for `known_for`, and that
//! user's per-username limit does not apply to it: an attacker guessing alice's password
//! from elsewhere does not lock alice out of her usual address.

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The limits on password logins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLimits {
    /// Password checks running at once; about the number of cores.
    pub max_concurrent: usize,
    /// Password logins waiting for a free check; more answer `503`.
    pub max_waiting: usize,
    /// Failed logins from one client address (IPv6: its /64) before `429`.
    pub failures_per_address: u32,
    /// Failed logins for one username (from addresses it never logged in from) before
    /// `429`.
    pub failures_per_username: u32,
    /// Each address and username earns one more failed login per this period.
    pub refill: Duration,
    /// How long an address that logged in successfully as a user stays exempt from that
    /// user's per-username limit.
    pub known_for: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            max_concurrent: std::thread::available_parallelism()
                .map_or(2, std::num::NonZeroUsize::get),
            max_waiting: 64,
            failures_per_address: 20,
            failures_per_username: 10,
            refill: Duration::from_secs(60),
            known_for: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Why a login was not even tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRefused {
    /// Too many failed logins for this address or username; try after `retry_after`.
    TooManyFailures {
        /// What was limited: `client address` or `username`.
        which: &'static str,
        /// When a login may be tried again.
        retry_after: Duration,
    },
    /// Too many logins waiting for a password check.
    Busy,
}

/// What a login attempt came to.
pub enum LoginOutcome<T, E> {
    /// The credentials were checked: the user, or the domain's refusal.
    Checked(Result<T, E>),
    /// Not tried.
    Refused(LoginRefused),
}

/// Most remembered entries (blocked keys, known addresses) before old ones are dropped.
const MAX_ENTRIES: usize = 100_000;
/// Longest username kept as a rate-limit key; longer ones are cut (they fail anyway).
const MAX_USERNAME_KEY: usize = 128;

/// The guard in front of password logins; one per API.
pub struct LoginGuard {
    limits: LoginLimits,
    checks: Semaphore,
    waiting: AtomicUsize,
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_username: DefaultKeyedRateLimiter<String>,
    blocked: Mutex<HashMap<Subject, Instant>>,
    known: Mutex<HashMap<(String, IpAddr), Instant>>,
    failures: AtomicUsize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Address(IpAddr),
    Username(String),
}

impl std::fmt::Debug for LoginGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGuard")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for LoginGuard {
    fn default() -> Self {
        Self::new(LoginLimits::default())
    }
}

impl LoginGuard {
    /// A guard with these limits (zeros are raised to one).
    #[must_use]
    pub fn new(limits: LoginLimits) -> Self {
        let quota = |burst: u32| {
            Quota::with_period(limits.refill.max(Duration::from_millis(1)))
                .expect("a positive period")
                .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least one"))
        };
        Self {
            checks: Semaphore::new(limits.max_concurrent.max(1)),
            waiting: AtomicUsize::new(0),
            by_address: RateLimiter::keyed(quota(limits.failures_per_address)),
            by_username: RateLimiter::keyed(quota(limits.failures_per_username)),
            blocked: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
            failures: AtomicUsize::new(0),
            limits,
        }
    }

    /// Runs `check` (a password login of `username` from `address`) within the limits.
    /// `is_wrong` tells a refusal of the credentials from other failures (storage), which
    /// do not count.
    pub async fn login<T, E, F>(
        &self,
        username: &str,
        address: Option<IpAddr>,
        check: F,
        is_wrong: impl Fn(&E) -> bool,
    ) -> LoginOutcome<T, E>
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        let username = username_key(username);
        let address = address.map(address_key);
        if let Some(refused) = self.refused(&username, address) {
            return LoginOutcome::Refused(refused);
        }
        let Some(_permit) = self.permit().await else {
            return LoginOutcome::Refused(LoginRefused::Busy);
        };
        // Failures may have piled up while this login waited.
        if let Some(refused) = self.refused(&username, address) {
            return LoginOutcome::Refused(refused);
        }
        let result = check.await;
        match &result {
            Ok(_) => self.succeeded(&username, address),
            Err(e) if is_wrong(e) => self.failed(&username, address),
            Err(_) => {}
        }
        LoginOutcome::Checked(result)
    }

    async fn permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        if let Ok(permit) = self.checks.try_acquire() {
            return Some(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.limits.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let permit = self.checks.acquire().await.ok();
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        permit
    }

    fn refused(&self, username: &str, address: Option<IpAddr>) -> Option<LoginRefused> {
        let now = Instant::now();
        let blocked = lock(&self.blocked);
        let wait = |subject: &Subject| {
            blocked
                .get(subject)
                .and_then(|until| until.checked_duration_since(now))
                .filter(|d| !d.is_zero())
        };
        if let Some(address) = address {
            if let Some(retry_after) = wait(&Subject::Address(address)) {
                return Some(LoginRefused::TooManyFailures {
                    which: "client address",
                    retry_after,
                });
            }
        }
        if let Some(retry_after) = wait(&Subject::Username(username.to_owned())) {
            let known = address.is_some_and(|a| {
                lock(&self.known)
                    .get(&(username.to_owned(), a))
                    .is_some_and(|until| *until > now)
            });
            if !known {
                return Some(LoginRefused::TooManyFailures {
                    which: "username",
                    retry_after,
                });
            }
        }
        None
    }

    fn failed(&self, username: &str, address: Option<IpAddr>) {
        let clock = DefaultClock::default();
        let mut over = Vec::new();
        if let Some(address) = address {
            if let Err(not_until) = self.by_address.check_key(&address) {
                over.push((
                    Subject::Address(address),
                    not_until.wait_time_from(clock.now()),
                ));
            }
        }
        if let Err(not_until) = self.by_username.check_key(&username.to_owned()) {
            over.push((
                Subject::Username(username.to_owned()),
                not_until.wait_time_from(clock.now()),
            ));
        }
        if !over.is_empty() {
            let now = Instant::now();
            let mut blocked = lock(&self.blocked);
            if blocked.len() >= MAX_ENTRIES {
                blocked.retain(|_, until| *until > now);
            }
            for (subject, wait) in over {
                // At least the refill period: a blocked key earns its next try only then.
                let until = now + wait.max(self.limits.refill.min(Duration::from_secs(3600)));
                tracing::warn!(
                    ?subject,
                    wait_secs = (until - now).as_secs(),
                    "too many failed logins; refusing logins for a while"
                );
                if blocked.len() < MAX_ENTRIES {
                    blocked.insert(subject, until);
                }
            }
        }
        // Forget keys whose budget is whole again, now and then, so that a spray of
        // addresses or usernames does not grow the limiters without end.
        if self.failures.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.by_address.retain_recent();
            self.by_username.retain_recent();
            self.by_address.shrink_to_fit();
            self.by_username.shrink_to_fit();
        }
    }

    fn succeeded(&self, username: &str, address: Option<IpAddr>) {
        let Some(address) = address else { return };
        let now = Instant::now();
        let mut known = lock(&self.known);
        if known.len() >= MAX_ENTRIES {
            known.retain(|_, until| *until > now);
            if known.len() >= MAX_ENTRIES {
                known.clear();
            }
        }
        known.insert((username.to_owned(), address), now + self.limits.known_for);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps stay consistent whatever panicked while holding them.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// IPv6 clients usually own a whole /64: count them by it.
pub(crate) fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

fn username_key(username: &str) -> String {
    let mut key = username.trim().to_lowercase();
    if key.len() > MAX_USERNAME_KEY {
        let mut end = MAX_USERNAME_KEY;
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        key.truncate(end);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn limits() -> LoginLimits {
        LoginLimits {
            max_concurrent: 1,
            max_waiting: 1,
            failures_per_address: 3,
            failures_per_username: 5,
            refill: Duration::from_secs(60),
            known_for: Duration::from_secs(600),
        }
    }

    async fn attempt(guard: &LoginGuard, user: &str, last: u8, right: bool) -> Result<(), String> {
        let address = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)));
        match guard
            .login(
                user,
                address,
                async {
                    if right {
                        Ok(())
                    } else {
                        Err(())
                    }
                },
                |_| true,
            )
            .await
        {
            LoginOutcome::Checked(Ok(())) => Ok(()),
            LoginOutcome::Checked(Err(())) => Err("wrong".into()),
            LoginOutcome::Refused(r) => Err(format!("{r:?}")),
        }
    }

    #[tokio::test]
    async fn an_address_over_its_failures_is_refused_before_any_check() {
        let guard = LoginGuard::new(limits());
        // GCRA: three failures fit, the fourth goes over and blocks the address.
        for _ in 0..4 {
            assert_eq!(
                attempt(&guard, "alice", 1, false).await,
                Err("wrong".into())
            );
        }
        let refused = attempt(&guard, "bob", 1, true).await.unwrap_err();
        assert!(refused.contains("client address"), "{refused}");
        assert!(
            attempt(&guard, "bob", 2, true).await.is_ok(),
            "other addresses still log in"
        );
    }

    #[tokio::test]
    async fn a_username_over_its_failures_is_refused_except_from_its_known_addresses() {
        let guard = LoginGuard::new(limits());
        assert!(attempt(&guard, "alice", 1, true).await.is_ok());
        // Failures spread over many addresses, none over its own limit.
        for last in 10..16 {
            assert_eq!(
                attempt(&guard, "Alice", last, false).await,
                Err("wrong".into())
            );
        }
        let refused = attempt(&guard, "alice", 20, true).await.unwrap_err();
        assert!(refused.contains("username"), "{refused}");
        assert!(
            attempt(&guard, "alice", 1, true).await.is_ok(),
            "alice's known address is not locked out"
        );
    }

    #[tokio::test]
    async fn logins_beyond_the_queue_are_busy() {
        let guard = std::sync::Arc::new(LoginGuard::new(limits()));
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let held = {
            let guard = guard.clone();
            tokio::spawn(async move {
                guard
                    .login("a", None, async { wait.await.map_err(|_| ()) }, |_| true)
                    .await;
            })
        };
        tokio::task::yield_now().await;
        while guard.checks.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let queued = {
            let guard = guard.clone();
            tokio::spawn(async move { attempt(&guard, "b", 1, true).await })
        };
        while guard.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            attempt(&guard, "c", 2, true).await,
            Err(format!("{:?}", LoginRefused::Busy))
        );
        release.send(()).expect("release");
        held.await.expect("held");
        assert!(
            queued.await.expect("queued").is_ok(),
            "the queued login runs"
        );
    }

    #[test]
    fn keys_fold_case_and_ipv6_prefixes() {
        assert_eq!(username_key(" Alice "), "alice");
        assert_eq!(username_key(&"x".repeat(500)).len(), MAX_USERNAME_KEY);
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("v6");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("v6");
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("mapped");
        assert_eq!(address_key(mapped), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    }
}
