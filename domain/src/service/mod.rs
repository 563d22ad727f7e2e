//! The use cases, as one service that the HTTP layer and library users call.

mod accounts;
mod certificates;
mod errors;
mod events;
mod issued;
mod orders;
mod quotas;
mod security;
mod users;
mod workflow;
mod zones;

pub use accounts::{Outcome, RegisterAccount};
pub use errors::*;
pub use events::{DeliveryPolicy, LifecycleSettings};
pub use issued::check_issued;
pub use orders::CreateOrder;
pub use quotas::{QuotaExceeded, QuotaKind, Quotas};
pub use security::{
    AuthorizeError, CreateApiKey, ManageError, SecurityPorts, UserChange, API_KEY_PREFIX,
};
pub use workflow::WorkOutcome;
pub use zones::ZoneScope;

use crate::models::{Backoff, CsrSubject, DirectoryUrl, KeySpec, ProviderName};
use crate::ports::{
    AccountRepo, AcmeClient, CertificateInspector, CertificateRepo, ChallengeTokenStore, Clock,
    CsrFactory, DnsProvider, EventRepo, OrderRepo, PasswordHasher, PropagationChecker, TokenSigner,
    UserRepo,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Every port the service uses.
#[derive(Clone)]
pub struct Ports {
    /// Users.
    pub users: Arc<dyn UserRepo>,
    /// ACME accounts.
    pub accounts: Arc<dyn AccountRepo>,
    /// Orders, their progress and the workers' leases.
    pub orders: Arc<dyn OrderRepo>,
    /// Issued certificates.
    pub certificates: Arc<dyn CertificateRepo>,
    /// Lifecycle events and their webhook outbox.
    pub events: Arc<dyn EventRepo>,
    /// HTTP-01 tokens served by the challenge responder.
    pub tokens: Arc<dyn ChallengeTokenStore>,
    /// The ACME protocol.
    pub acme: Arc<dyn AcmeClient>,
    /// Keys and CSRs.
    pub csr: Arc<dyn CsrFactory>,
    /// Facts read from issued certificates.
    pub inspector: Arc<dyn CertificateInspector>,
    /// The DNS provider instances, by name.
    pub dns: DnsProviders,
    /// The DNS-01 propagation check.
    pub propagation: Arc<dyn PropagationChecker>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Password hashing.
    pub hasher: Arc<dyn PasswordHasher>,
    /// API tokens.
    pub signer: Arc<dyn TokenSigner>,
}

/// The configured DNS provider instances by name, and the default one.
#[derive(Clone, Default)]
pub struct DnsProviders {
    instances: BTreeMap<ProviderName, Arc<dyn DnsProvider>>,
    /// The instances as given, before [`Self::with_zones`] confined them.
    unconfined: BTreeMap<ProviderName, Arc<dyn DnsProvider>>,
    zones: BTreeMap<ProviderName, ZoneScope>,
    default: Option<ProviderName>,
    unchecked: std::collections::BTreeSet<ProviderName>,
}

impl DnsProviders {
    /// No providers; orders with `type: dns` are then refused.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an instance under `name` (replacing one of that name).
    #[must_use]
    pub fn with(mut self, name: ProviderName, provider: Arc<dyn DnsProvider>) -> Self {
        self.unconfined.insert(name.clone(), provider);
        self.confine(name)
    }

    /// Confines the instance `name` to `zones`: it writes and removes no record outside
    /// them, whatever asks it to (the instance handed out by [`Self::get`] refuses).
    #[must_use]
    pub fn with_zones(mut self, name: ProviderName, zones: ZoneScope) -> Self {
        self.zones.insert(name.clone(), zones);
        self.confine(name)
    }

    fn confine(mut self, name: ProviderName) -> Self {
        if let Some(provider) = self.unconfined.get(&name).cloned() {
            let provider = match self.zones.get(&name) {
                Some(zones) => zones::confined(provider, zones.clone()),
                None => provider,
            };
            self.instances.insert(name, provider);
        }
        self
    }

    /// True when the instance `name` may write a record at `record_name`: it is
    /// configured and `record_name` lies in one of its zones (any name, when it lists
    /// none).
    #[must_use]
    pub fn may_write(&self, name: &ProviderName, record_name: &str) -> bool {
        self.instances.contains_key(name)
            && self.zones.get(name).is_none_or(|z| z.contains(record_name))
    }

    /// Names the instance used when an order names none.
    #[must_use]
    pub fn with_default(mut self, name: ProviderName) -> Self {
        self.default = Some(name);
        self
    }

    /// Skips the propagation check (and CNAME delegation) for the records of `name`: for a
    /// provider whose DNS cannot be queried from here (an internal view, an API emulator).
    /// The CA still validates.
    #[must_use]
    pub fn without_propagation_check(mut self, name: ProviderName) -> Self {
        self.unchecked.insert(name);
        self
    }

    /// True when records of `name` are checked before the CA is asked to validate.
    #[must_use]
    pub fn checks_propagation(&self, name: &ProviderName) -> bool {
        !self.unchecked.contains(name)
    }

    /// The instance called `name`.
    #[must_use]
    pub fn get(&self, name: &ProviderName) -> Option<&Arc<dyn DnsProvider>> {
        self.instances.get(name)
    }

    /// The default instance name, if configured.
    #[must_use]
    pub fn default_name(&self) -> Option<&ProviderName> {
        self.default.as_ref()
    }

    /// The configured names, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.instances.keys().map(ToString::to_string).collect()
    }
}

/// How the propagation of DNS-01 records is awaited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropagationSettings {
    /// False skips the check (for providers whose DNS cannot be queried, such as a test
    /// API emulator). The ACME server still validates.
    pub enabled: bool,
    /// How long to wait for every nameserver to serve every record.
    pub timeout: Duration,
    /// The pause between checks.
    pub interval: Duration,
}

impl Default for PropagationSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout: Duration::from_secs(300),
            interval: Duration::from_secs(5),
        }
    }
}

/// Service settings from configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The ACME directory used when an account names none.
    pub default_directory: DirectoryUrl,
    /// CSR subject parts used when neither order nor account gives them.
    pub default_subject: CsrSubject,
    /// The key type generated when an order names none.
    pub default_key_spec: KeySpec,
    /// How the DNS-01 propagation check polls and how long it waits.
    pub propagation: PropagationSettings,
    /// How long API tokens are valid.
    pub token_ttl: Duration,
    /// True lets every user order any name (a single-team installation); false lets
    /// non-admins order only the names their grants cover. The library default is true:
    /// an embedding program has no users of its own; the `acmeport` server's
    /// configuration defaults to false.
    pub allow_any_name: bool,
    /// The ACME directories non-admins may register accounts at, besides
    /// `default_directory`; any when `None` (the library default).
    pub allowed_directories: Option<Vec<DirectoryUrl>>,
    /// How long a worker's claim on an order lasts without renewal.
    pub lease: Duration,
    /// Expiry warnings and webhook delivery.
    pub lifecycle: LifecycleSettings,
    /// How long transient failures (network, storage, a CA's 5xx or rate limit, a step
    /// past its deadline) of one step are retried before the order fails.
    pub retry_budget: Duration,
    /// The pauses between those retries.
    pub retry_backoff: Backoff,
    /// The longest one workflow step may take; past it the step failed transiently.
    pub step_deadline: Duration,
    /// The pauses between polls of a wait (DNS propagation, the CA's validation and
    /// issuance): short at first for fast peers, then longer.
    pub poll_backoff: Backoff,
    /// How long the CA may take to validate challenges or issue a certificate.
    pub ca_timeout: Duration,
    /// How many fresh ACME orders one attempt places after the CA's validation failed,
    /// before the order ends `invalid`. Validation failures are often passing: a
    /// responder that restarted (the CA's request found no listener), a record one of
    /// the CA's vantage points did not see yet.
    pub validation_retries: u32,
    /// When certificates are renewed and how failed renewals back off.
    pub renewal: RenewalSettings,
}

/// When and how certificates are renewed.
#[derive(Debug, Clone, PartialEq)]
pub struct RenewalSettings {
    /// False: no order is renewed on its own.
    pub enabled: bool,
    /// Renew when this fraction of the certificate's lifetime is left (unless the CA
    /// suggests a window through ARI).
    pub fraction_left: f64,
    /// Renewals are spread over this fraction of the lifetime before the renewal time,
    /// so certificates issued together are not renewed in one burst.
    pub spread: f64,
    /// Ask the CA for renewal windows (ARI) where it offers them.
    pub ari: bool,
    /// How often a valid certificate's renewal window is fetched again when the CA's
    /// answer carries no `Retry-After` (and how soon after issuance it is first fetched).
    pub ari_poll: Duration,
    /// The pauses between failed renewals (a CA's `Retry-After` is a floor).
    pub backoff: Backoff,
}

impl Default for RenewalSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            fraction_left: 1.0 / 3.0,
            spread: 0.02,
            ari: true,
            ari_poll: Duration::from_secs(6 * 3600),
            backoff: Backoff {
                initial: Duration::from_secs(60),
                max: Duration::from_secs(6 * 3600),
            },
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            default_directory: DirectoryUrl::parse(DirectoryUrl::LETS_ENCRYPT)
                .expect("the built-in directory URL is valid"),
            default_subject: CsrSubject::default(),
            default_key_spec: KeySpec::default(),
            propagation: PropagationSettings::default(),
            token_ttl: Duration::from_secs(3600),
            allow_any_name: true,
            allowed_directories: None,
            lease: Duration::from_secs(30),
            lifecycle: LifecycleSettings::default(),
            retry_budget: Duration::from_secs(600),
            retry_backoff: Backoff {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(60),
            },
            step_deadline: Duration::from_secs(120),
            poll_backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(5),
            },
            ca_timeout: Duration::from_secs(600),
            validation_retries: 1,
            renewal: RenewalSettings::default(),
        }
    }
}

/// The acmeport service: every use case, over the ports it was built with.
#[derive(Clone)]
pub struct Acmeport {
    ports: Ports,
    settings: Settings,
    /// A hash to verify against when the user is unknown, so that a login for an unknown
    /// name costs as much as one with a wrong password (no username probing by timing).
    decoy_hash: Arc<std::sync::Mutex<Option<crate::models::PasswordHash>>>,
    /// Called when an order becomes due now (created, reissued), so idle workers wake.
    work_signal: Option<Arc<dyn Fn() + Send + Sync>>,
    security: Option<Arc<SecurityPorts>>,
    /// Per-user quotas, when enforced ([`Acmeport::with_quotas`]).
    quotas: Option<quotas::QuotaCheck>,
}

impl Acmeport {
    /// Builds the service.
    #[must_use]
    pub fn new(ports: Ports, settings: Settings) -> Self {
        Self {
            ports,
            settings,
            decoy_hash: Arc::default(),
            work_signal: None,
            security: None,
            quotas: None,
        }
    }

    /// Calls `signal` whenever an order becomes due at once (created, reissued), so that
    /// idle workers can wake instead of waiting for their next poll.
    #[must_use]
    pub fn with_work_signal(mut self, signal: Arc<dyn Fn() + Send + Sync>) -> Self {
        self.work_signal = Some(signal);
        self
    }

    fn signal_work(&self) {
        if let Some(signal) = &self.work_signal {
            signal();
        }
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The ports in use (for adapters that serve a port directly, such as the HTTP-01
    /// responder reading the token store).
    #[must_use]
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    fn now(&self) -> time::OffsetDateTime {
        self.ports.clock.now()
    }
}

#[cfg(test)]
mod security_tests;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod lifecycle_tests;
