//! Translates configuration into the facade's [`Builder`] (settings, adapter settings,
//! DNS provider instances, storage) and builds the engine. Nothing here decides anything
//! about certificates, and nothing here connects adapters: the facade does.

use crate::config::{Config, ConfigError, ProviderSection, Secret};
use crate::error::StartError;
use acmeport::{BuildError, Builder, DnsSetup, Engine};
use acmeport_acme::{AcmeClientConfig, InstantAcmeClient};
use acmeport_auth::{CachingHasher, HmacTokenSigner};
use acmeport_cloudflare::CloudflareSettings;
use acmeport_dns_check::{HickoryPropagationChecker, PropagationSettings as CheckSettings};
use acmeport_domain::ports::{PasswordHasher, TokenSigner};
use acmeport_domain::service::{DnsProviders, Settings};
use acmeport_domain::Acmeport;
use acmeport_domain::Backoff;
use acmeport_domain::ProviderName;
use acmeport_rfc2136::Rfc2136Settings;
use acmeport_route53::{Route53Settings, StaticCredentials};
use acmeport_store::{KeyCipher, Store};
use acmeport_webhooks::HttpWebhookSender;
use std::sync::Arc;
use std::time::Duration;

/// The parts every command needs: the engine, its service and its storage.
pub struct Wired {
    pub engine: Engine,
    pub service: Acmeport,
    pub store: Store,
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
        allow_any_name: config.authorization.allow_any_name,
        allowed_directories: Some(config.allowed_directories()?),
        lease: Duration::from_secs(config.workers.lease_secs),
        lifecycle: config.lifecycle_settings()?,
        retry_budget: Duration::from_secs(config.workers.retry_budget_secs),
        retry_backoff: Backoff {
            initial: Duration::from_millis(config.workers.retry_backoff_ms),
            max: Duration::from_secs(config.workers.retry_backoff_max_secs),
        },
        step_deadline: Duration::from_secs(config.workers.step_deadline_secs),
        poll_backoff: Backoff {
            initial: Duration::from_millis(config.workers.poll_backoff_ms),
            max: Duration::from_secs(config.workers.poll_backoff_max_secs),
        },
        ca_timeout: Duration::from_secs(
            config
                .acme
                .validation_timeout_secs
                .max(config.acme.issuance_timeout_secs),
        ),
        validation_retries: config.workers.validation_retries,
        renewal: config.renewal_settings()?,
    })
}

/// The ACME client's configuration, with the configured extra roots read.
///
/// # Errors
///
/// An unreadable root file, named by its key.
pub fn acme_client_config(config: &Config) -> Result<AcmeClientConfig, ConfigError> {
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
    // The configured directory's host is allowed by the facade.
    Ok(AcmeClientConfig {
        extra_roots_pem,
        webpki_roots: config.acme.webpki_roots,
        request_timeout: Duration::from_secs(config.acme.request_timeout_secs),
        allowed_private_hosts: config.acme.allowed_private_hosts.clone(),
        max_body_bytes: config.acme.max_body_bytes,
        ..AcmeClientConfig::default()
    })
}

/// The ACME client, to check the configuration (`acmeport config check`).
///
/// # Errors
///
/// An unreadable or unusable root file, named by its key.
pub fn acme_client(config: &Config) -> Result<InstantAcmeClient, StartError> {
    InstantAcmeClient::new(acme_client_config(config)?)
        .map_err(|e| ConfigError::invalid("acme.extra_roots", e).into())
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
        // Tokens then live as long as the process; `serve` warns about it.
        None => HmacTokenSigner::generate(),
    };
    Ok(Auth {
        hasher: Arc::new(hasher),
        signer: Arc::new(signer),
    })
}

/// The master keys that encrypt private keys and credentials at rest.
///
/// # Errors
///
/// A bad key (naming `keys.encryption_keys`) or an unusable key file (naming
/// `keys.key_file`).
pub fn key_cipher(config: &Config) -> Result<KeyCipher, ConfigError> {
    if config.keys.encryption_keys.is_empty() {
        let path = config.key_file();
        KeyCipher::load_or_create(&path).map_err(|e| ConfigError::invalid("keys.key_file", e))
    } else {
        let keys: Vec<_> = config
            .keys
            .encryption_keys
            .iter()
            .map(crate::config::Secret::to_secret_string)
            .collect();
        KeyCipher::from_base64(&keys).map_err(|e| ConfigError::invalid("keys.encryption_keys", e))
    }
}

/// The propagation check of `[dns.propagation]`; without resolvers, those of
/// `/etc/resolv.conf`.
#[must_use]
pub fn propagation_settings(config: &Config) -> CheckSettings {
    let p = &config.dns.propagation;
    let resolvers = if p.resolvers.is_empty() {
        acmeport::system_resolvers()
    } else {
        p.resolvers.clone()
    };
    let mut settings = CheckSettings::new(resolvers);
    settings.authoritative_port = p.authoritative_port;
    settings.authoritative_servers = p.authoritative_servers.clone();
    settings.query_timeout = Duration::from_secs(p.query_timeout_secs);
    settings
}

/// The propagation checker of `[dns.propagation]` (`acmeport dns test`).
///
/// # Errors
///
/// No resolver found, or one hickory refuses.
pub fn propagation_checker(config: &Config) -> Result<HickoryPropagationChecker, ConfigError> {
    HickoryPropagationChecker::new(propagation_settings(config))
        .map_err(|e| ConfigError::invalid("dns.propagation.resolvers", e))
}

/// The DNS provider instances of `[dns.providers]`, the default one, their zones and
/// propagation exemptions, as the facade takes them.
///
/// # Errors
///
/// Settings that do not go together, naming `dns.providers.<name>`.
pub fn dns_setup(config: &Config) -> Result<DnsSetup, ConfigError> {
    let (_, default) = config.provider_names()?;
    let mut setup = DnsSetup::new();
    for (name, section) in &config.dns.providers {
        let key = format!("dns.providers.{name}");
        let id = ProviderName::parse(name).map_err(|e| ConfigError::invalid(&key, e))?;
        setup = match section {
            ProviderSection::Route53(r) => {
                let credentials = match (&r.access_key_id, &r.secret_access_key) {
                    (None, None) => None,
                    (Some(id), Some(secret)) => Some(StaticCredentials {
                        access_key_id: id.clone(),
                        secret_access_key: secret.secret(),
                        session_token: r.session_token.as_ref().map(Secret::secret),
                    }),
                    _ => {
                        return Err(ConfigError::invalid(
                            &key,
                            "access_key_id and secret_access_key go together",
                        ))
                    }
                };
                let mut settings = Route53Settings {
                    region: r.region.clone(),
                    endpoint_url: r.endpoint_url.clone(),
                    credentials,
                    hosted_zone_id: r.hosted_zone_id.clone(),
                    ..Route53Settings::default()
                };
                if let Some(ttl) = r.ttl {
                    settings.ttl = ttl;
                }
                if let Some(timeout) = r.timeout_secs {
                    settings.request_timeout = Duration::from_secs(timeout);
                }
                setup.route53(id, settings)
            }
            ProviderSection::Cloudflare(c) => {
                let mut settings = CloudflareSettings::new(c.api_token.secret());
                settings.base_url = c.base_url.clone();
                settings.zone_id = c.zone_id.clone();
                if let Some(ttl) = c.ttl {
                    settings.ttl = ttl;
                }
                if let Some(timeout) = c.timeout_secs {
                    settings.timeout = Duration::from_secs(timeout);
                }
                setup.cloudflare(id, settings)
            }
            ProviderSection::Rfc2136(r) => {
                let mut settings =
                    Rfc2136Settings::new(r.server, r.key_name.clone(), r.secret.secret());
                settings.zone = r.zone.clone();
                if let Some(ttl) = r.ttl {
                    settings.ttl = ttl;
                }
                if let Some(timeout) = r.timeout_secs {
                    settings.timeout = Duration::from_secs(timeout);
                }
                setup.rfc2136(id, settings)
            }
            ProviderSection::Exec(e) => setup.provider(id, crate::dns::exec(e, &key)?),
            ProviderSection::Webhook(w) => setup.provider(id, crate::dns::webhook(w, &key)?),
            ProviderSection::PowerDns(p) => setup.provider(id, crate::dns::powerdns(p, &key)?),
            ProviderSection::AcmeDns(a) => {
                setup.provider(id, crate::dns::acme_dns(a, &key, config)?)
            }
        };
    }
    if let Some(default) = default {
        setup = setup.default_provider(default);
    }
    for (name, zones) in config.provider_zones()? {
        setup = setup.zones(name, zones);
    }
    for name in config.unchecked_providers()? {
        setup = setup.skip_propagation_check(name);
    }
    Ok(setup)
}

/// The DNS provider instances of `[dns.providers]`, built.
///
/// # Errors
///
/// Settings a provider refuses, naming `dns.providers.<name>`.
pub async fn dns_providers(config: &Config) -> Result<DnsProviders, ConfigError> {
    dns_setup(config)?
        .build()
        .await
        .map_err(|e| ConfigError::invalid(format!("dns.providers.{}", e.name), e.source))
}

/// The facade's builder with everything the configuration says. `dns` says whether the
/// DNS providers are built (`user add` needs none); `migrate` whether the database is
/// migrated first.
///
/// # Errors
///
/// [`ConfigError`] naming the bad key.
pub fn builder(config: &Config, dns: Dns, migrate: bool) -> Result<Builder, StartError> {
    if config.database.url.is_none() || config.keys.key_file.is_none() {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            ConfigError::invalid(
                "data_dir",
                format!("cannot create {}: {e}", config.data_dir.display()),
            )
        })?;
    }
    let auth = auth(config)?;
    let webhooks = HttpWebhookSender::new(config.webhook_endpoints()?, config.delivery_timeout())
        .map_err(|e| StartError::Service(Box::new(e)))?;
    Ok(Builder::new()
        .settings(settings(config)?)
        .acme_client_config(acme_client_config(config)?)
        .propagation_check(propagation_settings(config))
        .dns(match dns {
            Dns::Configured => dns_setup(config)?,
            Dns::None => DnsSetup::new(),
        })
        .database_url(config.database_url().expose())
        .key_cipher(key_cipher(config)?)
        .migrate(migrate)
        .password_hasher(auth.hasher)
        .token_signer(auth.signer)
        .quotas(config.quotas.quotas())
        .webhooks(Arc::new(webhooks))
        .workers(config.workers.count)
        .poll_interval(Duration::from_secs(config.workers.poll_interval_secs))
        .lifecycle_intervals(config.delivery_poll(), config.expiry_scan_interval()))
}

/// Builds the engine from configuration (see [`builder`]).
///
/// # Errors
///
/// [`StartError`] naming what could not be built.
pub async fn wire(config: &Config, dns: Dns, migrate: bool) -> Result<Wired, StartError> {
    let engine = builder(config, dns, migrate)?
        .build()
        .await
        .map_err(|e| build_error(config, e))?;
    Ok(Wired {
        service: engine.service().clone(),
        store: engine.store().clone(),
        engine,
    })
}

/// The facade's build error, named by configuration key or database.
fn build_error(config: &Config, error: BuildError) -> StartError {
    let url = config.database_url();
    match error {
        BuildError::Dns(e) => {
            ConfigError::invalid(format!("dns.providers.{}", e.name), e.source).into()
        }
        BuildError::Acme(e) => ConfigError::invalid("acme.extra_roots", e).into(),
        BuildError::Propagation(e) => ConfigError::invalid("dns.propagation.resolvers", e).into(),
        BuildError::Open(e) => StartError::Storage {
            what: format!("cannot open {}", url.redacted()),
            source: Box::new(e),
        },
        BuildError::Migrate(e) => StartError::Storage {
            what: format!("cannot migrate {}", url.redacted()),
            source: Box::new(e),
        },
        other => StartError::Service(Box::new(other)),
    }
}

/// `acmeport migrate`: connects and migrates the database.
///
/// # Errors
///
/// [`StartError::Storage`].
pub async fn migrate(config: &Config) -> Result<(), StartError> {
    let wired = wire(config, Dns::None, true).await?;
    drop(wired.engine);
    wired.store.close().await.map_err(|e| StartError::Storage {
        what: "cannot close the database".into(),
        source: Box::new(e),
    })
}
