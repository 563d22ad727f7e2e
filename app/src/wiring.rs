//! Builds the real adapters from configuration and hands them to the domain service.
//! Nothing here decides anything about certificates: it only connects parts.

use crate::config::{Config, ConfigError};
use crate::error::StartError;
use acmeport_acme::{AcmeClientConfig, InstantAcmeClient, PollPolicy};
use acmeport_auth::{CachingHasher, HmacTokenSigner, SystemClock};
use acmeport_domain::ports::{Clock, PasswordHasher, TokenSigner};
use acmeport_domain::service::{DnsProviders, Ports, Settings};
use acmeport_domain::Acmeport;
use acmeport_http::{NotReady, Readiness};
use acmeport_keys::RcgenCsrFactory;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// The parts every command needs: storage and the service over it.
pub struct Wired {
    pub service: Acmeport,
    pub readiness: Arc<dyn Readiness>,
}

/// Which DNS providers to build: `serve` needs them, `user add` does not (and should not
/// reach out to a provider's API to add a user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dns {
    Configured,
    None,
}

/// The service settings from configuration.
///
/// # Errors
///
/// [`ConfigError`] naming the bad key.
pub fn settings(config: &Config) -> Result<Settings, ConfigError> {
    Ok(Settings {
        default_directory: config.default_directory()?,
        default_subject: config.csr_subject()?,
        default_key_spec: config.key_spec()?,
        propagation: config.propagation()?,
        token_ttl: config.token_ttl()?,
        lease: Duration::from_secs(config.workers.lease_secs),
        step_retries: config.workers.step_retries,
        retry_backoff: Duration::from_secs(config.workers.retry_backoff_secs),
    })
}

/// The ACME client, trusting the configured extra roots.
///
/// # Errors
///
/// An unreadable or unusable root file, named by its key.
pub fn acme_client(config: &Config) -> Result<InstantAcmeClient, StartError> {
    let mut extra_roots_pem = Vec::new();
    for (i, path) in config.acme.extra_roots.iter().enumerate() {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::invalid(
                format!("acme.extra_roots[{i}]"),
                format!("{}: {e}", path.display()),
            )
        })?;
        extra_roots_pem.push(pem);
    }
    let poll = |timeout| PollPolicy {
        timeout: Duration::from_secs(timeout),
        ..PollPolicy::default()
    };
    let acme = AcmeClientConfig {
        extra_roots_pem,
        webpki_roots: config.acme.webpki_roots,
        validation: poll(config.acme.validation_timeout_secs),
        issuance: poll(config.acme.issuance_timeout_secs),
        request_timeout: Duration::from_secs(config.acme.request_timeout_secs),
        ..AcmeClientConfig::default()
    };
    InstantAcmeClient::new(acme).map_err(|e| ConfigError::invalid("acme.extra_roots", e).into())
}

/// The password hasher and the token signer.
pub struct Auth {
    pub hasher: Arc<dyn PasswordHasher>,
    pub signer: Arc<dyn TokenSigner>,
}

/// Password hashing with the verification cache, and the token signer.
///
/// # Errors
///
/// [`ConfigError`] for bad Argon2 parameters or a short token secret.
pub fn auth(config: &Config) -> Result<Auth, ConfigError> {
    let hasher = CachingHasher::new(
        Arc::new(config.argon2()?),
        Duration::from_secs(config.auth.password_cache_secs),
    );
    let signer = match &config.auth.token_secret {
        Some(secret) => HmacTokenSigner::new(secret.expose().as_bytes())
            .map_err(|e| ConfigError::invalid("auth.token_secret", e))?,
        None => {
            tracing::warn!(
                "no auth.token_secret configured: API tokens are signed with a random key and \
                 stop working when this process restarts"
            );
            HmacTokenSigner::generate()
        }
    };
    Ok(Auth {
        hasher: Arc::new(hasher),
        signer: Arc::new(signer),
    })
}

/// Builds every adapter and the service.
///
/// # Errors
///
/// [`StartError`] naming what could not be built.
pub async fn wire(config: &Config, dns: Dns, migrate: bool) -> Result<Wired, StartError> {
    let settings = settings(config)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let auth = auth(config)?;
    let acme = Arc::new(acme_client(config)?);
    let keys = Arc::new(RcgenCsrFactory::new());

    // TODO(store): wire acmeport_store::Store (connect to config.database_url(), KeyCipher
    // from keys.encryption_keys or the key file, migrate when `migrate`) as users, accounts,
    // orders, certificates and tokens, and StoreReadiness over it, once adapters/store
    // lands in main.
    let _ = (migrate, &clock);
    // TODO(dns): build the DNS providers of config.dns.providers (route53, cloudflare,
    // rfc2136) and the HickoryPropagationChecker from config.dns.propagation, once the
    // DNS adapters land in main.
    let _ = dns;
    let _ = (settings, auth, acme, keys);
    let _: fn(Ports, Settings) -> Acmeport = Acmeport::new;
    let _ = DnsProviders::new();
    Err(StartError::NotWired(
        "storage (adapters/store) and DNS providers",
    ))
}

/// `acmeport migrate`: connects and migrates the database.
///
/// # Errors
///
/// [`StartError::Storage`].
pub async fn migrate(config: &Config) -> Result<(), StartError> {
    // TODO(store): Store::connect(config.database_url()) + Store::migrate once
    // adapters/store lands in main.
    let _ = config.database_url();
    Err(StartError::NotWired("storage (adapters/store)"))
}

/// `GET /readyz`: the database answers.
pub struct StoreReadiness;

#[async_trait]
impl Readiness for StoreReadiness {
    async fn check(&self) -> Result<(), NotReady> {
        Err(NotReady::new("storage is not wired yet", None))
    }
}
