//! A local server following acme-dns's documented HTTP API (`POST /register`,
//! `POST /update` with `X-Api-User`/`X-Api-Key` and `{"subdomain", "txt"}`), since no
//! acme-dns package exists here. Like acme-dns it keeps the two most recent values of
//! each subdomain, refuses TXT values that are not 43 characters (`bad_txt`) and updates
//! of another account's subdomain (`forbidden`). Every request that breaks the API's
//! shape is recorded, so tests can assert there was none.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The domain under which the stub hands out subdomains.
pub const AUTH_DOMAIN: &str = "auth.acme-dns.test";

#[derive(Clone)]
struct Account {
    password: String,
    subdomain: String,
}

/// Accounts, values, and what the stub saw.
#[derive(Clone, Default)]
pub struct AcmeDnsState {
    accounts: Arc<Mutex<BTreeMap<String, Account>>>,
    /// Values per subdomain, oldest first, at most two.
    txt: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    pub registrations: Arc<Mutex<u32>>,
    pub malformed: Arc<Mutex<Vec<String>>>,
}

impl AcmeDnsState {
    /// The values served for `fulldomain` (`<subdomain>.auth.acme-dns.test`), sorted.
    pub fn values(&self, fulldomain: &str) -> Vec<String> {
        let sub = fulldomain
            .trim_end_matches('.')
            .strip_suffix(&format!(".{AUTH_DOMAIN}"))
            .unwrap_or_default();
        let mut values = self
            .txt
            .lock()
            .expect("stub state")
            .get(sub)
            .cloned()
            .unwrap_or_default();
        values.sort();
        values
    }

    fn malformed(&self, reason: &str) -> ResponseTemplate {
        self.malformed
            .lock()
            .expect("stub state")
            .push(reason.to_owned());
        ResponseTemplate::new(400).set_body_json(json!({ "error": reason }))
    }
}

fn forbidden() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({"error": "forbidden"}))
}

/// Starts the server.
pub async fn acme_dns_stub(state: AcmeDnsState) -> MockServer {
    let server = MockServer::start().await;
    let s = state.clone();
    Mock::given(method("POST"))
        .and(path("/register"))
        .respond_with(move |request: &Request| {
            let allow_from = if request.body.is_empty() {
                Vec::new()
            } else {
                let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
                    return s.malformed("malformed_json_payload");
                };
                match body.get("allowfrom") {
                    None => Vec::new(),
                    Some(Value::Array(items))
                        if items
                            .iter()
                            .all(|i| i.as_str().is_some_and(|c| c.contains('/'))) =>
                    {
                        items.clone()
                    }
                    Some(_) => return s.malformed("invalid_allowfrom_cidr"),
                }
            };
            let n = {
                let mut count = s.registrations.lock().expect("stub state");
                *count += 1;
                *count
            };
            let username = format!("c36f50e8-4632-44f0-83fe-e070fef28a{n:02}");
            let subdomain = format!("8e5700ea-a4bf-41c7-8a77-e990661dcc{n:02}");
            let password = format!("htB9mR9DYgcu9bX_afHF62erXaH2TS7bg9KW3F7Z{n:02}");
            s.accounts.lock().expect("stub state").insert(
                username.clone(),
                Account {
                    password: password.clone(),
                    subdomain: subdomain.clone(),
                },
            );
            ResponseTemplate::new(201).set_body_json(json!({
                "username": username, "password": password,
                "fulldomain": format!("{subdomain}.{AUTH_DOMAIN}"),
                "subdomain": subdomain, "allowfrom": allow_from,
            }))
        })
        .mount(&server)
        .await;
    let s = state.clone();
    Mock::given(method("POST"))
        .and(path("/update"))
        .respond_with(move |request: &Request| {
            let header = |name: &str| {
                request
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let (Some(user), Some(key)) = (header("x-api-user"), header("x-api-key")) else {
                return forbidden();
            };
            let account = s.accounts.lock().expect("stub state").get(&user).cloned();
            let Some(account) = account.filter(|a| a.password == key) else {
                return forbidden();
            };
            let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
                return s.malformed("malformed_json_payload");
            };
            let (Some(sub), Some(txt)) = (body["subdomain"].as_str(), body["txt"].as_str()) else {
                return s.malformed("missing subdomain or txt");
            };
            if sub != account.subdomain {
                return forbidden();
            }
            if txt.len() != 43 {
                return s.malformed("bad_txt");
            }
            let mut all = s.txt.lock().expect("stub state");
            let values = all.entry(sub.to_owned()).or_default();
            values.push(txt.to_owned());
            if values.len() > 2 {
                values.remove(0);
            }
            ResponseTemplate::new(200).set_body_json(json!({ "txt": txt }))
        })
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(404).set_body_string("404 page not found"))
        .with_priority(10)
        .mount(&server)
        .await;
    server
}
