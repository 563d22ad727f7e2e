//! The certificate lifecycle against real peers.
//!
//! - The `lifecycle_events` outbox on SQLite and PostgreSQL: events are written with the
//!   order's save (fenced or not) exactly once, claimed under a lease by one worker at a
//!   time, and their delivery is recorded fenced on that lease.
//! - Signed webhooks from the real `acmeport` binary against Pebble, received by a local
//!   receiver that checks every signature: each event arrives once, also when the
//!   instance is killed with `kill -9` between the event and its delivery.
//! - `/metrics` of the same binary parses as Prometheus text and its counters move with
//!   the orders of the test.

use crate::harness::bind::Bind;
use crate::harness::pebble::{free_tcp_port, Pebble, PebbleOptions};
use crate::harness::postgres::TestDatabase;
use crate::harness::service::{self, ApiClient, ServeProcess};
use crate::harness::{init, verify_chain};
use crate::storage::{account, at, cipher, new_certificate, open, order, sqlite_url, user, worker};
use acmeport_domain::ports::{CertificateRepo, EventRepo, OrderRepo, RepoError};
use acmeport_domain::{DeliveryState, DomainEvent, EventKind, Page, RevocationReason};
use acmeport_store::Store;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

// ---------------------------------------------------------------------------------------
// The outbox on both databases

async fn outbox(store: &Store) {
    let owner = user(store, "events-owner").await;
    let other = user(store, "events-other").await;
    let acct = account(store, owner.id).await;
    let pending = order(store, &acct, &["events.example.com"]).await;
    let w = worker("events-worker");
    let now = OffsetDateTime::now_utc();
    let mut claimed = OrderRepo::claim(store, &w, now, now + Duration::from_secs(60))
        .await
        .expect("claim works")
        .expect("the order is claimable");
    assert_eq!(claimed.id(), pending.id());
    let certificate = CertificateRepo::insert(store, new_certificate(&claimed, "fp-events", None))
        .await
        .expect("insert works");
    claimed.key_ready(None, crate::harness::test_csr()).unwrap();
    claimed.placed("https://ca/order/1".into()).unwrap();
    claimed.published().unwrap();
    claimed.propagation_confirmed().unwrap();
    claimed.answered().unwrap();
    claimed.finalized().unwrap();
    claimed.completed(certificate.id).unwrap();
    assert_eq!(claimed.pending_events().len(), 1);
    OrderRepo::save(
        store,
        &claimed,
        Some(w.clone()),
        now + Duration::from_secs(60),
    )
    .await
    .expect("fenced save works");
    claimed.committed();
    assert!(
        claimed.pending_events().is_empty(),
        "a committed write took the events"
    );
    // The same event raised again (a resumed worker repeating its step): still one.
    claimed.record_event(DomainEvent::order_valid(
        owner.id,
        claimed.id(),
        1,
        certificate.id,
        vec!["events.example.com".into()],
    ));
    OrderRepo::save(
        store,
        &claimed,
        Some(w.clone()),
        now + Duration::from_secs(60),
    )
    .await
    .expect("fenced save works");
    claimed.committed();
    // The unfenced path: a reissue that fails.
    claimed.reissue(now).unwrap();
    claimed.failed("refused by the CA").unwrap();
    OrderRepo::save(store, &claimed, None, now)
        .await
        .expect("unfenced save works");
    claimed.committed();

    let listed = EventRepo::list(store, owner.id, Page::default())
        .await
        .expect("list works");
    let kinds: Vec<_> = listed.items.iter().map(|e| e.event.kind).collect();
    assert_eq!(kinds, vec![EventKind::OrderValid, EventKind::OrderInvalid]);
    let valid = &listed.items[0];
    assert_eq!(valid.event.order_id, Some(claimed.id()));
    assert_eq!(valid.event.certificate_id, Some(certificate.id));
    assert_eq!(valid.event.domains, vec!["events.example.com".to_owned()]);
    assert_eq!(valid.event.key(), format!("order.valid:{}:1", claimed.id()));
    assert_eq!(valid.delivery.state, DeliveryState::Pending);
    assert_eq!(
        listed.items[1].event.error.as_deref(),
        Some("refused by the CA")
    );
    assert!(EventRepo::list(store, other.id, Page::default())
        .await
        .unwrap()
        .items
        .is_empty());

    // A revocation stores its reason and its event in one write.
    let revoked_event = DomainEvent::certificate_revoked(
        owner.id,
        claimed.id(),
        certificate.id,
        RevocationReason::Superseded,
        vec!["events.example.com".into()],
    );
    CertificateRepo::mark_revoked(
        store,
        certificate.id,
        at(5),
        RevocationReason::Superseded,
        revoked_event.clone(),
    )
    .await
    .expect("revoke works");
    assert!(
        !EventRepo::record(store, revoked_event).await.unwrap(),
        "an event with a stored key is not stored again"
    );
    let got = CertificateRepo::get(store, certificate.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.revocation_reason, Some(RevocationReason::Superseded));
    let all = EventRepo::list(store, owner.id, Page::default())
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].event.reason, Some(RevocationReason::Superseded));

    // Claims: one worker at a time, until its lease lapses; recording is fenced.
    let now = OffsetDateTime::now_utc() + Duration::from_secs(1);
    let (a, b) = (worker("deliver-a"), worker("deliver-b"));
    let first = EventRepo::claim_due(store, &a, now, now + Duration::from_secs(30), 2)
        .await
        .expect("claim works");
    assert_eq!(
        first.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![all[0].id, all[1].id],
        "oldest first, at most the limit"
    );
    let second = EventRepo::claim_due(store, &b, now, now + Duration::from_secs(30), 10)
        .await
        .expect("claim works");
    assert_eq!(
        second.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![all[2].id],
        "claimed events are not handed out twice"
    );
    let mut delivered = first[0].delivery.clone();
    delivered.state = DeliveryState::Delivered;
    delivered.attempts = 1;
    delivered.next_attempt_at = None;
    delivered.delivered_to = vec!["http://127.0.0.1:1/hook".into()];
    delivered.finished_at = Some(at(9));
    assert!(matches!(
        EventRepo::update_delivery(store, first[0].id, &b, &delivered).await,
        Err(RepoError::LeaseLost)
    ));
    EventRepo::update_delivery(store, first[0].id, &a, &delivered)
        .await
        .expect("the owner records");
    let mut retry = first[1].delivery.clone();
    retry.attempts = 1;
    retry.last_error = Some("http://127.0.0.1:1/hook: the endpoint answered 503".into());
    retry.next_attempt_at = Some(now + Duration::from_secs(600));
    EventRepo::update_delivery(store, first[1].id, &a, &retry)
        .await
        .expect("the owner records");
    let later = now + Duration::from_secs(31);
    let again = EventRepo::claim_due(store, &b, later, later + Duration::from_secs(30), 10)
        .await
        .expect("claim works");
    assert_eq!(
        again.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![all[2].id],
        "a lapsed lease is taken over; delivered and backed-off events are not due"
    );
    let stored = EventRepo::list(store, owner.id, Page::default())
        .await
        .unwrap()
        .items;
    assert_eq!(stored[0].delivery, delivered, "reads back as written");
    assert_eq!(stored[1].delivery.attempts, 1);
    assert_eq!(stored[1].delivery.last_error, retry.last_error);

    // Expiry: a range over valid certificates.
    let soon = CertificateRepo::valid_expiring(store, at(0), at(91 * 86_400), 10)
        .await
        .expect("query works");
    assert!(
        soon.iter().all(|c| c.id != certificate.id),
        "revoked certificates are not expiring"
    );

    // auto_renew is written alone and survives a save of stale progress.
    OrderRepo::set_auto_renew(store, claimed.id(), false)
        .await
        .expect("set works");
    OrderRepo::save(store, &claimed, None, now).await.unwrap();
    claimed.committed();
    let read = OrderRepo::get(store, claimed.id()).await.unwrap().unwrap();
    assert!(!read.spec().auto_renew);
    assert!(matches!(
        OrderRepo::set_auto_renew(store, acmeport_domain::OrderId::new(999_999), true).await,
        Err(RepoError::NotFound(_))
    ));
}

#[tokio::test]
async fn sqlite_outbox_stores_each_event_once_and_leases_its_delivery() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&sqlite_url(&dir), cipher(&[1])).await;
    outbox(&store).await;
}

#[tokio::test]
async fn postgres_outbox_stores_each_event_once_and_leases_its_delivery() {
    let db = TestDatabase::create().await;
    let store = open(db.url(), cipher(&[1])).await;
    outbox(&store).await;
    store.close().await.expect("close works");
}

// ---------------------------------------------------------------------------------------
// Webhooks and metrics from the real binary

const USER: &str = "webhook-tester";
const PASSWORD: &str = "correct horse battery staple";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const METRICS_TOKEN: &str = "metrics-token-for-the-e2e-test";
const TIMEOUT: Duration = Duration::from_secs(180);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: i64,
    signature_valid: bool,
    body: Value,
}

/// A webhook receiver on a fixed port that checks every signature with the shared
/// secret (HMAC-SHA256 over `id.timestamp.body`, as a receiver written from the README
/// would).
struct Receiver {
    received: Arc<Mutex<Vec<Delivery>>>,
}

fn verify(id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    use hmac::{Hmac, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .expect("secret");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    header
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

impl Receiver {
    async fn start(port: u16) -> Self {
        use warp::Filter;
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let route = warp::path!("hook")
            .and(warp::post())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(move |headers: warp::http::HeaderMap, body: bytes::Bytes| {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
                let signature_valid = verify(&id, &timestamp, &body, &header("webhook-signature"));
                log.lock().unwrap().push(Delivery {
                    id,
                    timestamp: timestamp.parse().unwrap_or_default(),
                    signature_valid,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                warp::reply()
            });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .expect("the receiver's port is free");
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Self { received }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }
}

fn config(
    dir: &Path,
    pebble: &Pebble,
    ca: &Path,
    http_port: u16,
    hook_port: u16,
    poll: u64,
) -> PathBuf {
    let toml = format!(
        r#"data_dir = "{data}"

[api]
listen = "127.0.0.1:0"

[challenge]
enabled = true
listen = "127.0.0.1:{http_port}"

[acme]
directory = "{directory}"
extra_roots = ["{ca}"]
webpki_roots = false
validation_timeout_secs = 90
issuance_timeout_secs = 90

[csr]
key_type = "ecdsa-p256"

[auth]
argon2_memory_kib = 1024
argon2_iterations = 1

# One team: the test user orders any name (grants are tested elsewhere).
[authorization]
allow_any_name = true

[workers]
count = 2
poll_interval_secs = 1

[lifecycle.delivery]
poll_interval_secs = {poll}
backoff_secs = 1
max_backoff_secs = 2
timeout_secs = 5

[[webhooks]]
url = "http://127.0.0.1:{hook_port}/hook"
secret = "{SECRET}"
events = ["order.valid", "certificate.revoked"]

[metrics]
token = "{METRICS_TOKEN}"

[log]
filter = "info"
format = "json"
"#,
        data = dir.display(),
        directory = pebble.directory,
        ca = ca.display(),
    );
    let path = dir.join(format!("acmeport-{poll}.toml"));
    std::fs::write(&path, toml).expect("write the configuration");
    path
}

async fn wait_valid(api: &ApiClient, order: i64, process: &ServeProcess) -> Value {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (status, body) = api.get(&format!("/api/order/{order}")).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] != "pending" {
            assert_eq!(
                body["status"],
                "valid",
                "order {order} should be valid: {body}\n{}",
                process.log_tail(80)
            );
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "order {order} still pending: {body}\n{}",
            process.log_tail(80)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn events(api: &ApiClient) -> BTreeMap<i64, Value> {
    let (status, body) = api.get("/api/events").await;
    assert_eq!(status, 200, "GET /api/events: {body}");
    body.as_object()
        .expect("keyed list")
        .iter()
        .map(|(k, v)| (k.parse().expect("numeric id"), v.clone()))
        .collect()
}

/// `GET /metrics` with the token: the page, checked line by line against the text
/// format and parsed.
async fn scrape(base: &str) -> prometheus_parse::Scrape {
    let http = reqwest::Client::new();
    let refused = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(refused.status(), 401, "the metrics need the token");
    let response = http
        .get(format!("{base}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain; version=0.0.4")));
    let text = response.text().await.expect("body");
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                comment.starts_with("HELP ") || comment.starts_with("TYPE "),
                "a comment line of the text format: {line}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("`name value` expected: {line}"));
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "a metric name: {line}"
        );
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "a sample value: {line}"
        );
    }
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("the page parses as Prometheus text")
}

/// The value of `name` with `label=value`, 0 when absent.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, label: (&str, &str)) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn webhooks_arrive_once_signed_across_a_kill_and_metrics_follow_the_orders() {
    init();
    let bind = Bind::start().await.expect("BIND starts");
    let http_port = free_tcp_port();
    let pebble = Pebble::start(PebbleOptions {
        dns_server: Some(bind.addr()),
        http_port,
        ..PebbleOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("data directory");
    let ca = dir.path().join("pebble-tls-ca.pem");
    std::fs::write(&ca, &pebble.tls_ca_pem).expect("write Pebble's TLS CA");
    let hook_port = free_tcp_port();
    let receiver = Receiver::start(hook_port).await;

    // The first instance delivers only at start, then sleeps an hour: its events stay in
    // the outbox until it is killed.
    let lazy = config(dir.path(), &pebble, &ca, http_port, hook_port, 3600);
    let (status, output) = service::run(
        &lazy,
        &["user", "add", USER],
        &[("ACMEPORT_PASSWORD", PASSWORD)],
    )
    .await;
    assert!(status.success(), "user add: {output}");
    let mut first = ServeProcess::start("lazy-deliverer", &lazy, &[]).await;
    let api = ApiClient::new(&first, USER, PASSWORD);
    let (status, body) = api
        .post("/api/acme", &json!({ "email": "hooks@example.test" }))
        .await;
    assert_eq!(status, 201, "{body}");
    let account = body["id"].as_i64().expect("account id");
    let (status, body) = api
        .post(
            "/api/order",
            &json!({ "domains": ["hook1.example.test"], "account": account, "type": "http" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let order = body["id"].as_i64().expect("order id");
    let valid = wait_valid(&api, order, &first).await;
    assert_eq!(valid["auto_renew"], true);
    assert_eq!(valid["email"], "hooks@example.test", "the account's e-mail");
    let stored = events(&api).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let (event_id, event) = stored.iter().next().unwrap();
    assert_eq!(event["type"], "order.valid");
    assert_eq!(event["delivery"]["state"], "pending");
    assert_eq!(event["delivery"]["attempts"], 0);

    first.kill9();
    assert!(
        receiver.deliveries().is_empty(),
        "nothing was delivered before the kill"
    );

    // The next start delivers what the killed one left, once.
    let eager = config(dir.path(), &pebble, &ca, http_port, hook_port, 1);
    let second = ServeProcess::start("deliverer", &eager, &[]).await;
    let api = ApiClient::new(&second, USER, PASSWORD);
    let deadline = Instant::now() + TIMEOUT;
    while receiver.deliveries().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the event left by the killed instance never arrived:\n{}",
            second.log_tail(80)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The certificate is real, and carries what the API promises.
    let cert_id = valid["resolved_cert_id"].as_i64().expect("certificate");
    let (status, certificate) = api.get(&format!("/api/certificate/{cert_id}")).await;
    assert_eq!(status, 200);
    let root = pebble.root_pem().await;
    verify_chain(
        certificate["fullchain"].as_str().expect("fullchain"),
        &root,
        &["hook1.example.test".to_owned()],
    );
    assert!(
        certificate["issuer"]
            .as_str()
            .is_some_and(|i| i.contains("Pebble Intermediate")),
        "the issuing CA's subject: {}",
        certificate["issuer"]
    );
    assert_eq!(certificate["order_id"], order);
    assert_eq!(certificate["renewal"]["reason"], "lifetime");

    // Metrics move with the next order.
    let before = scrape(&second.url()).await;
    let (status, body) = api
        .post(
            "/api/order",
            &json!({ "domains": ["hook2.example.test"], "account": account, "type": "http" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let order2 = body["id"].as_i64().expect("order id");
    let valid2 = wait_valid(&api, order2, &second).await;
    let cert2 = valid2["resolved_cert_id"].as_i64().expect("certificate");
    let middle = scrape(&second.url()).await;
    assert_eq!(
        sample(&middle, "acmeport_orders", ("status", "valid"))
            - sample(&before, "acmeport_orders", ("status", "valid")),
        1.0,
        "one more valid order"
    );
    let (status, body) = api
        .delete_with_body(
            &format!("/api/certificate/{cert2}"),
            &json!({ "reason": "keyCompromise" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, revoked) = api.get(&format!("/api/certificate/{cert2}")).await;
    assert_eq!(revoked["reason"], "keyCompromise");
    assert_eq!(revoked["key_compromised"], true);

    let deadline = Instant::now() + TIMEOUT;
    loop {
        let all = events(&api).await;
        if all.len() == 3 && all.values().all(|e| e["delivery"]["state"] == "delivered") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "every event should be delivered: {all:?}\n{}",
            second.log_tail(80)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = scrape(&second.url()).await;
    assert_eq!(
        sample(&after, "acmeport_orders", ("status", "revoked"))
            - sample(&middle, "acmeport_orders", ("status", "revoked")),
        1.0,
        "revoking its certificate revokes the order"
    );
    assert!(
        sample(&after, "acmeport_events_total", ("event", "order.valid"))
            > sample(&before, "acmeport_events_total", ("event", "order.valid"))
    );
    assert!(
        sample(
            &after,
            "acmeport_webhook_deliveries_total",
            ("result", "delivered")
        ) >= sample(
            &before,
            "acmeport_webhook_deliveries_total",
            ("result", "delivered")
        ) + 2.0,
        "the order.valid and certificate.revoked deliveries are counted"
    );
    assert!(
        sample(&after, "acmeport_certificates", ("days", "30+")) >= 1.0,
        "Pebble's long-lived certificate counts as far from expiry"
    );
    assert!(
        after
            .samples
            .iter()
            .any(|s| s.metric.starts_with("process_")),
        "process metrics are exported"
    );

    // Each event arrived exactly once, signed, and is the one the API lists.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = receiver.deliveries();
    let mut by_id: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
    for d in got {
        by_id.entry(d.id.clone()).or_default().push(d);
    }
    let listed = events(&api).await;
    assert_eq!(
        by_id.keys().cloned().collect::<Vec<_>>(),
        listed
            .keys()
            .map(|id| format!("evt_{id}"))
            .collect::<Vec<_>>(),
        "every listed event was delivered"
    );
    for (id, deliveries) in &by_id {
        assert_eq!(
            deliveries.len(),
            1,
            "{id} arrived {} times",
            deliveries.len()
        );
        let d = &deliveries[0];
        assert!(d.signature_valid, "{id}: the signature must verify");
        assert!(
            (OffsetDateTime::now_utc().unix_timestamp() - d.timestamp).abs() < 600,
            "{id}: a current timestamp"
        );
    }
    let first_event = &by_id[&format!("evt_{event_id}")][0].body;
    assert_eq!(first_event["type"], "order.valid");
    assert_eq!(first_event["data"]["order_id"], order);
    assert_eq!(first_event["data"]["certificate_id"], cert_id);
    let revoked_event = by_id
        .values()
        .map(|d| &d[0].body)
        .find(|b| b["type"] == "certificate.revoked")
        .expect("the revocation was delivered");
    assert_eq!(revoked_event["data"]["reason"], "keyCompromise");
    assert_eq!(revoked_event["data"]["certificate_id"], cert2);
}
