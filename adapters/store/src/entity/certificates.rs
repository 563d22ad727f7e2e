//! The `certificates` table: issued chains and their keys (sealed).

use sea_orm::entity::prelude::*;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "certificates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub order_id: i64,
    pub user_id: i64,
    pub account_id: i64,
    pub status: String,
    #[sea_orm(column_type = "Text")]
    pub leaf_pem: String,
    #[sea_orm(column_type = "Text")]
    pub chain_pem: String,
    pub fingerprint: String,
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// JSON array of the SAN DNS names.
    #[sea_orm(column_type = "Text")]
    pub names: String,
    /// The private key, sealed.
    pub private_key: Option<Vec<u8>>,
    #[sea_orm(column_type = "Text")]
    pub csr: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    /// The issuing CA's subject, RFC 4514 text.
    #[sea_orm(column_type = "Text")]
    pub issuer: String,
    /// The RFC 5280 reason name of a revocation.
    #[sea_orm(column_type = "Text", nullable)]
    pub revocation_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
