//! The engine against its real storage (SQLite files): the embedded owner, the HTTP-01
//! responder as a function and as a warp filter, the background's graceful stop, and
//! the refusals of the builder. Issuance against a CA is in `tests/e2e/embedding.rs`.

use acmeport::{BuildError, Builder, Engine, EngineError, OWNER_USERNAME};
use acmeport_domain::{Password, Username};
use std::time::Duration;
use warp::Filter as _;

async fn engine_at(path: &std::path::Path) -> Engine {
    Builder::new()
        .sqlite(path)
        .workers(2)
        .build()
        .await
        .expect("the engine builds on a SQLite file")
}

#[tokio::test]
async fn the_owner_is_created_once_disabled_no_admin_and_nobody_logs_in_as_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("state/acme.db");
    let engine = engine_at(&db).await;
    assert!(
        engine.service().has_no_users().await.expect("count users"),
        "building creates no user: the server's first-start check still sees none"
    );
    let owner = engine.owner().await.expect("the owner is created");
    assert_eq!(owner.username.as_str(), OWNER_USERNAME);
    assert!(owner.disabled, "the owner is disabled");
    assert!(!owner.is_admin, "the owner is no admin");
    assert_eq!(engine.owner().await.expect("again").id, owner.id);
    for password in ["", "!", "acmeport decoy password"] {
        assert!(
            engine
                .service()
                .authenticate(OWNER_USERNAME, &Password::new(password))
                .await
                .is_err(),
            "no password logs in as the owner ({password:?})"
        );
    }
    drop(engine);

    // A second engine on the same database finds the same owner; the key file was kept.
    assert!(
        db.with_extension("key").exists(),
        "the master key lives next to the database"
    );
    let again = engine_at(&db).await;
    assert_eq!(again.owner().await.expect("found").id, owner.id);
}

#[tokio::test]
async fn a_user_of_the_owners_name_who_can_log_in_is_not_taken_as_owner() {
    let engine = Builder::new()
        .temporary_storage()
        .build()
        .await
        .expect("builds");
    engine
        .service()
        .add_user(
            Username::parse(OWNER_USERNAME).expect("valid name"),
            &Password::new("a real password, long enough"),
            false,
        )
        .await
        .expect("a user of that name is created through the users layer");
    let err = engine.owner().await.expect_err("refused as owner");
    assert!(matches!(err, EngineError::OwnerTaken), "{err}");
    let err = engine
        .register_account("someone@example.com")
        .await
        .expect_err("the shortcuts refuse too");
    assert!(matches!(err, EngineError::OwnerTaken), "{err}");
}

#[tokio::test]
async fn the_http01_responder_answers_stored_tokens_and_404_otherwise() {
    let engine = Builder::new()
        .temporary_storage()
        .build()
        .await
        .expect("builds");
    engine
        .service()
        .ports()
        .tokens
        .put("tok_en-1", "tok_en-1.thumbprint")
        .await
        .expect("store a token");
    let responder = engine.http01();

    let found = responder
        .respond("/.well-known/acme-challenge/tok_en-1")
        .await;
    assert_eq!(found.status(), 200);
    assert_eq!(found.body(), "tok_en-1.thumbprint");
    assert_eq!(
        found.headers()["content-type"],
        "text/plain",
        "the key authorization is plain text"
    );
    for path in [
        "/.well-known/acme-challenge/unknown",
        "/.well-known/acme-challenge/tok.en",
        "/.well-known/acme-challenge/",
        "/tok_en-1",
        "/",
    ] {
        let response = responder.respond(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            response.body().is_empty(),
            "nothing else is revealed: {path}"
        );
    }

    // As a warp filter it takes its path and leaves every other request to the routes
    // combined with it.
    let routes = responder
        .warp_filter()
        .or(warp::path!("hello").map(|| "hello"));
    let answer = warp::test::request()
        .path("/.well-known/acme-challenge/tok_en-1")
        .reply(&routes)
        .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.body(), "tok_en-1.thumbprint");
    let hello = warp::test::request().path("/hello").reply(&routes).await;
    assert_eq!(hello.status(), 200, "the program's own route still answers");
    assert_eq!(hello.body(), "hello");
    let unknown = warp::test::request()
        .path("/.well-known/acme-challenge/unknown")
        .reply(&routes)
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn the_background_stops_within_its_grace() {
    let engine = Builder::new()
        .temporary_storage()
        .workers(3)
        .poll_interval(Duration::from_secs(3600))
        .build()
        .await
        .expect("builds");
    let background = engine.start();
    let handle = background.stop_handle();
    assert!(!handle.is_stopped());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    assert!(
        background.stop(Duration::from_secs(10)).await,
        "every task ends when asked, though idle workers sleep for an hour"
    );
    assert!(handle.is_stopped());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopping does not wait for the poll interval: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_database_url_without_a_master_key_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    let err = Builder::new()
        .database_url(url)
        .build()
        .await
        .expect_err("no master key");
    assert!(matches!(err, BuildError::Key(_)), "{err}");
    assert!(
        err.to_string().contains("key_cipher"),
        "it says how to give one: {err}"
    );
}

#[tokio::test]
async fn a_directory_that_is_not_https_is_refused() {
    let err = Builder::new()
        .directory("http://ca.example/directory")
        .expect_err("not https");
    assert!(err.to_string().contains("https"), "{err}");
}
