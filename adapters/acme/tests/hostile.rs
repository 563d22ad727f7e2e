//! The ACME client against a hostile local ACME server (HTTPS on loopback): one that
//! answers slowly, trickles or streams an endless body, fails with 500, or rate-limits
//! with 429, `Retry-After` and `rateLimited` problems. Each request must end within its
//! deadline with the right error, and memory must stay bounded.

use acmeport_acme::{AcmeClientConfig, InstantAcmeClient};
use acmeport_domain::ports::{AcmeClient, AcmeError};
use acmeport_domain::{DirectoryUrl, Email};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The deadline the client gets in these tests.
const DEADLINE: Duration = Duration::from_secs(1);
/// The body cap the client gets in these tests.
const MAX_BODY: usize = 256 * 1024;

/// A TLS server on 127.0.0.1 whose behaviour is chosen by the first path segment.
struct Stub {
    base: String,
    root_pem: String,
}

async fn start_stub() -> Stub {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("leaf params");
    let issuer = rcgen::Issuer::from_ca_cert_der(ca.der(), &ca_key).expect("issuer");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf");
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .expect("server TLS config");
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let own_base = base.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let base = own_base.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = serve(&mut tls, &base).await;
                }
            });
        }
    });
    Stub {
        base,
        root_pem: ca.pem(),
    }
}

/// Answers one request on the connection, then closes it.
async fn serve<S: AsyncReadExt + AsyncWriteExt + Unpin>(
    stream: &mut S,
    base: &str,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut parts = head.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;

    let mode = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let resource = path.rsplit('/').next().unwrap_or("");
    let directory = format!(
        r#"{{"newNonce":"{base}/{mode}/nonce","newAccount":"{base}/{mode}/account","newOrder":"{base}/{mode}/order"}}"#
    );
    let problem = |kind: &str, detail: &str| {
        format!(r#"{{"type":"urn:ietf:params:acme:error:{kind}","detail":"{detail}"}}"#)
    };
    let respond = |status: &str, extra: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nReplay-Nonce: nonce-{n}\r\n\
             {extra}Content-Length: {len}\r\nConnection: close\r\n\r\n{body}",
            n = rand_nonce(),
            len = body.len()
        )
    };
    let answer = match (mode, resource, method.as_str()) {
        // Ordinary directory and nonce answers for the modes that misbehave later.
        (_, "directory", _) if mode.starts_with("late") => respond("200 OK", "", &directory),
        (_, "nonce", "HEAD") => respond("200 OK", "", ""),
        ("slow", _, _) => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            respond("200 OK", "", &directory)
        }
        ("trickle", _, _) => {
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                      Content-Length: 100000\r\nConnection: close\r\n\r\n",
                )
                .await?;
            loop {
                stream.write_all(b" ").await?;
                stream.flush().await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        ("endless", _, _) => {
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                      Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                )
                .await?;
            let chunk = vec![b'x'; 64 * 1024];
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            loop {
                stream.write_all(&framed).await?;
            }
        }
        ("huge", _, _) => {
            // Announces 10 GB and sends as fast as it can.
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                      Content-Length: 10000000000\r\nConnection: close\r\n\r\n",
                )
                .await?;
            let chunk = vec![b'x'; 64 * 1024];
            loop {
                stream.write_all(&chunk).await?;
            }
        }
        ("error500", _, _) => respond(
            "500 Internal Server Error",
            "",
            &problem("serverInternal", "the database is down"),
        ),
        ("busy429", _, _) => respond("429 Too Many Requests", "Retry-After: 7\r\n", "slow down"),
        ("latelimited", "account", "POST") => {
            let at =
                httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(90));
            respond(
                "429 Too Many Requests",
                &format!("Retry-After: {at}\r\n"),
                &problem("rateLimited", "too many new accounts from this address"),
            )
        }
        ("latelimited403", "account", "POST") => respond(
            "403 Forbidden",
            "",
            &problem("rateLimited", "too many registrations"),
        ),
        _ => respond(
            "404 Not Found",
            "",
            &problem("malformed", "no such resource"),
        ),
    };
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await
}

fn rand_nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn client(stub: &Stub) -> InstantAcmeClient {
    InstantAcmeClient::new(AcmeClientConfig {
        extra_roots_pem: vec![stub.root_pem.clone()],
        webpki_roots: false,
        request_timeout: DEADLINE,
        max_body_bytes: MAX_BODY,
        // The stub listens on loopback: allowed explicitly, as a private CA would be.
        allowed_private_hosts: vec!["127.0.0.1".to_owned()],
        ..AcmeClientConfig::default()
    })
    .expect("client")
}

async fn register(client: &InstantAcmeClient, stub: &Stub, mode: &str) -> AcmeError {
    let directory = DirectoryUrl::parse(&format!("{}/{mode}/directory", stub.base)).expect("url");
    let email = Email::parse("ops@example.com").expect("email");
    match client.register(&directory, &email, None, None).await {
        Ok(_) => panic!("registering at the {mode} stub must fail"),
        Err(e) => e,
    }
}

/// The resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[tokio::test]
async fn slow_answers_and_trickled_bodies_end_at_the_deadline_as_transient() {
    let stub = start_stub().await;
    let client = client(&stub);
    for mode in ["slow", "trickle"] {
        let started = Instant::now();
        let error = register(&client, &stub, mode).await;
        let took = started.elapsed();
        assert!(
            took < DEADLINE * 3,
            "{mode}: the request took {took:?}, longer than its deadline {DEADLINE:?} allows"
        );
        assert!(
            matches!(error, AcmeError::Transport(_)) && error.is_transient(),
            "{mode}: expected a transient transport error, got {error:?}"
        );
        let text = format!(
            "{error}: {}",
            std::error::Error::source(&error)
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        assert!(
            text.contains("within"),
            "{mode}: the error should name the deadline: {text}"
        );
    }
}

#[tokio::test]
async fn endless_and_huge_bodies_are_cut_at_the_cap_and_memory_stays_bounded() {
    let stub = start_stub().await;
    let client = Arc::new(client(&stub));
    let before = rss_kib();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = client.clone();
        let mode = if i % 2 == 0 { "endless" } else { "huge" };
        let directory =
            DirectoryUrl::parse(&format!("{}/{mode}/directory", stub.base)).expect("url");
        tasks.push(tokio::spawn(async move {
            let email = Email::parse("ops@example.com").expect("email");
            let started = Instant::now();
            let result = client.register(&directory, &email, None, None).await;
            (mode, result.err(), started.elapsed())
        }));
    }
    for task in tasks {
        let (mode, error, took) = task.await.expect("task");
        let error = error.unwrap_or_else(|| panic!("{mode}: registering must fail"));
        let source = std::error::Error::source(&error)
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            matches!(error, AcmeError::Transport(_)) && source.contains("larger than"),
            "{mode}: expected the body cap to stop the request, got {error:?} ({source})"
        );
        assert!(took < DEADLINE * 3, "{mode}: took {took:?}");
    }
    let grown = rss_kib().saturating_sub(before);
    eprintln!("resident memory grew by {grown} KiB over 20 endless/huge answers");
    assert!(
        grown < 64 * 1024,
        "resident memory grew by {grown} KiB while reading 20 capped bodies of {MAX_BODY} bytes"
    );
}

#[tokio::test]
async fn server_errors_are_transient() {
    let stub = start_stub().await;
    let error = register(&client(&stub), &stub, "error500").await;
    let source = std::error::Error::source(&error)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        matches!(error, AcmeError::Transport(_)) && error.is_transient(),
        "expected a transient transport error, got {error:?}"
    );
    assert!(
        source.contains("500") && source.contains("the database is down"),
        "the error should carry the status and the server's detail: {source}"
    );
    assert_eq!(error.retry_after(), None);
}

#[tokio::test]
async fn rate_limits_carry_the_retry_after_out() {
    let stub = start_stub().await;
    let client = client(&stub);

    let error = register(&client, &stub, "busy429").await;
    match &error {
        AcmeError::RateLimited { retry_after, .. } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("a 429 with Retry-After: 7 must be RateLimited, got {other:?}"),
    }
    assert!(error.is_transient());

    let error = register(&client, &stub, "latelimited").await;
    match &error {
        AcmeError::RateLimited {
            detail,
            retry_after,
        } => {
            assert!(detail.contains("too many new accounts"), "{detail}");
            let wait = retry_after.expect("the HTTP-date Retry-After must come out");
            assert!(
                wait > Duration::from_secs(80) && wait <= Duration::from_secs(90),
                "Retry-After 90 s ahead read as {wait:?}"
            );
        }
        other => panic!("a rateLimited problem must be RateLimited, got {other:?}"),
    }

    let error = register(&client, &stub, "latelimited403").await;
    assert!(
        matches!(
            &error,
            AcmeError::RateLimited { detail, retry_after: None } if detail.contains("too many registrations")
        ),
        "a rateLimited problem without Retry-After must be RateLimited without a wait, got {error:?}"
    );
}
