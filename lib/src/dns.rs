//! DNS provider instances by name: the built-in kinds from their settings (behind the
//! `route53`, `cloudflare` and `rfc2136` features) and any [`DnsProvider`] of the
//! embedder's own, with the default instance, zone confinement and propagation-check
//! exemptions. [`DnsSetup::build`] turns them into the domain's [`DnsProviders`].

use acmeport_domain::ports::DnsProvider;
use acmeport_domain::service::ZoneScope;
use acmeport_domain::{DnsProviders, ProviderName};
use std::sync::Arc;

/// A DNS provider instance could not be built from its settings.
#[derive(Debug, thiserror::Error)]
#[error("DNS provider `{name}`: {source}")]
pub struct DnsSetupError {
    /// The instance at fault.
    pub name: ProviderName,
    /// What its adapter refused.
    #[source]
    pub source: acmeport_domain::BoxError,
}

enum Source {
    Ready(Arc<dyn DnsProvider>),
    #[cfg(feature = "route53")]
    Route53(Box<acmeport_route53::Route53Settings>),
    #[cfg(feature = "cloudflare")]
    Cloudflare(acmeport_cloudflare::CloudflareSettings),
    #[cfg(feature = "rfc2136")]
    Rfc2136(acmeport_rfc2136::Rfc2136Settings),
}

/// The DNS provider instances of an engine, by name.
///
/// ```
/// # use acmeport::{DnsSetup, ProviderName, Secret};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # #[cfg(feature = "rfc2136")] {
/// use acmeport::rfc2136::Rfc2136Settings;
/// let bind = ProviderName::parse("bind")?;
/// let dns = DnsSetup::new()
///     .rfc2136(bind.clone(), Rfc2136Settings::new(
///         "192.0.2.53:53".parse()?, "acmeport", Secret::new("c2VjcmV0"),
///     ))
///     .default_provider(bind);
/// # }
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct DnsSetup {
    instances: Vec<(ProviderName, Source)>,
    default: Option<ProviderName>,
    zones: Vec<(ProviderName, ZoneScope)>,
    unchecked: Vec<ProviderName>,
}

impl std::fmt::Debug for DnsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.instances.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("DnsSetup")
            .field("instances", &names)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

impl DnsSetup {
    /// No instances: orders with DNS-01 are refused until one is added.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `provider`, an implementation of [`DnsProvider`] (the embedder's own, or any
    /// adapter built by hand), under `name`.
    #[must_use]
    pub fn provider(mut self, name: ProviderName, provider: Arc<dyn DnsProvider>) -> Self {
        self.instances.push((name, Source::Ready(provider)));
        self
    }

    /// Adds a Route53 instance. Without static credentials it uses the AWS default
    /// chain, and says in one log line at build time when that chain has none.
    #[cfg(feature = "route53")]
    #[must_use]
    pub fn route53(
        mut self,
        name: ProviderName,
        settings: acmeport_route53::Route53Settings,
    ) -> Self {
        self.instances
            .push((name, Source::Route53(Box::new(settings))));
        self
    }

    /// Adds a Cloudflare instance.
    #[cfg(feature = "cloudflare")]
    #[must_use]
    pub fn cloudflare(
        mut self,
        name: ProviderName,
        settings: acmeport_cloudflare::CloudflareSettings,
    ) -> Self {
        self.instances.push((name, Source::Cloudflare(settings)));
        self
    }

    /// Adds an RFC 2136 (dynamic update with TSIG) instance: BIND, Knot, PowerDNS.
    #[cfg(feature = "rfc2136")]
    #[must_use]
    pub fn rfc2136(
        mut self,
        name: ProviderName,
        settings: acmeport_rfc2136::Rfc2136Settings,
    ) -> Self {
        self.instances.push((name, Source::Rfc2136(settings)));
        self
    }

    /// The instance DNS-01 orders use when they name none.
    #[must_use]
    pub fn default_provider(mut self, name: ProviderName) -> Self {
        self.default = Some(name);
        self
    }

    /// Confines the instance `name` to `zones`: it writes and removes no record outside
    /// them, whatever an order or a CNAME asks.
    #[must_use]
    pub fn zones(mut self, name: ProviderName, zones: ZoneScope) -> Self {
        self.zones.push((name, zones));
        self
    }

    /// Skips the propagation check for the records of `name` (its DNS cannot be queried
    /// from here); the CA still validates.
    #[must_use]
    pub fn skip_propagation_check(mut self, name: ProviderName) -> Self {
        self.unchecked.push(name);
        self
    }

    /// The names of the instances added so far, in order.
    #[must_use]
    pub fn names(&self) -> Vec<&ProviderName> {
        self.instances.iter().map(|(name, _)| name).collect()
    }

    /// Builds every instance.
    ///
    /// # Errors
    ///
    /// [`DnsSetupError`] naming the first instance whose settings its adapter refuses.
    pub async fn build(self) -> Result<DnsProviders, DnsSetupError> {
        let mut providers = DnsProviders::new();
        for (name, source) in self.instances {
            let provider = build_one(&name, source).await?;
            tracing::debug!(provider = %name, "DNS provider configured");
            providers = providers.with(name, provider);
        }
        if let Some(default) = self.default {
            providers = providers.with_default(default);
        }
        for (name, zones) in self.zones {
            tracing::info!(provider = %name, zones = ?zones.names(), "DNS provider confined to its zones");
            providers = providers.with_zones(name, zones);
        }
        for name in self.unchecked {
            tracing::info!(provider = %name, "records of this provider skip the propagation check");
            providers = providers.without_propagation_check(name);
        }
        Ok(providers)
    }
}

#[allow(clippy::unused_async)] // awaits only with the `route53` feature
async fn build_one(
    name: &ProviderName,
    source: Source,
) -> Result<Arc<dyn DnsProvider>, DnsSetupError> {
    #[allow(unused_variables)] // without any provider feature
    let refused = |e: Box<dyn std::error::Error + Send + Sync>| DnsSetupError {
        name: name.clone(),
        source: e,
    };
    Ok(match source {
        Source::Ready(provider) => provider,
        #[cfg(feature = "route53")]
        Source::Route53(settings) => {
            let has_keys = settings.credentials.is_some();
            let route53 = Arc::new(acmeport_route53::Route53Provider::new(*settings).await);
            if !has_keys {
                report_missing_aws_credentials(name.clone(), route53.clone());
            }
            route53
        }
        #[cfg(feature = "cloudflare")]
        Source::Cloudflare(settings) => Arc::new(
            acmeport_cloudflare::CloudflareProvider::new(settings)
                .map_err(|e| refused(Box::new(e)))?,
        ),
        #[cfg(feature = "rfc2136")]
        Source::Rfc2136(settings) => Arc::new(
            acmeport_rfc2136::Rfc2136Provider::new(settings).map_err(|e| refused(Box::new(e)))?,
        ),
    })
}

/// How long the start-up probe of the AWS default credential chain may take.
#[cfg(feature = "route53")]
const AWS_PROBE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// In the background, asks the AWS default credential chain of a `route53` instance
/// without static keys for credentials, and when there are none says so in one line with
/// how to give them (instead of the SDK's multi-line warnings at the first order).
#[cfg(feature = "route53")]
fn report_missing_aws_credentials(
    name: ProviderName,
    provider: Arc<acmeport_route53::Route53Provider>,
) {
    tokio::spawn(async move {
        if let Err(why) = provider.check_credentials(AWS_PROBE_LIMIT).await {
            tracing::warn!(
                "DNS provider `{name}` (kind route53) has no AWS credentials ({why}): set \
                 access_key_id and secret_access_key under [dns.providers.{name}] \
                 (`Route53Settings::credentials` in a program), or give the process AWS \
                 credentials; orders using `{name}` fail until then"
            );
        }
    });
}
