//! Use-case tests of the certificate lifecycle over the in-memory fakes: renewal plans,
//! revocation reasons, the account's e-mail as default, events and their delivery.

use super::*;
use crate::models::*;
use crate::ports::{EventRepo, WebhookEndpoint};
use crate::testing::{FakeWebhooks, Kit};
use std::time::Duration;

async fn user(kit: &Kit, name: &str) -> User {
    kit.service
        .add_user(
            Username::parse(name).unwrap(),
            &Password::new("password1"),
            false,
        )
        .await
        .expect("user is created")
}

async fn account(kit: &Kit, owner: &User) -> AcmeAccount {
    kit.service
        .register_account(
            owner,
            RegisterAccount {
                email: Email::parse("ops@example.com").unwrap(),
                directory: None,
                subject: CsrSubject::default(),
                key: None,
                eab: None,
            },
        )
        .await
        .expect("account is registered")
        .0
}

fn request(account: &AcmeAccount, names: &[&str]) -> CreateOrder {
    CreateOrder {
        account: account.id,
        identifiers: Identifiers::parse(names).unwrap(),
        challenge: ChallengeKind::Dns01,
        provider: None,
        email: None,
        subject: CsrSubject::default(),
        key_spec: None,
        csr: None,
        key: None,
        reissue: false,
        auto_renew: true,
    }
}

/// A user with a valid order; returns the user, the order and its certificate.
async fn issued(kit: &Kit) -> (User, Order, CertificateId) {
    let u = user(kit, "alice").await;
    let a = account(kit, &u).await;
    let (o, _) = kit
        .service
        .create_order(&u, request(&a, &["a.example.com"]))
        .await
        .unwrap();
    kit.service
        .work_one(&WorkerId::new("w1"))
        .await
        .expect("work succeeds")
        .expect("an order was pending");
    let order = kit.service.get_order(&u, o.id()).await.unwrap();
    let cert = order.resolved_cert_id().expect("issued");
    (u, order, cert)
}

fn endpoint(url: &str, events: Option<Vec<EventKind>>) -> WebhookEndpoint {
    WebhookEndpoint {
        url: url.to_owned(),
        events,
    }
}

#[tokio::test]
async fn an_order_without_email_takes_its_accounts_and_is_found_again_by_it() {
    let kit = Kit::new();
    let u = user(&kit, "alice").await;
    let a = account(&kit, &u).await;
    let (first, outcome) = kit
        .service
        .create_order(&u, request(&a, &["a.example.com"]))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Created);
    assert_eq!(
        first.spec().email.as_ref().map(Email::as_str),
        Some("ops@example.com"),
        "the account's e-mail is the order's"
    );
    let mut explicit = request(&a, &["a.example.com"]);
    explicit.email = Some(Email::parse("ops@example.com").unwrap());
    let (same, outcome) = kit.service.create_order(&u, explicit).await.unwrap();
    assert_eq!(
        (outcome, same.id()),
        (Outcome::Existing, first.id()),
        "naming the account's e-mail is the same order"
    );
    let mut other = request(&a, &["a.example.com"]);
    other.email = Some(Email::parse("else@example.com").unwrap());
    assert_eq!(
        kit.service.create_order(&u, other).await.unwrap().1,
        Outcome::Created
    );
}

#[tokio::test]
async fn auto_renew_defaults_on_and_changes_only_for_the_owner() {
    let kit = Kit::new();
    let u = user(&kit, "alice").await;
    let a = account(&kit, &u).await;
    let (o, _) = kit
        .service
        .create_order(&u, request(&a, &["a.example.com"]))
        .await
        .unwrap();
    assert!(o.spec().auto_renew);
    let mut off = request(&a, &["b.example.com"]);
    off.auto_renew = false;
    assert!(
        !kit.service
            .create_order(&u, off)
            .await
            .unwrap()
            .0
            .spec()
            .auto_renew
    );

    let bob = user(&kit, "bob").await;
    assert!(matches!(
        kit.service.set_auto_renew(&bob, o.id(), false).await,
        Err(LookupError::NotFound(_))
    ));
    assert!(
        kit.service
            .get_order(&u, o.id())
            .await
            .unwrap()
            .spec()
            .auto_renew
    );
    let changed = kit.service.set_auto_renew(&u, o.id(), false).await.unwrap();
    assert!(!changed.spec().auto_renew);
    // A worker saving the order's progress afterwards keeps the setting.
    kit.service.work_one(&WorkerId::new("w1")).await.unwrap();
    assert!(
        !kit.service
            .get_order(&u, o.id())
            .await
            .unwrap()
            .spec()
            .auto_renew
    );
}

#[tokio::test]
async fn the_current_certificate_shows_the_lifetime_rule_plan_unless_renewal_is_off() {
    let kit = Kit::new();
    let (u, order, cert) = issued(&kit).await;
    let c = kit.service.get_certificate(&u, cert).await.unwrap();
    let plan = c
        .renewal
        .clone()
        .expect("a plan for an auto-renewed certificate");
    assert_eq!(plan.reason, RenewalReason::Lifetime);
    // The fake issues 90-day certificates: renewal with 30 days left, spread at most 2 %
    // of the lifetime earlier.
    let rule = c.info.not_after - time::Duration::days(30);
    assert!(
        plan.at <= rule && plan.at >= rule - time::Duration::hours(44),
        "{plan:?}"
    );
    let stored = kit.service.get_order(&u, order.id()).await.unwrap();
    if let Some(scheduled) = stored.renewal_plan() {
        assert_eq!(&plan, scheduled, "the order's plan is shown");
    }
    assert_eq!(c.renewal_error, None);
    let listed = kit
        .service
        .list_certificates(&u, Page::default())
        .await
        .unwrap();
    assert_eq!(listed.items[0].renewal.as_ref(), Some(&plan));

    kit.service
        .set_auto_renew(&u, order.id(), false)
        .await
        .unwrap();
    let c = kit.service.get_certificate(&u, cert).await.unwrap();
    assert_eq!(c.renewal, None, "no plan without auto_renew");

    kit.service
        .set_auto_renew(&u, order.id(), true)
        .await
        .unwrap();
    let c = kit.service.get_certificate(&u, cert).await.unwrap();
    assert_eq!(c.renewal, Some(plan), "back on: the plan is shown again");
}

#[tokio::test]
async fn revocation_keeps_its_reason_raises_an_event_and_drops_the_plan() {
    let kit = Kit::new();
    let (u, _, cert) = issued(&kit).await;
    let revoked = kit
        .service
        .revoke_certificate(&u, cert, RevocationReason::KeyCompromise)
        .await
        .unwrap();
    assert_eq!(
        revoked.revocation_reason,
        Some(RevocationReason::KeyCompromise)
    );
    assert!(revoked.revoked_at.is_some());
    assert!(revoked.key_compromised());
    assert_eq!(
        revoked.renewal, None,
        "a revoked certificate is not renewed"
    );
    let kinds: Vec<_> = kit.store.events().iter().map(|e| e.event.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::OrderValid, EventKind::CertificateRevoked]
    );
    let event = kit.store.events().pop().unwrap().event;
    assert_eq!(event.reason, Some(RevocationReason::KeyCompromise));
    assert_eq!(event.certificate_id, Some(cert));

    for name in ["keyCompromise", "superseded", "cessationOfOperation"] {
        assert_eq!(
            RevocationReason::from_name(name).map(RevocationReason::as_str),
            Some(name)
        );
    }
    assert_eq!(RevocationReason::from_name("key_compromise"), None);
}

#[tokio::test]
async fn a_failed_order_raises_order_invalid() {
    let kit = Kit::new();
    kit.acme.reject(
        "place_order",
        "urn:ietf:params:acme:error:rejectedIdentifier: no",
    );
    let u = user(&kit, "alice").await;
    let a = account(&kit, &u).await;
    kit.service
        .create_order(&u, request(&a, &["a.example.com"]))
        .await
        .unwrap();
    kit.service.work_one(&WorkerId::new("w1")).await.unwrap();
    let events = kit.store.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.kind, EventKind::OrderInvalid);
    assert!(events[0]
        .event
        .error
        .as_deref()
        .is_some_and(|e| e.contains("no")));
    assert_eq!(events[0].event.user_id, u.id);
}

#[tokio::test]
async fn expiry_warnings_come_once_per_certificate_and_threshold() {
    let kit = Kit::new();
    let (_, _, cert) = issued(&kit).await;
    // The fake's certificates run from 2026-01-01 for 90 days; the clock starts there.
    assert_eq!(kit.service.scan_expiring().await.unwrap(), 0);
    kit.clock.advance(Duration::from_secs(80 * 86400)); // 10 days left
    assert_eq!(
        kit.service.scan_expiring().await.unwrap(),
        1,
        "the 14-day warning"
    );
    assert_eq!(kit.service.scan_expiring().await.unwrap(), 0, "only once");
    kit.clock.advance(Duration::from_secs(4 * 86400)); // 6 days left
    assert_eq!(
        kit.service.scan_expiring().await.unwrap(),
        1,
        "the 7-day warning"
    );
    let days: Vec<_> = kit
        .store
        .events()
        .iter()
        .filter(|e| e.event.kind == EventKind::CertificateExpiring)
        .map(|e| (e.event.certificate_id, e.event.days))
        .collect();
    assert_eq!(days, vec![(Some(cert), Some(14)), (Some(cert), Some(7))]);
    kit.clock.advance(Duration::from_secs(7 * 86400)); // expired
    assert_eq!(
        kit.service.scan_expiring().await.unwrap(),
        0,
        "expired: no warning"
    );
}

#[tokio::test]
async fn deliveries_retry_with_backoff_then_succeed_only_where_missing() {
    let kit = Kit::new();
    issued(&kit).await;
    let hooks = FakeWebhooks::new(vec![
        endpoint("https://a.test/hook", None),
        endpoint("https://b.test/hook", None),
        endpoint(
            "https://c.test/hook",
            Some(vec![EventKind::CertificateRevoked]),
        ),
    ]);
    hooks.fail("https://b.test/hook", true);
    let w = WorkerId::new("d1");
    assert_eq!(kit.service.deliver_events(&w, &hooks).await.unwrap(), 1);
    let event = kit.store.events().remove(0);
    assert_eq!(event.delivery.state, DeliveryState::Pending);
    assert_eq!(event.delivery.attempts, 1);
    assert_eq!(event.delivery.delivered_to, vec!["https://a.test/hook"]);
    assert!(event
        .delivery
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("b.test") && e.contains("503")));
    let due = event.delivery.next_attempt_at.unwrap();
    assert_eq!(due - kit.clock.now(), time::Duration::seconds(5));

    assert_eq!(
        kit.service.deliver_events(&w, &hooks).await.unwrap(),
        0,
        "not due before its backoff"
    );
    hooks.fail("https://b.test/hook", false);
    kit.clock.advance(Duration::from_secs(5));
    assert_eq!(kit.service.deliver_events(&w, &hooks).await.unwrap(), 1);
    let event = kit.store.events().remove(0);
    assert_eq!(event.delivery.state, DeliveryState::Delivered);
    let sent: Vec<_> = hooks.sent().into_iter().map(|(url, _)| url).collect();
    assert_eq!(
        sent,
        vec!["https://a.test/hook", "https://b.test/hook"],
        "each endpoint that wants it gets it once; the filtered one none"
    );
    assert_eq!(kit.service.deliver_events(&w, &hooks).await.unwrap(), 0);
}

#[tokio::test]
async fn deliveries_give_up_after_the_bounded_attempts() {
    let mut settings = Settings::default();
    settings.lifecycle.delivery.max_attempts = 3;
    let kit = Kit::with_settings(settings);
    issued(&kit).await;
    let hooks = FakeWebhooks::new(vec![endpoint("https://a.test/hook", None)]);
    hooks.fail("https://a.test/hook", true);
    let w = WorkerId::new("d1");
    for _ in 0..3 {
        assert_eq!(kit.service.deliver_events(&w, &hooks).await.unwrap(), 1);
        kit.clock.advance(Duration::from_secs(3600));
    }
    let event = kit.store.events().remove(0);
    assert_eq!(event.delivery.state, DeliveryState::Failed);
    assert_eq!(event.delivery.attempts, 3);
    assert!(event.delivery.finished_at.is_some());
    hooks.fail("https://a.test/hook", false);
    assert_eq!(
        kit.service.deliver_events(&w, &hooks).await.unwrap(),
        0,
        "a given-up event is never sent again"
    );
}

#[tokio::test]
async fn events_no_endpoint_wants_are_skipped_and_a_claimed_event_is_held_by_one_worker() {
    let kit = Kit::new();
    issued(&kit).await;
    let none = FakeWebhooks::new(vec![endpoint(
        "https://a.test/hook",
        Some(vec![EventKind::CertificateExpiring]),
    )]);
    let now = kit.clock.now();
    let claimed = EventRepo::claim_due(
        &*kit.store,
        &WorkerId::new("other"),
        now,
        now + Duration::from_secs(60),
        10,
    )
    .await
    .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        kit.service
            .deliver_events(&WorkerId::new("d1"), &none)
            .await
            .unwrap(),
        0,
        "another worker's lease is respected"
    );
    kit.clock.advance(Duration::from_secs(61));
    assert_eq!(
        kit.service
            .deliver_events(&WorkerId::new("d1"), &none)
            .await
            .unwrap(),
        1,
        "an expired lease is taken over"
    );
    assert_eq!(kit.store.events()[0].delivery.state, DeliveryState::Skipped);
}
