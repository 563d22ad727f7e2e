//! Use-case tests over the in-memory fakes, with mockall mocks where a single port's
//! behaviour matters.

use super::*;
use crate::models::*;
use crate::ports::{AcmeError, MockOrderRepo, MockPropagationChecker, PropagationError, RepoError};
use crate::testing::{FakeCsr, Kit};
use std::sync::Arc;
use std::time::Duration;

fn worker() -> WorkerId {
    WorkerId::new("w1")
}

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
    let (account, outcome) = kit
        .service
        .register_account(
            owner,
            RegisterAccount {
                email: Email::parse("ops@example.com").unwrap(),
                directory: None,
                subject: CsrSubject {
                    organization: Some(SubjectField::parse("Account Org").unwrap()),
                    ..CsrSubject::default()
                },
                key: None,
                eab: None,
            },
        )
        .await
        .expect("account is registered");
    assert_eq!(outcome, Outcome::Created);
    account
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

/// A user, an account and a created order.
async fn ordered(kit: &Kit, names: &[&str]) -> (User, AcmeAccount, Order) {
    let u = user(kit, "alice").await;
    let a = account(kit, &u).await;
    let (o, outcome) = kit
        .service
        .create_order(&u, request(&a, names))
        .await
        .expect("order is created");
    assert_eq!(outcome, Outcome::Created);
    (u, a, o)
}

/// Works the due order until it is settled, letting the fake time pass through every
/// wait (each wait gives the worker back: the order is claimed again when due).
async fn work(kit: &Kit) -> Order {
    let mut claims = 0;
    loop {
        claims += 1;
        assert!(claims < 10_000, "the order never settled");
        let (id, outcome) = kit
            .service
            .work_one_outcome(&worker())
            .await
            .expect("work succeeds")
            .expect("an order was due");
        match outcome {
            WorkOutcome::Waiting(at) => {
                let now = kit.clock.now();
                assert!(at > now, "a wait lies in the future");
                kit.clock.sleep((at - now).unsigned_abs()).await;
            }
            WorkOutcome::Settled(_) => {
                return kit
                    .store
                    .orders()
                    .into_iter()
                    .find(|o| o.id() == id)
                    .expect("order is stored")
            }
        }
    }
}

// --- accounts ---------------------------------------------------------------------------

#[tokio::test]
async fn registering_the_same_account_twice_returns_the_first() {
    let kit = Kit::new();
    let u = user(&kit, "alice").await;
    let first = account(&kit, &u).await;
    let again = RegisterAccount {
        email: Email::parse("ops@example.com").unwrap(),
        directory: Some(kit.service.settings().default_directory.clone()),
        subject: CsrSubject::default(),
        key: None,
        eab: None,
    };
    let (second, outcome) = kit.service.register_account(&u, again).await.unwrap();
    assert_eq!(outcome, Outcome::Existing);
    assert_eq!(second.id, first.id);
    assert_eq!(
        kit.acme.calls().iter().filter(|c| *c == "register").count(),
        1,
        "the CA is asked once"
    );
}

#[tokio::test]
async fn another_user_gets_an_account_of_its_own() {
    let kit = Kit::new();
    let alice = user(&kit, "alice").await;
    let bob = user(&kit, "bob").await;
    let a = account(&kit, &alice).await;
    let b = account(&kit, &bob).await;
    assert_ne!(a.id, b.id);
    assert!(matches!(
        kit.service.get_account(&bob, a.id).await,
        Err(LookupError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_refused_registration_stores_nothing() {
    let kit = Kit::new();
    let u = user(&kit, "alice").await;
    kit.acme.reject(
        "register",
        "urn:ietf:params:acme:error:invalidContact: bad domain",
    );
    let err = kit
        .service
        .register_account(
            &u,
            RegisterAccount {
                email: Email::parse("ops@example.com").unwrap(),
                directory: None,
                subject: CsrSubject::default(),
                key: None,
                eab: None,
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalidContact"), "{err}");
    assert!(kit
        .service
        .list_accounts(&u, Page::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

// --- order creation ---------------------------------------------------------------------

#[tokio::test]
async fn orders_need_an_account_of_the_caller() {
    let kit = Kit::new();
    let alice = user(&kit, "alice").await;
    let bob = user(&kit, "bob").await;
    let a = account(&kit, &alice).await;
    let err = kit
        .service
        .create_order(&bob, request(&a, &["a.example.com"]))
        .await
        .unwrap_err();
    assert!(matches!(err, CreateOrderError::AccountNotFound), "{err}");
    let mut missing = request(&a, &["a.example.com"]);
    missing.account = AccountId::new(999);
    let err2 = kit.service.create_order(&alice, missing).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        err2.to_string(),
        "absent and not-yours answer alike"
    );
}

#[tokio::test]
async fn wildcards_need_dns_01() {
    let kit = Kit::new();
    let u = user(&kit, "alice").await;
    let a = account(&kit, &u).await;
    let mut r = request(&a, &["*.example.com", "example.com"]);
    r.challenge = ChallengeKind::Http01;
    let err = kit.service.create_order(&u, r).await.unwrap_err();
    assert!(matches!(err, CreateOrderError::WildcardNeedsDns), "{err}");
    assert!(kit.store.orders().is_empty(), "nothing is written");
}

#[tokio::test]
async fn unknown_providers_are_refused_naming_the_known_ones() {
    let kit = Kit::new();
    let u = user(&kit, "alice").await;
    let a = account(&kit, &u).await;
    let mut r = request(&a, &["a.example.com"]);
    r.provider = Some(ProviderName::parse("route53").unwrap());
    let err = kit.service.create_order(&u, r).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown DNS provider `route53`; configured: fake"
    );
    assert!(kit.store.orders().is_empty());
}

#[tokio::test]
async fn dns_orders_get_the_default_provider_and_http_orders_none() {
    let kit = Kit::new();
    let (u, a, o) = ordered(&kit, &["a.example.com"]).await;
    assert_eq!(
        o.spec().provider.as_ref().map(ProviderName::as_str),
        Some("fake")
    );
    let mut r = request(&a, &["b.example.com"]);
    r.challenge = ChallengeKind::Http01;
    r.provider = Some(ProviderName::parse("fake").unwrap());
    let (h, _) = kit.service.create_order(&u, r).await.unwrap();
    assert_eq!(h.spec().provider, None);
}

#[tokio::test]
async fn the_same_order_again_returns_the_existing_one() {
    let kit = Kit::new();
    let (u, a, o) = ordered(&kit, &["a.example.com", "b.example.com"]).await;
    let (again, outcome) = kit
        .service
        .create_order(&u, request(&a, &["a.example.com", "b.example.com"]))
        .await
        .unwrap();
    assert_eq!((again.id(), outcome), (o.id(), Outcome::Existing));
    // Order of domains, email and type all count.
    let (swapped, outcome) = kit
        .service
        .create_order(&u, request(&a, &["b.example.com", "a.example.com"]))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Created);
    assert_ne!(swapped.id(), o.id());
    let mut with_email = request(&a, &["a.example.com", "b.example.com"]);
    with_email.email = Some(Email::parse("x@example.com").unwrap());
    assert_eq!(
        kit.service.create_order(&u, with_email).await.unwrap().1,
        Outcome::Created
    );
}

#[tokio::test]
async fn reissue_flag_restarts_an_existing_finished_order() {
    let kit = Kit::new();
    let (u, a, o) = ordered(&kit, &["a.example.com"]).await;
    work(&kit).await;
    let mut r = request(&a, &["a.example.com"]);
    r.reissue = true;
    let (again, outcome) = kit.service.create_order(&u, r).await.unwrap();
    assert_eq!((again.id(), outcome), (o.id(), Outcome::Existing));
    assert_eq!(again.status(), OrderStatus::Pending);
    assert_eq!(again.state().attempt, 2);
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid);
    assert_eq!(
        kit.store.certificates().len(),
        2,
        "a second certificate was issued"
    );
}

#[tokio::test]
async fn an_uploaded_csr_must_name_the_same_domains() {
    let kit = Kit::new();
    let u = user(&kit, "alice").await;
    let a = account(&kit, &u).await;
    let mut r = request(&a, &["a.example.com", "b.example.com"]);
    r.csr = Some(FakeCsr::csr_for(&["a.example.com"]));
    let err = kit.service.create_order(&u, r).await.unwrap_err();
    assert!(matches!(err, CreateOrderError::CsrMismatch { .. }), "{err}");
    let mut r = request(&a, &["a.example.com", "b.example.com"]);
    r.csr = Some("garbage".into());
    assert!(matches!(
        kit.service.create_order(&u, r).await,
        Err(CreateOrderError::InvalidCsr(_))
    ));
    let mut r = request(&a, &["a.example.com", "b.example.com"]);
    r.csr = Some(FakeCsr::csr_for(&["b.example.com", "a.example.com"]));
    r.key = Some(PrivateKeyPem::new("KEY ignored"));
    let parsed_before = kit.csr.parsed();
    let (o, _) = kit
        .service
        .create_order(&u, r)
        .await
        .expect("same names in another order are fine");
    assert!(o.spec().key.is_none(), "with a CSR the key is not used");
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid);
    assert_eq!(
        kit.csr.generated(),
        0,
        "no key is generated for an uploaded CSR"
    );
    assert_eq!(
        kit.csr.parsed() - parsed_before,
        2,
        "the upload is checked when the order is created and read once when its key is \
         ready; finalization sends the kept DER without parsing it again"
    );
    assert!(kit.store.certificates()[0].key.is_none());
}

#[tokio::test]
async fn an_invalid_uploaded_key_is_refused_and_a_valid_one_used() {
    let kit = Kit::new();
    let u = user(&kit, "alice").await;
    let a = account(&kit, &u).await;
    let mut r = request(&a, &["a.example.com"]);
    r.key = Some(PrivateKeyPem::new("not a key"));
    assert!(matches!(
        kit.service.create_order(&u, r).await,
        Err(CreateOrderError::InvalidKey(_))
    ));
    let mut r = request(&a, &["a.example.com"]);
    r.key = Some(PrivateKeyPem::new("KEY mine"));
    kit.service.create_order(&u, r).await.unwrap();
    work(&kit).await;
    assert_eq!(kit.csr.generated(), 0);
    assert_eq!(
        kit.store.certificates()[0].key,
        Some(PrivateKeyPem::new("KEY mine"))
    );
}

// --- the workflow -----------------------------------------------------------------------

#[tokio::test]
async fn a_dns_order_goes_through_every_step_and_leaves_no_record() {
    let kit = Kit::new();
    let (_, _, o) = ordered(&kit, &["*.example.com", "example.com"]).await;
    let done = work(&kit).await;
    assert_eq!(
        kit.csr.parsed(),
        0,
        "the CSR built for the order is kept as DER, never parsed back"
    );
    assert_eq!(
        done.status(),
        OrderStatus::Valid,
        "error: {:?}",
        done.error()
    );
    let cert_id = done.resolved_cert_id().expect("certificate id is set");
    let cert = kit
        .store
        .certificates()
        .into_iter()
        .find(|c| c.id == cert_id)
        .unwrap();
    assert_eq!(cert.info.names, vec!["*.example.com", "example.com"]);
    assert!(
        cert.key.is_some(),
        "the generated key is stored with the certificate"
    );
    assert!(
        kit.dns.records().is_empty(),
        "records left: {:?}",
        kit.dns.records()
    );
    let steps: Vec<OrderStep> = kit
        .store
        .history()
        .into_iter()
        .filter(|h| h.0 == o.id())
        .map(|h| h.1)
        .collect();
    steps
        .windows(2)
        .for_each(|w| assert!(w[0] <= w[1], "steps go forward: {steps:?}"));
    assert_eq!(steps.last(), Some(&OrderStep::CertificateStored));
    assert!(
        OrderStep::ALL[1..].iter().all(|s| steps.contains(s)),
        "every step is committed: {steps:?}"
    );
}

#[tokio::test]
async fn subject_falls_back_to_the_account() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    work(&kit).await;
    assert!(kit.store.certificates()[0].csr.contains("O=Account Org"));
}

#[tokio::test]
async fn an_http_order_serves_tokens_and_removes_them() {
    let kit = Kit::new();
    let u = user(&kit, "alice").await;
    let a = account(&kit, &u).await;
    let mut r = request(&a, &["a.example.com", "b.example.com"]);
    r.challenge = ChallengeKind::Http01;
    kit.service.create_order(&u, r).await.unwrap();
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid);
    assert!(
        kit.store.served_tokens().is_empty(),
        "tokens left: {:?}",
        kit.store.served_tokens()
    );
    assert_eq!(
        kit.propagation.checks(),
        0,
        "HTTP-01 has nothing to propagate"
    );
}

#[tokio::test]
async fn propagation_is_awaited_and_shown_on_the_order() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    kit.propagation.missing_for(3);
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid);
    assert_eq!(kit.propagation.checks(), 4);
    let waited = kit
        .store
        .history()
        .iter()
        .filter(|h| h.1 == OrderStep::ChallengesPublished)
        .count();
    assert!(
        waited >= 3,
        "each wait is saved with its detail, saw {waited}"
    );
    assert_eq!(
        kit.clock.slept(),
        Duration::from_millis(50 + 100 + 200),
        "polls start fast and back off"
    );
}

#[tokio::test]
async fn a_waiting_order_gives_its_worker_back() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    kit.propagation.missing_for(1);
    let (_, outcome) = kit
        .service
        .work_one_outcome(&worker())
        .await
        .unwrap()
        .unwrap();
    let WorkOutcome::Waiting(at) = outcome else {
        panic!("expected a wait, got {outcome:?}");
    };
    assert_eq!(at, kit.clock.now() + Duration::from_millis(50));
    let waiting = kit.store.orders().remove(0);
    let answers = &waiting.state().progress.nameservers;
    assert!(
        !answers.is_empty() && answers.iter().all(|a| !a.serves),
        "each nameserver's answer is shown while waiting: {answers:?}"
    );
    assert!(answers
        .iter()
        .all(|a| a.record == "_acme-challenge.a.example.com"));
    assert!(
        kit.service.work_one(&worker()).await.unwrap().is_none(),
        "the waiting order is not due yet"
    );
    assert_eq!(kit.service.next_due().await.unwrap(), Some(at));
    kit.clock.advance(Duration::from_millis(200));
    assert!(kit.service.work_one(&worker()).await.unwrap().is_some());
}

#[tokio::test]
async fn validation_and_issuance_are_polled_without_holding_a_worker() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    kit.acme.slow("answer", 2);
    kit.acme.slow("finalize", 1);
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid, "{:?}", done.error());
    let calls = kit.acme.calls();
    assert_eq!(calls.iter().filter(|c| *c == "answer").count(), 3);
    assert_eq!(calls.iter().filter(|c| *c == "finalize").count(), 2);
}

#[tokio::test]
async fn a_ca_that_never_finishes_fails_the_order_after_its_timeout() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    kit.acme.slow("answer", u32::MAX);
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Invalid);
    assert!(
        done.error().unwrap().contains("timed out"),
        "{:?}",
        done.error()
    );
    assert!(kit.dns.records().is_empty(), "records are cleaned up");
}

#[tokio::test]
async fn propagation_timeout_fails_the_order_naming_the_nameserver() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    kit.propagation.missing_for(u32::MAX);
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Invalid);
    let error = done.error().unwrap();
    assert!(
        error.contains("timed out") && error.contains("ns1.fake"),
        "{error}"
    );
    assert!(
        kit.dns.records().is_empty(),
        "records left: {:?}",
        kit.dns.records()
    );
    assert!(
        !kit.acme.calls().contains(&"answer".to_string()),
        "no challenge is answered"
    );
}

#[tokio::test]
async fn a_refused_record_fails_the_order_with_the_reason() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    kit.dns
        .refuse_present("NOTAUTH: TSIG verify failure (BADKEY)");
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Invalid);
    assert!(
        done.error().unwrap().contains("BADKEY"),
        "{:?}",
        done.error()
    );
    assert_eq!(done.step(), OrderStep::Placed, "the failing step is kept");
    assert!(
        done.state().published.is_empty(),
        "recorded material was cleaned up"
    );
}

#[tokio::test]
async fn a_refused_cleanup_is_not_retried_and_the_record_stays_recorded() {
    let kit = Kit::with_settings(Settings {
        validation_retries: 0,
        ..Settings::default()
    });
    ordered(&kit, &["a.example.com"]).await;
    kit.dns.refuse_cleanup("REFUSED");
    kit.acme.reject(
        "answer",
        "urn:ietf:params:acme:error:unauthorized: wrong value",
    );
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Invalid);
    assert_eq!(
        kit.clock.slept(),
        Duration::ZERO,
        "a permanent refusal is not retried"
    );
    assert_eq!(
        done.state().published.len(),
        1,
        "what could not be removed stays recorded"
    );
}

#[tokio::test]
async fn a_valid_orders_failed_cleanup_is_swept_long_before_its_renewal() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    kit.dns
        .refuse_cleanup("SERVFAIL: the provider's API is down");
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid, "{:?}", done.error());
    assert_eq!(done.state().published.len(), 1, "the record stays recorded");
    let due = done.due_at().expect("due again for the sweep");
    let now = kit.clock.now();
    assert!(
        due - now < time::Duration::minutes(5),
        "the sweep comes within minutes, not at the renewal: due {due}, now {now}"
    );
    kit.dns.allow_cleanup();
    kit.clock.sleep((due - now).unsigned_abs()).await;
    let (id, outcome) = kit
        .service
        .work_one_outcome(&worker())
        .await
        .expect("work succeeds")
        .expect("the order is due for the sweep");
    assert_eq!(id, done.id());
    assert_eq!(outcome, WorkOutcome::Settled(OrderStatus::Valid));
    let swept = kit
        .store
        .orders()
        .into_iter()
        .find(|o| o.id() == id)
        .unwrap();
    assert!(
        swept.state().published.is_empty(),
        "the record is forgotten"
    );
    assert!(kit.dns.records().is_empty(), "the record is removed");
    assert_eq!(swept.resolved_cert_id(), done.resolved_cert_id());
    let next = swept.due_at().expect("due for the renewal");
    assert!(
        next - kit.clock.now() > time::Duration::hours(1),
        "nothing left to sweep: next due at the renewal ({next})"
    );
}

#[tokio::test]
async fn failed_validation_fails_the_order_and_removes_records() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    kit.acme.reject(
        "answer",
        "urn:ietf:params:acme:error:unauthorized: no TXT record found",
    );
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Invalid);
    assert!(
        done.error().unwrap().contains("no TXT record found"),
        "{:?}",
        done.error()
    );
    assert!(kit.dns.records().is_empty());
}

#[tokio::test]
async fn a_failed_validation_is_tried_again_with_a_fresh_acme_order() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    kit.acme.fail_validation(
        1,
        "urn:ietf:params:acme:error:connection: connection refused",
    );
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid, "{:?}", done.error());
    let placed = kit
        .acme
        .calls()
        .iter()
        .filter(|c| *c == "place_order")
        .count();
    assert_eq!(placed, 2, "a second ACME order after the failed validation");
    assert_eq!(
        done.state().progress.validation_retries,
        0,
        "reset once valid"
    );
    assert!(
        kit.dns.records().is_empty(),
        "records of both tries removed"
    );
    assert!(
        kit.clock.slept() >= Duration::from_millis(1500),
        "a pause before the fresh order, slept {:?}",
        kit.clock.slept()
    );
}

#[tokio::test]
async fn validation_fails_the_order_once_its_retries_are_spent() {
    for retries in [0, 2] {
        let kit = Kit::with_settings(Settings {
            validation_retries: retries,
            ..Settings::default()
        });
        ordered(&kit, &["a.example.com"]).await;
        kit.acme
            .fail_validation(100, "urn:ietf:params:acme:error:dns: SERVFAIL");
        let done = work(&kit).await;
        assert_eq!(done.status(), OrderStatus::Invalid, "retries {retries}");
        assert!(
            done.error().unwrap().contains("SERVFAIL"),
            "{:?}",
            done.error()
        );
        let placed = kit
            .acme
            .calls()
            .iter()
            .filter(|c| *c == "place_order")
            .count();
        assert_eq!(placed as u32, retries + 1, "one ACME order per try");
        assert!(kit.dns.records().is_empty());
    }
}

#[tokio::test]
async fn each_step_failure_ends_invalid_with_its_reason() {
    for op in ["place_order", "challenges", "finalize", "certificate"] {
        let kit = Kit::new();
        ordered(&kit, &["a.example.com"]).await;
        kit.acme.reject(op, &format!("refused at {op}"));
        let done = work(&kit).await;
        assert_eq!(done.status(), OrderStatus::Invalid, "{op}");
        assert!(
            done.error().unwrap().contains(&format!("refused at {op}")),
            "{op}: {:?}",
            done.error()
        );
        assert!(kit.dns.records().is_empty(), "{op}: records left");
        assert!(kit.store.certificates().is_empty(), "{op}: no certificate");
    }
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    kit.acme.flake("place_order", 2);
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid, "{:?}", done.error());
    assert_eq!(
        kit.acme
            .calls()
            .iter()
            .filter(|c| *c == "place_order")
            .count(),
        3
    );
    assert!(
        kit.clock.slept() >= Duration::from_secs(6),
        "backoff 2s then 4s, slept {:?}",
        kit.clock.slept()
    );
}

#[tokio::test]
async fn transient_failures_fail_the_order_once_retries_are_spent() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    kit.acme.flake("place_order", 1000);
    let started = kit.clock.now();
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Invalid);
    let error = done.error().unwrap();
    assert!(
        error.contains("connection reset") && error.contains("gave up after"),
        "{error}"
    );
    let spent = kit.clock.now() - started;
    assert!(
        spent >= time::Duration::seconds(600) && spent < time::Duration::seconds(700),
        "the budget (600 s) is spent, not more: {spent}"
    );
}

#[tokio::test]
async fn an_outage_shorter_than_the_budget_ends_valid() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    // 8 failures: 2+4+8+16+32+60+60+60 s of backoff, within the 600 s budget.
    kit.acme.flake("challenges", 8);
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid, "{:?}", done.error());
    assert_eq!(kit.clock.slept(), Duration::from_secs(242));
}

#[tokio::test]
async fn a_crashed_order_resumes_from_its_last_step() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    // Three saves succeed (key ready, placed, material recorded), then storage "dies".
    kit.store.fail_saves_after(Some(3));
    let err = kit.service.work_one(&worker()).await.unwrap_err();
    assert!(matches!(err, WorkError::Repo(_)), "{err}");
    let stuck = kit.store.orders().remove(0);
    assert_eq!(
        (stuck.status(), stuck.step()),
        (OrderStatus::Pending, OrderStep::Placed)
    );
    kit.store.fail_saves_after(None);
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid, "{:?}", done.error());
    assert_eq!(
        kit.acme
            .calls()
            .iter()
            .filter(|c| *c == "place_order")
            .count(),
        1,
        "the ACME order is resumed, not placed again"
    );
    assert_eq!(kit.csr.generated(), 1, "the key is not generated again");
    assert_eq!(kit.store.certificates().len(), 1);
    assert!(kit.dns.records().is_empty());
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_stops_without_touching_the_order() {
    let kit = Kit::new();
    let (_, _, o) = ordered(&kit, &["a.example.com"]).await;
    let mut orders = MockOrderRepo::new();
    let claimed = o.clone();
    orders
        .expect_claim()
        .times(1)
        .returning(move |_, _, _| Ok(Some(claimed.clone())));
    orders
        .expect_save()
        .returning(|_, _, _| Err(RepoError::LeaseLost));
    orders.expect_renew().returning(|_, _, _| Ok(()));
    orders.expect_release().times(0);
    let mut ports = kit.service.ports().clone();
    ports.orders = Arc::new(orders);
    let service = Acmeport::new(ports, Settings::default());
    let err = service.work_one(&worker()).await.unwrap_err();
    assert!(matches!(err, WorkError::LeaseLost), "{err}");
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_by_another_worker() {
    let kit = Kit::new();
    let (_, _, o) = ordered(&kit, &["a.example.com"]).await;
    let now = kit.clock.now();
    let dead = WorkerId::new("dead");
    let orders: &dyn crate::ports::OrderRepo = kit.store.as_ref();
    orders
        .claim(&dead, now, now + Duration::from_secs(30))
        .await
        .unwrap()
        .expect("claimed");
    assert!(
        kit.service.work_one(&worker()).await.unwrap().is_none(),
        "a held lease is respected"
    );
    kit.clock.advance(Duration::from_secs(31));
    let done = work(&kit).await;
    assert_eq!((done.id(), done.status()), (o.id(), OrderStatus::Valid));
    let saved = orders.save(&done, Some(dead), now).await;
    assert!(
        matches!(saved, Err(RepoError::LeaseLost)),
        "the dead worker is fenced off"
    );
}

#[tokio::test]
async fn no_nameservers_is_fatal_at_once() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    let mut checker = MockPropagationChecker::new();
    checker
        .expect_delegated_name()
        .returning(|name| Ok(name.to_owned()));
    checker
        .expect_check()
        .times(1)
        .returning(|r| Err(PropagationError::NoNameservers(r.name.clone())));
    let mut ports = kit.service.ports().clone();
    ports.propagation = Arc::new(checker);
    let service = Acmeport::new(ports, Settings::default());
    service.work_one(&worker()).await.unwrap();
    let done = kit.store.orders().remove(0);
    assert_eq!(done.status(), OrderStatus::Invalid);
    assert!(
        done.error()
            .unwrap()
            .contains("_acme-challenge.a.example.com"),
        "{:?}",
        done.error()
    );
}

#[tokio::test]
async fn records_of_a_delegated_name_are_written_at_the_cname_target() {
    let kit = Kit::new();
    kit.propagation.delegate(
        "_acme-challenge.a.example.com",
        "_acme-challenge.a.validation.example.net",
    );
    ordered(&kit, &["a.example.com"]).await;
    kit.dns.refuse_cleanup("keep it for the test");
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid, "{:?}", done.error());
    let names: Vec<String> = kit
        .dns
        .records()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        names,
        vec!["_acme-challenge.a.validation.example.net".to_owned()]
    );
}

#[tokio::test]
async fn a_provider_can_be_exempt_from_the_propagation_check() {
    let kit = Kit::new();
    let fake = ProviderName::parse("fake").unwrap();
    let mut ports = kit.service.ports().clone();
    ports.dns = ports.dns.clone().without_propagation_check(fake.clone());
    assert!(!ports.dns.checks_propagation(&fake));
    let service = Acmeport::new(ports, Settings::default());
    ordered(&kit, &["a.example.com"]).await;
    kit.propagation.missing_for(u32::MAX);
    kit.propagation.delegate(
        "_acme-challenge.a.example.com",
        "_acme-challenge.elsewhere.example.net",
    );
    service.work_one(&worker()).await.unwrap();
    let done = kit.store.orders().remove(0);
    assert_eq!(done.status(), OrderStatus::Valid, "{:?}", done.error());
    assert_eq!(kit.propagation.checks(), 0);
    assert!(
        !kit.acme.calls().is_empty() && kit.dns.records().is_empty(),
        "the record was written at its own name and removed"
    );
}

#[tokio::test]
async fn disabled_propagation_check_is_skipped() {
    let mut settings = Settings::default();
    settings.propagation.enabled = false;
    let kit = Kit::with_settings(settings);
    ordered(&kit, &["a.example.com"]).await;
    kit.propagation.missing_for(u32::MAX);
    assert_eq!(work(&kit).await.status(), OrderStatus::Valid);
    assert_eq!(kit.propagation.checks(), 0);
}

// --- reorder, revoke, purge, deregister --------------------------------------------------

#[tokio::test]
async fn reorder_gives_a_new_certificate_and_keeps_the_old_one_valid() {
    let kit = Kit::new();
    let (u, _, o) = ordered(&kit, &["a.example.com"]).await;
    assert!(matches!(
        kit.service.reorder(&u, o.id()).await,
        Err(ReorderError::StillPending)
    ));
    let first = work(&kit).await.resolved_cert_id().unwrap();
    let again = kit.service.reorder(&u, o.id()).await.unwrap();
    assert_eq!(again.status(), OrderStatus::Pending);
    let second = work(&kit).await.resolved_cert_id().unwrap();
    assert_ne!(first, second);
    let old = kit.service.get_certificate(&u, first).await.unwrap();
    assert_eq!(old.status, CertificateStatus::Valid);
    let bob = user(&kit, "bob").await;
    assert!(matches!(
        kit.service.reorder(&bob, o.id()).await,
        Err(ReorderError::NotFound)
    ));
}

#[tokio::test]
async fn revoking_marks_certificate_and_order() {
    let kit = Kit::new();
    let (u, _, _) = ordered(&kit, &["a.example.com"]).await;
    let cert_id = work(&kit).await.resolved_cert_id().unwrap();
    let bob = user(&kit, "bob").await;
    assert!(matches!(
        kit.service
            .revoke_certificate(&bob, cert_id, RevocationReason::Unspecified)
            .await,
        Err(RevokeError::NotFound)
    ));
    let revoked = kit
        .service
        .revoke_certificate(&u, cert_id, RevocationReason::KeyCompromise)
        .await
        .unwrap();
    assert_eq!(revoked.status, CertificateStatus::Revoked);
    assert_eq!(kit.store.orders()[0].status(), OrderStatus::Revoked);
    assert_eq!(kit.acme.revoked().len(), 1);
    assert!(matches!(
        kit.service
            .revoke_certificate(&u, cert_id, RevocationReason::Unspecified)
            .await,
        Err(RevokeError::AlreadyRevoked)
    ));
}

#[tokio::test]
async fn purge_revokes_then_deletes() {
    let kit = Kit::new();
    let (u, _, _) = ordered(&kit, &["a.example.com"]).await;
    let cert_id = work(&kit).await.resolved_cert_id().unwrap();
    kit.service
        .purge_certificate(&u, cert_id, RevocationReason::Unspecified)
        .await
        .unwrap();
    assert_eq!(
        kit.acme.revoked().len(),
        1,
        "a valid certificate is revoked first"
    );
    assert!(kit.store.certificates().is_empty());
    let order = kit.store.orders().remove(0);
    assert_eq!(
        (order.status(), order.resolved_cert_id()),
        (OrderStatus::Revoked, None)
    );
    assert!(matches!(
        kit.service
            .purge_certificate(&u, cert_id, RevocationReason::Unspecified)
            .await,
        Err(RevokeError::NotFound)
    ));
}

#[tokio::test]
async fn deregistering_revokes_valid_certificates_and_blocks_new_orders() {
    let kit = Kit::new();
    let (u, a, _) = ordered(&kit, &["a.example.com"]).await;
    work(&kit).await;
    kit.service
        .create_order(&u, request(&a, &["b.example.com"]))
        .await
        .unwrap();
    work(&kit).await;
    let gone = kit.service.deregister_account(&u, a.id).await.unwrap();
    assert_eq!(gone.status, AccountStatus::Deactivated);
    assert_eq!(kit.acme.revoked().len(), 2);
    assert!(kit.acme.is_deactivated(&a.credentials));
    assert!(kit
        .store
        .certificates()
        .iter()
        .all(|c| c.status == CertificateStatus::Revoked));
    let err = kit
        .service
        .create_order(&u, request(&a, &["c.example.com"]))
        .await
        .unwrap_err();
    assert!(matches!(err, CreateOrderError::AccountDeactivated), "{err}");
    assert!(matches!(
        kit.service.deregister_account(&u, a.id).await,
        Err(DeregisterAccountError::AlreadyDeactivated)
    ));
}

#[tokio::test]
async fn deregistering_keeps_the_account_when_the_ca_refuses() {
    let kit = Kit::new();
    let (u, a, _) = ordered(&kit, &["a.example.com"]).await;
    kit.acme.reject("deactivate", "server busy");
    let err = kit.service.deregister_account(&u, a.id).await.unwrap_err();
    assert!(
        matches!(err, DeregisterAccountError::Acme(AcmeError::Rejected(_))),
        "{err}"
    );
    assert_eq!(
        kit.service.get_account(&u, a.id).await.unwrap().status,
        AccountStatus::Valid
    );
}

#[tokio::test]
async fn rolling_the_account_key_stores_the_new_credentials() {
    let kit = Kit::new();
    let (u, a, _) = ordered(&kit, &["a.example.com"]).await;
    let rolled = kit.service.roll_account_key(&u, a.id).await.unwrap();
    assert_ne!(rolled.credentials, a.credentials);
    assert_eq!(
        kit.service.get_account(&u, a.id).await.unwrap().credentials,
        rolled.credentials
    );
    let done = work(&kit).await;
    assert_eq!(
        done.status(),
        OrderStatus::Valid,
        "orders use the new key: {:?}",
        done.error()
    );
    let bob = user(&kit, "bob").await;
    assert!(matches!(
        kit.service.roll_account_key(&bob, a.id).await,
        Err(DeregisterAccountError::NotFound)
    ));
}

// --- users and tokens --------------------------------------------------------------------

#[tokio::test]
async fn wrong_password_and_unknown_user_fail_alike() {
    let kit = Kit::new();
    user(&kit, "alice").await;
    assert!(kit
        .service
        .authenticate("alice", &Password::new("password1"))
        .await
        .is_ok());
    let wrong = kit
        .service
        .authenticate("alice", &Password::new("nope"))
        .await
        .unwrap_err();
    let unknown = kit
        .service
        .authenticate("mallory", &Password::new("password1"))
        .await
        .unwrap_err();
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert!(matches!(
        kit.service
            .authenticate("bad name!", &Password::new("x"))
            .await,
        Err(AuthError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn an_unknown_user_costs_a_password_verification_too() {
    use crate::ports::MockPasswordHasher;
    let kit = Kit::new();
    let mut hasher = MockPasswordHasher::new();
    hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok(PasswordHash::new("decoy")));
    hasher.expect_verify().times(2).returning(|_, _| false);
    let mut ports = kit.service.ports().clone();
    ports.hasher = Arc::new(hasher);
    let service = Acmeport::new(ports, Settings::default());
    for _ in 0..2 {
        let err = service
            .authenticate("mallory", &Password::new("guess"))
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::InvalidCredentials));
    }
}

/// Every refused password login costs exactly one verification against a hash made by
/// the same hasher: an unknown user (against the decoy), a wrong password, and a disabled
/// user with the right or a wrong password. None can be told apart by its cost.
#[tokio::test]
async fn refused_logins_cost_the_same_whatever_the_reason() {
    use crate::ports::MockPasswordHasher;
    use std::sync::Mutex;
    let kit = Kit::new();
    let alice = user(&kit, "alice").await;
    let mut bob = user(&kit, "bob").await;
    bob.disabled = true;
    crate::ports::UserRepo::update(kit.store.as_ref(), &bob)
        .await
        .expect("bob is disabled");
    let real_hash = alice.password_hash.clone();
    let verified: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut hasher = MockPasswordHasher::new();
    hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok(PasswordHash::new("plain$acmeport decoy password")));
    let seen = Arc::clone(&verified);
    hasher.expect_verify().returning(move |password, hash| {
        seen.lock().unwrap().push(hash.as_str().to_owned());
        hash.as_str().strip_prefix("plain$") == Some(password.expose())
    });
    let mut ports = kit.service.ports().clone();
    ports.hasher = Arc::new(hasher);
    let service = Acmeport::new(ports, Settings::default());
    for (name, password, why) in [
        ("mallory", "password1", "unknown user"),
        (
            "mallory",
            "guess",
            "unknown user, again (the decoy is made once)",
        ),
        ("alice", "guess", "wrong password"),
        ("bob", "password1", "disabled user, right password"),
        ("bob", "guess", "disabled user, wrong password"),
    ] {
        let before = verified.lock().unwrap().len();
        let err = service
            .authenticate(name, &Password::new(password))
            .await
            .expect_err(why);
        assert!(matches!(err, AuthError::InvalidCredentials), "{why}");
        let hashes = verified.lock().unwrap()[before..].to_vec();
        assert_eq!(hashes.len(), 1, "{why}: one verification, got {hashes:?}");
        assert!(
            hashes[0].starts_with("plain$"),
            "{why}: verified against a hash of the same hasher, got {hashes:?}"
        );
    }
    assert!(
        verified
            .lock()
            .unwrap()
            .contains(&real_hash.as_str().to_owned()),
        "real users are checked against their own hash"
    );
}

/// A token that does not verify (another key, tampered) is refused as a token: even a
/// user whose name is exactly that text cannot log in with it as a username.
#[tokio::test]
async fn a_token_that_does_not_verify_is_never_tried_as_a_username() {
    let kit = Kit::new();
    let forged = "1.0.99.forged";
    assert!(kit.service.ports().signer.is_token_shaped(forged));
    user(&kit, forged).await;
    assert!(matches!(
        kit.service
            .authenticate(forged, &Password::new("password1"))
            .await,
        Err(AuthError::InvalidCredentials)
    ));
    user(&kit, "carol").await;
    assert!(
        kit.service
            .authenticate("carol", &Password::new("password1"))
            .await
            .is_ok(),
        "other names still log in"
    );
}

#[tokio::test]
async fn tokens_work_until_they_expire() {
    let kit = Kit::new();
    let u = user(&kit, "alice").await;
    let (token, ttl) = kit.service.issue_token(&u);
    assert_eq!(ttl, Duration::from_secs(3600));
    assert_eq!(
        kit.service
            .authenticate_token(token.expose())
            .await
            .unwrap()
            .id,
        u.id
    );
    let tampered = token.expose().replace(".ok", ".xx");
    assert!(kit.service.authenticate_token(&tampered).await.is_err());
    kit.clock.advance(ttl);
    assert!(matches!(
        kit.service.authenticate_token(token.expose()).await,
        Err(AuthError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn only_admins_create_users_and_names_are_unique() {
    let kit = Kit::new();
    let alice = user(&kit, "alice").await;
    let err = kit
        .service
        .create_user(
            &alice,
            Username::parse("bob").unwrap(),
            &Password::new("password1"),
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CreateUserError::Forbidden));
    let admin = kit
        .service
        .add_user(
            Username::parse("root").unwrap(),
            &Password::new("password1"),
            true,
        )
        .await
        .unwrap();
    kit.service
        .create_user(
            &admin,
            Username::parse("bob").unwrap(),
            &Password::new("password1"),
            false,
        )
        .await
        .unwrap();
    let dup = kit
        .service
        .create_user(
            &admin,
            Username::parse("bob").unwrap(),
            &Password::new("password1"),
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(dup, CreateUserError::Duplicate(ref n) if n == "bob"),
        "{dup}"
    );
    assert!(matches!(
        kit.service.get_user(&alice, admin.id).await,
        Err(LookupError::NotFound(_))
    ));
    assert_eq!(
        kit.service.get_user(&admin, alice.id).await.unwrap().id,
        alice.id
    );
}

#[tokio::test]
async fn lists_are_paged_by_id_and_scoped_to_the_user() {
    let kit = Kit::new();
    let u = user(&kit, "alice").await;
    let a = account(&kit, &u).await;
    for i in 0..5 {
        kit.service
            .create_order(&u, request(&a, &[&format!("h{i}.example.com")]))
            .await
            .unwrap();
    }
    let bob = user(&kit, "bob").await;
    assert!(kit
        .service
        .list_orders(&bob, Page::default())
        .await
        .unwrap()
        .items
        .is_empty());
    let first = kit
        .service
        .list_orders(&u, Page::new(Some(2), None))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(first.has_more);
    let last_id = first.items[1].id().get();
    let rest = kit
        .service
        .list_orders(&u, Page::new(Some(10), Some(last_id)))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 3);
    assert!(!rest.has_more);
    assert!(rest.items.iter().all(|o| o.id().get() > last_id));
}

// --- renewal ----------------------------------------------------------------------------

const DAY: Duration = Duration::from_secs(86400);

fn without_ari() -> Settings {
    let mut settings = Settings::default();
    settings.renewal.ari = false;
    settings
}

/// An order worked to `valid`, its certificate issued now for 90 days.
async fn issued(kit: &Kit) -> (User, Order) {
    kit.acme.issue_as(kit.clock.now(), 90 * DAY);
    let (u, _, _) = ordered(kit, &["a.example.com"]).await;
    let done = work(kit).await;
    assert_eq!(done.status(), OrderStatus::Valid, "{:?}", done.error());
    (u, done)
}

fn order_of(kit: &Kit, id: OrderId) -> Order {
    kit.store
        .orders()
        .into_iter()
        .find(|o| o.id() == id)
        .unwrap()
}

#[tokio::test]
async fn a_certificate_is_renewed_when_a_third_of_its_lifetime_is_left() {
    let kit = Kit::with_settings(without_ari());
    let start = kit.clock.now();
    let (_, order) = issued(&kit).await;
    let plan = order.renewal_plan().expect("a plan").clone();
    assert_eq!(plan.reason, RenewalReason::Lifetime);
    assert_eq!(plan.at, start + 60 * DAY, "two thirds of 90 days");
    assert_eq!(order.due_at(), Some(plan.at));

    kit.clock.advance(60 * DAY - Duration::from_secs(1));
    assert!(
        kit.service.work_one(&worker()).await.unwrap().is_none(),
        "not due a second early"
    );
    kit.clock.advance(Duration::from_secs(1));
    kit.acme.issue_as(kit.clock.now(), 90 * DAY);
    let renewed = work(&kit).await;
    assert_eq!(
        renewed.status(),
        OrderStatus::Valid,
        "{:?}",
        renewed.error()
    );
    assert_eq!(renewed.state().attempt, 2);
    assert_ne!(renewed.resolved_cert_id(), order.resolved_cert_id());
    let certificates = kit.store.certificates();
    assert_eq!(certificates.len(), 2);
    assert!(
        certificates
            .iter()
            .all(|c| c.status == CertificateStatus::Valid),
        "the old certificate stays valid"
    );
    assert_eq!(
        renewed.renewal_plan().unwrap().at,
        kit.clock.now() + 60 * DAY,
        "the next renewal is planned for the new certificate"
    );
}

#[tokio::test]
async fn renewals_of_certificates_issued_together_are_spread() {
    let mut settings = without_ari();
    settings.renewal.spread = 0.1;
    let kit = Kit::with_settings(settings);
    let start = kit.clock.now();
    kit.clock.set_random(0.5);
    let (_, order) = issued(&kit).await;
    assert_eq!(
        order.renewal_plan().unwrap().at,
        start + 60 * DAY - DAY.mul_f64(4.5),
        "half of a tenth of 90 days earlier"
    );
}

#[tokio::test]
async fn the_ca_renewal_window_decides_and_replaces_is_sent() {
    let kit = Kit::new();
    let start = kit.clock.now();
    let (_, order) = issued(&kit).await;
    assert_eq!(
        order.due_at(),
        Some(start + Duration::from_secs(6 * 3600)),
        "renewal information is first fetched after the poll interval"
    );
    kit.acme.offer_renewal_info(
        Some((start + 10 * DAY, start + 11 * DAY)),
        Some(Duration::from_secs(3600)),
    );
    kit.clock.set_random(0.5);
    kit.clock.advance(Duration::from_secs(6 * 3600));
    kit.service.work_one(&worker()).await.unwrap().unwrap();
    let order = order_of(&kit, order.id());
    let plan = order.renewal_plan().unwrap();
    assert_eq!(plan.reason, RenewalReason::AriWindow);
    assert_eq!(plan.at, start + 10 * DAY + DAY / 2, "inside the window");
    assert_eq!(
        order.due_at(),
        Some(kit.clock.now() + Duration::from_secs(3600)),
        "asked again as Retry-After says"
    );
    assert_eq!(order.status(), OrderStatus::Valid);

    // The CA moves the window into the past: renew now.
    kit.acme
        .offer_renewal_info(Some((start - DAY, start)), Some(Duration::from_secs(3600)));
    kit.clock.advance(Duration::from_secs(3600));
    let renewed = work(&kit).await;
    assert_eq!(renewed.state().attempt, 2);
    let replaces = kit.acme.replaces();
    assert_eq!(replaces.len(), 2);
    assert_eq!(replaces[0], None, "a first issuance replaces nothing");
    assert!(
        replaces[1]
            .as_deref()
            .is_some_and(|r| r.starts_with("ari.")),
        "{replaces:?}"
    );
}

#[tokio::test]
async fn a_failed_renewal_keeps_the_certificate_and_backs_off() {
    let kit = Kit::with_settings(without_ari());
    let (_, order) = issued(&kit).await;
    kit.clock.advance(60 * DAY);
    kit.acme.reject(
        "place_order",
        "urn:ietf:params:acme:error:rejectedIdentifier: no",
    );
    let failed = work(&kit).await;
    assert_eq!(failed.status(), OrderStatus::Valid);
    assert_eq!(failed.resolved_cert_id(), order.resolved_cert_id());
    assert_eq!(failed.state().progress.renewal_failures, 1);
    assert!(failed
        .state()
        .progress
        .renewal_error
        .as_deref()
        .is_some_and(|e| e.contains("rejectedIdentifier")));
    assert_eq!(
        failed.due_at(),
        Some(kit.clock.now() + Duration::from_secs(60))
    );

    kit.clock.advance(Duration::from_secs(60));
    let again = work(&kit).await;
    assert_eq!(again.state().progress.renewal_failures, 2);
    assert_eq!(
        again.due_at(),
        Some(kit.clock.now() + Duration::from_secs(120)),
        "the pause doubles"
    );
    let placed = kit
        .acme
        .calls()
        .iter()
        .filter(|c| *c == "place_order")
        .count();
    assert_eq!(placed, 3, "one issuance and two renewal tries, no more");
}

#[tokio::test]
async fn revoked_certificates_and_orders_without_auto_renew_are_never_renewed() {
    let kit = Kit::with_settings(without_ari());
    let (u, order) = issued(&kit).await;
    kit.service
        .revoke_certificate(
            &u,
            order.resolved_cert_id().unwrap(),
            RevocationReason::Unspecified,
        )
        .await
        .unwrap();
    assert_eq!(order_of(&kit, order.id()).due_at(), None);

    let kit = Kit::with_settings(without_ari());
    let u = user(&kit, "carol").await;
    let a = account(&kit, &u).await;
    let mut r = request(&a, &["b.example.com"]);
    r.auto_renew = false;
    kit.service.create_order(&u, r).await.unwrap();
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid);
    assert_eq!(done.due_at(), None, "nothing is ever due");
    kit.clock.advance(200 * DAY);
    assert!(kit.service.work_one(&worker()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_deactivated_account_stops_renewals() {
    let kit = Kit::with_settings(without_ari());
    let (_, order) = issued(&kit).await;
    // Deactivated elsewhere (at the CA, by hand) with its certificate still valid.
    let mut account = crate::ports::AccountRepo::get(kit.store.as_ref(), order.account_id())
        .await
        .unwrap()
        .unwrap();
    account.status = AccountStatus::Deactivated;
    crate::ports::AccountRepo::update(kit.store.as_ref(), &account)
        .await
        .unwrap();
    kit.clock.advance(60 * DAY);
    let settled = work(&kit).await;
    assert_eq!(settled.status(), OrderStatus::Valid);
    assert_eq!(settled.due_at(), None);
    assert_eq!(settled.state().attempt, 1, "no renewal was started");
}

// --- fairness and conditional writes ----------------------------------------------------

#[tokio::test]
async fn workers_serve_users_in_turn() {
    let kit = Kit::new();
    let a = user(&kit, "alice").await;
    let aa = account(&kit, &a).await;
    for i in 0..20 {
        kit.service
            .create_order(&a, request(&aa, &[&format!("n{i}.example.com")]))
            .await
            .unwrap();
    }
    let b = user(&kit, "bob").await;
    let ba = account(&kit, &b).await;
    let (b_order, _) = kit
        .service
        .create_order(&b, request(&ba, &["b.example.com"]))
        .await
        .unwrap();
    kit.propagation.missing_for(u32::MAX);
    let first = kit.service.work_one(&worker()).await.unwrap().unwrap();
    let second = kit.service.work_one(&worker()).await.unwrap().unwrap();
    assert_ne!(first, b_order.id(), "alice's first order came first");
    assert_eq!(
        second,
        b_order.id(),
        "bob's one order is next, before alice's other 19"
    );
}

#[tokio::test]
async fn a_write_based_on_a_stale_copy_is_refused() {
    let kit = Kit::with_settings(without_ari());
    let (u, order) = issued(&kit).await;
    let stale = order_of(&kit, order.id());
    kit.service.reorder(&u, order.id()).await.unwrap();
    let err = kit
        .store
        .save(&stale, None, kit.clock.now())
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert_eq!(order_of(&kit, order.id()).status(), OrderStatus::Pending);
}

#[tokio::test]
async fn a_compromised_uploaded_key_is_never_renewed_into_a_new_certificate() {
    let kit = Kit::with_settings(without_ari());
    let u = user(&kit, "dora").await;
    let a = account(&kit, &u).await;
    let mut r = request(&a, &["k.example.com"]);
    r.key = Some(PrivateKeyPem::new("KEY uploaded 1"));
    let (order, _) = kit.service.create_order(&u, r).await.unwrap();
    let first = work(&kit).await.resolved_cert_id().unwrap();
    kit.service.reorder(&u, order.id()).await.unwrap();
    let second = work(&kit).await;
    assert_ne!(second.resolved_cert_id(), Some(first));
    assert!(
        second.due_at().is_some(),
        "the current certificate is planned for renewal"
    );

    // The older certificate, with the same uploaded key, is revoked for keyCompromise.
    kit.service
        .revoke_certificate(&u, first, RevocationReason::KeyCompromise)
        .await
        .unwrap();
    let order = order_of(&kit, order.id());
    assert!(
        !order.spec().auto_renew,
        "renewals with that key are stopped"
    );
    kit.clock.advance(80 * DAY);
    if kit.service.work_one(&worker()).await.unwrap().is_some() {
        let settled = order_of(&kit, order.id());
        assert_eq!(settled.state().attempt, 2, "no renewal began");
        assert_eq!(settled.due_at(), None);
    }
    assert_eq!(
        kit.store.certificates().len(),
        2,
        "no certificate was issued with the compromised key"
    );
}

#[tokio::test]
async fn a_rate_limit_is_retried_no_sooner_than_its_retry_after() {
    let kit = Kit::new();
    ordered(&kit, &["a.example.com"]).await;
    kit.acme
        .rate_limit("place_order", 2, Duration::from_secs(90));
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid, "{:?}", done.error());
    assert_eq!(
        kit.clock.slept(),
        Duration::from_secs(180),
        "each retry waited the CA's Retry-After (90 s), not the 2 s and 4 s of the backoff"
    );
}

#[tokio::test]
async fn a_rate_limited_renewal_backs_off_at_least_as_long_as_the_ca_asks() {
    let mut settings = without_ari();
    settings.retry_budget = Duration::from_secs(60);
    let kit = Kit::with_settings(settings);
    let (_, order) = issued(&kit).await;
    kit.clock.advance(60 * DAY);
    kit.acme
        .rate_limit("place_order", 100, Duration::from_secs(7200));
    let failed = work(&kit).await;
    assert_eq!(failed.status(), OrderStatus::Valid, "the certificate stays");
    assert_eq!(failed.resolved_cert_id(), order.resolved_cert_id());
    let due = failed.due_at().expect("a next try");
    assert!(
        due >= kit.clock.now() + Duration::from_secs(7200),
        "the next renewal try honours Retry-After: due {due}, now {}",
        kit.clock.now()
    );
}
