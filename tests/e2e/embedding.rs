//! The `acmeport` facade as an embedder uses it: the crate's examples run as written
//! against Pebble. HTTP-01 with the responder mounted in the example's own warp server
//! (Pebble resolving every name to loopback through its mock DNS), and DNS-01 through
//! BIND by RFC 2136 with the order's events handled as they come.

use crate::harness::bind::{Bind, KEY_NAME};
use crate::harness::pebble::{free_tcp_port, ChallTestSrv, Pebble, PebbleOptions};
use crate::harness::{init, verify_chain};
use acmeport::OrderEvent;
use std::net::SocketAddr;
use std::time::Duration;

#[path = "../../lib/examples/http01_warp.rs"]
#[allow(dead_code)] // its `main` is the example's, not the test's
mod http01_warp;

#[path = "../../lib/examples/order_events.rs"]
#[allow(dead_code)]
mod order_events;

/// Long enough for a loaded 2-core machine; Pebble answers in well under a second.
const ISSUE_LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http01_example_issues_through_its_own_warp_server() {
    init();
    let dns = ChallTestSrv::start().await;
    let port = free_tcp_port();
    let pebble = Pebble::start(PebbleOptions {
        dns_server: Some(dns.dns),
        http_port: port,
        ..PebbleOptions::default()
    })
    .await;
    let names = vec![
        "embedded.example.test".to_owned(),
        "www.embedded.example.test".to_owned(),
    ];
    let issued = tokio::time::timeout(
        ISSUE_LIMIT,
        http01_warp::run(http01_warp::Options {
            directory: pebble.directory.to_string(),
            extra_root_pem: Some(pebble.tls_ca_pem.clone()),
            email: "embedder@example.test".to_owned(),
            names: names.clone(),
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
        }),
    )
    .await
    .expect("the example finishes within the limit")
    .expect("the example issues a certificate");
    verify_chain(&issued.fullchain_pem(), &pebble.root_pem().await, &names);
    let key = issued.key_pem().expect("the engine generated the key");
    assert!(key.contains("PRIVATE KEY"), "a PEM private key");
    let mut issued_names = issued.certificate.info.names.clone();
    issued_names.sort();
    assert_eq!(
        issued_names, names,
        "the certificate holds the ordered names"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_events_example_sees_progress_then_a_valid_certificate() {
    init();
    let bind = Bind::start().await.expect("BIND starts");
    let pebble = Pebble::start(PebbleOptions {
        dns_server: Some(bind.addr()),
        http_port: free_tcp_port(),
        ..PebbleOptions::default()
    })
    .await;
    let out = tempfile::tempdir().expect("temporary directory");
    let names = vec![
        "events.example.test".to_owned(),
        "*.events.example.test".to_owned(),
    ];
    let seen = tokio::time::timeout(
        ISSUE_LIMIT,
        order_events::run(order_events::Options {
            directory: pebble.directory.to_string(),
            extra_root_pem: Some(pebble.tls_ca_pem.clone()),
            email: "embedder@example.test".to_owned(),
            names: names.clone(),
            dns_server: bind.addr(),
            tsig: (KEY_NAME.to_owned(), bind.secret().to_owned()),
            check_servers: Some(vec![bind.addr()]),
            out_dir: out.path().to_owned(),
        }),
    )
    .await
    .expect("the example finishes within the limit")
    .unwrap_or_else(|e| panic!("the example runs: {e:#}\nBIND log:\n{}", bind.log()));

    assert!(
        matches!(seen.first(), Some(OrderEvent::Progress { .. })),
        "the first event is the pending order: {seen:?}"
    );
    assert!(
        matches!(seen.last(), Some(OrderEvent::Valid { .. })),
        "the last event is the valid certificate: {seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|e| e.is_final()).count(),
        1,
        "exactly one final event: {seen:?}"
    );
    for pair in seen.windows(2) {
        assert_ne!(
            pair[0], pair[1],
            "no event repeats the one before: {seen:?}"
        );
    }
    let fullchain =
        std::fs::read_to_string(out.path().join("fullchain.pem")).expect("the example wrote it");
    verify_chain(&fullchain, &pebble.root_pem().await, &names);
    let key = std::fs::read_to_string(out.path().join("privkey.pem")).expect("and the key");
    assert!(key.contains("PRIVATE KEY"), "a PEM private key");
    assert!(
        bind.txt("_acme-challenge.events.example.test")
            .await
            .is_empty(),
        "the challenge records are removed"
    );
}
