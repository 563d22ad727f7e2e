//! Counts for per-user quotas: accounts, pending orders, orders created since a time.

use crate::entity::{accounts, orders};
use crate::error::backend;
use crate::{db_time, Store};
use acmeport_domain::ports::{RepoError, UsageCounter};
use acmeport_domain::{OrderStatus, UserId};
use async_trait::async_trait;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use time::OffsetDateTime;

#[async_trait]
impl UsageCounter for Store {
    async fn accounts(&self, user: UserId) -> Result<u64, RepoError> {
        accounts::Entity::find()
            .filter(accounts::Column::UserId.eq(user.get()))
            .count(self.connection())
            .await
            .map_err(backend)
    }

    async fn orders_in_flight(&self, user: UserId) -> Result<u64, RepoError> {
        orders::Entity::find()
            .filter(orders::Column::UserId.eq(user.get()))
            .filter(orders::Column::Status.eq(OrderStatus::Pending.as_str()))
            .count(self.connection())
            .await
            .map_err(backend)
    }

    async fn orders_since(&self, user: UserId, since: OffsetDateTime) -> Result<u64, RepoError> {
        orders::Entity::find()
            .filter(orders::Column::UserId.eq(user.get()))
            .filter(orders::Column::CreatedAt.gte(db_time(since)))
            .count(self.connection())
            .await
            .map_err(backend)
    }
}
