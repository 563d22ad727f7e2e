//! [`AccountRepo`] on the `accounts` table; credentials are sealed by the cipher.

use crate::dto::{subject_from_json, subject_json};
use crate::entity::accounts;
use crate::error::{backend, translate, Corrupt};
use crate::{db_time, page_of, Store};
use acmeport_domain::ports::{AccountRepo, RepoError};
use acmeport_domain::{
    AccountCredentials, AccountId, AccountStatus, AcmeAccount, DirectoryUrl, Email, Listing,
    NewAcmeAccount, Page, UserId,
};
use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait,
};

/// The column the credentials are sealed for (with the row id).
pub(crate) const CREDENTIALS: &str = "accounts.credentials";

fn status_from_name(name: &str) -> Result<AccountStatus, Corrupt> {
    match name {
        "valid" => Ok(AccountStatus::Valid),
        "deactivated" => Ok(AccountStatus::Deactivated),
        other => Err(Corrupt::new("accounts.status", other)),
    }
}

impl Store {
    fn account_to_domain(&self, m: accounts::Model) -> Result<AcmeAccount, RepoError> {
        let credentials = self.cipher.open_str(CREDENTIALS, m.id, &m.credentials)?;
        Ok(AcmeAccount {
            id: AccountId::new(m.id),
            user_id: UserId::new(m.user_id),
            email: Email::parse(&m.email).map_err(|e| Corrupt::new("accounts.email", e))?,
            directory: DirectoryUrl::parse(&m.directory)
                .map_err(|e| Corrupt::new("accounts.directory", e))?,
            uri: m.uri,
            status: status_from_name(&m.status)?,
            subject: subject_from_json(&m.subject)?,
            credentials: AccountCredentials::new(credentials.as_str()),
            created_at: m.created_at,
        })
    }
}

#[async_trait]
impl AccountRepo for Store {
    async fn insert(&self, account: NewAcmeAccount) -> Result<AcmeAccount, RepoError> {
        // The credentials are sealed for the row id, known once the row exists: insert
        // without them and fill them in within one transaction.
        let txn = self.db.begin().await.map_err(backend)?;
        let mut row = accounts::ActiveModel {
            user_id: Set(account.user_id.get()),
            email: Set(account.email.as_str().to_owned()),
            directory: Set(account.directory.as_str().to_owned()),
            uri: Set(account.uri),
            status: Set(AccountStatus::Valid.as_str().to_owned()),
            subject: Set(subject_json(&account.subject)),
            credentials: Set(Vec::new()),
            created_at: Set(db_time(account.created_at)),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(translate("account"))?;
        let sealed = self
            .cipher
            .seal_str(CREDENTIALS, row.id, account.credentials.expose())?;
        accounts::Entity::update_many()
            .col_expr(accounts::Column::Credentials, Expr::value(sealed.clone()))
            .filter(accounts::Column::Id.eq(row.id))
            .exec(&txn)
            .await
            .map_err(backend)?;
        txn.commit().await.map_err(backend)?;
        row.credentials = sealed;
        self.account_to_domain(row)
    }

    async fn get(&self, id: AccountId) -> Result<Option<AcmeAccount>, RepoError> {
        accounts::Entity::find_by_id(id.get())
            .one(&self.db)
            .await
            .map_err(backend)?
            .map(|m| self.account_to_domain(m))
            .transpose()
    }

    async fn find(
        &self,
        user: UserId,
        email: &Email,
        directory: &DirectoryUrl,
    ) -> Result<Option<AcmeAccount>, RepoError> {
        accounts::Entity::find()
            .filter(accounts::Column::UserId.eq(user.get()))
            .filter(accounts::Column::Email.eq(email.as_str()))
            .filter(accounts::Column::Directory.eq(directory.as_str()))
            .one(&self.db)
            .await
            .map_err(backend)?
            .map(|m| self.account_to_domain(m))
            .transpose()
    }

    async fn list(&self, user: UserId, page: Page) -> Result<Listing<AcmeAccount>, RepoError> {
        let query = accounts::Entity::find().filter(accounts::Column::UserId.eq(user.get()));
        page_of(&self.db, query, accounts::Column::Id, page, |m| {
            self.account_to_domain(m)
        })
        .await
    }

    async fn update(&self, account: &AcmeAccount) -> Result<(), RepoError> {
        let sealed =
            self.cipher
                .seal_str(CREDENTIALS, account.id.get(), account.credentials.expose())?;
        let changes = accounts::ActiveModel {
            email: Set(account.email.as_str().to_owned()),
            directory: Set(account.directory.as_str().to_owned()),
            uri: Set(account.uri.clone()),
            status: Set(account.status.as_str().to_owned()),
            subject: Set(subject_json(&account.subject)),
            credentials: Set(sealed),
            ..Default::default()
        };
        let result = accounts::Entity::update_many()
            .set(changes)
            .filter(accounts::Column::Id.eq(account.id.get()))
            .exec(&self.db)
            .await
            .map_err(translate("account"))?;
        if result.rows_affected == 0 {
            return Err(RepoError::NotFound("account"));
        }
        Ok(())
    }
}
