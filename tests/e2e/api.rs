//! The REST API end to end: the real `Application` (what `acmeport serve` runs) on SQLite,
//! issuing through Pebble with HTTP-01 answered by its own challenge listener, called over
//! HTTP as a client would. Each test has its own Pebble, mock DNS and database.

use crate::harness::pebble::{free_tcp_port, ChallTestSrv, Pebble, PebbleOptions};
use crate::harness::{init, verify_chain};
use acmeport_server::config::{Config, Secret};
use acmeport_server::{Application, StopHandle};
use reqwest::Method;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const ADMIN: (&str, &str) = ("admin", "admin-password");
const ALICE: (&str, &str) = ("alice", "alice-password");
const BOB: (&str, &str) = ("bob", "bob-password");
const CHALLENGE: &str = r#"Basic realm="Authentication Required""#;

/// Peers and the service's files, shared by the runs of one test (a restart keeps them).
struct World {
    pebble: Pebble,
    _dns: ChallTestSrv,
    dir: tempfile::TempDir,
    config: Config,
}

/// One running application.
struct Service {
    base: String,
    stop: StopHandle,
    task: JoinHandle<()>,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
    text: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn id(&self) -> i64 {
        self.body["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no id in {}", self.text))
    }

    #[track_caller]
    fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "expected {status}, got {} with body {}",
            self.status, self.text
        );
        self
    }
}

impl World {
    /// Mock DNS answering 127.0.0.1 for every name, a Pebble validating HTTP-01 on the
    /// port of the service's challenge listener, and a configuration on SQLite.
    async fn new() -> Self {
        init();
        let dns = ChallTestSrv::start().await;
        let challenge_port = free_tcp_port();
        let pebble = Pebble::start(PebbleOptions {
            dns_server: Some(dns.dns),
            http_port: challenge_port,
            ..PebbleOptions::default()
        })
        .await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let ca = dir.path().join("pebble-ca.pem");
        std::fs::write(&ca, &pebble.tls_ca_pem).expect("write Pebble's CA");

        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        config.api.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.challenge.listen = SocketAddr::from(([127, 0, 0, 1], challenge_port));
        config.acme.directory = pebble.directory.to_string();
        config.acme.extra_roots = vec![ca];
        config.acme.webpki_roots = false;
        config.acme.validation_timeout_secs = 60;
        config.acme.issuance_timeout_secs = 60;
        // HTTP-01 only: no DNS provider, so every `type: dns` order must name one.
        config.dns.default = String::new();
        config.dns.providers.clear();
        config.dns.propagation.resolvers = vec![dns.dns];
        // Cheap hashes: these tests are about the API, the hasher is tested on its own.
        config.auth.argon2_memory_kib = 64;
        config.auth.argon2_iterations = 1;
        config.auth.token_secret = Some(Secret::new("e2e-token-secret-e2e-token-secret-0123"));
        config.workers.poll_interval_secs = 1;
        config.workers.lease_secs = 3;
        config.bootstrap.admin_username = Some(ADMIN.0.to_owned());
        config.bootstrap.admin_password = Some(Secret::new(ADMIN.1));
        // These tests are about the API as one team uses it; grants are tested in
        // `api::security` with the default (grants required).
        config.authorization.allow_any_name = true;
        Self {
            pebble,
            _dns: dns,
            dir,
            config,
        }
    }

    /// Starts the application as `acmeport serve` would.
    async fn start(&self) -> Service {
        let app = Application::build(self.config.clone())
            .await
            .unwrap_or_else(|e| panic!("the application must start: {e}"));
        let base = format!("http://{}", app.api_address());
        let stop = app.stop_handle();
        let task = tokio::spawn(app.run_until_stopped());
        Service {
            base,
            stop,
            task,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("HTTP client"),
        }
    }
}

impl Service {
    async fn call(
        &self,
        method: &str,
        path: &str,
        who: Option<(&str, &str)>,
        body: Option<String>,
    ) -> Answer {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some((user, password)) = who {
            request = request.basic_auth(user, Some(password));
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    async fn get(&self, path: &str, who: (&str, &str)) -> Answer {
        self.call("GET", path, Some(who), None).await
    }

    async fn post(&self, path: &str, who: (&str, &str), body: &Value) -> Answer {
        self.call("POST", path, Some(who), Some(body.to_string()))
            .await
    }

    async fn user(&self, who: (&str, &str)) {
        self.post(
            "/api/users",
            ADMIN,
            &json!({ "username": who.0, "password": who.1 }),
        )
        .await
        .expect(201);
    }

    async fn account(&self, who: (&str, &str)) -> i64 {
        let email = format!("{}@example.com", who.0);
        self.post("/api/acme", who, &json!({ "email": email }))
            .await
            .expect(201)
            .id()
    }

    /// Polls the order until it leaves `pending` or until `changed` says the wait is over.
    async fn wait_order(
        &self,
        who: (&str, &str),
        id: i64,
        done: impl Fn(&Value) -> bool,
    ) -> Answer {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let a = self.get(&format!("/api/order/{id}"), who).await.expect(200);
            if done(&a.body) {
                return a;
            }
            assert!(
                a.body["status"] != "invalid",
                "order {id} failed: {}",
                a.text
            );
            assert!(
                Instant::now() < deadline,
                "order {id} did not finish in time: {}",
                a.text
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An issued order of `who` for `domain`: (account, order, certificate).
    async fn issued(&self, who: (&str, &str), domain: &str) -> (i64, i64, i64) {
        let account = self.account(who).await;
        let order = self
            .post(
                "/api/order",
                who,
                &json!({ "domains": [domain], "account": account, "type": "http" }),
            )
            .await
            .expect(201)
            .id();
        let valid = self
            .wait_order(who, order, |o| o["status"] == "valid")
            .await;
        let cert = valid.body["resolved_cert_id"]
            .as_i64()
            .expect("resolved_cert_id");
        (account, order, cert)
    }

    async fn stop(self) {
        self.stop.stop();
        tokio::time::timeout(Duration::from_secs(35), self.task)
            .await
            .expect("the application stops after a stop request")
            .expect("the application task does not panic");
    }
}

fn serial_of(certificate: &Value) -> String {
    let pem = certificate["body"].as_str().expect("body");
    let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).expect("leaf PEM");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("leaf DER");
    cert.raw_serial_as_string().replace(':', "")
}

use rustls::pki_types::pem::PemObject as _;

mod security;

#[tokio::test]
async fn orders_certificates_and_accounts_through_the_api() {
    let world = World::new().await;
    let api = world.start().await;
    api.user(ALICE).await;

    // Accounts: 201 + Location, then 200 with the same id.
    let created = api
        .post("/api/acme", ALICE, &json!({ "email": "alice@example.com" }))
        .await
        .expect(201);
    let account = created.id();
    assert_eq!(created.body["status"], "valid");
    assert_eq!(
        created.header("location"),
        Some(format!("{}/api/acme/{account}", api.base).as_str())
    );
    let again = api
        .post("/api/acme", ALICE, &json!({ "email": "alice@example.com" }))
        .await
        .expect(200);
    assert_eq!(again.id(), account);
    api.post("/api/acme", ALICE, &json!({})).await.expect(400);
    let got = api
        .get(&format!("/api/acme/{account}"), ALICE)
        .await
        .expect(200);
    assert_eq!(got.body["server"], world.pebble.directory.to_string());
    assert!(
        got.body["uri"]
            .as_str()
            .is_some_and(|u| u.contains("/my-account/")),
        "{}",
        got.text
    );

    // Orders: the seed's status codes.
    let body =
        json!({ "domains": ["www.shop.test", "shop.test"], "account": account, "type": "http" });
    let created = api.post("/api/order", ALICE, &body).await.expect(201);
    let order = created.id();
    assert_eq!(
        created.header("location"),
        Some(format!("{}/api/order/{order}", api.base).as_str())
    );
    let same = api.post("/api/order", ALICE, &body).await.expect(200);
    assert_eq!(same.id(), order, "the same order again answers its id");
    for (bad, reason) in [
        (json!({ "account": account }), "missing field `domains`"),
        (
            json!({ "domains": ["a.shop.test"] }),
            "missing field `account`",
        ),
        (
            json!({ "domains": ["*.shop.test"], "account": account, "type": "http" }),
            "wildcard",
        ),
        (
            json!({ "domains": ["a.shop.test"], "account": account, "provider": "nope" }),
            "unknown DNS provider `nope`",
        ),
    ] {
        let a = api.post("/api/order", ALICE, &bad).await.expect(400);
        assert!(
            a.body["status"]
                .as_str()
                .is_some_and(|s| s.contains(reason)),
            "{bad}: {}",
            a.text
        );
    }

    let valid = api
        .wait_order(ALICE, order, |o| o["status"] == "valid")
        .await;
    let first = valid.body["resolved_cert_id"]
        .as_i64()
        .expect("resolved_cert_id once valid");
    assert_eq!(
        valid.header("location"),
        Some(format!("{}/api/certificate/{first}", api.base).as_str())
    );
    assert!(
        valid.body["uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://127.0.0.1")),
        "{}",
        valid.text
    );
    assert!(
        !valid.text.contains("PRIVATE KEY"),
        "order responses never carry keys"
    );

    // The certificate verifies against Pebble's root and comes with its key.
    let cert = api
        .get(&format!("/api/certificate/{first}"), ALICE)
        .await
        .expect(200);
    let root = world.pebble.root_pem().await;
    let names = vec!["www.shop.test".to_owned(), "shop.test".to_owned()];
    verify_chain(
        cert.body["fullchain"].as_str().expect("fullchain"),
        &root,
        &names,
    );
    assert!(
        cert.body["key"]
            .as_str()
            .is_some_and(|k| k.contains("PRIVATE KEY")),
        "the key is served"
    );
    let list = api.get("/api/certificate", ALICE).await.expect(200);
    assert!(list.body.get(first.to_string()).is_some(), "{}", list.text);
    assert!(!list.text.contains("PRIVATE KEY"), "lists never carry keys");

    // COPY: a second certificate, the first stays valid.
    let copied = api
        .call("COPY", &format!("/api/order/{order}"), Some(ALICE), None)
        .await
        .expect(200);
    assert_eq!(copied.body, json!({ "id": order, "status": "pending" }));
    let reissued = api
        .wait_order(ALICE, order, |o| {
            o["status"] == "valid" && o["resolved_cert_id"] != json!(first)
        })
        .await;
    let second = reissued.body["resolved_cert_id"]
        .as_i64()
        .expect("second certificate");
    let first_now = api
        .get(&format!("/api/certificate/{first}"), ALICE)
        .await
        .expect(200);
    assert_eq!(first_now.body["status"], "valid");
    assert_eq!(
        world.pebble.cert_status(&serial_of(&cert.body)).await["Status"],
        "Valid"
    );

    // DELETE revokes at the CA; again is 400.
    let revoked = api
        .call(
            "DELETE",
            &format!("/api/certificate/{first}"),
            Some(ALICE),
            None,
        )
        .await
        .expect(200);
    assert_eq!(revoked.body, json!({ "status": "revoked" }));
    assert_eq!(
        world.pebble.cert_status(&serial_of(&cert.body)).await["Status"],
        "Revoked"
    );
    let twice = api
        .call(
            "DELETE",
            &format!("/api/certificate/{first}"),
            Some(ALICE),
            None,
        )
        .await
        .expect(400);
    assert_eq!(twice.body["status"], "certificate is already revoked");

    // PURGE revokes the second and deletes it.
    let second_cert = api
        .get(&format!("/api/certificate/{second}"), ALICE)
        .await
        .expect(200);
    api.call(
        "PURGE",
        &format!("/api/certificate/{second}"),
        Some(ALICE),
        None,
    )
    .await
    .expect(200);
    assert_eq!(
        world
            .pebble
            .cert_status(&serial_of(&second_cert.body))
            .await["Status"],
        "Revoked"
    );
    api.get(&format!("/api/certificate/{second}"), ALICE)
        .await
        .expect(400);

    // DELETE on the account deactivates it; orders with it are refused.
    let deleted = api
        .call("DELETE", &format!("/api/acme/{account}"), Some(ALICE), None)
        .await
        .expect(200);
    assert_eq!(deleted.body, json!({ "status": "deactivated" }));
    let refused = api
        .post(
            "/api/order",
            ALICE,
            &json!({ "domains": ["new.shop.test"], "account": account, "type": "http" }),
        )
        .await
        .expect(400);
    assert_eq!(refused.body["status"], "account is deactivated");

    api.stop().await;
}

#[tokio::test]
async fn two_users_cannot_touch_each_others_objects() {
    let world = World::new().await;
    let api = world.start().await;
    api.user(ALICE).await;
    api.user(BOB).await;
    let (account, order, certificate) = api.issued(ALICE, "alice.shop.test").await;
    let absent = 999_999;
    for (method, path, id) in [
        ("GET", "/api/acme/", account),
        ("DELETE", "/api/acme/", account),
        ("GET", "/api/order/", order),
        ("COPY", "/api/order/", order),
        ("GET", "/api/certificate/", certificate),
        ("DELETE", "/api/certificate/", certificate),
        ("PURGE", "/api/certificate/", certificate),
    ] {
        let theirs = api
            .call(method, &format!("{path}{id}"), Some(BOB), None)
            .await;
        let missing = api
            .call(method, &format!("{path}{absent}"), Some(BOB), None)
            .await;
        assert_eq!(theirs.status, 400, "{method} {path}{id}: {}", theirs.text);
        assert_eq!(
            theirs.text, missing.text,
            "{method} {path}: not-yours must read like not-found"
        );
    }
    let theirs = api
        .post(
            "/api/order",
            BOB,
            &json!({ "domains": ["b.shop.test"], "account": account }),
        )
        .await;
    let missing = api
        .post(
            "/api/order",
            BOB,
            &json!({ "domains": ["b.shop.test"], "account": absent }),
        )
        .await;
    assert_eq!((theirs.status, theirs.text), (400, missing.text));
    for list in ["/api/acme", "/api/order", "/api/certificate"] {
        assert_eq!(
            api.get(list, BOB).await.expect(200).body,
            json!({}),
            "{list} leaks"
        );
    }
    let cert = api
        .get(&format!("/api/certificate/{certificate}"), ALICE)
        .await
        .expect(200);
    assert_eq!(
        cert.body["status"], "valid",
        "bob's attempts changed nothing"
    );
    assert_eq!(
        world.pebble.cert_status(&serial_of(&cert.body)).await["Status"],
        "Valid"
    );
    api.stop().await;
}

#[tokio::test]
async fn credentials_tokens_and_their_expiry() {
    let mut world = World::new().await;
    world.config.auth.token_lifetime_secs = 2;
    let api = world.start().await;
    api.user(ALICE).await;

    for who in [
        None,
        Some((ALICE.0, "wrong-password")),
        Some(("mallory", ALICE.1)),
    ] {
        let a = api
            .call("GET", "/api/resource", who, None)
            .await
            .expect(401);
        assert_eq!(a.header("www-authenticate"), Some(CHALLENGE));
    }
    let hello = api.get("/api/resource", ALICE).await.expect(200);
    assert_eq!(hello.body, json!({ "data": "Hello, alice!" }));

    let issued = api.get("/api/token", ALICE).await.expect(200);
    let token = issued.body["token"].as_str().expect("token").to_owned();
    assert_eq!(issued.body["duration"], 2);
    assert_eq!(issued.header("token"), Some(token.as_str()));
    api.get("/api/resource", (&token, "")).await.expect(200);
    // A token cannot mint a token: a new one needs the password.
    api.get("/api/token", (&token, "x")).await.expect(403);

    // The token works until it expires (a real clock: wait it out, bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = api.get("/api/resource", (&token, "")).await;
        if a.status == 401 {
            assert_eq!(a.header("www-authenticate"), Some(CHALLENGE));
            break;
        }
        assert_eq!(a.status, 200, "{}", a.text);
        assert!(Instant::now() < deadline, "the token never expired");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut tampered = token.clone();
    tampered.replace_range(4..5, if &token[4..5] == "9" { "8" } else { "9" });
    api.get("/api/resource", (&tampered, "")).await.expect(401);
    api.stop().await;
}

#[tokio::test]
async fn rejected_bodies_leave_the_database_unchanged() {
    let mut world = World::new().await;
    world.config.api.body_limit = 1024;
    let api = world.start().await;
    api.user(ALICE).await;
    let account = api.account(ALICE).await;
    let before = (
        api.get("/api/order", ALICE).await.text,
        api.get("/api/acme", ALICE).await.text,
    );

    let huge =
        json!({ "domains": ["a.shop.test"], "account": account, "organization": "x".repeat(4000) });
    let a = api.post("/api/order", ALICE, &huge).await.expect(413);
    assert_eq!(a.body["status"], "request body is larger than 1024 bytes");
    for (path, body, field) in [
        (
            "/api/order",
            r#"{"domains": ["a.shop.test"], "account": "#.to_owned(),
            "malformed JSON",
        ),
        (
            "/api/order",
            format!(r#"{{"domains": "a.shop.test", "account": {account}}}"#),
            "domains:",
        ),
        (
            "/api/order",
            format!(r#"{{"domains": ["a.shop.test"], "account": {account}, "type": "tls"}}"#),
            "type:",
        ),
        (
            "/api/order",
            format!(r#"{{"domains": ["a.shop.test"], "account": {account}, "reissue": 1}}"#),
            "reissue:",
        ),
        ("/api/acme", r#"{"email": 42}"#.to_owned(), "email:"),
    ] {
        let a = api
            .call("POST", path, Some(ALICE), Some(body.clone()))
            .await
            .expect(400);
        assert!(
            a.body["status"]
                .as_str()
                .is_some_and(|s| s.starts_with(field)),
            "{body}: {}",
            a.text
        );
    }
    let after = (
        api.get("/api/order", ALICE).await.text,
        api.get("/api/acme", ALICE).await.text,
    );
    assert_eq!(before, after, "rejected requests must not write anything");
    assert_eq!(after.0, "{}");
    api.stop().await;
}

#[tokio::test]
async fn routes_probes_and_the_openapi_document() {
    let world = World::new().await;
    let api = world.start().await;
    api.call("GET", "/nope", Some(ADMIN), None)
        .await
        .expect(404);
    let a = api
        .call("PUT", "/api/order", Some(ADMIN), None)
        .await
        .expect(405);
    assert_eq!(a.header("allow"), Some("GET, POST"));
    assert_eq!(
        api.call("GET", "/healthz", None, None)
            .await
            .expect(200)
            .body,
        json!({ "status": "ok" })
    );
    assert_eq!(
        api.call("GET", "/readyz", None, None)
            .await
            .expect(200)
            .body,
        json!({ "status": "ready" })
    );

    let doc = api.get("/api/openapi.json", ADMIN).await.expect(200).body;
    for (method, path) in [
        ("post", "/api/users"),
        ("get", "/api/users/{id}"),
        ("get", "/api/token"),
        ("get", "/api/resource"),
        ("post", "/api/acme"),
        ("get", "/api/acme"),
        ("get", "/api/acme/{id}"),
        ("delete", "/api/acme/{id}"),
        ("post", "/api/order"),
        ("get", "/api/order"),
        ("get", "/api/order/{id}"),
        ("get", "/api/certificate"),
        ("get", "/api/certificate/{id}"),
        ("delete", "/api/certificate/{id}"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/api/openapi.json"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from OpenAPI"
        );
    }
    assert!(doc["paths"]["/api/order/{id}"]["x-additional-operations"]["COPY"].is_object());
    assert!(doc["paths"]["/api/certificate/{id}"]["x-additional-operations"]["PURGE"].is_object());
    api.stop().await;
}

#[tokio::test]
async fn a_stopped_service_leaves_orders_to_resume() {
    let world = World::new().await;
    let api = world.start().await;
    api.user(ALICE).await;
    let account = api.account(ALICE).await;
    let order = api
        .post(
            "/api/order",
            ALICE,
            &json!({ "domains": ["resume.shop.test"], "account": account, "type": "http" }),
        )
        .await
        .expect(201)
        .id();
    // Stop at once, most likely in the middle of the order; whatever step it reached is
    // committed.
    api.stop().await;

    let api = world.start().await;
    let valid = api
        .wait_order(ALICE, order, |o| o["status"] == "valid")
        .await;
    assert!(valid.body["resolved_cert_id"].is_i64(), "{}", valid.text);
    assert!(
        world.dir.path().join("data/acmeport.db").exists(),
        "SQLite in data_dir"
    );
    api.stop().await;
}

/// The ```sh block of the README's "Using the API" section.
fn readme_session() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let start = readme
        .find("## Using the API\n")
        .expect("README has `## Using the API`");
    let section = &readme[start..];
    let block = section.split("```sh\n").nth(1).expect("a sh block");
    block
        .split("\n```")
        .next()
        .expect("closed block")
        .to_owned()
}

#[tokio::test]
async fn the_readme_curl_session_downloads_a_certificate() {
    let mut world = World::new().await;
    world.config.bootstrap.admin_password = Some(Secret::new("change-me-now"));
    let api = world.start().await;
    let script = readme_session();
    assert!(
        script.contains("API=http://127.0.0.1:8080\n"),
        "the session's first line changed"
    );
    // The same commands, against this test's service (its port and its CA).
    let script = script.replace(
        "API=http://127.0.0.1:8080\n",
        &format!("API={}\n", api.base),
    );
    let work = tempfile::tempdir().expect("working directory");
    let run = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(work.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the README session finishes")
        .expect("bash runs (curl and jq are needed)");
    assert!(
        output.status.success(),
        "the README session failed: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let fullchain =
        std::fs::read_to_string(work.path().join("fullchain.pem")).expect("fullchain.pem");
    let key = std::fs::read_to_string(work.path().join("privkey.pem")).expect("privkey.pem");
    let root = world.pebble.root_pem().await;
    verify_chain(
        &fullchain,
        &root,
        &["example.com".to_owned(), "www.example.com".to_owned()],
    );
    let leaf = fullchain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .expect("leaf");
    assert!(
        acmeport_keys::RcgenCsrFactory::new()
            .key_matches_certificate(&acmeport_domain::PrivateKeyPem::new(key), leaf)
            .expect("readable key and certificate"),
        "privkey.pem must be the certificate's key"
    );
    // The session ended with DELETE and PURGE of that certificate.
    let listed = api
        .get("/api/certificate", ("alice", "alice-password"))
        .await
        .expect(200);
    let bodies: Vec<&str> = listed
        .body
        .as_object()
        .expect("a list is an object")
        .values()
        .filter_map(|c| c["body"].as_str())
        .collect();
    assert!(
        !bodies.iter().any(|b| b.trim() == leaf.trim()),
        "the purged certificate must be gone: {}",
        listed.text
    );
    api.stop().await;
}
