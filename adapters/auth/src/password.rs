//! Argon2id password hashing, run on the blocking thread pool so that a slow hash never
//! stalls the async workers serving other requests.

use acmeport_domain::ports::{HashError, PasswordHasher};
use acmeport_domain::{Password, PasswordHash};
use argon2::password_hash::{self, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use std::sync::Arc;

/// The cost of new hashes. Verification always uses the cost stored in the hash itself,
/// so raising these later does not lock out existing users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// The OWASP recommendation for Argon2id (19 MiB, 2 passes, 1 lane), which is also
    /// the argon2 crate's default.
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

/// The Argon2 cost parameters are out of range.
#[derive(Debug, thiserror::Error)]
#[error("invalid Argon2 parameters: {0}")]
pub struct ParamsError(String);

/// Hashes passwords with Argon2id and a random 16-byte salt, in PHC string format.
#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    params: Params,
    memory: Arc<MemoryPool>,
}

/// Argon2's working memory (19 MiB at the default cost), kept for the next check instead
/// of freed. glibc serves a freed block this large from its heap afterwards (its mmap
/// threshold grows with each freed mapping), where fragmentation keeps it resident: a
/// burst of checks grew the process by ~300 MiB with only two running at a time. Reused
/// blocks keep it at one block per concurrent check.
#[derive(Debug, Default)]
struct MemoryPool(std::sync::Mutex<Vec<Vec<Block>>>);

/// Blocks kept at most; more concurrent checks than this allocate and free their own.
const POOL_LIMIT: usize = 8;

impl MemoryPool {
    fn take(&self, blocks: usize) -> Vec<Block> {
        let mut memory = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        memory
    }

    fn give(&self, memory: Vec<Block>) {
        let mut pool = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.len() < POOL_LIMIT {
            pool.push(memory);
        }
    }
}

/// Verifies `password` against a PHC Argon2 hash with memory from `pool`. Anything that
/// does not parse as an Argon2 hash is `false`.
fn verify_pooled(pool: &MemoryPool, password: &[u8], hash: &str) -> bool {
    let Ok(parsed) = password_hash::PasswordHash::new(hash) else {
        tracing::warn!("stored password hash is not a valid PHC string");
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let mut salt_buffer = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buffer) else {
        return false;
    };
    let mut output = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let mut memory = pool.take(blocks);
    let computed = Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut output, &mut memory[..blocks])
        .is_ok();
    pool.give(memory);
    // `Output` compares in constant time.
    computed && password_hash::Output::new(&output).is_ok_and(|output| output == expected)
}

impl Argon2Hasher {
    /// A hasher producing hashes of the given cost.
    ///
    /// # Errors
    ///
    /// [`ParamsError`] when Argon2 rejects the parameters (for example too little memory
    /// for the lanes).
    pub fn new(params: Argon2Params) -> Result<Self, ParamsError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| ParamsError(e.to_string()))?;
        Ok(Self {
            params,
            memory: Arc::default(),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        Self {
            params: Params::DEFAULT,
            memory: Arc::default(),
        }
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let argon2 = self.argon2();
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            argon2
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|phc| PasswordHash::new(phc.to_string()))
                .map_err(|e| HashError(Box::new(HashFailure(e))))
        })
        .await
        .map_err(|e| HashError(Box::new(e)))?
    }

    async fn verify(&self, password: &Password, hash: &PasswordHash) -> bool {
        let memory = self.memory.clone();
        let password = password.clone();
        let hash = hash.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            verify_pooled(&memory, password.expose().as_bytes(), hash.as_str())
        })
        .await;
        match outcome {
            Ok(matches) => matches,
            Err(e) => {
                tracing::error!(error = %e, "password verification task failed");
                false
            }
        }
    }
}

/// The argon2 crate's error type does not implement `std::error::Error` without its
/// `std` feature; this carries its message as the source of a [`HashError`].
#[derive(Debug, thiserror::Error)]
#[error("argon2: {0}")]
struct HashFailure(password_hash::Error);

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters so the tests stay fast; production uses the defaults.
    pub(crate) fn cheap() -> Argon2Hasher {
        Argon2Hasher::new(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .expect("valid parameters")
    }

    #[tokio::test]
    async fn hash_is_argon2id_phc_salted_and_verifies() {
        let hasher = cheap();
        let pw = Password::new("correct horse battery staple");
        let a = hasher.hash(&pw).await.expect("hashing works");
        let b = hasher.hash(&pw).await.expect("hashing works");
        assert!(
            a.as_str().starts_with("$argon2id$v=19$"),
            "expected an Argon2id PHC string, got {}",
            a.as_str()
        );
        assert_ne!(
            a.as_str(),
            b.as_str(),
            "two hashes of one password must differ by salt"
        );
        assert!(
            !a.as_str().contains("correct horse"),
            "the hash must not hold the password"
        );
        assert!(
            hasher.verify(&pw, &a).await,
            "the right password must verify"
        );
        assert!(
            hasher.verify(&pw, &b).await,
            "the right password must verify"
        );
        assert!(
            !hasher.verify(&Password::new("wrong"), &a).await,
            "a wrong password must not verify"
        );
    }

    #[tokio::test]
    async fn default_cost_hash_verifies_with_a_cheap_hasher() {
        // Verification reads the cost from the hash, so a change of configured cost keeps
        // old hashes usable.
        let strong = Argon2Hasher::default();
        let pw = Password::new("s3cret-password");
        let hash = strong.hash(&pw).await.expect("hashing works");
        assert!(
            hash.as_str().contains("m=19456,t=2,p=1"),
            "{}",
            hash.as_str()
        );
        assert!(cheap().verify(&pw, &hash).await);
    }

    #[tokio::test]
    async fn malformed_hashes_never_match() {
        let hasher = cheap();
        for bad in ["", "plain$secret", "$argon2id$v=19$garbage"] {
            assert!(
                !hasher
                    .verify(&Password::new("secret"), &PasswordHash::new(bad))
                    .await,
                "malformed hash {bad:?} must not verify"
            );
        }
    }

    #[test]
    fn impossible_parameters_are_refused() {
        let err = Argon2Hasher::new(Argon2Params {
            memory_kib: 1,
            iterations: 0,
            parallelism: 1,
        })
        .expect_err("zero iterations must be refused");
        assert!(
            err.to_string().starts_with("invalid Argon2 parameters"),
            "{err}"
        );
    }
}
