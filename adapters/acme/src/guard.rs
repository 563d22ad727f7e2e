//! Keeps the ACME client off the service's own network: a directory URL a user gives
//! must not make acmeport talk to loopback, private or link-local addresses (the cloud
//! metadata service, an admin interface, the database). Names are resolved here and only
//! public addresses are handed to the connector, so a name that resolves to 127.0.0.1 is
//! refused, and no second lookup can answer differently. Literal IP hosts are checked
//! before the request. Hosts the operator allowed (a private CA) pass.

use hyper_util::client::legacy::connect::dns::Name;
use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A host may not be reached: it is or resolves only to non-public addresses.
#[derive(Debug, thiserror::Error)]
#[error(
    "refused to connect to `{0}`: it is or resolves to a loopback, private or link-local address"
)]
pub(crate) struct NonPublicHost(pub(crate) String);

/// The hosts that may be non-public, lower case.
#[derive(Debug, Clone, Default)]
pub(crate) struct Guard {
    allowed: Arc<BTreeSet<String>>,
}

impl Guard {
    pub(crate) fn new(allowed: &[String]) -> Self {
        Self {
            allowed: Arc::new(allowed.iter().map(|h| normalise(h)).collect()),
        }
    }

    fn allows(&self, host: &str) -> bool {
        self.allowed.contains(&normalise(host))
    }

    /// Checks a URL host before a request: a literal non-public IP is refused unless
    /// allowed (names are checked when they are resolved).
    pub(crate) fn check_literal(&self, host: &str) -> Result<(), NonPublicHost> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) if !is_public(ip) && !self.allows(host) => Err(NonPublicHost(host.to_owned())),
            _ => Ok(()),
        }
    }
}

fn normalise(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// True for addresses on the public internet.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 198 && (b == 18 || b == 19))) // benchmarking
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80) // link-local
        }
    }
}

/// The resolver of the ACME client's connector: the system's, keeping only public
/// addresses unless the host is allowed.
#[derive(Clone)]
pub(crate) struct GuardedResolver {
    pub(crate) guard: Guard,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if guard.allows(&host) {
                return Ok(addresses.into_iter());
            }
            let public: Vec<SocketAddr> = addresses
                .into_iter()
                .filter(|a| is_public(a.ip()))
                .collect();
            if public.is_empty() {
                tracing::warn!(host = %host, "ACME request to a non-public address refused");
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    NonPublicHost(host),
                ));
            }
            Ok(public.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_service::Service as _;

    #[test]
    fn non_public_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} is not public");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "172.32.0.1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn literal_hosts_are_checked_unless_allowed() {
        let guard = Guard::new(&["127.0.0.1".to_owned()]);
        assert!(guard.check_literal("127.0.0.1").is_ok());
        assert!(guard.check_literal("10.0.0.1").is_err());
        assert!(guard.check_literal("[::1]").is_err());
        assert!(guard.check_literal("169.254.169.254").is_err());
        assert!(
            guard.check_literal("acme.example").is_ok(),
            "names are checked on resolution"
        );
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
        let name: Name = "localhost".parse().expect("a name");
        let mut refusing = GuardedResolver {
            guard: Guard::new(&[]),
        };
        let err = refusing
            .call(name.clone())
            .await
            .expect_err("localhost is loopback");
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        let mut allowing = GuardedResolver {
            guard: Guard::new(&["LOCALHOST".to_owned()]),
        };
        assert!(allowing.call(name).await.expect("allowed").next().is_some());
    }
}
