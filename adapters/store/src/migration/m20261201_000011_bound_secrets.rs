//! Binds every sealed secret to its row: rewrites values sealed for their column only
//! (format 1) in the current format, whose associated data names table, column and row
//! id, so that a ciphertext copied to another row no longer decrypts.
//!
//! The schema does not change; the rows do. Re-sealing needs the master keys, which the
//! store hands to this migration for the duration of [`crate::Store::migrate`] (a
//! migrator run without them fails and changes nothing). Format-1 values stay readable,
//! so an interrupted run leaves a working database and the next run picks up where it
//! stopped.

use crate::cipher::KeyCipher;
use crate::reseal::{reseal, Reseal};
use sea_orm_migration::prelude::*;
use std::sync::Arc;

tokio::task_local! {
    /// The master keys, while [`crate::Store::migrate`] runs the migrations.
    pub(crate) static MASTER_KEYS: Arc<KeyCipher>;
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let cipher = MASTER_KEYS.try_with(Arc::clone).map_err(|_| {
            DbErr::Migration(
                "binding secrets to their rows needs the master keys: migrate through \
                 Store::migrate (acmeport migrate)"
                    .to_owned(),
            )
        })?;
        let report = reseal(manager.get_connection(), &cipher, Reseal::ColumnBoundOnly).await?;
        tracing::info!(
            resealed = report.resealed,
            unreadable = report.unreadable.len(),
            "bound the stored secrets to their rows"
        );
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // Row-bound values stay readable by this version; nothing to undo.
        Ok(())
    }
}
