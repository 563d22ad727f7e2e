//! The DNS-01 propagation check: does every authoritative nameserver of the record's zone
//! serve the TXT value yet?
//!
//! The configured resolvers are used to follow a CNAME on the record's name (delegated
//! validation, where `_acme-challenge.example.com` points into another zone), to find the
//! zone's apex by walking up the labels until a name has NS records, and to resolve those
//! nameservers. Each nameserver address is then asked directly, with recursion off and no
//! cache, because a recursive resolver's answer says nothing about the servers the CA will
//! ask.

#![warn(missing_docs)]

use acmeport_domain::ports::{NameserverAnswer, PropagationChecker, PropagationError};
use acmeport_domain::{zone_candidates, TxtRecord};
use async_trait::async_trait;
use futures::future::join_all;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;
use std::time::Duration;
use time::OffsetDateTime;
use tracing::{debug, warn};

/// How many CNAMEs are followed before the chain is taken for a loop.
const MAX_CNAME_HOPS: usize = 8;

/// Where to look, and how long to wait for each answer.
#[derive(Debug, Clone)]
pub struct PropagationSettings {
    /// Recursive resolvers (`addr:port`) used to follow CNAMEs and find the nameservers.
    pub resolvers: Vec<SocketAddr>,
    /// The port on which authoritative nameservers are asked (53 in the real world).
    pub authoritative_port: u16,
    /// When not empty, these servers are asked instead of the zone's NS records (for
    /// hidden primaries, split horizons and tests).
    pub authoritative_servers: Vec<SocketAddr>,
    /// Limit for one DNS query.
    pub query_timeout: Duration,
}

impl PropagationSettings {
    /// Settings with the defaults: nameservers discovered and asked on port 53, 5 s per
    /// query.
    #[must_use]
    pub fn new(resolvers: Vec<SocketAddr>) -> Self {
        Self {
            resolvers,
            authoritative_port: 53,
            authoritative_servers: Vec::new(),
            query_timeout: Duration::from_secs(5),
        }
    }
}

/// Settings that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// Neither resolvers nor authoritative servers were given.
    #[error("no resolver configured for the propagation check")]
    NoResolver,
    /// The resolver could not be built.
    #[error("cannot build the resolver: {0}")]
    Resolver(String),
}

/// A [`PropagationChecker`] over hickory-resolver.
#[derive(Debug, Clone)]
pub struct HickoryPropagationChecker {
    settings: PropagationSettings,
    resolver: TokioResolver,
}

impl HickoryPropagationChecker {
    /// Builds the checker; nothing is sent until the first check.
    ///
    /// # Errors
    ///
    /// [`SettingsError::NoResolver`] when the resolver list is empty.
    pub fn new(settings: PropagationSettings) -> Result<Self, SettingsError> {
        if settings.resolvers.is_empty() {
            return Err(SettingsError::NoResolver);
        }
        let resolver = build_resolver(&settings.resolvers, true, settings.query_timeout)?;
        Ok(Self { settings, resolver })
    }

    /// The name whose TXT set the CA will read: `name` itself, or the end of its CNAME
    /// chain.
    async fn follow_cnames(&self, name: Name) -> Result<Name, PropagationError> {
        let mut current = name;
        for _ in 0..MAX_CNAME_HOPS {
            let lookup = match self
                .resolver
                .lookup(current.clone(), RecordType::CNAME)
                .await
            {
                Ok(lookup) => lookup,
                Err(e) if e.is_no_records_found() => return Ok(current),
                Err(e) => return Err(lookup_error(&current, e)),
            };
            let next = lookup
                .answers()
                .iter()
                .find_map(|record| match &record.data {
                    RData::CNAME(target) if record.name == current => Some(target.0.clone()),
                    _ => None,
                });
            match next {
                Some(target) => {
                    debug!(from = %current, to = %target, "following CNAME of the challenge name");
                    current = target;
                }
                None => return Ok(current),
            }
        }
        Err(PropagationError::Lookup(
            format!("more than {MAX_CNAME_HOPS} CNAMEs from {current}: a loop?").into(),
        ))
    }

    /// The zone apex of `name` and its nameserver host names: the closest enclosing name
    /// that has NS records (the domain's [`zone_candidates`], longest first).
    async fn zone_nameservers(&self, name: &Name) -> Result<(Name, Vec<Name>), PropagationError> {
        for candidate in zone_candidates(&name.to_ascii()) {
            let Ok(mut candidate) = Name::from_ascii(&candidate) else {
                continue;
            };
            candidate.set_fqdn(true);
            match self
                .resolver
                .lookup(candidate.clone(), RecordType::NS)
                .await
            {
                Ok(lookup) => {
                    let hosts: Vec<Name> = lookup
                        .answers()
                        .iter()
                        .filter(|record| record.name == candidate)
                        .filter_map(|record| match &record.data {
                            RData::NS(ns) => Some(ns.0.clone()),
                            _ => None,
                        })
                        .collect();
                    if !hosts.is_empty() {
                        return Ok((candidate, hosts));
                    }
                }
                Err(e) if e.is_no_records_found() => {}
                Err(e) => return Err(lookup_error(&candidate, e)),
            }
        }
        Err(PropagationError::NoNameservers(name.to_ascii()))
    }

    /// The servers to ask, each with the label reported while it misses the value.
    async fn servers(
        &self,
        name: &Name,
    ) -> Result<Vec<(String, Option<SocketAddr>)>, PropagationError> {
        if !self.settings.authoritative_servers.is_empty() {
            return Ok(self
                .settings
                .authoritative_servers
                .iter()
                .map(|addr| (addr.to_string(), Some(*addr)))
                .collect());
        }
        let (zone, hosts) = self.zone_nameservers(name).await?;
        debug!(zone = %zone, nameservers = ?hosts.iter().map(Name::to_ascii).collect::<Vec<_>>(), "found the zone's nameservers");
        let port = self.settings.authoritative_port;
        let mut servers = Vec::new();
        for host in hosts {
            let label = host.to_ascii();
            let label = label.strip_suffix('.').unwrap_or(&label).to_owned();
            match self.resolver.lookup_ip(host.clone()).await {
                Ok(ips) => {
                    for ip in ips.iter() {
                        servers.push((format!("{label} ({ip})"), Some(SocketAddr::new(ip, port))));
                    }
                }
                Err(e) => {
                    // A nameserver nobody can reach cannot serve the value: report it as
                    // missing rather than fail the whole check.
                    warn!(nameserver = %label, error = %e, "cannot resolve a nameserver of the zone");
                    servers.push((format!("{label} (unresolvable)"), None));
                }
            }
        }
        Ok(servers)
    }

    /// What the server at `addr` answers, with authority, for the TXT set on `name`: its
    /// values, or why there is no answer. No records is an empty answer, not an error.
    async fn ask(&self, addr: SocketAddr, name: &Name) -> (Vec<String>, Option<String>) {
        let resolver = match build_resolver(&[addr], false, self.settings.query_timeout) {
            Ok(resolver) => resolver,
            Err(e) => {
                warn!(server = %addr, error = %e, "cannot build a resolver for a nameserver");
                return (Vec::new(), Some(e.to_string()));
            }
        };
        match resolver.lookup(name.clone(), RecordType::TXT).await {
            Ok(lookup) => (
                lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::TXT(txt) => Some(txt_text(&txt.txt_data)),
                        _ => None,
                    })
                    .collect(),
                None,
            ),
            Err(e) if e.is_no_records_found() => (Vec::new(), None),
            Err(e) => {
                debug!(server = %addr, error = %e, "nameserver query failed; counted as missing");
                (Vec::new(), Some(e.to_string()))
            }
        }
    }
}

#[async_trait]
impl PropagationChecker for HickoryPropagationChecker {
    async fn check(&self, record: &TxtRecord) -> Result<Vec<NameserverAnswer>, PropagationError> {
        let mut name = Name::from_ascii(record.name.trim())
            .map_err(|e| PropagationError::Lookup(Box::new(e)))?;
        name.set_fqdn(true);
        let target = self.follow_cnames(name).await?;
        let servers = self.servers(&target).await?;
        if servers.is_empty() {
            return Err(PropagationError::NoNameservers(target.to_ascii()));
        }
        let checks = servers.iter().map(|(label, addr)| {
            let target = &target;
            async move {
                let asked_at = OffsetDateTime::now_utc();
                let (values, error) = match addr {
                    Some(addr) => self.ask(*addr, target).await,
                    None => (
                        Vec::new(),
                        Some("the nameserver's address cannot be resolved".to_owned()),
                    ),
                };
                NameserverAnswer {
                    server: label.clone(),
                    serves: values.contains(&record.value),
                    values,
                    error,
                    asked_at,
                }
            }
        });
        let answers: Vec<NameserverAnswer> = join_all(checks).await;
        debug!(name = %target, answers = ?answers, "propagation check");
        Ok(answers)
    }

    async fn delegated_name(&self, name: &str) -> Result<String, PropagationError> {
        let mut fqdn =
            Name::from_ascii(name.trim()).map_err(|e| PropagationError::Lookup(Box::new(e)))?;
        fqdn.set_fqdn(true);
        let target = self.follow_cnames(fqdn).await?;
        Ok(target.to_ascii().trim_end_matches('.').to_owned())
    }
}

/// A resolver over `servers` that never caches; `recursion` off asks authoritative data.
fn build_resolver(
    servers: &[SocketAddr],
    recursion: bool,
    timeout: Duration,
) -> Result<TokioResolver, SettingsError> {
    let name_servers = servers
        .iter()
        .map(|addr| {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
        })
        .collect();
    let mut options = ResolverOpts::default();
    options.cache_size = 0;
    options.recursion_desired = recursion;
    options.timeout = timeout;
    options.attempts = 1;
    // Names are always fully qualified here; no search list must be tried.
    options.ndots = 0;
    TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(name_servers),
        TokioRuntimeProvider::default(),
    )
    .with_options(options)
    .build()
    .map_err(|e| SettingsError::Resolver(e.to_string()))
}

/// A TXT record's text: its character strings joined, as ACME servers read it.
fn txt_text(strings: &[Box<[u8]>]) -> String {
    strings
        .iter()
        .map(|s| String::from_utf8_lossy(s))
        .collect::<Vec<_>>()
        .concat()
}

fn lookup_error(name: &Name, error: NetError) -> PropagationError {
    PropagationError::Lookup(format!("{name}: {error}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_strings_are_joined() {
        let strings: Vec<Box<[u8]>> = vec![b"abc".to_vec().into(), b"def".to_vec().into()];
        assert_eq!(txt_text(&strings), "abcdef");
    }

    #[test]
    fn a_resolver_is_required() {
        let err = HickoryPropagationChecker::new(PropagationSettings::new(Vec::new()))
            .expect_err("an empty resolver list is refused");
        assert!(matches!(err, SettingsError::NoResolver));
    }
}
