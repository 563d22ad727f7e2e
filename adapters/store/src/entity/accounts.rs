//! The `accounts` table: ACME accounts, credentials encrypted.

use sea_orm::entity::prelude::*;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub email: String,
    pub directory: String,
    pub uri: String,
    pub status: String,
    /// JSON of [`crate::dto::SubjectDto`].
    #[sea_orm(column_type = "Text")]
    pub subject: String,
    /// Sealed by [`crate::KeyCipher`].
    pub credentials: Vec<u8>,
    pub created_at: OffsetDateTime,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
