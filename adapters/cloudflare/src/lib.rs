//! Cloudflare as a [`DnsProvider`]: TXT records created and deleted by id through the v4
//! API.
//!
//! Cloudflare keeps each TXT value as its own record, so two values on one name coexist
//! without merging; `cleanup` deletes the records of our value only.

#![warn(missing_docs)]

mod api;

use acmeport_domain::ports::{DnsError, DnsProvider};
use acmeport_domain::{find_zone, redact_provider_text, unquote_txt, Secret, TxtRecord};
use api::{Api, ApiError, NewTxt};
use async_trait::async_trait;
use std::fmt;
use std::time::Duration;
use tracing::{debug, info};

/// Cloudflare's "An identical record already exists" error.
const IDENTICAL_RECORD_EXISTS: u32 = 81058;
/// Cloudflare's "Record does not exist" error.
const RECORD_DOES_NOT_EXIST: u32 = 81044;

/// How to reach Cloudflare.
#[derive(Debug, Clone)]
pub struct CloudflareSettings {
    /// An API token with Zone:Read and DNS:Edit on the zones used.
    pub api_token: Secret,
    /// Another API base than `https://api.cloudflare.com/client/v4/` (tests); a missing
    /// trailing `/` is added.
    pub base_url: Option<String>,
    /// The zone id; `None` finds the zone by walking up the name.
    pub zone_id: Option<String>,
    /// TTL of the records (1 means "automatic"; otherwise at least 60).
    pub ttl: u32,
    /// Limit for one API request.
    pub timeout: Duration,
}

impl CloudflareSettings {
    /// Settings with the defaults: zone discovered, TTL 120 s, 30 s per request.
    #[must_use]
    pub fn new(api_token: Secret) -> Self {
        Self {
            api_token,
            base_url: None,
            zone_id: None,
            ttl: 120,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Settings that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The base URL does not parse.
    #[error("invalid Cloudflare API base URL {0:?}")]
    BaseUrl(String),
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the Cloudflare client: {0}")]
    Client(String),
}

/// Writes DNS-01 TXT records into Cloudflare zones.
pub struct CloudflareProvider {
    api: Api,
    zone_id: Option<String>,
    ttl: u32,
}

impl fmt::Debug for CloudflareProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudflareProvider")
            .field("zone_id", &self.zone_id)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CloudflareProvider {
    /// Builds the client; nothing is sent yet.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] for a base URL that does not parse.
    pub fn new(settings: CloudflareSettings) -> Result<Self, SettingsError> {
        let base = settings
            .base_url
            .unwrap_or_else(|| api::PRODUCTION.to_owned());
        // Paths are joined onto the base, which drops a last segment without a trailing
        // slash (`/client/v4` + `zones` = `/client/zones`).
        let base = if base.ends_with('/') {
            base
        } else {
            format!("{base}/")
        };
        let base = url::Url::parse(&base).map_err(|_| SettingsError::BaseUrl(base.clone()))?;
        let api = Api::new(base, settings.api_token, settings.timeout)
            .map_err(|e| SettingsError::Client(e.to_string()))?;
        Ok(Self {
            api,
            zone_id: settings.zone_id,
            ttl: settings.ttl,
        })
    }

    /// The zone id for `name`: configured, or the zone named like the closest enclosing
    /// name (the domain's [`find_zone`] walk).
    async fn zone_id(&self, name: &str) -> Result<String, DnsError> {
        if let Some(id) = &self.zone_id {
            return Ok(id.clone());
        }
        let found = find_zone(name, |candidate| async move {
            let zones = self.api.zones_named(&candidate).await.map_err(translate)?;
            Ok::<_, DnsError>(
                zones
                    .into_iter()
                    .find(|z| z.name.eq_ignore_ascii_case(&candidate))
                    .map(|z| z.id),
            )
        })
        .await?;
        match found {
            Some((zone, id)) => {
                debug!(name, zone, zone_id = %id, "found the Cloudflare zone");
                Ok(id)
            }
            None => Err(DnsError::ZoneNotFound(name.to_owned())),
        }
    }

    /// Ids of the TXT records on `name` whose text is `value`.
    async fn records_with_value(
        &self,
        zone_id: &str,
        name: &str,
        value: &str,
    ) -> Result<Vec<String>, DnsError> {
        let records = self
            .api
            .txt_records(zone_id, name)
            .await
            .map_err(translate)?;
        Ok(records
            .into_iter()
            .filter(|r| r.name.eq_ignore_ascii_case(name) && unquote_txt(&r.content) == value)
            .map(|r| r.id)
            .collect())
    }
}

#[async_trait]
impl DnsProvider for CloudflareProvider {
    async fn present(&self, record: &TxtRecord) -> Result<(), DnsError> {
        let name = record.normalized_name();
        let zone_id = self.zone_id(&name).await?;
        if !self
            .records_with_value(&zone_id, &name, &record.value)
            .await?
            .is_empty()
        {
            debug!(name, "TXT value already present");
            return Ok(());
        }
        let new = NewTxt {
            kind: "TXT",
            name: &name,
            content: &record.value,
            ttl: self.ttl,
        };
        match self.api.create_txt(&zone_id, &new).await {
            Ok(created) => {
                info!(name, zone_id, record_id = %created.id, "TXT record created in Cloudflare")
            }
            // Someone created the same value between our listing and our create.
            Err(e) if e.has_code(IDENTICAL_RECORD_EXISTS) => {
                debug!(name, "TXT value created concurrently");
            }
            Err(e) => return Err(translate(e)),
        }
        Ok(())
    }

    async fn cleanup(&self, record: &TxtRecord) -> Result<(), DnsError> {
        let name = record.normalized_name();
        let zone_id = self.zone_id(&name).await?;
        for id in self
            .records_with_value(&zone_id, &name, &record.value)
            .await?
        {
            match self.api.delete_record(&zone_id, &id).await {
                Ok(()) => {
                    info!(name, zone_id, record_id = %id, "TXT record deleted from Cloudflare")
                }
                Err(e)
                    if e.status().is_some_and(|s| s.as_u16() == 404)
                        || e.has_code(RECORD_DOES_NOT_EXIST) =>
                {
                    debug!(name, record_id = %id, "TXT record already deleted");
                }
                Err(e) => return Err(translate(e)),
            }
        }
        Ok(())
    }
}

/// API errors keep Cloudflare's codes ("Cloudflare HTTP 403: error 9109 Invalid access
/// token"; 401 and 403 are [`DnsError::Unauthorized`]); rate limits, server errors and network failures are temporary
/// ([`DnsError::Transport`]).
fn translate(error: ApiError) -> DnsError {
    let temporary = match &error {
        ApiError::Api { status, .. } => status.as_u16() == 429 || status.is_server_error(),
        ApiError::Transport(_) | ApiError::TooLarge => true,
    };
    let unauthorized = matches!(&error, ApiError::Api { status, .. } if status.as_u16() == 401 || status.as_u16() == 403);
    // Users read this text in their order: no zone ids, account ids or tokens.
    let text = redact_provider_text(&error.to_string());
    if temporary {
        DnsError::Transport(text.into())
    } else if unauthorized {
        DnsError::Unauthorized(text)
    } else {
        DnsError::Rejected(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_do_not_print() {
        let settings = CloudflareSettings::new(Secret::new("very-secret-token"));
        assert!(!format!("{settings:?}").contains("very-secret-token"));
    }
}
