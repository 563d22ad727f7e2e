//! A fresh PostgreSQL database per test, dropped afterwards.
//!
//! PostgreSQL must answer at `ACMEPORT_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust authentication); `scripts/test.sh`
//! starts it. When it cannot be reached the test fails with a message saying so: it never
//! passes silently.

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The maintenance database the test databases are created from.
pub fn admin_url() -> String {
    std::env::var("ACMEPORT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A uniquely named database, dropped (with any connections left) when this is dropped.
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates `acmeport_test_<pid>_<n>_<nanos>`.
    ///
    /// # Panics
    ///
    /// When PostgreSQL cannot be reached or refuses to create the database.
    pub async fn create() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin_url = admin_url();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "acmeport_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin = connect_admin(&admin_url).await;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL refused CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        let url = match admin_url.rsplit_once('/') {
            Some((server, _db)) => format!("{server}/{name}"),
            None => panic!("ACMEPORT_TEST_DATABASE_URL {admin_url} names no database"),
        };
        Self {
            name,
            url,
            admin_url,
        }
    }

    /// The URL of the new database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

async fn connect_admin(url: &str) -> DatabaseConnection {
    Database::connect(url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is unreachable at {url} ({e}). These tests need a real PostgreSQL \
             with trust authentication on 127.0.0.1:5432 (or set ACMEPORT_TEST_DATABASE_URL); \
             scripts/test.sh starts one."
        )
    })
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin_url = self.admin_url.clone();
        // Drop runs inside the test's runtime, which cannot block on async work: use a
        // thread with its own small runtime. FORCE ends connections a failed test left.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin = Database::connect(admin_url.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())?;
                admin.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "warning: could not drop test database {}: {dropped:?}",
                self.name
            );
        }
    }
}
