//! The lifecycle endpoints over the domain fakes: expiry and renewal on certificates,
//! `auto_renew` and `PATCH /api/order/<id>`, revocation reasons, `GET /api/events`.

mod common;

use common::{app, app_with_limit, ALICE, BOB};
use serde_json::{json, Value};

/// The items of a keyed list in id order (JSON objects sort their keys as text).
fn by_id(list: &Value) -> Vec<Value> {
    let mut items: Vec<(i64, Value)> = list
        .as_object()
        .expect("a keyed list")
        .iter()
        .map(|(k, v)| (k.parse().expect("numeric key"), v.clone()))
        .collect();
    items.sort_by_key(|(id, _)| *id);
    items.into_iter().map(|(_, v)| v).collect()
}

#[tokio::test]
async fn certificates_show_expiry_issuer_fingerprint_and_renewal() {
    let app = app().await;
    let (_, order, id) = app.issued(ALICE, "a.example.com").await;
    let got = app
        .get(&format!("/api/certificate/{id}"), ALICE)
        .await
        .expect(200);
    let b = &got.body;
    assert_eq!(b["order_id"], order);
    assert_eq!(b["issuer"], "CN=Fake CA");
    assert_eq!(b["not_before"], "2026-01-01T00:00:00Z");
    assert_eq!(b["not_after"], "2026-04-01T00:00:00Z");
    assert!(b["serial"].is_string() && b["fingerprint"].is_string());
    // 90 days, renewed with a third left: 30 days before not_after, spread at most 2 %
    // of the lifetime earlier.
    let renewal = &b["renewal"];
    assert_eq!(renewal["reason"], "lifetime", "{}", got.text);
    assert_eq!(renewal["last_error"], json!(null));
    assert_eq!(renewal["window"], json!(null));
    let at = renewal["at"].as_str().expect("RFC 3339");
    assert!(
        ("2026-02-28T04:48:00Z"..="2026-03-02T00:00:00Z").contains(&at),
        "{at}"
    );
    assert_eq!(b["revoked_at"], json!(null));
    assert_eq!(b["reason"], json!(null));
    assert_eq!(b["key_compromised"], false);
    let list = app.get("/api/certificate", ALICE).await.expect(200);
    assert_eq!(list.body[id.to_string()]["renewal"], b["renewal"]);
    assert_eq!(list.body[id.to_string()]["issuer"], "CN=Fake CA");
}

#[tokio::test]
async fn auto_renew_is_shown_set_at_creation_and_changed_by_patch() {
    let app = app().await;
    let account = app.account(ALICE, "alice@example.com").await;
    let created = app
        .post(
            "/api/order",
            ALICE,
            &json!({ "domains": ["a.example.com"], "account": account, "auto_renew": false }),
        )
        .await
        .expect(201);
    let path = format!("/api/order/{}", created.id());
    assert_eq!(
        app.get(&path, ALICE).await.expect(200).body["auto_renew"],
        false
    );
    let changed = app
        .call("PATCH", &path, Some(ALICE), Some(r#"{"auto_renew": true}"#))
        .await
        .expect(200);
    assert_eq!(changed.body["auto_renew"], true);
    assert_eq!(changed.body["id"], created.id());
    assert_eq!(app.get(&path, ALICE).await.body["auto_renew"], true);

    let default = app
        .post(
            "/api/order",
            ALICE,
            &json!({ "domains": ["b.example.com"], "account": account }),
        )
        .await
        .expect(201);
    let got = app
        .get(&format!("/api/order/{}", default.id()), ALICE)
        .await;
    assert_eq!(got.body["auto_renew"], true, "on by default");
    assert_eq!(
        got.body["email"], "alice@example.com",
        "an order without email takes its account's"
    );
}

#[tokio::test]
async fn patch_refuses_other_users_bad_bodies_and_large_ones() {
    let app = app().await;
    let (_, order, _) = app.issued(ALICE, "a.example.com").await;
    let path = format!("/api/order/{order}");
    let bob = app
        .call("PATCH", &path, Some(BOB), Some(r#"{"auto_renew": false}"#))
        .await
        .expect(400);
    assert_eq!(
        bob.reason(),
        "order not found",
        "another user's order reads as missing"
    );
    app.call(
        "PATCH",
        "/api/order/999",
        Some(ALICE),
        Some(r#"{"auto_renew": false}"#),
    )
    .await
    .expect(400);
    for bad in [
        r#"{"auto_renew": "no"}"#,
        r#"{}"#,
        r#"{"auto_renew": false, "domains": ["x.example.com"]}"#,
        "[]",
    ] {
        app.call("PATCH", &path, Some(ALICE), Some(bad))
            .await
            .expect(400);
    }
    app.call("PATCH", &path, None, Some(r#"{"auto_renew": false}"#))
        .await
        .expect(401);
    assert_eq!(
        app.get(&path, ALICE).await.body["auto_renew"],
        true,
        "nothing written"
    );

    let small = app_with_limit(64).await;
    let (_, order, _) = small.issued(ALICE, "a.example.com").await;
    small
        .call(
            "PATCH",
            &format!("/api/order/{order}"),
            Some(ALICE),
            Some(&format!(r#"{{"auto_renew": false{}}}"#, " ".repeat(64))),
        )
        .await
        .expect(413);
}

#[tokio::test]
async fn revocation_takes_an_optional_reason_and_refuses_unknown_ones() {
    let app = app().await;
    let (_, _, id) = app.issued(ALICE, "a.example.com").await;
    let path = format!("/api/certificate/{id}");
    let bad = app
        .call(
            "DELETE",
            &path,
            Some(ALICE),
            Some(r#"{"reason": "stolen"}"#),
        )
        .await
        .expect(400);
    assert!(bad.reason().contains("keyCompromise"), "{}", bad.text);
    app.call("DELETE", &path, Some(ALICE), Some(r#"{"why": "x"}"#))
        .await
        .expect(400);
    app.call(
        "DELETE",
        &path,
        Some(BOB),
        Some(r#"{"reason": "keyCompromise"}"#),
    )
    .await
    .expect(400);
    assert!(
        app.kit.acme.revoked().is_empty(),
        "nothing revoked by refused requests"
    );

    app.call(
        "DELETE",
        &path,
        Some(ALICE),
        Some(r#"{"reason": "keyCompromise"}"#),
    )
    .await
    .expect(200);
    let got = app.get(&path, ALICE).await.expect(200);
    assert_eq!(got.body["status"], "revoked");
    assert_eq!(got.body["reason"], "keyCompromise");
    assert_eq!(got.body["key_compromised"], true);
    assert!(got.body["revoked_at"].is_string());
    assert_eq!(got.body["renewal"], json!(null));

    // Without a body the reason is `unspecified`; PURGE takes one too.
    let (_, _, second) = app.issued(ALICE, "b.example.com").await;
    app.call(
        "DELETE",
        &format!("/api/certificate/{second}"),
        Some(ALICE),
        None,
    )
    .await
    .expect(200);
    let got = app.get(&format!("/api/certificate/{second}"), ALICE).await;
    assert_eq!(got.body["reason"], "unspecified");
    assert_eq!(got.body["key_compromised"], false);
    let (_, _, third) = app.issued(ALICE, "c.example.com").await;
    app.call(
        "PURGE",
        &format!("/api/certificate/{third}"),
        Some(ALICE),
        Some(r#"{"reason": "superseded"}"#),
    )
    .await
    .expect(200);
    let events = app.get("/api/events", ALICE).await.expect(200);
    let reasons: Vec<_> = by_id(&events.body)
        .into_iter()
        .filter(|e| e["type"] == "certificate.revoked")
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons, ["keyCompromise", "unspecified", "superseded"]);
}

#[tokio::test]
async fn events_are_listed_per_user_with_their_delivery_and_paged() {
    let app = app().await;
    let (_, order, cert) = app.issued(ALICE, "a.example.com").await;
    app.issued(ALICE, "b.example.com").await;
    let events = app.get("/api/events", ALICE).await.expect(200);
    let all = by_id(&events.body);
    assert_eq!(all.len(), 2, "{}", events.text);
    let first = &all[0];
    assert_eq!(first["type"], "order.valid");
    assert_eq!(first["order_id"], order);
    assert_eq!(first["certificate_id"], cert);
    assert_eq!(first["domains"], json!(["a.example.com"]));
    assert_eq!(first["delivery"]["state"], "pending");
    assert_eq!(first["delivery"]["attempts"], 0);

    let bob = app.get("/api/events", BOB).await.expect(200);
    assert_eq!(bob.body, json!({}), "another user's events are not shown");

    let page = app.get("/api/events?limit=1", ALICE).await.expect(200);
    assert_eq!(page.body.as_object().unwrap().len(), 1);
    assert!(
        page.header("link").is_some_and(|l| l.contains("after=")),
        "a next link while more follow"
    );
    app.get("/api/events?limit=0", ALICE).await.expect(400);
    app.call("GET", "/api/events", None, None).await.expect(401);
}

#[tokio::test]
async fn metrics_are_not_served_unless_configured() {
    let app = app().await;
    let response = warp::test::request()
        .path("/metrics")
        .reply(&app.routes)
        .await;
    assert_eq!(response.status(), 404);
}
