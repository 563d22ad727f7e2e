//! Whole DNS-01 orders through the service against Pebble, with the TXT records written
//! into BIND 9 by RFC 2136 and TSIG, the propagation checked on BIND with the real checker,
//! and Pebble resolving through the same BIND (issue 3, DNS-01 parts of tests 1, 5 and 6).

use crate::harness::bind::{Bind, KEY_NAME};
use crate::harness::pebble::{free_tcp_port, Pebble, PebbleOptions};
use crate::harness::{cheap_hasher, init, sqlite_store, verify_chain, SystemClock};
use acmeport_acme::InstantAcmeClient;
use acmeport_auth::HmacTokenSigner;
use acmeport_dns_check::{HickoryPropagationChecker, PropagationSettings as CheckerSettings};
use acmeport_domain::service::PropagationSettings;
use acmeport_domain::{
    AcmeAccount, Acmeport, ChallengeKind, CreateOrder, CsrSubject, DnsProviders, Email,
    Identifiers, Order, OrderId, OrderStatus, Page, Password, Ports, ProviderName, RegisterAccount,
    Secret, Settings, User, Username, WorkerId,
};
use acmeport_keys::RcgenCsrFactory;
use acmeport_rfc2136::{Rfc2136Provider, Rfc2136Settings};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the service waits for BIND to serve the records; BIND answers at once, so
/// hitting this means the check is broken.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(20);

/// BIND serving `example.test`, a Pebble that resolves through it, and the service with
/// an RFC 2136 provider named `bind` on it and the real propagation checker.
struct DnsStack {
    service: Acmeport,
    _data: tempfile::TempDir,
    user: User,
    pebble: Pebble,
    bind: Bind,
    keys: RcgenCsrFactory,
}

impl DnsStack {
    /// `secret` overrides the TSIG secret the service uses (to test a wrong key).
    async fn start(strict: bool, secret: Option<&str>) -> Self {
        init();
        let bind = Bind::start().await.expect("BIND starts");
        let pebble = Pebble::start(PebbleOptions {
            strict,
            dns_server: Some(bind.addr()),
            // Unused by DNS-01, but Pebble's configuration needs one.
            http_port: free_tcp_port(),
            ..PebbleOptions::default()
        })
        .await;
        let (store, data) = sqlite_store().await;
        let acme = Arc::new(
            InstantAcmeClient::new(pebble.acme_config()).expect("ACME client configuration"),
        );
        let keys = RcgenCsrFactory::new();
        let mut rfc2136 = Rfc2136Settings::new(
            bind.addr(),
            KEY_NAME,
            Secret::new(secret.unwrap_or(bind.secret())),
        );
        rfc2136.timeout = Duration::from_secs(5);
        let provider = Rfc2136Provider::new(rfc2136).expect("RFC 2136 settings");
        let name = ProviderName::parse("bind").expect("provider name");
        let mut checker = CheckerSettings::new(vec![bind.addr()]);
        checker.authoritative_port = bind.port();
        checker.query_timeout = Duration::from_secs(2);
        let ports = Ports {
            users: store.clone(),
            accounts: store.clone(),
            orders: store.clone(),
            certificates: store.clone(),
            events: store.clone(),
            tokens: store.clone(),
            acme,
            csr: Arc::new(keys),
            inspector: Arc::new(keys),
            dns: DnsProviders::new()
                .with(name.clone(), Arc::new(provider))
                .with_default(name),
            propagation: Arc::new(
                HickoryPropagationChecker::new(checker).expect("propagation checker"),
            ),
            clock: Arc::new(SystemClock),
            hasher: Arc::new(cheap_hasher()),
            signer: Arc::new(HmacTokenSigner::generate()),
        };
        let settings = Settings {
            default_directory: pebble.directory.clone(),
            retry_backoff: acmeport_domain::Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(2),
            },
            propagation: PropagationSettings {
                enabled: true,
                timeout: PROPAGATION_TIMEOUT,
                interval: Duration::from_millis(200),
            },
            ..Settings::default()
        };
        let service = Acmeport::new(ports, settings);
        let user = service
            .add_user(
                Username::parse("dns-tester").expect("valid name"),
                &Password::new("correct horse battery"),
                false,
            )
            .await
            .expect("user");
        Self {
            service,
            _data: data,
            user,
            pebble,
            bind,
            keys,
        }
    }

    async fn account(&self) -> AcmeAccount {
        self.service
            .register_account(
                &self.user,
                RegisterAccount {
                    email: Email::parse("dns@example.com").expect("valid email"),
                    directory: None,
                    subject: CsrSubject::default(),
                    key: None,
                    eab: None,
                },
            )
            .await
            .expect("account registration at Pebble")
            .0
    }

    async fn order(&self, account: &AcmeAccount, names: &[&str]) -> OrderId {
        let request = CreateOrder {
            account: account.id,
            identifiers: Identifiers::parse(names).expect("valid names"),
            challenge: ChallengeKind::Dns01,
            provider: None,
            email: None,
            subject: CsrSubject::default(),
            key_spec: None,
            csr: None,
            key: None,
            reissue: false,
            auto_renew: true,
        };
        self.service
            .create_order(&self.user, request)
            .await
            .expect("the service accepts the order")
            .0
            .id()
    }

    /// Works the user's orders until none is pending (two minutes at most). An order
    /// waiting for the CA is due again in milliseconds; one that ended may leave only a
    /// failed cleanup's retries due, which these tests do not wait for.
    async fn run_orders(&self) {
        let worker = WorkerId::new("dns-worker");
        let until = Instant::now() + Duration::from_secs(120);
        while Instant::now() < until {
            while self
                .service
                .work_one(&worker)
                .await
                .unwrap_or_else(|e| panic!("the worker failed: {e}"))
                .is_some()
            {}
            let orders = self
                .service
                .list_orders(&self.user, Page::new(Some(Page::MAX_LIMIT), None))
                .await
                .expect("list orders");
            if orders
                .items
                .iter()
                .all(|o| o.status() != OrderStatus::Pending)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn get(&self, id: OrderId) -> Order {
        self.service
            .get_order(&self.user, id)
            .await
            .expect("order exists")
    }

    /// Checks that the order is valid and its certificate verifies for its names.
    async fn assert_issued(&self, id: OrderId) {
        let order = self.get(id).await;
        assert_eq!(
            order.status(),
            OrderStatus::Valid,
            "order {id} should be valid, error: {:?}, detail: {:?}; named's log:\n{}",
            order.error(),
            order.state().detail,
            self.bind.log()
        );
        let certificate = self
            .service
            .get_certificate(
                &self.user,
                order
                    .resolved_cert_id()
                    .expect("a valid order names its certificate"),
            )
            .await
            .expect("certificate exists");
        let names: Vec<String> = order
            .spec()
            .identifiers
            .as_slice()
            .iter()
            .map(ToString::to_string)
            .collect();
        verify_chain(
            &certificate.fullchain(),
            &self.pebble.root_pem().await,
            &names,
        );
        let mut sans = certificate.info.names.clone();
        let mut expected = names.clone();
        sans.sort();
        expected.sort();
        assert_eq!(
            sans, expected,
            "the certificate's SANs must be the order's names"
        );
        let key = certificate
            .key
            .as_ref()
            .expect("the service generated the key");
        assert!(
            self.keys
                .key_matches_certificate(key, &certificate.info.leaf_pem)
                .expect("key and certificate readable"),
            "the stored private key must belong to the certificate"
        );
        assert!(
            order.state().published.is_empty(),
            "every published record is cleaned up: {:?}",
            order.state().published
        );
    }
}

/// Issue 3, test 1 (DNS-01 part): a wildcard and its apex, whose two TXT values share
/// `_acme-challenge.wild.example.test`, in one certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_issues_a_wildcard_and_its_apex_through_bind() {
    let started = Instant::now();
    let stack = DnsStack::start(false, None).await;
    let account = stack.account().await;
    let ordering = Instant::now();
    let id = stack
        .order(&account, &["*.wild.example.test", "wild.example.test"])
        .await;
    stack.run_orders().await;
    let took = ordering.elapsed();
    stack.assert_issued(id).await;
    assert!(
        stack
            .bind
            .txt("_acme-challenge.wild.example.test")
            .await
            .is_empty(),
        "both TXT values are removed from BIND after validation"
    );
    eprintln!(
        "[timing] issue 3 test 1 (DNS-01, wildcard + apex): order to stored certificate \
         {took:?}; with BIND, Pebble and account {:?}",
        started.elapsed()
    );
}

/// Issue 3, test 5: the TXT record cannot be written (wrong TSIG secret); the order ends
/// invalid, names the cause, in time, and leaves no TXT record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_with_a_wrong_tsig_key_fails_the_order_naming_the_cause() {
    // A valid base64 HMAC key that is not BIND's.
    let stack = DnsStack::start(false, Some("d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nISE=")).await;
    let account = stack.account().await;
    let started = Instant::now();
    let id = stack.order(&account, &["fail.example.test"]).await;
    stack.run_orders().await;
    let took = started.elapsed();

    let order = stack.get(id).await;
    assert_eq!(
        order.status(),
        OrderStatus::Invalid,
        "the order must fail: {:?}",
        order.error()
    );
    let reason = order.error().expect("a failed order has a reason");
    assert!(
        reason.contains("BADSIG") && reason.contains("NOTAUTH"),
        "the reason names the TSIG failure: {reason}"
    );
    assert!(
        took < PROPAGATION_TIMEOUT,
        "a refused update fails the order at once, not after the propagation timeout ({took:?})"
    );
    assert!(
        stack
            .bind
            .txt("_acme-challenge.fail.example.test")
            .await
            .is_empty(),
        "no TXT record of the test is left in BIND"
    );
}

/// Issue 3, test 6: the same DNS-01 issuance with Pebble in `-strict` mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_issuance_passes_pebble_strict_mode() {
    let stack = DnsStack::start(true, None).await;
    let account = stack.account().await;
    let id = stack
        .order(&account, &["*.strict.example.test", "strict.example.test"])
        .await;
    stack.run_orders().await;
    stack.assert_issued(id).await;
    assert!(
        stack
            .bind
            .txt("_acme-challenge.strict.example.test")
            .await
            .is_empty(),
        "the TXT values are removed after validation"
    );
}
