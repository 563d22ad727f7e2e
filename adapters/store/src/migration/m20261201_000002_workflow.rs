//! The order workflow's scheduling columns: a version for conditional writes, the time an
//! order is due next (indexed: finding due work costs what is due, not what is stored),
//! whether it renews on its own, and the bookkeeping of waits, retries and renewals.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_integer_null, boolean, text};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000002_workflow"
    }
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Status,
    Version,
    DueAtUs,
    AutoRenew,
    Progress,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            big_integer(Orders::Version).default(0).to_owned(),
            big_integer_null(Orders::DueAtUs),
            boolean(Orders::AutoRenew).default(true).to_owned(),
            text(Orders::Progress).default("{}").to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Orders::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // Orders pending before this migration are due at once, and valid ones get their
        // renewal planned at the first look.
        manager
            .exec_stmt(
                Query::update()
                    .table(Orders::Table)
                    .value(Orders::DueAtUs, 0i64)
                    .and_where(Expr::col(Orders::Status).is_in(["pending", "valid"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("orders_due_at")
                    .table(Orders::Table)
                    .col(Orders::DueAtUs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("orders_due_at")
                    .table(Orders::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Orders::Version,
            Orders::DueAtUs,
            Orders::AutoRenew,
            Orders::Progress,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Orders::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
