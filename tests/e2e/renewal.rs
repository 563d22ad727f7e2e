//! Renewal with the real `acmeport` binary against Pebble: a certificate renews on its own
//! through the workflow, the order moves to the new certificate and the old one stays
//! valid; with two instances on one PostgreSQL database each certificate is renewed once.
//!
//! Pebble 2.4 has no ARI (its directory offers no `renewalInfo`), so the lifetime rule
//! decides: Pebble issues certificates valid for [`VALIDITY_SECS`] seconds
//! (`certificateValidityPeriod`) and `renewal.fraction_left = 0.5` renews them half-way.

use crate::crash::{
    add_user, assert_all_valid, check_histories, config_file, create_account, create_order,
    order_names, wait_finished, Db, Instance, Peers, PASSWORD, USER,
};
use crate::harness::pebble::PebbleOptions;
use crate::harness::postgres::TestDatabase;
use crate::harness::service::{ApiClient, ServeProcess};
use crate::harness::verify_chain;
use acmeport_domain::OrderStep;
use acmeport_store::KeyCipher;
use base64::Engine as _;
use secrecy::SecretString;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long Pebble's certificates are valid.
const VALIDITY_SECS: u64 = 24;
/// Renew half-way, at once (no spread), look for ARI every second (Pebble has none), and
/// retry a failed renewal after a second.
const RENEWAL_TOML: &str =
    "[renewal]\nfraction_left = 0.5\nspread = 0.0\nari_poll_secs = 1\nbackoff_secs = 1\n";
const RENEWAL_TIMEOUT: Duration = Duration::from_secs(120);

async fn peers() -> Peers {
    Peers::start_with(PebbleOptions {
        certificate_validity_secs: Some(VALIDITY_SECS),
        ..PebbleOptions::default()
    })
    .await
}

/// The order's current certificate id.
async fn current_certificate(api: &ApiClient, order: i64) -> Option<i64> {
    let (status, body) = api.get(&format!("/api/order/{order}")).await;
    assert_eq!(status, 200, "GET /api/order/{order}: {body}");
    body["resolved_cert_id"].as_i64()
}

/// Waits until each order's current certificate differs from `before`; returns the new
/// ones.
async fn wait_renewed(
    api: &ApiClient,
    before: &BTreeMap<i64, i64>,
    processes: &[&ServeProcess],
) -> BTreeMap<i64, i64> {
    let deadline = Instant::now() + RENEWAL_TIMEOUT;
    loop {
        let mut now = BTreeMap::new();
        for &order in before.keys() {
            if let Some(cert) = current_certificate(api, order).await {
                now.insert(order, cert);
            }
        }
        if before
            .iter()
            .all(|(o, c)| now.get(o).is_some_and(|n| n != c))
        {
            return now;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = processes.iter().map(|p| p.log_tail(120)).collect();
            panic!(
                "not every certificate was renewed within {} s: before {before:?}, now {now:?}\n{}",
                RENEWAL_TIMEOUT.as_secs(),
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn certificate(api: &ApiClient, id: i64) -> Value {
    let (status, body) = api.get(&format!("/api/certificate/{id}")).await;
    assert_eq!(status, 200, "GET /api/certificate/{id}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_renews_on_its_own_and_the_old_one_stays_valid() {
    let peers = peers().await;
    let data = tempfile::tempdir().expect("data directory");
    let config = config_file(
        &peers,
        &Instance {
            data_dir: data.path(),
            database_url: None,
            encryption_key: None,
            workers: 2,
            extra_toml: RENEWAL_TOML,
        },
    );
    add_user(&config).await;
    let process = ServeProcess::start("acmeport", &config, &[]).await;
    let api = ApiClient::new(&process, USER, PASSWORD);
    let account = create_account(&api, "renew@example.com").await;
    let names = order_names("renew", 0, false);
    let order = create_order(&api, account, &names, false).await;
    let orders = wait_finished(&api, &BTreeSet::from([order]), &[&process]).await;
    assert_all_valid(&orders, &[&process]);
    let first = orders[&order]["resolved_cert_id"]
        .as_i64()
        .expect("checked valid");

    let issued = Instant::now();
    let renewed = wait_renewed(&api, &BTreeMap::from([(order, first)]), &[&process]).await;
    let second = renewed[&order];
    eprintln!(
        "renewed {:.1} s after the first certificate was seen (validity {VALIDITY_SECS} s)",
        issued.elapsed().as_secs_f64()
    );

    let root = peers.pebble.root_pem().await;
    let new = certificate(&api, second).await;
    assert_eq!(new["order_id"].as_i64(), Some(order));
    assert_eq!(new["status"], "valid");
    verify_chain(new["fullchain"].as_str().expect("a chain"), &root, &names);
    let old = certificate(&api, first).await;
    assert_eq!(
        old["status"], "valid",
        "the old certificate is not revoked by the renewal: {old}"
    );
    assert_ne!(old["fullchain"], new["fullchain"]);
    let (_, order_now) = api.get(&format!("/api/order/{order}")).await;
    assert_eq!(order_now["status"], "valid", "{order_now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_renew_each_certificate_once() {
    let database = TestDatabase::create().await;
    let peers = peers().await;
    let data = tempfile::tempdir().expect("data directory");
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let config = config_file(
        &peers,
        &Instance {
            data_dir: data.path(),
            database_url: Some(database.url()),
            encryption_key: Some(&key),
            workers: 4,
            extra_toml: RENEWAL_TOML,
        },
    );
    add_user(&config).await;
    let (a, b) = tokio::join!(
        ServeProcess::start("acmeport A", &config, &[]),
        ServeProcess::start(
            "acmeport B",
            &config,
            &[("ACMEPORT_CHALLENGE__ENABLED", "false")]
        ),
    );
    let api = ApiClient::new(&a, USER, PASSWORD);
    let account = create_account(&api, "fleet@example.com").await;
    let mut ids = BTreeSet::new();
    for i in 0..6 {
        ids.insert(create_order(&api, account, &order_names("fleet", i, false), false).await);
    }
    let orders = wait_finished(&api, &ids, &[&a, &b]).await;
    assert_all_valid(&orders, &[&a, &b]);
    let first: BTreeMap<i64, i64> = orders
        .iter()
        .map(|(id, o)| (*id, o["resolved_cert_id"].as_i64().expect("checked valid")))
        .collect();
    wait_renewed(&api, &first, &[&a, &b]).await;

    let db = Db::open(
        database.url(),
        KeyCipher::from_base64(&[SecretString::from(key)]).expect("the shared key"),
    )
    .await;
    let per_order = db.certificates_per_order().await;
    for id in &ids {
        assert_eq!(
            per_order.get(id),
            Some(&2),
            "order {id}: one certificate and exactly one renewal, saw {per_order:?}"
        );
    }
    let histories = check_histories(&db, &ids).await;
    for (id, events) in &histories {
        // The renewal's first step (a key and CSR) was taken once: one renewal began.
        let began: Vec<_> = events
            .iter()
            .filter(|e| e.attempt == 2 && e.step == OrderStep::KeyReady)
            .map(|e| e.worker.clone())
            .collect();
        assert_eq!(
            began.len(),
            1,
            "order {id}: one renewal began, by {began:?}"
        );
    }
    let workers: BTreeSet<String> = histories
        .values()
        .flatten()
        .filter(|e| e.attempt == 2)
        .map(|e| e.worker.split(':').nth(1).unwrap_or("").to_owned())
        .collect();
    eprintln!("renewal steps were written by processes {workers:?}");
}
