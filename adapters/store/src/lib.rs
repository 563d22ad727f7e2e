//! Storage for acmeport: every repository port of [`acmeport_domain::ports`] on SQLite or
//! PostgreSQL, through sea-orm.
//!
//! One [`Store`] implements [`UserRepo`], [`AccountRepo`], [`OrderRepo`],
//! [`CertificateRepo`], [`EventRepo`] and [`ChallengeTokenStore`]. The same code and the same migrations
//! ([`Migrator`]) serve both databases:
//!
//! - **SQLite** (`sqlite://<path>?mode=rwc`) is the embedded default. The file is opened in
//!   WAL mode with a busy timeout. **One acmeport instance owns the file**: leases still
//!   work between the worker tasks of that instance, but SQLite has no row locks to share
//!   work between processes, and the file must not sit on a network filesystem. Run
//!   several instances on PostgreSQL instead.
//! - **PostgreSQL** (`postgres://...`) serves several instances at once. Workers claim
//!   orders with `SELECT ... FOR UPDATE SKIP LOCKED` and hold a lease they renew; every
//!   step write is fenced on that lease, so an instance whose lease was taken over cannot
//!   overwrite the new owner's progress.
//!
//! Leases are compared against the `now` each caller passes to [`OrderRepo::claim`] and
//! against the store's clock for fenced saves and renewals, so the clocks of instances
//! sharing a database must agree (NTP) to well within the lease length. A lease of 30 s
//! renewed every 10 s tolerates two missed renewals and several seconds of skew; an
//! order whose instance died is taken over within one lease length.
//!
//! Private keys and ACME credentials are sealed with AES-256-GCM by [`KeyCipher`] before
//! they reach the database, bound to their table, column and row; no column holds PEM
//! text of a private key. [`Store::reseal_all`] rewrites them under the newest master key.
//!
//! Architecture invariant: sea-orm entities never leave this crate, and no database error
//! text reaches the domain as a business error: constraint failures are translated to
//! [`RepoError`] variants here.

#![warn(missing_docs)]

mod accounts;
mod certificates;
mod cipher;
mod dto;
mod entity;
mod error;
mod lifecycle;
mod migration;
mod orders;
mod reseal;
mod security;
mod tokens;
mod usage;
mod users;

pub use cipher::{CipherError, KeyCipher, MasterKey};
pub use error::StoreError;
pub use migration::Migrator;
pub use orders::OrderEvent;
pub use reseal::ResealReport;

use acmeport_domain::ports::{
    AccountRepo, CertificateRepo, ChallengeTokenStore, Clock, EventRepo, OrderRepo, RepoError,
    UserRepo,
};
use acmeport_domain::{Listing, Page};
use async_trait::async_trait;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// How long a SQLite connection waits for the write lock before giving up. Writes are
/// short; this only has to cover bursts of concurrent workers.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// An arbitrary constant naming the PostgreSQL advisory lock that serializes migrations
/// when several instances start at once.
const MIGRATION_LOCK_ID: i64 = 0x6163_6d65_706f_7274; // "acmeport"

/// The database behind all repository ports. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    cipher: Arc<KeyCipher>,
    clock: Arc<dyn Clock>,
    /// Fair claims: the turn at which each user's order was last claimed here.
    turns: Arc<std::sync::Mutex<Turns>>,
}

/// The claim turns of [`Store`], for serving users round-robin.
#[derive(Debug, Default)]
struct Turns {
    counter: u64,
    last: std::collections::HashMap<i64, u64>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.db.get_database_backend())
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to `url`: `sqlite://<path>?mode=rwc` (the file is created when missing)
    /// or `postgres://user@host:port/db`. Does not migrate; call [`Store::migrate`].
    ///
    /// # Errors
    ///
    /// [`StoreError::UnsupportedUrl`] for other schemes, [`StoreError::Connect`] when the
    /// database cannot be opened or reached.
    pub async fn connect(url: &str, cipher: KeyCipher) -> Result<Self, StoreError> {
        // A backend left out of this build (feature `sqlite` or `postgres`) is refused
        // here, like an unknown scheme.
        let is_sqlite = cfg!(feature = "sqlite") && url.starts_with("sqlite:");
        let is_postgres = cfg!(feature = "postgres")
            && (url.starts_with("postgres://") || url.starts_with("postgresql://"));
        if !is_sqlite && !is_postgres {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::UnsupportedUrl(scheme.to_owned()));
        }
        let mut options = ConnectOptions::new(url.to_owned());
        // sqlx would log every statement at info level, with bound values.
        options.sqlx_logging(false);
        #[cfg(feature = "sqlite")]
        options.map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            // WAL lets readers (the API, the HTTP-01 responder) run while a worker
            // writes; FULL sync keeps every committed step across a power loss.
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
        });
        let db = Database::connect(options)
            .await
            .map_err(StoreError::Connect)?;
        tracing::info!(backend = ?db.get_database_backend(), "database connected");
        Ok(Self {
            db,
            cipher: Arc::new(cipher),
            clock: Arc::new(SystemClock),
            turns: Arc::default(),
        })
    }

    /// The URL for a SQLite database file at `path`, created on first use. The directory
    /// must exist.
    #[must_use]
    pub fn sqlite_url(path: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    /// Uses `clock` for lease checks of [`OrderRepo::save`] and [`OrderRepo::renew`]
    /// (which take no `now` of their own) and for token timestamps.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Applies pending migrations. On PostgreSQL they run in one transaction under an
    /// advisory lock, so instances starting together migrate once. One of them re-seals
    /// secrets written before they were bound to their rows, with this store's keys.
    ///
    /// # Errors
    ///
    /// [`StoreError::Migrate`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // The re-sealing migration needs the master keys.
        migration::m20261201_000011_bound_secrets::MASTER_KEYS
            .scope(Arc::clone(&self.cipher), self.migrate_with_keys())
            .await
    }

    async fn migrate_with_keys(&self) -> Result<(), StoreError> {
        match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let txn = self.db.begin().await.map_err(StoreError::Migrate)?;
                txn.execute_unprepared(&format!(
                    "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"
                ))
                .await
                .map_err(StoreError::Migrate)?;
                Migrator::up(&txn, None)
                    .await
                    .map_err(StoreError::Migrate)?;
                txn.commit().await.map_err(StoreError::Migrate)?;
            }
            _ => Migrator::up(&self.db, None)
                .await
                .map_err(StoreError::Migrate)?,
        }
        Ok(())
    }

    /// The underlying connection, for tooling and tests that inspect raw rows.
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Closes the pool, waiting for connections to finish.
    ///
    /// # Errors
    ///
    /// [`StoreError::Connect`] when closing fails.
    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await.map_err(StoreError::Connect)
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

/// The wall clock, used unless [`Store::with_clock`] gives another.
struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    fn random(&self) -> f64 {
        rand::random()
    }
}

/// Normalizes a timestamp to what both databases store: UTC, microseconds. Rows read back
/// then equal what was written.
pub(crate) fn db_time(t: OffsetDateTime) -> OffsetDateTime {
    let utc = t.to_offset(time::UtcOffset::UTC);
    let micros = utc.nanosecond() / 1_000 * 1_000;
    utc.replace_nanosecond(micros).unwrap_or(utc)
}

/// A timestamp as Unix microseconds, for lease columns compared in SQL.
pub(crate) fn unix_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// The inverse of [`unix_micros`].
pub(crate) fn from_micros(us: i64) -> Result<OffsetDateTime, time::error::ComponentRange> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
}

/// One page of `query` by `id`: the rows after `page.after()`, at most `page.limit()` of
/// them, each mapped to the domain, and whether more rows follow.
pub(crate) async fn page_of<E, T>(
    db: &DatabaseConnection,
    query: sea_orm::Select<E>,
    id: E::Column,
    page: Page,
    to_domain: impl Fn(E::Model) -> Result<T, RepoError>,
) -> Result<Listing<T>, RepoError>
where
    E: sea_orm::EntityTrait,
    E::Model: Send + Sync,
{
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    let query = match page.after() {
        Some(after) => query.filter(id.gt(after)),
        None => query,
    };
    let rows = query
        .order_by_asc(id)
        .limit(u64::from(page.limit()) + 1)
        .all(db)
        .await
        .map_err(error::backend)?;
    let limit = page.limit() as usize;
    let has_more = rows.len() > limit;
    let items = rows
        .into_iter()
        .take(limit)
        .map(to_domain)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Listing { items, has_more })
}

// Compile-time check that one Store serves every port the service needs.
const _: fn() = || {
    fn ports<
        T: UserRepo + AccountRepo + OrderRepo + CertificateRepo + EventRepo + ChallengeTokenStore,
    >() {
    }
    ports::<Store>();
};
