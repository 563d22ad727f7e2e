//! DNS providers against their real peers: one contract suite run against RFC 2136 on
//! BIND 9, Route53 on moto and Cloudflare on a local v4 API stub; Route53 retries and
//! refusals on a stub; the propagation checker against BIND.

use crate::harness::bind::{Bind, Zone, KEY_NAME};
use crate::harness::cloudflare::{
    cf_error, cf_ok, cloudflare_stub, CloudflareState, CF_TOKEN, CF_ZONE,
};
use crate::harness::init_crypto;
use crate::harness::moto::{self, Moto};
use acmeport_cloudflare::{CloudflareProvider, CloudflareSettings};
use acmeport_dns_check::{HickoryPropagationChecker, PropagationSettings};
use acmeport_domain::ports::{DnsError, DnsProvider, PropagationChecker};
use acmeport_domain::{Secret, TxtRecord};
use acmeport_rfc2136::{Rfc2136Provider, Rfc2136Settings};
use acmeport_route53::{Route53Provider, Route53Settings, StaticCredentials};
use async_trait::async_trait;
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

// ---------------------------------------------------------------------------------------
// The contract

/// Reads what a provider wrote, straight from its backend.
#[async_trait]
pub(crate) trait Backend: Sync {
    /// The TXT values on `name`, sorted.
    async fn values(&self, name: &str) -> Vec<String>;
}

/// Two ACME-like values (43 characters of base64url) for one name, as a wildcard and its
/// apex produce.
pub(crate) fn values() -> (String, String) {
    (
        "wildcardVALUE_0123456789abcdefghijklmnopqrs".to_owned(),
        "apexVALUE-0123456789abcdefghijklmnopqrstuvw".to_owned(),
    )
}

/// What `cleanup` does on a provider's backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// It removes exactly its value.
    Exact,
    /// The backend has no delete and keeps the two most recent values (acme-dns):
    /// cleanup leaves the values, and newer values push older ones out.
    RollsOver,
}

/// Every [`DnsProvider`] must pass this: values add up, presenting twice changes nothing,
/// cleanup removes only its value, and cleaning up what is gone succeeds. Prints how long
/// the run took, labelled `kind`.
pub(crate) async fn provider_contract(
    kind: &str,
    provider: &dyn DnsProvider,
    backend: &dyn Backend,
    name: &str,
) {
    provider_contract_with(kind, provider, backend, name, Removal::Exact).await;
}

/// [`provider_contract`] for a backend whose removal works as `removal` says.
pub(crate) async fn provider_contract_with(
    kind: &str,
    provider: &dyn DnsProvider,
    backend: &dyn Backend,
    name: &str,
    removal: Removal,
) {
    let started = std::time::Instant::now();
    if removal == Removal::Exact {
        exact_removal_contract(provider, backend, name).await;
    } else {
        rolling_contract(provider, backend, name).await;
    }
    eprintln!(
        "provider contract: {kind}: {} ms",
        started.elapsed().as_millis()
    );
}

/// Errors carry the provider's reason: presenting through a provider that its server
/// refuses (wrong credentials) fails as a refusal whose text holds `reason`, and nothing
/// is written.
pub(crate) async fn refusal_contract(
    provider: &dyn DnsProvider,
    backend: &dyn Backend,
    name: &str,
    reason: &str,
) {
    let record = TxtRecord::new(name, values().0);
    let err = provider
        .present(&record)
        .await
        .expect_err("the server refuses this provider");
    assert!(
        matches!(err, DnsError::Unauthorized(_) | DnsError::Rejected(_)),
        "a refusal is Unauthorized or Rejected, not {err:?}"
    );
    assert!(
        err.to_string().contains(reason),
        "the error carries the provider's reason {reason:?}: {err}"
    );
    assert!(
        backend.values(name).await.is_empty(),
        "a refused present writes nothing"
    );
}

/// Two values, present twice, then a rolling backend: cleanup changes nothing, newer
/// values replace the oldest.
async fn rolling_contract(provider: &dyn DnsProvider, backend: &dyn Backend, name: &str) {
    let (a, b) = values();
    let record_a = TxtRecord::new(name, a.clone());
    let record_b = TxtRecord::new(name, b.clone());
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    provider.present(&record_a).await.expect("present a value");
    assert_eq!(backend.values(name).await, vec![a.clone()]);
    provider
        .present(&record_b)
        .await
        .expect("present a second value");
    assert_eq!(backend.values(name).await, both, "both values are served");
    provider
        .present(&record_a)
        .await
        .expect("present the same value twice");
    assert_eq!(
        backend.values(name).await,
        both,
        "presenting again neither duplicates nor drops values"
    );
    provider.cleanup(&record_a).await.expect("cleanup succeeds");
    provider
        .cleanup(&record_a)
        .await
        .expect("cleanup of a value already cleaned up succeeds");
    assert_eq!(
        backend.values(name).await,
        both,
        "cleanup touches nothing: the backend has no delete"
    );
    let c = "rolledVALUE-c123456789abcdefghijklmnopqrstu".to_owned();
    let d = "rolledVALUE-d123456789abcdefghijklmnopqrstu".to_owned();
    provider
        .present(&TxtRecord::new(name, c.clone()))
        .await
        .expect("present a third value");
    provider
        .present(&TxtRecord::new(name, d.clone()))
        .await
        .expect("present a fourth value");
    assert_eq!(
        backend.values(name).await,
        vec![c, d],
        "the two newest values are served; older ones rolled out"
    );
}

async fn exact_removal_contract(provider: &dyn DnsProvider, backend: &dyn Backend, name: &str) {
    let (a, b) = values();
    let record_a = TxtRecord {
        name: name.to_owned(),
        value: a.clone(),
    };
    let record_b = TxtRecord {
        name: name.to_owned(),
        value: b.clone(),
    };
    let mut both = vec![a.clone(), b.clone()];
    both.sort();

    provider
        .present(&record_a)
        .await
        .expect("presenting a value succeeds");
    assert_eq!(
        backend.values(name).await,
        vec![a.clone()],
        "after presenting one value, exactly that value is served"
    );

    provider
        .present(&record_b)
        .await
        .expect("presenting a second value on the same name succeeds");
    assert_eq!(
        backend.values(name).await,
        both,
        "a second value on the same name is kept next to the first"
    );

    provider
        .present(&record_a)
        .await
        .expect("presenting the same value twice succeeds");
    assert_eq!(
        backend.values(name).await,
        both,
        "presenting a value again neither duplicates nor drops values"
    );

    provider
        .cleanup(&record_a)
        .await
        .expect("cleaning up one value succeeds");
    assert_eq!(
        backend.values(name).await,
        vec![b.clone()],
        "cleanup removes only its own value; the other stays"
    );

    provider
        .cleanup(&record_a)
        .await
        .expect("cleaning up a value that is already gone succeeds");
    assert_eq!(
        backend.values(name).await,
        vec![b.clone()],
        "cleaning up an absent value changes nothing"
    );

    provider
        .cleanup(&record_b)
        .await
        .expect("cleaning up the last value succeeds");
    assert!(
        backend.values(name).await.is_empty(),
        "after both cleanups no TXT value is left on {name}"
    );
}

// ---------------------------------------------------------------------------------------
// RFC 2136 on BIND

struct BindBackend<'a>(&'a Bind);

#[async_trait]
impl Backend for BindBackend<'_> {
    async fn values(&self, name: &str) -> Vec<String> {
        self.0.txt(name).await
    }
}

fn rfc2136(bind: &Bind, secret: &str) -> Rfc2136Provider {
    let mut settings = Rfc2136Settings::new(bind.addr(), KEY_NAME, Secret::new(secret));
    settings.timeout = Duration::from_secs(5);
    Rfc2136Provider::new(settings).expect("valid RFC 2136 settings")
}

#[tokio::test]
async fn rfc2136_passes_the_provider_contract_on_bind() {
    let bind = Bind::start().await.expect("BIND starts");
    let provider = rfc2136(&bind, bind.secret());
    let name = "_acme-challenge.www.example.test";
    provider_contract("rfc2136 (BIND)", &provider, &BindBackend(&bind), name).await;
    // A valid base64 HMAC key that is not the server's.
    let wrong = rfc2136(&bind, "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nISE=");
    refusal_contract(&wrong, &BindBackend(&bind), name, "BADSIG").await;
}

#[tokio::test]
async fn rfc2136_finds_the_zone_of_a_name_that_does_not_exist_yet() {
    let bind = Bind::start().await.expect("BIND starts");
    let provider = rfc2136(&bind, bind.secret());
    // `ns1` exists, so the zone's wildcard does not cover names below it: the SOA query
    // for this name is answered NXDOMAIN, with the SOA in the authority section.
    let record = TxtRecord {
        name: "_acme-challenge.ns1.example.test".to_owned(),
        value: "nx".to_owned(),
    };
    provider
        .present(&record)
        .await
        .expect("the zone is found from an NXDOMAIN answer");
    assert_eq!(bind.txt(&record.name).await, vec!["nx".to_owned()]);
}

#[tokio::test]
async fn rfc2136_with_a_configured_zone_writes_into_it() {
    let bind = Bind::start().await.expect("BIND starts");
    let mut settings = Rfc2136Settings::new(bind.addr(), KEY_NAME, Secret::new(bind.secret()));
    settings.zone = Some("example.test".to_owned());
    let provider = Rfc2136Provider::new(settings).expect("valid settings");
    let record = TxtRecord {
        name: "_acme-challenge.example.test".to_owned(),
        value: "apex".to_owned(),
    };
    provider
        .present(&record)
        .await
        .expect("present at the zone apex");
    assert_eq!(bind.txt(&record.name).await, vec!["apex".to_owned()]);
    let outside = TxtRecord {
        name: "_acme-challenge.other.invalid".to_owned(),
        value: "x".to_owned(),
    };
    let err = provider
        .present(&outside)
        .await
        .expect_err("a name outside the zone is refused");
    assert!(
        matches!(err, DnsError::ZoneNotFound(_)),
        "expected ZoneNotFound, got {err:?}"
    );
}

#[tokio::test]
async fn rfc2136_with_a_wrong_secret_is_rejected_naming_badsig() {
    let bind = Bind::start().await.expect("BIND starts");
    // A valid base64 HMAC key that is not the server's.
    let provider = rfc2136(&bind, "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nISE=");
    let record = TxtRecord {
        name: "_acme-challenge.www.example.test".to_owned(),
        value: "v".to_owned(),
    };
    let err = provider
        .present(&record)
        .await
        .expect_err("an update signed with the wrong secret fails");
    let DnsError::Unauthorized(reason) = &err else {
        panic!(
            "expected DnsError::Unauthorized, got {err:?}; named's log:\n{}",
            bind.log()
        );
    };
    assert!(
        reason.contains("NOTAUTH") && reason.contains("BADSIG"),
        "the reason names NOTAUTH and BADSIG: {reason}"
    );
    assert!(
        !reason.contains("d3Jvbmd3"),
        "the secret must not appear in errors: {reason}"
    );
    assert!(
        bind.txt(&record.name).await.is_empty(),
        "nothing was written"
    );
}

#[tokio::test]
async fn rfc2136_with_an_unknown_key_is_rejected_naming_badkey() {
    let bind = Bind::start().await.expect("BIND starts");
    let settings = Rfc2136Settings::new(bind.addr(), "nobody", Secret::new(bind.secret()));
    let provider = Rfc2136Provider::new(settings).expect("valid settings");
    let record = TxtRecord {
        name: "_acme-challenge.www.example.test".to_owned(),
        value: "v".to_owned(),
    };
    let err = provider
        .present(&record)
        .await
        .expect_err("an update with an unknown key fails");
    let DnsError::Unauthorized(reason) = &err else {
        panic!("expected DnsError::Unauthorized, got {err:?}");
    };
    assert!(
        reason.contains("BADKEY") && reason.contains("nobody"),
        "the reason names BADKEY and the key: {reason}"
    );
}

#[tokio::test]
async fn rfc2136_debug_output_hides_the_secret() {
    let bind = Bind::start().await.expect("BIND starts");
    let provider = rfc2136(&bind, bind.secret());
    let debug = format!("{provider:?}");
    assert!(
        !debug.contains(bind.secret()),
        "the TSIG secret leaked into Debug: {debug}"
    );
    assert!(
        debug.contains(KEY_NAME),
        "Debug still names the key: {debug}"
    );
}

// ---------------------------------------------------------------------------------------
// Route53 on moto

struct MotoBackend<'a> {
    moto: &'a Moto,
    zone_id: String,
}

#[async_trait]
impl Backend for MotoBackend<'_> {
    async fn values(&self, name: &str) -> Vec<String> {
        self.moto.txt(&self.zone_id, name).await
    }
}

fn route53_settings(endpoint: String) -> Route53Settings {
    Route53Settings {
        region: Some(moto::REGION.to_owned()),
        endpoint_url: Some(endpoint),
        credentials: Some(StaticCredentials {
            access_key_id: moto::ACCESS_KEY.to_owned(),
            secret_access_key: Secret::new(moto::SECRET_KEY),
            session_token: None,
        }),
        insync_poll: Duration::from_millis(50),
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        ..Route53Settings::default()
    }
}

#[tokio::test]
async fn route53_passes_the_provider_contract_on_moto() {
    init_crypto();
    let moto = Moto::start().await.expect("moto starts");
    // A decoy zone further up proves the walk takes the closest enclosing zone.
    moto.create_zone("test").await.expect("decoy zone");
    let zone_id = moto.create_zone("example.test").await.expect("hosted zone");
    let provider = Route53Provider::new(route53_settings(moto.url())).await;
    let debug = format!("{provider:?}");
    assert!(
        !debug.contains(moto::SECRET_KEY),
        "the secret key leaked into Debug: {debug}"
    );
    let backend = MotoBackend {
        moto: &moto,
        zone_id,
    };
    provider_contract(
        "route53 (moto)",
        &provider,
        &backend,
        "_acme-challenge.www.example.test",
    )
    .await;
}

#[tokio::test]
async fn route53_without_a_matching_zone_reports_zone_not_found() {
    init_crypto();
    let moto = Moto::start().await.expect("moto starts");
    moto.create_zone("example.test").await.expect("hosted zone");
    let provider = Route53Provider::new(route53_settings(moto.url())).await;
    let record = TxtRecord {
        name: "_acme-challenge.www.elsewhere.invalid".to_owned(),
        value: "v".to_owned(),
    };
    let err = provider
        .present(&record)
        .await
        .expect_err("no zone for the name");
    assert!(
        matches!(err, DnsError::ZoneNotFound(_)),
        "expected ZoneNotFound, got {err:?}"
    );
}

const R53_NS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

fn r53_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).insert_header("content-type", "text/xml").set_body_string(format!(
        r#"<?xml version="1.0"?><ErrorResponse xmlns="{R53_NS}"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>stub</RequestId></ErrorResponse>"#
    ))
}

fn r53_xml(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/xml")
        .set_body_string(body)
}

/// A Route53 stub for zone `ZSTUB` with no record sets, whose changes complete.
async fn route53_stub() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/2013-04-01/hostedzone/ZSTUB/rrset"))
        .respond_with(r53_xml(format!(
            r#"<?xml version="1.0"?><ListResourceRecordSetsResponse xmlns="{R53_NS}"><ResourceRecordSets></ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>1</MaxItems></ListResourceRecordSetsResponse>"#
        )))
        .mount(&server)
        .await;
    server
}

fn change_info(root: &str, status: &str) -> ResponseTemplate {
    r53_xml(format!(
        r#"<?xml version="1.0"?><{root} xmlns="{R53_NS}"><ChangeInfo><Id>/change/C1</Id><Status>{status}</Status><SubmittedAt>2026-01-01T00:00:00Z</SubmittedAt></ChangeInfo></{root}>"#
    ))
}

fn stub_settings(server: &MockServer) -> Route53Settings {
    Route53Settings {
        hosted_zone_id: Some("ZSTUB".to_owned()),
        ..route53_settings(server.uri())
    }
}

fn count(requests: &[Request], verb: &str, path_pattern: &str) -> usize {
    let re = regex_lite(path_pattern);
    requests
        .iter()
        .filter(|r| r.method.as_str() == verb && re(r.url.path()))
        .count()
}

/// A tiny matcher for the two path shapes used here (wiremock's regex is for mounting).
fn regex_lite(pattern: &str) -> impl Fn(&str) -> bool + '_ {
    move |p: &str| p.trim_end_matches('/') == pattern.trim_end_matches('/')
}

#[tokio::test]
async fn route53_retries_throttling_5xx_and_prior_request_then_succeeds() {
    init_crypto();
    let server = route53_stub().await;
    // Two Throttling answers, then success; one 503 on GetChange, then INSYNC.
    Mock::given(method("POST"))
        .and(path_regex(r"^/2013-04-01/hostedzone/ZSTUB/rrset/?$"))
        .respond_with(r53_error(400, "Throttling", "Rate exceeded"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    // Then PriorRequestNotComplete, which the SDK also counts as throttling.
    Mock::given(method("POST"))
        .and(path_regex(r"^/2013-04-01/hostedzone/ZSTUB/rrset/?$"))
        .respond_with(r53_error(
            400,
            "PriorRequestNotComplete",
            "The request was rejected because Route 53 was still processing a prior request.",
        ))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/2013-04-01/hostedzone/ZSTUB/rrset/?$"))
        .respond_with(change_info("ChangeResourceRecordSetsResponse", "PENDING"))
        .with_priority(3)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/2013-04-01/change/C1"))
        .respond_with(r53_error(503, "ServiceUnavailable", "try again"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/2013-04-01/change/C1"))
        .respond_with(change_info("GetChangeResponse", "INSYNC"))
        .with_priority(2)
        .mount(&server)
        .await;

    let provider = Route53Provider::new(stub_settings(&server)).await;
    let record = TxtRecord {
        name: "_acme-challenge.example.test".to_owned(),
        value: "v".to_owned(),
    };
    provider
        .present(&record)
        .await
        .expect("throttling and a 503 are retried until the change succeeds");

    let requests = server.received_requests().await.expect("recorded requests");
    assert_eq!(
        count(&requests, "GET", "/2013-04-01/hostedzone/ZSTUB/rrset"),
        1,
        "the SDK resends the same change; the set is read once"
    );
    assert_eq!(
        count(&requests, "POST", "/2013-04-01/hostedzone/ZSTUB/rrset"),
        4,
        "two throttled changes, one prior-request refusal and one accepted"
    );
    assert_eq!(
        count(&requests, "GET", "/2013-04-01/change/C1"),
        2,
        "one 503 and one INSYNC"
    );
    let post = requests
        .iter()
        .find(|r| r.method.as_str() == "POST")
        .expect("a change was sent");
    let body = String::from_utf8_lossy(&post.body);
    assert!(
        body.contains("<Action>UPSERT</Action>")
            && (body.contains("<Value>&quot;v&quot;</Value>")
                || body.contains("<Value>\"v\"</Value>")),
        "the change UPSERTs the quoted value: {body}"
    );
}

#[tokio::test]
async fn route53_permanent_errors_are_rejected_with_the_reason_and_not_retried() {
    init_crypto();
    let server = route53_stub().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/2013-04-01/hostedzone/ZSTUB/rrset/?$"))
        .respond_with(r53_error(
            400,
            "InvalidInput",
            "Invalid XML ; cvc-pattern-valid",
        ))
        .mount(&server)
        .await;
    let provider = Route53Provider::new(stub_settings(&server)).await;
    let record = TxtRecord {
        name: "_acme-challenge.example.test".to_owned(),
        value: "v".to_owned(),
    };
    let err = provider
        .present(&record)
        .await
        .expect_err("InvalidInput is permanent");
    let DnsError::Rejected(reason) = &err else {
        panic!("expected DnsError::Rejected, got {err:?}");
    };
    assert!(
        reason.contains("InvalidInput") && reason.contains("cvc-pattern-valid"),
        "the reason carries Route53's code and message: {reason}"
    );
    let requests = server.received_requests().await.expect("recorded requests");
    assert_eq!(
        count(&requests, "POST", "/2013-04-01/hostedzone/ZSTUB/rrset"),
        1,
        "a permanent error is not retried"
    );
}

/// Users read provider errors in their orders: the reason stays, the operator's account
/// id, ARNs and zone ids go.
#[tokio::test]
async fn route53_errors_name_no_zone_ids_on_moto() {
    init_crypto();
    let moto = Moto::start().await.expect("moto starts");
    let missing = "Z0123456789ABCDEFGHIJ";
    let provider = Route53Provider::new(Route53Settings {
        hosted_zone_id: Some(missing.to_owned()),
        ..route53_settings(moto.url())
    })
    .await;
    let record = TxtRecord {
        name: "_acme-challenge.www.example.test".to_owned(),
        value: "v".to_owned(),
    };
    let err = provider
        .present(&record)
        .await
        .expect_err("the configured zone does not exist");
    let text = err.to_string();
    assert!(
        matches!(err, DnsError::ZoneNotFound(_)) && text.contains("NoSuchHostedZone"),
        "the reason stays: {err:?}"
    );
    assert!(!text.contains(missing), "the zone id must not show: {text}");
}

#[tokio::test]
async fn route53_errors_name_no_account_ids_or_arns() {
    init_crypto();
    let server = route53_stub().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/2013-04-01/hostedzone/ZSTUB/rrset/?$"))
        .respond_with(r53_error(
            403,
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/acmeport is not authorized to perform: \
             route53:ChangeResourceRecordSets on resource: \
             arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ because no identity-based \
             policy allows the route53:ChangeResourceRecordSets action",
        ))
        .mount(&server)
        .await;
    let provider = Route53Provider::new(stub_settings(&server)).await;
    let record = TxtRecord {
        name: "_acme-challenge.example.test".to_owned(),
        value: "v".to_owned(),
    };
    let err = provider
        .present(&record)
        .await
        .expect_err("access is denied");
    let DnsError::Unauthorized(reason) = &err else {
        panic!("expected DnsError::Unauthorized, got {err:?}");
    };
    assert!(
        reason.contains("AccessDenied") && reason.contains("is not authorized to perform"),
        "the reason stays: {reason}"
    );
    for secret in ["123456789012", "arn:", "Z0123456789ABCDEFGHIJ"] {
        assert!(!reason.contains(secret), "{secret} must not show: {reason}");
    }
}

// ---------------------------------------------------------------------------------------
// Cloudflare on a v4 API stub

struct StubBackend(CloudflareState);

#[async_trait]
impl Backend for StubBackend {
    async fn values(&self, name: &str) -> Vec<String> {
        self.0.values(name)
    }
}

fn cloudflare(server: &MockServer, token: &str) -> CloudflareProvider {
    let mut settings = CloudflareSettings::new(Secret::new(token));
    // No trailing slash on purpose: the provider adds it.
    settings.base_url = Some(format!("{}/client/v4", server.uri()));
    CloudflareProvider::new(settings).expect("valid Cloudflare settings")
}

#[tokio::test]
async fn cloudflare_passes_the_provider_contract_on_a_v4_stub() {
    init_crypto();
    let state = CloudflareState::default();
    let server = cloudflare_stub(state.clone()).await;
    let provider = cloudflare(&server, CF_TOKEN);
    let name = "_acme-challenge.www.example.test";
    provider_contract(
        "cloudflare (stub)",
        &provider,
        &StubBackend(state.clone()),
        name,
    )
    .await;

    let requests = server.received_requests().await.expect("recorded requests");
    let (a, b) = values();
    let bodies: Vec<Value> = requests
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| serde_json::from_slice(&r.body).expect("JSON body"))
        .collect();
    assert_eq!(
        bodies,
        vec![
            json!({"type": "TXT", "name": name, "content": a, "ttl": 120}),
            json!({"type": "TXT", "name": name, "content": b, "ttl": 120}),
        ],
        "exactly one create per new value, with these bodies"
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.method.as_str() == "DELETE")
            .count(),
        2,
        "one delete per value, none for the absent one"
    );
    assert!(
        requests.iter().all(
            |r| r.headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(format!("Bearer {CF_TOKEN}").as_str())
        ),
        "every request carries the bearer token"
    );
    let wrong = cloudflare(&server, "wrong-token");
    refusal_contract(&wrong, &StubBackend(state), name, "error 10000").await;
}

#[tokio::test]
async fn cloudflare_errors_carry_their_v4_codes() {
    init_crypto();
    let server = cloudflare_stub(CloudflareState::default()).await;
    let provider = cloudflare(&server, "wrong-token");
    let record = TxtRecord {
        name: "_acme-challenge.example.test".to_owned(),
        value: "v".to_owned(),
    };
    let err = provider
        .present(&record)
        .await
        .expect_err("a wrong token is refused");
    let DnsError::Unauthorized(reason) = &err else {
        panic!("expected DnsError::Unauthorized, got {err:?}");
    };
    assert!(
        reason.contains("10000") && reason.contains("403"),
        "the reason has the v4 code and status: {reason}"
    );
    assert!(
        !format!("{provider:?}").contains(CF_TOKEN) && !reason.contains("wrong-token"),
        "the token never shows"
    );

    let record = TxtRecord {
        name: "_acme-challenge.www.elsewhere.invalid".to_owned(),
        value: "v".to_owned(),
    };
    let provider = cloudflare(&server, CF_TOKEN);
    let err = provider
        .present(&record)
        .await
        .expect_err("no zone for the name");
    assert!(
        matches!(err, DnsError::ZoneNotFound(_)),
        "expected ZoneNotFound, got {err:?}"
    );
}

/// Users read provider errors in their orders: the reason and code stay, zone and
/// account ids and tokens go, for refusals and for temporary failures alike.
#[tokio::test]
async fn cloudflare_errors_name_no_zone_ids_account_ids_or_tokens() {
    init_crypto();
    let account = "9a7806061c88ada191ed06f989cc3dac";
    let token = "Yqx0Aa1bB2cC3dD4eE5fF6gG7hH8iI9j";
    for (status, kind) in [(400, "refused"), (502, "temporary")] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/client/v4/zones"))
            .respond_with(cf_ok(
                json!([{"id": CF_ZONE, "name": "example.test", "status": "active"}]),
            ))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/client/v4/zones/{CF_ZONE}/dns_records")))
            .respond_with(cf_ok(json!([])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/client/v4/zones/{CF_ZONE}/dns_records")))
            .respond_with(cf_error(
                status,
                1004,
                &format!(
                    "DNS Validation Error in zone {CF_ZONE} of account {account} (token \
                     {token})"
                ),
            ))
            .mount(&server)
            .await;
        let provider = cloudflare(&server, CF_TOKEN);
        let record = TxtRecord {
            name: "_acme-challenge.example.test".to_owned(),
            value: "v".to_owned(),
        };
        let err = provider
            .present(&record)
            .await
            .expect_err("Cloudflare refuses");
        let text = err.to_string();
        match (kind, &err) {
            ("refused", DnsError::Rejected(_)) | ("temporary", DnsError::Transport(_)) => {}
            _ => panic!("a {status} is {kind}, got {err:?}"),
        }
        assert!(
            text.contains("1004") && text.contains("DNS Validation Error"),
            "the reason stays: {text}"
        );
        for secret in [CF_ZONE, account, token, CF_TOKEN] {
            assert!(!text.contains(secret), "{secret} must not show: {text}");
        }
    }
}

#[tokio::test]
async fn cloudflare_dns_error_codes_above_65535_are_kept() {
    init_crypto();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/client/v4/zones"))
        .respond_with(cf_ok(json!([{"id": CF_ZONE, "name": "example.test"}])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/client/v4/zones/{CF_ZONE}/dns_records")))
        .respond_with(cf_ok(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/client/v4/zones/{CF_ZONE}/dns_records")))
        .respond_with(cf_error(400, 81057, "The record already exists."))
        .mount(&server)
        .await;
    let provider = cloudflare(&server, CF_TOKEN);
    let record = TxtRecord {
        name: "_acme-challenge.example.test".to_owned(),
        value: "v".to_owned(),
    };
    let err = provider
        .present(&record)
        .await
        .expect_err("the stub refuses the create");
    assert!(
        err.to_string().contains("81057"),
        "the DNS error code survives: {err}"
    );
}

// ---------------------------------------------------------------------------------------
// Propagation checks on BIND

fn checker(bind: &Bind) -> HickoryPropagationChecker {
    let mut settings = PropagationSettings::new(vec![bind.addr()]);
    settings.authoritative_port = bind.port();
    settings.query_timeout = Duration::from_secs(2);
    HickoryPropagationChecker::new(settings).expect("valid checker settings")
}

#[tokio::test]
async fn propagation_checker_reports_missing_nameservers_until_the_value_is_served() {
    let bind = Bind::start().await.expect("BIND starts");
    let checker = checker(&bind);
    let provider = rfc2136(&bind, bind.secret());
    let record = TxtRecord {
        name: "_acme-challenge.www.example.test".to_owned(),
        value: "propagated".to_owned(),
    };

    let missing = checker.missing(&record).await.expect("the check runs");
    assert_eq!(
        missing,
        vec!["ns1.example.test (127.0.0.1)".to_owned()],
        "before the update the zone's nameserver misses the value"
    );

    // Below `ns1` the wildcard does not apply: every lookup of this name is NXDOMAIN.
    let nx = TxtRecord {
        name: "_acme-challenge.ns1.example.test".to_owned(),
        value: "x".to_owned(),
    };
    assert_eq!(
        checker
            .missing(&nx)
            .await
            .expect("NXDOMAIN names are checked too"),
        vec!["ns1.example.test (127.0.0.1)".to_owned()],
        "the zone is found above a name that does not exist"
    );

    provider.present(&record).await.expect("present");
    let missing = checker.missing(&record).await.expect("the check runs");
    assert!(
        missing.is_empty(),
        "after the update no nameserver misses the value, got {missing:?}"
    );

    let other = TxtRecord {
        value: "another value".to_owned(),
        ..record.clone()
    };
    assert_eq!(
        checker.missing(&other).await.expect("the check runs").len(),
        1,
        "a different value on the same name is not taken for ours"
    );

    let mut settings = PropagationSettings::new(vec![bind.addr()]);
    settings.authoritative_servers = vec![bind.addr()];
    let pinned = HickoryPropagationChecker::new(settings).expect("valid settings");
    provider.cleanup(&record).await.expect("cleanup");
    assert_eq!(
        pinned.missing(&record).await.expect("the check runs"),
        vec![bind.addr().to_string()],
        "configured servers are asked and named by address"
    );
}

#[tokio::test]
async fn propagation_checker_follows_a_cname_into_the_delegated_zone() {
    let bind = Bind::start_zones(vec![
        Zone::new("example.test")
            .with("_acme-challenge.delegated IN CNAME _acme-challenge.target.validation.test."),
        Zone::new("validation.test"),
    ])
    .await
    .expect("BIND starts");
    let checker = checker(&bind);
    let record = TxtRecord {
        name: "_acme-challenge.delegated.example.test".to_owned(),
        value: "delegated".to_owned(),
    };

    assert_eq!(
        checker
            .delegated_name(&record.name)
            .await
            .expect("the lookup runs"),
        "_acme-challenge.target.validation.test",
        "records of a delegated name go to the CNAME target"
    );
    assert_eq!(
        checker
            .delegated_name("_acme-challenge.plain.example.test")
            .await
            .expect("the lookup runs"),
        "_acme-challenge.plain.example.test",
        "a name without CNAME is its own target"
    );
    let missing = checker.missing(&record).await.expect("the check runs");
    assert_eq!(
        missing,
        vec!["ns1.validation.test (127.0.0.1)".to_owned()],
        "the CNAME target's zone and nameserver are checked"
    );

    let provider = rfc2136(&bind, bind.secret());
    let target = TxtRecord {
        name: "_acme-challenge.target.validation.test".to_owned(),
        value: "delegated".to_owned(),
    };
    provider
        .present(&target)
        .await
        .expect("present at the CNAME target");
    let missing = checker.missing(&record).await.expect("the check runs");
    assert!(
        missing.is_empty(),
        "the value at the CNAME target counts, got {missing:?}"
    );
}
