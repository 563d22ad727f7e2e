//! The use cases, as one service that the HTTP layer and library users call.

mod accounts;
mod certificates;
mod errors;
mod issued;
mod orders;
mod quotas;
mod users;
mod workflow;

pub use accounts::{Outcome, RegisterAccount};
pub use errors::*;
pub use issued::check_issued;
pub use orders::CreateOrder;
pub use quotas::{QuotaExceeded, QuotaKind, Quotas};

use crate::models::{CsrSubject, DirectoryUrl, KeySpec, ProviderName};
use crate::ports::{
    AccountRepo, AcmeClient, CertificateInspector, CertificateRepo, ChallengeTokenStore, Clock,
    CsrFactory, DnsProvider, OrderRepo, PasswordHasher, PropagationChecker, TokenSigner, UserRepo,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Every port the service uses.
#[derive(Clone)]
pub struct Ports {
    pub users: Arc<dyn UserRepo>,
    pub accounts: Arc<dyn AccountRepo>,
    pub orders: Arc<dyn OrderRepo>,
    pub certificates: Arc<dyn CertificateRepo>,
    pub tokens: Arc<dyn ChallengeTokenStore>,
    pub acme: Arc<dyn AcmeClient>,
    pub csr: Arc<dyn CsrFactory>,
    pub inspector: Arc<dyn CertificateInspector>,
    pub dns: DnsProviders,
    pub propagation: Arc<dyn PropagationChecker>,
    pub clock: Arc<dyn Clock>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub signer: Arc<dyn TokenSigner>,
}

/// The configured DNS provider instances by name, and the default one.
#[derive(Clone, Default)]
pub struct DnsProviders {
    instances: BTreeMap<ProviderName, Arc<dyn DnsProvider>>,
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
        self.instances.insert(name, provider);
        self
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
    pub propagation: PropagationSettings,
    /// How long API tokens are valid.
    pub token_ttl: Duration,
    /// How long a worker's claim on an order lasts without renewal.
    pub lease: Duration,
    /// How often a transient failure (network, storage) of one step is retried before the
    /// order fails.
    pub step_retries: u32,
    /// The pause before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
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
            lease: Duration::from_secs(30),
            step_retries: 3,
            retry_backoff: Duration::from_secs(2),
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
            quotas: None,
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
mod tests;
