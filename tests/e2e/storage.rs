//! The repository contract of `acmeport-store`, run against a SQLite file and against a
//! fresh PostgreSQL database, plus key encryption, key rotation and concurrent claims.

use crate::harness::postgres::TestDatabase;
use acmeport_domain::ports::{
    AccountRepo, CertificateRepo, ChallengeTokenStore, OrderRepo, RepoError, UserRepo,
};
use acmeport_domain::{
    AccountCredentials, AccountStatus, AcmeAccount, CertificateId, CertificateInfo,
    CertificateStatus, ChallengeKind, CountryCode, CsrSubject, DirectoryUrl, DomainEvent, Email,
    Identifiers, KeySpec, NewAcmeAccount, NewCertificate, NewOrder, NewUser, Order, OrderId,
    OrderSpec, OrderState, OrderStatus, OrderStep, Page, PasswordHash, PrivateKeyPem, ProviderName,
    Published, RevocationReason, SubjectField, TxtRecord, User, UserId, Username, WorkerId,
};
use acmeport_store::{KeyCipher, Store, StoreError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sea_orm::{ConnectionTrait, Statement};
use secrecy::SecretString;
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

// ---------------------------------------------------------------------------------------
// Setup

pub(crate) fn cipher(seeds: &[u8]) -> KeyCipher {
    let keys: Vec<SecretString> = seeds
        .iter()
        .map(|b| SecretString::from(STANDARD.encode([*b; 32])))
        .collect();
    KeyCipher::from_base64(&keys).expect("test master keys are valid")
}

pub(crate) async fn open(url: &str, cipher: KeyCipher) -> Store {
    let store = Store::connect(url, cipher)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url} failed: {e:?}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrating {url} failed: {e:?}"));
    store
}

pub(crate) fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("acmeport.db").display()
    )
}

/// A fixed instant for fields the store only keeps (microsecond precision, as stored).
pub(crate) fn at(seconds: i64) -> OffsetDateTime {
    datetime!(2026-03-01 12:00:00.123456 UTC) + Duration::seconds(seconds)
}

/// A real private key, so that the "no PEM at rest" checks look for real PEM.
fn private_key() -> PrivateKeyPem {
    let pair = rcgen::KeyPair::generate().expect("rcgen generates a P-256 key");
    PrivateKeyPem::new(pair.serialize_pem())
}

/// The bytes of one column of one row, as the database holds them.
async fn raw_column(store: &Store, table: &str, column: &str, id: i64) -> Vec<u8> {
    let db = store.connection();
    let sql = format!("SELECT {column} FROM {table} WHERE id = {id}");
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("raw select works")
        .unwrap_or_else(|| panic!("{table} row {id} exists"));
    row.try_get::<Vec<u8>>("", column)
        .unwrap_or_else(|e| panic!("{table}.{column} is bytes: {e:?}"))
}

/// Overwrites one column of one row with `bytes`, as someone with write access to the
/// database could.
async fn set_raw_column(store: &Store, table: &str, column: &str, id: i64, bytes: &[u8]) {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Query};
    let update = Query::update()
        .table(Alias::new(table))
        .value(Alias::new(column), bytes.to_vec())
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .to_owned();
    let written = store
        .connection()
        .execute(&update)
        .await
        .expect("raw update works");
    assert_eq!(written.rows_affected(), 1, "{table} row {id} exists");
}

/// A value sealed the way the previous version did: format 1, bound to its column only,
/// with the master key made of 32 bytes `seed`.
fn column_bound(seed: u8, column: &str, plaintext: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
    use sha2::Digest as _;
    let key = [seed; 32];
    let cipher = aes_gcm::Aes256Gcm::new(&key.into());
    let nonce = aes_gcm::Aes256Gcm::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: column.as_bytes(),
            },
        )
        .expect("encrypts");
    let id = sha2::Sha256::digest(key);
    [&[1u8][..], &id[..4], nonce.as_slice(), &sealed].concat()
}

fn assert_sealed(raw: &[u8], secret: &str, what: &str) {
    let contains = |needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(b"-----BEGIN"), "{what}: the raw column holds PEM");
    let body_line = secret.lines().nth(1).unwrap_or(secret);
    assert!(
        !contains(body_line.as_bytes()),
        "{what}: the raw column holds the secret's text"
    );
    assert!(
        raw.len() > secret.len(),
        "{what}: expected nonce and tag around the ciphertext"
    );
}

// ---------------------------------------------------------------------------------------
// Fixtures

pub(crate) async fn user(store: &Store, name: &str) -> User {
    UserRepo::insert(
        store,
        NewUser {
            username: Username::parse(name).expect("valid username"),
            password_hash: PasswordHash::new("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"),
            is_admin: false,
            created_at: at(0),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("inserting user {name} failed: {e:?}"))
}

fn new_account(user: UserId, email: &str, directory: &str) -> NewAcmeAccount {
    NewAcmeAccount {
        user_id: user,
        email: Email::parse(email).expect("valid email"),
        directory: DirectoryUrl::parse(directory).expect("valid directory"),
        uri: format!("{directory}/acct/{}", user.get()),
        subject: CsrSubject {
            organization: Some(SubjectField::parse("Acme Corp").expect("valid")),
            country: Some(CountryCode::parse("DE").expect("valid")),
            ..CsrSubject::default()
        },
        credentials: AccountCredentials::new(format!(
            r#"{{"id":"acct","key_pkcs8":{:?}}}"#,
            private_key().expose()
        )),
        created_at: at(1),
    }
}

pub(crate) async fn account(store: &Store, user: UserId) -> AcmeAccount {
    AccountRepo::insert(
        store,
        new_account(user, "ops@example.com", "https://127.0.0.1:14000/dir"),
    )
    .await
    .expect("inserting an account works")
}

fn spec(names: &[&str]) -> OrderSpec {
    OrderSpec {
        identifiers: Identifiers::parse(names).expect("valid names"),
        challenge: ChallengeKind::Dns01,
        provider: Some(ProviderName::parse("bind").expect("valid")),
        email: None,
        subject: CsrSubject::default(),
        key_spec: KeySpec::default(),
        csr: None,
        key: None,
        auto_renew: true,
    }
}

async fn order_with(store: &Store, account: &AcmeAccount, spec: OrderSpec) -> Order {
    OrderRepo::insert(
        store,
        NewOrder {
            user_id: account.user_id,
            account_id: account.id,
            spec,
            created_at: at(2),
        },
    )
    .await
    .expect("inserting an order works")
}

pub(crate) async fn order(store: &Store, account: &AcmeAccount, names: &[&str]) -> Order {
    order_with(store, account, spec(names)).await
}

pub(crate) async fn get_order(store: &Store, id: OrderId) -> Order {
    OrderRepo::get(store, id)
        .await
        .expect("reading an order works")
        .unwrap_or_else(|| panic!("order {id} exists"))
}

pub(crate) fn worker(name: &str) -> WorkerId {
    WorkerId::new(name)
}

pub(crate) fn new_certificate(
    order: &Order,
    fingerprint: &str,
    key: Option<PrivateKeyPem>,
) -> NewCertificate {
    NewCertificate {
        order_id: order.id(),
        user_id: order.user_id(),
        account_id: order.account_id(),
        info: CertificateInfo {
            leaf_pem: format!(
                "-----BEGIN CERTIFICATE-----\n{fingerprint}\n-----END CERTIFICATE-----\n"
            ),
            chain_pem: "-----BEGIN CERTIFICATE-----\nissuer\n-----END CERTIFICATE-----\n".into(),
            fingerprint: fingerprint.to_owned(),
            serial: format!("0a{fingerprint}"),
            issuer: "CN=Test Intermediate".into(),
            not_before: at(10),
            not_after: at(10 + 90 * 86_400),
            names: order
                .spec()
                .identifiers
                .as_slice()
                .iter()
                .map(|n| n.as_str().to_owned())
                .collect(),
        },
        key,
        csr: "-----BEGIN CERTIFICATE REQUEST-----\ncsr\n-----END CERTIFICATE REQUEST-----\n".into(),
        created_at: at(11),
    }
}

// ---------------------------------------------------------------------------------------
// The contract

/// Every repository port, against one freshly migrated store. Leases run first, on an
/// empty orders table, so that no other section's pending orders can be claimed.
async fn contract(store: &Store) {
    leases(store).await;
    due_times_and_versions(store).await;
    users(store).await;
    accounts(store).await;
    orders(store).await;
    certificates(store).await;
    tokens(store).await;
}

async fn users(store: &Store) {
    let before = UserRepo::count(store).await.expect("count works");
    let alice = user(store, "alice").await;
    assert_eq!(alice.username.as_str(), "alice");
    assert_eq!(
        alice.created_at,
        at(0),
        "created_at is kept to the microsecond"
    );

    let again = UserRepo::insert(
        store,
        NewUser {
            username: Username::parse("alice").expect("valid"),
            password_hash: PasswordHash::new("other"),
            is_admin: true,
            created_at: at(5),
        },
    )
    .await;
    assert!(
        matches!(again, Err(RepoError::Duplicate("user"))),
        "a taken username must be Duplicate(\"user\"), got {again:?}"
    );

    assert_eq!(
        UserRepo::get(store, alice.id).await.expect("get works"),
        Some(alice.clone())
    );
    assert_eq!(
        UserRepo::get(store, UserId::new(999_999))
            .await
            .expect("get works"),
        None
    );
    let by_name = UserRepo::by_username(store, &Username::parse("alice").expect("valid"))
        .await
        .expect("by_username works");
    assert_eq!(by_name, Some(alice));
    let nobody = UserRepo::by_username(store, &Username::parse("nobody").expect("valid"))
        .await
        .expect("by_username works");
    assert_eq!(nobody, None);
    assert_eq!(
        UserRepo::count(store).await.expect("count works"),
        before + 1
    );
}

async fn accounts(store: &Store) {
    let owner = user(store, "account-owner").await;
    let other = user(store, "account-other").await;
    let dir = "https://127.0.0.1:14000/dir";
    let first = AccountRepo::insert(store, new_account(owner.id, "ops@example.com", dir))
        .await
        .expect("first account is stored");
    assert_eq!(first.status, AccountStatus::Valid);

    let duplicate = AccountRepo::insert(store, new_account(owner.id, "ops@example.com", dir)).await;
    assert!(
        matches!(duplicate, Err(RepoError::Duplicate("account"))),
        "same user, email and directory must be Duplicate(\"account\"), got {duplicate:?}"
    );
    // The same email at another directory, or for another user, is another account.
    let second = AccountRepo::insert(
        store,
        new_account(owner.id, "ops@example.com", "https://127.0.0.1:14001/dir"),
    )
    .await
    .expect("another directory is a new account");
    let third = AccountRepo::insert(store, new_account(owner.id, "dev@example.com", dir))
        .await
        .expect("another email is a new account");
    AccountRepo::insert(store, new_account(other.id, "ops@example.com", dir))
        .await
        .expect("another user is a new account");

    let read = AccountRepo::get(store, first.id).await.expect("get works");
    assert_eq!(
        read.as_ref(),
        Some(&first),
        "an account reads back as written"
    );
    let found = AccountRepo::find(
        store,
        owner.id,
        &Email::parse("ops@example.com").expect("valid"),
        &DirectoryUrl::parse(dir).expect("valid"),
    )
    .await
    .expect("find works");
    assert_eq!(found.map(|a| a.id), Some(first.id));
    let absent = AccountRepo::find(
        store,
        owner.id,
        &Email::parse("nobody@example.com").expect("valid"),
        &DirectoryUrl::parse(dir).expect("valid"),
    )
    .await
    .expect("find works");
    assert_eq!(absent, None);

    let page = AccountRepo::list(store, owner.id, Page::new(Some(2), None))
        .await
        .expect("list works");
    let ids: Vec<_> = page.items.iter().map(|a| a.id).collect();
    assert_eq!(ids, vec![first.id, second.id], "first page, ordered by id");
    assert!(page.has_more, "a third account follows the first page");
    let rest = AccountRepo::list(store, owner.id, Page::new(Some(2), Some(second.id.get())))
        .await
        .expect("list works");
    assert_eq!(
        rest.items.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![third.id]
    );
    assert!(!rest.has_more, "nothing follows the last account");

    // Credentials are sealed at rest, read back intact, and replaced by update.
    let raw = raw_column(store, "accounts", "credentials", first.id.get()).await;
    assert_sealed(&raw, first.credentials.expose(), "accounts.credentials");
    let mut changed = first.clone();
    changed.status = AccountStatus::Deactivated;
    changed.credentials = AccountCredentials::new("rolled-over credentials");
    changed.subject = CsrSubject::default();
    AccountRepo::update(store, &changed)
        .await
        .expect("update works");
    assert_eq!(
        AccountRepo::get(store, first.id).await.expect("get works"),
        Some(changed.clone()),
        "update replaces status, credentials and subject"
    );
    let mut gone = changed;
    gone.id = acmeport_domain::AccountId::new(999_999);
    let missing = AccountRepo::update(store, &gone).await;
    assert!(
        matches!(missing, Err(RepoError::NotFound("account"))),
        "updating a missing account must be NotFound, got {missing:?}"
    );
}

async fn orders(store: &Store) {
    let owner = user(store, "order-owner").await;
    let acct = account(store, owner.id).await;
    let upload_key = private_key();
    let full_spec = OrderSpec {
        identifiers: Identifiers::parse(&["www.example.com", "*.example.com", "example.com"])
            .expect("valid"),
        challenge: ChallengeKind::Dns01,
        provider: Some(ProviderName::parse("route53").expect("valid")),
        email: Some(Email::parse("certs@example.com").expect("valid")),
        subject: CsrSubject {
            organization: Some(SubjectField::parse("Example Org").expect("valid")),
            organizational_unit: Some(SubjectField::parse("Ops").expect("valid")),
            country: Some(CountryCode::parse("fr").expect("valid")),
            state: Some(SubjectField::parse("Ile-de-France").expect("valid")),
            locality: Some(SubjectField::parse("Paris").expect("valid")),
        },
        key_spec: KeySpec::EcdsaP384,
        csr: Some(
            "-----BEGIN CERTIFICATE REQUEST-----\nup\n-----END CERTIFICATE REQUEST-----\n".into(),
        ),
        key: Some(upload_key.clone()),
        auto_renew: false,
    };
    let mut full = order_with(store, &acct, full_spec.clone()).await;
    assert_eq!(full.spec(), &full_spec, "insert keeps the whole spec");
    assert_eq!(
        full.state(),
        &OrderState {
            due_at: Some(full.created_at()),
            ..OrderState::new()
        },
        "a new order is pending at Created, due at once"
    );
    assert_eq!(
        get_order(store, full.id()).await,
        full,
        "a new order reads back as inserted"
    );
    let raw = raw_column(store, "orders", "upload_key", full.id().get()).await;
    assert_sealed(&raw, upload_key.expose(), "orders.upload_key");

    // Mid-flight: key, CSR, ACME URL, published material, detail.
    let cert_key = private_key();
    full.key_ready(Some(cert_key.clone()), crate::harness::test_csr())
        .expect("key ready");
    full.placed("https://127.0.0.1:14000/my-order/1".into())
        .expect("placed");
    full.publishing(vec![
        Published::Dns {
            provider: ProviderName::parse("route53").expect("valid"),
            record: TxtRecord {
                name: "_acme-challenge.example.com".into(),
                value: "dns-value-1".into(),
            },
        },
        Published::Http {
            token: "token-1".into(),
        },
    ])
    .expect("publishing");
    full.waiting("waiting for ns1.example.com")
        .expect("pending");
    full.touched(at(20));
    OrderRepo::save(store, &full, None, at(0))
        .await
        .expect("unfenced save works");
    full.committed();
    let read = get_order(store, full.id()).await;
    assert_eq!(read, full, "every field of a mid-flight order round-trips");
    assert_eq!(read.state().published.len(), 2);
    assert_eq!(
        read.state().cert_key.as_ref(),
        Some(&cert_key),
        "the attempt's key reads back"
    );
    let raw = raw_column(store, "orders", "cert_key", full.id().get()).await;
    assert_sealed(&raw, cert_key.expose(), "orders.cert_key");

    // Completed, then reissued: attempt 2 with the first certificate kept.
    full.published().expect("published");
    full.cleaned_up(&full.state().published.clone());
    full.propagation_confirmed().expect("propagated");
    full.answered().expect("answered");
    full.finalized().expect("finalized");
    full.completed(CertificateId::new(77)).expect("completed");
    full.reissue(at(30)).expect("reissue");
    full.touched(at(30));
    OrderRepo::save(store, &full, None, at(0))
        .await
        .expect("save works");
    full.committed();
    let read = get_order(store, full.id()).await;
    assert_eq!(read, full, "a reissued order round-trips");
    assert_eq!(read.state().attempt, 2);
    assert_eq!(read.resolved_cert_id(), Some(CertificateId::new(77)));
    full.failed("the CA said no").expect("fail");
    OrderRepo::save(store, &full, None, at(0))
        .await
        .expect("save works");
    assert_eq!(
        get_order(store, full.id()).await.error(),
        Some("the CA said no")
    );

    // find_existing matches user, account, ordered names, challenge and email exactly.
    let plain = order(store, &acct, &["a.example.com", "b.example.com"]).await;
    let ab = Identifiers::parse(&["a.example.com", "b.example.com"]).expect("valid");
    let ba = Identifiers::parse(&["b.example.com", "a.example.com"]).expect("valid");
    let with_email = Email::parse("x@example.com").expect("valid");
    let emailed = order_with(
        store,
        &acct,
        OrderSpec {
            email: Some(with_email.clone()),
            ..spec(&["a.example.com", "b.example.com"])
        },
    )
    .await;
    let find = |ids: Identifiers, kind: ChallengeKind, email: Option<Email>, user: UserId| {
        let store = store.clone();
        let account = acct.id;
        async move {
            OrderRepo::find_existing(&store, user, account, &ids, kind, email)
                .await
                .expect("find_existing works")
                .map(|o| o.id())
        }
    };
    assert_eq!(
        find(ab.clone(), ChallengeKind::Dns01, None, owner.id).await,
        Some(plain.id())
    );
    assert_eq!(
        find(ab.clone(), ChallengeKind::Dns01, Some(with_email), owner.id).await,
        Some(emailed.id())
    );
    assert_eq!(
        find(ba, ChallengeKind::Dns01, None, owner.id).await,
        None,
        "order of names matters"
    );
    assert_eq!(
        find(ab.clone(), ChallengeKind::Http01, None, owner.id).await,
        None
    );
    assert_eq!(
        find(
            ab.clone(),
            ChallengeKind::Dns01,
            Some(Email::parse("y@example.com").expect("valid")),
            owner.id
        )
        .await,
        None
    );
    let stranger = user(store, "order-stranger").await;
    assert_eq!(
        find(ab, ChallengeKind::Dns01, None, stranger.id).await,
        None,
        "other users' orders are not found"
    );

    // Pagination of the user's orders.
    let page = OrderRepo::list(store, owner.id, Page::new(Some(2), None))
        .await
        .expect("list works");
    assert_eq!(
        page.items.iter().map(|o| o.id()).collect::<Vec<_>>(),
        vec![full.id(), plain.id()]
    );
    assert!(page.has_more);
    let last = OrderRepo::list(store, owner.id, Page::new(Some(2), Some(plain.id().get())))
        .await
        .expect("list works");
    assert_eq!(
        last.items.iter().map(|o| o.id()).collect::<Vec<_>>(),
        vec![emailed.id()]
    );
    assert!(!last.has_more);
    let none = OrderRepo::list(store, stranger.id, Page::default())
        .await
        .expect("list works");
    assert!(
        none.items.is_empty() && !none.has_more,
        "a user without orders lists none"
    );

    assert_eq!(
        OrderRepo::get(store, OrderId::new(999_999))
            .await
            .expect("get works"),
        None
    );
    let ghost = Order::restore(
        OrderId::new(999_999),
        NewOrder {
            user_id: plain.user_id(),
            account_id: plain.account_id(),
            spec: plain.spec().clone(),
            created_at: plain.created_at(),
        },
        OrderState::new(),
        None,
        plain.updated_at(),
    );
    let missing = OrderRepo::save(store, &ghost, None, at(0)).await;
    assert!(
        matches!(missing, Err(RepoError::NotFound("order"))),
        "saving a missing order must be NotFound, got {missing:?}"
    );
    let missing = OrderRepo::save(store, &ghost, Some(worker("w")), at(0)).await;
    assert!(
        matches!(missing, Err(RepoError::NotFound("order"))),
        "a fenced save of a missing order must be NotFound, got {missing:?}"
    );
    // Settle the pending orders so that nothing else in this database is claimable.
    for mut o in [plain, emailed] {
        o.failed("settled by the test").expect("pending");
        OrderRepo::save(store, &o, None, at(0))
            .await
            .expect("save works");
    }
}

/// Due times decide what is claimed (users served in turn), and every write is
/// conditional on the version it was read at.
async fn due_times_and_versions(store: &Store) {
    let a = user(store, "due-a").await;
    let acct_a = account(store, a.id).await;
    let b = user(store, "due-b").await;
    let acct_b = account(store, b.id).await;
    let a1 = order(store, &acct_a, &["a1.example.com"]).await;
    let a2 = order(store, &acct_a, &["a2.example.com"]).await;
    let b1 = order(store, &acct_b, &["b1.example.com"]).await;
    let now = OffsetDateTime::now_utc();
    let lease = Duration::seconds(60);
    let (w1, w2) = (worker("d1"), worker("d2"));

    let mut first = OrderRepo::claim(store, &w1, now, now + lease)
        .await
        .expect("claim works")
        .expect("a due order");
    assert_eq!(first.id(), a1.id(), "the earliest due order first");
    let second = OrderRepo::claim(store, &w2, now, now + lease)
        .await
        .expect("claim works")
        .expect("a due order");
    assert_eq!(
        second.id(),
        b1.id(),
        "the other user's order next, before a2 of the user just served"
    );

    // A wait: saved with a later due time and released, the order is not claimed
    // before then, and the next due time says when it will be.
    let wake = (now + Duration::hours(1))
        .replace_nanosecond(0)
        .expect("a valid time");
    first.wait_until(now, wake, "waiting").expect("pending");
    OrderRepo::save(store, &first, Some(w1.clone()), now + lease)
        .await
        .expect("fenced save works");
    first.committed();
    OrderRepo::release(store, a1.id(), &w1)
        .await
        .expect("release");
    let third = OrderRepo::claim(store, &w1, now, now + lease)
        .await
        .expect("claim works")
        .expect("a2 is due");
    assert_eq!(third.id(), a2.id(), "a1 waits, a2 is due");
    assert_eq!(
        OrderRepo::claim(store, &worker("d3"), now, now + lease)
            .await
            .expect("claim works"),
        None,
        "nothing else is due now"
    );
    // Claims with one-second leases, to see everything claimable at a time.
    let claimable_at = |t: OffsetDateTime| async move {
        let mut found = BTreeMap::new();
        while let Some(o) = OrderRepo::claim(store, &worker("d3"), t, t + Duration::seconds(1))
            .await
            .expect("claim works")
        {
            assert!(
                found.insert(o.id(), o).is_none(),
                "each order once per look"
            );
            if found.len() > 10 {
                break;
            }
        }
        found
    };
    let before = claimable_at(wake - Duration::seconds(1)).await;
    assert_eq!(
        before.keys().copied().collect::<Vec<_>>(),
        vec![a2.id(), b1.id()],
        "a1 is not due before its wake-up time (the others' leases have ended)"
    );
    let at_wake = claimable_at(wake).await;
    assert!(
        at_wake.contains_key(&a1.id()),
        "a1 is due at its wake-up time"
    );
    assert_eq!(
        at_wake[&a1.id()].due_at(),
        Some(wake),
        "due_at round-trips to the microsecond"
    );
    assert!(
        OrderRepo::next_due(store)
            .await
            .expect("next_due works")
            .is_some_and(|due| due <= wake + lease),
        "the next due time accounts for every order"
    );

    // Conditional writes: a copy read before another write is refused, whoever writes.
    let stale = get_order(store, a2.id()).await;
    let mut fresh = get_order(store, a2.id()).await;
    fresh.waiting("a fresh note").expect("pending");
    OrderRepo::save(store, &fresh, None, now)
        .await
        .expect("the first write wins");
    let lost = OrderRepo::save(store, &stale, None, now).await;
    assert!(
        matches!(lost, Err(RepoError::Conflict("order"))),
        "a write from a stale copy must be Conflict, got {lost:?}"
    );
    // The lease holder (the last look above) too.
    let lost = OrderRepo::save(store, &stale, Some(worker("d3")), now + lease).await;
    assert!(
        matches!(lost, Err(RepoError::Conflict("order"))),
        "a fenced write from a stale copy must be Conflict, got {lost:?}"
    );
    assert_eq!(
        get_order(store, a2.id()).await.state().detail.as_deref(),
        Some("a fresh note"),
        "the refused writes changed nothing"
    );

    // Settle them: nothing here stays claimable for the other sections.
    for id in [a1.id(), a2.id(), b1.id()] {
        let mut o = get_order(store, id).await;
        o.failed("settled by the test").expect("pending");
        OrderRepo::save(store, &o, None, now)
            .await
            .expect("save works");
    }
}

async fn leases(store: &Store) {
    let owner = user(store, "lease-owner").await;
    let acct = account(store, owner.id).await;
    let o1 = order(store, &acct, &["one.example.com"]).await;
    let o2 = order(store, &acct, &["two.example.com"]).await;
    let (w1, w2, w3) = (worker("w1"), worker("w2"), worker("w3"));
    let now = OffsetDateTime::now_utc();
    let lease = Duration::seconds(60);

    // Two workers claim two different orders; a third finds nothing.
    let c1 = OrderRepo::claim(store, &w1, now, now + lease)
        .await
        .expect("claim works");
    let c2 = OrderRepo::claim(store, &w2, now, now + lease)
        .await
        .expect("claim works");
    let c3 = OrderRepo::claim(store, &w3, now, now + lease)
        .await
        .expect("claim works");
    assert_eq!(
        c1.as_ref().map(|o| o.id()),
        Some(o1.id()),
        "w1 claims the oldest pending order"
    );
    assert_eq!(
        c2.as_ref().map(|o| o.id()),
        Some(o2.id()),
        "w2 gets the other order"
    );
    assert_eq!(c3, None, "nothing is left for w3 while both leases run");
    let mut mine = c1.expect("claimed");

    // Only the lease holder may write, and its write is recorded in the history.
    mine.key_ready(Some(private_key()), crate::harness::test_csr())
        .expect("key ready");
    let stolen = OrderRepo::save(store, &mine, Some(w2.clone()), now + lease).await;
    assert!(
        matches!(stolen, Err(RepoError::LeaseLost)),
        "a fenced save by a worker that does not hold the lease must be LeaseLost, got {stolen:?}"
    );
    OrderRepo::save(store, &mine, Some(w1.clone()), now + lease)
        .await
        .expect("the holder's fenced save works");
    mine.committed();
    assert!(matches!(
        OrderRepo::renew(store, o1.id(), &w2, now + lease).await,
        Err(RepoError::LeaseLost)
    ));
    OrderRepo::renew(store, o1.id(), &w1, now + lease)
        .await
        .expect("the holder renews");

    // After the lease expires another worker takes the order over, resuming its step.
    let later = now + lease + Duration::seconds(1);
    let taken = OrderRepo::claim(store, &w3, later, later + lease)
        .await
        .expect("claim works")
        .expect("an expired lease is taken over");
    assert_eq!(taken.id(), o1.id());
    assert_eq!(
        taken.step(),
        OrderStep::KeyReady,
        "the new owner resumes from the last step"
    );
    assert_eq!(taken.state().cert_key, mine.state().cert_key);
    let late = OrderRepo::save(store, &mine, Some(w1.clone()), later + lease).await;
    assert!(
        matches!(late, Err(RepoError::LeaseLost)),
        "the old owner's save after takeover must be LeaseLost, got {late:?}"
    );
    assert!(matches!(
        OrderRepo::renew(store, o1.id(), &w1, later + lease).await,
        Err(RepoError::LeaseLost)
    ));
    let mut resumed = taken;
    resumed
        .placed("https://acme/order/1".into())
        .expect("placed");
    OrderRepo::save(store, &resumed, Some(w3.clone()), later + lease)
        .await
        .expect("the new owner's save works");

    let history = store.order_history(o1.id()).await.expect("history works");
    let steps: Vec<_> = history
        .iter()
        .map(|e| (e.worker.as_str(), e.step, e.status, e.attempt))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("w1", OrderStep::KeyReady, OrderStatus::Pending, 1),
            ("w3", OrderStep::Placed, OrderStatus::Pending, 1),
        ],
        "only the accepted fenced writes are in the history"
    );

    // A worker whose lease ran out must stop even when nobody took the order over.
    let o3 = order(store, &acct, &["three.example.com"]).await;
    let short = OrderRepo::claim(store, &worker("w4"), now, now - Duration::seconds(1))
        .await
        .expect("claim works")
        .expect("o3 is free");
    assert_eq!(short.id(), o3.id());
    let expired = OrderRepo::save(store, &short, Some(worker("w4")), now + lease).await;
    assert!(
        matches!(expired, Err(RepoError::LeaseLost)),
        "a save after the own lease expired must be LeaseLost, got {expired:?}"
    );
    assert!(matches!(
        OrderRepo::renew(store, o3.id(), &worker("w4"), now + lease).await,
        Err(RepoError::LeaseLost)
    ));

    // Release: a non-owner's release changes nothing; the owner's frees the order.
    OrderRepo::release(store, o1.id(), &w1)
        .await
        .expect("release works");
    let now = OffsetDateTime::now_utc();
    let next = OrderRepo::claim(store, &worker("w5"), now, now + lease)
        .await
        .expect("claim works");
    assert_eq!(
        next.map(|o| o.id()),
        Some(o3.id()),
        "o1 is still held by w3, o2 by w2"
    );
    OrderRepo::release(store, o1.id(), &w3)
        .await
        .expect("release works");
    let again = OrderRepo::claim(store, &worker("w6"), now, now + lease)
        .await
        .expect("claim works");
    assert_eq!(
        again.as_ref().map(|o| o.id()),
        Some(o1.id()),
        "a released order is claimable at once"
    );

    // An unfenced write ignores the lease and leaves it in place; finished orders are
    // never claimed.
    let mut done = again.expect("claimed");
    done.failed("stopped by the test").expect("pending");
    OrderRepo::save(store, &done, None, now)
        .await
        .expect("unfenced save works");
    OrderRepo::release(store, o1.id(), &worker("w6"))
        .await
        .expect("release works");
    for (o, holder) in [(o2.id(), w2), (o3.id(), worker("w5"))] {
        let mut held = get_order(store, o).await;
        held.failed("stopped by the test").expect("pending");
        OrderRepo::save(store, &held, Some(holder), now + lease)
            .await
            .expect("the holder finishes its order");
    }
    let far = now + Duration::days(1);
    let nothing = OrderRepo::claim(store, &worker("w7"), far, far + lease)
        .await
        .expect("claim works");
    assert_eq!(
        nothing, None,
        "invalid orders are never claimed, even with expired leases"
    );
}

async fn certificates(store: &Store) {
    let owner = user(store, "cert-owner").await;
    let acct = account(store, owner.id).await;
    let o = order(store, &acct, &["cert.example.com", "www.cert.example.com"]).await;
    let key = private_key();

    let first = CertificateRepo::insert(store, new_certificate(&o, "aa11", Some(key.clone())))
        .await
        .expect("insert works");
    assert_eq!(first.status, CertificateStatus::Valid);
    assert_eq!(
        first.key.as_ref(),
        Some(&key),
        "the key reads back as written"
    );
    assert_eq!(
        first.info.names,
        vec!["cert.example.com", "www.cert.example.com"]
    );
    let raw = raw_column(store, "certificates", "private_key", first.id.get()).await;
    assert_sealed(&raw, key.expose(), "certificates.private_key");

    // A resumed order storing the same certificate again gets the first row back.
    let again = CertificateRepo::insert(store, new_certificate(&o, "aa11", Some(private_key())))
        .await
        .expect("a repeated insert works");
    assert_eq!(again, first, "insert is idempotent on (order, fingerprint)");
    let second = CertificateRepo::insert(store, new_certificate(&o, "bb22", None))
        .await
        .expect("a new fingerprint is a new certificate");
    assert_ne!(second.id, first.id);
    assert_eq!(second.key, None);
    let third = CertificateRepo::insert(store, new_certificate(&o, "cc33", None))
        .await
        .expect("insert works");

    assert_eq!(
        CertificateRepo::get(store, first.id)
            .await
            .expect("get works"),
        Some(first.clone())
    );
    assert_eq!(
        CertificateRepo::get(store, CertificateId::new(999_999))
            .await
            .expect("get works"),
        None
    );
    let page = CertificateRepo::list(store, owner.id, Page::new(Some(2), None))
        .await
        .expect("list works");
    assert_eq!(
        page.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first.id, second.id]
    );
    assert!(page.has_more);
    let rest = CertificateRepo::list(store, owner.id, Page::new(Some(2), Some(second.id.get())))
        .await
        .expect("list works");
    assert_eq!(
        rest.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![third.id]
    );
    assert!(!rest.has_more);

    CertificateRepo::mark_revoked(
        store,
        second.id,
        at(50),
        RevocationReason::KeyCompromise,
        DomainEvent::certificate_revoked(
            second.user_id,
            second.order_id,
            second.id,
            RevocationReason::KeyCompromise,
            vec![],
        ),
    )
    .await
    .expect("revoke works");
    let revoked = CertificateRepo::get(store, second.id)
        .await
        .expect("get works")
        .expect("still stored");
    assert_eq!(revoked.status, CertificateStatus::Revoked);
    assert_eq!(revoked.revoked_at, Some(at(50)));
    assert_eq!(
        revoked.revocation_reason,
        Some(RevocationReason::KeyCompromise)
    );
    assert!(revoked.key_compromised());
    assert_eq!(revoked.info.issuer, "CN=Test Intermediate");
    let valid = CertificateRepo::valid_for_account(store, acct.id)
        .await
        .expect("valid_for_account works");
    assert_eq!(
        valid.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first.id, third.id],
        "revoked certificates are not valid"
    );
    assert!(matches!(
        CertificateRepo::mark_revoked(
            store,
            CertificateId::new(999_999),
            at(50),
            RevocationReason::Unspecified,
            DomainEvent::certificate_revoked(
                UserId::new(1),
                OrderId::new(1),
                CertificateId::new(999_999),
                RevocationReason::Unspecified,
                vec![],
            ),
        )
        .await,
        Err(RepoError::NotFound("certificate"))
    ));

    CertificateRepo::delete(store, first.id)
        .await
        .expect("delete works");
    assert_eq!(
        CertificateRepo::get(store, first.id)
            .await
            .expect("get works"),
        None
    );
    let twice = CertificateRepo::delete(store, first.id).await;
    assert!(
        matches!(twice, Err(RepoError::NotFound("certificate"))),
        "deleting a deleted certificate must be NotFound, got {twice:?}"
    );
}

async fn tokens(store: &Store) {
    assert_eq!(
        ChallengeTokenStore::get(store, "tok-1")
            .await
            .expect("get works"),
        None
    );
    ChallengeTokenStore::put(store, "tok-1", "tok-1.thumb")
        .await
        .expect("put works");
    ChallengeTokenStore::put(store, "tok-1", "tok-1.thumb")
        .await
        .expect("put is idempotent");
    ChallengeTokenStore::put(store, "tok-2", "tok-2.thumb")
        .await
        .expect("put works");
    assert_eq!(
        ChallengeTokenStore::get(store, "tok-1")
            .await
            .expect("get works")
            .as_deref(),
        Some("tok-1.thumb")
    );
    ChallengeTokenStore::remove(store, "tok-1")
        .await
        .expect("remove works");
    assert_eq!(
        ChallengeTokenStore::get(store, "tok-1")
            .await
            .expect("get works"),
        None
    );
    ChallengeTokenStore::remove(store, "tok-1")
        .await
        .expect("removing an absent token is fine");
    assert_eq!(
        ChallengeTokenStore::get(store, "tok-2")
            .await
            .expect("get works")
            .as_deref(),
        Some("tok-2.thumb"),
        "other tokens stay"
    );
}

// ---------------------------------------------------------------------------------------
// Rotation and concurrency, generic over the database URL

/// Secrets written under key A are read with [B, A]; new writes use B, which A alone
/// cannot read.
async fn rotation(url: &str) {
    let with_a = open(url, cipher(&[0xA1])).await;
    let owner = user(&with_a, "rotation-owner").await;
    let old = account(&with_a, owner.id).await;
    let o = order(&with_a, &old, &["rotate.example.com"]).await;
    let key = private_key();
    let cert = CertificateRepo::insert(&with_a, new_certificate(&o, "dd44", Some(key.clone())))
        .await
        .expect("insert works");
    with_a.close().await.expect("close works");

    let rotated_cipher = cipher(&[0xB2, 0xA1]);
    let new_key_id = rotated_cipher.key_ids()[0].clone();
    let rotated = open(url, rotated_cipher).await;
    assert_eq!(
        AccountRepo::get(&rotated, old.id)
            .await
            .expect("old secrets still read"),
        Some(old.clone())
    );
    let cert_read = CertificateRepo::get(&rotated, cert.id)
        .await
        .expect("old keys still read")
        .expect("stored");
    assert_eq!(cert_read.key, Some(key));
    let fresh = AccountRepo::insert(
        &rotated,
        new_account(owner.id, "new@example.com", "https://127.0.0.1:14000/dir"),
    )
    .await
    .expect("insert works");
    let raw = raw_column(&rotated, "accounts", "credentials", fresh.id.get()).await;
    let stored_id: String = raw[1..5].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        stored_id, new_key_id,
        "new writes are sealed with the first (new) key"
    );

    // Re-sealing moves everything to B, so that A may go; a second pass finds nothing.
    let report = rotated.reseal_all().await.expect("re-sealing works");
    assert_eq!(
        (report.resealed, report.unreadable.len()),
        (2, 0),
        "the old account's credentials and the certificate key are re-sealed: {report:?}"
    );
    let again = rotated.reseal_all().await.expect("re-sealing works");
    assert_eq!(again.resealed, 0, "nothing is left under A: {again:?}");
    rotated.close().await.expect("close works");
    let only_b = open(url, cipher(&[0xB2])).await;
    assert_eq!(
        AccountRepo::get(&only_b, old.id)
            .await
            .expect("re-sealed secrets read with B alone"),
        Some(old.clone())
    );
    assert_eq!(
        CertificateRepo::get(&only_b, cert.id)
            .await
            .expect("reads")
            .and_then(|c| c.key),
        cert_read.key
    );
    only_b.close().await.expect("close works");

    // A pass with a key that opens nothing changes nothing and names every value.
    let wrong = open(url, cipher(&[0xEE])).await;
    let report = wrong.reseal_all().await.expect("the pass runs");
    assert_eq!(report.resealed, 0, "{report:?}");
    assert_eq!(report.unreadable.len(), 3, "{report:?}");
    assert!(
        report
            .unreadable
            .iter()
            .any(|r| r == &format!("accounts.credentials row {}", old.id.get())),
        "{report:?}"
    );
    wrong.close().await.expect("close works");

    let only_a = open(url, cipher(&[0xA1])).await;
    let unreadable = AccountRepo::get(&only_a, fresh.id).await;
    assert!(
        matches!(unreadable, Err(RepoError::Backend(_))),
        "a secret sealed with B must not open with A alone, got {unreadable:?}"
    );
    only_a.close().await.expect("close works");
}

/// A sealed value copied to another row or another column does not decrypt: the store
/// refuses it instead of handing out another row's secret.
async fn moved_secrets_do_not_open(url: &str) {
    let store = open(url, cipher(&[0xC3])).await;
    let owner = user(&store, "binding-owner").await;
    let dir = "https://127.0.0.1:14000/dir";
    let first = AccountRepo::insert(&store, new_account(owner.id, "one@example.com", dir))
        .await
        .expect("insert works");
    let second = AccountRepo::insert(&store, new_account(owner.id, "two@example.com", dir))
        .await
        .expect("insert works");
    let refused = |what: &str, result: String| {
        assert!(
            result.contains("Decrypt"),
            "{what} must be refused as undecryptable, got {result}"
        );
    };

    // Another row of the same column: the attacker's account gets the victim's key.
    let victim = raw_column(&store, "accounts", "credentials", first.id.get()).await;
    set_raw_column(&store, "accounts", "credentials", second.id.get(), &victim).await;
    refused(
        "credentials moved to another account",
        format!("{:?}", AccountRepo::get(&store, second.id).await),
    );
    assert_eq!(
        AccountRepo::get(&store, first.id).await.expect("reads"),
        Some(first.clone()),
        "the original row still opens"
    );

    // Another column of the same row: an uploaded key read as the attempt's key.
    let upload = OrderSpec {
        key: Some(private_key()),
        ..spec(&["bound.example.com"])
    };
    let o = order_with(&store, &first, upload).await;
    assert_eq!(get_order(&store, o.id()).await.spec().key, o.spec().key);
    let sealed_upload = raw_column(&store, "orders", "upload_key", o.id().get()).await;
    set_raw_column(&store, "orders", "cert_key", o.id().get(), &sealed_upload).await;
    refused(
        "an uploaded key moved to the cert_key column",
        format!("{:?}", OrderRepo::get(&store, o.id()).await),
    );

    // Another certificate's private key.
    let other = order(&store, &first, &["bound2.example.com"]).await;
    let cert_a =
        CertificateRepo::insert(&store, new_certificate(&other, "b1", Some(private_key())))
            .await
            .expect("insert works");
    let cert_b =
        CertificateRepo::insert(&store, new_certificate(&other, "b2", Some(private_key())))
            .await
            .expect("insert works");
    let key_a = raw_column(&store, "certificates", "private_key", cert_a.id.get()).await;
    set_raw_column(
        &store,
        "certificates",
        "private_key",
        cert_b.id.get(),
        &key_a,
    )
    .await;
    refused(
        "a private key moved to another certificate",
        format!("{:?}", CertificateRepo::get(&store, cert_b.id).await),
    );
    assert_eq!(
        CertificateRepo::get(&store, cert_a.id)
            .await
            .expect("reads")
            .and_then(|c| c.key),
        cert_a.key
    );
    store.close().await.expect("close works");
}

/// Rows sealed the previous way (bound to their column only) still read, and the
/// re-sealing migration binds them to their rows.
async fn column_bound_rows_are_resealed(url: &str) {
    const SEED: u8 = 0xD4;
    let store = open(url, cipher(&[SEED])).await;
    let owner = user(&store, "legacy-owner").await;
    let acct = account(&store, owner.id).await;
    let o = order(&store, &acct, &["legacy.example.com"]).await;
    let key = private_key();
    let cert = CertificateRepo::insert(&store, new_certificate(&o, "c1", Some(key.clone())))
        .await
        .expect("insert works");
    let legacy_credentials = column_bound(
        SEED,
        "accounts.credentials",
        acct.credentials.expose().as_bytes(),
    );
    set_raw_column(
        &store,
        "accounts",
        "credentials",
        acct.id.get(),
        &legacy_credentials,
    )
    .await;
    let legacy_key = column_bound(SEED, "certificates.private_key", key.expose().as_bytes());
    set_raw_column(
        &store,
        "certificates",
        "private_key",
        cert.id.get(),
        &legacy_key,
    )
    .await;
    assert_eq!(
        AccountRepo::get(&store, acct.id)
            .await
            .expect("format 1 still reads"),
        Some(acct.clone())
    );

    // Run the re-sealing migration again, as on a database the previous version wrote.
    let db = store.connection();
    db.execute_unprepared(
        "DELETE FROM seaql_migrations WHERE version = 'm20261201_000011_bound_secrets'",
    )
    .await
    .expect("forget the migration");
    store
        .migrate()
        .await
        .expect("the re-sealing migration runs");
    for (table, column, id) in [
        ("accounts", "credentials", acct.id.get()),
        ("certificates", "private_key", cert.id.get()),
    ] {
        let raw = raw_column(&store, table, column, id).await;
        assert_eq!(raw[0], 2, "{table}.{column} is re-sealed in format 2");
    }
    assert_eq!(
        AccountRepo::get(&store, acct.id).await.expect("reads"),
        Some(acct.clone())
    );
    assert_eq!(
        CertificateRepo::get(&store, cert.id)
            .await
            .expect("reads")
            .and_then(|c| c.key),
        Some(key)
    );
    store.close().await.expect("close works");

    // Without the master keys the migration refuses to run and records nothing.
    let bare = Store::connect(url, cipher(&[SEED]))
        .await
        .expect("connects");
    bare.connection()
        .execute_unprepared(
            "DELETE FROM seaql_migrations WHERE version = 'm20261201_000011_bound_secrets'",
        )
        .await
        .expect("forget the migration");
    use sea_orm_migration::MigratorTrait as _;
    let without_keys = acmeport_store::Migrator::up(bare.connection(), None).await;
    assert!(
        format!("{without_keys:?}").contains("needs the master keys"),
        "a migrator run without the keys must fail clearly, got {without_keys:?}"
    );
    bare.migrate()
        .await
        .expect("Store::migrate supplies the keys");
    bare.close().await.expect("close works");
}

/// `stores` × `tasks_per_store` claimers race over `orders` pending orders; every order
/// must be claimed exactly once.
async fn parallel_claims(
    stores: Vec<Store>,
    tasks_per_store: usize,
    orders: usize,
) -> std::time::Duration {
    let setup = &stores[0];
    let owner = user(setup, "claim-owner").await;
    let acct = account(setup, owner.id).await;
    let mut expected = HashSet::new();
    for i in 0..orders {
        expected.insert(
            order(setup, &acct, &[&format!("n{i}.example.com")])
                .await
                .id(),
        );
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..tasks_per_store {
            let store = store.clone();
            let me = worker(&format!("store{s}-task{t}"));
            tasks.push(tokio::spawn(async move {
                let mut claimed = Vec::new();
                loop {
                    let now = OffsetDateTime::now_utc();
                    match OrderRepo::claim(&store, &me, now, now + Duration::seconds(60)).await {
                        Ok(Some(o)) => claimed.push(o.id()),
                        Ok(None) => return claimed,
                        Err(e) => panic!("{me} failed to claim: {e:?}"),
                    }
                }
            }));
        }
    }
    let mut seen = HashSet::new();
    for task in tasks {
        for id in task.await.expect("claimer task finished") {
            assert!(seen.insert(id), "order {id} was claimed twice");
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(
        seen, expected,
        "every pending order is claimed exactly once"
    );
    elapsed
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn sqlite_store_meets_the_repository_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir);
    let store = open(&url, cipher(&[1])).await;
    store.migrate().await.expect("migrating twice is a no-op");
    let db = store.connection();
    let mode = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "PRAGMA journal_mode",
        ))
        .await
        .expect("pragma works")
        .expect("one row")
        .try_get_by_index::<String>(0)
        .expect("text");
    assert_eq!(mode, "wal", "the SQLite file must be in WAL mode");

    let started = Instant::now();
    contract(&store).await;
    eprintln!("sqlite contract suite: {:?}", started.elapsed());
    store.close().await.expect("close works");
}

#[tokio::test]
async fn postgres_store_meets_the_repository_contract() {
    let db = TestDatabase::create().await;
    let store = open(db.url(), cipher(&[1])).await;
    store.migrate().await.expect("migrating twice is a no-op");
    let started = Instant::now();
    contract(&store).await;
    eprintln!("postgres contract suite: {:?}", started.elapsed());
    store.close().await.expect("close works");
}

#[tokio::test]
async fn sqlite_keys_survive_master_key_rotation() {
    let dir = tempfile::tempdir().expect("temp dir");
    rotation(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_keys_survive_master_key_rotation() {
    let db = TestDatabase::create().await;
    rotation(db.url()).await;
}

#[tokio::test]
async fn sqlite_secrets_moved_to_another_row_or_column_do_not_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    moved_secrets_do_not_open(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_secrets_moved_to_another_row_or_column_do_not_open() {
    let db = TestDatabase::create().await;
    moved_secrets_do_not_open(db.url()).await;
}

#[tokio::test]
async fn sqlite_column_bound_secrets_are_resealed_to_their_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    column_bound_rows_are_resealed(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_column_bound_secrets_are_resealed_to_their_rows() {
    let db = TestDatabase::create().await;
    column_bound_rows_are_resealed(db.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_stores_claiming_in_parallel_never_share_an_order() {
    let db = TestDatabase::create().await;
    let first = open(db.url(), cipher(&[1])).await;
    // A second pool stands for a second instance on the same database.
    let second = open(db.url(), cipher(&[1])).await;
    let elapsed = parallel_claims(vec![first.clone(), second.clone()], 4, 40).await;
    eprintln!("postgres: 8 claimers over 40 orders in {elapsed:?}");
    first.close().await.expect("close works");
    second.close().await.expect("close works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_workers_claiming_in_parallel_never_share_an_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&sqlite_url(&dir), cipher(&[1])).await;
    let elapsed = parallel_claims(vec![store.clone()], 8, 40).await;
    eprintln!("sqlite: 8 claimers over 40 orders in {elapsed:?}");
    store.close().await.expect("close works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_instances_starting_together_migrate_once() {
    let db = TestDatabase::create().await;
    let url = db.url();
    let starts = (0..4).map(|_| open(url, cipher(&[1])));
    let stores = futures::future::join_all(starts).await;
    for store in stores {
        assert_eq!(
            UserRepo::count(&store)
                .await
                .expect("every instance sees the schema"),
            0
        );
        store.close().await.expect("close works");
    }
}

#[tokio::test]
async fn unknown_database_schemes_are_refused() {
    let refused = Store::connect("mysql://root@127.0.0.1/acmeport", cipher(&[1])).await;
    assert!(
        matches!(refused, Err(StoreError::UnsupportedUrl(ref s)) if s == "mysql"),
        "expected UnsupportedUrl(\"mysql\"), got {refused:?}"
    );
}

/// The counts behind the per-user quotas: accounts, pending orders, orders since a time,
/// each for its user only.
async fn usage_counts(store: &Store) {
    use acmeport_domain::ports::UsageCounter;
    let alice = user(store, "quota-alice").await;
    let bob = user(store, "quota-bob").await;
    let alices = account(store, alice.id).await;
    AccountRepo::insert(
        store,
        new_account(
            alice.id,
            "second@example.com",
            "https://127.0.0.1:14000/dir",
        ),
    )
    .await
    .expect("a second account");
    let bobs = account(store, bob.id).await;
    let first = order(store, &alices, &["q1.example.com"]).await;
    order(store, &alices, &["q2.example.com"]).await;
    order(store, &bobs, &["q3.example.com"]).await;

    assert_eq!(store.accounts(alice.id).await.expect("count"), 2);
    assert_eq!(store.accounts(bob.id).await.expect("count"), 1);
    assert_eq!(store.orders_in_flight(alice.id).await.expect("count"), 2);
    assert_eq!(store.orders_in_flight(bob.id).await.expect("count"), 1);
    // Orders are created at `at(2)`.
    assert_eq!(store.orders_since(alice.id, at(2)).await.expect("count"), 2);
    assert_eq!(store.orders_since(alice.id, at(3)).await.expect("count"), 0);

    let mut done = get_order(store, first.id()).await;
    done.failed("given up for the test")
        .expect("a pending order can fail");
    OrderRepo::save(store, &done, None, at(3))
        .await
        .expect("saving works");
    assert_eq!(
        store.orders_in_flight(alice.id).await.expect("count"),
        1,
        "an invalid order is no longer in flight"
    );
}

#[tokio::test]
async fn sqlite_store_counts_usage_per_user() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&sqlite_url(&dir), cipher(&[1])).await;
    usage_counts(&store).await;
    store.close().await.expect("close works");
}

#[tokio::test]
async fn postgres_store_counts_usage_per_user() {
    let db = TestDatabase::create().await;
    let store = open(db.url(), cipher(&[1])).await;
    usage_counts(&store).await;
    store.close().await.expect("close works");
}

/// `acmeport keys rotate` through the real binary: afterwards the key file holds one new
/// key, every secret opens with it alone, and the old key opens none.
#[tokio::test]
async fn keys_rotate_leaves_every_secret_readable_under_the_new_key_only() {
    use crate::harness::service;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("acmeport.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n\n[log]\nformat = \"json\"\n",
            dir.path().display()
        ),
    )
    .expect("write the configuration");
    let (status, output) = service::run(&config, &["migrate"], &[]).await;
    assert!(status.success(), "`acmeport migrate` failed:\n{output}");
    let key_file = dir.path().join("master.key");
    let old = KeyCipher::from_key_file(&key_file).expect("migrate created the key file");

    // The binary's default database, filled through the store with the key file's key.
    let url = sqlite_url(&dir);
    let store = open(&url, old.clone()).await;
    let owner = user(&store, "rotate-owner").await;
    let acct = account(&store, owner.id).await;
    let upload = OrderSpec {
        key: Some(private_key()),
        ..spec(&["rotate-cli.example.com"])
    };
    let o = order_with(&store, &acct, upload).await;
    let cert = CertificateRepo::insert(&store, new_certificate(&o, "f1", Some(private_key())))
        .await
        .expect("insert works");
    store.close().await.expect("close works");

    let (status, output) = service::run(&config, &["keys", "rotate"], &[]).await;
    assert!(status.success(), "`acmeport keys rotate` failed:\n{output}");
    assert!(
        output.contains("re-sealed 3 secrets"),
        "the credentials, the uploaded key and the certificate key are re-sealed:\n{output}"
    );
    let new = KeyCipher::from_key_file(&key_file).expect("the key file still reads");
    assert_eq!(new.key_ids().len(), 1, "only the new key is left: {output}");
    assert_ne!(new.key_ids(), old.key_ids(), "the key changed");
    let text = std::fs::read_to_string(&key_file).expect("readable");
    assert!(
        !output.contains(text.lines().last().unwrap_or("?")),
        "the command never prints a key"
    );

    let with_new = open(&url, new).await;
    assert_eq!(
        AccountRepo::get(&with_new, acct.id).await.expect("reads"),
        Some(acct.clone())
    );
    assert_eq!(get_order(&with_new, o.id()).await.spec().key, o.spec().key);
    assert_eq!(
        CertificateRepo::get(&with_new, cert.id)
            .await
            .expect("reads")
            .and_then(|c| c.key),
        cert.key
    );
    with_new.close().await.expect("close works");
    let with_old = open(&url, old).await;
    for (what, result) in [
        (
            "account",
            format!("{:?}", AccountRepo::get(&with_old, acct.id).await),
        ),
        (
            "order",
            format!("{:?}", OrderRepo::get(&with_old, o.id()).await),
        ),
        (
            "certificate",
            format!("{:?}", CertificateRepo::get(&with_old, cert.id).await),
        ),
    ] {
        assert!(
            result.contains("Decrypt"),
            "the old key must open no {what} any more, got {result}"
        );
    }
    with_old.close().await.expect("close works");
}
