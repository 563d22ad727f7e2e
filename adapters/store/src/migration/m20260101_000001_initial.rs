//! The initial schema: users, accounts, orders with their history and leases,
//! certificates and HTTP-01 tokens.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, blob, blob_null, boolean, integer, string,
    string_null, text, text_null, timestamp_with_time_zone, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    PasswordHash,
    IsAdmin,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    UserId,
    Email,
    Directory,
    Uri,
    Status,
    Subject,
    Credentials,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    UserId,
    AccountId,
    Identifiers,
    IdentifiersDigest,
    Challenge,
    Provider,
    Email,
    Subject,
    KeySpec,
    UploadCsr,
    UploadKey,
    Status,
    Step,
    AcmeUrl,
    Published,
    CertKey,
    Csr,
    Error,
    Detail,
    Attempt,
    ResolvedCertId,
    CreatedAt,
    UpdatedAt,
    LeaseOwner,
    LeaseUntilUs,
}

#[derive(DeriveIden)]
enum OrderEvents {
    Table,
    Id,
    OrderId,
    Attempt,
    Step,
    Status,
    Worker,
    At,
}

#[derive(DeriveIden)]
enum Certificates {
    Table,
    Id,
    OrderId,
    UserId,
    AccountId,
    Status,
    LeafPem,
    ChainPem,
    Fingerprint,
    Serial,
    NotBefore,
    NotAfter,
    Names,
    PrivateKey,
    Csr,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum ChallengeTokens {
    Table,
    Token,
    KeyAuthorization,
    CreatedAt,
}

fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
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
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(big_pk_auto(Users::Id))
                    .col(string(Users::Username))
                    .col(text(Users::PasswordHash))
                    .col(boolean(Users::IsAdmin))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "ux_users_username",
                    Users::Table,
                    vec![Users::Username.into_iden()],
                )
                .unique()
                .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(big_pk_auto(Accounts::Id))
                    .col(big_integer(Accounts::UserId))
                    .col(string(Accounts::Email))
                    .col(string(Accounts::Directory))
                    .col(text(Accounts::Uri))
                    .col(string(Accounts::Status))
                    .col(text(Accounts::Subject))
                    .col(blob(Accounts::Credentials))
                    .col(timestamp_with_time_zone(Accounts::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_accounts_user",
                        (Accounts::Table, Accounts::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "ux_accounts_user_email_directory",
                    Accounts::Table,
                    vec![
                        Accounts::UserId.into_iden(),
                        Accounts::Email.into_iden(),
                        Accounts::Directory.into_iden(),
                    ],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_accounts_user_id",
                Accounts::Table,
                vec![Accounts::UserId.into_iden(), Accounts::Id.into_iden()],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .col(big_pk_auto(Orders::Id))
                    .col(big_integer(Orders::UserId))
                    .col(big_integer(Orders::AccountId))
                    .col(text(Orders::Identifiers))
                    .col(string(Orders::IdentifiersDigest))
                    .col(string(Orders::Challenge))
                    .col(string_null(Orders::Provider))
                    .col(string_null(Orders::Email))
                    .col(text(Orders::Subject))
                    .col(string(Orders::KeySpec))
                    .col(text_null(Orders::UploadCsr))
                    .col(blob_null(Orders::UploadKey))
                    .col(string(Orders::Status))
                    .col(string(Orders::Step))
                    .col(text_null(Orders::AcmeUrl))
                    .col(text(Orders::Published))
                    .col(blob_null(Orders::CertKey))
                    .col(text_null(Orders::Csr))
                    .col(text_null(Orders::Error))
                    .col(text_null(Orders::Detail))
                    .col(integer(Orders::Attempt))
                    // No foreign key: a deleted certificate must not block or cascade
                    // into the order that issued it.
                    .col(big_integer_null(Orders::ResolvedCertId))
                    .col(timestamp_with_time_zone(Orders::CreatedAt))
                    .col(timestamp_with_time_zone(Orders::UpdatedAt))
                    .col(string_null(Orders::LeaseOwner))
                    .col(big_integer_null(Orders::LeaseUntilUs))
                    .foreign_key(&mut fk(
                        "fk_orders_user",
                        (Orders::Table, Orders::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_orders_account",
                        (Orders::Table, Orders::AccountId),
                        (Accounts::Table, Accounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_orders_user_id",
                Orders::Table,
                vec![Orders::UserId.into_iden(), Orders::Id.into_iden()],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_orders_existing",
                Orders::Table,
                vec![
                    Orders::UserId.into_iden(),
                    Orders::AccountId.into_iden(),
                    Orders::IdentifiersDigest.into_iden(),
                ],
            ))
            .await?;
        // The worker loop's claim query: pending orders, oldest first.
        manager
            .create_index(index(
                "ix_orders_status_id",
                Orders::Table,
                vec![Orders::Status.into_iden(), Orders::Id.into_iden()],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OrderEvents::Table)
                    .col(big_pk_auto(OrderEvents::Id))
                    .col(big_integer(OrderEvents::OrderId))
                    .col(integer(OrderEvents::Attempt))
                    .col(string(OrderEvents::Step))
                    .col(string(OrderEvents::Status))
                    .col(string(OrderEvents::Worker))
                    .col(timestamp_with_time_zone(OrderEvents::At))
                    .foreign_key(&mut fk(
                        "fk_order_events_order",
                        (OrderEvents::Table, OrderEvents::OrderId),
                        (Orders::Table, Orders::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_order_events_order_id",
                OrderEvents::Table,
                vec![
                    OrderEvents::OrderId.into_iden(),
                    OrderEvents::Id.into_iden(),
                ],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Certificates::Table)
                    .col(big_pk_auto(Certificates::Id))
                    .col(big_integer(Certificates::OrderId))
                    .col(big_integer(Certificates::UserId))
                    .col(big_integer(Certificates::AccountId))
                    .col(string(Certificates::Status))
                    .col(text(Certificates::LeafPem))
                    .col(text(Certificates::ChainPem))
                    .col(string(Certificates::Fingerprint))
                    .col(string(Certificates::Serial))
                    .col(timestamp_with_time_zone(Certificates::NotBefore))
                    .col(timestamp_with_time_zone(Certificates::NotAfter))
                    .col(text(Certificates::Names))
                    .col(blob_null(Certificates::PrivateKey))
                    .col(text(Certificates::Csr))
                    .col(timestamp_with_time_zone(Certificates::CreatedAt))
                    .col(timestamp_with_time_zone_null(Certificates::RevokedAt))
                    .foreign_key(&mut fk(
                        "fk_certificates_order",
                        (Certificates::Table, Certificates::OrderId),
                        (Orders::Table, Orders::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_certificates_user",
                        (Certificates::Table, Certificates::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_certificates_account",
                        (Certificates::Table, Certificates::AccountId),
                        (Accounts::Table, Accounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_certificates_user_id",
                Certificates::Table,
                vec![
                    Certificates::UserId.into_iden(),
                    Certificates::Id.into_iden(),
                ],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_certificates_account_status",
                Certificates::Table,
                vec![
                    Certificates::AccountId.into_iden(),
                    Certificates::Status.into_iden(),
                ],
            ))
            .await?;
        manager
            .create_index(
                index(
                    "ux_certificates_order_fingerprint",
                    Certificates::Table,
                    vec![
                        Certificates::OrderId.into_iden(),
                        Certificates::Fingerprint.into_iden(),
                    ],
                )
                .unique()
                .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ChallengeTokens::Table)
                    .col(string(ChallengeTokens::Token).primary_key())
                    .col(text(ChallengeTokens::KeyAuthorization))
                    .col(timestamp_with_time_zone(ChallengeTokens::CreatedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ChallengeTokens::Table.into_iden(),
            Certificates::Table.into_iden(),
            OrderEvents::Table.into_iden(),
            Orders::Table.into_iden(),
            Accounts::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
