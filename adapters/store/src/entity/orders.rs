//! The `orders` table: what was asked for, the durable progress, and the worker lease.

use sea_orm::entity::prelude::*;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub account_id: i64,
    /// JSON array of the names, in order.
    #[sea_orm(column_type = "Text")]
    pub identifiers: String,
    /// SHA-256 (hex) of `identifiers`, indexed for the "already exists" lookup (the JSON
    /// itself can exceed what a PostgreSQL B-tree entry holds).
    pub identifiers_digest: String,
    pub challenge: String,
    pub provider: Option<String>,
    pub email: Option<String>,
    /// JSON of [`crate::dto::SubjectDto`].
    #[sea_orm(column_type = "Text")]
    pub subject: String,
    pub key_spec: String,
    /// The CSR the user uploaded, PEM.
    #[sea_orm(column_type = "Text", nullable)]
    pub upload_csr: Option<String>,
    /// The private key the user uploaded, sealed.
    pub upload_key: Option<Vec<u8>>,
    pub status: String,
    pub step: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub acme_url: Option<String>,
    /// JSON array of [`crate::dto::PublishedDto`].
    #[sea_orm(column_type = "Text")]
    pub published: String,
    /// The key of the current attempt, sealed.
    pub cert_key: Option<Vec<u8>>,
    #[sea_orm(column_type = "Text", nullable)]
    pub csr: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub detail: Option<String>,
    pub attempt: i32,
    pub resolved_cert_id: Option<i64>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The worker holding the lease, if any.
    pub lease_owner: Option<String>,
    /// Lease expiry in Unix microseconds. An integer so that SQLite compares it
    /// correctly (its timestamps are text).
    pub lease_until_us: Option<i64>,
    /// Incremented by every write; writes are conditional on it.
    pub version: i64,
    /// When the order is due next, Unix microseconds; `NULL`: nothing to do. Indexed.
    pub due_at_us: Option<i64>,
    pub auto_renew: bool,
    /// JSON of [`crate::dto::ProgressDto`].
    #[sea_orm(column_type = "Text")]
    pub progress: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
