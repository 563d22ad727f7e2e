//! Route53 as a [`DnsProvider`]: TXT sets written with aws-sdk-route53.
//!
//! Route53 stores one record set per name and type, so a second value on the same name
//! (a wildcard and its apex share `_acme-challenge.<name>`) must be merged into the
//! existing set: `present` reads the set and UPSERTs the union, `cleanup` UPSERTs the
//! remainder or DELETEs the exact set when ours was the last value. Both wait until
//! `GetChange` reports `INSYNC`.
//!
//! The read-modify-write is serialised inside one provider (one lock, released before the
//! wait for `INSYNC`), which covers the
//! wildcard-and-apex case of one order. Two processes changing the same name at the same
//! instant can still lose a value; Route53 offers no conditional UPSERT.

#![warn(missing_docs)]

mod errors;
mod settings;

pub use settings::{Route53Settings, StaticCredentials};

use acmeport_domain::ports::{DnsError, DnsProvider};
use acmeport_domain::{find_zone, normalize_name, unquote_txt, TxtRecord};
use async_trait::async_trait;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::region::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_route53::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_route53::error::DisplayErrorContext;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_route53::Client;
use errors::{build_error, translate};
use std::fmt;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::instrument::WithSubscriber as _;
use tracing::{debug, info};

/// Route53's default region for signing; the service is global.
const DEFAULT_REGION: &str = "us-east-1";

/// Writes DNS-01 TXT records into Route53 hosted zones.
pub struct Route53Provider {
    client: Client,
    settings: Route53Settings,
    /// The AWS default credential chain, when no static keys are configured.
    default_chain: Option<SharedCredentialsProvider>,
    /// Serialises read-modify-write of record sets (see the module docs).
    write_lock: Mutex<()>,
}

impl fmt::Debug for Route53Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route53Provider")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Route53Provider {
    /// Builds the client: credentials and region from the settings, else from the AWS
    /// default chain (environment, profile, web identity, ECS, IMDS). Nothing is sent yet.
    pub async fn new(settings: Route53Settings) -> Self {
        // Not the default region chain: its last step asks EC2's instance metadata, which
        // off EC2 prints a multi-line warning at every start, and Route53 is global
        // (the region only names the signing scope, us-east-1).
        let region = RegionProviderChain::first_try(settings.region.clone().map(Region::new))
            .or_else(EnvironmentVariableRegionProvider::new())
            .or_else(ProfileFileRegionProvider::builder().build())
            .or_else(Region::from_static(DEFAULT_REGION));
        let retry = RetryConfig::standard()
            .with_max_attempts(settings.max_attempts.max(1))
            .with_initial_backoff(settings.initial_backoff)
            .with_max_backoff(settings.max_backoff);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(settings.request_timeout)
            .read_timeout(settings.request_timeout)
            .operation_attempt_timeout(settings.request_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .retry_config(retry)
            .timeout_config(timeouts);
        if let Some(keys) = &settings.credentials {
            loader = loader.credentials_provider(Credentials::new(
                keys.access_key_id.clone(),
                keys.secret_access_key.expose().to_owned(),
                keys.session_token
                    .as_ref()
                    .map(|token| token.expose().to_owned()),
                None,
                "acmeport-configuration",
            ));
        }
        let shared = loader.load().await;
        let default_chain = if settings.credentials.is_none() {
            shared.credentials_provider()
        } else {
            None
        };
        let mut config = aws_sdk_route53::config::Builder::from(&shared);
        if let Some(url) = &settings.endpoint_url {
            config = config.endpoint_url(url);
        }
        Self {
            client: Client::from_conf(config.build()),
            settings,
            default_chain,
            write_lock: Mutex::new(()),
        }
    }

    /// Whether credentials can be had: static keys always; the AWS default chain when it
    /// yields credentials within `limit`. The chain's own log lines (multi-line warnings
    /// about instance metadata off EC2) are silenced here, so that the caller can say it
    /// in one line.
    ///
    /// # Errors
    ///
    /// Why no credentials were found, in one line.
    pub async fn check_credentials(&self, limit: Duration) -> Result<(), String> {
        const NONE: &str = "none found in the environment, a profile, web identity, \
                            the container or an instance role";
        let Some(chain) = &self.default_chain else {
            return Ok(());
        };
        let probe = chain
            .provide_credentials()
            .with_subscriber(tracing::subscriber::NoSubscriber::default());
        match tokio::time::timeout(limit, probe).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(CredentialsError::CredentialsNotLoaded(_))) => Err(NONE.to_owned()),
            Ok(Err(e)) => {
                // The detail (often a refused instance-metadata request) is for debugging.
                debug!(error = %DisplayErrorContext(&e), "the AWS default credential chain failed");
                Err(NONE.to_owned())
            }
            Err(_) => Err(format!("{NONE} within {limit:?}")),
        }
    }

    /// The hosted zone id for `name`: the configured one, or the zone named like the
    /// closest enclosing name (ListHostedZonesByName only answers exact names reliably,
    /// so each enclosing name is tried, longest first, by the domain's [`find_zone`]).
    /// Public zones win over private ones of the same name.
    async fn zone_id(&self, name: &str) -> Result<String, DnsError> {
        if let Some(id) = &self.settings.hosted_zone_id {
            return Ok(id.clone());
        }
        let found = find_zone(name, |candidate| async move {
            let wanted = format!("{candidate}.");
            let answer = self
                .client
                .list_hosted_zones_by_name()
                .dns_name(&wanted)
                .max_items(10)
                .send()
                .await
                .map_err(|e| translate(e, name))?;
            let mut exact: Vec<_> = answer
                .hosted_zones()
                .iter()
                .filter(|zone| zone.name().eq_ignore_ascii_case(&wanted))
                .collect();
            exact.sort_by_key(|zone| zone.config().is_some_and(|c| c.private_zone()));
            Ok::<_, DnsError>(
                exact
                    .first()
                    .map(|zone| zone.id().trim_start_matches("/hostedzone/").to_owned()),
            )
        })
        .await?;
        match found {
            Some((zone, id)) => {
                debug!(name, zone, zone_id = %id, "found the hosted zone");
                Ok(id)
            }
            None => Err(DnsError::ZoneNotFound(name.to_owned())),
        }
    }

    /// The current values (as stored, quoted) and TTL of the TXT set on `name`.
    async fn current_values(
        &self,
        zone_id: &str,
        name: &str,
    ) -> Result<Option<(Vec<String>, i64)>, DnsError> {
        let answer = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .start_record_name(name)
            .start_record_type(RrType::Txt)
            .max_items(1)
            .send()
            .await
            .map_err(|e| translate(e, name))?;
        // The listing starts at (name, type) but runs on to the next sets: check both.
        Ok(answer
            .resource_record_sets()
            .iter()
            .find(|set| same_name(set.name(), name) && set.r#type() == &RrType::Txt)
            .map(|set| {
                let values = set
                    .resource_records()
                    .iter()
                    .map(|r| r.value().to_owned())
                    .collect();
                (values, set.ttl().unwrap_or(self.settings.ttl))
            }))
    }

    /// Submits one change and returns its id.
    async fn change(
        &self,
        zone_id: &str,
        name: &str,
        action: ChangeAction,
        values: Vec<String>,
        ttl: i64,
    ) -> Result<String, DnsError> {
        let records = values
            .into_iter()
            .map(|value| ResourceRecord::builder().value(value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(build_error)?;
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::Txt)
            .ttl(ttl)
            .set_resource_records(Some(records))
            .build()
            .map_err(build_error)?;
        let change = Change::builder()
            .action(action)
            .resource_record_set(set)
            .build()
            .map_err(build_error)?;
        let batch = ChangeBatch::builder()
            .comment("acmeport DNS-01 challenge")
            .changes(change)
            .build()
            .map_err(build_error)?;
        let answer = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| translate(e, name))?;
        let change_id = answer
            .change_info()
            .map(|info| info.id().to_owned())
            .ok_or_else(|| DnsError::Transport("Route53 returned no change id".into()))?;
        Ok(change_id)
    }

    async fn wait_insync(&self, change_id: &str, name: &str) -> Result<(), DnsError> {
        let deadline = Instant::now() + self.settings.insync_timeout;
        loop {
            let answer = self
                .client
                .get_change()
                .id(change_id)
                .send()
                .await
                .map_err(|e| translate(e, name))?;
            if answer.change_info().map(|info| info.status()) == Some(&ChangeStatus::Insync) {
                debug!(change_id, "change is INSYNC");
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DnsError::Transport(
                    format!(
                        "Route53 change {change_id} for {name} not INSYNC after {:?}",
                        self.settings.insync_timeout
                    )
                    .into(),
                ));
            }
            tokio::time::sleep(self.settings.insync_poll).await;
        }
    }
}

#[async_trait]
impl DnsProvider for Route53Provider {
    async fn present(&self, record: &TxtRecord) -> Result<(), DnsError> {
        let name = record.normalized_name();
        let zone_id = self.zone_id(&name).await?;
        let ours = record.quoted_value();
        // The lock covers read and submit only: waiting for INSYNC can take a minute on
        // AWS and must not hold up other names.
        let change_id = {
            let _guard = self.write_lock.lock().await;
            let (mut values, ttl) = self
                .current_values(&zone_id, &name)
                .await?
                .unwrap_or_else(|| (Vec::new(), self.settings.ttl));
            if values.iter().any(|v| unquote_txt(v) == record.value) {
                debug!(name, "TXT value already present");
                return Ok(());
            }
            values.push(ours);
            self.change(&zone_id, &name, ChangeAction::Upsert, values, ttl)
                .await?
        };
        self.wait_insync(&change_id, &name).await?;
        info!(name, zone_id, "TXT value added in Route53");
        Ok(())
    }

    async fn cleanup(&self, record: &TxtRecord) -> Result<(), DnsError> {
        let name = record.normalized_name();
        let zone_id = self.zone_id(&name).await?;
        let change_id = {
            let _guard = self.write_lock.lock().await;
            let Some((values, ttl)) = self.current_values(&zone_id, &name).await? else {
                debug!(name, "no TXT set left to clean up");
                return Ok(());
            };
            let remainder: Vec<String> = values
                .iter()
                .filter(|v| unquote_txt(v) != record.value)
                .cloned()
                .collect();
            if remainder.len() == values.len() {
                debug!(name, "TXT value already gone");
                return Ok(());
            }
            if remainder.is_empty() {
                // DELETE must repeat the set exactly as stored, TTL included.
                self.change(&zone_id, &name, ChangeAction::Delete, values, ttl)
                    .await?
            } else {
                self.change(&zone_id, &name, ChangeAction::Upsert, remainder, ttl)
                    .await?
            }
        };
        self.wait_insync(&change_id, &name).await?;
        info!(name, zone_id, "TXT value removed from Route53");
        Ok(())
    }
}

fn same_name(listed: &str, wanted: &str) -> bool {
    normalize_name(&unescape(listed)) == wanted
}

/// Route53 lists names with octal escapes for characters outside `[a-z0-9-]`
/// (`\052` for `*`); undo them so names compare.
fn unescape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if digits.len() == 3 && digits.chars().all(|d| d.is_digit(8)) {
                if let Ok(code) = u8::from_str_radix(&digits, 8) {
                    out.push(char::from(code));
                    for _ in 0..3 {
                        chars.next();
                    }
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_names_are_unescaped() {
        assert!(same_name("\\052.example.com.", "*.example.com"));
        assert!(same_name(
            "_acme-challenge.Example.com.",
            "_acme-challenge.example.com"
        ));
    }
}
