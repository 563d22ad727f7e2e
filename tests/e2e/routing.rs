//! DNS provider instances chosen by configuration, through the whole service: the real
//! application started from a TOML configuration, orders placed over the REST API,
//! Route53 on moto (or a stub for refusals), Cloudflare on a v4 API stub, and Pebble.
//!
//! moto emulates Route53's API but serves no DNS, and the Cloudflare stub serves none
//! either, so nobody can look the TXT records up: these tests start Pebble with
//! `PEBBLE_VA_ALWAYS_VALID=1` (it skips validation) and skip the propagation check (for the
//! Route53 instance by `dns.propagation.skip_providers`, elsewhere altogether).
//! The records are proven by what each backend received and holds instead: moto's
//! request recording and record sets, the stub's requests and state. Real DNS-01
//! validation is covered by the BIND tests in `dns01.rs`.

use crate::harness::app::TestApp;
use crate::harness::cloudflare::{cloudflare_stub, CloudflareState, CF_TOKEN};
use crate::harness::moto::{self, Moto, RecordChange};
use crate::harness::pebble::{free_tcp_port, Pebble, PebbleOptions};
use crate::harness::verify_chain;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A Pebble that marks every challenge valid without looking (see the module docs).
async fn always_valid_pebble() -> Pebble {
    Pebble::start(
        PebbleOptions {
            // Unused by DNS-01, but Pebble's configuration needs one.
            http_port: free_tcp_port(),
            ..PebbleOptions::default()
        }
        .env("PEBBLE_VA_ALWAYS_VALID", "1"),
    )
    .await
}

/// A TOML basic string.
fn toml(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// The settings of a `kind = "route53"` instance talking to `endpoint` with moto's keys.
fn route53_keys(endpoint: &str) -> String {
    format!(
        "region = {}\nendpoint_url = {}\naccess_key_id = {}\nsecret_access_key = {}\n",
        toml(moto::REGION),
        toml(endpoint),
        toml(moto::ACCESS_KEY),
        toml(moto::SECRET_KEY),
    )
}

/// The record names of `changes` (without a trailing dot), each once.
fn changed_names(changes: &[RecordChange]) -> BTreeSet<String> {
    changes
        .iter()
        .map(|c| c.name.trim_end_matches('.').to_owned())
        .collect()
}

/// The actions sent for `name`, in order.
fn actions_on(changes: &[RecordChange], name: &str) -> Vec<String> {
    changes
        .iter()
        .filter(|c| c.name.trim_end_matches('.') == name)
        .map(|c| c.action.clone())
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn a_route53_order_through_the_api_is_issued_and_leaves_no_txt_record_in_moto() {
    let (moto, pebble) = tokio::join!(Moto::start_recording(), always_valid_pebble());
    let moto = moto.expect("moto starts");
    let zone = moto.create_zone("example.test").await.expect("hosted zone");
    let app = TestApp::spawn(
        &pebble,
        &format!(
            r#"
[dns]
default = "route53"

[dns.providers.route53]
kind = "route53"
{keys}

[dns.propagation]
# moto serves no DNS: this instance's records cannot be checked (see the module docs).
skip_providers = ["route53"]
"#,
            keys = route53_keys(&moto.url()),
        ),
    )
    .await;
    let account = app.account(&pebble, "route53@example.test").await;

    // A wildcard and its apex: two values on one name, kept together in one TXT set.
    let domains = ["example.test", "*.example.test"];
    let id = app
        .create_order(&json!({
            "domains": domains, "account": account, "type": "dns", "provider": "route53"
        }))
        .await;
    let order = app.finished_order(id).await;
    assert_eq!(
        order["status"], "valid",
        "the order should be issued; its error: {}",
        order["error"]
    );
    assert_eq!(order["provider"], "route53", "the order names its provider");
    assert_eq!(order["error"], Value::Null, "a valid order has no error");

    let cert_id = order["resolved_cert_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("a valid order names its certificate: {order}"));
    let certificate = app.get(&format!("/api/certificate/{cert_id}")).await;
    assert_eq!(certificate.status, 200, "{:?}", certificate.body);
    verify_chain(
        certificate.body["fullchain"]
            .as_str()
            .expect("the certificate has a fullchain"),
        &pebble.root_pem().await,
        &domains.map(str::to_owned),
    );

    // The provider really wrote: moto received both values on the one name, and then
    // the removals.
    let name = "_acme-challenge.example.test";
    let changes = moto.changes();
    assert_eq!(
        changed_names(&changes),
        names(&[name]),
        "only the challenge name is changed: {changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|c| c.action == "UPSERT" && c.values.len() == 2),
        "the apex and wildcard values are written together into one set: {changes:?}"
    );
    assert!(
        changes
            .iter()
            .flat_map(|c| &c.values)
            .all(|v| v.starts_with('"') && v.ends_with('"')),
        "Route53 TXT values go out quoted: {changes:?}"
    );
    assert_eq!(
        actions_on(&changes, name).last().map(String::as_str),
        Some("DELETE"),
        "the last change removes the set: {changes:?}"
    );
    assert_eq!(
        moto.txt_sets(&zone).await,
        Vec::<(String, Vec<String>)>::new(),
        "no TXT record is left in the hosted zone after the order"
    );
}

#[tokio::test]
async fn orders_are_routed_to_the_provider_instance_they_name() {
    let (main, other, pebble) = tokio::join!(
        Moto::start_recording(),
        Moto::start_recording(),
        always_valid_pebble()
    );
    let (main, other) = (main.expect("moto starts"), other.expect("moto starts"));
    // Every backend holds `example.test`, so only the instance an order names decides
    // where its record goes.
    let (main_zone, other_zone) = tokio::join!(
        main.create_zone("example.test"),
        other.create_zone("example.test")
    );
    let (main_zone, other_zone) = (
        main_zone.expect("hosted zone"),
        other_zone.expect("hosted zone"),
    );
    let cloudflare = CloudflareState::default();
    let stub = cloudflare_stub(cloudflare.clone()).await;

    let app = TestApp::spawn(
        &pebble,
        &format!(
            r#"
[dns]
default = "aws-main"

# Zone found by walking up the name.
[dns.providers.aws-main]
kind = "route53"
{main_keys}

# Zone given by id.
[dns.providers.aws-other]
kind = "route53"
{other_keys}hosted_zone_id = {other_zone}

[dns.providers.cf]
kind = "cloudflare"
api_token = {token}
base_url = {base_url}

[dns.propagation]
# No backend serves DNS (see the module docs).
enabled = false
"#,
            main_keys = route53_keys(&main.url()),
            other_keys = route53_keys(&other.url()),
            other_zone = toml(&other_zone),
            token = toml(CF_TOKEN),
            base_url = toml(&format!("{}/client/v4/", stub.uri())),
        ),
    )
    .await;
    let account = app.account(&pebble, "routing@example.test").await;

    // (name, provider asked for, instance expected)
    let cases = [
        ("a.example.test", Some("aws-main"), "aws-main"),
        ("b.example.test", Some("aws-other"), "aws-other"),
        ("c.example.test", Some("cf"), "cf"),
        ("d.example.test", None, "aws-main"),
    ];
    let mut ids = Vec::new();
    for (domain, provider, _) in cases {
        let mut body = json!({"domains": [domain], "account": account, "type": "dns"});
        if let Some(provider) = provider {
            body["provider"] = json!(provider);
        }
        ids.push(app.create_order(&body).await);
    }

    let unknown = app
        .post(
            "/api/order",
            &json!({"domains": ["e.example.test"], "account": account, "type": "dns", "provider": "gandi"}),
        )
        .await;
    assert_eq!(
        unknown.status, 400,
        "an unknown provider is a bad request: {:?}",
        unknown.body
    );
    let reason = unknown.body["status"]
        .as_str()
        .unwrap_or_else(|| panic!("a 400 carries a status reason: {:?}", unknown.body));
    for name in ["gandi", "aws-main", "aws-other", "cf"] {
        assert!(
            reason.contains(name),
            "the reason names `{name}` (the unknown one and every known one): {reason}"
        );
    }

    for ((domain, _, instance), id) in cases.iter().zip(&ids) {
        let order = app.finished_order(*id).await;
        assert_eq!(
            order["status"], "valid",
            "the order for {domain} should be issued; its error: {}",
            order["error"]
        );
        assert_eq!(
            order["provider"], *instance,
            "the order for {domain} runs on instance {instance}"
        );
    }
    let listed = app.get("/api/order").await;
    assert_eq!(
        listed.body.as_object().map(serde_json::Map::len),
        Some(cases.len()),
        "the refused order was not stored: {:?}",
        listed.body
    );

    let main_changes = main.changes();
    assert_eq!(
        changed_names(&main_changes),
        names(&[
            "_acme-challenge.a.example.test",
            "_acme-challenge.d.example.test"
        ]),
        "aws-main got the order naming it and the one without a provider (the default): {main_changes:?}"
    );
    let other_changes = other.changes();
    assert_eq!(
        changed_names(&other_changes),
        names(&["_acme-challenge.b.example.test"]),
        "aws-other got only the order naming it: {other_changes:?}"
    );
    for (changes, name) in [
        (&main_changes, "_acme-challenge.a.example.test"),
        (&main_changes, "_acme-challenge.d.example.test"),
        (&other_changes, "_acme-challenge.b.example.test"),
    ] {
        assert_eq!(
            actions_on(changes, name),
            vec!["UPSERT", "DELETE"],
            "{name}: the value is written, then removed"
        );
    }

    let requests = stub.received_requests().await.expect("recorded requests");
    let created: Vec<Value> = requests
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
        .collect();
    assert_eq!(
        created.len(),
        1,
        "Cloudflare got exactly one record: {created:?}"
    );
    let content = created[0]["content"]
        .as_str()
        .expect("the record has content");
    assert_eq!(
        created[0],
        json!({"type": "TXT", "name": "_acme-challenge.c.example.test", "content": content, "ttl": 120}),
        "the record created at Cloudflare is the challenge of the order naming `cf`"
    );
    assert_eq!(
        content.len(),
        43,
        "the content is an ACME DNS-01 value (43 characters of base64url): {content}"
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.method.as_str() == "DELETE")
            .count(),
        1,
        "the Cloudflare record is deleted by id afterwards"
    );
    assert!(
        requests.iter().all(
            |r| r.headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(format!("Bearer {CF_TOKEN}").as_str())
        ),
        "every Cloudflare request carries the configured token"
    );

    assert_eq!(
        main.txt_sets(&main_zone).await,
        Vec::<(String, Vec<String>)>::new(),
        "no TXT left at aws-main"
    );
    assert_eq!(
        other.txt_sets(&other_zone).await,
        Vec::<(String, Vec<String>)>::new(),
        "no TXT left at aws-other"
    );
    assert_eq!(cloudflare.all(), Vec::new(), "no TXT left at Cloudflare");
}

const R53_NS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

/// A Route53 stub for zone `ZDENIED` whose record sets can be read but whose
/// `ChangeResourceRecordSets` answers AccessDenied, as AWS does for an IAM policy that
/// lacks `route53:ChangeResourceRecordSets`.
async fn route53_denying_changes() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/2013-04-01/hostedzone/ZDENIED/rrset"))
        .respond_with(ResponseTemplate::new(200).insert_header("content-type", "text/xml").set_body_string(format!(
            r#"<?xml version="1.0"?><ListResourceRecordSetsResponse xmlns="{R53_NS}"><ResourceRecordSets></ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>1</MaxItems></ListResourceRecordSetsResponse>"#
        )))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/2013-04-01/hostedzone/ZDENIED/rrset/?$"))
        .respond_with(ResponseTemplate::new(403).insert_header("content-type", "text/xml").set_body_string(format!(
            r#"<?xml version="1.0"?><ErrorResponse xmlns="{R53_NS}"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/acmeport is not authorized to perform: route53:ChangeResourceRecordSets on resource: arn:aws:route53:::hostedzone/ZDENIED because no identity-based policy allows the route53:ChangeResourceRecordSets action</Message></Error><RequestId>stub</RequestId></ErrorResponse>"#
        )))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_permanent_route53_error_fails_the_order_with_a_readable_reason() {
    let (moto, pebble, denying) = tokio::join!(
        Moto::start(),
        always_valid_pebble(),
        route53_denying_changes()
    );
    let moto = moto.expect("moto starts");
    moto.create_zone("example.test").await.expect("hosted zone");
    let app = TestApp::spawn(
        &pebble,
        &format!(
            r#"
[dns]
default = "denied"

[dns.providers.denied]
kind = "route53"
{denied_keys}hosted_zone_id = "ZDENIED"

[dns.providers.aws]
kind = "route53"
{aws_keys}

[dns.propagation]
enabled = false
"#,
            denied_keys = route53_keys(&denying.uri()),
            aws_keys = route53_keys(&moto.url()),
        ),
    )
    .await;
    let account = app.account(&pebble, "denied@example.test").await;

    let denied = app
        .create_order(&json!({
            "domains": ["www.example.test"], "account": account, "type": "dns", "provider": "denied"
        }))
        .await;
    // moto holds `example.test` only.
    let no_zone = app
        .create_order(&json!({
            "domains": ["www.nozone.test"], "account": account, "type": "dns", "provider": "aws"
        }))
        .await;

    let order = app.finished_order(denied).await;
    assert_eq!(
        order["status"], "invalid",
        "AccessDenied fails the order: {order}"
    );
    assert_eq!(order["resolved_cert_id"], Value::Null);
    let error = order["error"]
        .as_str()
        .unwrap_or_else(|| panic!("a failed order says why: {order}"));
    assert!(
        error.contains("AccessDenied")
            && error.contains("not authorized to perform: route53:ChangeResourceRecordSets"),
        "the reason carries Route53's code and message: {error}"
    );
    assert!(
        !error.contains(moto::SECRET_KEY),
        "the secret key never shows: {error}"
    );
    let requests = denying
        .received_requests()
        .await
        .expect("recorded requests");
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.method.as_str() == "POST")
            .count(),
        1,
        "a permanent refusal is not retried: {:?}",
        requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.url))
            .collect::<Vec<_>>()
    );

    let order = app.finished_order(no_zone).await;
    assert_eq!(
        order["status"], "invalid",
        "a name outside every hosted zone fails the order: {order}"
    );
    let error = order["error"]
        .as_str()
        .unwrap_or_else(|| panic!("a failed order says why: {order}"));
    assert!(
        error.contains("no zone found") && error.contains("_acme-challenge.www.nozone.test"),
        "the reason says no hosted zone holds the name: {error}"
    );
}
