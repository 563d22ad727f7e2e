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

mod lifecycle;
mod secret;
mod workers;

pub use workers::{RenewalSection, WorkersSection};

pub use lifecycle::{DeliverySection, LifecycleSection, MetricsSection, WebhookSection};
pub use secret::Secret;

use acmeport_domain::service::PropagationSettings;
use acmeport_domain::{
    CountryCode, CsrSubject, DirectoryUrl, KeySpec, ProviderName, SubjectField, Username,
};
use acmeport_http::PublicUrl;
use figment::providers::{Format as _, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
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

/// The REST API listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    pub listen: SocketAddr,
    /// Base of the URLs in `Location` and `Link` headers; `http://<listen>` by default.
    pub public_url: Option<String>,
    /// Largest request body in bytes.
    pub body_limit: u64,
    pub header_read_timeout_secs: u64,
    pub body_read_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

impl Default for ApiSection {
    fn default() -> Self {
        let limits = acmeport_http::ListenerLimits::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            body_limit: acmeport_http::HttpConfig::DEFAULT_BODY_LIMIT,
            header_read_timeout_secs: limits.header_read_timeout.as_secs(),
            body_read_timeout_secs: limits.body_read_timeout.as_secs(),
            idle_timeout_secs: limits.idle_timeout.as_secs(),
            max_connections: limits.max_connections,
            max_connections_per_address: limits.max_connections_per_address,
        }
    }
}

impl ApiSection {
    /// The listener limits of the API.
    #[must_use]
    pub fn limits(&self) -> acmeport_http::ListenerLimits {
        listener_limits(
            self.header_read_timeout_secs,
            self.body_read_timeout_secs,
            self.idle_timeout_secs,
            self.max_connections,
            self.max_connections_per_address,
        )
    }
}

fn listener_limits(
    header: u64,
    body: u64,
    idle: u64,
    max: usize,
    per_address: usize,
) -> acmeport_http::ListenerLimits {
    acmeport_http::ListenerLimits {
        header_read_timeout: Duration::from_secs(header),
        body_read_timeout: Duration::from_secs(body),
        idle_timeout: Duration::from_secs(idle),
        max_connections: max,
        max_connections_per_address: per_address,
    }
}

/// The HTTP-01 challenge listener (port 80 in production).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChallengeSection {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub header_read_timeout_secs: u64,
    pub body_read_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

impl Default for ChallengeSection {
    /// Tighter than the API's: validators send one small GET and read a short answer.
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            header_read_timeout_secs: 5,
            body_read_timeout_secs: 5,
            idle_timeout_secs: 30,
            max_connections: 512,
            max_connections_per_address: 16,
        }
    }
}

impl ChallengeSection {
    /// The listener limits of the HTTP-01 responder.
    #[must_use]
    pub fn limits(&self) -> acmeport_http::ListenerLimits {
        listener_limits(
            self.header_read_timeout_secs,
            self.body_read_timeout_secs,
            self.idle_timeout_secs,
            self.max_connections,
            self.max_connections_per_address,
        )
    }
}

/// A database URL whose password is hidden when shown.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL, with its password. Only for connecting.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`: in the user information and in query
    /// parameters that carry secrets (`password`, `sslpassword`, ...).
    #[must_use]
    pub fn redacted(&self) -> String {
        let Ok(mut url) = url::Url::parse(&self.0) else {
            return self.0.clone();
        };
        let mut changed = false;
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
            changed = true;
        }
        if url.query().is_some() {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let secret = ["password", "pass", "secret", "token"]
                        .iter()
                        .any(|word| k.to_ascii_lowercase().contains(word));
                    changed |= secret;
                    let v = if secret {
                        "***".to_owned()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        if changed {
            url.to_string()
        } else {
            self.0.clone()
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

/// Storage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// `sqlite://<path>?mode=rwc` or `postgres://user:password@host:port/db`; SQLite in
    /// `data_dir` by default.
    pub url: Option<DatabaseUrl>,
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

/// The ACME client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeSection {
    /// The directory used when an account names none.
    pub directory: String,
    /// PEM files of extra trusted roots (a private CA, Pebble).
    pub extra_roots: Vec<PathBuf>,
    /// Also trust the public (Mozilla) roots.
    pub webpki_roots: bool,
    pub request_timeout_secs: u64,
    pub validation_timeout_secs: u64,
    pub issuance_timeout_secs: u64,
    /// The directories non-admins may register accounts at, besides `directory`.
    pub allowed_directories: Vec<String>,
    /// Hosts that may be reached although they are loopback, private or link-local (a
    /// private CA); the host of `directory` always may.
    pub allowed_private_hosts: Vec<String>,
    /// The largest answer body accepted from the CA, bytes.
    pub max_body_bytes: usize,
}

impl Default for AcmeSection {
    fn default() -> Self {
        Self {
            directory: DirectoryUrl::LETS_ENCRYPT.to_owned(),
            extra_roots: Vec::new(),
            webpki_roots: true,
            request_timeout_secs: 30,
            validation_timeout_secs: 120,
            issuance_timeout_secs: 120,
            allowed_directories: WELL_KNOWN_DIRECTORIES
                .iter()
                .map(|d| (*d).to_owned())
                .collect(),
            allowed_private_hosts: Vec::new(),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Defaults of CSRs, used when neither the order nor its account sets a field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsrSection {
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub location: Option<String>,
    /// `rsa2048`, `rsa3072`, `rsa4096`, `ecdsa-p256` or `ecdsa-p384`.
    pub key_type: String,
}

impl Default for CsrSection {
    fn default() -> Self {
        Self {
            organization: None,
            organizational_unit: None,
            country: None,
            state: None,
            location: None,
            key_type: KeySpec::default().as_str().to_owned(),
        }
    }
}

/// DNS-01: provider instances by name, the default one, and the propagation check.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSection {
    /// The provider instance used when an order names none.
    pub default: String,
    pub providers: BTreeMap<String, ProviderSection>,
    pub propagation: PropagationSection,
}

impl Default for DnsSection {
    /// One Route53 instance named `route53` with the AWS default credential chain, as
    /// the default: what the original service did out of the box.
    fn default() -> Self {
        Self {
            default: "route53".to_owned(),
            providers: BTreeMap::from([(
                "route53".to_owned(),
                ProviderSection::Route53(Route53Section::default()),
            )]),
            propagation: PropagationSection::default(),
        }
    }
}

/// One DNS provider instance; `kind` selects the implementation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderSection {
    Route53(Route53Section),
    Cloudflare(CloudflareSection),
    Rfc2136(Rfc2136Section),
    Exec(ExecSection),
    Webhook(WebhookDnsSection),
    #[serde(rename = "powerdns")]
    PowerDns(PowerDnsSection),
    #[serde(rename = "acme-dns")]
    AcmeDns(AcmeDnsSection),
}

impl ProviderSection {
    /// The zones the instance may write in, as configured (empty: any).
    #[must_use]
    pub fn zones(&self) -> &[String] {
        match self {
            Self::Route53(r) => &r.zones,
            Self::Cloudflare(c) => &c.zones,
            Self::Rfc2136(r) => &r.zones,
            Self::Exec(e) => &e.zones,
            Self::Webhook(w) => &w.zones,
            Self::PowerDns(p) => &p.zones,
            Self::AcmeDns(a) => &a.zones,
        }
    }

    /// The `kind` value.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Route53(_) => "route53",
            Self::Cloudflare(_) => "cloudflare",
            Self::Rfc2136(_) => "rfc2136",
            Self::Exec(_) => "exec",
            Self::Webhook(_) => "webhook",
            Self::PowerDns(_) => "powerdns",
            Self::AcmeDns(_) => "acme-dns",
        }
    }
}

/// Route53. Without static keys, the AWS default credential chain is used.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Route53Section {
    pub region: Option<String>,
    /// Another endpoint than AWS's (moto, LocalStack).
    pub endpoint_url: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// The hosted zone; found by walking up the name when absent.
    pub hosted_zone_id: Option<String>,
    pub ttl: Option<i64>,
    /// The zones this instance may write records in; any when empty.
    pub zones: Vec<String>,
    /// The deadline of one API call attempt, seconds.
    pub timeout_secs: Option<u64>,
}

/// Cloudflare (API v4) with an API token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudflareSection {
    pub api_token: Secret,
    /// Another API base URL (a test stub); Cloudflare's by default.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The zone; found from the name when absent.
    #[serde(default)]
    pub zone_id: Option<String>,
    #[serde(default)]
    pub ttl: Option<u32>,
    /// The zones this instance may write records in; any when empty.
    #[serde(default)]
    pub zones: Vec<String>,
    /// The deadline of one API call (answer and body), seconds.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// RFC 2136 dynamic updates with TSIG (BIND, Knot, PowerDNS).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rfc2136Section {
    /// The primary server, `address:port`.
    pub server: SocketAddr,
    /// The TSIG key name.
    pub key_name: String,
    /// The TSIG secret (HMAC-SHA256), base64.
    pub secret: Secret,
    /// The zone; asked from the server when absent.
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub ttl: Option<u32>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The zones this instance may write records in; any when empty.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// A program run as `program [args...] present|cleanup <fqdn> <value>` (lego's `exec`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecSection {
    /// The program; started directly, never through a shell.
    pub program: PathBuf,
    /// Arguments before `present|cleanup <fqdn> <value>`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Limit for one run, after which the program is killed (60 by default).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The zones this instance may write records in; any when empty.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// An HTTP endpoint receiving `{"fqdn", "value"}` (lego's `httpreq`, default mode).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDnsSection {
    /// Base URL: calls go to `<endpoint>/present` and `<endpoint>/cleanup`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Overrides `<endpoint>/present`.
    #[serde(default)]
    pub present_url: Option<String>,
    /// Overrides `<endpoint>/cleanup`.
    #[serde(default)]
    pub cleanup_url: Option<String>,
    /// HTTP Basic user (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sent as `Authorization: Bearer <token>` (instead of Basic).
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The zones this instance may write records in; any when empty.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// The PowerDNS Authoritative HTTP API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerDnsSection {
    /// The web server's base URL, `http://127.0.0.1:8081`.
    pub api_url: String,
    /// `api-key` of pdns.conf.
    pub api_key: Secret,
    /// `localhost` by default.
    #[serde(default)]
    pub server_id: Option<String>,
    /// The zone; found by walking up the name when absent.
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub ttl: Option<u32>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The zones this instance may write records in; any when empty.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// acme-dns: accounts registered on first use and kept in a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeDnsSection {
    /// The acme-dns API base URL.
    pub api_url: String,
    /// The accounts file (lego's format); `<data_dir>/acme-dns.json` by default.
    #[serde(default)]
    pub storage_path: Option<PathBuf>,
    /// CIDR ranges allowed to update new accounts.
    #[serde(default)]
    pub allow_from: Vec<String>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The zones this instance may write records in; any when empty.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// How DNS-01 records are checked before the CA is asked to validate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PropagationSection {
    /// False skips the check (the CA still validates).
    pub enabled: bool,
    pub timeout_secs: u64,
    pub interval_secs: u64,
    /// Recursive resolvers used to find the authoritative nameservers; the system's
    /// (`/etc/resolv.conf`) when empty.
    pub resolvers: Vec<SocketAddr>,
    /// The port authoritative nameservers are asked on.
    pub authoritative_port: u16,
    /// Ask these servers instead of the zone's NS records (hidden primaries, tests).
    pub authoritative_servers: Vec<SocketAddr>,
    pub query_timeout_secs: u64,
    /// Provider instances whose records are not checked (nor followed through a CNAME):
    /// their DNS cannot be queried from here. The CA still validates.
    pub skip_providers: Vec<String>,
}

impl Default for PropagationSection {
    fn default() -> Self {
        let domain = PropagationSettings::default();
        Self {
            enabled: domain.enabled,
            timeout_secs: domain.timeout.as_secs(),
            interval_secs: domain.interval.as_secs(),
            resolvers: Vec::new(),
            authoritative_port: 53,
            authoritative_servers: Vec::new(),
            query_timeout_secs: 5,
            skip_providers: Vec::new(),
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

/// The master keys that encrypt private keys and ACME credentials at rest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysSection {
    /// Base64 of 32 bytes each, newest first; the first encrypts, all decrypt.
    pub encryption_keys: Vec<Secret>,
    /// Used when `encryption_keys` is empty: one key per line, newest first; created with
    /// a random key on first start. `<data_dir>/master.key` by default.
    pub key_file: Option<PathBuf>,
}

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

/// The first admin, created at start when no user exists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapSection {
    pub admin_username: Option<String>,
    pub admin_password: Option<Secret>,
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

    /// The public base URL: configured, or `http://<listen address>`.
    ///
    /// # Errors
    ///
    /// When `api.public_url` is invalid.
    pub fn public_url(&self, bound: SocketAddr) -> Result<PublicUrl, ConfigError> {
        match &self.api.public_url {
            Some(url) => {
                PublicUrl::parse(url).map_err(|e| ConfigError::invalid("api.public_url", e))
            }
            None => PublicUrl::parse(&format!("http://{bound}"))
                .map_err(|e| ConfigError::invalid("api.listen", e)),
        }
    }

    /// The database URL: configured, or SQLite in `data_dir`.
    #[must_use]
    pub fn database_url(&self) -> DatabaseUrl {
        self.database.url.clone().unwrap_or_else(|| {
            DatabaseUrl::new(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("acmeport.db").display()
            ))
        })
    }

    /// The key file used when no encryption key is configured.
    #[must_use]
    pub fn key_file(&self) -> PathBuf {
        self.keys
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// The directories non-admins may register at: the default and the allowed ones.
    ///
    /// # Errors
    ///
    /// An entry that is not an https URL, naming `acme.allowed_directories[i]`.
    pub fn allowed_directories(&self) -> Result<Vec<DirectoryUrl>, ConfigError> {
        let mut list = vec![self.default_directory()?];
        for (i, url) in self.acme.allowed_directories.iter().enumerate() {
            list.push(
                DirectoryUrl::parse(url).map_err(|e| {
                    ConfigError::invalid(format!("acme.allowed_directories[{i}]"), e)
                })?,
            );
        }
        Ok(list)
    }

    /// The hosts the ACME client may reach at non-public addresses: the default
    /// directory's and `acme.allowed_private_hosts`.
    ///
    /// # Errors
    ///
    /// When `acme.directory` is invalid.
    pub fn acme_private_hosts(&self) -> Result<Vec<String>, ConfigError> {
        let directory = self.default_directory()?;
        let mut hosts = self.acme.allowed_private_hosts.clone();
        if let Some(host) = url::Url::parse(directory.as_str())
            .ok()
            .and_then(|u| u.host_str().map(ToOwned::to_owned))
        {
            hosts.push(host);
        }
        Ok(hosts)
    }

    /// The default ACME directory.
    ///
    /// # Errors
    ///
    /// When `acme.directory` is not an https URL.
    pub fn default_directory(&self) -> Result<DirectoryUrl, ConfigError> {
        DirectoryUrl::parse(&self.acme.directory)
            .map_err(|e| ConfigError::invalid("acme.directory", e))
    }

    /// The CSR subject defaults.
    ///
    /// # Errors
    ///
    /// Naming the `csr.*` field that is invalid.
    pub fn csr_subject(&self) -> Result<CsrSubject, ConfigError> {
        let field = |key: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| {
                    SubjectField::parse(v)
                        .map_err(|e| ConfigError::invalid(format!("csr.{key}"), e))
                })
                .transpose()
        };
        Ok(CsrSubject {
            organization: field("organization", &self.csr.organization)?,
            organizational_unit: field("organizational_unit", &self.csr.organizational_unit)?,
            country: self
                .csr
                .country
                .as_deref()
                .map(|c| CountryCode::parse(c).map_err(|e| ConfigError::invalid("csr.country", e)))
                .transpose()?,
            state: field("state", &self.csr.state)?,
            locality: field("location", &self.csr.location)?,
        })
    }

    /// The default key type.
    ///
    /// # Errors
    ///
    /// When `csr.key_type` is unknown.
    pub fn key_spec(&self) -> Result<KeySpec, ConfigError> {
        self.csr
            .key_type
            .parse()
            .map_err(|e| ConfigError::invalid("csr.key_type", e))
    }

    /// The provider instance names and the default one, checked.
    ///
    /// # Errors
    ///
    /// A name that is not a valid provider name, or a default that names no instance.
    pub fn provider_names(&self) -> Result<(Vec<ProviderName>, Option<ProviderName>), ConfigError> {
        let names = self
            .dns
            .providers
            .keys()
            .map(|name| {
                ProviderName::parse(name)
                    .map_err(|e| ConfigError::invalid(format!("dns.providers.{name}"), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.dns.default.is_empty() {
            return Ok((names, None));
        }
        let default = ProviderName::parse(&self.dns.default)
            .map_err(|e| ConfigError::invalid("dns.default", e))?;
        if !names.contains(&default) {
            return Err(ConfigError::invalid(
                "dns.default",
                format!("no provider `{default}` under [dns.providers]"),
            ));
        }
        Ok((names, Some(default)))
    }

    /// The zones each provider instance is confined to (instances that list none are
    /// left out: they may write anywhere their credentials reach).
    ///
    /// # Errors
    ///
    /// A zone that is not a domain name, naming `dns.providers.<name>.zones`.
    pub fn provider_zones(
        &self,
    ) -> Result<Vec<(ProviderName, acmeport_domain::service::ZoneScope)>, ConfigError> {
        let mut confined = Vec::new();
        for (name, section) in &self.dns.providers {
            if section.zones().is_empty() {
                continue;
            }
            let key = format!("dns.providers.{name}.zones");
            let id = ProviderName::parse(name).map_err(|e| ConfigError::invalid(&key, e))?;
            let zones = section
                .zones()
                .iter()
                .enumerate()
                .map(|(i, zone)| {
                    acmeport_domain::DomainName::parse(zone)
                        .ok()
                        .filter(|z| !z.is_wildcard())
                        .ok_or_else(|| {
                            ConfigError::invalid(
                                format!("{key}[{i}]"),
                                format!("`{zone}` is not a zone name"),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            confined.push((id, acmeport_domain::service::ZoneScope::new(zones)));
        }
        Ok(confined)
    }

    /// The provider instances exempt from the propagation check.
    ///
    /// # Errors
    ///
    /// A name that is not a configured instance, naming `dns.propagation.skip_providers`.
    pub fn unchecked_providers(&self) -> Result<Vec<ProviderName>, ConfigError> {
        let (names, _) = self.provider_names()?;
        self.dns
            .propagation
            .skip_providers
            .iter()
            .map(|name| {
                let key = "dns.propagation.skip_providers";
                let parsed = ProviderName::parse(name).map_err(|e| ConfigError::invalid(key, e))?;
                if names.contains(&parsed) {
                    Ok(parsed)
                } else {
                    Err(ConfigError::invalid(
                        key,
                        format!("no provider `{parsed}` under [dns.providers]"),
                    ))
                }
            })
            .collect()
    }

    /// The propagation settings of the domain.
    ///
    /// # Errors
    ///
    /// Zero timeouts or intervals.
    pub fn propagation(&self) -> Result<PropagationSettings, ConfigError> {
        let p = &self.dns.propagation;
        positive("dns.propagation.query_timeout_secs", p.query_timeout_secs)?;
        if p.authoritative_port == 0 {
            return Err(ConfigError::invalid(
                "dns.propagation.authoritative_port",
                "must not be 0",
            ));
        }
        Ok(PropagationSettings {
            enabled: p.enabled,
            timeout: positive("dns.propagation.timeout_secs", p.timeout_secs)?,
            interval: positive("dns.propagation.interval_secs", p.interval_secs)?,
        })
    }

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
