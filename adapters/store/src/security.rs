//! [`GrantRepo`], [`ApiKeyRepo`] and [`AuditLog`] on the `domain_grants`, `api_keys` and
//! `audit_log` tables.

use crate::entity::{api_keys, audit_log, domain_grants};
use crate::error::{backend, translate, Corrupt};
use crate::{db_time, page_of, Store};
use acmeport_domain::ports::{ApiKeyRepo, AuditLog, GrantRepo, RepoError};
use acmeport_domain::{
    ApiKey, ApiKeyDigest, ApiKeyId, ApiKeyScope, AuditAction, AuditEntry, AuditFilter, AuditId,
    DomainGrant, GrantId, Listing, NamePattern, NewApiKey, NewAuditEntry, OrderId, Page, UserId,
};
use async_trait::async_trait;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};

fn grant_to_domain(m: domain_grants::Model) -> Result<DomainGrant, RepoError> {
    Ok(DomainGrant {
        id: GrantId::new(m.id),
        user_id: UserId::new(m.user_id),
        pattern: NamePattern::parse(&m.pattern)
            .map_err(|e| Corrupt::new("domain_grants.pattern", e))?,
        created_at: m.created_at,
    })
}

#[async_trait]
impl GrantRepo for Store {
    async fn grants(&self, user: UserId) -> Result<Vec<DomainGrant>, RepoError> {
        domain_grants::Entity::find()
            .filter(domain_grants::Column::UserId.eq(user.get()))
            .order_by_asc(domain_grants::Column::Id)
            .all(&self.db)
            .await
            .map_err(backend)?
            .into_iter()
            .map(grant_to_domain)
            .collect()
    }

    async fn grant(
        &self,
        user: UserId,
        pattern: &NamePattern,
        at: time::OffsetDateTime,
    ) -> Result<DomainGrant, RepoError> {
        let row = domain_grants::ActiveModel {
            user_id: Set(user.get()),
            pattern: Set(pattern.to_string()),
            created_at: Set(db_time(at)),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .map_err(translate("grant"))?;
        grant_to_domain(row)
    }

    async fn revoke_grant(
        &self,
        user: UserId,
        pattern: &NamePattern,
    ) -> Result<GrantId, RepoError> {
        let row = domain_grants::Entity::find()
            .filter(domain_grants::Column::UserId.eq(user.get()))
            .filter(domain_grants::Column::Pattern.eq(pattern.to_string()))
            .one(&self.db)
            .await
            .map_err(backend)?
            .ok_or(RepoError::NotFound("grant"))?;
        domain_grants::Entity::delete_by_id(row.id)
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(GrantId::new(row.id))
    }
}

/// The stored form of an [`ApiKeyScope`].
#[derive(Serialize, Deserialize)]
pub(crate) struct ScopeDto {
    #[serde(default)]
    read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    orders: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    domains: Option<Vec<String>>,
}

fn scope_to_json(scope: &ApiKeyScope) -> String {
    serde_json::to_string(&ScopeDto {
        read_only: scope.read_only,
        orders: scope
            .orders
            .as_ref()
            .map(|ids| ids.iter().map(|id| id.get()).collect()),
        domains: scope
            .domains
            .as_ref()
            .map(|ps| ps.iter().map(ToString::to_string).collect()),
    })
    .expect("a scope serializes")
}

fn key_to_domain(m: api_keys::Model) -> Result<ApiKey, RepoError> {
    let dto: ScopeDto =
        serde_json::from_str(&m.scope).map_err(|e| Corrupt::new("api_keys.scope", e))?;
    let domains = dto
        .domains
        .map(|ps| {
            ps.iter()
                .map(|p| NamePattern::parse(p).map_err(|e| Corrupt::new("api_keys.scope", e)))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(ApiKey {
        id: ApiKeyId::new(m.id),
        user_id: UserId::new(m.user_id),
        name: m.name,
        scope: ApiKeyScope {
            read_only: dto.read_only,
            orders: dto
                .orders
                .map(|ids| ids.into_iter().map(OrderId::new).collect()),
            domains,
        },
        digest: ApiKeyDigest::new(m.digest),
        expires_at: m.expires_at,
        created_at: m.created_at,
    })
}

#[async_trait]
impl ApiKeyRepo for Store {
    async fn insert(&self, key: NewApiKey) -> Result<ApiKey, RepoError> {
        let row = api_keys::ActiveModel {
            user_id: Set(key.user_id.get()),
            name: Set(key.name),
            digest: Set(key.digest.as_str().to_owned()),
            scope: Set(scope_to_json(&key.scope)),
            expires_at: Set(key.expires_at.map(db_time)),
            created_at: Set(db_time(key.created_at)),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .map_err(translate("API key"))?;
        key_to_domain(row)
    }

    async fn get(&self, id: ApiKeyId) -> Result<Option<ApiKey>, RepoError> {
        api_keys::Entity::find_by_id(id.get())
            .one(&self.db)
            .await
            .map_err(backend)?
            .map(key_to_domain)
            .transpose()
    }

    async fn list(&self, user: UserId, page: Page) -> Result<Listing<ApiKey>, RepoError> {
        page_of(
            &self.db,
            api_keys::Entity::find().filter(api_keys::Column::UserId.eq(user.get())),
            api_keys::Column::Id,
            page,
            key_to_domain,
        )
        .await
    }

    async fn delete(&self, id: ApiKeyId) -> Result<(), RepoError> {
        let result = api_keys::Entity::delete_by_id(id.get())
            .exec(&self.db)
            .await
            .map_err(backend)?;
        if result.rows_affected == 0 {
            return Err(RepoError::NotFound("API key"));
        }
        Ok(())
    }
}

fn audit_to_domain(m: audit_log::Model) -> Result<AuditEntry, RepoError> {
    Ok(AuditEntry {
        id: AuditId::new(m.id),
        entry: NewAuditEntry {
            at: m.at,
            actor: m.actor_id.map(UserId::new),
            api_key: m.api_key_id.map(ApiKeyId::new),
            action: AuditAction::parse(&m.action)
                .ok_or_else(|| Corrupt::new("audit_log.action", &m.action))?,
            target: m.target,
            detail: m.detail,
        },
    })
}

#[async_trait]
impl AuditLog for Store {
    async fn record(&self, entry: NewAuditEntry) -> Result<(), RepoError> {
        audit_log::ActiveModel {
            at: Set(db_time(entry.at)),
            actor_id: Set(entry.actor.map(UserId::get)),
            api_key_id: Set(entry.api_key.map(ApiKeyId::get)),
            action: Set(entry.action.as_str().to_owned()),
            target: Set(entry.target),
            detail: Set(entry.detail),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn list(
        &self,
        filter: AuditFilter,
        page: Page,
    ) -> Result<Listing<AuditEntry>, RepoError> {
        let mut query = audit_log::Entity::find();
        if let Some(actor) = filter.actor {
            query = query.filter(audit_log::Column::ActorId.eq(actor.get()));
        }
        if let Some(since) = filter.since {
            query = query.filter(audit_log::Column::At.gte(db_time(since)));
        }
        if let Some(until) = filter.until {
            query = query.filter(audit_log::Column::At.lt(db_time(until)));
        }
        page_of(
            &self.db,
            query,
            audit_log::Column::Id,
            page,
            audit_to_domain,
        )
        .await
    }
}
