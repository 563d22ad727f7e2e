//! Lifecycle storage: events and the webhook outbox ([`EventRepo`] on
//! `lifecycle_events`), the order's `auto_renew` setting, and the counts the metrics
//! endpoint reads.
//!
//! Events are written in the same transaction as the change that raised them (an
//! order's save, a revocation), with `INSERT ... ON CONFLICT (event_key) DO NOTHING`, so
//! saving the same order twice stores each event once. Delivery claims pending, due
//! events with a lease as orders are claimed (`FOR UPDATE SKIP LOCKED` on PostgreSQL),
//! and records each attempt's outcome fenced on that lease.

use crate::dto::{strings_from_json, strings_json};
use crate::entity::{certificates, lifecycle_events, orders};
use crate::error::{backend, Corrupt};
use crate::{db_time, page_of, unix_micros, Store};
use acmeport_domain::ports::{EventRepo, RepoError};
use acmeport_domain::{
    metrics, CertificateId, CertificateStatus, Delivery, DeliveryState, DomainEvent, EventId,
    EventKind, Listing, OrderId, OrderStatus, Page, RevocationReason, StoredEvent, UserId,
    WorkerId,
};
use async_trait::async_trait;
use sea_orm::sea_query::{Expr, LockBehavior, LockType, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The event fields that have no column of their own.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct PayloadDto {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replaced_certificate_id: Option<i64>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    days: Option<u32>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_after: Option<i64>,
}

fn payload_json(event: &DomainEvent) -> String {
    let dto = PayloadDto {
        replaced_certificate_id: event.replaced_certificate_id.map(CertificateId::get),
        domains: event.domains.clone(),
        error: event.error.clone(),
        reason: event.reason.map(|r| r.as_str().to_owned()),
        days: event.days,
        not_after: event.not_after.map(OffsetDateTime::unix_timestamp),
    };
    serde_json::to_string(&dto).expect("the payload serializes")
}

fn event_to_domain(m: lifecycle_events::Model) -> Result<StoredEvent, RepoError> {
    let kind = EventKind::from_name(&m.kind)
        .ok_or_else(|| Corrupt::new("lifecycle_events.kind", &m.kind))?;
    let dto: PayloadDto = serde_json::from_str(&m.payload)
        .map_err(|e| Corrupt::new("lifecycle_events.payload", e))?;
    let mut event = DomainEvent::blank(kind, UserId::new(m.user_id));
    event.order_id = m.order_id.map(OrderId::new);
    event.certificate_id = m.certificate_id.map(CertificateId::new);
    event.replaced_certificate_id = dto.replaced_certificate_id.map(CertificateId::new);
    event.domains = dto.domains;
    event.error = dto.error;
    event.reason = dto
        .reason
        .as_deref()
        .map(|r| {
            RevocationReason::from_name(r)
                .ok_or_else(|| Corrupt::new("lifecycle_events.payload", r))
        })
        .transpose()?;
    event.days = dto.days;
    event.not_after = dto
        .not_after
        .map(|s| {
            OffsetDateTime::from_unix_timestamp(s)
                .map_err(|e| Corrupt::new("lifecycle_events.payload", e))
        })
        .transpose()?;
    let from_micros = |us: i64| {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
            .map_err(|e| Corrupt::new("lifecycle_events.next_attempt_us", e))
    };
    let delivery = Delivery {
        state: DeliveryState::from_name(&m.state)
            .ok_or_else(|| Corrupt::new("lifecycle_events.state", &m.state))?,
        attempts: u32::try_from(m.attempts)
            .map_err(|e| Corrupt::new("lifecycle_events.attempts", e))?,
        next_attempt_at: m.next_attempt_us.map(from_micros).transpose()?,
        last_error: m.last_error,
        delivered_to: strings_from_json(&m.delivered_to, "lifecycle_events.delivered_to")?,
        finished_at: m.finished_at,
    };
    Ok(StoredEvent {
        id: EventId::new(m.id),
        event: event.restore(m.event_key),
        created_at: m.created_at,
        delivery,
    })
}

/// Stores `events` on `db` (a transaction of the caller's), skipping those whose key is
/// stored already. Returns how many were new.
pub(crate) async fn store_events<C: ConnectionTrait>(
    db: &C,
    events: &[DomainEvent],
    at: OffsetDateTime,
) -> Result<u64, RepoError> {
    let mut stored = 0;
    for event in events {
        let row = lifecycle_events::ActiveModel {
            user_id: Set(event.user_id.get()),
            order_id: Set(event.order_id.map(OrderId::get)),
            certificate_id: Set(event.certificate_id.map(CertificateId::get)),
            kind: Set(event.kind.as_str().to_owned()),
            event_key: Set(event.key().to_owned()),
            payload: Set(payload_json(event)),
            created_at: Set(db_time(at)),
            state: Set(DeliveryState::Pending.as_str().to_owned()),
            attempts: Set(0),
            next_attempt_us: Set(Some(unix_micros(at))),
            last_error: Set(None),
            delivered_to: Set(strings_json(&[])),
            finished_at: Set(None),
            lease_owner: Set(None),
            lease_until_us: Set(None),
            ..Default::default()
        };
        let inserted = lifecycle_events::Entity::insert(row)
            .on_conflict(
                OnConflict::column(lifecycle_events::Column::EventKey)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await
            .map_err(backend)?;
        if inserted > 0 {
            metrics::event_stored(event.kind);
            stored += inserted;
        }
    }
    Ok(stored)
}

impl Store {
    /// Writes the order's `auto_renew` column only. Turned on, a valid order with
    /// nothing due becomes due now, so that the renewal scheduler plans it again.
    pub(crate) async fn update_auto_renew(
        &self,
        order: OrderId,
        auto_renew: bool,
    ) -> Result<(), RepoError> {
        let result = orders::Entity::update_many()
            .col_expr(orders::Column::AutoRenew, Expr::value(auto_renew))
            .filter(orders::Column::Id.eq(order.get()))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        if result.rows_affected == 0 {
            return Err(RepoError::NotFound("order"));
        }
        if auto_renew {
            orders::Entity::update_many()
                .col_expr(
                    orders::Column::DueAtUs,
                    Expr::value(unix_micros(self.now())),
                )
                .filter(orders::Column::Id.eq(order.get()))
                .filter(orders::Column::Status.eq(OrderStatus::Valid.as_str()))
                .filter(orders::Column::DueAtUs.is_null())
                .exec(&self.db)
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    /// How many orders have each status (for the `acmeport_orders` gauge).
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    pub async fn order_counts(&self) -> Result<Vec<(String, u64)>, RepoError> {
        let mut counts = Vec::new();
        for status in [
            OrderStatus::Pending,
            OrderStatus::Valid,
            OrderStatus::Invalid,
            OrderStatus::Revoked,
        ] {
            let n = orders::Entity::find()
                .filter(orders::Column::Status.eq(status.as_str()))
                .count(&self.db)
                .await
                .map_err(backend)?;
            counts.push((status.as_str().to_owned(), n));
        }
        Ok(counts)
    }

    /// How many valid certificates fall in each band of
    /// [`acmeport_domain::metrics::EXPIRY_BANDS`] at `now` (range counts on the
    /// `(status, not_after)` index).
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    pub async fn certificate_expiry_counts(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<u64>, RepoError> {
        let mut counts = Vec::new();
        let mut lower: Option<OffsetDateTime> = None;
        for (_, upper_days) in metrics::EXPIRY_BANDS {
            let mut query = certificates::Entity::find()
                .filter(certificates::Column::Status.eq(CertificateStatus::Valid.as_str()));
            if let Some(lower) = lower {
                query = query.filter(certificates::Column::NotAfter.gt(db_time(lower)));
            }
            let upper = (*upper_days != i64::MAX).then(|| now + time::Duration::days(*upper_days));
            if let Some(upper) = upper {
                query = query.filter(certificates::Column::NotAfter.lte(db_time(upper)));
            }
            counts.push(query.count(&self.db).await.map_err(backend)?);
            lower = upper;
        }
        Ok(counts)
    }

    /// Pending events due at `now_us` whose lease is free or expired.
    fn deliverable(now_us: i64) -> Condition {
        Condition::all()
            .add(lifecycle_events::Column::State.eq(DeliveryState::Pending.as_str()))
            .add(lifecycle_events::Column::NextAttemptUs.lte(now_us))
            .add(
                Condition::any()
                    .add(lifecycle_events::Column::LeaseOwner.is_null())
                    .add(lifecycle_events::Column::LeaseUntilUs.lte(now_us)),
            )
    }

    fn event_lease(
        worker: &WorkerId,
        lease_until: OffsetDateTime,
    ) -> lifecycle_events::ActiveModel {
        lifecycle_events::ActiveModel {
            lease_owner: Set(Some(worker.as_str().to_owned())),
            lease_until_us: Set(Some(unix_micros(lease_until))),
            ..Default::default()
        }
    }
}

#[async_trait]
impl EventRepo for Store {
    async fn record(&self, event: DomainEvent) -> Result<bool, RepoError> {
        Ok(store_events(&self.db, &[event], self.now()).await? > 0)
    }

    async fn list(&self, user: UserId, page: Page) -> Result<Listing<StoredEvent>, RepoError> {
        let query = lifecycle_events::Entity::find()
            .filter(lifecycle_events::Column::UserId.eq(user.get()));
        page_of(
            &self.db,
            query,
            lifecycle_events::Column::Id,
            page,
            event_to_domain,
        )
        .await
    }

    async fn claim_due(
        &self,
        worker: &WorkerId,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, RepoError> {
        let now_us = unix_micros(now);
        let rows = match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let txn = self.db.begin().await.map_err(backend)?;
                let ids = lifecycle_events::Entity::find()
                    .select_only()
                    .column(lifecycle_events::Column::Id)
                    .filter(Self::deliverable(now_us))
                    .order_by_asc(lifecycle_events::Column::Id)
                    .limit(u64::from(limit))
                    .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                    .into_tuple::<i64>()
                    .all(&txn)
                    .await
                    .map_err(backend)?;
                let rows = if ids.is_empty() {
                    Vec::new()
                } else {
                    lifecycle_events::Entity::update_many()
                        .set(Self::event_lease(worker, lease_until))
                        .filter(lifecycle_events::Column::Id.is_in(ids))
                        .exec_with_returning(&txn)
                        .await
                        .map_err(backend)?
                };
                txn.commit().await.map_err(backend)?;
                rows
            }
            _ => {
                // SQLite runs one writer at a time: one conditional UPDATE is atomic.
                let due = Query::select()
                    .column(lifecycle_events::Column::Id)
                    .from(lifecycle_events::Entity)
                    .cond_where(Self::deliverable(now_us))
                    .order_by(lifecycle_events::Column::Id, sea_orm::Order::Asc)
                    .limit(u64::from(limit))
                    .to_owned();
                lifecycle_events::Entity::update_many()
                    .set(Self::event_lease(worker, lease_until))
                    .filter(lifecycle_events::Column::Id.in_subquery(due))
                    .filter(Self::deliverable(now_us))
                    .exec_with_returning(&self.db)
                    .await
                    .map_err(backend)?
            }
        };
        let mut events = rows
            .into_iter()
            .map(event_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    async fn update_delivery(
        &self,
        id: EventId,
        worker: &WorkerId,
        delivery: &Delivery,
    ) -> Result<(), RepoError> {
        // Fenced on the owner only: a lease that lapsed without being taken over may
        // still record what this worker did.
        let result = lifecycle_events::Entity::update_many()
            .set(lifecycle_events::ActiveModel {
                state: Set(delivery.state.as_str().to_owned()),
                attempts: Set(i32::try_from(delivery.attempts).unwrap_or(i32::MAX)),
                next_attempt_us: Set(delivery.next_attempt_at.map(unix_micros)),
                last_error: Set(delivery.last_error.clone()),
                delivered_to: Set(strings_json(&delivery.delivered_to)),
                finished_at: Set(delivery.finished_at.map(db_time)),
                lease_owner: Set(None),
                lease_until_us: Set(None),
                ..Default::default()
            })
            .filter(lifecycle_events::Column::Id.eq(id.get()))
            .filter(lifecycle_events::Column::LeaseOwner.eq(worker.as_str()))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        if result.rows_affected == 0 {
            return Err(RepoError::LeaseLost);
        }
        Ok(())
    }
}
