//! Renewal by ACME Renewal Information (RFC 9773), through the whole service: the real
//! application from a TOML configuration, DNS-01 on BIND, and Pebble behind a proxy
//! (`harness::ari_proxy`) that adds the `renewalInfo` resource Pebble 2.4 lacks and
//! records every renewalInfo request and every new order's `replaces`.

use crate::harness::app::TestApp;
use crate::harness::ari_proxy::{AriProxy, RETRY_AFTER_SECS};
use crate::harness::bind::{Bind, KEY_NAME};
use crate::harness::pebble::{free_tcp_port, Pebble, PebbleOptions};
use crate::harness::{init, verify_chain};
use acmeport_domain::{Order, OrderId, OrderStatus, RenewalReason};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use std::future::Future;
use std::time::{Duration, Instant};
use x509_parser::extensions::ParsedExtension;

/// The name the certificates are for (BIND's test zone).
const NAME: &str = "ari.example.test";
/// How long a test waits for something the service does in the background.
const WAIT: Duration = Duration::from_secs(90);

/// The `[dns]` tables (RFC 2136 on BIND, propagation checked there) and the renewal
/// settings under test: the window is fetched a second after issuance.
fn config(bind: &Bind) -> String {
    format!(
        r#"
[dns]
default = "bind"

[dns.providers.bind]
kind = "rfc2136"
server = "{bind}"
key_name = "{KEY_NAME}"
secret = "{secret}"
zone = "example.test"
timeout_secs = 5

[dns.propagation]
enabled = true
timeout_secs = 60
interval_secs = 1
resolvers = ["{bind}"]
authoritative_port = {port}
authoritative_servers = ["{bind}"]
query_timeout_secs = 2

[renewal]
ari = true
ari_poll_secs = 1
"#,
        bind = bind.addr(),
        secret = bind.secret(),
        port = bind.port(),
    )
}

/// The leaf of `fullchain_pem`, DER.
fn leaf_der(fullchain_pem: &str) -> CertificateDer<'static> {
    CertificateDer::pem_slice_iter(fullchain_pem.as_bytes())
        .next()
        .expect("the chain has a leaf")
        .expect("the leaf is PEM")
}

/// The leaf's serial in hex, as Pebble's management API names certificates.
fn serial_hex(fullchain_pem: &str) -> String {
    let der = leaf_der(fullchain_pem);
    let (_, leaf) = x509_parser::parse_x509_certificate(&der).expect("the leaf parses");
    leaf.raw_serial_as_string().replace(':', "")
}

/// The RFC 9773 certificate id of the leaf of `fullchain_pem`, computed here from the
/// certificate: `base64url(AKI keyIdentifier) "." base64url(serial DER content)`.
fn ari_certificate_id(fullchain_pem: &str) -> String {
    let der = leaf_der(fullchain_pem);
    let (_, leaf) = x509_parser::parse_x509_certificate(&der).expect("the leaf parses");
    let key_id = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref(),
            _ => None,
        })
        .expect("the leaf has an authority key identifier");
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(key_id.0),
        URL_SAFE_NO_PAD.encode(leaf.tbs_certificate.raw_serial())
    )
}

/// Polls `probe` until it finds something, failing after [`WAIT`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            started.elapsed() < WAIT,
            "waited {WAIT:?} for {what} in vain"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The order as stored (the REST API does not show its renewal plan).
async fn stored_order(app: &TestApp, id: i64) -> Order {
    app.service
        .ports()
        .orders
        .get(OrderId::new(id))
        .await
        .expect("the store answers")
        .expect("the order exists")
}

/// A certificate over the REST API.
async fn certificate(app: &TestApp, id: i64) -> Value {
    let answer = app.get(&format!("/api/certificate/{id}")).await;
    assert_eq!(
        answer.status, 200,
        "GET /api/certificate/{id}: {:?}",
        answer.body
    );
    answer.body
}

fn fullchain(certificate: &Value) -> &str {
    certificate["fullchain"]
        .as_str()
        .unwrap_or_else(|| panic!("the certificate has a fullchain: {certificate}"))
}

#[tokio::test]
async fn the_certificate_is_renewed_when_the_cas_window_opens_replacing_the_old_one() {
    init();
    let bind = Bind::start().await.expect("BIND starts");
    let pebble = Pebble::start(PebbleOptions {
        dns_server: Some(bind.addr()),
        // Unused by DNS-01, but Pebble's configuration needs one.
        http_port: free_tcp_port(),
        ..PebbleOptions::default()
    })
    .await;
    let proxy = AriProxy::start(&pebble).await;
    let app = TestApp::spawn_at(&proxy.directory, &proxy.tls_ca_pem, &config(&bind)).await;
    let app = &app;
    let proxy = &proxy;

    let account = app
        .post(
            "/api/acme",
            &json!({"email": "ari@example.test", "server": proxy.directory}),
        )
        .await;
    assert_eq!(account.status, 201, "account at Pebble: {:?}", account.body);
    let order_id = app
        .create_order(&json!({
            "domains": [NAME], "account": account.body["id"], "type": "dns", "provider": "bind"
        }))
        .await;
    let order = app.finished_order(order_id).await;
    assert_eq!(order["status"], "valid", "the first certificate: {order}");
    let first_id = order["resolved_cert_id"]
        .as_i64()
        .expect("a certificate id");
    let first = certificate(app, first_id).await;
    let first_ari = ari_certificate_id(fullchain(&first));
    assert_eq!(
        proxy.new_orders(),
        vec![None],
        "the first order replaces nothing"
    );

    // Soon after issuance the service asks for the window, by the certificate's id.
    let asked = eventually("a renewalInfo request", move || async move {
        let asked = proxy.renewal_info_requests();
        (!asked.is_empty()).then_some(asked)
    })
    .await;
    assert_eq!(
        asked[0], first_ari,
        "renewalInfo must be asked for base64url(AKI keyIdentifier).base64url(serial)"
    );

    // A window ahead: the renewal is planned at a time inside it.
    let plan = eventually(
        "a renewal planned from the CA's window",
        move || async move {
            stored_order(app, order_id)
                .await
                .renewal_plan()
                .filter(|p| p.reason == RenewalReason::AriWindow)
                .cloned()
        },
    )
    .await;
    let (start, end) = proxy.future_window;
    let (kept_start, kept_end) = plan.window.expect("the plan keeps the CA's window");
    let precision = time::Duration::milliseconds(1);
    assert!(
        (kept_start - start).abs() < precision && (kept_end - end).abs() < precision,
        "the plan keeps the CA's window {start} .. {end}, found {kept_start} .. {kept_end}"
    );
    assert!(
        start <= plan.at && plan.at <= end,
        "the renewal time {} must lie inside the window {start} .. {end}",
        plan.at
    );

    // The window is fetched again after each Retry-After, and nothing else happens.
    let seen = proxy.renewal_info_requests().len();
    eventually(
        "renewalInfo asked again after Retry-After",
        move || async move { (proxy.renewal_info_requests().len() >= seen + 2).then_some(()) },
    )
    .await;
    let waiting = stored_order(app, order_id).await;
    assert_eq!(
        waiting.status(),
        OrderStatus::Valid,
        "the order stays valid"
    );
    assert_eq!(
        waiting.resolved_cert_id().map(|c| c.get()),
        Some(first_id),
        "no new certificate while the window is ahead"
    );
    assert_eq!(
        waiting.renewal_plan().map(|p| p.at),
        Some(plan.at),
        "the time picked in an unchanged window stands"
    );
    assert!(
        proxy
            .renewal_info_requests()
            .iter()
            .all(|id| *id == first_ari),
        "only the current certificate is asked about: {:?}",
        proxy.renewal_info_requests()
    );
    assert_eq!(
        proxy.new_orders(),
        vec![None],
        "no order while the window is ahead"
    );

    // The CA moves the window into the past: the service renews, naming what it replaces.
    proxy.make_due(&first_ari);
    let renewed = eventually("the renewed certificate", move || async move {
        let order = stored_order(app, order_id).await;
        let current = order.resolved_cert_id().map(|c| c.get());
        (order.status() == OrderStatus::Valid && current != Some(first_id)).then_some(current)
    })
    .await
    .expect("a valid order names its certificate");
    assert_eq!(
        proxy.new_orders(),
        vec![None, Some(first_ari.clone())],
        "the renewal order replaces the first certificate, by its ARI id"
    );
    let second = certificate(app, renewed).await;
    verify_chain(
        fullchain(&second),
        &pebble.root_pem().await,
        &[NAME.to_owned()],
    );
    assert_eq!(second["status"], "valid", "the new certificate: {second}");
    assert_eq!(
        certificate(app, first_id).await["status"],
        "valid",
        "the replaced certificate is not revoked"
    );
    assert_eq!(
        pebble.cert_status(&serial_hex(fullchain(&first))).await["Status"],
        "Valid",
        "nor is it revoked at the CA"
    );

    // From now on the new certificate is the one asked about, and it is not due.
    let second_ari = ari_certificate_id(fullchain(&second));
    assert_ne!(second_ari, first_ari, "a new certificate has a new id");
    let second_ari = &second_ari;
    let asked = eventually("renewalInfo for the new certificate", move || async move {
        let asked = proxy.renewal_info_requests();
        asked.contains(second_ari).then_some(asked)
    })
    .await;
    let switch = asked.iter().position(|id| id == second_ari).expect("found");
    assert!(
        asked[..switch].iter().all(|id| *id == first_ari)
            && asked[switch..].iter().all(|id| id == second_ari),
        "the old certificate's id, then only the new one's: {asked:?}"
    );
    tokio::time::sleep(Duration::from_secs(2 * RETRY_AFTER_SECS)).await;
    assert_eq!(
        proxy.new_orders().len(),
        2,
        "the new certificate's window is ahead: no further order"
    );
}
