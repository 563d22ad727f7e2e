//! Who may do what, through the real `Application` (real Argon2 with its cache, the HMAC
//! token signer, the SQLite or PostgreSQL store) issuing through Pebble: grants and the
//! name check, token invalidation, API keys and their scopes, JSON-only bodies and the
//! audit log. The configuration keeps the default: non-admins need grants.

use super::*;
use crate::harness::postgres::TestDatabase;
use acmeport_server::config::DatabaseUrl;
use base64::Engine as _;

const CAROL: (&str, &str) = ("carol", "carol-password");

impl World {
    /// As [`World::new`], with grants required (the configuration's default).
    async fn strict() -> Self {
        let mut world = Self::new().await;
        world.config.authorization.allow_any_name = false;
        world
    }
}

impl Service {
    async fn user_id(&self, name: &str) -> i64 {
        let users = self.get("/api/users", ADMIN).await.expect(200);
        users
            .body
            .as_object()
            .expect("keyed by id")
            .values()
            .find(|u| u["username"] == name)
            .and_then(|u| u["id"].as_i64())
            .unwrap_or_else(|| panic!("no user {name}: {}", users.text))
    }

    async fn grant(&self, user: i64, pattern: &str) -> Answer {
        self.post(
            &format!("/api/users/{user}/domains"),
            ADMIN,
            &json!({ "pattern": pattern }),
        )
        .await
    }

    async fn order(&self, who: (&str, &str), account: i64, domains: &[&str]) -> Answer {
        self.post(
            "/api/order",
            who,
            &json!({ "domains": domains, "account": account, "type": "http" }),
        )
        .await
    }

    async fn audit(&self) -> Vec<Value> {
        let log = self.get("/api/audit?limit=1000", ADMIN).await.expect(200);
        log.body
            .as_object()
            .expect("keyed by id")
            .values()
            .cloned()
            .collect()
    }

    async fn with_bearer(&self, method: &str, path: &str, secret: &str) -> u16 {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(secret)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }
}

/// Grants, tokens, keys and the audit log, on the database `world` is configured with.
async fn who_may_do_what(world: &World) {
    let api = world.start().await;
    api.user(ALICE).await;
    api.user(BOB).await;
    let alice = api.user_id("alice").await;
    let account = api.account(ALICE).await;

    // Without grants every name is refused, naming it; nothing is stored.
    for names in [&["a.shop.test"][..], &["shop.test", "b.shop.test"]] {
        let refused = api.order(ALICE, account, names).await.expect(400);
        assert_eq!(
            refused.body["status"],
            format!("domain `{}` is not granted to this user", names[0])
        );
    }
    assert_eq!(
        api.get("/api/order", ALICE).await.expect(200).body,
        json!({})
    );

    // Grants: one label, any depth, IDNA; the first name not covered is named.
    api.grant(alice, "*.shop.test").await.expect(201);
    let idna = api.grant(alice, ".Bücher.test").await.expect(201);
    assert_eq!(idna.body["pattern"], ".xn--bcher-kva.test");
    api.grant(alice, "*.shop.test").await.expect(409);
    let partly = api
        .order(ALICE, account, &["a.shop.test", "x.a.shop.test"])
        .await
        .expect(400);
    assert_eq!(
        partly.body["status"],
        "domain `x.a.shop.test` is not granted to this user"
    );
    let order = api
        .order(ALICE, account, &["www.shop.test", "www.bücher.test"])
        .await
        .expect(201)
        .id();
    let valid = api
        .wait_order(ALICE, order, |o| o["status"] == "valid")
        .await;
    assert_eq!(
        valid.body["domains"],
        json!(["www.shop.test", "www.xn--bcher-kva.test"])
    );
    let cert = valid.body["resolved_cert_id"].as_i64().expect("issued");

    // Bob may not touch Alice's grants; once taken back, Alice's reissue is refused.
    api.call(
        "GET",
        &format!("/api/users/{alice}/domains"),
        Some(BOB),
        None,
    )
    .await
    .expect(400);
    api.call(
        "DELETE",
        &format!("/api/users/{alice}/domains"),
        Some(ADMIN),
        Some(r#"{"pattern": "*.shop.test"}"#.into()),
    )
    .await
    .expect(200);
    let copy = api
        .call("COPY", &format!("/api/order/{order}"), Some(ALICE), None)
        .await
        .expect(400);
    assert_eq!(
        copy.body["status"],
        "domain `www.shop.test` is not granted to this user"
    );

    // API keys: shown once, read-only and limited to one order, usable as Bearer token
    // and as Basic username, refused once revoked.
    let key = api
        .post(
            "/api/keys",
            ALICE,
            &json!({ "name": "proxy", "scope": { "read_only": true, "orders": [order] } }),
        )
        .await
        .expect(201);
    let secret = key.body["secret"].as_str().expect("secret").to_owned();
    let key_id = key.id();
    assert!(!api
        .get("/api/keys", ALICE)
        .await
        .expect(200)
        .text
        .contains(&secret));
    assert_eq!(
        api.with_bearer("GET", &format!("/api/certificate/{cert}"), &secret)
            .await,
        200
    );
    api.get(&format!("/api/order/{order}"), (&secret, ""))
        .await
        .expect(200);
    for (method, path) in [
        ("GET", "/api/order".to_owned()),
        ("COPY", format!("/api/order/{order}")),
        ("PURGE", format!("/api/certificate/{cert}")),
        ("GET", "/api/token".to_owned()),
    ] {
        assert_eq!(
            api.with_bearer(method, &path, &secret).await,
            403,
            "{method} {path}"
        );
    }
    api.call("DELETE", &format!("/api/keys/{key_id}"), Some(BOB), None)
        .await
        .expect(400);
    api.call("DELETE", &format!("/api/keys/{key_id}"), Some(ALICE), None)
        .await
        .expect(200);
    assert_eq!(
        api.with_bearer("GET", &format!("/api/order/{order}"), &secret)
            .await,
        401
    );

    // A password change ends the tokens at once, and the cached old password.
    let token = api.get("/api/token", ALICE).await.expect(200).body["token"]
        .as_str()
        .expect("token")
        .to_owned();
    api.get("/api/resource", (&token, "")).await.expect(200);
    api.call(
        "PUT",
        &format!("/api/users/{alice}/password"),
        Some(ALICE),
        Some(r#"{"current_password": "alice-password", "password": "alice-new-password"}"#.into()),
    )
    .await
    .expect(200);
    api.get("/api/resource", (&token, "")).await.expect(401);
    api.get("/api/resource", ALICE).await.expect(401);
    let alice_now = ("alice", "alice-new-password");
    api.get("/api/resource", alice_now).await.expect(200);

    // Disabling ends tokens and logins (a successful login was just cached).
    let token = api.get("/api/token", alice_now).await.expect(200).body["token"]
        .as_str()
        .expect("token")
        .to_owned();
    api.call(
        "PATCH",
        &format!("/api/users/{alice}"),
        Some(ADMIN),
        Some(r#"{"disabled": true}"#.into()),
    )
    .await
    .expect(200);
    api.get("/api/resource", (&token, "")).await.expect(401);
    api.get("/api/resource", alice_now).await.expect(401);

    // Cross-site shaped requests are refused and write nothing.
    for (content_type, body) in [
        (
            "text/plain",
            r#"{"username": "csrf", "password": "csrf-password"}"#,
        ),
        (
            "application/x-www-form-urlencoded",
            "username=csrf&password=csrf-password",
        ),
    ] {
        let status = api
            .http
            .post(format!("{}/api/users", api.base))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16();
        assert_eq!(status, 415, "{content_type}");
    }
    assert!(!api
        .get("/api/users", ADMIN)
        .await
        .expect(200)
        .text
        .contains("csrf"));
    let unknown = api
        .post(
            "/api/users",
            ADMIN,
            &json!({ "username": CAROL.0, "password": CAROL.1, "is_admin": true }),
        )
        .await
        .expect(400);
    assert!(
        unknown.text.contains("unknown field `is_admin`"),
        "{}",
        unknown.text
    );

    // The audit log: each action once, no secret.
    let entries = api.audit().await;
    let count = |action: &str| entries.iter().filter(|e| e["action"] == action).count();
    for (action, n) in [
        ("user.created", 2),
        ("grant.added", 2),
        ("grant.removed", 1),
        ("account.registered", 1),
        ("order.created", 1),
        ("api_key.created", 1),
        ("api_key.revoked", 1),
        ("certificate.downloaded", 1),
        ("user.password_changed", 1),
        ("user.updated", 1),
    ] {
        assert_eq!(count(action), n, "{action}: {entries:#?}");
    }
    assert!(count("login.failed") >= 2, "{entries:#?}");
    let text = serde_json::to_string(&entries).expect("JSON");
    for secret_text in [
        secret.as_str(),
        "alice-password",
        "alice-new-password",
        token.as_str(),
    ] {
        assert!(
            !text.contains(secret_text),
            "the audit log holds a secret: {text}"
        );
    }
    let by_alice = api
        .get(&format!("/api/audit?user={alice}"), ADMIN)
        .await
        .expect(200);
    assert!(by_alice
        .body
        .as_object()
        .expect("keyed")
        .values()
        .all(|e| e["user"] == alice));
    api.get("/api/audit", BOB).await.expect(403);
    api.stop().await;
}

#[tokio::test]
async fn who_may_do_what_on_sqlite() {
    let world = World::strict().await;
    who_may_do_what(&world).await;
}

#[tokio::test]
async fn who_may_do_what_on_postgresql() {
    let database = TestDatabase::create().await;
    let mut world = World::strict().await;
    world.config.database.url = Some(DatabaseUrl::new(database.url()));
    who_may_do_what(&world).await;
}

#[tokio::test]
async fn directories_are_allowed_by_configuration_and_never_on_the_internal_network() {
    let world = World::strict().await;
    let api = world.start().await;
    api.user(ALICE).await;
    let pebble = world.pebble.directory.to_string();
    let port: u16 = pebble
        .trim_start_matches("https://127.0.0.1:")
        .trim_end_matches("/dir")
        .parse()
        .unwrap_or_else(|_| panic!("Pebble's directory on 127.0.0.1: {pebble}"));

    // A non-admin may use the configured directory and the allowed public CAs only.
    let refused = api
        .post(
            "/api/acme",
            ALICE,
            &json!({ "email": "a@example.com", "server": format!("https://127.0.0.2:{port}/dir") }),
        )
        .await
        .expect(400);
    assert_eq!(
        refused.body["status"],
        format!("server: `https://127.0.0.2:{port}/dir` is not an allowed ACME directory")
    );
    api.post(
        "/api/acme",
        ALICE,
        &json!({ "email": "a@example.com", "server": pebble }),
    )
    .await
    .expect(201);

    // Admins may name any directory, but no request reaches a non-public address other
    // than the configured CA's host: not by a name that resolves to loopback (Pebble's
    // certificate is valid for `localhost`, so only the guard stops it), not by address.
    for server in [
        format!("https://localhost:{port}/dir"),
        format!("https://127.0.0.2:{port}/dir"),
        "https://10.255.255.1/directory".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://[::1]/dir".to_owned(),
    ] {
        let started = Instant::now();
        let a = api
            .post(
                "/api/acme",
                ADMIN,
                &json!({ "email": "root@example.com", "server": server }),
            )
            .await
            .expect(400);
        let reason = a.body["status"].as_str().expect("reason");
        assert!(
            reason.contains("refused to connect to")
                && reason.contains("loopback, private or link-local"),
            "{server}: {reason}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{server} must be refused before any connection attempt"
        );
    }
    assert!(
        !api.get("/api/acme", ADMIN)
            .await
            .expect(200)
            .text
            .contains("root@"),
        "no account may be stored"
    );
    api.stop().await;
}

#[tokio::test]
async fn unusable_eab_keys_and_account_keys_are_a_400_naming_the_field() {
    let world = World::strict().await;
    let api = world.start().await;
    api.user(ALICE).await;
    let short = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 16]);
    for (body, field, why) in [
        (
            json!({ "email": "a@example.com", "eab_kid": "kid-1", "eab_hmac_key": "not base64 !" }),
            "eab_hmac_key: ",
            "base64url",
        ),
        (
            json!({ "email": "a@example.com", "eab_kid": "kid-1", "eab_hmac_key": short }),
            "eab_hmac_key: ",
            "at least 32 bytes",
        ),
        (
            json!({ "email": "a@example.com", "eab_kid": "kid-1" }),
            "eab_hmac_key: ",
            "required",
        ),
        (
            json!({ "email": "a@example.com", "key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" }),
            "key: ",
            "P-256",
        ),
    ] {
        let refused = api.post("/api/acme", ALICE, &body).await.expect(400);
        let reason = refused.body["status"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with(field) && reason.contains(why),
            "{body}: expected a 400 naming `{field}` ({why}), got {}",
            refused.text
        );
        assert!(
            !reason.contains("not base64 !"),
            "the refusal does not echo the key: {reason}"
        );
    }
    assert!(
        !api.get("/api/acme", ALICE)
            .await
            .expect(200)
            .text
            .contains("a@example.com"),
        "no account may be stored"
    );
    api.stop().await;
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_never_looked_up_as_a_username() {
    use acmeport_auth::HmacTokenSigner;
    use acmeport_domain::ports::{TokenClaims, TokenSigner as _};
    let world = World::strict().await;
    let api = world.start().await;
    api.user(ALICE).await;
    let alice = api.user_id("alice").await;
    let foreign = HmacTokenSigner::new(&[9u8; 32])
        .expect("32 bytes")
        .sign(TokenClaims {
            user: acmeport_domain::UserId::new(alice),
            generation: 0,
            expires_at: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        });
    let foreign = foreign.expose().to_owned();
    // A user named exactly like the token: a username lookup would let this log in.
    api.post(
        "/api/users",
        ADMIN,
        &json!({ "username": foreign, "password": "token-named-password" }),
    )
    .await
    .expect(201);
    api.get("/api/resource", (&foreign, "token-named-password"))
        .await
        .expect(401);
    api.get("/api/resource", (&foreign, "")).await.expect(401);
    let failed: Vec<Value> = api
        .audit()
        .await
        .into_iter()
        .filter(|e| e["action"] == "login.failed")
        .collect();
    assert!(
        !serde_json::to_string(&failed)
            .expect("JSON")
            .contains(&foreign),
        "the token must not be logged as a username: {failed:#?}"
    );
    // This server's own tokens still work.
    let token = api.get("/api/token", ALICE).await.expect(200).body["token"]
        .as_str()
        .expect("token")
        .to_owned();
    api.get("/api/resource", (&token, "")).await.expect(200);
    api.stop().await;
}
