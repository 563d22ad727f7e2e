//! Builds the real adapters from configuration and hands them to the domain service.
//! Nothing here decides anything about certificates: it only connects parts.

use crate::config::{Config, ConfigError, ProviderSection};
use crate::error::StartError;
use acmeport_acme::{AcmeClientConfig, InstantAcmeClient};
use acmeport_auth::{CachingHasher, HmacTokenSigner, RandomKeySecrets, SystemClock};
use acmeport_cloudflare::{ApiToken as CloudflareToken, CloudflareProvider, CloudflareSettings};
use acmeport_dns_check::{HickoryPropagationChecker, PropagationSettings as CheckSettings};
use acmeport_domain::ports::{Clock, DnsProvider, PasswordHasher, TokenSigner};
use acmeport_domain::service::{DnsProviders, Ports, SecurityPorts, Settings};
use acmeport_domain::Acmeport;
use acmeport_domain::Backoff;
use acmeport_domain::ProviderName;
use acmeport_http::{NotReady, Readiness};
use acmeport_keys::RcgenCsrFactory;
use acmeport_rfc2136::{Rfc2136Provider, Rfc2136Settings, TsigSecret};
use acmeport_route53::{Route53Provider, Route53Settings, SecretKey, StaticCredentials};
use acmeport_store::{KeyCipher, Store};
use async_trait::async_trait;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The parts every command needs: storage and the service over it.
pub struct Wired {
    pub service: Acmeport,
    pub readiness: Arc<dyn Readiness>,
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
    let acme = AcmeClientConfig {
        extra_roots_pem,
        webpki_roots: config.acme.webpki_roots,
        request_timeout: Duration::from_secs(config.acme.request_timeout_secs),
        allowed_private_hosts: config.acme_private_hosts()?,
        max_body_bytes: config.acme.max_body_bytes,
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

/// Opens the database (creating `data_dir` when the default SQLite file or key file live
/// there) and migrates it when `migrate`.
///
/// # Errors
///
/// [`StartError::Storage`] naming the (redacted) URL.
pub async fn store(
    config: &Config,
    clock: Arc<dyn Clock>,
    migrate: bool,
) -> Result<Store, StartError> {
    if config.database.url.is_none() || config.keys.key_file.is_none() {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            ConfigError::invalid(
                "data_dir",
                format!("cannot create {}: {e}", config.data_dir.display()),
            )
        })?;
    }
    let cipher = key_cipher(config)?;
    let url = config.database_url();
    let store = Store::connect(url.expose(), cipher)
        .await
        .map_err(|e| StartError::Storage {
            what: format!("cannot open {}", url.redacted()),
            source: Box::new(e),
        })?
        .with_clock(clock);
    if migrate {
        store.migrate().await.map_err(|e| StartError::Storage {
            what: format!("cannot migrate {}", url.redacted()),
            source: Box::new(e),
        })?;
    }
    Ok(store)
}

/// The nameservers of `/etc/resolv.conf`, port 53.
fn system_resolvers() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect()
}

/// The propagation checker of `[dns.propagation]`.
///
/// # Errors
///
/// No resolver found, or one hickory refuses.
pub fn propagation_checker(config: &Config) -> Result<HickoryPropagationChecker, ConfigError> {
    let p = &config.dns.propagation;
    let resolvers = if p.resolvers.is_empty() {
        system_resolvers()
    } else {
        p.resolvers.clone()
    };
    let mut settings = CheckSettings::new(resolvers);
    settings.authoritative_port = p.authoritative_port;
    settings.authoritative_servers = p.authoritative_servers.clone();
    settings.query_timeout = Duration::from_secs(p.query_timeout_secs);
    HickoryPropagationChecker::new(settings)
        .map_err(|e| ConfigError::invalid("dns.propagation.resolvers", e))
}

/// The DNS provider instances of `[dns.providers]` and the default one.
///
/// # Errors
///
/// Settings a provider refuses, naming `dns.providers.<name>`.
pub async fn dns_providers(config: &Config) -> Result<DnsProviders, ConfigError> {
    let (_, default) = config.provider_names()?;
    let mut providers = DnsProviders::new();
    for (name, section) in &config.dns.providers {
        let key = format!("dns.providers.{name}");
        let id = ProviderName::parse(name).map_err(|e| ConfigError::invalid(&key, e))?;
        let provider: Arc<dyn DnsProvider> = match section {
            ProviderSection::Route53(r) => {
                let credentials = match (&r.access_key_id, &r.secret_access_key) {
                    (None, None) => None,
                    (Some(id), Some(secret)) => Some(StaticCredentials {
                        access_key_id: id.clone(),
                        secret_access_key: SecretKey::new(secret.expose()),
                        session_token: r.session_token.as_ref().map(|t| SecretKey::new(t.expose())),
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
                let route53 = Arc::new(Route53Provider::new(settings).await);
                if r.access_key_id.is_none() {
                    crate::dns::report_missing_aws_credentials(id.clone(), route53.clone());
                }
                route53
            }
            ProviderSection::Cloudflare(c) => {
                let mut settings =
                    CloudflareSettings::new(CloudflareToken::new(c.api_token.expose()));
                settings.base_url = c.base_url.clone();
                settings.zone_id = c.zone_id.clone();
                if let Some(ttl) = c.ttl {
                    settings.ttl = ttl;
                }
                if let Some(timeout) = c.timeout_secs {
                    settings.timeout = Duration::from_secs(timeout);
                }
                Arc::new(
                    CloudflareProvider::new(settings).map_err(|e| ConfigError::invalid(&key, e))?,
                )
            }
            ProviderSection::Rfc2136(r) => {
                let mut settings = Rfc2136Settings::new(
                    r.server,
                    r.key_name.clone(),
                    TsigSecret::new(r.secret.expose()),
                );
                settings.zone = r.zone.clone();
                if let Some(ttl) = r.ttl {
                    settings.ttl = ttl;
                }
                if let Some(timeout) = r.timeout_secs {
                    settings.timeout = Duration::from_secs(timeout);
                }
                Arc::new(Rfc2136Provider::new(settings).map_err(|e| ConfigError::invalid(&key, e))?)
            }
            ProviderSection::Exec(e) => crate::dns::exec(e, &key)?,
            ProviderSection::Webhook(w) => crate::dns::webhook(w, &key)?,
            ProviderSection::PowerDns(p) => crate::dns::powerdns(p, &key)?,
            ProviderSection::AcmeDns(a) => crate::dns::acme_dns(a, &key, config)?,
        };
        tracing::debug!(provider = %id, kind = section.kind(), "DNS provider configured");
        providers = providers.with(id, provider);
    }
    if let Some(default) = default {
        providers = providers.with_default(default);
    }
    for (name, zones) in config.provider_zones()? {
        tracing::info!(provider = %name, zones = ?zones.names(), "DNS provider confined to its zones");
        providers = providers.with_zones(name, zones);
    }
    for name in config.unchecked_providers()? {
        tracing::info!(provider = %name, "records of this provider skip the propagation check");
        providers = providers.without_propagation_check(name);
    }
    Ok(providers)
}

/// Builds every adapter and the service. `dns` says whether the DNS providers are built
/// (`user add` needs none); `migrate` whether the database is migrated first.
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
    let propagation = Arc::new(propagation_checker(config)?);
    let providers = match dns {
        Dns::Configured => dns_providers(config).await?,
        Dns::None => DnsProviders::new(),
    };
    let store = store(config, clock.clone(), migrate).await?;
    let shared = Arc::new(store.clone());
    let usage = shared.clone();
    let ports = Ports {
        users: shared.clone(),
        accounts: shared.clone(),
        orders: shared.clone(),
        certificates: shared.clone(),
        events: shared.clone(),
        tokens: shared,
        acme,
        csr: keys.clone(),
        inspector: keys,
        dns: providers,
        propagation,
        clock,
        hasher: auth.hasher,
        signer: auth.signer,
    };
    Ok(Wired {
        service: Acmeport::new(ports, settings)
            .with_security(SecurityPorts {
                grants: Arc::new(store.clone()),
                api_keys: Arc::new(store.clone()),
                key_secrets: Arc::new(RandomKeySecrets),
                audit: Arc::new(store.clone()),
            })
            .with_quotas(config.quotas.quotas(), usage),
        readiness: Arc::new(StoreReadiness {
            store: store.clone(),
        }),
        store,
    })
}

/// `acmeport migrate`: connects and migrates the database.
///
/// # Errors
///
/// [`StartError::Storage`].
pub async fn migrate(config: &Config) -> Result<(), StartError> {
    let store = store(config, Arc::new(SystemClock), true).await?;
    store.close().await.map_err(|e| StartError::Storage {
        what: "cannot close the database".into(),
        source: Box::new(e),
    })
}

/// `GET /readyz`: the database answers within a few seconds.
pub struct StoreReadiness {
    store: Store,
}

#[async_trait]
impl Readiness for StoreReadiness {
    async fn check(&self) -> Result<(), NotReady> {
        match tokio::time::timeout(Duration::from_secs(3), self.store.connection().ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(NotReady::new(
                "the database does not answer",
                Some(Box::new(e)),
            )),
            Err(_) => Err(NotReady::new(
                "the database did not answer within 3 s",
                None,
            )),
        }
    }
}
