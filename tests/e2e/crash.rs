//! Crash safety and several instances with the real `acmeport` binary (issue 4, the crash
//! test and the two-instance test): orders survive `kill -9` of their only instance, and
//! two instances on one PostgreSQL database share the work without ever working one
//! order at the same time.
//!
//! The binary runs as in production (`acmeport user add`, `acmeport serve` with a TOML
//! file and an `ACMEPORT_` override), against Pebble, with DNS-01 records written into
//! BIND 9 by RFC 2136 and HTTP-01 answered by the service's own challenge listener
//! (Pebble resolves every test name to 127.0.0.1 through the same BIND).
//!
//! Lease timing: `workers.lease_secs = 3`, so the domain renews every second and an
//! order whose instance died is taken over 3 s after its last renewal at the latest.
//! Idle workers poll every second (`workers.poll_interval_secs = 1`).

use crate::harness::bind::{Bind, KEY_NAME};
use crate::harness::pebble::{free_tcp_port, Pebble, PebbleOptions};
use crate::harness::postgres::TestDatabase;
use crate::harness::service::{self, worker_pid, ApiClient, ServeProcess};
use crate::harness::{init, served_tokens, verify_chain};
use acmeport_domain::ports::OrderRepo as _;
use acmeport_domain::{OrderId, OrderStep};
use acmeport_store::{KeyCipher, OrderEvent, Store};
use base64::Engine as _;
use sea_orm::{ConnectionTrait, Statement};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// `workers.lease_secs` of every instance.
const LEASE_SECS: u64 = 3;
/// How much earlier than a full lease after the previous owner's last step a new owner
/// may write: the lease end is computed just before that step's write, and a loaded
/// machine can pause a thread in between.
const LEASE_TOLERANCE: Duration = Duration::from_secs(1);
/// Generous: 2 cores shared with other test suites.
pub(crate) const FINISH_TIMEOUT: Duration = Duration::from_secs(300);
/// How long to wait for the moment to kill an instance.
const KILL_TIMEOUT: Duration = Duration::from_secs(180);
pub(crate) const USER: &str = "crash-tester";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// BIND (DNS-01 records, and A records for every name) and a Pebble resolving through
/// it, with the file of Pebble's TLS root the instances trust.
pub(crate) struct Peers {
    pub(crate) bind: Bind,
    pub(crate) pebble: Pebble,
    /// Where Pebble fetches HTTP-01 answers: an instance's `challenge.listen` port.
    pub(crate) http_port: u16,
    pub(crate) ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Peers {
    pub(crate) async fn start() -> Self {
        Self::start_with(PebbleOptions::default()).await
    }

    /// BIND and a Pebble with `options` (its DNS server and HTTP port are set here).
    pub(crate) async fn start_with(options: PebbleOptions) -> Self {
        init();
        let bind = Bind::start().await.expect("BIND starts");
        let http_port = free_tcp_port();
        let pebble = Pebble::start(PebbleOptions {
            dns_server: Some(bind.addr()),
            http_port,
            ..options
        })
        .await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let ca_file = dir.path().join("pebble-tls-ca.pem");
        std::fs::write(&ca_file, &pebble.tls_ca_pem).expect("write Pebble's TLS CA");
        Self {
            bind,
            pebble,
            http_port,
            ca_file,
            _dir: dir,
        }
    }

    /// The names of every order must have no TXT record left in BIND.
    pub(crate) async fn assert_no_txt_left(&self, orders: &BTreeMap<i64, Vec<String>>) {
        let mut left = Vec::new();
        for names in orders.values() {
            for name in names {
                let record = format!("_acme-challenge.{name}");
                let values = self.bind.txt(&record).await;
                if !values.is_empty() {
                    left.push(format!("{record}: {values:?}"));
                }
            }
        }
        assert!(
            left.is_empty(),
            "no challenge TXT record should be left in BIND, found:\n{}",
            left.join("\n")
        );
    }
}

/// What differs between the instances of a test.
pub(crate) struct Instance<'a> {
    pub(crate) data_dir: &'a Path,
    /// PostgreSQL; SQLite in `data_dir` when absent.
    pub(crate) database_url: Option<&'a str>,
    /// A master key shared by instances; a generated key file in `data_dir` when absent.
    pub(crate) encryption_key: Option<&'a str>,
    pub(crate) workers: usize,
    /// More TOML appended to the file (sections the test needs).
    pub(crate) extra_toml: &'a str,
}

/// An `acmeport.toml` for `instance` against `peers`.
pub(crate) fn config_file(peers: &Peers, instance: &Instance<'_>) -> PathBuf {
    let bind = peers.bind.addr();
    let mut toml = format!(
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
request_timeout_secs = 20
validation_timeout_secs = 90
issuance_timeout_secs = 90

[csr]
key_type = "ecdsa-p256"

[authorization]
allow_any_name = true

[dns]
default = "bind"

[dns.providers.bind]
kind = "rfc2136"
server = "{bind}"
key_name = "{KEY_NAME}"
secret = "{secret}"
zone = "example.test"
zones = ["example.test"]
timeout_secs = 5

[dns.propagation]
enabled = true
timeout_secs = 90
interval_secs = 1
resolvers = ["{bind}"]
authoritative_port = {bind_port}
authoritative_servers = ["{bind}"]
query_timeout_secs = 2

[workers]
count = {workers}
poll_interval_secs = 1
lease_secs = {LEASE_SECS}
retry_backoff_ms = 500

[log]
filter = "info"
format = "json"
"#,
        data = instance.data_dir.display(),
        http_port = peers.http_port,
        directory = peers.pebble.directory,
        ca = peers.ca_file.display(),
        secret = peers.bind.secret(),
        bind_port = bind.port(),
        workers = instance.workers,
    );
    if let Some(url) = instance.database_url {
        write!(toml, "\n[database]\nurl = \"{url}\"\n").expect("write to a string");
    }
    if let Some(key) = instance.encryption_key {
        write!(toml, "\n[keys]\nencryption_keys = [\"{key}\"]\n").expect("write to a string");
    }
    toml.push('\n');
    toml.push_str(instance.extra_toml);
    let path = instance.data_dir.join("acmeport.toml");
    std::fs::write(&path, toml).expect("write the configuration");
    path
}

/// `ACMEPORT_PASSWORD=... acmeport user add <USER>`.
pub(crate) async fn add_user(config: &Path) {
    let (status, output) = service::run(
        config,
        &["user", "add", USER],
        &[("ACMEPORT_PASSWORD", PASSWORD)],
    )
    .await;
    assert!(
        status.success(),
        "`acmeport user add` should succeed, ended with {status}:\n{output}"
    );
}

/// Registers an ACME account at Pebble through the API; returns its id.
pub(crate) async fn create_account(api: &ApiClient, email: &str) -> i64 {
    let (status, body) = api.post("/api/acme", &json!({ "email": email })).await;
    assert_eq!(
        status, 201,
        "POST /api/acme should create the account: {body}"
    );
    body["id"].as_i64().expect("the account id")
}

/// The names of order `i` of a batch: DNS-01 orders have two names (two TXT records),
/// HTTP-01 orders one.
pub(crate) fn order_names(prefix: &str, i: usize, dns: bool) -> Vec<String> {
    if dns {
        vec![
            format!("{prefix}d{i}.example.test"),
            format!("www.{prefix}d{i}.example.test"),
        ]
    } else {
        vec![format!("{prefix}h{i}.example.test")]
    }
}

/// Creates one order through `api`; returns its id.
pub(crate) async fn create_order(
    api: &ApiClient,
    account: i64,
    names: &[String],
    dns: bool,
) -> i64 {
    let body = if dns {
        json!({ "domains": names, "account": account, "type": "dns", "provider": "bind" })
    } else {
        json!({ "domains": names, "account": account, "type": "http" })
    };
    let (status, answer) = api.post("/api/order", &body).await;
    assert_eq!(
        status, 201,
        "POST /api/order {body} should create the order: {answer}"
    );
    assert_eq!(
        answer["status"], "pending",
        "a new order is pending: {answer}"
    );
    answer["id"].as_i64().expect("the order id")
}

/// Every order of the user, by id, as the API shows them.
pub(crate) async fn list_orders(api: &ApiClient) -> BTreeMap<i64, Value> {
    let (status, body) = api.get("/api/order?limit=1000").await;
    assert_eq!(status, 200, "GET /api/order should answer: {body}");
    body.as_object()
        .expect("the order list is an object keyed by id")
        .iter()
        .map(|(id, order)| (id.parse().expect("ids are integers"), order.clone()))
        .collect()
}

/// One line per order: id, status, step, and what it waits for or why it failed.
pub(crate) fn summary(orders: &BTreeMap<i64, Value>) -> String {
    orders
        .iter()
        .map(|(id, o)| {
            format!(
                "  order {id}: {} at {} (type {}, detail: {}, error: {})",
                o["status"], o["step"], o["type"], o["detail"], o["error"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Polls the API until none of `ids` is pending; panics with every order's state and the
/// logs of `processes` after [`FINISH_TIMEOUT`].
pub(crate) async fn wait_finished(
    api: &ApiClient,
    ids: &BTreeSet<i64>,
    processes: &[&ServeProcess],
) -> BTreeMap<i64, Value> {
    let deadline = Instant::now() + FINISH_TIMEOUT;
    loop {
        let orders: BTreeMap<i64, Value> = list_orders(api)
            .await
            .into_iter()
            .filter(|(id, _)| ids.contains(id))
            .collect();
        assert_eq!(
            orders.len(),
            ids.len(),
            "every created order should be listed"
        );
        if orders.values().all(|o| o["status"] != "pending") {
            return orders;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = processes.iter().map(|p| p.log_tail(150)).collect();
            panic!(
                "orders still pending after {} s:\n{}\n{}",
                FINISH_TIMEOUT.as_secs(),
                summary(&orders),
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every order must be `valid` and name its certificate.
pub(crate) fn assert_all_valid(orders: &BTreeMap<i64, Value>, processes: &[&ServeProcess]) {
    let failed: BTreeMap<i64, Value> = orders
        .iter()
        .filter(|(_, o)| o["status"] != "valid" || !o["resolved_cert_id"].is_i64())
        .map(|(id, o)| (*id, o.clone()))
        .collect();
    if !failed.is_empty() {
        let logs: Vec<String> = processes.iter().map(|p| p.log_tail(150)).collect();
        panic!(
            "every order should end valid with a certificate; these did not:\n{}\n{}",
            summary(&failed),
            logs.join("\n")
        );
    }
}

/// Each order's certificate, as the API serves it, belongs to the order and verifies up
/// to Pebble's root for the order's names.
pub(crate) async fn assert_certificates(
    api: &ApiClient,
    peers: &Peers,
    orders: &BTreeMap<i64, Value>,
    names: &BTreeMap<i64, Vec<String>>,
) {
    let root = peers.pebble.root_pem().await;
    for (id, order) in orders {
        let cert_id = order["resolved_cert_id"].as_i64().expect("checked valid");
        let (status, certificate) = api.get(&format!("/api/certificate/{cert_id}")).await;
        assert_eq!(status, 200, "GET /api/certificate/{cert_id}: {certificate}");
        assert_eq!(
            certificate["order_id"].as_i64(),
            Some(*id),
            "certificate {cert_id} should belong to order {id}"
        );
        assert_eq!(certificate["status"], "valid", "certificate {cert_id}");
        let fullchain = certificate["fullchain"].as_str().expect("a full chain");
        verify_chain(fullchain, &root, &names[id]);
    }
}

/// The database as the instances see it, read directly (no instance code in between).
pub(crate) struct Db {
    store: Store,
}

/// One `orders` row's progress and lease.
#[derive(Debug, Clone)]
struct OrderRow {
    id: i64,
    status: String,
    step: OrderStep,
    lease_owner: Option<String>,
    lease_until_us: Option<i64>,
    /// JSON list of the TXT records and tokens recorded as published.
    published: String,
}

impl Db {
    pub(crate) async fn open(url: &str, cipher: KeyCipher) -> Self {
        let store = Store::connect(url, cipher)
            .await
            .unwrap_or_else(|e| panic!("the test cannot open the instances' database: {e:?}"));
        Self { store }
    }

    pub(crate) async fn query(&self, sql: &str) -> Vec<sea_orm::QueryResult> {
        let db = self.store.connection();
        db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn rows(&self) -> BTreeMap<i64, OrderRow> {
        self.query("SELECT id, status, step, lease_owner, lease_until_us, published FROM orders")
            .await
            .into_iter()
            .map(|r| {
                let step: String = r.try_get("", "step").expect("step");
                let row = OrderRow {
                    id: r.try_get("", "id").expect("id"),
                    status: r.try_get("", "status").expect("status"),
                    step: OrderStep::from_name(&step).expect("a known step"),
                    lease_owner: r.try_get("", "lease_owner").expect("lease_owner"),
                    lease_until_us: r.try_get("", "lease_until_us").expect("lease_until_us"),
                    published: r.try_get("", "published").expect("published"),
                };
                (row.id, row)
            })
            .collect()
    }

    /// How many certificate rows each order has.
    pub(crate) async fn certificates_per_order(&self) -> BTreeMap<i64, i64> {
        self.query("SELECT order_id, COUNT(*) AS n FROM certificates GROUP BY order_id")
            .await
            .into_iter()
            .map(|r| {
                (
                    r.try_get("", "order_id").expect("order_id"),
                    r.try_get("", "n").expect("count"),
                )
            })
            .collect()
    }

    pub(crate) async fn history(&self, id: i64) -> Vec<OrderEvent> {
        self.store
            .order_history(OrderId::new(id))
            .await
            .unwrap_or_else(|e| panic!("history of order {id}: {e}"))
    }

    async fn acme_url(&self, id: i64) -> Option<String> {
        self.store
            .get(OrderId::new(id))
            .await
            .unwrap_or_else(|e| panic!("order {id}: {e}"))
            .unwrap_or_else(|| panic!("order {id} exists"))
            .acme_url()
            .map(ToOwned::to_owned)
    }

    /// Exactly one certificate per order in `ids`, and no HTTP-01 token left.
    pub(crate) async fn assert_one_certificate_each_and_no_token(&self, ids: &BTreeSet<i64>) {
        let counts = self.certificates_per_order().await;
        let wrong: Vec<String> = ids
            .iter()
            .filter(|id| counts.get(id).copied().unwrap_or(0) != 1)
            .map(|id| {
                format!(
                    "order {id}: {} certificates",
                    counts.get(id).copied().unwrap_or(0)
                )
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "every order should have exactly one certificate:\n{}",
            wrong.join("\n")
        );
        let tokens = served_tokens(&self.store).await;
        assert!(
            tokens.is_empty(),
            "no HTTP-01 token should be left in the store, found {}",
            tokens.len()
        );
    }
}

/// A change of the worker writing an order's steps.
#[derive(Debug)]
struct Takeover {
    order: i64,
    from: String,
    to: String,
    gap: Duration,
}

/// Checks one order's step history: within an attempt the steps never go back (work
/// resumes from the last finished step), and whenever another worker writes a step,
/// the previous writer's lease had run out: at least a lease (less
/// [`LEASE_TOLERANCE`]) passed since its last step. Returns those changes of owner.
fn check_history(order: i64, events: &[OrderEvent]) -> Result<Vec<Takeover>, String> {
    let lease = Duration::from_secs(LEASE_SECS);
    let shown = || {
        events
            .iter()
            .map(|e| {
                format!(
                    "    attempt {} {} {} by {} at {}",
                    e.attempt,
                    e.step.as_str(),
                    e.status.as_str(),
                    e.worker,
                    e.at
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    if events.is_empty() {
        return Err(format!("order {order} has no step history"));
    }
    let mut takeovers = Vec::new();
    for pair in events.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        if before.attempt != after.attempt {
            continue;
        }
        if crate::harness::went_back(before, after) {
            return Err(format!(
                "order {order} went back from {} to {}:\n{}",
                before.step.as_str(),
                after.step.as_str(),
                shown()
            ));
        }
        if before.worker != after.worker {
            let gap = (after.at - before.at).try_into().unwrap_or(Duration::ZERO);
            // A worker that left the order waiting released it: the next worker may
            // take over once the order was due, without waiting for the lease to end.
            let handed_over = before
                .due_at
                .is_some_and(|due| due > before.at && after.at + LEASE_TOLERANCE >= due);
            if !handed_over && gap + LEASE_TOLERANCE < lease {
                return Err(format!(
                    "order {order}: {} wrote a step {gap:?} after {} did, within its {LEASE_SECS} s lease \
                     (two workers on one order at once):\n{}",
                    after.worker,
                    before.worker,
                    shown()
                ));
            }
            takeovers.push(Takeover {
                order,
                from: before.worker.clone(),
                to: after.worker.clone(),
                gap,
            });
        }
    }
    Ok(takeovers)
}

/// Runs [`check_history`] on every order, failing with all violations at once.
pub(crate) async fn check_histories(
    db: &Db,
    ids: &BTreeSet<i64>,
) -> BTreeMap<i64, Vec<OrderEvent>> {
    let mut histories = BTreeMap::new();
    let mut violations = Vec::new();
    for &id in ids {
        let events = db.history(id).await;
        if let Err(e) = check_history(id, &events) {
            violations.push(e);
        }
        histories.insert(id, events);
    }
    assert!(
        violations.is_empty(),
        "step history violations:\n{}",
        violations.join("\n")
    );
    histories
}

fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1000).expect("a time in range")
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Graceful shutdown: SIGTERM while orders are in flight ends the process promptly and
/// cleanly, no order is failed by it, and the next start finishes every order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_leaves_orders_resumable() {
    let peers = Peers::start().await;
    let data = tempfile::tempdir().expect("data directory");
    let config = config_file(
        &peers,
        &Instance {
            data_dir: data.path(),
            database_url: None,
            encryption_key: None,
            workers: 2,
            extra_toml: "",
        },
    );
    add_user(&config).await;
    let mut first = ServeProcess::start("acmeport (before SIGTERM)", &config, &[]).await;
    let api = ApiClient::new(&first, USER, PASSWORD);
    let account = create_account(&api, "sigterm@example.com").await;
    let mut names = BTreeMap::new();
    for i in 0..6 {
        let dns = i % 2 == 0;
        let order_names = order_names("t", i, dns);
        let id = create_order(&api, account, &order_names, dns).await;
        names.insert(id, order_names);
    }
    let ids: BTreeSet<i64> = names.keys().copied().collect();

    let status = first.terminate(Duration::from_secs(60)).await;
    assert!(
        status.success(),
        "SIGTERM should end the process cleanly, it ended with {status}; its log:\n{}",
        first.log_tail(100)
    );

    let second = ServeProcess::start("acmeport (after SIGTERM)", &config, &[]).await;
    let api = ApiClient::new(&second, USER, PASSWORD);
    let orders = wait_finished(&api, &ids, &[&second]).await;
    assert_all_valid(&orders, &[&second]);
    peers.assert_no_txt_left(&names).await;
}

/// The crash test: one instance on SQLite works 20 orders (10 DNS-01 with two names, 10
/// HTTP-01); it is killed with SIGKILL while some orders are half done; a new process on
/// the same files finishes every order from where it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_kill_9_and_finish_after_restart() {
    let test_started = Instant::now();
    let peers = Peers::start().await;
    let data = tempfile::tempdir().expect("data directory");
    let config = config_file(
        &peers,
        &Instance {
            data_dir: data.path(),
            database_url: None,
            encryption_key: None,
            workers: 4,
            extra_toml: "",
        },
    );
    add_user(&config).await;
    let mut first = ServeProcess::start("acmeport (first run)", &config, &[]).await;
    let api = ApiClient::new(&first, USER, PASSWORD);
    let account = create_account(&api, "crash@example.com").await;

    let created_at = Instant::now();
    let mut names = BTreeMap::new();
    for i in 0..20 {
        let dns = i % 2 == 0;
        let order_names = order_names("c", i, dns);
        let id = create_order(&api, account, &order_names, dns).await;
        names.insert(id, order_names);
    }
    let ids: BTreeSet<i64> = names.keys().copied().collect();
    let creating = created_at.elapsed();

    // Kill while orders are in every stage: some valid, some untouched, and some half
    // done, preferably with challenge material published and not yet removed (so that
    // the restart has to clean up what the dead process published), else at least with
    // an ACME order placed. The database shows each committed step at once.
    let db = Db::open(
        &Store::sqlite_url(&data.path().join("acmeport.db")),
        KeyCipher::from_key_file(&data.path().join("master.key"))
            .expect("the key file generated at first start"),
    )
    .await;
    let deadline = Instant::now() + KILL_TIMEOUT;
    loop {
        let rows = db.rows().await;
        let count = |f: &dyn Fn(&OrderRow) -> bool| rows.values().filter(|r| f(r)).count();
        let pending = count(&|r| r.status == "pending");
        let valid = count(&|r| r.status == "valid");
        let published = count(&|r| r.status == "pending" && r.published != "[]");
        let placed = count(&|r| r.status == "pending" && r.step >= OrderStep::Placed);
        if valid >= 1
            && ((published >= 1 && pending >= 5) || (placed >= 1 && (3..=8).contains(&pending)))
        {
            break;
        }
        assert!(
            Instant::now() < deadline && pending >= 3,
            "never saw a half-done order while several were pending (pending: {pending}): {rows:#?}\n{}",
            first.log_tail(150)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill9();
    let killed_at = Instant::now();
    let to_kill = killed_at.duration_since(created_at);
    let old_pid = first.pid();

    // What the dead process left, straight from the database.
    let at_kill = db.rows().await;
    let half_done: Vec<&OrderRow> = at_kill
        .values()
        .filter(|r| r.status == "pending" && r.step > OrderStep::Created)
        .collect();
    let untouched = at_kill
        .values()
        .filter(|r| r.status == "pending" && r.step == OrderStep::Created)
        .count();
    let done_before: BTreeSet<i64> = at_kill
        .values()
        .filter(|r| r.status == "valid")
        .map(|r| r.id)
        .collect();
    assert!(
        !half_done.is_empty() && !done_before.is_empty() && half_done.len() + untouched >= 2,
        "the kill should leave valid, half-done and other pending orders; at the kill: \
         {at_kill:#?}"
    );
    let mut urls_at_kill = BTreeMap::new();
    for row in &half_done {
        if let Some(url) = db.acme_url(row.id).await {
            urls_at_kill.insert(row.id, url);
        }
    }
    assert!(
        !urls_at_kill.is_empty(),
        "some half-done order should have its ACME order placed at the kill: {at_kill:#?}"
    );
    let material_at_kill = half_done.iter().filter(|r| r.published != "[]").count();
    let tokens_at_kill = served_tokens(&db.store).await.len();
    let steps_at_kill: Vec<String> = half_done
        .iter()
        .map(|r| format!("{}:{}", r.id, r.step.as_str()))
        .collect();

    let second = ServeProcess::start("acmeport (after kill -9)", &config, &[]).await;
    let restarted = killed_at.elapsed();
    let api = ApiClient::new(&second, USER, PASSWORD);
    let orders = wait_finished(&api, &ids, &[&second]).await;
    let finished_after_kill = killed_at.elapsed();
    assert_all_valid(&orders, &[&second]);
    assert_certificates(&api, &peers, &orders, &names).await;

    db.assert_one_certificate_each_and_no_token(&ids).await;
    peers.assert_no_txt_left(&names).await;
    let histories = check_histories(&db, &ids).await;
    for row in &half_done {
        let events = &histories[&row.id];
        assert!(
            events.iter().any(|e| first.owns(&e.worker))
                && events.iter().any(|e| second.owns(&e.worker)),
            "order {} was half done at the kill, so both processes should have written its \
             steps: {events:#?}",
            row.id
        );
        // An order whose challenge the CA tried while the process was dead failed that
        // validation and was retried with a fresh ACME order (the one step back the
        // history check allows); every other one resumes on the ACME order it had.
        let retried = events
            .windows(2)
            .any(|pair| crate::harness::is_validation_retry(&pair[0], &pair[1]));
        if let Some(url) = urls_at_kill.get(&row.id) {
            if retried {
                assert_ne!(
                    orders[&row.id]["uri"].as_str(),
                    Some(url.as_str()),
                    "order {} retried its validation, so on a fresh ACME order",
                    row.id
                );
            } else {
                assert_eq!(
                    orders[&row.id]["uri"].as_str(),
                    Some(url.as_str()),
                    "order {} should be resumed on its stored ACME order, not placed again",
                    row.id
                );
            }
        }
    }
    for id in &done_before {
        assert!(
            histories[id]
                .iter()
                .all(|e| worker_pid(&e.worker) == Some(old_pid)),
            "order {id} was valid before the kill; the restart must not work it again: {:#?}",
            histories[id]
        );
    }

    eprintln!(
        "crash test (lease {LEASE_SECS} s, 4 workers, 20 orders): creating the orders took {}, \
         killed {} after the first order, at the kill {} valid / {} half done [{}] / {} untouched \
         ({} with an ACME order URL, {} with TXT records or tokens published, {} tokens served), restarted and ready {} after the kill, all valid {} after \
         the kill; whole test {}",
        seconds(creating),
        seconds(to_kill),
        done_before.len(),
        half_done.len(),
        steps_at_kill.join(" "),
        untouched,
        urls_at_kill.len(),
        material_at_kill,
        tokens_at_kill,
        seconds(restarted),
        seconds(finished_after_kill),
        seconds(test_started.elapsed()),
    );
}

/// Two instances on one PostgreSQL database: 40 orders, each worked by one instance at
/// a time; then one instance is killed mid-batch and the other finishes its orders once
/// their leases run out. Only instance A listens for HTTP-01 (Pebble has one HTTP port),
/// so B's HTTP-01 orders are answered by A from the shared token table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_postgres_and_take_over_after_a_kill() {
    let test_started = Instant::now();
    let database = TestDatabase::create().await;
    let peers = Peers::start().await;
    let data = tempfile::tempdir().expect("data directory");
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let config = config_file(
        &peers,
        &Instance {
            data_dir: data.path(),
            database_url: Some(database.url()),
            encryption_key: Some(&key),
            workers: 2,
            extra_toml: "",
        },
    );
    add_user(&config).await;
    // Both start (and migrate) at once; B gets the same file with its challenge listener
    // turned off by the documented environment override.
    let (a, mut b) = tokio::join!(
        ServeProcess::start("acmeport A", &config, &[]),
        ServeProcess::start(
            "acmeport B",
            &config,
            &[("ACMEPORT_CHALLENGE__ENABLED", "false")]
        ),
    );
    let api_a = ApiClient::new(&a, USER, PASSWORD);
    let api_b = ApiClient::new(&b, USER, PASSWORD);
    let account = create_account(&api_a, "shared@example.com").await;
    let db = Db::open(
        database.url(),
        KeyCipher::from_base64(&[SecretString::from(key.clone())]).expect("the shared key"),
    )
    .await;

    // Phase 1: 40 orders, sent half to each instance, half DNS-01 and half HTTP-01.
    let phase1_started = Instant::now();
    let mut names = BTreeMap::new();
    let mut http_orders = BTreeSet::new();
    for i in 0..40 {
        let dns = i % 4 < 2;
        let api = if i % 2 == 0 { &api_a } else { &api_b };
        let order_names = order_names("p", i, dns);
        let id = create_order(api, account, &order_names, dns).await;
        names.insert(id, order_names);
        if !dns {
            http_orders.insert(id);
        }
    }
    let ids: BTreeSet<i64> = names.keys().copied().collect();
    let orders = wait_finished(&api_a, &ids, &[&a, &b]).await;
    let phase1 = phase1_started.elapsed();
    assert_all_valid(&orders, &[&a, &b]);
    assert_certificates(&api_a, &peers, &orders, &names).await;
    db.assert_one_certificate_each_and_no_token(&ids).await;
    peers.assert_no_txt_left(&names).await;
    let histories = check_histories(&db, &ids).await;
    let worked_by = |p: &ServeProcess| {
        histories
            .iter()
            .filter(|(_, events)| events.iter().any(|e| p.owns(&e.worker)))
            .map(|(id, _)| *id)
            .collect::<BTreeSet<i64>>()
    };
    let (by_a, by_b) = (worked_by(&a), worked_by(&b));
    assert!(
        !by_a.is_empty() && !by_b.is_empty(),
        "both instances should have worked orders: A {by_a:?}, B {by_b:?}"
    );
    assert!(
        histories.values().all(|events| events
            .iter()
            .all(|e| a.owns(&e.worker) || b.owns(&e.worker))),
        "every step should be written by a worker of A (pid {}) or B (pid {})",
        a.pid(),
        b.pid()
    );
    let http_by_b: Vec<i64> = http_orders
        .iter()
        .filter(|id| histories[id].iter().all(|e| b.owns(&e.worker)))
        .copied()
        .collect();
    assert!(
        !http_by_b.is_empty(),
        "B should have completed some HTTP-01 orders with A answering the challenges from \
         the shared token table; B worked {by_b:?}, the HTTP-01 orders are {http_orders:?}"
    );
    let phase1_takeovers: Vec<Takeover> = ids
        .iter()
        .flat_map(|id| check_history(*id, &histories[id]).expect("checked above"))
        .collect();

    // Phase 2: 20 more orders, sent to B so that its workers wake at once; B is killed
    // while it holds the lease of a half-done order.
    let phase2_started = Instant::now();
    let mut names2 = BTreeMap::new();
    for i in 0..20 {
        let dns = i % 2 == 0;
        let order_names = order_names("q", i, dns);
        let id = create_order(&api_b, account, &order_names, dns).await;
        names2.insert(id, order_names);
    }
    let ids2: BTreeSet<i64> = names2.keys().copied().collect();
    let deadline = Instant::now() + KILL_TIMEOUT;
    loop {
        let rows = db.rows().await;
        let held_by_b = rows.values().any(|r| {
            ids2.contains(&r.id)
                && r.status == "pending"
                && r.step > OrderStep::Created
                && r.lease_owner.as_deref().is_some_and(|w| b.owns(w))
        });
        if held_by_b {
            break;
        }
        let pending = rows
            .values()
            .filter(|r| ids2.contains(&r.id) && r.status == "pending")
            .count();
        assert!(
            Instant::now() < deadline && pending > 0,
            "never saw B holding a half-done order of phase 2 ({pending} pending): {rows:#?}\n{}",
            b.log_tail(150)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.kill9();
    let killed_at = Instant::now();
    let killed_us = micros(OffsetDateTime::now_utc());
    let at_kill = db.rows().await;
    // Orders B held a live lease on: nobody may touch them until that lease ends.
    let stranded: BTreeMap<i64, i64> = at_kill
        .values()
        .filter(|r| {
            r.status == "pending"
                && r.lease_owner.as_deref().is_some_and(|w| b.owns(w))
                && r.lease_until_us.is_some_and(|until| until > killed_us)
        })
        .map(|r| (r.id, r.lease_until_us.expect("filtered")))
        .collect();
    assert!(
        !stranded.is_empty(),
        "B should hold a live lease on a pending order when killed: {at_kill:#?}"
    );
    let stranded_steps: Vec<String> = stranded
        .keys()
        .map(|id| format!("{id}:{}", at_kill[id].step.as_str()))
        .collect();

    let orders2 = wait_finished(&api_a, &ids2, &[&a]).await;
    let finished_after_kill = killed_at.elapsed();
    let phase2 = phase2_started.elapsed();
    assert_all_valid(&orders2, &[&a]);
    assert_certificates(&api_a, &peers, &orders2, &names2).await;
    db.assert_one_certificate_each_and_no_token(&ids2).await;
    peers.assert_no_txt_left(&names2).await;
    let histories2 = check_histories(&db, &ids2).await;
    let mut takeover_delays = Vec::new();
    for (id, lease_until_us) in &stranded {
        let events = &histories2[id];
        let last_by_b = events.iter().rposition(|e| b.owns(&e.worker));
        let first_by_a = events
            .iter()
            .skip(last_by_b.map_or(0, |i| i + 1))
            .find(|e| a.owns(&e.worker))
            .unwrap_or_else(|| {
                panic!("A should have finished order {id} that B held: {events:#?}")
            });
        assert!(
            micros(first_by_a.at) >= *lease_until_us,
            "A wrote a step of order {id} at {} before B's lease ran out ({} µs): {events:#?}",
            first_by_a.at,
            lease_until_us
        );
        assert!(
            events
                .iter()
                .skip_while(|e| !a.owns(&e.worker))
                .all(|e| a.owns(&e.worker)),
            "once A took order {id} over, only A may write it: {events:#?}"
        );
        takeover_delays.push(format!(
            "{id}: {:.1} s",
            (micros(first_by_a.at) - killed_us) as f64 / 1e6
        ));
    }
    assert!(
        histories2
            .values()
            .flatten()
            .filter(|e| b.owns(&e.worker))
            .all(|e| micros(e.at) <= killed_us),
        "B wrote nothing after it was killed"
    );

    eprintln!(
        "two-instance test (lease {LEASE_SECS} s, 2 workers each): phase 1, 40 orders valid in \
         {} (A worked {}, B worked {}, {} lease takeovers: {:?}); phase 2: B killed holding \
         [{}], A wrote their next steps after [{}] from the kill, all 20 valid {} after the kill \
         ({} for the phase); whole test {}",
        seconds(phase1),
        by_a.len(),
        by_b.len(),
        phase1_takeovers.len(),
        phase1_takeovers
            .iter()
            .map(|t| format!("{} {}→{} after {:?}", t.order, t.from, t.to, t.gap))
            .collect::<Vec<_>>(),
        stranded_steps.join(" "),
        takeover_delays.join(", "),
        seconds(finished_after_kill),
        seconds(phase2),
        seconds(test_started.elapsed()),
    );
}

/// The history check itself must be able to fail: interleaved workers, a takeover inside
/// the lease, a takeover before a wait ended and a step going back are caught; a takeover
/// after the lease, and a handover after a wait, are accepted.
#[test]
fn the_history_check_catches_two_workers_at_once() {
    let start = OffsetDateTime::now_utc();
    let event = |step, worker: &str, after_ms: i64| OrderEvent {
        attempt: 1,
        step,
        status: acmeport_domain::OrderStatus::Pending,
        worker: worker.to_owned(),
        at: start + time::Duration::milliseconds(after_ms),
        due_at: Some(start + time::Duration::milliseconds(after_ms)),
    };
    let waiting = |step, worker: &str, after_ms: i64, due_ms: i64| OrderEvent {
        due_at: Some(start + time::Duration::milliseconds(due_ms)),
        ..event(step, worker, after_ms)
    };
    let takeover_after_lease = [
        event(OrderStep::KeyReady, "h:1:0", 0),
        event(OrderStep::Placed, "h:1:0", 100),
        event(OrderStep::ChallengesPublished, "h:2:0", 3_400),
    ];
    let takeovers = check_history(1, &takeover_after_lease).expect("a takeover after the lease");
    assert_eq!(takeovers.len(), 1, "one change of owner: {takeovers:?}");

    let interleaved = [
        event(OrderStep::KeyReady, "h:1:0", 0),
        event(OrderStep::Placed, "h:2:0", 300),
        event(OrderStep::ChallengesPublished, "h:1:0", 600),
    ];
    let error = check_history(2, &interleaved).expect_err("two workers at once");
    assert!(error.contains("within its 3 s lease"), "{error}");

    let backwards = [
        event(OrderStep::Placed, "h:1:0", 0),
        event(OrderStep::KeyReady, "h:1:0", 100),
    ];
    let error = check_history(3, &backwards).expect_err("a step went back");
    assert!(
        error.contains("went back from placed to key_ready"),
        "{error}"
    );

    assert!(check_history(4, &[]).is_err(), "an order without history");

    // A failed validation goes back to key_ready for a fresh ACME order; no other step
    // may go back.
    let validation_retry = [
        event(OrderStep::PropagationConfirmed, "h:1:0", 0),
        event(OrderStep::KeyReady, "h:1:0", 100),
        event(OrderStep::Placed, "h:1:0", 200),
    ];
    check_history(5, &validation_retry).expect("a validation retry");
    let answered_back = [
        event(OrderStep::ChallengesAnswered, "h:1:0", 0),
        event(OrderStep::KeyReady, "h:1:0", 100),
    ];
    let error = check_history(6, &answered_back).expect_err("not a validation retry");
    assert!(error.contains("went back"), "{error}");

    // A worker that left the order waiting hands it over once it is due again.
    let handover = [
        waiting(OrderStep::ChallengesPublished, "h:1:0", 0, 200),
        event(OrderStep::PropagationConfirmed, "h:2:0", 250),
    ];
    assert_eq!(
        check_history(5, &handover)
            .expect("a handover after a wait")
            .len(),
        1
    );
    let early = [
        waiting(OrderStep::ChallengesPublished, "h:1:0", 0, 2_000),
        event(OrderStep::PropagationConfirmed, "h:2:0", 250),
    ];
    let error = check_history(6, &early).expect_err("taken before it was due");
    assert!(error.contains("within its 3 s lease"), "{error}");
}
