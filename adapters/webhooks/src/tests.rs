//! Signing against the Standard Webhooks test vector, and delivery to a local receiver
//! that checks every request.

use super::*;
use acmeport_domain::{
    CertificateId, Delivery, DomainEvent, EventId, OrderId, RevocationReason, UserId,
};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use time::macros::datetime;
use warp::http::StatusCode;
use warp::Filter;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[test]
fn signs_like_the_standard_webhooks_reference() {
    let secret = WebhookSecret::parse(SECRET).expect("valid secret");
    let body = br#"{"test": 2432232314}"#;
    let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
    assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    assert!(secret.verify(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        body,
        &signature
    ));
    assert!(secret.verify(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        body,
        &format!("v1,bm90IGl0 {signature}")
    ));
    assert!(!secret.verify("msg_other", 1_614_265_330, body, &signature));
    assert!(!secret.verify(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_331,
        body,
        &signature
    ));
    assert!(!secret.verify(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        b"{}",
        &signature
    ));
}

#[test]
fn secrets_must_be_whsec_base64_and_never_print() {
    for bad in [
        "",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_not base64!",
        "whsec_c2hvcnQ=",
    ] {
        assert!(WebhookSecret::parse(bad).is_err(), "{bad:?} accepted");
    }
    let secret = WebhookSecret::parse(SECRET).unwrap();
    assert!(!format!("{secret:?}").contains("MfKQ"));
}

fn stored(id: i64) -> StoredEvent {
    let event = DomainEvent::certificate_revoked(
        UserId::new(3),
        OrderId::new(4),
        CertificateId::new(5),
        RevocationReason::KeyCompromise,
        vec!["a.example.com".into()],
    );
    StoredEvent {
        id: EventId::new(id),
        event,
        created_at: datetime!(2026-12-01 10:00 UTC),
        delivery: Delivery::new(datetime!(2026-12-01 10:00 UTC)),
    }
}

#[derive(Default)]
struct Received {
    requests: Vec<(String, i64, String, Vec<u8>)>,
    /// Statuses to answer, in order; 200 once they run out.
    answers: Vec<u16>,
}

/// A receiver on a free port that records every request's signature headers and body.
async fn receiver(state: Arc<Mutex<Received>>) -> SocketAddr {
    let route = warp::path!("hook")
        .and(warp::post())
        .and(warp::header::<String>("webhook-id"))
        .and(warp::header::<i64>("webhook-timestamp"))
        .and(warp::header::<String>("webhook-signature"))
        .and(warp::body::bytes())
        .map(
            move |id: String, ts: i64, sig: String, body: bytes::Bytes| {
                let mut s = state.lock().unwrap();
                s.requests.push((id, ts, sig, body.to_vec()));
                let status = if s.answers.is_empty() {
                    200
                } else {
                    s.answers.remove(0)
                };
                let reply = warp::reply::with_status("", StatusCode::from_u16(status).unwrap());
                warp::reply::with_header(reply, "retry-after", "42")
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    addr
}

#[tokio::test]
async fn delivers_signed_json_and_reports_refusals_with_retry_after() {
    let state = Arc::new(Mutex::new(Received {
        answers: vec![503],
        ..Received::default()
    }));
    let addr = receiver(state.clone()).await;
    let url = format!("http://{addr}/hook");
    let sender = HttpWebhookSender::new(
        vec![Endpoint {
            url: url::Url::parse(&url).unwrap(),
            secret: WebhookSecret::parse(SECRET).unwrap(),
            events: Some(vec![EventKind::CertificateRevoked]),
        }],
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(
        sender.endpoints(),
        vec![WebhookEndpoint {
            url: url.clone(),
            events: Some(vec![EventKind::CertificateRevoked])
        }]
    );
    let event = stored(17);
    match sender.send(&url, &event).await {
        Err(WebhookError::Status {
            status: 503,
            retry_after: Some(r),
        }) => assert_eq!(r, Duration::from_secs(42)),
        other => panic!("expected a 503 with Retry-After, got {other:?}"),
    }
    sender.send(&url, &event).await.expect("accepted");

    let secret = WebhookSecret::parse(SECRET).unwrap();
    let requests = std::mem::take(&mut state.lock().unwrap().requests);
    assert_eq!(requests.len(), 2);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    for (id, ts, sig, body) in &requests {
        assert_eq!(id, "evt_17", "the same id on every attempt");
        assert!((now - ts).abs() < 60, "the attempt's time");
        assert!(secret.verify(id, *ts, body, sig), "signature verifies");
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["type"], "certificate.revoked");
        assert_eq!(json["timestamp"], "2026-12-01T10:00:00Z");
        assert_eq!(json["data"]["certificate_id"], 5);
        assert_eq!(json["data"]["reason"], "keyCompromise");
        assert_eq!(
            json["data"]["domains"],
            serde_json::json!(["a.example.com"])
        );
    }

    let unreachable = HttpWebhookSender::new(
        vec![Endpoint {
            url: url::Url::parse("http://127.0.0.1:1/hook").unwrap(),
            secret: WebhookSecret::parse(SECRET).unwrap(),
            events: None,
        }],
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(matches!(
        unreachable.send("http://127.0.0.1:1/hook", &event).await,
        Err(WebhookError::Transport(_))
    ));
}
