//! [`Builder`]: every adapter with a default, so that a program sets only what differs.

use crate::background::{BackgroundSettings, NoWebhooks, Signals};
use crate::dns::{DnsSetup, DnsSetupError};
use crate::engine::{Engine, Inner};
use acmeport_acme::{AcmeClientConfig, InstantAcmeClient};
use acmeport_auth::{Argon2Hasher, CachingHasher, HmacTokenSigner, RandomKeySecrets, SystemClock};
use acmeport_dns_check::{HickoryPropagationChecker, PropagationSettings as CheckerSettings};
use acmeport_domain::ports::{Clock, PasswordHasher, TokenSigner, UsageCounter, WebhookSender};
use acmeport_domain::service::{Ports, Quotas, SecurityPorts, Settings};
use acmeport_domain::{Acmeport, DirectoryUrl};
use acmeport_keys::RcgenCsrFactory;
use acmeport_store::{KeyCipher, Store, StoreError};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, Notify, OnceCell};

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("acmeport needs a storage backend: enable the `sqlite` or `postgres` feature");

/// How long cached password checks stay valid (the users layer).
const PASSWORD_CACHE: Duration = Duration::from_secs(300);

/// Where the engine keeps its state.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Storage {
    /// A SQLite file, created when missing (its directory too). One process owns it.
    #[cfg(feature = "sqlite")]
    Sqlite(PathBuf),
    /// A SQLite file in a new temporary directory, removed when the engine is dropped:
    /// nothing survives the process (tests, one-shot tools).
    #[cfg(feature = "sqlite")]
    Temporary,
    /// A database URL: `sqlite://<path>?mode=rwc` or `postgres://user@host/db`
    /// (several instances may share a PostgreSQL database). Needs a master key
    /// ([`Builder::key_cipher`] or [`Builder::key_file`]).
    Url(secrecy::SecretString),
}

/// The engine could not be built; says which part and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A DNS provider refused its settings.
    #[error(transparent)]
    Dns(#[from] DnsSetupError),
    /// The ACME client refused its configuration (an unusable root certificate).
    #[error("ACME client: {0}")]
    Acme(#[source] acmeport_acme::AcmeConfigError),
    /// The propagation checker has no usable resolver.
    #[error("DNS propagation check: {0}")]
    Propagation(#[source] acmeport_dns_check::SettingsError),
    /// The master key (which encrypts private keys at rest) cannot be read or created.
    #[error("master key: {0}")]
    Key(String),
    /// The database's directory cannot be created.
    #[error("{0}")]
    Directory(String),
    /// The database cannot be opened or reached.
    #[error("cannot open the database")]
    Open(#[source] StoreError),
    /// The database cannot be migrated.
    #[error("cannot migrate the database")]
    Migrate(#[source] StoreError),
}

/// Builds an [`Engine`] with sensible defaults for everything not set:
///
/// | part | default |
/// |------|---------|
/// | storage | a SQLite file `acmeport.db` in the working directory, migrated |
/// | master key | `<database file>.key`, created on first start (0600) |
/// | ACME directory | Let's Encrypt production ([`DirectoryUrl::LETS_ENCRYPT`]) |
/// | ACME client | the Mozilla roots, 30 s per request |
/// | keys and CSRs | rcgen (aws-lc-rs), ECDSA P-256 |
/// | DNS providers | none (HTTP-01 only) until added |
/// | propagation check | every authoritative nameserver, found through `/etc/resolv.conf` |
/// | clock | the system clock |
/// | users | none needed: the engine's shortcuts act as one disabled owner |
/// | workers | 4, polling every 5 s when idle |
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct Builder {
    settings: Settings,
    storage: Storage,
    cipher: Option<KeyCipher>,
    key_file: Option<PathBuf>,
    migrate: bool,
    acme: AcmeClientConfig,
    acme_client: Option<Arc<dyn acmeport_domain::ports::AcmeClient>>,
    propagation: Option<CheckerSettings>,
    dns: DnsSetup,
    clock: Option<Arc<dyn Clock>>,
    hasher: Option<Arc<dyn PasswordHasher>>,
    signer: Option<Arc<dyn TokenSigner>>,
    quotas: Option<Quotas>,
    webhooks: Option<Arc<dyn WebhookSender>>,
    workers: usize,
    poll: Duration,
    delivery_poll: Duration,
    expiry_scan: Duration,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("storage", &self.storage)
            .field("directory", &self.settings.default_directory)
            .field("dns", &self.dns)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Every default (see the table above).
    pub fn new() -> Self {
        Self {
            settings: Settings::default(),
            #[cfg(feature = "sqlite")]
            storage: Storage::Sqlite(PathBuf::from("acmeport.db")),
            #[cfg(not(feature = "sqlite"))]
            storage: Storage::Url(secrecy::SecretString::from(String::new())),
            cipher: None,
            key_file: None,
            migrate: true,
            acme: AcmeClientConfig::default(),
            acme_client: None,
            propagation: None,
            dns: DnsSetup::new(),
            clock: None,
            hasher: None,
            signer: None,
            quotas: None,
            webhooks: None,
            workers: 4,
            poll: Duration::from_secs(5),
            delivery_poll: Duration::from_secs(5),
            expiry_scan: Duration::from_secs(3600),
        }
    }

    /// The ACME directory accounts are registered at (Let's Encrypt production by
    /// default; [`crate::LETS_ENCRYPT_STAGING`] for trials).
    ///
    /// # Errors
    ///
    /// The URL is not an `https` URL.
    pub fn directory(mut self, url: &str) -> Result<Self, acmeport_domain::DirectoryUrlError> {
        self.settings.default_directory = DirectoryUrl::parse(url)?;
        Ok(self)
    }

    /// Also trusts these root certificates (PEM) for the CA's HTTPS: a private CA, or a
    /// test CA such as Pebble. (The directory's host may be a private address; no other
    /// ACME host may.)
    pub fn trust_root_pem(mut self, pem: impl Into<String>) -> Self {
        self.acme.extra_roots_pem.push(pem.into());
        self
    }

    /// The ACME client's whole configuration (roots, timeouts, allowed private hosts).
    pub fn acme_client_config(mut self, config: AcmeClientConfig) -> Self {
        self.acme = config;
        self
    }

    /// Another [`AcmeClient`](acmeport_domain::ports::AcmeClient) implementation than
    /// instant-acme's.
    pub fn acme_client(mut self, client: Arc<dyn acmeport_domain::ports::AcmeClient>) -> Self {
        self.acme_client = Some(client);
        self
    }

    /// Where state is kept (a SQLite file `acmeport.db` by default).
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// A SQLite file at `path`.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(self, path: impl Into<PathBuf>) -> Self {
        self.storage(Storage::Sqlite(path.into()))
    }

    /// A temporary SQLite database removed with the engine ([`Storage::Temporary`]).
    #[cfg(feature = "sqlite")]
    pub fn temporary_storage(self) -> Self {
        self.storage(Storage::Temporary)
    }

    /// A database URL ([`Storage::Url`]).
    pub fn database_url(self, url: impl Into<String>) -> Self {
        self.storage(Storage::Url(secrecy::SecretString::from(url.into())))
    }

    /// The master keys that encrypt private keys and account keys at rest.
    pub fn key_cipher(mut self, cipher: KeyCipher) -> Self {
        self.cipher = Some(cipher);
        self
    }

    /// Reads the master key from `path`, creating it with a new random key (0600) on
    /// first start.
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// Whether the database is migrated at build (default true).
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Adds a DNS provider instance of your own under `name`.
    ///
    /// # Errors
    ///
    /// `name` is not a provider name (lower-case letters, digits, `-`, `_`).
    pub fn dns_provider(
        mut self,
        name: &str,
        provider: Arc<dyn acmeport_domain::ports::DnsProvider>,
    ) -> Result<Self, acmeport_domain::ProviderNameError> {
        let name = acmeport_domain::ProviderName::parse(name)?;
        self.dns = self.dns.provider(name, provider);
        Ok(self)
    }

    /// Adds a Route53 instance under `name`.
    ///
    /// # Errors
    ///
    /// `name` is not a provider name.
    #[cfg(feature = "route53")]
    pub fn route53(
        mut self,
        name: &str,
        settings: acmeport_route53::Route53Settings,
    ) -> Result<Self, acmeport_domain::ProviderNameError> {
        let name = acmeport_domain::ProviderName::parse(name)?;
        self.dns = self.dns.route53(name, settings);
        Ok(self)
    }

    /// Adds a Cloudflare instance under `name`.
    ///
    /// # Errors
    ///
    /// `name` is not a provider name.
    #[cfg(feature = "cloudflare")]
    pub fn cloudflare(
        mut self,
        name: &str,
        settings: acmeport_cloudflare::CloudflareSettings,
    ) -> Result<Self, acmeport_domain::ProviderNameError> {
        let name = acmeport_domain::ProviderName::parse(name)?;
        self.dns = self.dns.cloudflare(name, settings);
        Ok(self)
    }

    /// Adds an RFC 2136 instance under `name`.
    ///
    /// # Errors
    ///
    /// `name` is not a provider name.
    #[cfg(feature = "rfc2136")]
    pub fn rfc2136(
        mut self,
        name: &str,
        settings: acmeport_rfc2136::Rfc2136Settings,
    ) -> Result<Self, acmeport_domain::ProviderNameError> {
        let name = acmeport_domain::ProviderName::parse(name)?;
        self.dns = self.dns.rfc2136(name, settings);
        Ok(self)
    }

    /// The instance DNS-01 orders use when they name none.
    ///
    /// # Errors
    ///
    /// `name` is not a provider name.
    pub fn default_dns_provider(
        mut self,
        name: &str,
    ) -> Result<Self, acmeport_domain::ProviderNameError> {
        let name = acmeport_domain::ProviderName::parse(name)?;
        self.dns = self.dns.default_provider(name);
        Ok(self)
    }

    /// Every DNS provider instance at once, replacing those added before.
    pub fn dns(mut self, dns: DnsSetup) -> Self {
        self.dns = dns;
        self
    }

    /// How the propagation of DNS-01 records is checked: the resolvers that find a
    /// zone's nameservers, or the servers to ask directly.
    pub fn propagation_check(mut self, settings: CheckerSettings) -> Self {
        self.propagation = Some(settings);
        self
    }

    /// The service settings (directory, key type, timeouts, renewal policy, ...).
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Changes some service settings in place.
    pub fn configure(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(&mut self.settings);
        self
    }

    /// Another clock than the system's (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The password hasher of the users layer (default: Argon2id with a short cache of
    /// successful checks).
    pub fn password_hasher(mut self, hasher: Arc<dyn PasswordHasher>) -> Self {
        self.hasher = Some(hasher);
        self
    }

    /// The API token signer of the users layer (default: HMAC-SHA256 with a random key,
    /// so tokens end with the process).
    pub fn token_signer(mut self, signer: Arc<dyn TokenSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Enforces per-user quotas (none by default).
    pub fn quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = Some(quotas);
        self
    }

    /// Delivers lifecycle events to webhooks (none by default: events are kept and
    /// marked skipped).
    pub fn webhooks(mut self, sender: Arc<dyn WebhookSender>) -> Self {
        self.webhooks = Some(sender);
        self
    }

    /// How many orders are worked at once (4 by default; waits cost no worker).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// How long an idle worker sleeps at most before looking for due orders (5 s).
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// How often the webhook outbox is looked at (5 s) and expiry warnings are raised
    /// (hourly).
    pub fn lifecycle_intervals(mut self, delivery_poll: Duration, expiry_scan: Duration) -> Self {
        self.delivery_poll = delivery_poll;
        self.expiry_scan = expiry_scan;
        self
    }

    /// Builds every adapter, opens (and migrates) the database, and returns the engine.
    /// Nothing runs in the background until [`Engine::start`].
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming the part at fault.
    pub async fn build(self) -> Result<Engine, BuildError> {
        // Both rustls providers are in the dependency graph; pick one explicitly.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let acme = match self.acme_client {
            Some(client) => client,
            None => {
                let mut config = self.acme;
                // The configured directory may live on a private address (a private CA,
                // a test CA); directories of users' accounts may not.
                if let Some(host) = url::Url::parse(self.settings.default_directory.as_str())
                    .ok()
                    .and_then(|u| u.host_str().map(ToOwned::to_owned))
                {
                    if !config.allowed_private_hosts.contains(&host) {
                        config.allowed_private_hosts.push(host);
                    }
                }
                Arc::new(InstantAcmeClient::new(config).map_err(BuildError::Acme)?)
            }
        };
        let keys = Arc::new(RcgenCsrFactory::new());
        let propagation = Arc::new(
            HickoryPropagationChecker::new(
                self.propagation
                    .unwrap_or_else(|| CheckerSettings::new(system_resolvers())),
            )
            .map_err(BuildError::Propagation)?,
        );
        let providers = self.dns.build().await?;
        let hasher = self.hasher.unwrap_or_else(|| {
            Arc::new(CachingHasher::new(
                Arc::new(Argon2Hasher::default()),
                PASSWORD_CACHE,
            ))
        });
        let signer = self
            .signer
            .unwrap_or_else(|| Arc::new(HmacTokenSigner::generate()));
        let (store, temporary) =
            open_store(self.storage, self.cipher, self.key_file, clock.clone()).await?;
        if self.migrate {
            store.migrate().await.map_err(BuildError::Migrate)?;
        }
        #[cfg(not(feature = "sqlite"))]
        let _: Option<()> = temporary;

        let shared = Arc::new(store.clone());
        let ports = Ports {
            users: shared.clone(),
            accounts: shared.clone(),
            orders: shared.clone(),
            certificates: shared.clone(),
            events: shared.clone(),
            tokens: shared.clone(),
            acme,
            csr: keys.clone(),
            inspector: keys,
            dns: providers,
            propagation,
            clock,
            hasher,
            signer,
        };
        let new_work = Arc::new(Notify::new());
        let signal = new_work.clone();
        let mut service = Acmeport::new(ports, self.settings)
            .with_security(SecurityPorts {
                grants: shared.clone(),
                api_keys: shared.clone(),
                key_secrets: Arc::new(RandomKeySecrets),
                audit: shared.clone(),
            })
            .with_work_signal(Arc::new(move || signal.notify_one()));
        if let Some(quotas) = self.quotas {
            let usage: Arc<dyn UsageCounter> = shared;
            service = service.with_quotas(quotas, usage);
        }
        let (worked, _) = broadcast::channel(256);
        Ok(Engine {
            inner: Arc::new(Inner {
                service,
                store,
                signals: Signals { new_work, worked },
                background: BackgroundSettings {
                    workers: self.workers,
                    poll: self.poll,
                    delivery_poll: self.delivery_poll,
                    expiry_scan: self.expiry_scan,
                    webhooks: self.webhooks.unwrap_or_else(|| Arc::new(NoWebhooks)),
                },
                owner: OnceCell::new(),
                #[cfg(feature = "sqlite")]
                _temporary: temporary,
            }),
        })
    }
}

#[cfg(feature = "sqlite")]
type Temporary = Option<tempfile::TempDir>;
#[cfg(not(feature = "sqlite"))]
type Temporary = Option<()>;

/// Opens the store with its master key.
async fn open_store(
    storage: Storage,
    cipher: Option<KeyCipher>,
    key_file: Option<PathBuf>,
    clock: Arc<dyn Clock>,
) -> Result<(Store, Temporary), BuildError> {
    use secrecy::ExposeSecret as _;
    let load = |path: &std::path::Path| {
        KeyCipher::load_or_create(path)
            .map_err(|e| BuildError::Key(format!("{}: {e}", path.display())))
    };
    let (url, cipher, temporary): (String, KeyCipher, Temporary) = match storage {
        #[cfg(feature = "sqlite")]
        Storage::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    BuildError::Directory(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let cipher = match (cipher, key_file) {
                (Some(cipher), _) => cipher,
                (None, Some(file)) => load(&file)?,
                (None, None) => load(&path.with_extension("key"))?,
            };
            (Store::sqlite_url(&path), cipher, None)
        }
        #[cfg(feature = "sqlite")]
        Storage::Temporary => {
            let dir = tempfile::Builder::new()
                .prefix("acmeport-")
                .tempdir()
                .map_err(|e| {
                    BuildError::Directory(format!("cannot create a temporary directory: {e}"))
                })?;
            let cipher = match (cipher, key_file) {
                (Some(cipher), _) => cipher,
                (None, Some(file)) => load(&file)?,
                (None, None) => random_cipher()?,
            };
            (
                Store::sqlite_url(&dir.path().join("acmeport.db")),
                cipher,
                Some(dir),
            )
        }
        Storage::Url(url) => {
            let cipher = match (cipher, key_file) {
                (Some(cipher), _) => cipher,
                (None, Some(file)) => load(&file)?,
                (None, None) => {
                    return Err(BuildError::Key(
                        "a database URL needs a master key: set Builder::key_cipher or \
                         Builder::key_file"
                            .into(),
                    ))
                }
            };
            (url.expose_secret().to_owned(), cipher, None)
        }
    };
    let store = Store::connect(&url, cipher)
        .await
        .map_err(BuildError::Open)?
        .with_clock(clock);
    Ok((store, temporary))
}

/// A fresh random master key that lives only in memory.
#[cfg(feature = "sqlite")]
fn random_cipher() -> Result<KeyCipher, BuildError> {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    KeyCipher::from_base64(&[secrecy::SecretString::from(text)])
        .map_err(|e| BuildError::Key(e.to_string()))
}

/// The nameservers of `/etc/resolv.conf`, port 53.
#[must_use]
pub fn system_resolvers() -> Vec<SocketAddr> {
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
