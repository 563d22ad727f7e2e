//! Per-user quotas through the API: a request over a limit is refused with 429 (or 400
//! for a property of the request itself) and a reason naming the limit, and nothing is
//! written.

mod common;

use acmeport_domain::service::Quotas;
use acmeport_domain::testing::Kit;
use acmeport_domain::{Password, Username};
use acmeport_http::{routes, Api, HttpConfig, PublicUrl};
use common::{App, Switch, ALICE, BASE, BOB};
use serde_json::json;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

async fn app(quotas: Quotas) -> App {
    let kit = Kit::new();
    for (name, password) in [ALICE, BOB] {
        kit.service
            .add_user(
                Username::parse(name).expect("valid name"),
                &Password::new(password),
                false,
            )
            .await
            .expect("user created");
    }
    let service = kit.service.clone().with_quotas(quotas, kit.store.clone());
    let ready = Arc::new(Switch(AtomicBool::new(true)));
    let config = HttpConfig::new(PublicUrl::parse(BASE).expect("valid URL"));
    let routes = routes(Api::new(service, ready.clone(), config));
    App { kit, routes, ready }
}

fn unlimited() -> Quotas {
    Quotas {
        accounts_per_user: 0,
        orders_in_flight_per_user: 0,
        names_per_order: 0,
        orders_per_hour_per_user: 0,
    }
}

#[tokio::test]
async fn acme_accounts_per_user_are_limited() {
    let app = app(Quotas {
        accounts_per_user: 2,
        ..unlimited()
    })
    .await;
    for email in ["a1@example.com", "a2@example.com"] {
        app.post("/api/acme", ALICE, &json!({ "email": email }))
            .await
            .expect(201);
    }
    let refused = app
        .post("/api/acme", ALICE, &json!({ "email": "a3@example.com" }))
        .await
        .expect(429);
    assert!(
        refused.reason().contains("quotas.accounts_per_user")
            && refused.reason().contains("at most 2"),
        "{}",
        refused.text
    );
    // The same account again is no new account.
    app.post("/api/acme", ALICE, &json!({ "email": "a1@example.com" }))
        .await
        .expect(200);
    let listed = app.get("/api/acme", ALICE).await.expect(200);
    assert_eq!(
        listed.body.as_object().map(|o| o.len()),
        Some(2),
        "{}",
        listed.text
    );
    // Bob has his own quota.
    app.post("/api/acme", BOB, &json!({ "email": "b@example.com" }))
        .await
        .expect(201);
}

#[tokio::test]
async fn names_per_order_are_limited_with_a_400() {
    let app = app(Quotas {
        names_per_order: 3,
        ..unlimited()
    })
    .await;
    let account = app.account(ALICE, "alice@example.com").await;
    let names = [
        "a.example.com",
        "b.example.com",
        "c.example.com",
        "d.example.com",
    ];
    let refused = app
        .post(
            "/api/order",
            ALICE,
            &json!({ "domains": names, "account": account }),
        )
        .await
        .expect(400);
    assert!(
        refused.reason().contains("quotas.names_per_order"),
        "{}",
        refused.text
    );
    let listed = app.get("/api/order", ALICE).await.expect(200);
    assert_eq!(
        listed.body.as_object().map(|o| o.len()),
        Some(0),
        "nothing written"
    );
    app.post(
        "/api/order",
        ALICE,
        &json!({ "domains": &names[..3], "account": account }),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn orders_in_flight_and_per_hour_are_limited() {
    let app = app(Quotas {
        orders_in_flight_per_user: 2,
        orders_per_hour_per_user: 3,
        ..unlimited()
    })
    .await;
    let account = app.account(ALICE, "alice@example.com").await;
    let order = |name: &str| json!({ "domains": [name], "account": account });
    for name in ["a.example.com", "b.example.com"] {
        app.post("/api/order", ALICE, &order(name))
            .await
            .expect(201);
    }
    let refused = app
        .post("/api/order", ALICE, &order("c.example.com"))
        .await
        .expect(429);
    assert!(
        refused
            .reason()
            .contains("quotas.orders_in_flight_per_user"),
        "{}",
        refused.text
    );
    // Bob's orders are not held up by Alice's.
    let bobs = app.account(BOB, "bob@example.com").await;
    app.post(
        "/api/order",
        BOB,
        &json!({ "domains": ["bob.example.com"], "account": bobs }),
    )
    .await
    .expect(201);

    // Once they are done, new ones are in flight again, up to the hourly limit.
    app.work().await;
    app.post("/api/order", ALICE, &order("c.example.com"))
        .await
        .expect(201);
    app.work().await;
    let refused = app
        .post("/api/order", ALICE, &order("d.example.com"))
        .await
        .expect(429);
    assert!(
        refused.reason().contains("quotas.orders_per_hour_per_user"),
        "{}",
        refused.text
    );
    assert!(
        refused.header("retry-after").is_some(),
        "a Retry-After comes with it"
    );
    let listed = app.get("/api/order", ALICE).await.expect(200);
    assert_eq!(
        listed.body.as_object().map(|o| o.len()),
        Some(3),
        "nothing written"
    );

    app.kit.clock.advance(Duration::from_secs(3601));
    app.post("/api/order", ALICE, &order("d.example.com"))
        .await
        .expect(201);
}
