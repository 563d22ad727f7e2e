//! The real application (`acmeport_server::Application`, what `acmeport serve` runs) started
//! in-process on port 0 from a TOML configuration, and a REST client for it.

use super::pebble::Pebble;
use acmeport_domain::Acmeport;
use acmeport_server::{Application, Config, StopHandle};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The first admin, created from `[bootstrap]`.
pub const ADMIN: (&str, &str) = ("admin", "admin-password-for-tests");

/// How long an order may stay `pending` before a test gives up on it.
const ORDER_TIMEOUT: Duration = Duration::from_secs(90);

/// A running application with its own data directory, stopped on drop.
pub struct TestApp {
    pub address: SocketAddr,
    /// The running service, for what the REST API does not show (an order's renewal
    /// plan).
    pub service: Acmeport,
    http: reqwest::Client,
    stop: StopHandle,
    _data: tempfile::TempDir,
}

/// A REST answer: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl TestApp {
    /// Starts the application against `pebble` (trusting its HTTPS CA, with a fresh SQLite
    /// database and master key), with `dns` appended to the configuration: the `[dns]`
    /// tables under test, written exactly as an operator would write them.
    pub async fn spawn(pebble: &Pebble, dns: &str) -> Self {
        Self::spawn_at(pebble.directory.as_str(), &pebble.tls_ca_pem, dns).await
    }

    /// Starts the application against the ACME `directory`, served over HTTPS with a
    /// certificate from `tls_ca_pem`; `extra` is appended to the configuration as in
    /// [`TestApp::spawn`].
    pub async fn spawn_at(directory: &str, tls_ca_pem: &str, extra: &str) -> Self {
        super::init();
        let data = tempfile::tempdir().expect("temporary data directory");
        let ca = data.path().join("acme-tls-ca.pem");
        std::fs::write(&ca, tls_ca_pem).expect("write the ACME server's TLS CA");
        let toml = format!(
            r#"
data_dir = {data_dir}

[api]
listen = "127.0.0.1:0"

[challenge]
# DNS-01 only: no HTTP-01 responder.
enabled = false

[acme]
directory = "{directory}"
extra_roots = [{ca}]
webpki_roots = false
validation_timeout_secs = 60
issuance_timeout_secs = 60

[auth]
token_secret = "routing-tests-token-secret-0123456789abcdef"
# Cheap hashes: the tests are about DNS, not password cost.
argon2_memory_kib = 1024
argon2_iterations = 1

[workers]
count = 2
poll_interval_secs = 1
# Transient failures are retried for 3 s instead of 10 minutes: failures surface in
# seconds.
retry_budget_secs = 3
retry_backoff_ms = 500

[bootstrap]
admin_username = "{admin}"
admin_password = "{password}"

{extra}
"#,
            data_dir = toml_string(&data.path().display().to_string()),
            ca = toml_string(&ca.display().to_string()),
            admin = ADMIN.0,
            password = ADMIN.1,
        );
        let file = data.path().join("acmeport.toml");
        std::fs::write(&file, &toml).expect("write the configuration");
        // No environment: ACMEPORT_ variables of the developer's shell must not leak in.
        let config = Config::load_from(Some(&file), &[])
            .unwrap_or_else(|e| panic!("the test configuration must load: {e}\n{toml}"));
        let app = Application::build(config)
            .await
            .unwrap_or_else(|e| panic!("the application must start: {e}"));
        let address = app.api_address();
        let stop = app.stop_handle();
        let service = app.service().clone();
        tokio::spawn(app.run_until_stopped());
        Self {
            address,
            service,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("HTTP client"),
            stop,
            _data: data,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn answer(request: reqwest::RequestBuilder, what: &str) -> Answer {
        let response = request
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what} answered {status} with no JSON ({e}): {text}"));
        Answer { status, body }
    }

    /// `GET path` as the admin.
    pub async fn get(&self, path: &str) -> Answer {
        Self::answer(self.http.get(self.url(path)), &format!("GET {path}")).await
    }

    /// `POST path` with a JSON body as the admin.
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        Self::answer(
            self.http.post(self.url(path)).json(body),
            &format!("POST {path}"),
        )
        .await
    }

    /// Registers an ACME account at `pebble` and returns its id.
    pub async fn account(&self, pebble: &Pebble, email: &str) -> i64 {
        let answer = self
            .post(
                "/api/acme",
                &json!({"email": email, "server": pebble.directory.as_str()}),
            )
            .await;
        assert_eq!(
            answer.status, 201,
            "POST /api/acme should create the account at Pebble: {:?}",
            answer.body
        );
        answer.body["id"].as_i64().expect("the account id")
    }

    /// `POST /api/order`; the order id when it was created (201).
    pub async fn create_order(&self, body: &Value) -> i64 {
        let answer = self.post("/api/order", body).await;
        assert_eq!(
            answer.status, 201,
            "POST /api/order {body} should create an order: {:?}",
            answer.body
        );
        answer.body["id"].as_i64().expect("the order id")
    }

    /// Polls `GET /api/order/<id>` until the order leaves `pending` (the workers run it
    /// in the background; there is nothing to wait on but its status), and returns it.
    pub async fn finished_order(&self, id: i64) -> Value {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let answer = self.get(&format!("/api/order/{id}")).await;
            assert_eq!(answer.status, 200, "GET /api/order/{id}: {:?}", answer.body);
            if answer.body["status"] != "pending" {
                return answer.body;
            }
            assert!(
                started.elapsed() < ORDER_TIMEOUT,
                "order {id} still pending after {ORDER_TIMEOUT:?}: {}",
                answer.body
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}
