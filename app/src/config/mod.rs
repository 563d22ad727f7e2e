//! Configuration: one TOML file plus `ACMEPORT_`-prefixed environment overrides.
//!
//! The file is the one named by `--config` (or `ACMEPORT_CONFIG`), else `acmeport.toml`
//! in the working directory if it exists, else none: every key has a default, so
//! `acmeport serve` runs with no configuration at all. Environment variables override the
//! file; `__` separates levels (`ACMEPORT_API__LISTEN=0.0.0.0:8080`,
//! `ACMEPORT_DNS__PROVIDERS__CF__API_TOKEN=...`). `acmeport.example.toml` documents
//! every key.
//!
//! Unknown keys are refused, and every value with rules is checked by [`Config::validate`]
//! at start-up, so a typo stops the service with a message naming the key instead of
//! being ignored.

mod acme;
mod auth;
mod dns;
mod lifecycle;
mod listeners;
mod secret;
mod storage;
mod workers;

pub use acme::{AcmeSection, CsrSection};
pub use auth::{AuthSection, AuthorizationSection, BootstrapSection, QuotasSection};
pub use dns::{
    AcmeDnsSection, CloudflareSection, DnsSection, ExecSection, PowerDnsSection,
    PropagationSection, ProviderSection, Rfc2136Section, Route53Section, WebhookDnsSection,
};
pub use listeners::{ApiSection, ChallengeSection};
pub use storage::{DatabaseSection, DatabaseUrl, KeysSection};
pub use workers::{RenewalSection, WorkersSection};

pub use lifecycle::{DeliverySection, LifecycleSection, MetricsSection, WebhookSection};
pub use secret::Secret;

use acmeport_http::PublicUrl;
use figment::providers::{Format as _, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "acmeport.toml";

/// The top-level keys; environment variables whose first segment is another word (such
/// as `ACMEPORT_PASSWORD` for `user add`, or a test harness's own variables) are not
/// configuration.
const SECTIONS: [&str; 18] = [
    "data_dir",
    "authorization",
    "api",
    "challenge",
    "database",
    "acme",
    "csr",
    "dns",
    "auth",
    "keys",
    "workers",
    "renewal",
    "log",
    "bootstrap",
    "lifecycle",
    "webhooks",
    "metrics",
    "quotas",
];

/// The configuration cannot be loaded or is invalid. Always names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named configuration file does not exist.
    #[error("configuration file {0} not found")]
    MissingFile(PathBuf),
    /// A key is unknown, missing or of the wrong type.
    #[error("invalid configuration: `{key}`: {reason}{origin_text}", origin_text = origin.as_deref().map(|s| format!(" (in {s})")).unwrap_or_default())]
    Parse {
        key: String,
        reason: String,
        origin: Option<String>,
    },
    /// A value breaks its rules.
    #[error("invalid configuration: `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    /// A value of `key` breaks its rules.
    pub fn invalid(key: impl Into<String>, reason: impl ToString) -> Self {
        Self::Invalid {
            key: key.into(),
            reason: reason.to_string(),
        }
    }

    /// The key the error is about.
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::MissingFile(_) => None,
            Self::Parse { key, .. } | Self::Invalid { key, .. } => Some(key),
        }
    }
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        let key = e
            .path
            .iter()
            .filter(|p| p.as_str() != "default")
            .cloned()
            .collect::<Vec<_>>()
            .join(".");
        let origin = e.metadata.as_ref().map(|m| {
            m.source
                .as_ref()
                .map_or_else(|| m.name.to_string(), |s| format!("{} {s}", m.name))
        });
        Self::Parse {
            key: if key.is_empty() {
                "(top level)".to_owned()
            } else {
                key
            },
            reason: e.kind.to_string(),
            origin,
        }
    }
}

/// Everything configurable. See `acmeport.example.toml` for each key's meaning.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the SQLite database and the generated key file live by default.
    pub data_dir: PathBuf,
    pub api: ApiSection,
    pub challenge: ChallengeSection,
    pub database: DatabaseSection,
    pub acme: AcmeSection,
    pub csr: CsrSection,
    pub dns: DnsSection,
    pub auth: AuthSection,
    pub authorization: AuthorizationSection,
    pub keys: KeysSection,
    pub workers: WorkersSection,
    pub renewal: RenewalSection,
    pub log: LogSection,
    pub bootstrap: BootstrapSection,
    pub lifecycle: LifecycleSection,
    pub webhooks: Vec<WebhookSection>,
    pub metrics: MetricsSection,
    pub quotas: QuotasSection,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            api: ApiSection::default(),
            challenge: ChallengeSection::default(),
            database: DatabaseSection::default(),
            acme: AcmeSection::default(),
            csr: CsrSection::default(),
            dns: DnsSection::default(),
            auth: AuthSection::default(),
            authorization: AuthorizationSection::default(),
            keys: KeysSection::default(),
            workers: WorkersSection::default(),
            renewal: RenewalSection::default(),
            log: LogSection::default(),
            bootstrap: BootstrapSection::default(),
            lifecycle: LifecycleSection::default(),
            webhooks: Vec::new(),
            metrics: MetricsSection::default(),
            quotas: QuotasSection::default(),
        }
    }
}

/// The public CAs' directories users may register at out of the box.
pub const WELL_KNOWN_DIRECTORIES: [&str; 6] = [
    "https://acme-v02.api.letsencrypt.org/directory",
    "https://acme-staging-v02.api.letsencrypt.org/directory",
    "https://acme.zerossl.com/v2/DV90",
    "https://api.buypass.com/acme/directory",
    "https://api.test4.buypass.no/acme/directory",
    "https://dv.acme-v02.api.pki.goog/directory",
];

/// Log output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// A tracing filter (`info`, `acmeport=debug,info`); `RUST_LOG` overrides it.
    pub filter: String,
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

fn positive(key: &str, value: u64) -> Result<Duration, ConfigError> {
    if value == 0 {
        return Err(ConfigError::invalid(key, "must be greater than 0"));
    }
    Ok(Duration::from_secs(value))
}

impl Config {
    /// Loads the configuration: defaults, then the file, then the environment.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file or the key.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(path, &env)
    }

    /// As [`Self::load`] with the given environment (for tests).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file or the key.
    pub fn load_from(path: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        match path {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.to_owned())),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_FILE).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_FILE));
            }
            None => {}
        }
        for (name, value) in env {
            if let Some(variable) = EnvVar::parse(name, value) {
                figment = figment.merge(variable);
            }
        }
        let config: Self = figment.extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value with rules, naming the first bad key.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.api.public_url {
            PublicUrl::parse(url).map_err(|e| ConfigError::invalid("api.public_url", e))?;
        }
        if self.api.body_limit == 0 {
            return Err(ConfigError::invalid(
                "api.body_limit",
                "must be greater than 0",
            ));
        }
        if let Some(url) = &self.database.url {
            let text = url.expose();
            if !(text.starts_with("sqlite:")
                || text.starts_with("postgres://")
                || text.starts_with("postgresql://"))
            {
                return Err(ConfigError::invalid(
                    "database.url",
                    "must start with sqlite: or postgres://",
                ));
            }
        }
        self.default_directory()?;
        self.allowed_directories()?;
        positive("acme.request_timeout_secs", self.acme.request_timeout_secs)?;
        positive(
            "acme.validation_timeout_secs",
            self.acme.validation_timeout_secs,
        )?;
        positive(
            "acme.issuance_timeout_secs",
            self.acme.issuance_timeout_secs,
        )?;
        positive("acme.max_body_bytes", self.acme.max_body_bytes as u64)?;
        for (section, limits) in [
            ("api", self.api.limits()),
            ("challenge", self.challenge.limits()),
        ] {
            let timeouts = [
                ("header_read_timeout_secs", limits.header_read_timeout),
                ("body_read_timeout_secs", limits.body_read_timeout),
                ("idle_timeout_secs", limits.idle_timeout),
            ];
            for (key, value) in timeouts {
                positive(&format!("{section}.{key}"), value.as_secs())?;
            }
            positive(
                &format!("{section}.max_connections"),
                limits.max_connections as u64,
            )?;
            positive(
                &format!("{section}.max_connections_per_address"),
                limits.max_connections_per_address as u64,
            )?;
        }
        positive(
            "auth.failed_logins_per_address",
            u64::from(self.auth.failed_logins_per_address),
        )?;
        positive(
            "auth.failed_logins_per_username",
            u64::from(self.auth.failed_logins_per_username),
        )?;
        positive(
            "auth.failed_login_refill_secs",
            self.auth.failed_login_refill_secs,
        )?;
        if !self.acme.webpki_roots && self.acme.extra_roots.is_empty() {
            return Err(ConfigError::invalid(
                "acme.webpki_roots",
                "no trusted roots: enable webpki_roots or list extra_roots",
            ));
        }
        self.csr_subject()?;
        self.key_spec()?;
        self.provider_names()?;
        self.provider_zones()?;
        self.unchecked_providers()?;
        self.propagation()?;
        self.token_ttl()?;
        if let Some(secret) = &self.auth.token_secret {
            if secret.expose().len() < acmeport_auth::HmacTokenSigner::MIN_SECRET_LEN {
                return Err(ConfigError::invalid(
                    "auth.token_secret",
                    format!(
                        "must be at least {} bytes",
                        acmeport_auth::HmacTokenSigner::MIN_SECRET_LEN
                    ),
                ));
            }
        }
        self.argon2()?;
        positive(
            "workers.poll_interval_secs",
            self.workers.poll_interval_secs,
        )?;
        positive("workers.lease_secs", self.workers.lease_secs)?;
        self.workflow_check()?;
        self.renewal_settings()?;
        self.bootstrap_admin()?;
        self.lifecycle_settings()?;
        self.webhook_endpoints()?;
        self.check_metrics()?;
        Ok(())
    }

    /// The effective configuration as TOML, secrets shown as `***`.
    ///
    /// # Errors
    ///
    /// Serialization failures (not expected).
    pub fn to_redacted_toml(&self) -> Result<String, toml::ser::Error> {
        let mut shown = self.clone();
        // Show the derived values too, so the printout is what runs.
        shown.database.url = Some(self.database_url());
        shown.keys.key_file = Some(self.key_file());
        toml::to_string_pretty(&shown)
    }
}

/// One `ACMEPORT_` environment variable as a figment provider, so errors name it.
struct EnvVar {
    name: String,
    key: String,
    value: figment::value::Value,
}

impl EnvVar {
    /// `ACMEPORT_API__LISTEN=...` sets `api.listen`; variables outside the known
    /// sections are not configuration and are skipped.
    fn parse(name: &str, value: &str) -> Option<Self> {
        let rest = name.strip_prefix("ACMEPORT_")?;
        let key = rest
            .to_ascii_lowercase()
            .split("__")
            .collect::<Vec<_>>()
            .join(".");
        let first = key.split('.').next().unwrap_or_default();
        if !SECTIONS.contains(&first) {
            return None;
        }
        Some(Self {
            name: name.to_owned(),
            key,
            value: value
                .parse()
                .unwrap_or_else(|never: std::convert::Infallible| match never {}),
        })
    }
}

impl figment::Provider for EnvVar {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(format!("environment variable {}", self.name))
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        figment::providers::Serialized::default(&self.key, &self.value).data()
    }
}
