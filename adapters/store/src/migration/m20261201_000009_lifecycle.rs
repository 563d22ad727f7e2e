//! The certificate lifecycle: a certificate's issuer and revocation reason, and
//! `lifecycle_events`, the durable outbox of webhook deliveries.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, integer, string, string_null, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Certificates {
    Table,
    Status,
    NotAfter,
    Issuer,
    RevocationReason,
}

#[derive(DeriveIden)]
enum LifecycleEvents {
    Table,
    Id,
    UserId,
    OrderId,
    CertificateId,
    Kind,
    EventKey,
    Payload,
    CreatedAt,
    State,
    Attempts,
    NextAttemptUs,
    LastError,
    DeliveredTo,
    FinishedAt,
    LeaseOwner,
    LeaseUntilUs,
}

fn index(name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(col);
    }
    stmt.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Certificates::Table)
                    .add_column(text(Certificates::Issuer).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Certificates::Table)
                    .add_column(text_null(Certificates::RevocationReason))
                    .to_owned(),
            )
            .await?;
        // The expiry scan reads valid certificates by not_after: a range scan.
        manager
            .create_index(index(
                "ix_certificates_status_not_after",
                Certificates::Table,
                vec![
                    Certificates::Status.into_iden(),
                    Certificates::NotAfter.into_iden(),
                ],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LifecycleEvents::Table)
                    .col(big_pk_auto(LifecycleEvents::Id))
                    .col(big_integer(LifecycleEvents::UserId))
                    .col(big_integer_null(LifecycleEvents::OrderId))
                    .col(big_integer_null(LifecycleEvents::CertificateId))
                    .col(string(LifecycleEvents::Kind))
                    .col(string(LifecycleEvents::EventKey))
                    .col(text(LifecycleEvents::Payload))
                    .col(timestamp_with_time_zone(LifecycleEvents::CreatedAt))
                    .col(string(LifecycleEvents::State))
                    .col(integer(LifecycleEvents::Attempts))
                    .col(big_integer_null(LifecycleEvents::NextAttemptUs))
                    .col(text_null(LifecycleEvents::LastError))
                    .col(text(LifecycleEvents::DeliveredTo))
                    .col(timestamp_with_time_zone_null(LifecycleEvents::FinishedAt))
                    .col(string_null(LifecycleEvents::LeaseOwner))
                    .col(big_integer_null(LifecycleEvents::LeaseUntilUs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "ux_lifecycle_events_key",
                    LifecycleEvents::Table,
                    vec![LifecycleEvents::EventKey.into_iden()],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        // The delivery loop claims pending events by due time.
        manager
            .create_index(index(
                "ix_lifecycle_events_due",
                LifecycleEvents::Table,
                vec![
                    LifecycleEvents::State.into_iden(),
                    LifecycleEvents::NextAttemptUs.into_iden(),
                ],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_lifecycle_events_user_id",
                LifecycleEvents::Table,
                vec![
                    LifecycleEvents::UserId.into_iden(),
                    LifecycleEvents::Id.into_iden(),
                ],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LifecycleEvents::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_certificates_status_not_after")
                    .table(Certificates::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Certificates::Issuer, Certificates::RevocationReason] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Certificates::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
