//! A generic HTTP endpoint as a [`DnsProvider`], compatible with lego's `httpreq`
//! provider in its default mode, so that an endpoint written for lego works unchanged:
//! `POST <endpoint>/present` and `POST <endpoint>/cleanup` with the JSON body
//! `{"fqdn": "_acme-challenge.example.com.", "value": "<TXT value>"}`, optionally with
//! HTTP Basic authentication (lego's `HTTPREQ_USERNAME`/`HTTPREQ_PASSWORD`) or a bearer
//! token. Any 2xx answer is success.
//!
//! What "present twice" and "two values on one name" mean is up to the endpoint; the
//! contract suite checks this adapter against an endpoint that keeps a set of values.

use crate::http::{self, SettingsError};
use acmeport_domain::ports::{DnsError, DnsProvider};
use acmeport_domain::Secret;
use acmeport_domain::TxtRecord;
use async_trait::async_trait;
use serde::Serialize;
use std::time::Duration;
use tracing::info;
use url::Url;

/// How requests authenticate.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum WebhookAuth {
    /// No `Authorization` header.
    #[default]
    None,
    /// HTTP Basic.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
}

/// Where to send the two calls.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The URL that receives `present` calls.
    pub present_url: String,
    /// The URL that receives `cleanup` calls.
    pub cleanup_url: String,
    /// How the calls authenticate.
    pub auth: WebhookAuth,
    /// Limit for one request.
    pub timeout: Duration,
}

impl WebhookSettings {
    /// lego's layout: `<endpoint>/present` and `<endpoint>/cleanup`, no authentication,
    /// 30 s per request.
    #[must_use]
    pub fn from_endpoint(endpoint: &str) -> Self {
        let base = endpoint.trim().trim_end_matches('/');
        Self {
            present_url: format!("{base}/present"),
            cleanup_url: format!("{base}/cleanup"),
            auth: WebhookAuth::None,
            timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    fqdn: &'a str,
    value: &'a str,
}

/// Writes DNS-01 TXT records through an HTTP endpoint.
pub struct WebhookProvider {
    http: reqwest::Client,
    present: Url,
    cleanup: Url,
    auth: WebhookAuth,
}

impl std::fmt::Debug for WebhookProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            WebhookAuth::None => "none",
            WebhookAuth::Basic { .. } => "basic",
            WebhookAuth::Bearer(_) => "bearer",
        };
        f.debug_struct("WebhookProvider")
            .field("present", &url_without_secrets(&self.present))
            .field("cleanup", &url_without_secrets(&self.cleanup))
            .field("auth", &auth)
            .finish_non_exhaustive()
    }
}

impl WebhookProvider {
    /// Builds the client; nothing is sent yet.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] for URLs that are not http(s).
    pub fn new(settings: WebhookSettings) -> Result<Self, SettingsError> {
        Ok(Self {
            http: http::client(settings.timeout)?,
            present: http::parse_url("present_url", &settings.present_url)?,
            cleanup: http::parse_url("cleanup_url", &settings.cleanup_url)?,
            auth: settings.auth,
        })
    }

    async fn call(&self, url: &Url, action: &str, record: &TxtRecord) -> Result<(), DnsError> {
        let fqdn = record.absolute_name();
        let mut request = self.http.post(url.clone()).json(&Body {
            fqdn: &fqdn,
            value: &record.value,
        });
        request = match &self.auth {
            WebhookAuth::None => request,
            WebhookAuth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose()))
            }
            WebhookAuth::Bearer(token) => request.bearer_auth(token.expose()),
        };
        let who = format!("webhook {action} ({})", url_without_secrets(url));
        let response = request
            .send()
            .await
            .map_err(|e| http::transport(&who, &e))?;
        if response.status().is_success() {
            info!(name = %record.name, action, "TXT value sent to the webhook");
            Ok(())
        } else {
            Err(http::refusal(&who, response).await)
        }
    }
}

/// The URL for messages, without user information or query (which may hold a key).
fn url_without_secrets(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}

#[async_trait]
impl DnsProvider for WebhookProvider {
    async fn present(&self, record: &TxtRecord) -> Result<(), DnsError> {
        self.call(&self.present, "present", record).await
    }

    async fn cleanup(&self, record: &TxtRecord) -> Result<(), DnsError> {
        self.call(&self.cleanup, "cleanup", record).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_layout_is_legos() {
        let s = WebhookSettings::from_endpoint("https://dns.example.com/hook/");
        assert_eq!(s.present_url, "https://dns.example.com/hook/present");
        assert_eq!(s.cleanup_url, "https://dns.example.com/hook/cleanup");
    }

    #[test]
    fn secrets_do_not_show() {
        let mut settings = WebhookSettings::from_endpoint("https://u:pw@dns.example.com/x?key=k1");
        settings.auth = WebhookAuth::Bearer(Secret::new("tok-123"));
        let provider = WebhookProvider::new(settings).expect("valid settings");
        let debug = format!("{provider:?}");
        assert!(!debug.contains("tok-123"), "{debug}");
        let shown = url_without_secrets(&provider.present);
        assert!(!shown.contains("pw") && !shown.contains("k1"), "{shown}");
    }

    #[test]
    fn urls_must_be_http() {
        let mut settings = WebhookSettings::from_endpoint("https://dns.example.com");
        settings.cleanup_url = "ftp://dns.example.com/cleanup".to_owned();
        let err = WebhookProvider::new(settings).expect_err("ftp is refused");
        assert!(err.to_string().contains("cleanup_url"), "{err}");
    }
}
