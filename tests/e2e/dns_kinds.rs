//! The provider kinds configured by `kind` beyond the first three, each through the same
//! provider contract as the others: RFC 2136 on Knot, PowerDNS's HTTP API on a real
//! `pdns_server`, `exec` with a real script that updates BIND through `nsupdate`,
//! `webhook` and `acme-dns` on local servers that check every request. Also the
//! per-nameserver propagation answers, and `acmeport dns test` end to end on BIND.

use crate::dns_providers::{
    provider_contract, provider_contract_with, refusal_contract, values, Backend, Removal,
};
use crate::harness::acme_dns::{acme_dns_stub, AcmeDnsState, AUTH_DOMAIN};
use crate::harness::bind::{Bind, KEY_NAME};
use crate::harness::init_crypto;
use crate::harness::knot::Knot;
use crate::harness::powerdns::PowerDns;
use crate::harness::webhook::{
    webhook_stub, HookAuth, WebhookState, HOOK_PASSWORD, HOOK_TOKEN, HOOK_USER,
};
use acmeport_dns_check::{HickoryPropagationChecker, PropagationSettings};
use acmeport_dns_exec::{ExecProvider, ExecSettings};
use acmeport_dns_http::{
    AcmeDnsProvider, AcmeDnsSettings, PowerDnsProvider, PowerDnsSettings, WebhookAuth,
    WebhookProvider, WebhookSettings,
};
use acmeport_domain::ports::{DnsError, DnsProvider, PropagationChecker};
use acmeport_domain::{Secret, TxtRecord};
use acmeport_rfc2136::{Rfc2136Provider, Rfc2136Settings};
use acmeport_server::config::{Config, ProviderSection, Rfc2136Section, Secret as ConfigSecret};
use async_trait::async_trait;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

const NAME: &str = "_acme-challenge.www.example.test";

fn secret(text: &str) -> Secret {
    Secret::new(text)
}

// ---------------------------------------------------------------------------------------
// RFC 2136 on Knot

struct KnotBackend<'a>(&'a Knot);

#[async_trait]
impl Backend for KnotBackend<'_> {
    async fn values(&self, name: &str) -> Vec<String> {
        self.0.txt(name).await
    }
}

fn knot_provider(knot: &Knot, tsig: &str) -> Rfc2136Provider {
    let mut settings = Rfc2136Settings::new(knot.addr(), KEY_NAME, Secret::new(tsig));
    settings.timeout = Duration::from_secs(5);
    Rfc2136Provider::new(settings).expect("valid RFC 2136 settings")
}

#[tokio::test]
async fn rfc2136_passes_the_provider_contract_on_knot() {
    let knot = Knot::start().await.expect("knotd starts");
    let provider = knot_provider(&knot, knot.secret());
    provider_contract("rfc2136 (Knot)", &provider, &KnotBackend(&knot), NAME).await;
    let wrong = knot_provider(&knot, "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nISE=");
    refusal_contract(&wrong, &KnotBackend(&knot), NAME, "BADSIG").await;
    let err = knot_provider(&knot, "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nISE=")
        .present(&TxtRecord::new(NAME, "v"))
        .await
        .expect_err("a wrong secret is refused");
    assert!(
        matches!(err, DnsError::Unauthorized(_)),
        "a wrong TSIG secret is a credentials failure: {err:?}; knotd's log:\n{}",
        knot.log()
    );
}

// ---------------------------------------------------------------------------------------
// PowerDNS Authoritative, HTTP API

struct PdnsBackend<'a>(&'a PowerDns);

#[async_trait]
impl Backend for PdnsBackend<'_> {
    async fn values(&self, name: &str) -> Vec<String> {
        self.0.txt(name).await
    }
}

fn pdns_provider(pdns: &PowerDns, key: &str) -> PowerDnsProvider {
    let mut settings = PowerDnsSettings::new(pdns.api_url(), secret(key));
    settings.timeout = Duration::from_secs(5);
    PowerDnsProvider::new(settings).expect("valid PowerDNS settings")
}

#[tokio::test]
async fn powerdns_passes_the_provider_contract_on_pdns_server() {
    init_crypto();
    // A decoy zone further up proves the walk takes the closest enclosing zone.
    let pdns = PowerDns::start_zones(&["test", "example.test"])
        .await
        .expect("pdns_server starts");
    let provider = pdns_provider(&pdns, pdns.api_key());
    assert!(
        !format!("{provider:?}").contains(pdns.api_key()),
        "the API key never shows"
    );
    provider_contract(
        "powerdns (pdns_server)",
        &provider,
        &PdnsBackend(&pdns),
        NAME,
    )
    .await;
    let wrong = pdns_provider(&pdns, "not-the-key");
    refusal_contract(&wrong, &PdnsBackend(&pdns), NAME, "HTTP 401").await;
    let err = wrong
        .present(&TxtRecord::new(NAME, "v"))
        .await
        .expect_err("a wrong key is refused");
    assert!(
        matches!(err, DnsError::Unauthorized(_)),
        "a wrong API key is a credentials failure: {err:?}"
    );

    let err = provider
        .present(&TxtRecord::new(
            "_acme-challenge.www.elsewhere.invalid",
            "v",
        ))
        .await
        .expect_err("no zone for the name");
    assert!(
        matches!(err, DnsError::ZoneNotFound(_)),
        "expected ZoneNotFound, got {err:?}; pdns log:\n{}",
        pdns.log()
    );
}

#[tokio::test]
async fn powerdns_with_a_configured_zone_writes_into_it_and_refuses_names_outside() {
    init_crypto();
    let pdns = PowerDns::start().await.expect("pdns_server starts");
    let mut settings = PowerDnsSettings::new(pdns.api_url(), secret(pdns.api_key()));
    settings.zone = Some("example.test".to_owned());
    let provider = PowerDnsProvider::new(settings).expect("valid settings");
    let record = TxtRecord::new("_acme-challenge.example.test", values().0);
    provider
        .present(&record)
        .await
        .expect("present at the apex");
    assert_eq!(pdns.txt(&record.name).await, vec![record.value.clone()]);
    let err = provider
        .present(&TxtRecord::new("_acme-challenge.other.invalid", "v"))
        .await
        .expect_err("outside the configured zone");
    assert!(matches!(err, DnsError::ZoneNotFound(_)), "{err:?}");
}

#[tokio::test]
async fn propagation_answers_name_each_nameserver_and_what_it_serves() {
    init_crypto();
    let pdns = PowerDns::start().await.expect("pdns_server starts");
    let mut settings = PropagationSettings::new(vec![pdns.addr()]);
    settings.authoritative_port = pdns.addr().port();
    settings.query_timeout = Duration::from_secs(2);
    let checker = HickoryPropagationChecker::new(settings).expect("valid checker settings");
    let record = TxtRecord::new(NAME, values().0);

    let before = time::OffsetDateTime::now_utc();
    let answers = checker.check(&record).await.expect("the check runs");
    assert_eq!(answers.len(), 1, "one nameserver: {answers:?}");
    assert_eq!(answers[0].server, "ns1.example.test (127.0.0.1)");
    assert!(!answers[0].serves && answers[0].values.is_empty() && answers[0].error.is_none());
    assert!(
        answers[0].asked_at >= before - time::Duration::seconds(1),
        "asked_at is when it was asked"
    );

    let other = TxtRecord::new(NAME, values().1);
    let provider = pdns_provider(&pdns, pdns.api_key());
    provider
        .present(&other)
        .await
        .expect("present another value");
    let answers = checker.check(&record).await.expect("the check runs");
    assert!(!answers[0].serves, "another value is not ours");
    assert_eq!(answers[0].values, vec![other.value.clone()]);

    provider.present(&record).await.expect("present ours");
    let answers = checker.check(&record).await.expect("the check runs");
    assert!(answers[0].serves, "{answers:?}");
    assert!(
        checker
            .missing(&record)
            .await
            .expect("the check runs")
            .is_empty(),
        "missing is built on check"
    );

    let mut pinned = PropagationSettings::new(vec![pdns.addr()]);
    // Nothing listens there: that server's answer says why.
    pinned.authoritative_servers = vec![pdns.addr(), "127.0.0.1:9".parse().expect("address")];
    pinned.query_timeout = Duration::from_millis(500);
    let pinned = HickoryPropagationChecker::new(pinned).expect("valid settings");
    let answers = pinned.check(&record).await.expect("the check runs");
    assert!(answers[0].serves, "{answers:?}");
    assert!(
        !answers[1].serves && answers[1].error.is_some(),
        "a server that cannot be asked says why: {answers:?}"
    );
    assert_eq!(
        pinned.missing(&record).await.expect("the check runs"),
        vec!["127.0.0.1:9".to_owned()]
    );
}

// ---------------------------------------------------------------------------------------
// exec: a script in lego's convention that updates BIND with nsupdate

struct BindBackend<'a>(&'a Bind);

#[async_trait]
impl Backend for BindBackend<'_> {
    async fn values(&self, name: &str) -> Vec<String> {
        self.0.txt(name).await
    }
}

/// A hook script as operators write them for lego's `exec` provider.
pub(crate) fn nsupdate_hook(dir: &Path, bind: &Bind, tsig: &str) -> PathBuf {
    let path = dir.join("dns-hook.sh");
    std::fs::write(
        &path,
        format!(
            r#"#!/bin/sh
# lego exec convention: $1 = present|cleanup, $2 = the record name with a dot, $3 = value
case "$1" in
  present) op=add ;;
  cleanup) op=delete ;;
  *) echo "unknown action $1" >&2; exit 2 ;;
esac
printf 'server 127.0.0.1 {port}\nupdate %s %s 60 TXT "%s"\nsend\n' "$op" "$2" "$3" |
  nsupdate -y "hmac-sha256:{KEY_NAME}:{tsig}"
"#,
            port = bind.port()
        ),
    )
    .expect("write the hook");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("make the hook executable");
    path
}

#[tokio::test]
async fn exec_passes_the_provider_contract_with_an_nsupdate_script_on_bind() {
    let bind = Bind::start().await.expect("BIND starts");
    let dir = tempfile::tempdir().expect("temporary directory");
    let provider = ExecProvider::new(ExecSettings::new(nsupdate_hook(
        dir.path(),
        &bind,
        bind.secret(),
    )));
    provider_contract(
        "exec (nsupdate script, BIND)",
        &provider,
        &BindBackend(&bind),
        NAME,
    )
    .await;
    let wrong = ExecProvider::new(ExecSettings::new(nsupdate_hook(
        dir.path(),
        &bind,
        "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nISE=",
    )));
    // nsupdate's own words reach the error.
    refusal_contract(&wrong, &BindBackend(&bind), NAME, "NOTAUTH(BADSIG)").await;
}

// ---------------------------------------------------------------------------------------
// webhook (lego httpreq)

struct HookBackend(WebhookState);

#[async_trait]
impl Backend for HookBackend {
    async fn values(&self, name: &str) -> Vec<String> {
        self.0.values(name)
    }
}

fn webhook(server: &wiremock::MockServer, auth: WebhookAuth) -> WebhookProvider {
    let mut settings = WebhookSettings::from_endpoint(&format!("{}/hook", server.uri()));
    settings.auth = auth;
    WebhookProvider::new(settings).expect("valid webhook settings")
}

#[tokio::test]
async fn webhook_passes_the_provider_contract_with_basic_auth() {
    init_crypto();
    let state = WebhookState::default();
    let server = webhook_stub(state.clone(), HookAuth::Basic).await;
    let basic = |password: &str| WebhookAuth::Basic {
        username: HOOK_USER.to_owned(),
        password: secret(password),
    };
    let provider = webhook(&server, basic(HOOK_PASSWORD));
    provider_contract(
        "webhook (stub)",
        &provider,
        &HookBackend(state.clone()),
        NAME,
    )
    .await;
    let wrong = webhook(&server, basic("wrong"));
    refusal_contract(
        &wrong,
        &HookBackend(state.clone()),
        NAME,
        "invalid credentials for the DNS hook",
    )
    .await;
    assert!(
        state.malformed.lock().expect("state").is_empty(),
        "every request had lego's shape: {:?}",
        state.malformed.lock().expect("state")
    );
    let requests = server.received_requests().await.expect("recorded");
    assert!(
        !requests.is_empty() && requests.iter().all(|r| r.method.as_str() == "POST"),
        "only POSTs"
    );
}

#[tokio::test]
async fn webhook_sends_a_bearer_token() {
    init_crypto();
    let state = WebhookState::default();
    let server = webhook_stub(state.clone(), HookAuth::Bearer).await;
    let provider = webhook(&server, WebhookAuth::Bearer(secret(HOOK_TOKEN)));
    let record = TxtRecord::new(NAME, values().0);
    provider
        .present(&record)
        .await
        .expect("present with a bearer token");
    assert_eq!(state.values(NAME), vec![record.value.clone()]);
    provider.cleanup(&record).await.expect("cleanup");
    assert!(state.values(NAME).is_empty());
    let err = webhook(&server, WebhookAuth::None)
        .present(&record)
        .await
        .expect_err("no token, no entry");
    assert!(matches!(err, DnsError::Unauthorized(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// acme-dns

struct AcmeDnsBackend {
    state: AcmeDnsState,
    storage: PathBuf,
}

#[async_trait]
impl Backend for AcmeDnsBackend {
    /// The values served for the name's account (its `fulldomain`).
    async fn values(&self, name: &str) -> Vec<String> {
        let stored: serde_json::Value = match std::fs::read(&self.storage) {
            Ok(bytes) => serde_json::from_slice(&bytes).expect("storage is JSON"),
            Err(_) => return Vec::new(),
        };
        let domain = name.trim_start_matches("_acme-challenge.");
        match stored[domain]["fulldomain"].as_str() {
            Some(fulldomain) => self.state.values(fulldomain),
            None => Vec::new(),
        }
    }
}

fn acme_dns(server: &wiremock::MockServer, storage: &Path) -> AcmeDnsProvider {
    let mut settings = AcmeDnsSettings::new(server.uri(), storage);
    settings.allow_from = vec!["127.0.0.0/8".to_owned()];
    AcmeDnsProvider::new(settings).expect("valid acme-dns settings")
}

#[tokio::test]
async fn acme_dns_registers_once_asks_for_the_cname_and_passes_the_contract() {
    init_crypto();
    let state = AcmeDnsState::default();
    let server = acme_dns_stub(state.clone()).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let storage = dir.path().join("acme-dns.json");
    let provider = acme_dns(&server, &storage);

    let err = provider
        .present(&TxtRecord::new(NAME, values().0))
        .await
        .expect_err("the first use registers and asks for the CNAME");
    let text = err.to_string();
    assert!(
        text.contains("_acme-challenge.www.example.test. CNAME") && text.contains(AUTH_DOMAIN),
        "the error names the CNAME to create: {text}"
    );
    assert_eq!(*state.registrations.lock().expect("state"), 1);
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&storage).expect("credentials stored"))
            .expect("storage is JSON");
    let fulldomain = stored["www.example.test"]["fulldomain"]
        .as_str()
        .expect("lego's storage format, keyed by the domain")
        .to_owned();
    assert!(stored["www.example.test"]["password"].is_string());

    let backend = AcmeDnsBackend {
        state: state.clone(),
        storage: storage.clone(),
    };
    provider_contract_with(
        "acme-dns (stub)",
        &provider,
        &backend,
        NAME,
        Removal::RollsOver,
    )
    .await;

    // A restarted service reads the stored account, and the CNAME target works as name
    // (what the workflow writes to once the delegation exists).
    let restarted = acme_dns(&server, &storage);
    let value = "delegatedVALUE-0123456789abcdefghijklmnopqr".to_owned();
    restarted
        .present(&TxtRecord::new(&fulldomain, value.clone()))
        .await
        .expect("present at the fulldomain");
    assert!(state.values(&fulldomain).contains(&value));
    assert_eq!(
        *state.registrations.lock().expect("state"),
        1,
        "credentials are reused, never registered again"
    );
    assert!(
        state.malformed.lock().expect("state").is_empty(),
        "every request followed acme-dns's API: {:?}",
        state.malformed.lock().expect("state")
    );

    // Stored credentials the server does not know: its reason comes through.
    let bad = stored["www.example.test"].clone();
    let mut bad = bad.as_object().expect("object").clone();
    bad.insert("password".into(), "wrong-password".into());
    let other = dir.path().join("other.json");
    std::fs::write(
        &other,
        serde_json::to_vec(&serde_json::json!({ "www.example.test": bad })).expect("json"),
    )
    .expect("write");
    let err = acme_dns(&server, &other)
        .present(&TxtRecord::new(NAME, values().0))
        .await
        .expect_err("wrong password");
    assert!(
        matches!(&err, DnsError::Unauthorized(text) if text.contains("forbidden")),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------
// acmeport dns test

fn dns_test_config(bind: &Bind, tsig: &str) -> Config {
    let mut config = Config::default();
    config.dns.default = "bind".to_owned();
    config.dns.providers.clear();
    config.dns.providers.insert(
        "bind".to_owned(),
        ProviderSection::Rfc2136(Rfc2136Section {
            server: bind.addr(),
            key_name: KEY_NAME.to_owned(),
            secret: ConfigSecret::new(tsig),
            zone: None,
            ttl: None,
            timeout_secs: Some(5),
            zones: Vec::new(),
        }),
    );
    config.dns.propagation.resolvers = vec![bind.addr()];
    config.dns.propagation.authoritative_port = bind.port();
    config.dns.propagation.timeout_secs = 3;
    config.dns.propagation.interval_secs = 1;
    config.dns.propagation.query_timeout_secs = 1;
    config
}

#[tokio::test]
async fn dns_test_writes_waits_for_every_nameserver_and_removes() {
    let bind = Bind::start().await.expect("BIND starts");
    let config = dns_test_config(&bind, bind.secret());
    acmeport_server::dns::test(&config, "bind", "www.example.test")
        .await
        .expect("the self-test passes on a working provider");
    assert!(
        bind.txt(NAME).await.is_empty(),
        "the test record is removed afterwards"
    );

    let err = acmeport_server::dns::test(&config, "nope", "www.example.test")
        .await
        .expect_err("an unknown instance");
    assert!(err.to_string().contains("configured: bind"), "{err}");
}

#[tokio::test]
async fn dns_test_says_which_stage_failed() {
    let bind = Bind::start().await.expect("BIND starts");
    let wrong = dns_test_config(&bind, "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nISE=");
    let err = acmeport_server::dns::test(&wrong, "bind", "www.example.test")
        .await
        .expect_err("wrong credentials");
    let text = err.to_string();
    assert!(
        text.contains("writing the record failed")
            && text.contains("credentials")
            && text.contains("BADSIG"),
        "{text}"
    );

    // A second nameserver that never answers: the record is written, never seen there,
    // and still removed.
    let mut silent = dns_test_config(&bind, bind.secret());
    silent.dns.propagation.authoritative_servers =
        vec![bind.addr(), "127.0.0.1:9".parse().expect("address")];
    let err = acmeport_server::dns::test(&silent, "bind", "www.example.test")
        .await
        .expect_err("one server never serves it");
    let text = err.to_string();
    assert!(
        text.contains("not visible within 3 s on: 127.0.0.1:9")
            && !text.contains(&bind.addr().to_string()),
        "only the silent server is named: {text}"
    );
    assert!(
        bind.txt(NAME).await.is_empty(),
        "cleanup ran after the failed wait"
    );
}
