//! Shared test harness: real peers (Pebble and its mock DNS, BIND 9, Knot, PowerDNS,
//! moto, PostgreSQL) and local stubs of the APIs no server exists for here (Cloudflare,
//! webhook, acme-dns), each started per test on free loopback ports; a PostgreSQL cluster of
//! a test's own, for tests that restart it; the service wired
//! to real adapters; and checks on issued chains.

pub mod acme_dns;
pub mod app;
pub mod ari_proxy;
pub mod bind;
pub mod cloudflare;
pub mod dns;
pub mod knot;
pub mod moto;
pub mod pebble;
pub mod postgres;
pub mod powerdns;
pub mod private_postgres;
pub mod service;
pub mod webhook;

use std::net::UdpSocket;

/// A loopback port free for both TCP and UDP right now (DNS servers need both). Another
/// process can still take it before the server binds; starters retry on that.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a TCP port on 127.0.0.1");
        let port = tcp.local_addr().expect("local address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both TCP and UDP after 50 tries");
}

/// Installs the rustls provider once: both ring and aws-lc-rs are in the graph.
/// Runs `workers` workers over `service` until no order is due within a minute (two
/// minutes at most): an order waiting for the CA or for DNS is due again in
/// milliseconds, so stopping at the first moment nothing is due would leave it pending.
pub async fn work_until_idle(service: &acmeport_domain::Acmeport, workers: usize) {
    let until = std::time::Instant::now() + Duration::from_secs(120);
    let tasks = (0..workers).map(|i| {
        let service = service.clone();
        tokio::spawn(async move {
            let worker = WorkerId::new(format!("test-worker-{i}"));
            while std::time::Instant::now() < until {
                while service
                    .work_one(&worker)
                    .await
                    .unwrap_or_else(|e| panic!("worker {worker} failed: {e}"))
                    .is_some()
                {}
                let now = time::OffsetDateTime::now_utc();
                match service.next_due().await.expect("next due time") {
                    Some(due) if due - now < time::Duration::minutes(1) => {
                        let pause = (due - now)
                            .clamp(time::Duration::milliseconds(10), time::Duration::seconds(1));
                        tokio::time::sleep(pause.unsigned_abs()).await;
                    }
                    _ => break,
                }
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.expect("worker task");
    }
}

/// A CSR as the store keeps it (PEM armor around base64 of the DER), for repository
/// tests that never send it to a CA.
pub fn test_csr() -> acmeport_domain::Csr {
    acmeport_domain::Csr {
        pem: "-----BEGIN CERTIFICATE REQUEST-----\nY3Ny\n-----END CERTIFICATE REQUEST-----\n"
            .to_owned(),
        der: b"csr".to_vec(),
    }
}

/// Whether two consecutive events of an order are the workflow's one step back: a failed
/// CA validation (for example one the CA tried while acmeport was killed) retried with a
/// fresh ACME order from `key_ready` (`Order::retry_validation`).
pub fn is_validation_retry(
    before: &acmeport_store::OrderEvent,
    after: &acmeport_store::OrderEvent,
) -> bool {
    use acmeport_domain::OrderStep;
    before.step == OrderStep::PropagationConfirmed && after.step == OrderStep::KeyReady
}

/// Whether an order's step history went back between two events of one attempt, other
/// than by [`is_validation_retry`].
pub fn went_back(before: &acmeport_store::OrderEvent, after: &acmeport_store::OrderEvent) -> bool {
    after.attempt == before.attempt
        && after.step < before.step
        && !is_validation_retry(before, after)
}

pub fn init_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

use acmeport_acme::InstantAcmeClient;
use acmeport_auth::{Argon2Hasher, Argon2Params, HmacTokenSigner};
use acmeport_dns_check::{HickoryPropagationChecker, PropagationSettings as CheckerSettings};
use acmeport_domain::ports::ChallengeTokenStore;
use acmeport_domain::{
    AcmeAccount, Acmeport, Certificate, CsrSubject, DnsProviders, Email, Order, OrderId,
    OrderStatus, Password, Ports, RegisterAccount, Settings, User, Username, WorkerId,
};
use acmeport_keys::RcgenCsrFactory;
use acmeport_store::{KeyCipher, MasterKey, Store};
use pebble::{ChallTestSrv, Pebble, PebbleOptions};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;
use sea_orm::{ConnectionTrait, Statement};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Once per test: the rustls provider (both ring and aws-lc-rs are in the graph), and logs
/// when `TEST_LOG` is set (`TEST_LOG=debug`, or any `EnvFilter` directive).
pub fn init() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

pub use acmeport_auth::SystemClock;

/// The HTTP-01 responder on a loopback listener, stopped on drop.
pub struct ChallengeResponder {
    pub port: u16,
    stop: Option<oneshot::Sender<()>>,
}

impl ChallengeResponder {
    /// Serves `store` on `listener`.
    pub fn serve(listener: TcpListener, store: Arc<dyn ChallengeTokenStore>) -> Self {
        let port = listener.local_addr().expect("bound").port();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(acmeport_http::challenge::serve_challenges(
            listener,
            store,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            port,
            stop: Some(stop),
        }
    }
}

impl Drop for ChallengeResponder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Everything an HTTP-01 test needs: mock DNS answering 127.0.0.1, a Pebble validating
/// against our responder, and the service over the real ACME and key adapters with
/// the real storage adapter on a SQLite file.
pub struct HttpStack {
    pub service: Acmeport,
    pub store: Arc<Store>,
    _data: tempfile::TempDir,
    pub acme: Arc<InstantAcmeClient>,
    pub keys: RcgenCsrFactory,
    pub user: User,
    pub pebble: Pebble,
    _responder: ChallengeResponder,
    _dns: ChallTestSrv,
}

impl HttpStack {
    /// Starts the peers; `options` may set Pebble's environment or `-strict` (the DNS
    /// server and HTTP port are filled in here).
    pub async fn start(options: PebbleOptions) -> Self {
        init();
        let dns = ChallTestSrv::start().await;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the HTTP-01 responder");
        let pebble = Pebble::start(PebbleOptions {
            dns_server: Some(dns.dns),
            http_port: listener.local_addr().expect("bound").port(),
            ..options
        })
        .await;
        let (store, data) = sqlite_store().await;
        let responder = ChallengeResponder::serve(listener, store.clone());
        let acme = Arc::new(
            InstantAcmeClient::new(pebble.acme_config()).expect("ACME client configuration"),
        );
        let keys = RcgenCsrFactory::new();
        let ports = Ports {
            users: store.clone(),
            accounts: store.clone(),
            orders: store.clone(),
            certificates: store.clone(),
            events: store.clone(),
            tokens: store.clone(),
            acme: acme.clone(),
            csr: Arc::new(keys),
            inspector: Arc::new(keys),
            dns: DnsProviders::new(),
            // HTTP-01 needs no propagation check; the checker asks the mock DNS all the same.
            propagation: Arc::new(
                HickoryPropagationChecker::new(CheckerSettings::new(vec![dns.dns]))
                    .expect("propagation checker"),
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
            ..Settings::default()
        };
        let service = Acmeport::new(ports, settings);
        let user = service
            .add_user(
                Username::parse("tester").expect("valid name"),
                &Password::new("correct horse battery"),
                false,
            )
            .await
            .expect("user");
        Self {
            service,
            store,
            _data: data,
            acme,
            keys,
            user,
            pebble,
            _responder: responder,
            _dns: dns,
        }
    }

    /// Registers an ACME account at this Pebble through the service.
    pub async fn account(&self, email: &str) -> AcmeAccount {
        self.service
            .register_account(
                &self.user,
                RegisterAccount {
                    email: Email::parse(email).expect("valid email"),
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

    /// Works orders with `workers` concurrent workers until none is due within a minute
    /// (a waiting order is due again in seconds; a valid one only for its renewal), for
    /// two minutes at most (an order whose cleanup keeps failing stays due).
    pub async fn run_orders(&self, workers: usize) {
        work_until_idle(&self.service, workers).await;
    }

    /// The order, which must be `valid`, and its certificate.
    pub async fn issued(&self, id: OrderId) -> (Order, Certificate) {
        let order = self
            .service
            .get_order(&self.user, id)
            .await
            .expect("order exists");
        assert_eq!(
            order.status(),
            OrderStatus::Valid,
            "order {id} should be valid, error: {:?}, detail: {:?}",
            order.error(),
            order.state().detail
        );
        let cert_id = order
            .resolved_cert_id()
            .expect("a valid order names its certificate");
        let certificate = self
            .service
            .get_certificate(&self.user, cert_id)
            .await
            .expect("certificate exists");
        (order, certificate)
    }

    /// Checks an issued certificate: the chain verifies up to Pebble's root for every
    /// name, the SANs are the order's names, and (when the service holds one) the key is
    /// the certificate's.
    pub async fn verify(&self, order: &Order, certificate: &Certificate) {
        let root = self.pebble.root_pem().await;
        let names: Vec<String> = order
            .spec()
            .identifiers
            .as_slice()
            .iter()
            .map(ToString::to_string)
            .collect();
        verify_chain(&certificate.fullchain(), &root, &names);
        let mut sans = certificate.info.names.clone();
        let mut expected = names.clone();
        sans.sort();
        expected.sort();
        assert_eq!(
            sans, expected,
            "the certificate's SANs must be the order's names"
        );
        if let Some(key) = &certificate.key {
            assert!(
                self.keys
                    .key_matches_certificate(key, &certificate.info.leaf_pem)
                    .expect("key and certificate readable"),
                "the stored private key must belong to the certificate"
            );
        }
    }
}

/// Verifies `fullchain_pem` (leaf first) against `root_pem` as a TLS client would, for
/// each of `names`: signatures, validity period, server-auth usage and name match.
pub fn verify_chain(fullchain_pem: &str, root_pem: &str, names: &[String]) {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(fullchain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("the chain is PEM certificates");
    assert!(
        chain.len() >= 2,
        "the chain should hold leaf and intermediate, got {}",
        chain.len()
    );
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(root_pem.as_bytes()).expect("root PEM"))
        .expect("root usable as trust anchor");
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build()
    .expect("verifier");
    for name in names {
        // A wildcard certificate is checked with a name it covers.
        let host = name.replace("*.", "wildcard-check.");
        let server = ServerName::try_from(host.clone()).expect("server name");
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &server, &[], UnixTime::now())
            .unwrap_or_else(|e| {
                panic!("the chain must verify against Pebble's root for {host}: {e}")
            });
    }
}

/// The storage adapter on a fresh SQLite file (migrated, with a random master key), and the
/// directory holding it, which must outlive the store.
pub async fn sqlite_store() -> (Arc<Store>, tempfile::TempDir) {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("temporary directory");
    let key: [u8; 32] = rand::random();
    let key = base64::engine::general_purpose::STANDARD.encode(key);
    let master = MasterKey::from_base64(&secrecy::SecretString::from(key)).expect("master key");
    let cipher = KeyCipher::new(vec![master]).expect("cipher");
    let url = Store::sqlite_url(&dir.path().join("acmeport.db"));
    let store = Store::connect(&url, cipher)
        .await
        .expect("SQLite store opens");
    store.migrate().await.expect("migrations run");
    (Arc::new(store), dir)
}

/// The HTTP-01 tokens the store still serves.
pub async fn served_tokens(store: &Store) -> Vec<String> {
    let db = store.connection();
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT token FROM challenge_tokens",
    ))
    .await
    .expect("tokens can be listed")
    .into_iter()
    .map(|row| row.try_get::<String>("", "token").expect("token is text"))
    .collect()
}

/// The real Argon2id hasher at its lowest cost: these tests are not about password cost.
pub fn cheap_hasher() -> Argon2Hasher {
    Argon2Hasher::new(Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    })
    .expect("valid Argon2 parameters")
}
