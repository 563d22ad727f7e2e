//! A local stub of Cloudflare's v4 API (no emulator exists): one zone, `example.test`,
//! whose TXT records live in memory. It checks the bearer token, the routes and the exact
//! JSON body of every create, and answers in the shapes of the real API.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The only token the stub accepts.
pub const CF_TOKEN: &str = "cf-test-token-0123456789";
/// The id of the stub's one zone, `example.test`.
pub const CF_ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";

/// The TXT records the stub holds: (id, name, content).
#[derive(Clone, Default)]
pub struct CloudflareState {
    pub records: Arc<Mutex<Vec<(String, String, String)>>>,
    next_id: Arc<AtomicU32>,
}

/// A v4 success envelope.
pub fn cf_ok(result: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"success": true, "errors": [], "messages": [], "result": result}))
}

/// A v4 error envelope with one error.
pub fn cf_error(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null}))
}

/// A TXT record of zone `example.test` as v4 shows it.
pub fn cf_record(id: &str, name: &str, content: &str) -> Value {
    json!({
        "id": id, "zone_id": CF_ZONE, "zone_name": "example.test", "name": name, "type": "TXT",
        "content": content, "proxiable": false, "proxied": false, "ttl": 120, "locked": false,
        "meta": {"auto_added": false}, "created_on": "2026-01-01T00:00:00Z",
        "modified_on": "2026-01-01T00:00:00Z"
    })
}

/// A stub of the v4 API for zone `example.test` that keeps TXT records in `state`, and
/// answers 403 (code 10000) to anything without the bearer token or off the routes.
pub async fn cloudflare_stub(state: CloudflareState) -> MockServer {
    let server = MockServer::start().await;
    let auth = || header("authorization", format!("Bearer {CF_TOKEN}").as_str());
    Mock::given(method("GET"))
        .and(path("/client/v4/zones"))
        .and(auth())
        .respond_with(|request: &Request| {
            let name = request
                .url
                .query_pairs()
                .find(|(k, _)| k == "name")
                .map(|(_, v)| v.into_owned());
            if name.as_deref() == Some("example.test") {
                cf_ok(json!([{"id": CF_ZONE, "name": "example.test", "status": "active"}]))
            } else {
                cf_ok(json!([]))
            }
        })
        .mount(&server)
        .await;
    let records = state.clone();
    Mock::given(method("GET"))
        .and(path(format!("/client/v4/zones/{CF_ZONE}/dns_records")))
        .and(query_param("type", "TXT"))
        .and(auth())
        .respond_with(move |request: &Request| {
            let name = request
                .url
                .query_pairs()
                .find(|(k, _)| k == "name")
                .map(|(_, v)| v.into_owned());
            let list: Vec<Value> = records
                .records
                .lock()
                .expect("state")
                .iter()
                .filter(|(_, n, _)| Some(n) == name.as_ref())
                // Cloudflare returns contents quoted when written so; exercise that path.
                .map(|(id, n, c)| cf_record(id, n, &format!("\"{c}\"")))
                .collect();
            cf_ok(Value::Array(list))
        })
        .mount(&server)
        .await;
    let records = state.clone();
    Mock::given(method("POST"))
        .and(path(format!("/client/v4/zones/{CF_ZONE}/dns_records")))
        .and(header("content-type", "application/json"))
        .and(auth())
        .respond_with(move |request: &Request| {
            let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
                return cf_error(400, 9207, "request body is not JSON");
            };
            let (Some(name), Some(content)) = (body["name"].as_str(), body["content"].as_str())
            else {
                return cf_error(400, 9005, "name and content are required");
            };
            let expected = json!({"type": "TXT", "name": name, "content": content, "ttl": 120});
            if body != expected {
                return cf_error(
                    400,
                    9000,
                    &format!("unexpected body {body}, wanted exactly {expected}"),
                );
            }
            let mut all = records.records.lock().expect("state");
            if all.iter().any(|(_, n, c)| n == name && c == content) {
                return cf_error(400, 81058, "An identical record already exists.");
            }
            let id = format!("rec{}", records.next_id.fetch_add(1, Ordering::SeqCst));
            all.push((id.clone(), name.to_owned(), content.to_owned()));
            cf_ok(cf_record(&id, name, content))
        })
        .mount(&server)
        .await;
    let records = state.clone();
    Mock::given(method("DELETE"))
        .and(path_regex(format!(
            r"^/client/v4/zones/{CF_ZONE}/dns_records/[a-z0-9]+$"
        )))
        .and(auth())
        .respond_with(move |request: &Request| {
            let id = request
                .url
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let mut all = records.records.lock().expect("state");
            let before = all.len();
            all.retain(|(i, _, _)| *i != id);
            if all.len() == before {
                cf_error(404, 81044, "Record does not exist.")
            } else {
                cf_ok(json!({"id": id}))
            }
        })
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(cf_error(403, 10000, "Authentication error"))
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

impl CloudflareState {
    /// The contents of the TXT records on `name`, sorted.
    pub fn values(&self, name: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .records
            .lock()
            .expect("stub state")
            .iter()
            .filter(|(_, n, _)| n == name)
            .map(|(_, _, content)| content.clone())
            .collect();
        values.sort();
        values
    }

    /// Every TXT record the stub holds, as (name, content).
    pub fn all(&self) -> Vec<(String, String)> {
        self.records
            .lock()
            .expect("stub state")
            .iter()
            .map(|(_, n, c)| (n.clone(), c.clone()))
            .collect()
    }
}
