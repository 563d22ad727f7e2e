//! A local HTTP endpoint in the shape lego's `httpreq` provider calls (default mode):
//! `POST /hook/present` and `POST /hook/cleanup` with `{"fqdn", "value"}`. It checks the
//! credentials, the content type and the exact body of every request, keeps a set of
//! values per name, and answers 401 with a reason to wrong credentials.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const HOOK_USER: &str = "hook-user";
pub const HOOK_PASSWORD: &str = "hook-password-0123";
pub const HOOK_TOKEN: &str = "hook-bearer-token-4567";

/// Which credentials the endpoint wants.
#[derive(Debug, Clone, Copy)]
pub enum HookAuth {
    Basic,
    Bearer,
}

/// The values the endpoint holds, by name (no trailing dot), and every request it
/// refused for its shape (not for its credentials).
#[derive(Clone, Default)]
pub struct WebhookState {
    values: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>,
    pub malformed: Arc<Mutex<Vec<String>>>,
}

impl WebhookState {
    /// The values on `name`, sorted.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.values
            .lock()
            .expect("stub state")
            .get(name)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn expected_authorization(auth: HookAuth) -> String {
    use base64::Engine as _;
    match auth {
        HookAuth::Basic => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{HOOK_USER}:{HOOK_PASSWORD}"))
        ),
        HookAuth::Bearer => format!("Bearer {HOOK_TOKEN}"),
    }
}

/// Checks one request; `Err` is the 400 reason.
fn check(request: &Request) -> Result<(String, String), String> {
    let content_type = request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type != "application/json" {
        return Err(format!(
            "content-type must be application/json, got {content_type:?}"
        ));
    }
    let body: Value =
        serde_json::from_slice(&request.body).map_err(|e| format!("body is not JSON: {e}"))?;
    let object = body.as_object().ok_or("body is not an object")?;
    if object.len() != 2 {
        return Err(format!("body must hold exactly fqdn and value: {body}"));
    }
    let fqdn = object
        .get("fqdn")
        .and_then(Value::as_str)
        .ok_or("fqdn missing")?;
    let value = object
        .get("value")
        .and_then(Value::as_str)
        .ok_or("value missing")?;
    let name = fqdn
        .strip_suffix('.')
        .ok_or_else(|| format!("fqdn {fqdn:?} must end with a dot, as lego sends it"))?;
    if !name.starts_with("_acme-challenge.") || name != name.to_ascii_lowercase() {
        return Err(format!("fqdn {fqdn:?} is not a lower-case challenge name"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Starts the endpoint.
pub async fn webhook_stub(state: WebhookState, auth: HookAuth) -> MockServer {
    let server = MockServer::start().await;
    for action in ["present", "cleanup"] {
        let state = state.clone();
        let wanted = expected_authorization(auth);
        Mock::given(method("POST"))
            .and(path(format!("/hook/{action}")))
            .respond_with(move |request: &Request| {
                let given = request
                    .headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok());
                if given != Some(wanted.as_str()) {
                    return ResponseTemplate::new(401)
                        .set_body_string("invalid credentials for the DNS hook");
                }
                match check(request) {
                    Ok((name, value)) => {
                        let mut all = state.values.lock().expect("stub state");
                        if action == "present" {
                            all.entry(name).or_default().insert(value);
                        } else if let Some(set) = all.get_mut(&name) {
                            set.remove(&value);
                        }
                        ResponseTemplate::new(200)
                    }
                    Err(reason) => {
                        state
                            .malformed
                            .lock()
                            .expect("stub state")
                            .push(reason.clone());
                        ResponseTemplate::new(400).set_body_string(reason)
                    }
                }
            })
            .mount(&server)
            .await;
    }
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(404).set_body_string("no such hook"))
        .with_priority(10)
        .mount(&server)
        .await;
    server
}
