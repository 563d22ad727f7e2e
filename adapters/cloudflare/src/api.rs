//! The few Cloudflare v4 API calls the provider makes, and the v4 envelope
//! (`{"success", "errors": [{"code", "message"}], "result"}`) read with error codes intact.
//!
//! The `cloudflare` crate (0.14) types error codes as u16; DNS errors are numbered from
//! 81000, so their bodies fail to parse there and only the HTTP status survives. This
//! module keeps the codes, which are what users search Cloudflare's documentation for.

use acmeport_domain::Secret;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;
use url::Url;

/// Cloudflare's production API base.
pub(crate) const PRODUCTION: &str = "https://api.cloudflare.com/client/v4/";

/// An authenticated v4 API client.
pub(crate) struct Api {
    http: reqwest::Client,
    base: Url,
    token: Secret,
}

/// One error of a v4 answer.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ApiMessage {
    pub code: u32,
    #[serde(default)]
    pub message: String,
}

/// A failed call.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// Cloudflare answered with an error status or `success: false`.
    Api {
        status: StatusCode,
        errors: Vec<ApiMessage>,
    },
    /// The request did not complete or the answer was not v4 JSON.
    Transport(reqwest::Error),
    /// The answer grew past [`MAX_BODY`] bytes.
    TooLarge,
}

/// The largest answer read from the API, in bytes: DNS record pages are a few kilobytes,
/// and an endless answer must not take the memory.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

impl ApiError {
    pub(crate) fn has_code(&self, code: u32) -> bool {
        matches!(self, Self::Api { errors, .. } if errors.iter().any(|e| e.code == code))
    }

    pub(crate) fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::Transport(e) => e.status(),
            Self::TooLarge => None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api { status, errors } if errors.is_empty() => {
                write!(f, "Cloudflare HTTP {}: no error details", status.as_u16())
            }
            Self::Api { status, errors } => {
                write!(f, "Cloudflare HTTP {}: ", status.as_u16())?;
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "error {} {}", e.code, e.message)?;
                }
                Ok(())
            }
            Self::Transport(e) => write!(f, "Cloudflare request failed: {e}"),
            Self::TooLarge => write!(f, "Cloudflare's answer is larger than {MAX_BODY} bytes"),
        }
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    result: Option<T>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    errors: Vec<ApiMessage>,
}

impl Api {
    pub(crate) fn new(base: Url, token: Secret, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self { http, base, token })
    }

    async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        // `base` ends with `/`, so joining keeps `/client/v4/`.
        let mut url = self.base.join(path).map_err(|_| ApiError::Api {
            status: StatusCode::BAD_REQUEST,
            errors: vec![ApiMessage {
                code: 0,
                message: format!("bad API path {path}"),
            }],
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        // The client's timeout covers the whole exchange, body included.
        let mut response = request.send().await.map_err(ApiError::Transport)?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(ApiError::Transport)? {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(ApiError::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let errors = serde_json::from_slice::<ErrorEnvelope>(&bytes)
                .map(|e| e.errors)
                .unwrap_or_default();
            return Err(ApiError::Api { status, errors });
        }
        let envelope: Envelope<T> = serde_json::from_slice(&bytes).map_err(|e| ApiError::Api {
            status,
            errors: vec![ApiMessage {
                code: 0,
                message: format!("unreadable answer: {e}"),
            }],
        })?;
        match envelope.result {
            Some(result) if envelope.success => Ok(result),
            _ => Err(ApiError::Api {
                status,
                errors: envelope.errors,
            }),
        }
    }

    /// `GET zones?name=<name>`
    pub(crate) async fn zones_named(&self, name: &str) -> Result<Vec<ZoneRef>, ApiError> {
        self.call::<_, ()>(Method::GET, "zones", &[("name", name)], None)
            .await
    }

    /// `GET zones/<id>/dns_records?type=TXT&name=<name>&per_page=100`
    pub(crate) async fn txt_records(
        &self,
        zone_id: &str,
        name: &str,
    ) -> Result<Vec<RecordRef>, ApiError> {
        // ACME names never reach 100 values on one name; one page is all.
        let path = format!("zones/{zone_id}/dns_records");
        self.call::<_, ()>(
            Method::GET,
            &path,
            &[("type", "TXT"), ("name", name), ("per_page", "100")],
            None,
        )
        .await
    }

    /// `POST zones/<id>/dns_records` with `{"type":"TXT","name","content","ttl"}`
    pub(crate) async fn create_txt(
        &self,
        zone_id: &str,
        record: &NewTxt<'_>,
    ) -> Result<RecordRef, ApiError> {
        let path = format!("zones/{zone_id}/dns_records");
        self.call(Method::POST, &path, &[], Some(record)).await
    }

    /// `DELETE zones/<id>/dns_records/<record id>`
    pub(crate) async fn delete_record(
        &self,
        zone_id: &str,
        record_id: &str,
    ) -> Result<(), ApiError> {
        let path = format!("zones/{zone_id}/dns_records/{record_id}");
        self.call::<serde_json::Value, ()>(Method::DELETE, &path, &[], None)
            .await
            .map(drop)
    }
}

/// A zone as listed (only what the provider needs).
#[derive(Debug, Deserialize)]
pub(crate) struct ZoneRef {
    pub id: String,
    pub name: String,
}

/// A DNS record as listed.
#[derive(Debug, Deserialize)]
pub(crate) struct RecordRef {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub content: String,
}

/// The body that creates a TXT record.
#[derive(Debug, Serialize)]
pub(crate) struct NewTxt<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: &'a str,
    pub content: &'a str,
    pub ttl: u32,
}
