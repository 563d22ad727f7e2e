//! Whole orders through the service against Pebble over HTTP-01, with the real ACME and key
//! adapters (issue 3, tests 1 to 4 for HTTP-01).

use crate::harness::pebble::PebbleOptions;
use crate::harness::{served_tokens, HttpStack};
use acmeport_domain::ports::{AcmeClient, AcmeError, CsrFactory};
use acmeport_domain::service::CreateOrderError;
use acmeport_domain::{
    AccountStatus, AcmeAccount, CertificateStatus, ChallengeKind, CreateOrder, CsrSubject,
    Identifiers, KeySpec, OrderId, PrivateKeyPem, RevocationReason,
};
use base64::Engine;
use std::time::Instant;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

fn http_order(account: &AcmeAccount, names: &[&str]) -> CreateOrder {
    CreateOrder {
        account: account.id,
        identifiers: Identifiers::parse(names).expect("valid names"),
        challenge: ChallengeKind::Http01,
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

async fn create(stack: &HttpStack, request: CreateOrder) -> OrderId {
    stack
        .service
        .create_order(&stack.user, request)
        .await
        .expect("the service accepts the order")
        .0
        .id()
}

fn leaf(pem: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .expect("leaf PEM")
        .1
        .contents
}

/// The subject public key bits of a DER certificate.
fn public_key_of(der: &[u8]) -> Vec<u8> {
    let (_, cert) = X509Certificate::from_der(der).expect("certificate DER");
    cert.public_key().subject_public_key.data.to_vec()
}

/// Issue 3, test 1 (HTTP-01 part): one certificate for two names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_issues_a_certificate_for_two_names() {
    let started = Instant::now();
    let stack = HttpStack::start(PebbleOptions::default()).await;
    let account = stack.account("ops@example.com").await;

    let ordering = Instant::now();
    let id = create(
        &stack,
        http_order(&account, &["www.example.com", "example.com"]),
    )
    .await;
    stack.run_orders(1).await;
    let took = ordering.elapsed();

    let (order, certificate) = stack.issued(id).await;
    stack.verify(&order, &certificate).await;
    let der = leaf(&certificate.info.leaf_pem);
    let (_, cert) = X509Certificate::from_der(&der).expect("leaf");
    match cert.public_key().parsed().expect("public key") {
        PublicKey::RSA(rsa) => assert_eq!(rsa.key_size(), 2048, "RSA 2048 is the default key"),
        other => panic!("the default key must be RSA, got {other:?}"),
    }
    assert!(
        served_tokens(&stack.store).await.is_empty(),
        "HTTP-01 tokens must be withdrawn after validation, still served: {:?}",
        served_tokens(&stack.store).await
    );
    eprintln!(
        "[timing] issue 3 test 1 (HTTP-01, two names): order to stored certificate {took:?}; \
         with Pebble start and account {:?}",
        started.elapsed()
    );
}

/// Issue 3, test 2: a batch of ten certificates while Pebble rejects 30 % of nonces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_batch_of_ten_survives_thirty_percent_bad_nonces() {
    let started = Instant::now();
    let stack =
        HttpStack::start(PebbleOptions::default().env("PEBBLE_WFE_NONCEREJECT", "30")).await;
    let account = stack.account("batch@example.com").await;

    let ordering = Instant::now();
    let mut ids = Vec::new();
    for i in 0..10 {
        let names = [
            format!("host{i}.example.com"),
            format!("www.host{i}.example.com"),
        ];
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        ids.push(create(&stack, http_order(&account, &names)).await);
    }
    stack.run_orders(5).await;
    let took = ordering.elapsed();

    for id in ids {
        let (order, certificate) = stack.issued(id).await;
        stack.verify(&order, &certificate).await;
    }
    eprintln!(
        "[timing] issue 3 test 2 (10 certificates, PEBBLE_WFE_NONCEREJECT=30, 5 workers): \
         orders to stored certificates {took:?}; with Pebble start {:?}",
        started.elapsed()
    );
}

/// Issue 3, test 3: an uploaded CSR, and an uploaded RSA key in PKCS#1 form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_with_an_uploaded_csr_and_an_uploaded_pkcs1_key() {
    let stack = HttpStack::start(PebbleOptions::default()).await;
    let account = stack.account("uploads@example.com").await;

    // A CSR made outside the service, with a key the service never sees.
    let csr_names = ["csr.example.com", "www.csr.example.com"];
    let csr_key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(
        csr_names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<Vec<_>>(),
    )
    .expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, csr_names[0]);
    let csr_pem = params
        .serialize_request(&csr_key)
        .expect("CSR")
        .pem()
        .expect("PEM");
    let with_csr = create(
        &stack,
        CreateOrder {
            csr: Some(csr_pem.clone()),
            ..http_order(&account, &csr_names)
        },
    )
    .await;

    // An RSA key as `openssl genrsa -traditional` writes it.
    let pkcs8 = stack
        .keys
        .generate_key(KeySpec::Rsa2048)
        .await
        .expect("key");
    let pkcs1 = PrivateKeyPem::new(pkcs8_to_pkcs1_pem(pkcs8.expose()));
    assert!(pkcs1
        .expose()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let with_key = create(
        &stack,
        CreateOrder {
            key: Some(pkcs1.clone()),
            ..http_order(&account, &["key.example.com"])
        },
    )
    .await;

    stack.run_orders(2).await;

    let (order, certificate) = stack.issued(with_csr).await;
    stack.verify(&order, &certificate).await;
    assert!(
        certificate.key.is_none(),
        "the service holds no key for an uploaded CSR"
    );
    assert_eq!(
        certificate.csr.trim(),
        csr_pem.trim(),
        "the uploaded CSR is kept"
    );
    assert_eq!(
        public_key_of(&leaf(&certificate.info.leaf_pem)),
        rcgen::PublicKeyData::der_bytes(&csr_key),
        "the certificate must carry the uploaded CSR's public key"
    );

    let (order, certificate) = stack.issued(with_key).await;
    stack.verify(&order, &certificate).await;
    assert_eq!(
        certificate.key.as_ref().map(PrivateKeyPem::expose),
        Some(pkcs1.expose()),
        "the uploaded PKCS#1 key must be stored as given"
    );
}

/// Issue 3, test 4: revocation seen by Pebble; a deactivated account gets no more orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_account_deactivation_reach_pebble() {
    let stack = HttpStack::start(PebbleOptions::default()).await;
    let account = stack.account("revoke@example.com").await;
    let first = create(&stack, http_order(&account, &["first.example.com"])).await;
    let second = create(&stack, http_order(&account, &["second.example.com"])).await;
    stack.run_orders(2).await;
    let (_, first) = stack.issued(first).await;
    let (_, second) = stack.issued(second).await;
    assert_eq!(
        stack.pebble.cert_status(&first.info.serial).await["Status"],
        "Valid"
    );

    let revoked = stack
        .service
        .revoke_certificate(&stack.user, first.id, RevocationReason::KeyCompromise)
        .await
        .expect("revocation");
    assert_eq!(revoked.status, CertificateStatus::Revoked);
    let status = stack.pebble.cert_status(&first.info.serial).await;
    assert_eq!(
        status["Status"], "Revoked",
        "Pebble must report the certificate revoked: {status}"
    );
    assert_eq!(
        status["Reason"], 1,
        "the reason code keyCompromise (1) must reach Pebble: {status}"
    );

    // The CA's own answer to a second revocation, as the adapter reports it.
    match stack
        .acme
        .revoke(
            &account.credentials,
            &first.info.leaf_pem,
            RevocationReason::Unspecified,
        )
        .await
    {
        Err(AcmeError::AlreadyRevoked) => {}
        other => panic!("revoking twice must be AlreadyRevoked, got {other:?}"),
    }

    let deactivated = stack
        .service
        .deregister_account(&stack.user, account.id)
        .await
        .expect("deregistration");
    assert_eq!(deactivated.status, AccountStatus::Deactivated);
    let status = stack.pebble.cert_status(&second.info.serial).await;
    assert_eq!(
        status["Status"], "Revoked",
        "deregistering revokes the account's remaining certificates: {status}"
    );

    match stack
        .service
        .create_order(&stack.user, http_order(&account, &["third.example.com"]))
        .await
    {
        Err(CreateOrderError::AccountDeactivated) => {}
        other => panic!("the service must refuse orders of a deactivated account, got {other:?}"),
    }
    // Pebble itself refuses the deactivated account.
    let names = Identifiers::parse(&["third.example.com"]).expect("valid");
    match stack
        .acme
        .place_order(&account.credentials, &names, None)
        .await
    {
        Err(AcmeError::Rejected(reason)) => assert!(
            reason.starts_with("unauthorized"),
            "Pebble's refusal should read as unauthorized, got: {reason}"
        ),
        other => panic!("Pebble must refuse orders of a deactivated account, got {other:?}"),
    }
}

/// The same HTTP-01 issuance with Pebble enforcing more of RFC 8555.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_issuance_passes_pebble_strict_mode() {
    let stack = HttpStack::start(PebbleOptions {
        strict: true,
        ..PebbleOptions::default()
    })
    .await;
    let account = stack.account("strict@example.com").await;
    let id = create(&stack, http_order(&account, &["strict.example.com"])).await;
    stack.run_orders(1).await;
    let (order, certificate) = stack.issued(id).await;
    stack.verify(&order, &certificate).await;
}

/// Rewrites a PKCS#8 RSA key as PKCS#1: the PKCS#8 wrapper's private key octet string is
/// exactly the PKCS#1 structure.
fn pkcs8_to_pkcs1_pem(pkcs8_pem: &str) -> String {
    use x509_parser::der_parser::ber::BerObjectContent;
    let der = x509_parser::pem::parse_x509_pem(pkcs8_pem.as_bytes())
        .expect("PEM")
        .1
        .contents;
    let (_, outer) = x509_parser::der_parser::parse_der(&der).expect("PKCS#8 DER");
    let items = outer.as_sequence().expect("PKCS#8 is a sequence");
    let BerObjectContent::OctetString(inner) = &items[2].content else {
        panic!("the third PKCS#8 element must be the private key octet string");
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(inner);
    let lines: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
        lines.join("\n")
    )
}
