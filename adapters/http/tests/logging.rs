//! The request log, in its own test binary: tracing caches per-callsite interest
//! process-wide, so a thread-local subscriber can miss events while other tests run in
//! parallel threads.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;
use std::sync::{Arc, Mutex};

/// Collects formatted log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_request_logs_one_line_with_user_and_status_but_no_credentials() {
    let app = app().await;
    let token = app.get("/api/token", ALICE).await.body["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let alice_id = app.get("/api/users/2", ALICE).await.expect(200).id();

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    app.get("/api/resource", ALICE).await.expect(200);
    app.get("/api/resource", (&token, "ignored-password"))
        .await
        .expect(200);
    app.get("/api/resource", (ALICE.0, "wrong-secret-pw"))
        .await
        .expect(401);
    drop(guard);

    let logs =
        String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("UTF-8 logs");
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("request handled"))
        .collect();
    assert_eq!(lines.len(), 3, "one line per request expected:\n{logs}");
    for line in &lines[..2] {
        for part in [
            "method=GET",
            "path=/api/resource",
            "status=200",
            "latency_ms=",
            &format!("user.id={alice_id}"),
        ] {
            assert!(line.contains(part), "`{part}` missing from {line}");
        }
    }
    assert!(lines[2].contains("status=401"), "{}", lines[2]);
    for secret in [
        ALICE.1,
        "wrong-secret-pw",
        "ignored-password",
        token.as_str(),
        &STANDARD.encode(format!("{}:{}", ALICE.0, ALICE.1)),
    ] {
        assert!(
            !logs.contains(secret),
            "a credential reached the logs:\n{logs}"
        );
    }
    assert!(
        logs.contains("login failed"),
        "failed logins are logged (without the password):\n{logs}"
    );
}
