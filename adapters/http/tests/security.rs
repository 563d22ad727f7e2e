//! Who may do what, through the handlers over the domain fakes: grants and the name
//! check of orders, user management and token generations, API keys and their scopes,
//! JSON-only bodies, the audit log and the key rollover.

mod common;

use acmeport_domain::ports::Clock as _;
use acmeport_domain::testing::Kit;
use acmeport_domain::Settings;
use acmeport_http::HttpConfig;
use common::{app_with, basic, App, ADMIN, ALICE, BOB};
use serde_json::{json, Value};
use std::time::Duration;

/// The routes over a service that lets non-admins order only granted names.
async fn strict() -> App {
    let kit = Kit::with_settings(Settings {
        allow_any_name: false,
        ..Settings::default()
    });
    app_with(kit, HttpConfig::DEFAULT_BODY_LIMIT).await
}

async fn user_id(app: &App, name: &str) -> i64 {
    let users = app.get("/api/users", ADMIN).await.expect(200);
    users
        .body
        .as_object()
        .expect("object")
        .values()
        .find(|u| u["username"] == name)
        .and_then(|u| u["id"].as_i64())
        .unwrap_or_else(|| panic!("no user {name} in {}", users.text))
}

async fn order(app: &App, who: (&str, &str), account: i64, domains: &[&str]) -> common::Answer {
    let kind = if domains.iter().any(|d| d.starts_with("*.")) {
        "dns"
    } else {
        "http"
    };
    app.post(
        "/api/order",
        who,
        &json!({ "domains": domains, "account": account, "type": kind }),
    )
    .await
}

async fn grant(app: &App, user: i64, pattern: &str) -> common::Answer {
    app.post(
        &format!("/api/users/{user}/domains"),
        ADMIN,
        &json!({ "pattern": pattern }),
    )
    .await
}

#[tokio::test]
async fn non_admins_order_only_granted_names() {
    let app = strict().await;
    let alice = user_id(&app, "alice").await;
    let account = app.account(ALICE, "alice@example.com").await;

    let refused = order(&app, ALICE, account, &["www.example.com"])
        .await
        .expect(400);
    assert_eq!(
        refused.reason(),
        "domain `www.example.com` is not granted to this user"
    );
    assert!(
        app.kit.store.orders().is_empty(),
        "a refused order is not stored"
    );

    let g = grant(&app, alice, "*.example.com").await.expect(201);
    assert_eq!(g.body["pattern"], "*.example.com");
    grant(&app, alice, ".Bücher.example").await.expect(201);
    grant(&app, alice, "shop.test").await.expect(201);
    // A grant the user has already is a conflict (409), not a bad request.
    let dup = grant(&app, alice, "*.EXAMPLE.com.").await.expect(409);
    assert!(dup.reason().contains("already exists"), "{}", dup.text);
    let bad = grant(&app, alice, "*.com").await.expect(400);
    assert!(bad.reason().starts_with("pattern: "), "{}", bad.text);

    let listed = app
        .get(&format!("/api/users/{alice}/domains"), ADMIN)
        .await
        .expect(200);
    let mut patterns: Vec<&str> = listed
        .body
        .as_object()
        .expect("keyed by id")
        .values()
        .map(|g| g["pattern"].as_str().expect("pattern"))
        .collect();
    patterns.sort_unstable();
    assert_eq!(
        patterns,
        ["*.example.com", ".xn--bcher-kva.example", "shop.test"]
    );

    order(&app, ALICE, account, &["www.example.com", "*.example.com"])
        .await
        .expect(201);
    order(
        &app,
        ALICE,
        account,
        &["a.b.bücher.example", "xn--bcher-kva.example"],
    )
    .await
    .expect(201);
    // The first name not covered is named, whatever its position.
    let partly = order(
        &app,
        ALICE,
        account,
        &["shop.test", "a.b.example.com", "evil.org"],
    )
    .await
    .expect(400);
    assert_eq!(
        partly.reason(),
        "domain `a.b.example.com` is not granted to this user"
    );
    let apex = order(&app, ALICE, account, &["example.com"])
        .await
        .expect(400);
    assert!(apex.reason().contains("`example.com`"), "{}", apex.text);

    // Admins order anything.
    let admin_account = app.account(ADMIN, "admin@example.com").await;
    order(&app, ADMIN, admin_account, &["anything.org"])
        .await
        .expect(201);
}

#[tokio::test]
async fn reissues_are_refused_once_the_grant_is_gone() {
    let app = strict().await;
    let alice = user_id(&app, "alice").await;
    grant(&app, alice, "shop.test").await.expect(201);
    let (_, order_id, _) = app.issued(ALICE, "shop.test").await;
    app.call("COPY", &format!("/api/order/{order_id}"), Some(ALICE), None)
        .await
        .expect(200);
    app.work().await;

    app.call(
        "DELETE",
        &format!("/api/users/{alice}/domains"),
        Some(ADMIN),
        Some(r#"{"pattern": "shop.test"}"#),
    )
    .await
    .expect(200);
    let refused = app
        .call("COPY", &format!("/api/order/{order_id}"), Some(ALICE), None)
        .await
        .expect(400);
    assert_eq!(
        refused.reason(),
        "domain `shop.test` is not granted to this user"
    );
    // Reissuing through POST with `reissue` is refused the same way.
    let account = app.account(ALICE, "alice@example.com").await;
    let again = app
        .post(
            "/api/order",
            ALICE,
            &json!({ "domains": ["shop.test"], "account": account, "reissue": true }),
        )
        .await
        .expect(400);
    assert_eq!(
        again.reason(),
        "domain `shop.test` is not granted to this user"
    );
}

#[tokio::test]
async fn only_admins_manage_grants_and_users() {
    let app = strict().await;
    let bob = user_id(&app, "bob").await;
    let alice = user_id(&app, "alice").await;
    let missing = app
        .get("/api/users/999/domains", ADMIN)
        .await
        .expect(400)
        .reason()
        .to_owned();
    for (method, path, body) in [
        ("GET", format!("/api/users/{bob}/domains"), None),
        (
            "POST",
            format!("/api/users/{alice}/domains"),
            Some(r#"{"pattern": "x.test"}"#),
        ),
        (
            "DELETE",
            format!("/api/users/{alice}/domains"),
            Some(r#"{"pattern": "x.test"}"#),
        ),
        (
            "PATCH",
            format!("/api/users/{bob}"),
            Some(r#"{"disabled": true}"#),
        ),
        ("DELETE", format!("/api/users/{bob}"), None),
    ] {
        let a = app.call(method, &path, Some(ALICE), body).await.expect(400);
        assert_eq!(
            a.reason(),
            missing,
            "{method} {path} must read like a missing user"
        );
    }
    let list = app.get("/api/users", ALICE).await.expect(403);
    assert_eq!(list.reason(), "only an admin may do this");
    assert_eq!(
        app.get(&format!("/api/users/{alice}/domains"), ADMIN)
            .await
            .expect(200)
            .body,
        json!({})
    );
}

#[tokio::test]
async fn a_password_change_ends_every_token_at_once() {
    let app = strict().await;
    let alice = user_id(&app, "alice").await;
    let token = app.get("/api/token", ALICE).await.expect(200).body["token"]
        .as_str()
        .expect("token")
        .to_owned();
    app.get("/api/resource", (&token, "")).await.expect(200);

    let path = format!("/api/users/{alice}/password");
    let wrong = app
        .call(
            "PUT",
            &path,
            Some(ALICE),
            Some(r#"{"current_password": "nope-nope", "password": "a-new-password"}"#),
        )
        .await
        .expect(403);
    assert_eq!(wrong.reason(), "current_password: missing or wrong");
    app.get("/api/resource", (&token, "")).await.expect(200);
    let short = app
        .call(
            "PUT",
            &path,
            Some(ALICE),
            Some(r#"{"current_password": "alice-password", "password": "short"}"#),
        )
        .await
        .expect(400);
    assert!(short.reason().starts_with("password: "), "{}", short.text);
    // Another user's id reads like a missing one.
    app.call(
        "PUT",
        &format!("/api/users/{}/password", user_id(&app, "bob").await),
        Some(ALICE),
        Some(r#"{"current_password": "alice-password", "password": "a-new-password"}"#),
    )
    .await
    .expect(400);

    app.call(
        "PUT",
        &path,
        Some(ALICE),
        Some(r#"{"current_password": "alice-password", "password": "a-new-password"}"#),
    )
    .await
    .expect(200);
    app.get("/api/resource", (&token, "")).await.expect(401);
    app.get("/api/resource", ALICE).await.expect(401);
    app.get("/api/resource", ("alice", "a-new-password"))
        .await
        .expect(200);

    // An admin sets a password without the current one.
    app.call(
        "PUT",
        &path,
        Some(ADMIN),
        Some(r#"{"password": "admin-chosen-password"}"#),
    )
    .await
    .expect(200);
    app.get("/api/resource", ("alice", "admin-chosen-password"))
        .await
        .expect(200);
}

#[tokio::test]
async fn disabling_a_user_ends_their_tokens_and_keys() {
    let app = strict().await;
    let bob = user_id(&app, "bob").await;
    let token = app.get("/api/token", BOB).await.expect(200).body["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let key = app
        .post("/api/keys", BOB, &json!({ "name": "deploy" }))
        .await
        .expect(201)
        .body["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let bearer = |secret: &str| {
        warp::test::request()
            .method("GET")
            .path("/api/resource")
            .header("authorization", format!("Bearer {secret}"))
    };
    app.raw(bearer(&key)).await.expect(200);

    let patched = app
        .call(
            "PATCH",
            &format!("/api/users/{bob}"),
            Some(ADMIN),
            Some(r#"{"disabled": true}"#),
        )
        .await
        .expect(200);
    assert_eq!(patched.body["disabled"], true);
    app.get("/api/resource", (&token, "")).await.expect(401);
    app.get("/api/resource", BOB).await.expect(401);
    app.raw(bearer(&key)).await.expect(401);

    // Enabling again lets the password in, not the old token.
    app.call(
        "PATCH",
        &format!("/api/users/{bob}"),
        Some(ADMIN),
        Some(r#"{"disabled": false}"#),
    )
    .await
    .expect(200);
    app.get("/api/resource", BOB).await.expect(200);
    app.get("/api/resource", (&token, "")).await.expect(401);

    let admin = user_id(&app, "admin").await;
    let own = app
        .call(
            "PATCH",
            &format!("/api/users/{admin}"),
            Some(ADMIN),
            Some(r#"{"disabled": true}"#),
        )
        .await
        .expect(403);
    assert!(own.reason().contains("themselves"), "{}", own.text);
    let unknown = app
        .call(
            "PATCH",
            &format!("/api/users/{bob}"),
            Some(ADMIN),
            Some(r#"{"disabled": true, "role": "root"}"#),
        )
        .await
        .expect(400);
    assert!(
        unknown.reason().starts_with("role: unknown field `role`"),
        "{}",
        unknown.text
    );

    app.call("DELETE", &format!("/api/users/{bob}"), Some(ADMIN), None)
        .await
        .expect(200);
    app.get("/api/resource", BOB).await.expect(401);
    app.call("DELETE", &format!("/api/users/{bob}"), Some(ADMIN), None)
        .await
        .expect(400);
}

#[tokio::test]
async fn api_keys_are_shown_once_and_held_to_their_scope() {
    let app = strict().await;
    let alice = user_id(&app, "alice").await;
    grant(&app, alice, ".example.com").await.expect(201);
    let (_, first_order, first_cert) = app.issued(ALICE, "a.example.com").await;
    let (_, second_order, _) = app.issued(ALICE, "b.example.com").await;

    let created = app
        .post(
            "/api/keys",
            ALICE,
            &json!({ "name": "proxy", "scope": { "read_only": true, "orders": [first_order] } }),
        )
        .await
        .expect(201);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let secret = created.body["secret"].as_str().expect("secret").to_owned();
    let key_id = created.id();
    assert!(secret.starts_with(&format!("apk_{key_id}_")), "{secret}");
    let shown = app
        .get(&format!("/api/keys/{key_id}"), ALICE)
        .await
        .expect(200);
    assert!(shown.body.get("secret").is_none(), "{}", shown.text);
    assert!(!app
        .get("/api/keys", ALICE)
        .await
        .expect(200)
        .text
        .contains(&secret));
    assert_eq!(
        shown.body["scope"],
        json!({ "read_only": true, "orders": [first_order] })
    );

    // As Basic username and as Bearer token alike.
    app.get(&format!("/api/order/{first_order}"), (&secret, ""))
        .await
        .expect(200);
    let bearer = app
        .raw(
            warp::test::request()
                .method("GET")
                .path(&format!("/api/certificate/{first_cert}"))
                .header("authorization", format!("Bearer {secret}")),
        )
        .await
        .expect(200);
    assert!(bearer.body["key"].is_string());
    for (method, path) in [
        ("GET", format!("/api/order/{second_order}")),
        ("GET", "/api/order".to_owned()),
        ("COPY", format!("/api/order/{first_order}")),
        ("DELETE", format!("/api/certificate/{first_cert}")),
        ("GET", "/api/token".to_owned()),
        ("GET", "/api/keys".to_owned()),
    ] {
        let a = app.call(method, &path, Some((&secret, "")), None).await;
        assert_eq!(a.status, 403, "{method} {path}: {}", a.text);
    }

    // A key limited to names orders only those, on top of the user's grants.
    let scoped = app
        .post(
            "/api/keys",
            ALICE,
            &json!({ "name": "deploy", "scope": { "domains": ["*.example.com"] } }),
        )
        .await
        .expect(201)
        .body["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let account = app.account(ALICE, "alice@example.com").await;
    order(&app, (&scoped, ""), account, &["www.example.com"])
        .await
        .expect(201);
    let outside = order(&app, (&scoped, ""), account, &["a.b.example.com"])
        .await
        .expect(400);
    assert_eq!(
        outside.reason(),
        "domain `a.b.example.com` is not granted to this user"
    );
    let nested = app
        .post("/api/keys", (&scoped, ""), &json!({ "name": "child" }))
        .await
        .expect(403);
    assert!(nested.reason().starts_with("API key"), "{}", nested.text);

    // Bad requests name the field; another user's key reads like a missing one.
    for (body, field) in [
        (json!({ "name": "" }), "name"),
        (
            json!({ "name": "x", "expires_at": "tomorrow" }),
            "expires_at",
        ),
        (
            json!({ "name": "x", "expires_at": "2000-01-01T00:00:00Z" }),
            "expires_at",
        ),
        (
            json!({ "name": "x", "scope": { "domains": ["*.*.x"] } }),
            "scope.domains[0]",
        ),
        (
            json!({ "name": "x", "scope": { "orders": [second_order + 100] } }),
            "orders",
        ),
        (json!({ "name": "x", "admin": true }), "admin"),
    ] {
        let a = app.post("/api/keys", ALICE, &body).await.expect(400);
        assert!(a.reason().starts_with(field), "{body}: {}", a.text);
    }
    // A name the caller's keys already use is a conflict.
    let taken = app
        .post("/api/keys", ALICE, &json!({ "name": "proxy" }))
        .await
        .expect(409);
    assert!(taken.reason().starts_with("API key"), "{}", taken.text);
    app.get(&format!("/api/keys/{key_id}"), BOB)
        .await
        .expect(400);
    app.call("DELETE", &format!("/api/keys/{key_id}"), Some(BOB), None)
        .await
        .expect(400);

    app.call("DELETE", &format!("/api/keys/{key_id}"), Some(ALICE), None)
        .await
        .expect(200);
    app.get(&format!("/api/order/{first_order}"), (&secret, ""))
        .await
        .expect(401);
    // A forged secret with a real id does not pass.
    let forged = format!("apk_{key_id}_{}", "A".repeat(43));
    app.get("/api/resource", (&forged, "")).await.expect(401);
}

#[tokio::test]
async fn expired_api_keys_stop_working() {
    let app = strict().await;
    let now = app.kit.clock.now();
    let expires = (now + Duration::from_secs(60))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let secret = app
        .post(
            "/api/keys",
            ALICE,
            &json!({ "name": "short", "expires_at": expires }),
        )
        .await
        .expect(201)
        .body["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    app.get("/api/resource", (&secret, "")).await.expect(200);
    app.kit.clock.advance(Duration::from_secs(61));
    app.get("/api/resource", (&secret, "")).await.expect(401);
}

#[tokio::test]
async fn bodies_must_be_json() {
    let app = strict().await;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut request = warp::test::request()
            .method("POST")
            .path("/api/users")
            .header("authorization", basic(ADMIN.0, ADMIN.1))
            .body(r#"{"username": "csrf", "password": "csrf-password"}"#);
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        let a = app.raw(request).await.expect(415);
        assert_eq!(
            a.reason(),
            "request body must be application/json",
            "{content_type:?}"
        );
    }
    let form = warp::test::request()
        .method("POST")
        .path("/api/users")
        .header("authorization", basic(ADMIN.0, ADMIN.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=csrf&password=csrf-password&admin=true");
    app.raw(form).await.expect(415);
    let users = app.get("/api/users", ADMIN).await.expect(200);
    assert!(!users.text.contains("csrf"), "{}", users.text);

    let unknown = app
        .post(
            "/api/users",
            ADMIN,
            &json!({ "username": "carol", "password": "carol-password", "is_admin": true }),
        )
        .await
        .expect(400);
    assert!(
        unknown
            .reason()
            .starts_with("is_admin: unknown field `is_admin`"),
        "{}",
        unknown.text
    );
    let unknown = app
        .post(
            "/api/acme",
            ALICE,
            &json!({ "email": "a@example.com", "directory": "x" }),
        )
        .await
        .expect(400);
    assert!(
        unknown.reason().starts_with("directory: unknown field"),
        "{}",
        unknown.text
    );
}

#[tokio::test]
async fn the_audit_log_records_each_action_once_without_secrets() {
    let app = strict().await;
    let alice = user_id(&app, "alice").await;
    app.get("/api/resource", ("alice", "not-her-password"))
        .await
        .expect(401);
    app.get("/api/resource", ("nobody", "whatever-password"))
        .await
        .expect(401);
    grant(&app, alice, "shop.test").await.expect(201);
    let (account, order_id, cert) = app.issued(ALICE, "shop.test").await;
    app.get(&format!("/api/certificate/{cert}"), ALICE)
        .await
        .expect(200);
    app.call("COPY", &format!("/api/order/{order_id}"), Some(ALICE), None)
        .await
        .expect(200);
    let key = app
        .post("/api/keys", ALICE, &json!({ "name": "ci" }))
        .await
        .expect(201);
    let secret = key.body["secret"].as_str().expect("secret").to_owned();
    app.call(
        "DELETE",
        &format!("/api/keys/{}", key.id()),
        Some(ALICE),
        None,
    )
    .await
    .expect(200);
    app.call(
        "PUT",
        &format!("/api/users/{alice}/password"),
        Some(ADMIN),
        Some(r#"{"password": "fresh-password-1"}"#),
    )
    .await
    .expect(200);
    app.call(
        "POST",
        &format!("/api/acme/{account}/key-rollover"),
        Some(("alice", "fresh-password-1")),
        None,
    )
    .await
    .expect(200);

    app.get("/api/audit", BOB).await.expect(403);
    let log = app.get("/api/audit", ADMIN).await.expect(200);
    let entries: Vec<&Value> = log.body.as_object().expect("keyed").values().collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    for action in [
        "login.failed",
        "grant.added",
        "account.registered",
        "order.created",
        "certificate.downloaded",
        "order.reissued",
        "api_key.created",
        "api_key.revoked",
        "user.password_changed",
        "account.key_rolled",
    ] {
        let n = actions.iter().filter(|a| **a == action).count();
        let expected = if action == "login.failed" { 2 } else { 1 };
        assert_eq!(n, expected, "{action} in {actions:?}");
    }
    for secret_text in [
        &secret,
        "not-her-password",
        "whatever-password",
        "fresh-password-1",
        "alice-password",
    ] {
        assert!(
            !log.text.contains(secret_text),
            "the audit log holds a secret: {}",
            log.text
        );
    }

    let by_alice = app
        .get(&format!("/api/audit?user={alice}"), ADMIN)
        .await
        .expect(200);
    assert!(by_alice
        .body
        .as_object()
        .expect("keyed")
        .values()
        .all(|e| e["user"] == alice));
    let paged = app.get("/api/audit?limit=2", ADMIN).await.expect(200);
    let link = paged.header("link").expect("a next link").to_owned();
    assert!(link.contains("limit=2&after="), "{link}");
    let future = app
        .get("/api/audit?since=2100-01-01T00:00:00Z", ADMIN)
        .await
        .expect(200);
    assert_eq!(future.body, json!({}));
    let bad = app
        .get("/api/audit?since=yesterday", ADMIN)
        .await
        .expect(400);
    assert!(bad.reason().starts_with("since:"), "{}", bad.text);
}

#[tokio::test]
async fn only_the_owner_rolls_an_account_key() {
    let app = strict().await;
    let account = app.account(ALICE, "alice@example.com").await;
    let path = format!("/api/acme/{account}/key-rollover");
    let other = app.call("POST", &path, Some(BOB), None).await.expect(400);
    assert_eq!(other.reason(), "account not found");
    let missing = app
        .call("POST", "/api/acme/999/key-rollover", Some(ALICE), None)
        .await
        .expect(400);
    assert_eq!(missing.reason(), other.reason());
    let rolled = app.call("POST", &path, Some(ALICE), None).await.expect(200);
    assert_eq!(rolled.body, json!({ "id": account, "status": "valid" }));
}

#[tokio::test]
async fn a_taken_api_key_name_is_a_conflict_and_the_first_key_stays() {
    let app = strict().await;
    let first = app
        .post("/api/keys", BOB, &json!({ "name": "deploy-web1" }))
        .await
        .expect(201)
        .body["id"]
        .clone();
    let again = app
        .post("/api/keys", BOB, &json!({ "name": "deploy-web1" }))
        .await
        .expect(409);
    assert!(
        again.body["status"]
            .as_str()
            .is_some_and(|s| s.contains("already exists")),
        "{}",
        again.body
    );
    let listed = app.get("/api/keys", BOB).await.expect(200).body;
    let keys = listed.as_object().expect("keys keyed by id");
    assert_eq!(keys.len(), 1, "{listed}");
    assert_eq!(keys.values().next().expect("one key")["id"], first);
}
