//! Who may do what, over the in-memory fakes: the name check, the workflow's checks of
//! what the CA returns and where records go, and token generations.

use super::*;
use crate::models::*;
use crate::ports::DnsError;
use crate::testing::Kit;

fn strict() -> Settings {
    Settings {
        allow_any_name: false,
        ..Settings::default()
    }
}

async fn user(kit: &Kit, name: &str, admin: bool) -> User {
    kit.service
        .add_user(
            Username::parse(name).unwrap(),
            &Password::new("password1"),
            admin,
        )
        .await
        .expect("user is created")
}

async fn ordered(kit: &Kit, owner: &User, names: &[&str]) -> Order {
    let (account, _) = kit
        .service
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
        .expect("account");
    kit.service
        .create_order(
            owner,
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
            },
        )
        .await
        .expect("order is created")
        .0
}

async fn work(kit: &Kit) -> Order {
    let id = kit
        .service
        .work_one(&WorkerId::new("w1"))
        .await
        .expect("work succeeds")
        .expect("an order was pending");
    kit.store
        .orders()
        .into_iter()
        .find(|o| o.id() == id)
        .expect("order is stored")
}

fn ids(names: &[&str]) -> Identifiers {
    Identifiers::parse(names).unwrap()
}

#[tokio::test]
async fn names_need_a_grant_unless_admin_or_any_name_is_allowed() {
    let kit = Kit::with_settings(strict());
    let alice = user(&kit, "alice", false).await;
    let admin = user(&kit, "root", true).await;
    let err = kit
        .service
        .authorize_names(&alice, &ids(&["www.example.com"]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "domain `www.example.com` is not granted to this user"
    );
    kit.service
        .authorize_names(&admin, &ids(&["anything.org"]))
        .await
        .expect("admins order anything");
    kit.service
        .add_grant(
            &Principal::user(admin.clone()),
            alice.id,
            &NamePattern::parse("*.example.com").unwrap(),
        )
        .await
        .unwrap();
    kit.service
        .authorize_names(&alice, &ids(&["www.example.com", "*.example.com"]))
        .await
        .expect("granted");

    let open = Kit::new();
    let bob = user(&open, "bob", false).await;
    open.service
        .authorize_names(&bob, &ids(&["anything.org"]))
        .await
        .expect("any name is allowed by default in the library");
}

#[tokio::test]
async fn an_authorization_for_a_name_not_ordered_fails_the_order_before_publishing() {
    let kit = Kit::new();
    let alice = user(&kit, "alice", false).await;
    ordered(&kit, &alice, &["a.example.com", "*.example.com"]).await;
    kit.acme.add_foreign_authorization("victim.org");
    kit.dns
        .refuse_cleanup("keep what was written, for the test");
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Invalid);
    assert_eq!(
        done.error(),
        Some("the CA returned an authorization for `victim.org`, which is not in the order")
    );
    assert!(kit.dns.records().is_empty(), "nothing may be written");
}

#[tokio::test]
async fn a_wildcard_authorization_for_the_base_name_is_expected() {
    let kit = Kit::new();
    let alice = user(&kit, "alice", false).await;
    ordered(&kit, &alice, &["*.example.com"]).await;
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid, "{:?}", done.error());
}

#[tokio::test]
async fn a_cname_out_of_the_providers_zones_fails_the_order_with_nothing_written() {
    let kit = Kit::with_zones(Settings::default(), &["example.com"]);
    let alice = user(&kit, "alice", false).await;
    kit.propagation.delegate(
        "_acme-challenge.a.example.com",
        "_acme-challenge.a.attacker.net",
    );
    ordered(&kit, &alice, &["a.example.com"]).await;
    kit.dns
        .refuse_cleanup("keep what was written, for the test");
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Invalid);
    assert_eq!(
        done.error(),
        Some("the record `_acme-challenge.a.attacker.net` lies outside the zones DNS provider `fake` may write")
    );
    assert!(kit.dns.records().is_empty(), "nothing may be written");
}

#[tokio::test]
async fn a_cname_inside_the_zones_is_followed() {
    let kit = Kit::with_zones(
        Settings::default(),
        &["example.com", "validation.example.net"],
    );
    let alice = user(&kit, "alice", false).await;
    kit.propagation.delegate(
        "_acme-challenge.a.example.com",
        "_acme-challenge.a.validation.example.net",
    );
    ordered(&kit, &alice, &["a.example.com"]).await;
    let done = work(&kit).await;
    assert_eq!(done.status(), OrderStatus::Valid, "{:?}", done.error());
}

#[tokio::test]
async fn a_confined_provider_refuses_records_outside_its_zones_whoever_asks() {
    let kit = Kit::with_zones(Settings::default(), &["example.com"]);
    let fake = ProviderName::parse("fake").unwrap();
    let provider = kit
        .service
        .ports()
        .dns
        .get(&fake)
        .expect("configured")
        .clone();
    let outside = TxtRecord {
        name: "_acme-challenge.example.org".into(),
        value: "v".into(),
    };
    let err = provider.present(&outside).await.unwrap_err();
    assert!(matches!(err, DnsError::Rejected(_)), "{err}");
    assert!(kit.dns.records().is_empty());
    let inside = TxtRecord {
        name: "_acme-challenge.www.example.com".into(),
        value: "v".into(),
    };
    provider.present(&inside).await.expect("inside its zone");
    assert_eq!(kit.dns.records().len(), 1);
    assert!(kit.service.ports().dns.may_write(&fake, "x.example.com"));
    assert!(!kit.service.ports().dns.may_write(&fake, "example.com.evil"));
}

#[tokio::test]
async fn tokens_die_with_a_new_password_or_when_the_user_is_disabled() {
    let kit = Kit::new();
    let alice = user(&kit, "alice", false).await;
    let admin = Principal::user(user(&kit, "root", true).await);
    let (token, _) = kit.service.issue_token(&alice);
    kit.service
        .authenticate_token(token.expose())
        .await
        .expect("fresh token");
    kit.service
        .change_password(
            &Principal::user(alice.clone()),
            alice.id,
            Some(&Password::new("password1")),
            &Password::new("password2"),
        )
        .await
        .unwrap();
    assert!(kit
        .service
        .authenticate_token(token.expose())
        .await
        .is_err());
    assert!(kit
        .service
        .authenticate("alice", &Password::new("password1"))
        .await
        .is_err());
    let alice = kit
        .service
        .authenticate("alice", &Password::new("password2"))
        .await
        .unwrap();

    let (token, _) = kit.service.issue_token(&alice);
    kit.service
        .update_user(
            &admin,
            alice.id,
            UserChange {
                disabled: Some(true),
                admin: None,
            },
        )
        .await
        .unwrap();
    assert!(kit
        .service
        .authenticate_token(token.expose())
        .await
        .is_err());
    assert!(kit
        .service
        .authenticate("alice", &Password::new("password2"))
        .await
        .is_err());
}
