//! Handler tests: the whole route table over the domain service wired to the in-memory
//! fakes of `acmeport_domain::testing`. They pin the HTTP contract (status codes,
//! headers, bodies); the end-to-end tests repeat the important ones against the real
//! binary, Pebble and a real database.

mod common;

use acmeport_http::{serve, Api, HttpConfig, PublicUrl};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Routing

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let app = app().await;
    for path in [
        "/",
        "/nope",
        "/api/orders",
        "/api/order/1/x",
        "/api/order//1",
        "/api/docs/nope.js",
    ] {
        let a = app.call("GET", path, Some(ALICE), None).await.expect(404);
        assert_eq!(a.reason(), "not found", "{path}");
    }
    // An id that is not an integer is malformed input (400, as a missing id is), once
    // the caller is known.
    for (method, path) in [
        ("GET", "/api/order/abc"),
        ("COPY", "/api/order/1.5"),
        ("POST", "/api/order/x/reissue"),
        ("GET", "/api/certificate/99999999999999999999"),
        ("POST", "/api/certificate/x/purge"),
        ("GET", "/api/acme/abc"),
        ("POST", "/api/acme/abc/key-rollover"),
        ("GET", "/api/users/me"),
        ("DELETE", "/api/keys/k"),
    ] {
        let a = app.call(method, path, Some(ALICE), None).await.expect(400);
        assert_eq!(a.reason(), "id: must be an integer", "{method} {path}");
        app.call(method, path, None, None).await.expect(401);
    }
    // Lists refuse query parameters they do not know, as bodies refuse unknown fields.
    let unknown = app
        .get("/api/order?limit=5&colour=red", ALICE)
        .await
        .expect(400);
    assert_eq!(unknown.reason(), "unknown query parameter `colour`");
    app.get("/api/audit?user=1&since=2026-01-01T00:00:00Z", ADMIN)
        .await
        .expect(200);
    for (method, path, allow) in [
        ("PUT", "/api/order", "GET, POST"),
        ("DELETE", "/api/order/1", "GET, PATCH, COPY"),
        ("PURGE", "/api/order/1", "GET, PATCH, COPY"),
        ("COPY", "/api/certificate/1", "GET, DELETE, PURGE"),
        ("POST", "/api/certificate", "GET"),
        ("PATCH", "/api/acme/1", "GET, DELETE"),
        ("DELETE", "/api/users", "GET, POST"),
        ("POST", "/api/users/1", "GET, PATCH, DELETE"),
        ("GET", "/api/users/1/password", "PUT"),
        ("PUT", "/api/users/1/domains", "GET, POST, DELETE"),
        ("PUT", "/api/keys", "GET, POST"),
        ("POST", "/api/keys/1", "GET, DELETE"),
        ("POST", "/api/audit", "GET"),
        ("GET", "/api/acme/1/key-rollover", "POST"),
        ("POST", "/api/token", "GET"),
        ("POST", "/healthz", "GET"),
        ("HEAD", "/readyz", "GET"),
        ("GET", "/api/order/1/reissue", "POST"),
        ("COPY", "/api/order/1/reissue", "POST"),
        ("DELETE", "/api/certificate/1/purge", "POST"),
        ("POST", "/api/docs", "GET"),
        ("POST", "/api/openapi.json", "GET"),
    ] {
        let a = app.call(method, path, Some(ALICE), None).await;
        assert_eq!(a.status, 405, "{method} {path}: {}", a.text);
        assert_eq!(a.header("allow"), Some(allow), "{method} {path}");
    }
}

// ---------------------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn missing_wrong_and_malformed_credentials_are_401_with_a_challenge() {
    let app = app().await;
    let account = app.account(ALICE, "alice@example.com").await;
    let order_body = json!({ "domains": ["a.example.com"], "account": account }).to_string();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("wrong password", Some(basic(ALICE.0, "wrong-password"))),
        ("unknown user", Some(basic("mallory", ALICE.1))),
        ("empty password", Some(basic(ALICE.0, ""))),
        ("bearer scheme", Some("Bearer abc".to_owned())),
        ("not base64", Some("Basic %%%".to_owned())),
        (
            "no colon",
            Some(format!("Basic {}", STANDARD.encode("alice"))),
        ),
        ("forged token", Some(basic("at1.2.4102444800.AAAA", ""))),
    ];
    let mut bodies = Vec::new();
    for (case, header) in &cases {
        for (method, body) in [("GET", None), ("POST", Some(order_body.as_str()))] {
            let mut request = warp::test::request().method(method).path("/api/order");
            if let Some(h) = header {
                request = request.header("authorization", h.as_str());
            }
            if let Some(b) = body {
                request = request.body(b);
            }
            let a = app.raw(request).await;
            assert_eq!(a.status, 401, "{case} {method}: {}", a.text);
            assert_eq!(
                a.header("www-authenticate"),
                Some(CHALLENGE),
                "{case} {method}"
            );
            bodies.push(a.text);
        }
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "401 bodies must not tell cases apart: {bodies:?}"
    );
    assert!(
        app.kit.store.orders().is_empty(),
        "an unauthenticated POST must not create an order"
    );
}

#[tokio::test]
async fn tokens_authenticate_until_they_expire() {
    let app = app().await;
    let a = app.get("/api/token", ALICE).await.expect(200);
    let token = a.body["token"].as_str().expect("token").to_owned();
    assert_eq!(a.body["duration"], 3600);
    assert_eq!(
        a.header("token"),
        Some(token.as_str()),
        "the token header must carry the token"
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));

    for password in ["", "anything"] {
        let r = app
            .get("/api/resource", (&token, password))
            .await
            .expect(200);
        assert_eq!(r.body["data"], "Hello, alice!");
    }
    let minted = app.get("/api/token", (&token, "")).await.expect(403);
    assert!(
        minted.reason().contains("needs the password"),
        "a token must not mint a token: {}",
        minted.text
    );

    app.kit.clock.advance(Duration::from_secs(3601));
    let expired = app.get("/api/resource", (&token, "")).await.expect(401);
    assert_eq!(expired.header("www-authenticate"), Some(CHALLENGE));
    app.get("/api/resource", ALICE).await.expect(200);
}

#[tokio::test]
async fn resource_greets_the_caller() {
    let app = app().await;
    let a = app.get("/api/resource", BOB).await.expect(200);
    assert_eq!(a.body, json!({ "data": "Hello, bob!" }));
}

// ---------------------------------------------------------------------------------------
// Users

#[tokio::test]
async fn admins_create_users_and_others_cannot() {
    let app = app().await;
    let created = app
        .post(
            "/api/users",
            ADMIN,
            &json!({ "username": "carol", "password": "carol-password" }),
        )
        .await
        .expect(201);
    let carol = created.id();
    assert_eq!(created.body["username"], "carol");
    assert_eq!(
        created.header("location"),
        Some(format!("{BASE}/api/users/{carol}").as_str())
    );
    assert!(!created.text.contains("carol-password"));
    app.get("/api/resource", ("carol", "carol-password"))
        .await
        .expect(200);

    let denied = app
        .post(
            "/api/users",
            ALICE,
            &json!({ "username": "dave", "password": "dave-password" }),
        )
        .await
        .expect(403);
    assert_eq!(denied.reason(), "only an admin may create users");

    let dup = app
        .post(
            "/api/users",
            ADMIN,
            &json!({ "username": "carol", "password": "other-password" }),
        )
        .await
        .expect(400);
    assert!(dup.reason().contains("carol"), "{}", dup.text);
    for (body, field) in [
        (json!({ "username": "erin" }), "missing field `password`"),
        (
            json!({ "password": "erin-password" }),
            "missing field `username`",
        ),
        (
            json!({ "username": "erin", "password": "short" }),
            "password:",
        ),
        (
            json!({ "username": "er in", "password": "erin-password" }),
            "username:",
        ),
        (
            json!({ "username": 5, "password": "erin-password" }),
            "username: invalid type",
        ),
    ] {
        let a = app.post("/api/users", ADMIN, &body).await.expect(400);
        assert!(
            a.reason().starts_with(field),
            "{body}: expected `{field}`, got {}",
            a.text
        );
    }

    let me = app
        .get(&format!("/api/users/{carol}"), ("carol", "carol-password"))
        .await
        .expect(200);
    assert_eq!(me.body["username"], "carol");
    app.get(&format!("/api/users/{carol}"), ADMIN)
        .await
        .expect(200);
    let other = app
        .get(&format!("/api/users/{carol}"), BOB)
        .await
        .expect(400);
    let missing = app.get("/api/users/999999", BOB).await.expect(400);
    assert_eq!(
        other.text, missing.text,
        "not-visible and absent users must answer alike"
    );
}

// ---------------------------------------------------------------------------------------
// Accounts

#[tokio::test]
async fn accounts_register_once_per_email_and_server() {
    let app = app().await;
    let body = json!({ "email": "alice@example.com", "organization": "Acme", "country": "de" });
    let created = app.post("/api/acme", ALICE, &body).await.expect(201);
    let id = created.id();
    assert_eq!(created.body["status"], "valid");
    assert_eq!(
        created.header("location"),
        Some(format!("{BASE}/api/acme/{id}").as_str())
    );
    let again = app.post("/api/acme", ALICE, &body).await.expect(200);
    assert_eq!(
        again.id(),
        id,
        "the same email and server give the same account"
    );

    let got = app.get(&format!("/api/acme/{id}"), ALICE).await.expect(200);
    assert_eq!(got.body["email"], "alice@example.com");
    assert_eq!(
        got.body["server"],
        "https://acme-v02.api.letsencrypt.org/directory"
    );
    assert_eq!(got.body["organization"], "Acme");
    assert_eq!(got.body["country"], "DE");
    assert!(
        got.body["uri"]
            .as_str()
            .is_some_and(|u| u.contains("/acct/")),
        "{}",
        got.text
    );
    assert!(time::OffsetDateTime::parse(
        got.body["created_at"].as_str().expect("created_at"),
        &time::format_description::well_known::Rfc3339
    )
    .is_ok());
    assert!(
        got.body.get("key").is_none() && !got.text.contains("creds-"),
        "no key material: {}",
        got.text
    );

    for (body, field) in [
        (json!({}), "missing field `email`"),
        (json!({ "email": "not-an-address" }), "email:"),
        (
            json!({ "email": "a@example.com", "server": "http://acme.example/dir" }),
            "server:",
        ),
        (
            json!({ "email": "a@example.com", "country": "Germany" }),
            "country:",
        ),
        (
            json!({ "email": "a@example.com", "eab_kid": "kid" }),
            "eab_hmac_key:",
        ),
        (
            json!({ "email": "a@example.com", "key": 17 }),
            "key: invalid type",
        ),
    ] {
        let a = app.post("/api/acme", ALICE, &body).await.expect(400);
        assert!(
            a.reason().starts_with(field),
            "{body}: expected `{field}`, got {}",
            a.text
        );
    }

    let list = app.get("/api/acme", ALICE).await.expect(200);
    assert_eq!(
        list.body.as_object().map(|o| o.len()),
        Some(1),
        "{}",
        list.text
    );
    assert_eq!(list.body[id.to_string()]["email"], "alice@example.com");

    let deleted = app
        .call("DELETE", &format!("/api/acme/{id}"), Some(ALICE), None)
        .await
        .expect(200);
    assert_eq!(deleted.body, json!({ "status": "deactivated" }));
    let again = app
        .call("DELETE", &format!("/api/acme/{id}"), Some(ALICE), None)
        .await
        .expect(400);
    assert_eq!(again.reason(), "account is already deactivated");
    let order = app
        .post(
            "/api/order",
            ALICE,
            &json!({ "domains": ["a.example.com"], "account": id }),
        )
        .await
        .expect(400);
    assert_eq!(order.reason(), "account is deactivated");
}

#[tokio::test]
async fn deleting_an_account_revokes_its_certificates() {
    let app = app().await;
    let (account, order, certificate) = app.issued(ALICE, "a.example.com").await;
    app.call("DELETE", &format!("/api/acme/{account}"), Some(ALICE), None)
        .await
        .expect(200);
    let cert = app
        .get(&format!("/api/certificate/{certificate}"), ALICE)
        .await
        .expect(200);
    assert_eq!(cert.body["status"], "revoked");
    let order = app
        .get(&format!("/api/order/{order}"), ALICE)
        .await
        .expect(200);
    assert_eq!(order.body["status"], "revoked");
}

// ---------------------------------------------------------------------------------------
// Orders

#[tokio::test]
async fn orders_follow_the_seed_contract() {
    let app = app().await;
    let account = app.account(ALICE, "alice@example.com").await;
    let body = json!({ "domains": ["a.example.com", "www.a.example.com"], "account": account });
    let created = app.post("/api/order", ALICE, &body).await.expect(201);
    let id = created.id();
    assert_eq!(created.body, json!({ "id": id, "status": "pending" }));
    assert_eq!(
        created.header("location"),
        Some(format!("{BASE}/api/order/{id}").as_str())
    );
    let same = app.post("/api/order", ALICE, &body).await.expect(200);
    assert_eq!(same.body, json!({ "id": id, "status": "pending" }));

    let pending = app
        .get(&format!("/api/order/{id}"), ALICE)
        .await
        .expect(200);
    assert_eq!(pending.body["status"], "pending");
    assert_eq!(pending.body["resolved_cert_id"], Value::Null);
    assert_eq!(pending.header("location"), None, "no certificate yet");

    app.work().await;
    let valid = app
        .get(&format!("/api/order/{id}"), ALICE)
        .await
        .expect(200);
    let b = &valid.body;
    assert_eq!(b["status"], "valid", "{}", valid.text);
    assert_eq!(b["domains"], json!(["a.example.com", "www.a.example.com"]));
    assert_eq!(b["account"], account);
    assert_eq!(b["type"], "dns");
    assert_eq!(b["provider"], "fake");
    assert_eq!(b["error"], Value::Null);
    assert!(
        b["uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://acme.test/order/")),
        "{}",
        valid.text
    );
    assert!(
        b["csr"].as_str().is_some_and(|c| c.starts_with("CSR ")),
        "{}",
        valid.text
    );
    for field in [
        "email",
        "organization",
        "organizational_unit",
        "country",
        "state",
        "location",
        "created_at",
        "updated_at",
    ] {
        assert!(
            b.get(field).is_some(),
            "order JSON lacks `{field}`: {}",
            valid.text
        );
    }
    let cert = b["resolved_cert_id"]
        .as_i64()
        .expect("resolved_cert_id once valid");
    assert_eq!(
        valid.header("location"),
        Some(format!("{BASE}/api/certificate/{cert}").as_str())
    );
    assert!(
        !valid.text.contains("KEY "),
        "an order response must not carry the private key: {}",
        valid.text
    );

    let list = app.get("/api/order", ALICE).await.expect(200);
    assert_eq!(list.body[id.to_string()]["status"], "valid");
    assert!(
        !list.text.contains("KEY "),
        "lists must not carry private keys"
    );
}

#[tokio::test]
async fn order_requests_are_validated_naming_the_field() {
    let app = app().await;
    let account = app.account(ALICE, "alice@example.com").await;
    for (body, reason) in [
        (json!({ "account": account }), "missing field `domains`"),
        (
            json!({ "domains": ["a.example.com"] }),
            "missing field `account`",
        ),
        (
            json!({ "domains": "a.example.com", "account": account }),
            "domains: invalid type",
        ),
        (
            json!({ "domains": ["a.example.com"], "account": "one" }),
            "account: invalid type",
        ),
        (
            json!({ "domains": [], "account": account }),
            "domains: at least one",
        ),
        (
            json!({ "domains": ["bad..name"], "account": account }),
            "domains: domain #0",
        ),
        (
            json!({ "domains": ["*.a.example.com"], "account": account, "type": "http" }),
            "wildcard names need `type: dns`",
        ),
        (
            json!({ "domains": ["a.example.com"], "account": account, "type": "tls" }),
            "type: unknown variant `tls`",
        ),
        (
            json!({ "domains": ["a.example.com"], "account": account, "provider": "nope" }),
            "unknown DNS provider `nope`",
        ),
        (
            json!({ "domains": ["a.example.com"], "account": account, "provider": "Not Valid!" }),
            "provider:",
        ),
        (
            json!({ "domains": ["a.example.com"], "account": account, "key": "not a key" }),
            "key:",
        ),
        (
            json!({ "domains": ["a.example.com"], "account": account, "csr": "CSR b.example.com|" }),
            "the CSR names",
        ),
        (
            json!({ "domains": ["a.example.com"], "account": account, "csr": "garbage" }),
            "csr:",
        ),
        (
            json!({ "domains": ["a.example.com"], "account": account, "reissue": "yes" }),
            "reissue: invalid type",
        ),
        (
            json!({ "domains": ["a.example.com"], "account": account, "email": "nope" }),
            "email:",
        ),
        (
            json!({ "domains": ["a.example.com"], "account": account, "key_type": "dsa" }),
            "key_type:",
        ),
        (
            json!({ "domains": ["a.example.com"], "account": 999_999 }),
            "account not found",
        ),
    ] {
        let a = app.post("/api/order", ALICE, &body).await.expect(400);
        assert!(
            a.reason().starts_with(reason),
            "{body}: expected `{reason}`, got {}",
            a.text
        );
    }
    assert!(
        app.kit.store.orders().is_empty(),
        "rejected requests must not store orders"
    );

    // The accepted variants of the optional fields.
    let http = json!({ "domains": ["h.example.com"], "account": account, "type": "http" });
    app.post("/api/order", ALICE, &http).await.expect(201);
    let csr =
        json!({ "domains": ["c.example.com"], "account": account, "csr": "CSR c.example.com|" });
    app.post("/api/order", ALICE, &csr).await.expect(201);
}

#[tokio::test]
async fn copy_reissues_and_keeps_the_first_certificate_valid() {
    let app = app().await;
    let (_, order, first) = app.issued(ALICE, "a.example.com").await;
    let copied = app
        .call("COPY", &format!("/api/order/{order}"), Some(ALICE), None)
        .await
        .expect(200);
    assert_eq!(copied.body, json!({ "id": order, "status": "pending" }));
    let busy = app
        .call("COPY", &format!("/api/order/{order}"), Some(ALICE), None)
        .await
        .expect(400);
    assert_eq!(busy.reason(), "the order is still being processed");

    app.work().await;
    let got = app
        .get(&format!("/api/order/{order}"), ALICE)
        .await
        .expect(200);
    let second = got.body["resolved_cert_id"].as_i64().expect("reissued");
    assert_ne!(second, first, "COPY must give a second certificate");
    assert_eq!(got.body["status"], "valid");
    let first = app
        .get(&format!("/api/certificate/{first}"), ALICE)
        .await
        .expect(200);
    assert_eq!(
        first.body["status"], "valid",
        "the first certificate stays valid"
    );

    let reissue =
        json!({ "domains": ["a.example.com"], "account": got.body["account"], "reissue": true });
    let again = app.post("/api/order", ALICE, &reissue).await.expect(200);
    assert_eq!(
        again.body,
        json!({ "id": order, "status": "pending" }),
        "reissue restarts the same order"
    );
}

/// `POST /api/order/<id>/reissue` is `COPY /api/order/<id>` under a standard method.
#[tokio::test]
async fn post_reissue_is_copy() {
    let app = app().await;
    let (_, order, first) = app.issued(ALICE, "a.example.com").await;
    let path = format!("/api/order/{order}/reissue");
    let theirs = app.call("POST", &path, Some(BOB), None).await.expect(400);
    assert_eq!(theirs.reason(), "order not found", "the owner check");
    let reissued = app.call("POST", &path, Some(ALICE), None).await.expect(200);
    assert_eq!(reissued.body, json!({ "id": order, "status": "pending" }));
    let busy = app.call("POST", &path, Some(ALICE), None).await.expect(400);
    let copy = app
        .call("COPY", &format!("/api/order/{order}"), Some(ALICE), None)
        .await
        .expect(400);
    assert_eq!(busy.text, copy.text, "the same answer as COPY");
    app.work().await;
    let got = app
        .get(&format!("/api/order/{order}"), ALICE)
        .await
        .expect(200);
    assert_ne!(
        got.body["resolved_cert_id"],
        json!(first),
        "a new certificate"
    );
    assert_eq!(got.body["attempt"], 2);
}

/// `POST /api/certificate/<id>/purge` is `PURGE /api/certificate/<id>` under a standard
/// method: the same owner check, body rules and result.
#[tokio::test]
async fn post_purge_is_purge() {
    let app = app_with_limit(1024).await;
    let (_, _, id) = app.issued(ALICE, "a.example.com").await;
    let path = format!("/api/certificate/{id}/purge");
    let theirs = app.call("POST", &path, Some(BOB), None).await.expect(400);
    assert_eq!(theirs.reason(), "certificate not found", "the owner check");
    let big = json!({ "reason": "x".repeat(2000) }).to_string();
    app.call("POST", &path, Some(ALICE), Some(&big))
        .await
        .expect(413);
    let text = warp::test::request()
        .method("POST")
        .path(&path)
        .header("authorization", basic(ALICE.0, ALICE.1))
        .header("content-type", "text/plain")
        .body("{}");
    app.raw(text).await.expect(415);
    let unknown = app
        .call("POST", &path, Some(ALICE), Some(r#"{"reason": "boredom"}"#))
        .await
        .expect(400);
    assert!(unknown.reason().starts_with("reason: "), "{}", unknown.text);
    assert!(app.kit.acme.revoked().is_empty(), "refusals revoke nothing");
    let purged = app
        .call(
            "POST",
            &path,
            Some(ALICE),
            Some(r#"{"reason": "superseded"}"#),
        )
        .await
        .expect(200);
    assert_eq!(purged.body, json!({ "status": "purged" }));
    assert_eq!(app.kit.acme.revoked().len(), 1, "revoked before deletion");
    assert!(app.kit.store.certificates().is_empty());
    app.get(&format!("/api/certificate/{id}"), ALICE)
        .await
        .expect(400);
}

// ---------------------------------------------------------------------------------------
// Certificates

#[tokio::test]
async fn certificates_are_read_revoked_and_purged() {
    let app = app().await;
    let (_, order, id) = app.issued(ALICE, "a.example.com").await;
    let got = app
        .get(&format!("/api/certificate/{id}"), ALICE)
        .await
        .expect(200);
    let b = &got.body;
    assert_eq!(b["id"], id);
    assert_eq!(b["order_id"], order);
    assert_eq!(b["status"], "valid");
    assert!(
        b["key"].as_str().is_some_and(|k| k.starts_with("KEY ")),
        "the key is served here: {}",
        got.text
    );
    assert!(
        b["body"].as_str().is_some_and(|p| p.starts_with("LEAF ")),
        "{}",
        got.text
    );
    assert!(
        b["fullchain"]
            .as_str()
            .is_some_and(|p| p.contains("ISSUER")),
        "{}",
        got.text
    );
    for field in ["fingerprint", "not_before", "not_after", "chain", "csr"] {
        assert!(
            b[field].is_string(),
            "certificate JSON lacks `{field}`: {}",
            got.text
        );
    }
    assert_eq!(b["not_before"], "2026-01-01T00:00:00Z");
    assert_eq!(got.header("cache-control"), Some("no-store"));

    let list = app.get("/api/certificate", ALICE).await.expect(200);
    let item = &list.body[id.to_string()];
    assert_eq!(item["fingerprint"], b["fingerprint"]);
    assert!(
        item.get("key").is_none() && !list.text.contains("KEY "),
        "lists never carry keys: {}",
        list.text
    );

    let revoked = app
        .call(
            "DELETE",
            &format!("/api/certificate/{id}"),
            Some(ALICE),
            None,
        )
        .await
        .expect(200);
    assert_eq!(revoked.body, json!({ "status": "revoked" }));
    assert_eq!(
        app.kit.acme.revoked().len(),
        1,
        "the ACME server must have been asked to revoke"
    );
    let twice = app
        .call(
            "DELETE",
            &format!("/api/certificate/{id}"),
            Some(ALICE),
            None,
        )
        .await
        .expect(400);
    assert_eq!(twice.reason(), "certificate is already revoked");
    let order_now = app
        .get(&format!("/api/order/{order}"), ALICE)
        .await
        .expect(200);
    assert_eq!(order_now.body["status"], "revoked");

    let purged = app
        .call(
            "PURGE",
            &format!("/api/certificate/{id}"),
            Some(ALICE),
            None,
        )
        .await
        .expect(200);
    assert_eq!(purged.body, json!({ "status": "purged" }));
    let gone = app
        .get(&format!("/api/certificate/{id}"), ALICE)
        .await
        .expect(400);
    assert_eq!(gone.reason(), "certificate not found");
    assert!(
        app.kit.store.certificates().is_empty(),
        "purge deletes the certificate and key"
    );
}

#[tokio::test]
async fn purge_revokes_a_valid_certificate_first() {
    let app = app().await;
    let (_, _, id) = app.issued(ALICE, "a.example.com").await;
    app.call(
        "PURGE",
        &format!("/api/certificate/{id}"),
        Some(ALICE),
        None,
    )
    .await
    .expect(200);
    assert_eq!(
        app.kit.acme.revoked().len(),
        1,
        "a valid certificate is revoked before deletion"
    );
    assert!(app.kit.store.certificates().is_empty());
}

// ---------------------------------------------------------------------------------------
// Isolation between users

#[tokio::test]
async fn other_users_objects_answer_exactly_like_missing_ones() {
    let app = app().await;
    let (account, order, certificate) = app.issued(ALICE, "a.example.com").await;
    let absent = 999_999;
    for (method, path) in [
        ("GET", "/api/acme/{}"),
        ("DELETE", "/api/acme/{}"),
        ("GET", "/api/order/{}"),
        ("COPY", "/api/order/{}"),
        ("GET", "/api/certificate/{}"),
        ("DELETE", "/api/certificate/{}"),
        ("PURGE", "/api/certificate/{}"),
        ("POST", "/api/order/{}/reissue"),
        ("POST", "/api/certificate/{}/purge"),
    ] {
        let id = match path {
            p if p.contains("acme") => account,
            p if p.contains("order") => order,
            _ => certificate,
        };
        let theirs = app
            .call(
                method,
                &path.replace("{}", &id.to_string()),
                Some(BOB),
                None,
            )
            .await;
        let missing = app
            .call(
                method,
                &path.replace("{}", &absent.to_string()),
                Some(BOB),
                None,
            )
            .await;
        assert_eq!(
            theirs.status, 400,
            "{method} {path} on another user's object: {}",
            theirs.text
        );
        assert_eq!(
            missing.status, 400,
            "{method} {path} on a missing object: {}",
            missing.text
        );
        assert_eq!(
            theirs.text, missing.text,
            "{method} {path}: not-yours must read exactly like not-found"
        );
    }
    let theirs = app
        .post(
            "/api/order",
            BOB,
            &json!({ "domains": ["b.example.com"], "account": account }),
        )
        .await;
    let missing = app
        .post(
            "/api/order",
            BOB,
            &json!({ "domains": ["b.example.com"], "account": absent }),
        )
        .await;
    assert_eq!(
        (theirs.status, &theirs.text),
        (400, &missing.text),
        "ordering with another user's account"
    );

    for list in ["/api/acme", "/api/order", "/api/certificate"] {
        let a = app.get(list, BOB).await.expect(200);
        assert_eq!(
            a.body,
            json!({}),
            "{list} must not show another user's objects"
        );
    }
    // Alice's objects are untouched.
    assert!(
        app.kit.acme.revoked().is_empty(),
        "bob must not have revoked anything"
    );
    let cert = app
        .get(&format!("/api/certificate/{certificate}"), ALICE)
        .await
        .expect(200);
    assert_eq!(cert.body["status"], "valid");
    let got = app
        .get(&format!("/api/acme/{account}"), ALICE)
        .await
        .expect(200);
    assert_eq!(got.body["status"], "valid");
}

// ---------------------------------------------------------------------------------------
// Bodies

#[tokio::test]
async fn oversized_bodies_are_413_and_write_nothing() {
    let app = app_with_limit(1024).await;
    let account = app.account(ALICE, "alice@example.com").await;
    let padding = "x".repeat(2000);
    let body = json!({ "domains": ["a.example.com"], "account": account, "organization": padding })
        .to_string();
    let big = app
        .call("POST", "/api/order", Some(ALICE), Some(&body))
        .await
        .expect(413);
    assert_eq!(big.reason(), "request body is larger than 1024 bytes");

    // A body longer than its announced length is cut off while reading.
    let lying = warp::test::request()
        .method("POST")
        .path("/api/order")
        .header("authorization", basic(ALICE.0, ALICE.1))
        .header("content-type", "application/json")
        .body(&body)
        .header("content-length", "10");
    let a = app.raw(lying).await;
    assert!(
        a.status == 413 || a.status == 400,
        "a lying body must not be accepted: {}",
        a.text
    );
    assert!(
        app.kit.store.orders().is_empty(),
        "nothing may be stored from an oversized body"
    );

    let small = json!({ "domains": ["a.example.com"], "account": account }).to_string();
    app.call("POST", "/api/order", Some(ALICE), Some(&small))
        .await
        .expect(201);
}

#[tokio::test]
async fn malformed_bodies_are_400_and_write_nothing() {
    let app = app().await;
    let account = app.account(ALICE, "alice@example.com").await;
    let accounts_before = app.get("/api/acme", ALICE).await.text;
    for (path, body, reason) in [
        (
            "/api/order",
            r#"{"domains": ["a.example.com"], "account": "#.to_owned(),
            "malformed JSON",
        ),
        (
            "/api/order",
            format!(r#"{{"domains": ["a.example.com"], "account": {account}}} x"#),
            "malformed JSON",
        ),
        (
            "/api/order",
            String::new(),
            "request body must be a JSON object",
        ),
        (
            "/api/order",
            "[]".to_owned(),
            "request body must be a JSON object",
        ),
        (
            "/api/order",
            format!(r#"{{"domains": ["a.example.com"], "account": {account}, "type": 1}}"#),
            "type: ",
        ),
        (
            "/api/acme",
            r#"{"email": ["a@example.com"]}"#.to_owned(),
            "email: invalid type",
        ),
        ("/api/acme", "{email: 1}".to_owned(), "malformed JSON"),
        (
            "/api/users",
            r#"{"username": "x", "password": null}"#.to_owned(),
            "password: invalid type",
        ),
    ] {
        let who = if path == "/api/users" { ADMIN } else { ALICE };
        let a = app
            .call("POST", path, Some(who), Some(&body))
            .await
            .expect(400);
        assert!(
            a.reason().starts_with(reason),
            "{path} {body}: expected `{reason}`, got {}",
            a.text
        );
    }
    assert!(app.kit.store.orders().is_empty(), "no order may be stored");
    assert_eq!(
        app.get("/api/acme", ALICE).await.text,
        accounts_before,
        "no account may be stored"
    );
    app.call("GET", "/api/resource", Some(("x", "whatever-pass")), None)
        .await
        .expect(401);
}

// ---------------------------------------------------------------------------------------
// Lists

#[tokio::test]
async fn lists_paginate_with_link_headers() {
    let app = app().await;
    let account = app.account(ALICE, "alice@example.com").await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let body = json!({ "domains": [format!("{name}.example.com")], "account": account });
        ids.push(app.post("/api/order", ALICE, &body).await.expect(201).id());
    }
    let first = app.get("/api/order?limit=2", ALICE).await.expect(200);
    let keys: Vec<&String> = first.body.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 2, "{}", first.text);
    let link = first
        .header("link")
        .expect("a Link header when more rows exist")
        .to_owned();
    assert_eq!(
        link,
        format!("<{BASE}/api/order?limit=2&after={}>; rel=\"next\"", ids[1])
    );
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("url")
        .trim_start_matches(BASE)
        .to_owned();
    let second = app.get(&next, ALICE).await.expect(200);
    assert_eq!(
        second.body.as_object().map(|o| o.len()),
        Some(1),
        "{}",
        second.text
    );
    assert!(second.body.get(ids[2].to_string()).is_some());
    assert_eq!(
        second.header("link"),
        None,
        "the last page has no next link"
    );
    let all = app.get("/api/order", ALICE).await.expect(200);
    assert_eq!(all.body.as_object().map(|o| o.len()), Some(3));
    assert_eq!(all.header("link"), None);

    app.account(ALICE, "alice2@example.com").await;
    let accounts = app.get("/api/acme?limit=1", ALICE).await.expect(200);
    assert!(
        accounts
            .header("link")
            .is_some_and(|l| l.contains("/api/acme?limit=1&after=")),
        "accounts paginate"
    );

    for bad in [
        "/api/order?limit=0",
        "/api/order?limit=x",
        "/api/certificate?after=y",
        "/api/acme?limit=5000",
    ] {
        let a = app.get(bad, ALICE).await.expect(400);
        assert!(
            a.reason().starts_with("limit:") || a.reason().starts_with("after:"),
            "{bad}: {}",
            a.text
        );
    }
}

#[tokio::test]
async fn certificate_lists_paginate_too() {
    let app = app().await;
    app.issued(ALICE, "a.example.com").await;
    let (_, order, _) = app.issued(ALICE, "b.example.com").await;
    let page = app.get("/api/certificate?limit=1", ALICE).await.expect(200);
    assert_eq!(page.body.as_object().map(|o| o.len()), Some(1));
    assert!(page
        .header("link")
        .is_some_and(|l| l.contains("/api/certificate?limit=1&after=")));
    assert!(order > 0);
}

// ---------------------------------------------------------------------------------------
// OpenAPI, probes, logs

/// Every route of API.md and the seed.
const CONTRACT: [(&str, &str); 36] = [
    ("post", "/api/users"),
    ("get", "/api/users"),
    ("get", "/api/users/{id}"),
    ("patch", "/api/users/{id}"),
    ("delete", "/api/users/{id}"),
    ("put", "/api/users/{id}/password"),
    ("get", "/api/users/{id}/domains"),
    ("post", "/api/users/{id}/domains"),
    ("delete", "/api/users/{id}/domains"),
    ("post", "/api/keys"),
    ("get", "/api/keys"),
    ("get", "/api/keys/{id}"),
    ("delete", "/api/keys/{id}"),
    ("get", "/api/audit"),
    ("post", "/api/acme/{id}/key-rollover"),
    ("get", "/api/token"),
    ("get", "/api/resource"),
    ("post", "/api/acme"),
    ("get", "/api/acme"),
    ("get", "/api/acme/{id}"),
    ("delete", "/api/acme/{id}"),
    ("post", "/api/order"),
    ("get", "/api/order"),
    ("get", "/api/order/{id}"),
    ("patch", "/api/order/{id}"),
    ("COPY", "/api/order/{id}"),
    ("post", "/api/order/{id}/reissue"),
    ("get", "/api/certificate"),
    ("get", "/api/certificate/{id}"),
    ("delete", "/api/certificate/{id}"),
    ("PURGE", "/api/certificate/{id}"),
    ("post", "/api/certificate/{id}/purge"),
    ("get", "/api/events"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/openapi.json"),
];

#[tokio::test]
async fn openapi_documents_every_route_and_documents_only_routes() {
    let app = app().await;
    // Public: it holds no secret, and viewers and generators fetch it anonymously.
    let doc = app
        .call("GET", "/api/openapi.json", None, None)
        .await
        .expect(200)
        .body;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "not OpenAPI 3: {}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");

    for (method, path) in CONTRACT {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is missing from the OpenAPI document"));
        let operation = if method.chars().all(|c| c.is_ascii_uppercase()) {
            &item["x-additional-operations"][method]
        } else {
            &item[method]
        };
        assert!(
            operation.is_object(),
            "{method} {path} is missing from the OpenAPI document"
        );
        assert!(
            operation["responses"].is_object(),
            "{method} {path} documents no responses"
        );
    }

    let mut documented = 0;
    for (path, item) in paths {
        let mut methods: Vec<String> = [
            "get", "post", "put", "delete", "patch", "head", "options", "trace",
        ]
        .iter()
        .filter(|m| item.get(**m).is_some())
        .map(|m| m.to_uppercase())
        .collect();
        if let Some(extra) = item["x-additional-operations"].as_object() {
            methods.extend(extra.keys().cloned());
        }
        for method in methods {
            documented += 1;
            assert!(
                CONTRACT
                    .iter()
                    .any(|(m, p)| m.eq_ignore_ascii_case(&method) && *p == path),
                "{method} {path} is documented but not in the contract"
            );
            let concrete = path.replace("{id}", "1");
            let a = app.call(&method, &concrete, Some(ALICE), Some("{}")).await;
            assert!(
                a.status != 404 && a.status != 405,
                "documented {method} {path} is not routed: {}",
                a.status
            );
        }
    }
    assert_eq!(documented, CONTRACT.len(), "each route documented once");

    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for schema in [
        "CreateOrderRequest",
        "OrderResponse",
        "CertificateResponse",
        "CertificateSummary",
        "StatusResponse",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    let order_props = schemas["CreateOrderRequest"]["properties"]
        .as_object()
        .expect("properties");
    for field in [
        "domains", "account", "type", "provider", "email", "csr", "key", "reissue",
    ] {
        assert!(
            order_props.contains_key(field),
            "CreateOrderRequest lacks {field}"
        );
    }
    assert!(
        schemas["CertificateSummary"]["properties"]
            .get("key")
            .is_none(),
        "the list item schema must not have a key"
    );
    assert!(doc["components"]["securitySchemes"]["basic"]["scheme"] == "basic");
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary_without_credentials() {
    let app = app().await;
    let page = app.call("GET", "/api/docs", None, None).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.text.contains("docs/swagger-ui-bundle.js"),
        "{}",
        page.text
    );
    assert!(
        page.header("content-security-policy")
            .is_some_and(|csp| csp.contains("script-src 'self'")),
        "no inline or foreign scripts"
    );
    for (file, kind, at_least) in [
        ("swagger-ui-bundle.js", "text/javascript", 1_000_000),
        ("swagger-initializer.js", "text/javascript", 100),
        ("swagger-ui.css", "text/css", 100_000),
    ] {
        let a = app
            .call("GET", &format!("/api/docs/{file}"), None, None)
            .await;
        assert_eq!(a.status, 200, "{file}");
        assert!(
            a.header("content-type")
                .is_some_and(|t| t.starts_with(kind)),
            "{file}"
        );
        assert!(a.text.len() >= at_least, "{file}: {} bytes", a.text.len());
    }
    let init = app
        .call("GET", "/api/docs/swagger-initializer.js", None, None)
        .await;
    assert!(init.text.contains("\"openapi.json\""), "{}", init.text);
    assert!(
        !page.text.contains("http://") && !page.text.contains("https://"),
        "nothing from a CDN"
    );
}

#[tokio::test]
async fn probes_answer_without_credentials() {
    let app = app().await;
    let health = app.call("GET", "/healthz", None, None).await.expect(200);
    assert_eq!(health.body, json!({ "status": "ok" }));
    let ready = app.call("GET", "/readyz", None, None).await.expect(200);
    assert_eq!(ready.body, json!({ "status": "ready" }));
    app.ready.0.store(false, Ordering::SeqCst);
    let down = app.call("GET", "/readyz", None, None).await.expect(503);
    assert_eq!(down.body, json!({ "status": "service unavailable" }));
    assert!(
        !down.text.contains("/secret/path"),
        "the reason is logged, not sent"
    );
}

// ---------------------------------------------------------------------------------------
// The server loop

#[tokio::test]
async fn serve_answers_on_a_listener_limits_chunked_bodies_and_stops_gracefully() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let app = app_with_limit(64).await;
    let api = Api::new(
        app.kit.service.clone(),
        app.ready.clone(),
        HttpConfig {
            public_url: PublicUrl::parse(BASE).expect("valid"),
            body_limit: 64,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, api, async {
        let _ = stopped.await;
    }));

    async fn exchange(addr: std::net::SocketAddr, request: String) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        String::from_utf8_lossy(&answer).into_owned()
    }

    let health = exchange(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    // A chunked body has no Content-Length: the limit must hold while reading.
    let chunk = "y".repeat(50);
    let request = format!(
        "POST /api/order HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n{chunk}\r\n32\r\n{chunk}\r\n0\r\n\r\n",
        basic(ALICE.0, ALICE.1)
    );
    let chunked = exchange(addr, request).await;
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");

    stop.send(()).expect("server still running");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops after the shutdown signal")
        .expect("the server task does not panic");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}
