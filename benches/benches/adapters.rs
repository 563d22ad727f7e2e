//! The per-certificate and per-request floors the load tool's figures are read against:
//! key generation, CSR building, the authentication check (token, cached password) and
//! one order's round trip through the SQLite store.

use acmeport_auth::{Argon2Hasher, CachingHasher, HmacTokenSigner};
use acmeport_domain::ports::{
    AccountRepo, CsrFactory, OrderRepo, PasswordHasher, TokenClaims, TokenSigner, UserRepo,
};
use acmeport_domain::{
    AccountCredentials, ChallengeKind, CsrSubject, DirectoryUrl, Email, Identifiers, KeySpec,
    NewAcmeAccount, NewOrder, NewUser, OrderSpec, Password, PasswordHash, ProviderName, UserId,
    Username, WorkerId,
};
use acmeport_keys::RcgenCsrFactory;
use acmeport_store::{KeyCipher, Store};
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use secrecy::SecretString;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

fn keys(c: &mut Criterion) {
    let rt = runtime();
    let factory = RcgenCsrFactory::new();
    let mut group = c.benchmark_group("keys");
    group.sample_size(20);
    group.bench_function("generate RSA-2048", |b| {
        b.iter(|| {
            rt.block_on(factory.generate_key(KeySpec::Rsa2048))
                .expect("key")
        })
    });
    group.bench_function("generate P-256", |b| {
        b.iter(|| {
            rt.block_on(factory.generate_key(KeySpec::EcdsaP256))
                .expect("key")
        })
    });
    let identifiers = Identifiers::parse(&["www.example.com"]).expect("names");
    let subject = CsrSubject::default();
    for (name, spec) in [
        ("CSR with RSA-2048", KeySpec::Rsa2048),
        ("CSR with P-256", KeySpec::EcdsaP256),
    ] {
        let key = rt.block_on(factory.generate_key(spec)).expect("key");
        group.bench_function(name, |b| {
            b.iter(|| {
                factory
                    .build_csr(black_box(&key), &identifiers, &subject, None)
                    .expect("csr")
            })
        });
    }
    group.finish();
}

fn authentication(c: &mut Criterion) {
    let rt = runtime();
    let signer = HmacTokenSigner::generate();
    let token = signer.sign(TokenClaims {
        user: UserId::new(42),
        generation: 0,
        expires_at: OffsetDateTime::now_utc() + Duration::from_secs(3600),
    });
    c.bench_function("auth: verify token", |b| {
        b.iter(|| signer.verify(black_box(token.expose())).expect("valid"))
    });
    // The production hasher (default Argon2 cost) behind the cache, as wired in the app.
    let hasher = CachingHasher::new(Arc::new(Argon2Hasher::default()), Duration::from_secs(60));
    let password = Password::new("correct horse battery");
    let hash = rt.block_on(hasher.hash(&password)).expect("hash");
    assert!(
        rt.block_on(hasher.verify(&password, &hash)),
        "first check succeeds"
    );
    c.bench_function("auth: cached password check", |b| {
        b.iter(|| assert!(rt.block_on(hasher.verify(black_box(&password), &hash))))
    });
    let mut group = c.benchmark_group("auth");
    group.sample_size(10);
    group.bench_function("uncached Argon2 check", |b| {
        let inner = Argon2Hasher::default();
        b.iter(|| assert!(rt.block_on(inner.verify(black_box(&password), &hash))))
    });
    group.finish();
}

/// Renewal at fleet size: 100,000 valid orders whose certificates are due for renewal
/// months from now, inserted directly, and a handful due now. One scheduler pass (the
/// claim of a due order, then its release; and the next due time) must cost what is due,
/// not what is stored: it reads the `due_at` index.
fn scheduler_pass(c: &mut Criterion) {
    const STORED: i64 = 100_000;
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temporary directory");
    let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([9u8; 32]));
    let cipher = KeyCipher::from_base64(&[key]).expect("master key");
    let (store, account) = rt.block_on(bench_store(&dir, cipher));
    let now = OffsetDateTime::now_utc();
    let template = rt.block_on(async {
        let mut due_now = Vec::new();
        for i in 0..5 {
            let order = OrderRepo::insert(
                &store,
                new_order(&account, &format!("due{i}.example.com"), now),
            )
            .await
            .expect("insert");
            due_now.push(order.id());
        }
        due_now[0]
    });
    let far = (now + Duration::from_secs(60 * 86400)).unix_timestamp() * 1_000_000;
    let sql = format!(
        "INSERT INTO orders (user_id, account_id, identifiers, identifiers_digest, challenge, \
         provider, email, subject, key_spec, status, step, published, attempt, created_at, \
         updated_at, version, due_at_us, auto_renew, progress) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {STORED}) \
         SELECT user_id, account_id, identifiers, identifiers_digest || '-' || i, challenge, \
         provider, email, subject, key_spec, 'valid', 'certificate_stored', '[]', 1, \
         created_at, updated_at, 0, {far} + i * 1000000, 1, '{{}}' \
         FROM orders, n WHERE orders.id = {}",
        template.get()
    );
    rt.block_on(async {
        use sea_orm::ConnectionTrait as _;
        let db = store.connection();
        db.execute_unprepared(&sql).await.expect("bulk insert");
    });
    let worker = WorkerId::new("scheduler-bench");
    let mut group = c.benchmark_group("scheduler over 100,000 stored orders (SQLite)");
    group.bench_function("claim a due order and release it", |b| {
        b.iter(|| {
            rt.block_on(async {
                let now = OffsetDateTime::now_utc();
                let claimed = OrderRepo::claim(&store, &worker, now, now + Duration::from_secs(30))
                    .await
                    .expect("claim")
                    .expect("five orders are due");
                OrderRepo::release(&store, claimed.id(), &worker)
                    .await
                    .expect("release");
            })
        })
    });
    group.bench_function("next due time", |b| {
        b.iter(|| {
            rt.block_on(OrderRepo::next_due(&store))
                .expect("next due")
                .expect("orders are due")
        })
    });
    group.finish();
}

fn new_order(account: &acmeport_domain::AcmeAccount, name: &str, at: OffsetDateTime) -> NewOrder {
    NewOrder {
        user_id: account.user_id,
        account_id: account.id,
        spec: OrderSpec {
            identifiers: Identifiers::parse(&[name]).expect("names"),
            challenge: ChallengeKind::Dns01,
            provider: Some(ProviderName::parse("bind").expect("name")),
            email: None,
            subject: CsrSubject::default(),
            key_spec: KeySpec::EcdsaP256,
            csr: None,
            key: None,
            auto_renew: true,
        },
        created_at: at,
    }
}

async fn bench_store(
    dir: &tempfile::TempDir,
    cipher: KeyCipher,
) -> (Store, acmeport_domain::AcmeAccount) {
    let store = Store::connect(&Store::sqlite_url(&dir.path().join("bench.db")), cipher)
        .await
        .expect("SQLite store");
    store.migrate().await.expect("migrations");
    let now = OffsetDateTime::now_utc();
    let user = UserRepo::insert(
        &store,
        NewUser {
            username: Username::parse("bench").expect("name"),
            password_hash: PasswordHash::new("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"),
            is_admin: false,
            created_at: now,
        },
    )
    .await
    .expect("user");
    let account = AccountRepo::insert(
        &store,
        NewAcmeAccount {
            user_id: user.id,
            email: Email::parse("ops@example.com").expect("email"),
            directory: DirectoryUrl::parse("https://127.0.0.1:14000/dir").expect("url"),
            uri: "https://127.0.0.1:14000/acct/1".into(),
            subject: CsrSubject::default(),
            credentials: AccountCredentials::new("{}"),
            created_at: now,
        },
    )
    .await
    .expect("account");
    (store, account)
}

fn order_round_trip(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temporary directory");
    let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    let cipher = KeyCipher::from_base64(&[key]).expect("master key");
    let key_pem = rt
        .block_on(RcgenCsrFactory::new().generate_key(KeySpec::Rsa2048))
        .expect("key");
    let (store, account) = rt.block_on(bench_store(&dir, cipher));
    let worker = WorkerId::new("bench");
    let identifiers = Identifiers::parse(&["www.example.com"]).expect("names");
    let csr = RcgenCsrFactory::new()
        .build_csr(&key_pem, &identifiers, &CsrSubject::default(), None)
        .expect("csr");
    c.bench_function("store: order insert + claim + save + get (SQLite)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let now = OffsetDateTime::now_utc();
                let order = OrderRepo::insert(
                    &store,
                    NewOrder {
                        user_id: account.user_id,
                        account_id: account.id,
                        spec: OrderSpec {
                            identifiers: identifiers.clone(),
                            challenge: ChallengeKind::Dns01,
                            provider: Some(ProviderName::parse("bind").expect("name")),
                            email: None,
                            subject: CsrSubject::default(),
                            key_spec: KeySpec::Rsa2048,
                            csr: None,
                            key: None,
                            auto_renew: false,
                        },
                        created_at: now,
                    },
                )
                .await
                .expect("insert");
                let lease = now + Duration::from_secs(30);
                let mut claimed = OrderRepo::claim(&store, &worker, now, lease)
                    .await
                    .expect("claim")
                    .expect("a due order");
                assert_eq!(claimed.id(), order.id(), "the new order is the due one");
                claimed
                    .key_ready(Some(key_pem.clone()), csr.clone())
                    .expect("transition");
                OrderRepo::save(&store, &claimed, Some(worker.clone()), lease)
                    .await
                    .expect("save");
                claimed.committed();
                // Out of the way of the next iteration's claim.
                claimed.failed("benchmark done").expect("transition");
                OrderRepo::save(&store, &claimed, Some(worker.clone()), lease)
                    .await
                    .expect("save");
                OrderRepo::get(&store, order.id())
                    .await
                    .expect("get")
                    .expect("there")
            })
        })
    });
}

criterion_group!(
    benches,
    keys,
    authentication,
    order_round_trip,
    scheduler_pass
);
criterion_main!(benches);
