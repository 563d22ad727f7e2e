//! [`UserRepo`] on the `users` table.

use crate::entity::users;
use crate::error::{backend, translate, Corrupt};
use crate::{db_time, page_of, Store};
use acmeport_domain::ports::{RepoError, UserRepo};
use acmeport_domain::{Listing, NewUser, Page, PasswordHash, User, UserId, Username};
use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
};

fn to_domain(m: users::Model) -> Result<User, RepoError> {
    Ok(User {
        id: UserId::new(m.id),
        username: Username::parse(&m.username).map_err(|e| Corrupt::new("users.username", e))?,
        password_hash: PasswordHash::new(m.password_hash),
        is_admin: m.is_admin,
        created_at: m.created_at,
        generation: m.generation,
        disabled: m.disabled,
    })
}

#[async_trait]
impl UserRepo for Store {
    async fn insert(&self, user: NewUser) -> Result<User, RepoError> {
        let row = users::ActiveModel {
            username: Set(user.username.as_str().to_owned()),
            password_hash: Set(user.password_hash.as_str().to_owned()),
            is_admin: Set(user.is_admin),
            created_at: Set(db_time(user.created_at)),
            generation: Set(0),
            disabled: Set(false),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .map_err(translate("user"))?;
        to_domain(row)
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, RepoError> {
        users::Entity::find_by_id(id.get())
            .one(&self.db)
            .await
            .map_err(backend)?
            .map(to_domain)
            .transpose()
    }

    async fn by_username(&self, username: &Username) -> Result<Option<User>, RepoError> {
        users::Entity::find()
            .filter(users::Column::Username.eq(username.as_str()))
            .one(&self.db)
            .await
            .map_err(backend)?
            .map(to_domain)
            .transpose()
    }

    async fn count(&self) -> Result<u64, RepoError> {
        users::Entity::find().count(&self.db).await.map_err(backend)
    }

    async fn list(&self, page: Page) -> Result<Listing<User>, RepoError> {
        page_of(
            &self.db,
            users::Entity::find(),
            users::Column::Id,
            page,
            to_domain,
        )
        .await
    }

    async fn update(&self, user: &User) -> Result<(), RepoError> {
        let result = users::Entity::update_many()
            .col_expr(
                users::Column::PasswordHash,
                Expr::value(user.password_hash.as_str()),
            )
            .col_expr(users::Column::IsAdmin, Expr::value(user.is_admin))
            .col_expr(users::Column::Disabled, Expr::value(user.disabled))
            .col_expr(users::Column::Generation, Expr::value(user.generation))
            .filter(users::Column::Id.eq(user.id.get()))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        if result.rows_affected == 0 {
            return Err(RepoError::NotFound("user"));
        }
        Ok(())
    }

    async fn delete(&self, id: UserId) -> Result<(), RepoError> {
        // Foreign keys cascade to accounts, orders, certificates, grants and API keys.
        let result = users::Entity::delete_by_id(id.get())
            .exec(&self.db)
            .await
            .map_err(backend)?;
        if result.rows_affected == 0 {
            return Err(RepoError::NotFound("user"));
        }
        Ok(())
    }
}
