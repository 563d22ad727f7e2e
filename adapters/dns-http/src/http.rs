//! The HTTP client every provider of this crate uses, and the one translation of its
//! answers into [`DnsError`]s.

use acmeport_domain::ports::DnsError;
use acmeport_domain::redact_provider_text;
use reqwest::{Response, StatusCode};
use std::time::Duration;
use url::Url;

/// How much of an error body goes into an error, at most.
const BODY_LIMIT: usize = 500;

/// Settings that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A URL does not parse or is not http(s); names the setting.
    #[error("{0}: not an http(s) URL: {1}")]
    Url(&'static str, String),
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// Something else about the settings; says what.
    #[error("{0}")]
    Invalid(String),
}

/// A client with a per-request limit.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, SettingsError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| SettingsError::Client(e.to_string()))
}

/// Parses an http(s) URL of the setting `key`.
pub(crate) fn parse_url(key: &'static str, text: &str) -> Result<Url, SettingsError> {
    let url = Url::parse(text.trim()).map_err(|e| SettingsError::Url(key, e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SettingsError::Url(key, format!("scheme {}", url.scheme())));
    }
    Ok(url)
}

/// A request that did not complete: temporary.
pub(crate) fn transport(who: &str, error: &reqwest::Error) -> DnsError {
    // reqwest's Display hides the cause (connection refused, timeout); keep it.
    let mut text = format!("{who}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    DnsError::Transport(redact_provider_text(&text).into())
}

/// A non-success answer: 401/403 are [`DnsError::Unauthorized`], 429 and 5xx
/// [`DnsError::Transport`], the rest [`DnsError::Rejected`]; the text is
/// `<who> HTTP <status>: <the server's reason>`.
pub(crate) async fn refusal(who: &str, response: Response) -> DnsError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let text = format!("{who} HTTP {}: {}", status.as_u16(), reason(&body));
    classify(status, text)
}

pub(crate) fn classify(status: StatusCode, text: String) -> DnsError {
    // Users read this text in their orders: no account ids or tokens.
    let text = redact_provider_text(&text);
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        DnsError::Unauthorized(text)
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        DnsError::Transport(text.into())
    } else {
        DnsError::Rejected(text)
    }
}

/// The reason in an error body: the `error` field of a JSON object (PowerDNS and
/// acme-dns answer `{"error": "..."}`), else the body's text, shortened.
pub(crate) fn reason(body: &str) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(serde_json::Value::String(error)) = map.get("error") {
            return error.clone();
        }
    }
    let body = body.trim();
    if body.is_empty() {
        return "no reason given".to_owned();
    }
    if body.len() <= BODY_LIMIT {
        return body.to_owned();
    }
    let mut end = BODY_LIMIT;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &body[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_come_from_json_error_fields_or_the_text() {
        assert_eq!(
            reason(r#"{"error": "Could not find domain"}"#),
            "Could not find domain"
        );
        assert_eq!(reason("  Unauthorized \n"), "Unauthorized");
        assert_eq!(reason(""), "no reason given");
        assert!(reason(&"x".repeat(2000)).len() < 600);
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, String::new()),
            DnsError::Unauthorized(_)
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, String::new()),
            DnsError::Transport(_)
        ));
        assert!(matches!(
            classify(StatusCode::UNPROCESSABLE_ENTITY, String::new()),
            DnsError::Rejected(_)
        ));
    }
}
