//! The PowerDNS Authoritative HTTP API as a [`DnsProvider`].
//!
//! PowerDNS stores one RRset per name and type, and a `PATCH` with `changetype: REPLACE`
//! replaces the whole set, so a second value on a name is merged into the set read just
//! before: `present` writes the union, `cleanup` the remainder (or `DELETE`s the set when
//! ours was its last value). The read-modify-write is serialised inside one provider, as
//! for Route53. Zones are found with `GET zones?zone=<name>.` for each enclosing name
//! (the domain's [`find_zone`]) unless one is configured.

use crate::http::{self, SettingsError};
use acmeport_domain::ports::{DnsError, DnsProvider};
use acmeport_domain::Secret;
use acmeport_domain::{find_zone, normalize_name, unquote_txt, TxtRecord};
use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use tokio::sync::Mutex;
use tracing::{debug, info};
use url::Url;

/// How to reach the API.
#[derive(Debug, Clone)]
pub struct PowerDnsSettings {
    /// The web server's base URL (`http://127.0.0.1:8081`); `/api/v1/...` is appended.
    pub api_url: String,
    /// The API key (`api-key` in pdns.conf), sent as `X-API-Key`.
    pub api_key: Secret,
    /// The server id in API paths; `localhost` on a plain PowerDNS Authoritative.
    pub server_id: String,
    /// The zone (`example.com`); `None` finds it by walking up each name.
    pub zone: Option<String>,
    /// TTL of the TXT sets written.
    pub ttl: u32,
    /// Limit for one request.
    pub timeout: Duration,
}

impl PowerDnsSettings {
    /// Settings with the defaults: server `localhost`, zone discovered, TTL 60 s, 30 s per
    /// request.
    #[must_use]
    pub fn new(api_url: impl Into<String>, api_key: Secret) -> Self {
        Self {
            api_url: api_url.into(),
            api_key,
            server_id: "localhost".to_owned(),
            zone: None,
            ttl: 60,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Writes DNS-01 TXT records into PowerDNS zones.
pub struct PowerDnsProvider {
    http: reqwest::Client,
    /// `<api_url>/api/v1/servers/<server id>/`
    server: Url,
    api_key: Secret,
    zone: Option<String>,
    ttl: u32,
    write_lock: Mutex<()>,
}

impl std::fmt::Debug for PowerDnsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerDnsProvider")
            .field("server", &self.server.as_str())
            .field("zone", &self.zone)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ZoneRef {
    id: String,
    name: String,
}

#[derive(Deserialize)]
struct Zone {
    #[serde(default)]
    rrsets: Vec<RrSet>,
}

#[derive(Deserialize)]
struct RrSet {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    ttl: Option<u32>,
    #[serde(default)]
    records: Vec<RecordContent>,
}

#[derive(Deserialize, Serialize, Clone)]
struct RecordContent {
    content: String,
    #[serde(default)]
    disabled: bool,
}

impl PowerDnsProvider {
    /// Builds the client; nothing is sent yet.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] for an API URL that is not http(s) or an empty server id.
    pub fn new(settings: PowerDnsSettings) -> Result<Self, SettingsError> {
        let base = http::parse_url("api_url", &settings.api_url)?;
        let server_id = settings.server_id.trim();
        if server_id.is_empty() || server_id.contains('/') {
            return Err(SettingsError::Invalid(format!(
                "server_id {server_id:?} is not a PowerDNS server id"
            )));
        }
        let server = base
            .join(&format!(
                "{}/api/v1/servers/{server_id}/",
                base.path().trim_end_matches('/')
            ))
            .map_err(|e| SettingsError::Url("api_url", e.to_string()))?;
        Ok(Self {
            http: http::client(settings.timeout)?,
            server,
            api_key: settings.api_key,
            zone: settings.zone.as_deref().map(normalize_name),
            ttl: settings.ttl,
            write_lock: Mutex::new(()),
        })
    }

    fn url(&self, path: &str) -> Result<Url, DnsError> {
        self.server
            .join(path)
            .map_err(|e| DnsError::Rejected(format!("PowerDNS: bad API path {path}: {e}")))
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response, DnsError> {
        let mut request = self
            .http
            .request(method, url)
            .header("X-API-Key", self.api_key.expose());
        if let Some(body) = body {
            request = request.json(&body);
        }
        request
            .send()
            .await
            .map_err(|e| http::transport("PowerDNS", &e))
    }

    /// The zone id holding `name`: the configured zone's, or the closest enclosing zone
    /// the server has.
    async fn zone_id(&self, name: &str) -> Result<String, DnsError> {
        if let Some(zone) = &self.zone {
            if name != zone && !name.ends_with(&format!(".{zone}")) {
                return Err(DnsError::ZoneNotFound(format!(
                    "{name} (outside the configured zone {zone})"
                )));
            }
            return Ok(format!("{zone}."));
        }
        let found = find_zone(name, |candidate| async move {
            let mut url = self.url("zones")?;
            url.query_pairs_mut()
                .append_pair("zone", &format!("{candidate}."));
            let response = self.send(Method::GET, url, None).await?;
            if !response.status().is_success() {
                return Err(http::refusal("PowerDNS", response).await);
            }
            let zones: Vec<ZoneRef> = response
                .json()
                .await
                .map_err(|e| http::transport("PowerDNS zone list", &e))?;
            Ok(zones
                .into_iter()
                .find(|z| normalize_name(&z.name) == candidate)
                .map(|z| z.id))
        })
        .await?;
        match found {
            Some((zone, id)) => {
                debug!(name, zone, "found the PowerDNS zone");
                Ok(id)
            }
            None => Err(DnsError::ZoneNotFound(format!(
                "{name} (PowerDNS at {} has no enclosing zone)",
                self.server
            ))),
        }
    }

    fn zone_url(&self, zone_id: &str) -> Result<Url, DnsError> {
        let mut url = self.url("zones/")?;
        url.path_segments_mut()
            .map_err(|()| DnsError::Rejected("PowerDNS: API URL cannot hold a path".into()))?
            .pop_if_empty()
            .push(zone_id);
        Ok(url)
    }

    /// The TXT records on `name` (contents as stored, quoted) and the set's TTL.
    async fn current(
        &self,
        zone_id: &str,
        absolute: &str,
    ) -> Result<Option<(Vec<RecordContent>, u32)>, DnsError> {
        let response = self
            .send(Method::GET, self.zone_url(zone_id)?, None)
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(DnsError::ZoneNotFound(format!(
                "{absolute} (PowerDNS has no zone {zone_id})"
            )));
        }
        if !response.status().is_success() {
            return Err(http::refusal("PowerDNS", response).await);
        }
        let zone: Zone = response
            .json()
            .await
            .map_err(|e| http::transport("PowerDNS zone", &e))?;
        Ok(zone
            .rrsets
            .into_iter()
            .find(|set| set.kind == "TXT" && set.name.eq_ignore_ascii_case(absolute))
            .map(|set| (set.records, set.ttl.unwrap_or(self.ttl))))
    }

    async fn patch(
        &self,
        zone_id: &str,
        absolute: &str,
        records: Vec<RecordContent>,
        ttl: u32,
    ) -> Result<(), DnsError> {
        let rrset = if records.is_empty() {
            json!({"name": absolute, "type": "TXT", "changetype": "DELETE"})
        } else {
            json!({"name": absolute, "type": "TXT", "ttl": ttl, "changetype": "REPLACE", "records": records})
        };
        let response = self
            .send(
                Method::PATCH,
                self.zone_url(zone_id)?,
                Some(json!({ "rrsets": [rrset] })),
            )
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(http::refusal("PowerDNS", response).await)
        }
    }
}

#[async_trait]
impl DnsProvider for PowerDnsProvider {
    async fn present(&self, record: &TxtRecord) -> Result<(), DnsError> {
        let name = record.normalized_name();
        let absolute = record.absolute_name();
        let zone_id = self.zone_id(&name).await?;
        let _guard = self.write_lock.lock().await;
        let (mut records, ttl) = self
            .current(&zone_id, &absolute)
            .await?
            .unwrap_or_else(|| (Vec::new(), self.ttl));
        if records
            .iter()
            .any(|r| unquote_txt(&r.content) == record.value)
        {
            debug!(name, "TXT value already present");
            return Ok(());
        }
        records.push(RecordContent {
            content: record.quoted_value(),
            disabled: false,
        });
        self.patch(&zone_id, &absolute, records, ttl).await?;
        info!(name, zone = zone_id, "TXT value added in PowerDNS");
        Ok(())
    }

    async fn cleanup(&self, record: &TxtRecord) -> Result<(), DnsError> {
        let name = record.normalized_name();
        let absolute = record.absolute_name();
        let zone_id = self.zone_id(&name).await?;
        let _guard = self.write_lock.lock().await;
        let Some((records, ttl)) = self.current(&zone_id, &absolute).await? else {
            debug!(name, "no TXT set left to clean up");
            return Ok(());
        };
        let remainder: Vec<RecordContent> = records
            .iter()
            .filter(|r| unquote_txt(&r.content) != record.value)
            .cloned()
            .collect();
        if remainder.len() == records.len() {
            debug!(name, "TXT value already gone");
            return Ok(());
        }
        self.patch(&zone_id, &absolute, remainder, ttl).await?;
        info!(name, zone = zone_id, "TXT value removed from PowerDNS");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_hold_the_server_id_and_the_zone_id() {
        let mut settings =
            PowerDnsSettings::new("http://127.0.0.1:8081/pdns", Secret::new("key-123"));
        settings.server_id = "ns-a".to_owned();
        let provider = PowerDnsProvider::new(settings).expect("valid settings");
        assert_eq!(
            provider.zone_url("example.com.").expect("url").as_str(),
            "http://127.0.0.1:8081/pdns/api/v1/servers/ns-a/zones/example.com."
        );
        assert!(!format!("{provider:?}").contains("key-123"));
    }

    #[test]
    fn bad_server_ids_are_refused() {
        let mut settings = PowerDnsSettings::new("http://127.0.0.1:8081", Secret::new("k"));
        settings.server_id = "a/b".to_owned();
        assert!(PowerDnsProvider::new(settings).is_err());
    }
}
