//! The Cloudflare provider against a hostile local stub of the API: an answer slower than
//! the deadline and an answer larger than the body cap both fail as transient errors,
//! within the deadline.

use acmeport_cloudflare::{CloudflareProvider, CloudflareSettings};
use acmeport_domain::ports::{DnsError, DnsProvider};
use acmeport_domain::{Secret, TxtRecord};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DEADLINE: Duration = Duration::from_secs(1);

fn provider(server: &MockServer) -> CloudflareProvider {
    let mut settings = CloudflareSettings::new(Secret::new("test-token"));
    settings.base_url = Some(format!("{}/client/v4/", server.uri()));
    settings.timeout = DEADLINE;
    CloudflareProvider::new(settings).expect("provider")
}

fn record() -> TxtRecord {
    TxtRecord {
        name: "_acme-challenge.www.example.com".into(),
        value: "v".into(),
    }
}

#[tokio::test]
async fn a_slow_api_fails_transiently_at_the_deadline() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/client/v4/zones"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(20)))
        .mount(&server)
        .await;
    let started = Instant::now();
    let result = provider(&server).present(&record()).await;
    let took = started.elapsed();
    assert!(
        matches!(result, Err(DnsError::Transport(_))),
        "expected a transient error, got {result:?}"
    );
    assert!(took < DEADLINE * 3, "the call took {took:?}");
}

#[tokio::test]
async fn an_oversized_answer_is_cut_at_the_cap() {
    let server = MockServer::start().await;
    let huge = format!(
        r#"{{"success":true,"errors":[],"result":[],"padding":"{}"}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    Mock::given(method("GET"))
        .and(path("/client/v4/zones"))
        .respond_with(ResponseTemplate::new(200).set_body_string(huge))
        .mount(&server)
        .await;
    match provider(&server).present(&record()).await {
        Err(DnsError::Transport(e)) => {
            assert!(e.to_string().contains("larger than"), "{e}");
        }
        other => panic!("expected the body cap to fail the call, got {other:?}"),
    }
}
