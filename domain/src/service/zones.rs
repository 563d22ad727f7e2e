//! The zones a DNS provider instance may write, and the wrapper that holds it to them.

use crate::models::{DomainName, TxtRecord};
use crate::ports::{DnsError, DnsProvider};
use async_trait::async_trait;
use std::sync::Arc;

/// The zones one DNS provider instance may write records in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneScope(Vec<DomainName>);

impl ZoneScope {
    /// The zones, as parsed names (wildcards make no sense here and are refused by the
    /// caller's parse).
    #[must_use]
    pub fn new(zones: Vec<DomainName>) -> Self {
        Self(zones)
    }

    /// True when `record_name` is one of the zones or lies below one.
    #[must_use]
    pub fn contains(&self, record_name: &str) -> bool {
        let name = record_name.trim_end_matches('.').to_ascii_lowercase();
        self.0.iter().any(|zone| {
            let zone = zone.as_str();
            name == zone
                || name
                    .strip_suffix(zone)
                    .is_some_and(|head| head.ends_with('.'))
        })
    }

    /// The zones, for messages.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// `provider`, refusing every record outside `zones`.
pub(super) fn confined(provider: Arc<dyn DnsProvider>, zones: ZoneScope) -> Arc<dyn DnsProvider> {
    Arc::new(Confined {
        inner: provider,
        zones,
    })
}

struct Confined {
    inner: Arc<dyn DnsProvider>,
    zones: ZoneScope,
}

impl Confined {
    fn check(&self, record: &TxtRecord) -> Result<(), DnsError> {
        if self.zones.contains(&record.name) {
            Ok(())
        } else {
            tracing::warn!(record = %record.name, zones = ?self.zones.names(), "record outside the provider's zones refused");
            Err(DnsError::Rejected(format!(
                "`{}` lies outside the zones this provider may write ({})",
                record.name,
                self.zones.names().join(", ")
            )))
        }
    }
}

#[async_trait]
impl DnsProvider for Confined {
    async fn present(&self, record: &TxtRecord) -> Result<(), DnsError> {
        self.check(record)?;
        self.inner.present(record).await
    }

    async fn cleanup(&self, record: &TxtRecord) -> Result<(), DnsError> {
        self.check(record)?;
        self.inner.cleanup(record).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(zones: &[&str]) -> ZoneScope {
        ZoneScope::new(
            zones
                .iter()
                .map(|z| DomainName::parse(z).expect("zone"))
                .collect(),
        )
    }

    #[test]
    fn names_in_and_below_a_zone_are_inside() {
        let zones = scope(&["example.com", "Other.TEST"]);
        assert!(zones.contains("example.com"));
        assert!(zones.contains("_acme-challenge.www.example.com."));
        assert!(zones.contains("_ACME-challenge.other.test"));
        assert!(!zones.contains("badexample.com"));
        assert!(!zones.contains("example.com.evil.org"));
        assert!(!zones.contains("_acme-challenge.example.org"));
    }
}
