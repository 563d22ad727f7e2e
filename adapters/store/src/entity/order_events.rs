//! The `order_events` table: one row per fenced step write, for diagnosis and tests.

use sea_orm::entity::prelude::*;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub order_id: i64,
    pub attempt: i32,
    pub step: String,
    pub status: String,
    pub worker: String,
    pub at: OffsetDateTime,
    /// The order's due time after this write (Unix microseconds): later than `at` when
    /// the worker let the order wait and gave it up.
    pub due_at_us: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
