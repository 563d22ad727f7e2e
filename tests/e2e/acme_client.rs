//! The ACME adapter's own behaviour against Pebble, below the service: resumed operations,
//! readable validation failures, key rollover, External Account Binding, own account keys,
//! trust configuration, and the HTTP-01 responder on a real listener.

use crate::harness::pebble::{Pebble, PebbleOptions};
use crate::harness::{init, sqlite_store, verify_chain, ChallengeResponder, HttpStack};
use acmeport_acme::{AcmeClientConfig, InstantAcmeClient};
use acmeport_domain::ports::{
    AcmeClient, AcmeError, AcmeProgress, ChallengeTokenStore, CsrFactory,
};
use acmeport_domain::{
    ChallengeKind, CsrSubject, Email, ExternalAccountBinding, Identifiers, KeySpec, Password,
    PrivateKeyPem,
};
use base64::Engine;

fn names(list: &[&str]) -> Identifiers {
    Identifiers::parse(list).expect("valid names")
}

fn email() -> Email {
    Email::parse("adapter@example.com").expect("valid")
}

#[tokio::test]
async fn challenge_responder_answers_known_tokens_only() {
    init();
    let (store, _data) = sqlite_store().await;
    store
        .put("known-token_1", "known-token_1.thumbprint")
        .await
        .expect("put");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let responder = ChallengeResponder::serve(listener, store.clone());
    let base = format!("http://127.0.0.1:{}", responder.port);
    let client = reqwest::Client::new();

    let answer = client
        .get(format!("{base}/.well-known/acme-challenge/known-token_1"))
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "text/plain");
    assert_eq!(
        answer.text().await.expect("body"),
        "known-token_1.thumbprint"
    );

    for (method, path) in [
        ("GET", "/.well-known/acme-challenge/unknown"),
        ("GET", "/.well-known/acme-challenge/known-token_1/more"),
        ("GET", "/.well-known/acme-challenge/bad%20token"),
        ("GET", "/"),
        ("POST", "/.well-known/acme-challenge/known-token_1"),
    ] {
        let response = client
            .request(method.parse().expect("method"), format!("{base}{path}"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404, "{method} {path} must be 404");
        assert!(
            response.text().await.expect("body").is_empty(),
            "{method} {path}: no body"
        );
    }

    store.remove("known-token_1").await.expect("remove");
    let gone = client
        .get(format!("{base}/.well-known/acme-challenge/known-token_1"))
        .send()
        .await
        .expect("request");
    assert_eq!(gone.status(), 404, "a withdrawn token is no longer served");
}

/// A worker that died after any step calls the same operation again: nothing is answered
/// or finalized twice, and each call still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_operations_do_not_repeat_work() {
    let stack = HttpStack::start(PebbleOptions::default()).await;
    let account = stack.account("resume@example.com").await;
    let creds = &account.credentials;
    let ids = names(&["resume.example.com", "www.resume.example.com"]);
    let url = stack
        .acme
        .place_order(creds, &ids, None)
        .await
        .expect("order");

    let challenges = stack
        .acme
        .challenges(creds, &url, ChallengeKind::Http01)
        .await
        .expect("challenges");
    let mut identifiers: Vec<&str> = challenges.iter().map(|c| c.identifier.as_str()).collect();
    identifiers.sort_unstable();
    assert_eq!(
        identifiers,
        ["resume.example.com", "www.resume.example.com"]
    );
    for challenge in &challenges {
        assert!(
            challenge
                .key_authorization
                .starts_with(&format!("{}.", challenge.token)),
            "key authorization is token.thumbprint"
        );
        stack
            .store
            .put(&challenge.token, &challenge.key_authorization)
            .await
            .expect("publish");
    }
    until_done(|| stack.acme.answer(creds, &url, ChallengeKind::Http01))
        .await
        .expect("validation");
    assert_eq!(
        stack
            .acme
            .answer(creds, &url, ChallengeKind::Http01)
            .await
            .expect("answering again after validation is a no-op"),
        AcmeProgress::Done
    );
    let left = stack
        .acme
        .challenges(creds, &url, ChallengeKind::Http01)
        .await
        .expect("challenges after validation");
    assert!(
        left.is_empty(),
        "valid authorizations need no challenge, got {left:?}"
    );

    let key = stack
        .keys
        .generate_key(KeySpec::EcdsaP256)
        .await
        .expect("key");
    let csr = stack
        .keys
        .build_csr(&key, &ids, &CsrSubject::default(), None)
        .expect("csr");
    until_done(|| stack.acme.finalize(creds, &url, &csr.der))
        .await
        .expect("finalize");
    assert_eq!(
        stack
            .acme
            .finalize(creds, &url, &csr.der)
            .await
            .expect("finalizing again only looks"),
        AcmeProgress::Done
    );
    let chain = stack
        .acme
        .certificate(creds, &url)
        .await
        .expect("certificate");
    let again = stack
        .acme
        .certificate(creds, &url)
        .await
        .expect("certificate again");
    assert_eq!(chain, again, "the same certificate is downloaded again");
    let root = stack.pebble.root_pem().await;
    verify_chain(
        &chain,
        &root,
        &["resume.example.com".into(), "www.resume.example.com".into()],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_validation_names_the_identifier_and_the_problem() {
    let stack = HttpStack::start(PebbleOptions::default()).await;
    let account = stack.account("fail@example.com").await;
    let creds = &account.credentials;
    let url = stack
        .acme
        .place_order(creds, &names(&["unserved.example.com"]), None)
        .await
        .expect("order");
    let challenges = stack
        .acme
        .challenges(creds, &url, ChallengeKind::Http01)
        .await
        .expect("challenges");
    assert_eq!(challenges.len(), 1);
    // The token is deliberately not published: the responder answers 404.
    match until_done(|| stack.acme.answer(creds, &url, ChallengeKind::Http01)).await {
        Err(AcmeError::ValidationFailed(reason)) => {
            assert!(
                reason.contains("unserved.example.com: http-01 challenge: unauthorized:"),
                "the reason should name identifier, challenge and problem type: {reason}"
            );
            assert!(
                reason.contains("404"),
                "Pebble's detail (HTTP 404) should be kept: {reason}"
            );
        }
        other => panic!("an unserved token must fail validation, got {other:?}"),
    }
    // A resumed call sees the invalid order and reports the same cause.
    match until_done(|| stack.acme.answer(creds, &url, ChallengeKind::Http01)).await {
        Err(AcmeError::ValidationFailed(reason)) => {
            assert!(reason.contains("unserved.example.com"), "{reason}");
        }
        other => panic!("an invalid order stays a validation failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rollover_keeps_the_account_and_retires_the_old_key() {
    let stack = HttpStack::start(PebbleOptions::default()).await;
    let account = stack.account("rollover@example.com").await;
    let old = account.credentials.clone();
    let new = stack.acme.update_key(&old).await.expect("key rollover");
    assert_ne!(new, old, "new credentials carry a new key");
    let order = stack
        .acme
        .place_order(&new, &names(&["rolled.example.com"]), None)
        .await
        .expect("the new key works for the same account");
    assert!(order.starts_with("https://"));
    match stack
        .acme
        .place_order(&old, &names(&["rolled.example.com"]), None)
        .await
    {
        Err(AcmeError::Rejected(reason)) => assert!(!reason.is_empty()),
        other => panic!("the old key must be refused after rollover, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_account_binding_is_required_and_checked() {
    init();
    let hmac = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
    let pebble = Pebble::start(PebbleOptions {
        eab_keys: vec![("kid-1".into(), hmac.clone())],
        ..PebbleOptions::default()
    })
    .await;
    let acme = InstantAcmeClient::new(pebble.acme_config()).expect("client");
    let eab = |kid: &str, key: &str| ExternalAccountBinding {
        kid: kid.into(),
        hmac_key: Password::new(key),
    };

    match acme.register(&pebble.directory, &email(), None, None).await {
        Err(AcmeError::Rejected(reason)) => assert!(
            reason.starts_with("externalAccountRequired"),
            "the refusal should name the problem type: {reason}"
        ),
        other => panic!("registration without EAB must be refused, got {other:?}"),
    }
    let wrong = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([8u8; 32]);
    assert!(
        matches!(
            acme.register(
                &pebble.directory,
                &email(),
                Some(eab("kid-1", &wrong)),
                None
            )
            .await,
            Err(AcmeError::Rejected(_))
        ),
        "a wrong HMAC key must be refused"
    );
    let registered = acme
        .register(&pebble.directory, &email(), Some(eab("kid-1", &hmac)), None)
        .await
        .expect("registration with the right EAB");
    assert!(registered.uri.starts_with("https://"));
    assert!(
        !format!("{registered:?}").contains("key_pkcs8"),
        "credentials must not show in Debug output"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_own_p256_account_key_is_used_and_other_keys_are_refused() {
    init();
    let pebble = Pebble::start(PebbleOptions::default()).await;
    let acme = InstantAcmeClient::new(pebble.acme_config()).expect("client");
    let key = PrivateKeyPem::new(rcgen::KeyPair::generate().expect("P-256").serialize_pem());
    let first = acme
        .register(&pebble.directory, &email(), None, Some(key.clone()))
        .await
        .expect("registration with an own key");
    let again = acme
        .register(&pebble.directory, &email(), None, Some(key))
        .await
        .expect("registering the same key again");
    assert_eq!(first.uri, again.uri, "the same key is the same account");
    acme.place_order(&first.credentials, &names(&["own.example.com"]), None)
        .await
        .expect("the account works");

    let rsa = acmeport_keys::RcgenCsrFactory::new()
        .generate_key(KeySpec::Rsa2048)
        .await
        .expect("rsa");
    match acme
        .register(&pebble.directory, &email(), None, Some(rsa))
        .await
    {
        Err(AcmeError::Credentials(reason)) => assert!(reason.contains("P-256"), "{reason}"),
        other => panic!("an RSA account key must be refused clearly, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_outside_the_trusted_roots_is_refused() {
    init();
    let pebble = Pebble::start(PebbleOptions::default()).await;
    // Only the public roots: Pebble's private TLS CA is not among them. Its loopback
    // address is allowed, so that the certificate check is what refuses.
    let acme = InstantAcmeClient::new(AcmeClientConfig {
        allowed_private_hosts: vec!["127.0.0.1".to_owned()],
        ..AcmeClientConfig::default()
    })
    .expect("client");
    match acme.register(&pebble.directory, &email(), None, None).await {
        Err(AcmeError::Transport(e)) => {
            let mut chain = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            assert!(
                chain.to_lowercase().contains("certificate"),
                "the failure should be about the certificate: {chain}"
            );
        }
        other => panic!("an untrusted server must fail as a transport error, got {other:?}"),
    }
}

/// An HTTPS server on 127.0.0.1 (an allowed private host) that answers with redirects to
/// `target`: `/dir` itself, or, under `/served/`, a directory whose every other URL
/// redirects. Counts the requests it answered.
async fn redirecting_ca(
    target: String,
) -> (
    std::net::SocketAddr,
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use crate::harness::pebble::LoopbackTls;
    use hyper::{Response, StatusCode};
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let tls = LoopbackTls::generate();
    let chain = CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes()).expect("key PEM");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("certificate and key");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("bound");
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&answered);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, counter, target) =
                (acceptor.clone(), Arc::clone(&counter), target.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let base = format!("https://{address}/served");
                        let response = if request.uri().path() == "/served/dir" {
                            let directory = serde_json::json!({
                                "newNonce": format!("{base}/nonce"),
                                "newAccount": format!("{base}/account"),
                                "newOrder": format!("{base}/order"),
                                "revokeCert": format!("{base}/revoke"),
                                "keyChange": format!("{base}/key-change"),
                            });
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(http_body_util::Full::new(bytes::Bytes::from(
                                    directory.to_string(),
                                )))
                        } else {
                            Response::builder()
                                .status(StatusCode::TEMPORARY_REDIRECT)
                                .header("location", target.as_str())
                                .header("replay-nonce", "bm9uY2U")
                                .body(http_body_util::Full::new(bytes::Bytes::new()))
                        };
                        async move { Ok::<_, std::convert::Infallible>(response.expect("response")) }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (address, tls.ca_pem, answered)
}

/// The client follows no redirect: a CA (on an allowed host) that redirects the directory
/// or any later request to a private address never gets the client there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_private_addresses_are_not_followed() {
    use std::sync::atomic::Ordering;
    init();
    // The private address a hostile CA points at, listening, so any visit would show.
    let private = tokio::net::TcpListener::bind("127.0.0.2:0")
        .await
        .expect("127.0.0.2 is a loopback address on Linux");
    let private_address = private.local_addr().expect("bound");
    let visits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&visits);
    tokio::spawn(async move {
        while private.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let (address, ca_pem, answered) =
        redirecting_ca(format!("https://{private_address}/dir")).await;
    let acme = InstantAcmeClient::new(AcmeClientConfig {
        extra_roots_pem: vec![ca_pem],
        webpki_roots: false,
        allowed_private_hosts: vec!["127.0.0.1".to_owned()],
        request_timeout: std::time::Duration::from_secs(5),
        ..AcmeClientConfig::default()
    })
    .expect("client");
    for path in ["/dir", "/served/dir"] {
        let directory = acmeport_domain::DirectoryUrl::parse(&format!("https://{address}{path}"))
            .expect("valid directory URL");
        let before = answered.load(Ordering::SeqCst);
        let result = acme.register(&directory, &email(), None, None).await;
        assert!(
            result.is_err(),
            "{path}: registration through redirects must fail, got {result:?}"
        );
        assert!(
            answered.load(Ordering::SeqCst) > before,
            "{path}: the redirecting CA was asked"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        visits.load(Ordering::SeqCst),
        0,
        "no connection may reach the private address a redirect named"
    );
}

/// A wildcard's authorization comes back as the base name with the wildcard flag; the
/// adapter reports it as `*.name` (the service derives the shared `_acme-challenge` record
/// from it), with the DNS-01 TXT value computed from the key authorization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_challenges_keep_the_wildcard_name() {
    let stack = HttpStack::start(PebbleOptions::default()).await;
    let account = stack.account("wild@example.com").await;
    let creds = &account.credentials;
    let url = stack
        .acme
        .place_order(
            creds,
            &names(&["*.wild.example.com", "wild.example.com"]),
            None,
        )
        .await
        .expect("order");
    let challenges = stack
        .acme
        .challenges(creds, &url, ChallengeKind::Dns01)
        .await
        .expect("DNS-01 challenges");
    let mut identifiers: Vec<&str> = challenges.iter().map(|c| c.identifier.as_str()).collect();
    identifiers.sort_unstable();
    assert_eq!(identifiers, ["*.wild.example.com", "wild.example.com"]);
    for challenge in &challenges {
        let digest = sha256(challenge.key_authorization.as_bytes());
        assert_eq!(
            challenge.dns_value,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
            "the TXT value is base64url(SHA-256(key authorization))"
        );
    }
    match stack
        .acme
        .challenges(creds, &url, ChallengeKind::Http01)
        .await
    {
        Err(AcmeError::Rejected(reason)) => assert!(
            reason.contains("no http-01 challenge for *.wild.example.com"),
            "the refusal should name the kind and the wildcard: {reason}"
        ),
        other => panic!("a wildcard has no HTTP-01 challenge, got {other:?}"),
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

/// Calls a step the CA works on until it is done (the workflow does this through due
/// times; here a short loop), at most a minute.
async fn until_done<F, Fut>(mut call: F) -> Result<(), AcmeError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<AcmeProgress, AcmeError>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match call().await? {
            AcmeProgress::Done => return Ok(()),
            AcmeProgress::NotYet { .. } if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            AcmeProgress::NotYet { .. } => panic!("the CA never finished"),
        }
    }
}
