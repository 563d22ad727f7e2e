//! [`ChallengeTokenStore`] on the `challenge_tokens` table, so that every instance behind
//! the same database answers every HTTP-01 request.

use crate::entity::challenge_tokens;
use crate::error::backend;
use crate::{db_time, Store};
use acmeport_domain::ports::{ChallengeTokenStore, RepoError};
use async_trait::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};

#[async_trait]
impl ChallengeTokenStore for Store {
    async fn put(&self, token: &str, key_authorization: &str) -> Result<(), RepoError> {
        let row = challenge_tokens::ActiveModel {
            token: Set(token.to_owned()),
            key_authorization: Set(key_authorization.to_owned()),
            created_at: Set(db_time(self.now())),
        };
        challenge_tokens::Entity::insert(row)
            .on_conflict(
                OnConflict::column(challenge_tokens::Column::Token)
                    .update_column(challenge_tokens::Column::KeyAuthorization)
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get(&self, token: &str) -> Result<Option<String>, RepoError> {
        Ok(challenge_tokens::Entity::find_by_id(token.to_owned())
            .one(&self.db)
            .await
            .map_err(backend)?
            .map(|row| row.key_authorization))
    }

    async fn remove(&self, token: &str) -> Result<(), RepoError> {
        challenge_tokens::Entity::delete_by_id(token.to_owned())
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
