//! The `[dns]` section: provider instances by kind, the default one, and the propagation
//! check.

use super::{positive, Config, ConfigError, Secret};
use acmeport_domain::service::PropagationSettings;
use acmeport_domain::ProviderName;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

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

impl Config {
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
}
