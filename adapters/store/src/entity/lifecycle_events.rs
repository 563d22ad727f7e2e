//! The `lifecycle_events` table: events and the state of their webhook delivery (the
//! outbox), with the lease of the instance delivering them.

use sea_orm::entity::prelude::*;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lifecycle_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub order_id: Option<i64>,
    pub certificate_id: Option<i64>,
    /// `order.valid`, ...
    pub kind: String,
    /// Unique: one row per occurrence.
    pub event_key: String,
    /// JSON of [`crate::lifecycle::PayloadDto`].
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub created_at: OffsetDateTime,
    /// `pending`, `delivered`, `failed` or `skipped`.
    pub state: String,
    pub attempts: i32,
    /// When the next attempt is due, Unix microseconds.
    pub next_attempt_us: Option<i64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// JSON array of the endpoint URLs that accepted the event.
    #[sea_orm(column_type = "Text")]
    pub delivered_to: String,
    pub finished_at: Option<OffsetDateTime>,
    pub lease_owner: Option<String>,
    pub lease_until_us: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
