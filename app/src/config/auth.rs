//! The `[auth]`, `[authorization]`, `[bootstrap]` and `[quotas]` sections: passwords,
//! tokens, who may order what, the first admin, and per-user limits.

use super::{positive, Config, ConfigError, Secret};
use acmeport_domain::Username;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Per-user quotas; 0 disables a limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotasSection {
    pub accounts_per_user: u32,
    pub orders_in_flight_per_user: u32,
    pub names_per_order: u32,
    pub orders_per_hour_per_user: u32,
}

impl Default for QuotasSection {
    fn default() -> Self {
        let q = acmeport_domain::service::Quotas::default();
        Self {
            accounts_per_user: q.accounts_per_user,
            orders_in_flight_per_user: q.orders_in_flight_per_user,
            names_per_order: q.names_per_order,
            orders_per_hour_per_user: q.orders_per_hour_per_user,
        }
    }
}

impl QuotasSection {
    /// The domain's quotas.
    #[must_use]
    pub fn quotas(&self) -> acmeport_domain::service::Quotas {
        acmeport_domain::service::Quotas {
            accounts_per_user: self.accounts_per_user,
            orders_in_flight_per_user: self.orders_in_flight_per_user,
            names_per_order: self.names_per_order,
            orders_per_hour_per_user: self.orders_per_hour_per_user,
        }
    }
}

/// Passwords and API tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    pub token_lifetime_secs: u64,
    /// At least 32 bytes, shared by every instance. Random per process when absent
    /// (tokens then die with the process).
    pub token_secret: Option<Secret>,
    /// How long a successful password check is remembered; 0 disables.
    pub password_cache_secs: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Password checks at once; 0 means the number of cores.
    pub max_concurrent_password_checks: usize,
    pub max_waiting_password_checks: usize,
    pub failed_logins_per_address: u32,
    pub failed_logins_per_username: u32,
    pub failed_login_refill_secs: u64,
    pub known_address_secs: u64,
}

impl AuthSection {
    /// The limits on password logins.
    #[must_use]
    pub fn login_limits(&self) -> acmeport_http::LoginLimits {
        let defaults = acmeport_http::LoginLimits::default();
        acmeport_http::LoginLimits {
            max_concurrent: if self.max_concurrent_password_checks == 0 {
                defaults.max_concurrent
            } else {
                self.max_concurrent_password_checks
            },
            max_waiting: self.max_waiting_password_checks,
            failures_per_address: self.failed_logins_per_address,
            failures_per_username: self.failed_logins_per_username,
            refill: Duration::from_secs(self.failed_login_refill_secs),
            known_for: Duration::from_secs(self.known_address_secs),
        }
    }
}

impl Default for AuthSection {
    fn default() -> Self {
        let argon2 = acmeport_auth::Argon2Params::default();
        Self {
            token_lifetime_secs: 3600,
            token_secret: None,
            password_cache_secs: 60,
            argon2_memory_kib: argon2.memory_kib,
            argon2_iterations: argon2.iterations,
            argon2_parallelism: argon2.parallelism,
            max_concurrent_password_checks: 0,
            max_waiting_password_checks: 64,
            failed_logins_per_address: 20,
            failed_logins_per_username: 10,
            failed_login_refill_secs: 60,
            known_address_secs: 7 * 24 * 3600,
        }
    }
}

/// Who may order which names.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizationSection {
    /// True lets every user order any name (one team sharing the service). False (the
    /// default) lets non-admins order only the names an admin granted them
    /// (`POST /api/users/<id>/domains`): a forgotten setting then refuses an order
    /// instead of writing records into every zone the DNS credentials reach.
    pub allow_any_name: bool,
}

/// The first admin, created at start when no user exists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapSection {
    pub admin_username: Option<String>,
    pub admin_password: Option<Secret>,
}

impl Config {
    /// How long API tokens live.
    ///
    /// # Errors
    ///
    /// Zero.
    pub fn token_ttl(&self) -> Result<Duration, ConfigError> {
        positive("auth.token_lifetime_secs", self.auth.token_lifetime_secs)
    }

    /// The Argon2 cost of new password hashes.
    ///
    /// # Errors
    ///
    /// Parameters Argon2 refuses.
    pub fn argon2(&self) -> Result<acmeport_auth::Argon2Hasher, ConfigError> {
        acmeport_auth::Argon2Hasher::new(acmeport_auth::Argon2Params {
            memory_kib: self.auth.argon2_memory_kib,
            iterations: self.auth.argon2_iterations,
            parallelism: self.auth.argon2_parallelism,
        })
        .map_err(|e| ConfigError::invalid("auth.argon2_memory_kib", e))
    }

    /// The admin to create at first start, when configured.
    ///
    /// # Errors
    ///
    /// Only one of the two keys set, or an invalid name or password.
    pub fn bootstrap_admin(
        &self,
    ) -> Result<Option<(Username, acmeport_domain::Password)>, ConfigError> {
        match (
            &self.bootstrap.admin_username,
            &self.bootstrap.admin_password,
        ) {
            (None, None) => Ok(None),
            (Some(name), Some(password)) => {
                let name = Username::parse(name)
                    .map_err(|e| ConfigError::invalid("bootstrap.admin_username", e))?;
                let password = acmeport_domain::Password::parse_new(password.expose())
                    .map_err(|e| ConfigError::invalid("bootstrap.admin_password", e))?;
                Ok(Some((name, password)))
            }
            (Some(_), None) => Err(ConfigError::invalid(
                "bootstrap.admin_password",
                "required with admin_username",
            )),
            (None, Some(_)) => Err(ConfigError::invalid(
                "bootstrap.admin_username",
                "required with admin_password",
            )),
        }
    }
}
