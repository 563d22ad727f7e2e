//! Schema migrations, shared by SQLite and PostgreSQL.
//!
//! Applied at start-up by [`crate::Store::migrate`] and by `acmeport migrate`. Each
//! migration is written once with sea-query so both backends get the same schema.

use sea_orm_migration::prelude::*;

mod m20260101_000001_initial;
mod m20261201_000002_workflow;
mod m20261201_000009_lifecycle;
mod m20261201_000010_security;
pub(crate) mod m20261201_000011_bound_secrets;

/// Every migration of the store, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260101_000001_initial::Migration),
            Box::new(m20261201_000002_workflow::Migration),
            Box::new(m20261201_000009_lifecycle::Migration),
            Box::new(m20261201_000010_security::Migration),
            Box::new(m20261201_000011_bound_secrets::Migration),
        ]
    }
}
