//! A decorator that remembers successful password checks for a short time, so that an
//! API client sending Basic credentials on every request does not pay for Argon2 each
//! time.
//!
//! Only successes are remembered; a wrong password always runs the real check. The
//! entry is keyed by the stored hash string (which embeds a per-user random salt, so it
//! identifies the user and changes whenever the password changes) and the password
//! presented. The key is an HMAC under a random per-process key rather than a plain
//! SHA-256 of the password, so the cache's memory never holds a fast, offline-testable
//! digest of anyone's password.

use acmeport_domain::ports::{HashError, PasswordHasher};
use acmeport_domain::{Password, PasswordHash};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

type Key = [u8; 32];

/// Wraps a [`PasswordHasher`] and caches successful verifications for `ttl`.
pub struct CachingHasher {
    inner: Arc<dyn PasswordHasher>,
    ttl: Duration,
    capacity: usize,
    key: Key,
    entries: Mutex<HashMap<Key, Instant>>,
}

impl std::fmt::Debug for CachingHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingHasher")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl CachingHasher {
    /// The most entries kept by default; beyond it, expired entries are dropped and, if
    /// that is not enough, the whole cache is cleared (it is only an optimisation).
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// Caches successful checks of `inner` for `ttl`. A zero `ttl` disables caching.
    #[must_use]
    pub fn new(inner: Arc<dyn PasswordHasher>, ttl: Duration) -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self {
            inner,
            ttl,
            capacity: Self::DEFAULT_CAPACITY,
            key,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Limits the number of cached entries.
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    fn cache_key(&self, password: &Password, hash: &PasswordHash) -> Key {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        // Length-prefix the hash so that no (hash, password) pair can collide with another
        // by moving bytes across the boundary.
        mac.update(&(hash.as_str().len() as u64).to_be_bytes());
        mac.update(hash.as_str().as_bytes());
        mac.update(&Sha256::digest(password.expose().as_bytes()));
        mac.finalize().into_bytes().into()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Instant>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn is_cached(&self, key: &Key) -> bool {
        let now = Instant::now();
        let mut entries = self.lock();
        match entries.get(key) {
            Some(expires) if *expires > now => true,
            Some(_) => {
                entries.remove(key);
                false
            }
            None => false,
        }
    }

    fn remember(&self, key: Key) {
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.retain(|_, expires| *expires > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, now + self.ttl);
    }

    /// How many entries are held (for tests and metrics).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl PasswordHasher for CachingHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        self.inner.hash(password).await
    }

    async fn verify(&self, password: &Password, hash: &PasswordHash) -> bool {
        if self.ttl.is_zero() {
            return self.inner.verify(password, hash).await;
        }
        let key = self.cache_key(password, hash);
        if self.is_cached(&key) {
            return true;
        }
        let matches = self.inner.verify(password, hash).await;
        if matches {
            self.remember(key);
        }
        matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Argon2Hasher, Argon2Params};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The real Argon2 hasher, counting how often it really verifies.
    struct Counting {
        real: Argon2Hasher,
        verifies: AtomicUsize,
    }

    #[async_trait]
    impl PasswordHasher for Counting {
        async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
            self.real.hash(password).await
        }
        async fn verify(&self, password: &Password, hash: &PasswordHash) -> bool {
            self.verifies.fetch_add(1, Ordering::SeqCst);
            self.real.verify(password, hash).await
        }
    }

    fn setup(ttl: Duration) -> (Arc<Counting>, CachingHasher) {
        let counting = Arc::new(Counting {
            real: Argon2Hasher::new(Argon2Params {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            })
            .expect("valid parameters"),
            verifies: AtomicUsize::new(0),
        });
        let cache = CachingHasher::new(counting.clone(), ttl);
        (counting, cache)
    }

    fn verifies(c: &Counting) -> usize {
        c.verifies.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn success_is_cached_until_it_expires() {
        let (counting, cache) = setup(Duration::from_secs(60));
        let pw = Password::new("right password");
        let hash = cache.hash(&pw).await.expect("hash");

        assert!(cache.verify(&pw, &hash).await);
        assert!(cache.verify(&pw, &hash).await);
        assert_eq!(
            verifies(&counting),
            1,
            "the second check must come from the cache"
        );

        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(cache.verify(&pw, &hash).await);
        assert_eq!(
            verifies(&counting),
            2,
            "an expired entry must run Argon2 again"
        );
    }

    #[tokio::test]
    async fn wrong_passwords_are_never_cached() {
        let (counting, cache) = setup(Duration::from_secs(60));
        let pw = Password::new("right password");
        let hash = cache.hash(&pw).await.expect("hash");
        let wrong = Password::new("wrong password");

        assert!(!cache.verify(&wrong, &hash).await);
        assert!(!cache.verify(&wrong, &hash).await);
        assert_eq!(
            verifies(&counting),
            2,
            "each wrong password must run the real check"
        );
        assert!(
            cache.is_empty(),
            "a failure must leave nothing in the cache"
        );

        // A cached success for the right password must not let a wrong one through.
        assert!(cache.verify(&pw, &hash).await);
        assert!(!cache.verify(&wrong, &hash).await);
    }

    #[tokio::test]
    async fn a_changed_password_invalidates_the_cached_success() {
        let (counting, cache) = setup(Duration::from_secs(60));
        let old = Password::new("old password");
        let old_hash = cache.hash(&old).await.expect("hash");
        assert!(cache.verify(&old, &old_hash).await);

        // The user changes the password: a new hash is stored.
        let new = Password::new("new password");
        let new_hash = cache.hash(&new).await.expect("hash");
        assert!(
            !cache.verify(&old, &new_hash).await,
            "the old password must fail against the new hash despite the cached success"
        );
        assert!(cache.verify(&new, &new_hash).await);
        assert_eq!(
            verifies(&counting),
            3,
            "every check against the new hash is real"
        );
    }

    #[tokio::test]
    async fn zero_ttl_disables_caching() {
        let (counting, cache) = setup(Duration::ZERO);
        let pw = Password::new("right password");
        let hash = cache.hash(&pw).await.expect("hash");
        assert!(cache.verify(&pw, &hash).await);
        assert!(cache.verify(&pw, &hash).await);
        assert_eq!(verifies(&counting), 2);
    }

    #[tokio::test]
    async fn capacity_bounds_the_cache() {
        let (_, cache) = setup(Duration::from_secs(60));
        let cache = cache.with_capacity(2);
        for i in 0..5 {
            let pw = Password::new(format!("password {i}"));
            let hash = cache.hash(&pw).await.expect("hash");
            assert!(cache.verify(&pw, &hash).await);
            assert!(
                cache.len() <= 2,
                "the cache grew past its capacity: {}",
                cache.len()
            );
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let (_, cache) = setup(Duration::from_secs(1));
        let shown = format!("{cache:?}");
        assert!(shown.starts_with("CachingHasher"), "{shown}");
        assert!(!shown.contains("key"), "{shown}");
    }
}
