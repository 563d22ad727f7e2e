//! The real `acmeport` binary under faults and contention, against Pebble and BIND 9:
//!
//! - API writes (COPY, PURGE, DELETE of certificates) racing the workers on the same
//!   orders lose no update and leave no impossible state;
//! - a PostgreSQL server stopped and started again in the middle of 50 orders: every
//!   order ends valid (on a private cluster, never the shared server other tests use);
//! - one user's 200 queued orders do not starve another user's single order;
//! - a CA that fails (5xx, 429 with `Retry-After`, answers slower than the deadline) for
//!   a while: orders end valid; one that never recovers: orders end invalid once the
//!   retry budget is spent, saying so;
//! - a cleanup that fails (the DNS provider's API down) is retried later by the sweep and
//!   reported in the log.
//!
//! No assertion is on absolute timings: the machine is shared and slow. Fairness is judged
//! by where the other user's order finishes relative to the long queue.

use crate::crash::{
    add_user, assert_all_valid, assert_certificates, check_histories, config_file, create_account,
    create_order, list_orders, order_names, summary, wait_finished, Db, Instance, Peers,
    FINISH_TIMEOUT, PASSWORD, USER,
};
use crate::dns_kinds::nsupdate_hook;
use crate::harness::ari_proxy::{AriProxy, Fault};
use crate::harness::private_postgres::PrivatePostgres;
use crate::harness::service::{self, ApiClient, ServeProcess};
use acmeport_domain::{OrderStatus, OrderStep};
use acmeport_store::{KeyCipher, OrderEvent, Store};
use base64::Engine as _;
use futures::StreamExt as _;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The database of a single instance on SQLite in `data`.
async fn sqlite_db(data: &Path) -> Db {
    Db::open(
        &Store::sqlite_url(&data.join("acmeport.db")),
        KeyCipher::from_key_file(&data.join("master.key"))
            .expect("the key file generated at first start"),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// API writes racing the workers

/// Orders in the race test; half DNS-01 (two names), half HTTP-01.
const RACE_ORDERS: usize = 6;
/// Rounds of reissues with purges and revocations fired into them.
const RACE_ROUNDS: usize = 3;

/// One request of the race and its answer.
#[derive(Debug)]
struct Fired {
    /// `COPY /api/order/<target>`, or `PURGE`/`DELETE /api/certificate/<target>`.
    method: &'static str,
    target: i64,
    status: u16,
    body: Value,
}

impl Fired {
    async fn send(api: &ApiClient, method: &'static str, target: i64) -> Self {
        let (path, body) = match method {
            "COPY" => (format!("/api/order/{target}"), None),
            "DELETE" => (
                format!("/api/certificate/{target}"),
                Some(json!({ "reason": "superseded" })),
            ),
            _ => (format!("/api/certificate/{target}"), None),
        };
        let (status, answer) = api.request(method, &path, body.as_ref()).await;
        Self {
            method,
            target,
            status,
            body: answer,
        }
    }
}

/// The step history of one order must tell a consistent story: attempts only go up,
/// steps never go back within an attempt (an API write did not reset a worker's
/// progress), and every attempt up to the order's last stored its certificate exactly
/// once.
fn check_attempts(id: i64, events: &[OrderEvent], last_attempt: u32) -> Result<(), String> {
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
    for pair in events.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        if after.attempt < before.attempt || crate::harness::went_back(before, after) {
            return Err(format!(
                "order {id} went back from attempt {} {} to attempt {} {}:\n{}",
                before.attempt,
                before.step.as_str(),
                after.attempt,
                after.step.as_str(),
                shown()
            ));
        }
    }
    for attempt in 1..=last_attempt {
        let stored = events
            .iter()
            .filter(|e| {
                e.attempt == attempt
                    && e.step == OrderStep::CertificateStored
                    && e.status == OrderStatus::Valid
            })
            .count();
        if stored != 1 {
            return Err(format!(
                "order {id}: attempt {attempt} stored its certificate {stored} times (once \
                 expected):\n{}",
                shown()
            ));
        }
    }
    Ok(())
}

/// COPY (reissue), PURGE and DELETE of certificates are fired while four workers advance
/// the same orders, round after round: each order's current certificate is purged or
/// revoked at a random moment of its reissue, and a second COPY races the first. Every
/// order ends valid on a stored certificate of its last attempt, every accepted COPY
/// counted (no lost update), no order names a deleted certificate, no certificate is
/// stored twice, no attempt's steps go back, and no TXT record or token is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reissues_purges_and_revocations_racing_the_workers_lose_no_update() {
    let started = Instant::now();
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
    let serve = ServeProcess::start("acmeport (races)", &config, &[]).await;
    let api = Arc::new(ApiClient::new(&serve, USER, PASSWORD));
    let account = create_account(&api, "races@example.com").await;
    let mut names = BTreeMap::new();
    for i in 0..RACE_ORDERS {
        let dns = i % 2 == 0;
        let order_names = order_names("race", i, dns);
        let id = create_order(&api, account, &order_names, dns).await;
        names.insert(id, order_names);
    }
    let ids: BTreeSet<i64> = names.keys().copied().collect();
    let mut orders = wait_finished(&api, &ids, &[&serve]).await;
    assert_all_valid(&orders, &[&serve]);

    let mut accepted_copies: BTreeMap<i64, u32> = ids.iter().map(|id| (*id, 0)).collect();
    let mut refused_copies = 0;
    let mut purged: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut revoked = Vec::new();
    for round in 0..RACE_ROUNDS {
        let mut requests = tokio::task::JoinSet::new();
        for (k, (&id, order)) in orders.iter().enumerate() {
            let cert = order["resolved_cert_id"]
                .as_i64()
                .expect("a valid order names its certificate");
            let copy = Arc::clone(&api);
            requests.spawn(async move { Fired::send(&copy, "COPY", id).await });
            let second = Arc::clone(&api);
            let later = Duration::from_millis(rand::random::<u64>() % 2000);
            requests.spawn(async move {
                tokio::time::sleep(later).await;
                Fired::send(&second, "COPY", id).await
            });
            let remove = Arc::clone(&api);
            let purge = (k + round) % 2 == 0;
            let later = Duration::from_millis(rand::random::<u64>() % 1500);
            requests.spawn(async move {
                tokio::time::sleep(later).await;
                Fired::send(&remove, if purge { "PURGE" } else { "DELETE" }, cert).await
            });
            if purge {
                purged.entry(id).or_default().push(cert);
            } else {
                revoked.push(cert);
            }
        }
        while let Some(result) = requests.join_next().await {
            let fired = result.expect("a request task");
            match (fired.method, fired.status) {
                ("COPY", 200) => {
                    assert_eq!(
                        fired.body["status"], "pending",
                        "an accepted COPY: {fired:?}"
                    );
                    *accepted_copies.get_mut(&fired.target).expect("one of ours") += 1;
                }
                ("COPY", 400) if fired.body["status"] == "the order is still being processed" => {
                    refused_copies += 1;
                }
                ("PURGE" | "DELETE", 200) => {}
                _ => panic!(
                    "round {round}: every request should succeed or, for a COPY of a pending \
                     order, be refused as still processing; got {fired:?}\n{}",
                    serve.log_tail(100)
                ),
            }
        }
        orders = wait_finished(&api, &ids, &[&serve]).await;
        assert_all_valid(&orders, &[&serve]);
    }

    // Every accepted COPY started one attempt.
    for (id, order) in &orders {
        assert_eq!(
            order["attempt"].as_u64(),
            Some(u64::from(1 + accepted_copies[id])),
            "order {id} should be at attempt 1 + its {} accepted COPYs: {order}",
            accepted_copies[id]
        );
    }
    // Each order's certificate is stored, valid, its own and verifies.
    assert_certificates(&api, &peers, &orders, &names).await;
    let db = sqlite_db(data.path()).await;
    let dangling = db
        .query(
            "SELECT o.id FROM orders o LEFT JOIN certificates c ON c.id = o.resolved_cert_id \
             WHERE o.resolved_cert_id IS NOT NULL AND c.id IS NULL",
        )
        .await;
    assert!(
        dangling.is_empty(),
        "{} orders name a certificate that no longer exists",
        dangling.len()
    );
    let twice = db
        .query("SELECT fingerprint FROM certificates GROUP BY fingerprint HAVING COUNT(*) > 1")
        .await;
    assert!(
        twice.is_empty(),
        "{} certificates are stored twice (a step repeated after a lost write)",
        twice.len()
    );
    // One certificate per attempt, less the purged ones.
    let counts = db.certificates_per_order().await;
    for (id, order) in &orders {
        let attempts = i64::try_from(order["attempt"].as_u64().expect("attempt")).expect("small");
        let purged_here = i64::try_from(purged.get(id).map_or(0, Vec::len)).expect("small");
        assert_eq!(
            counts.get(id).copied().unwrap_or(0),
            attempts - purged_here,
            "order {id}: one certificate per attempt ({attempts}) less the {purged_here} purged"
        );
    }
    for certs in purged.values() {
        for cert in certs {
            let (status, body) = api.get(&format!("/api/certificate/{cert}")).await;
            assert_eq!(
                status, 400,
                "purged certificate {cert} should be gone: {body}"
            );
        }
    }
    for cert in &revoked {
        let (status, body) = api.get(&format!("/api/certificate/{cert}")).await;
        assert_eq!(status, 200, "revoked certificate {cert}: {body}");
        assert_eq!(body["status"], "revoked", "certificate {cert}: {body}");
    }
    let mut violations = Vec::new();
    for (id, order) in &orders {
        let last = u32::try_from(order["attempt"].as_u64().expect("attempt")).expect("small");
        if let Err(e) = check_attempts(*id, &db.history(*id).await, last) {
            violations.push(e);
        }
        assert_eq!(order["step"], "certificate_stored", "order {id}: {order}");
    }
    assert!(
        violations.is_empty(),
        "step histories:\n{}",
        violations.join("\n")
    );
    db.assert_one_certificate_each_and_no_token(&BTreeSet::new())
        .await;
    peers.assert_no_txt_left(&names).await;
    eprintln!(
        "race test ({RACE_ORDERS} orders, {RACE_ROUNDS} rounds, 4 workers): {} COPYs accepted, \
         {refused_copies} refused as still processing, {} certificates purged and {} revoked \
         during reissues; whole test {}",
        accepted_copies.values().sum::<u32>(),
        purged.values().map(Vec::len).sum::<usize>(),
        revoked.len(),
        seconds(started.elapsed())
    );
}

/// The history check of the race test must be able to fail.
#[test]
fn the_attempt_check_catches_a_reset_and_a_certificate_stored_twice() {
    let at = time::OffsetDateTime::now_utc();
    let event = |attempt, step, status| OrderEvent {
        attempt,
        step,
        status,
        worker: "h:1:0".into(),
        at,
        due_at: None,
    };
    let pending = OrderStatus::Pending;
    let valid = OrderStatus::Valid;
    let good = [
        event(1, OrderStep::Finalized, pending),
        event(1, OrderStep::CertificateStored, valid),
        event(2, OrderStep::KeyReady, pending),
        event(2, OrderStep::CertificateStored, valid),
    ];
    check_attempts(1, &good, 2).expect("a consistent history");
    let reset = [
        event(2, OrderStep::Placed, pending),
        event(2, OrderStep::KeyReady, pending),
    ];
    assert!(check_attempts(2, &reset, 0)
        .expect_err("a reset")
        .contains("went back"));
    let twice = [
        event(1, OrderStep::CertificateStored, valid),
        event(1, OrderStep::CertificateStored, valid),
    ];
    assert!(check_attempts(3, &twice, 1)
        .expect_err("stored twice")
        .contains("2 times"));
    assert!(
        check_attempts(4, &good, 3).is_err(),
        "attempt 3 never stored"
    );
}

// ---------------------------------------------------------------------------------------
// PostgreSQL restarted mid-batch

/// 50 DNS-01 orders on a PostgreSQL server of the test's own, which is stopped at once
/// (as by a crash) while the orders are in flight and started again a few seconds
/// later: the service keeps running and every order ends valid, with one certificate,
/// no TXT record left and a consistent step history.
///
/// DNS-01 only: an HTTP-01 answer is read from the database when the CA asks, so a CA
/// validating while the database is down fails that authorization for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_finish_when_postgres_restarts_in_the_middle() {
    const ORDERS: usize = 50;
    let started = Instant::now();
    let (postgres, peers) = tokio::join!(PrivatePostgres::start(), Peers::start());
    let url = postgres.url();
    let data = tempfile::tempdir().expect("data directory");
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let config = config_file(
        &peers,
        &Instance {
            data_dir: data.path(),
            database_url: Some(&url),
            encryption_key: Some(&key),
            workers: 4,
            extra_toml: "",
        },
    );
    add_user(&config).await;
    let serve = ServeProcess::start("acmeport (PostgreSQL restart)", &config, &[]).await;
    let api = ApiClient::new(&serve, USER, PASSWORD);
    let account = create_account(&api, "pg-restart@example.com").await;
    // Posted at once, so that they are in flight together.
    let names: BTreeMap<i64, Vec<String>> = futures::stream::iter(0..ORDERS)
        .map(|i| {
            let api = &api;
            async move {
                let order_names = vec![format!("pg{i}.example.test")];
                (
                    create_order(api, account, &order_names, true).await,
                    order_names,
                )
            }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    let ids: BTreeSet<i64> = names.keys().copied().collect();

    // Stop the server while some orders are done, some half done and many pending.
    let deadline = Instant::now() + FINISH_TIMEOUT;
    let at_stop = loop {
        let orders = list_orders(&api).await;
        let valid = orders.values().filter(|o| o["status"] == "valid").count();
        let pending = orders.values().filter(|o| o["status"] == "pending").count();
        let half_done = orders
            .values()
            .filter(|o| o["status"] == "pending" && o["step"] != "created")
            .count();
        if valid >= 1 && half_done >= 3 {
            break orders;
        }
        assert!(
            Instant::now() < deadline && pending >= ORDERS / 3,
            "never saw orders valid and half done while many were pending:\n{}",
            summary(&orders)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    postgres.stop(false).await;
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    postgres.start_server().await;
    let down_for = stopped.elapsed();

    let orders = wait_finished(&api, &ids, &[&serve]).await;
    let finished_after = stopped.elapsed();
    assert_all_valid(&orders, &[&serve]);
    assert_certificates(&api, &peers, &orders, &names).await;
    let db = Db::open(
        &url,
        KeyCipher::from_base64(&[SecretString::from(key.clone())]).expect("the key"),
    )
    .await;
    db.assert_one_certificate_each_and_no_token(&ids).await;
    peers.assert_no_txt_left(&names).await;
    check_histories(&db, &ids).await;
    let count = |status: &str| at_stop.values().filter(|o| o["status"] == status).count();
    eprintln!(
        "PostgreSQL restart test ({ORDERS} DNS-01 orders, 4 workers): stopped with {} valid and \
         {} pending, down for {}, all valid {} after the stop; whole test {}",
        count("valid"),
        count("pending"),
        seconds(down_for),
        seconds(finished_after),
        seconds(started.elapsed())
    );
}

// ---------------------------------------------------------------------------------------
// Fairness between users

/// User A queues 200 orders, then user B one: with two workers busy on A's queue, B's
/// order is valid while most of A's orders are still pending. (Taken first-in first-out,
/// B's order would wait behind A's queue and finish with A's bulk.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_long_queue_does_not_starve_another_users_order() {
    const A_ORDERS: usize = 200;
    const USER_B: &str = "fair-b";
    let started = Instant::now();
    let peers = Peers::start().await;
    let data = tempfile::tempdir().expect("data directory");
    let config = config_file(
        &peers,
        &Instance {
            data_dir: data.path(),
            database_url: None,
            encryption_key: None,
            workers: 2,
            extra_toml: "[quotas]\norders_in_flight_per_user = 300\n",
        },
    );
    add_user(&config).await;
    let (status, output) = service::run(
        &config,
        &["user", "add", USER_B],
        &[("ACMEPORT_PASSWORD", PASSWORD)],
    )
    .await;
    assert!(status.success(), "`acmeport user add {USER_B}`: {output}");
    let serve = ServeProcess::start("acmeport (fairness)", &config, &[]).await;
    let api_a = ApiClient::new(&serve, USER, PASSWORD);
    let api_b = ApiClient::new(&serve, USER_B, PASSWORD);
    let account_a = create_account(&api_a, "fair-a@example.com").await;
    let account_b = create_account(&api_b, "fair-b@example.com").await;

    let posting = Instant::now();
    let a_ids: BTreeSet<i64> = futures::stream::iter(0..A_ORDERS)
        .map(|i| {
            let api = &api_a;
            async move {
                let names = vec![format!("fair-a{i}.example.test")];
                create_order(api, account_a, &names, false).await
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let posted_a = posting.elapsed();
    let b_posted = Instant::now();
    let b = create_order(
        &api_b,
        account_b,
        &["fair-b.example.test".to_owned()],
        false,
    )
    .await;
    let deadline = Instant::now() + FINISH_TIMEOUT;
    let b_order = loop {
        let (status, order) = api_b.get(&format!("/api/order/{b}")).await;
        assert_eq!(status, 200, "GET B's order: {order}");
        if order["status"] != "pending" {
            break order;
        }
        assert!(
            Instant::now() < deadline,
            "B's order still pending after {} s: {order}",
            FINISH_TIMEOUT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let b_took = b_posted.elapsed();
    let a_orders: BTreeMap<i64, Value> = list_orders(&api_a)
        .await
        .into_iter()
        .filter(|(id, _)| a_ids.contains(id))
        .collect();
    assert_eq!(b_order["status"], "valid", "B's order: {b_order}");
    let a_valid = a_orders.values().filter(|o| o["status"] == "valid").count();
    let a_pending = a_orders
        .values()
        .filter(|o| o["status"] == "pending")
        .count();
    let a_untouched = a_orders.values().filter(|o| o["step"] == "created").count();
    assert!(
        a_pending >= A_ORDERS / 2,
        "B's order should be valid long before A's queue drains, yet only {a_pending} of A's \
         {A_ORDERS} orders were still pending ({a_valid} valid) when it was"
    );
    eprintln!(
        "fairness test (2 workers): A posted {A_ORDERS} orders in {}, B's order was valid {} \
         after it was posted, when {a_valid} of A's orders were valid, {a_pending} pending \
         ({a_untouched} not started yet); whole test {}",
        seconds(posted_a),
        seconds(b_took),
        seconds(started.elapsed())
    );
}

// ---------------------------------------------------------------------------------------
// A CA in trouble

/// Every kind of trouble the proxy plays, in turn.
fn every_fault() -> Vec<Fault> {
    vec![
        Fault::ServerError,
        Fault::RateLimited,
        Fault::Unavailable,
        // Longer than `acme.request_timeout_secs` below.
        Fault::Slow(Duration::from_secs(4)),
    ]
}

/// Two CAs in trouble in front of one Pebble, one instance with a short retry budget:
/// orders at a CA that answers 500, 503, 429 with `Retry-After` and answers slower than
/// the request deadline for a few seconds end valid once it recovers; orders at one that
/// never recovers end invalid, saying they gave up after so many tries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_outlast_a_ca_outage_and_give_up_when_it_never_ends() {
    const RETRY_BUDGET_SECS: u64 = 20;
    let started = Instant::now();
    let peers = Peers::start().await;
    let (recovering, broken) = tokio::join!(
        AriProxy::start(&peers.pebble),
        AriProxy::start(&peers.pebble)
    );
    // The instances trust the proxies' TLS roots through the same file as Pebble's.
    let mut roots = std::fs::read_to_string(&peers.ca_file).expect("Pebble's TLS root");
    roots.push_str(&recovering.tls_ca_pem);
    roots.push_str(&broken.tls_ca_pem);
    std::fs::write(&peers.ca_file, roots).expect("write the roots");
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
    let text = std::fs::read_to_string(&config).expect("the configuration");
    let pebble_directory = format!("directory = \"{}\"", peers.pebble.directory);
    assert!(text.contains(&pebble_directory), "{text}");
    let text = text.replace(
        &pebble_directory,
        &format!(
            "directory = \"{}\"\nallowed_directories = [\"{}\"]",
            recovering.directory, broken.directory
        ),
    );
    std::fs::write(&config, text).expect("write the configuration");
    add_user(&config).await;
    let budget = RETRY_BUDGET_SECS.to_string();
    let serve = ServeProcess::start(
        "acmeport (CA in trouble)",
        &config,
        &[
            ("ACMEPORT_ACME__REQUEST_TIMEOUT_SECS", "2"),
            ("ACMEPORT_WORKERS__RETRY_BUDGET_SECS", &budget),
            ("ACMEPORT_WORKERS__RETRY_BACKOFF_MAX_SECS", "3"),
        ],
    )
    .await;
    let api = ApiClient::new(&serve, USER, PASSWORD);
    let account_ok = create_account(&api, "ca-recovers@example.com").await;
    let (status, body) = api
        .post(
            "/api/acme",
            &json!({ "email": "ca-broken@example.com", "server": broken.directory }),
        )
        .await;
    assert_eq!(status, 201, "an account at the second CA: {body}");
    let account_broken = body["id"].as_i64().expect("the account id");

    let outage = Duration::from_secs(5);
    recovering.inject(&every_fault(), Some(outage));
    broken.inject(&every_fault(), None);
    let outage_started = Instant::now();
    let mut names = BTreeMap::new();
    let mut ok_ids = BTreeSet::new();
    for i in 0..3 {
        let order_names = vec![format!("ca-ok{i}.example.test")];
        let id = create_order(&api, account_ok, &order_names, false).await;
        names.insert(id, order_names);
        ok_ids.insert(id);
    }
    let mut broken_ids = BTreeSet::new();
    for i in 0..2 {
        let order_names = vec![format!("ca-broken{i}.example.test")];
        broken_ids.insert(create_order(&api, account_broken, &order_names, false).await);
    }
    // The service keeps answering while its CAs are in trouble.
    let (status, body) = api.get("/api/order").await;
    assert_eq!(status, 200, "the API during the outage: {body}");

    let orders = wait_finished(&api, &ok_ids, &[&serve]).await;
    let recovered_after = outage_started.elapsed();
    assert_all_valid(&orders, &[&serve]);
    assert_certificates(&api, &peers, &orders, &names).await;
    let served_ok = recovering.faults_served();
    assert!(
        served_ok.values().sum::<usize>() >= ok_ids.len(),
        "each order should have met the outage at least once: {served_ok:?}"
    );

    let failed = wait_finished(&api, &broken_ids, &[&serve]).await;
    let gave_up_after = outage_started.elapsed();
    for (id, order) in &failed {
        let error = order["error"].as_str().unwrap_or_default();
        assert_eq!(order["status"], "invalid", "order {id}: {order}");
        assert!(
            error.contains("gave up after") && error.contains("tries"),
            "order {id} should say it gave up after its tries: {error}"
        );
    }
    let served_broken = broken.faults_served();
    for fault in every_fault() {
        assert!(
            served_broken.get(&fault).copied().unwrap_or(0) > 0,
            "the broken CA should have answered {fault:?} at least once: {served_broken:?}"
        );
    }
    assert!(
        gave_up_after >= Duration::from_secs(RETRY_BUDGET_SECS),
        "the orders gave up after {gave_up_after:?}, before the retry budget of \
         {RETRY_BUDGET_SECS} s was spent"
    );
    eprintln!(
        "CA trouble test: outage of {} at one CA ({served_ok:?}), its orders valid {} after it \
         began; the other CA never recovered ({served_broken:?}), its orders invalid {} after \
         (budget {RETRY_BUDGET_SECS} s): {:?}; whole test {}",
        seconds(outage),
        seconds(recovered_after),
        seconds(gave_up_after),
        failed
            .values()
            .map(|o| o["error"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>(),
        seconds(started.elapsed())
    );
}

// ---------------------------------------------------------------------------------------
// The sweep of leftovers

/// A DNS provider whose API is down when the record is removed: the order still ends
/// valid, the record stays recorded and is removed by a later sweep once the API is back,
/// and the log says what failed and what was swept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_cleanup_is_swept_later_and_reported() {
    let started = Instant::now();
    let peers = Peers::start().await;
    let data = tempfile::tempdir().expect("data directory");
    let hook = nsupdate_hook(data.path(), &peers.bind, peers.bind.secret());
    let down = data.path().join("dns-api-down");
    let flaky = data.path().join("flaky-hook.sh");
    std::fs::write(
        &flaky,
        format!(
            "#!/bin/sh\nif [ \"$1\" = cleanup ] && [ -e '{down}' ]; then\n  echo 'the DNS API \
             is down' >&2\n  exit 1\nfi\nexec '{hook}' \"$@\"\n",
            down = down.display(),
            hook = hook.display()
        ),
    )
    .expect("write the hook");
    std::fs::set_permissions(&flaky, std::fs::Permissions::from_mode(0o755))
        .expect("make the hook executable");
    std::fs::write(&down, "").expect("take the DNS API down");
    let extra = format!(
        "[dns.providers.flaky]\nkind = \"exec\"\nprogram = \"{}\"\nzones = [\"example.test\"]\n",
        flaky.display()
    );
    let config = config_file(
        &peers,
        &Instance {
            data_dir: data.path(),
            database_url: None,
            encryption_key: None,
            workers: 2,
            extra_toml: &extra,
        },
    );
    add_user(&config).await;
    let serve = ServeProcess::start(
        "acmeport (sweep)",
        &config,
        &[("ACMEPORT_WORKERS__RETRY_BACKOFF_MAX_SECS", "2")],
    )
    .await;
    let api = ApiClient::new(&serve, USER, PASSWORD);
    let account = create_account(&api, "sweep@example.com").await;
    let name = "sweep.example.test";
    let record = format!("_acme-challenge.{name}");
    let (status, body) = api
        .post(
            "/api/order",
            &json!({ "domains": [name], "account": account, "type": "dns", "provider": "flaky" }),
        )
        .await;
    assert_eq!(status, 201, "POST /api/order: {body}");
    let id = body["id"].as_i64().expect("the order id");
    let ids = BTreeSet::from([id]);
    // The order ends valid; or invalid when Pebble's DNS lookup of the record failed (it
    // happens on a loaded machine): its failed cleanup is swept all the same.
    let orders = wait_finished(&api, &ids, &[&serve]).await;
    let settled = orders[&id]["status"].clone();
    let cert = orders[&id]["resolved_cert_id"].clone();
    assert!(
        settled == "valid" || orders[&id]["step"] == "propagation_confirmed",
        "the order should end valid, or invalid after publishing its record: {}",
        orders[&id]
    );
    assert!(
        !peers.bind.txt(&record).await.is_empty(),
        "the cleanup failed, so the record should still be served"
    );

    // Failed cleanups are retried while the API is down; then it comes back.
    let deadline = Instant::now() + FINISH_TIMEOUT;
    while count_lines(&serve, &["cleanup failed"]) < 3 {
        assert!(
            Instant::now() < deadline,
            "the failed cleanup should be retried:\n{}",
            serve.log_tail(100)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    std::fs::remove_file(&down).expect("bring the DNS API back");
    let back = Instant::now();
    while !peers.bind.txt(&record).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the record should be swept once the DNS API is back:\n{}",
            serve.log_tail(100)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let swept_after = back.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_lines(
        &serve,
        &["swept leftover challenge material", "removed=1", "left=0"],
    ) == 0
    {
        assert!(
            Instant::now() < deadline,
            "the sweep should report what it removed:\n{}",
            serve.log_tail(100)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, order) = api.get(&format!("/api/order/{id}")).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(
        order["status"], settled,
        "the sweep leaves the status: {order}"
    );
    assert_eq!(
        order["resolved_cert_id"], cert,
        "the sweep leaves the certificate: {order}"
    );
    eprintln!(
        "sweep test: order {settled}, {} failed cleanups while the DNS API was down, the record \
         swept {} after it was back; whole test {}",
        count_lines(&serve, &["cleanup failed"]),
        seconds(swept_after),
        seconds(started.elapsed())
    );
}

/// How many lines of the process's log contain each of `texts`.
fn count_lines(process: &ServeProcess, texts: &[&str]) -> usize {
    process
        .log_tail(usize::MAX)
        .lines()
        .filter(|l| texts.iter().all(|t| l.contains(t)))
        .count()
}
