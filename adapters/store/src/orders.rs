//! [`OrderRepo`] on the `orders` table: durable progress, leases and the step history.
//!
//! A lease is `lease_owner` plus `lease_until_us`. A worker claims a pending order whose
//! lease is free or expired, renews it while working, and every step it writes is fenced:
//! the `UPDATE` only matches while the worker still owns an unexpired lease. A worker that
//! stalled past its lease therefore gets [`RepoError::LeaseLost`] and must stop, even if
//! the order was not taken over yet.

use crate::dto::{
    identifiers_from_json, identifiers_json, progress_from_json, progress_json,
    published_from_json, published_json, subject_from_json, subject_json,
};
use crate::entity::{order_events, orders};
use crate::error::{backend, Corrupt};
use crate::{db_time, from_micros, page_of, unix_micros, Store};
use acmeport_domain::ports::{OrderRepo, RepoError};
use acmeport_domain::{
    AccountId, CertificateId, ChallengeKind, Email, Identifiers, KeySpec, Listing, NewOrder, Order,
    OrderId, OrderSpec, OrderState, OrderStatus, OrderStep, Page, PrivateKeyPem, ProviderName,
    UserId, WorkerId,
};
use async_trait::async_trait;
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use time::OffsetDateTime;

/// The column uploaded keys are sealed for (with the row id).
pub(crate) const UPLOAD_KEY: &str = "orders.upload_key";
/// The column the current attempt's key is sealed for (with the row id).
pub(crate) const CERT_KEY: &str = "orders.cert_key";

/// One fenced step write of an order, as recorded in `order_events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    /// The attempt the step belongs to (1, then one more per reissue).
    pub attempt: u32,
    /// The step written.
    pub step: OrderStep,
    /// The status written.
    pub status: OrderStatus,
    /// The worker that held the lease when it wrote the step.
    pub worker: String,
    /// When it was written.
    pub at: OffsetDateTime,
    /// The due time the write left: after `at` when the worker let the order wait and
    /// released it, so another worker may take the next step before the lease ends.
    pub due_at: Option<OffsetDateTime>,
}

impl Store {
    /// The users with due orders (with their earliest due time), the one served least
    /// recently by this store first, then the earliest due.
    fn fair_turns(&self, candidates: Vec<(i64, Option<i64>)>) -> Vec<i64> {
        let turns = self
            .turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut ranked: Vec<(u64, i64, i64)> = candidates
            .into_iter()
            .map(|(user, due)| {
                let last = turns.last.get(&user).copied().unwrap_or(0);
                (last, due.unwrap_or(0), user)
            })
            .collect();
        ranked.sort_unstable();
        ranked.into_iter().map(|(_, _, user)| user).collect()
    }

    fn served(&self, user: i64) {
        let mut turns = self
            .turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        turns.counter += 1;
        let turn = turns.counter;
        turns.last.insert(user, turn);
        // Forget users not served for a long while, so the map stays small.
        if turns.last.len() > 10_000 {
            let oldest = turn.saturating_sub(10_000);
            turns.last.retain(|_, t| *t > oldest);
        }
    }

    fn order_to_domain(&self, m: orders::Model) -> Result<Order, RepoError> {
        let open_key = |column: &'static str, sealed: Option<Vec<u8>>| {
            sealed
                .map(|bytes| {
                    self.cipher
                        .open_str(column, m.id, &bytes)
                        .map(|pem| PrivateKeyPem::new(pem.as_str()))
                })
                .transpose()
        };
        let spec = OrderSpec {
            identifiers: identifiers_from_json(&m.identifiers)?,
            challenge: m
                .challenge
                .parse::<ChallengeKind>()
                .map_err(|e| Corrupt::new("orders.challenge", e))?,
            provider: m
                .provider
                .as_deref()
                .map(ProviderName::parse)
                .transpose()
                .map_err(|e| Corrupt::new("orders.provider", e))?,
            email: m
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| Corrupt::new("orders.email", e))?,
            subject: subject_from_json(&m.subject)?,
            key_spec: m
                .key_spec
                .parse::<KeySpec>()
                .map_err(|e| Corrupt::new("orders.key_spec", e))?,
            csr: m.upload_csr,
            key: open_key(UPLOAD_KEY, m.upload_key)?,
            auto_renew: m.auto_renew,
        };
        let state = OrderState {
            status: OrderStatus::from_name(&m.status)
                .ok_or_else(|| Corrupt::new("orders.status", &m.status))?,
            step: OrderStep::from_name(&m.step)
                .ok_or_else(|| Corrupt::new("orders.step", &m.step))?,
            acme_url: m.acme_url,
            published: published_from_json(&m.published)?,
            cert_key: open_key(CERT_KEY, m.cert_key)?,
            csr: m.csr.map(crate::dto::csr_from_pem).transpose()?,
            error: m.error,
            detail: m.detail,
            attempt: u32::try_from(m.attempt).map_err(|e| Corrupt::new("orders.attempt", e))?,
            version: u64::try_from(m.version).map_err(|e| Corrupt::new("orders.version", e))?,
            due_at: m
                .due_at_us
                .map(from_micros)
                .transpose()
                .map_err(|e| Corrupt::new("orders.due_at_us", e))?,
            progress: progress_from_json(&m.progress)?,
        };
        Ok(Order::restore(
            OrderId::new(m.id),
            NewOrder {
                user_id: UserId::new(m.user_id),
                account_id: AccountId::new(m.account_id),
                spec,
                created_at: m.created_at,
            },
            state,
            m.resolved_cert_id.map(CertificateId::new),
            m.updated_at,
        ))
    }

    /// The columns a save writes: the progress, never the fixed spec.
    fn state_changes(&self, order: &Order) -> Result<orders::ActiveModel, RepoError> {
        let state = order.state();
        let cert_key = state
            .cert_key
            .as_ref()
            .map(|k| self.cipher.seal_str(CERT_KEY, order.id().get(), k.expose()))
            .transpose()?;
        Ok(orders::ActiveModel {
            status: Set(state.status.as_str().to_owned()),
            step: Set(state.step.as_str().to_owned()),
            acme_url: Set(state.acme_url.clone()),
            published: Set(published_json(&state.published)),
            cert_key: Set(cert_key),
            csr: Set(state.csr.as_ref().map(|c| c.pem.clone())),
            error: Set(state.error.clone()),
            detail: Set(state.detail.clone()),
            attempt: Set(i32::try_from(state.attempt).unwrap_or(i32::MAX)),
            resolved_cert_id: Set(order.resolved_cert_id().map(CertificateId::get)),
            updated_at: Set(db_time(order.updated_at())),
            version: Set(Self::version_of(order) + 1),
            due_at_us: Set(state.due_at.map(unix_micros)),
            progress: Set(progress_json(&state.progress)),
            ..Default::default()
        })
    }

    fn version_of(order: &Order) -> i64 {
        i64::try_from(order.version()).unwrap_or(i64::MAX)
    }

    /// Why a conditional write matched no row: the order is gone, or it changed.
    async fn missed_write<C: sea_orm::ConnectionTrait>(
        conn: &C,
        order: &Order,
        worker: Option<&WorkerId>,
    ) -> Result<RepoError, RepoError> {
        let row = orders::Entity::find_by_id(order.id().get())
            .select_only()
            .column(orders::Column::Version)
            .column(orders::Column::LeaseOwner)
            .into_tuple::<(i64, Option<String>)>()
            .one(conn)
            .await
            .map_err(backend)?;
        Ok(match row {
            None => RepoError::NotFound("order"),
            Some((_, owner)) if worker.is_some_and(|w| owner.as_deref() != Some(w.as_str())) => {
                RepoError::LeaseLost
            }
            Some((version, _)) if version != Self::version_of(order) => {
                RepoError::Conflict("order")
            }
            Some(_) => RepoError::LeaseLost,
        })
    }

    /// The fenced step writes of an order, oldest first.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    pub async fn order_history(&self, order: OrderId) -> Result<Vec<OrderEvent>, RepoError> {
        let rows = order_events::Entity::find()
            .filter(order_events::Column::OrderId.eq(order.get()))
            .order_by_asc(order_events::Column::Id)
            .all(&self.db)
            .await
            .map_err(backend)?;
        rows.into_iter()
            .map(|r| {
                Ok(OrderEvent {
                    attempt: u32::try_from(r.attempt)
                        .map_err(|e| Corrupt::new("order_events.attempt", e))?,
                    step: OrderStep::from_name(&r.step)
                        .ok_or_else(|| Corrupt::new("order_events.step", &r.step))?,
                    status: OrderStatus::from_name(&r.status)
                        .ok_or_else(|| Corrupt::new("order_events.status", &r.status))?,
                    worker: r.worker,
                    at: r.at,
                    due_at: r
                        .due_at_us
                        .map(from_micros)
                        .transpose()
                        .map_err(|e| Corrupt::new("order_events.due_at_us", e))?,
                })
            })
            .collect()
    }

    async fn fenced_save(
        &self,
        order: &Order,
        worker: &WorkerId,
        lease_until: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let now = self.now();
        let mut changes = self.state_changes(order)?;
        changes.lease_until_us = Set(Some(unix_micros(lease_until)));
        // The UPDATE comes first so that a SQLite transaction takes the write lock at
        // once (a read first could fail to upgrade under a concurrent writer).
        let txn = self.db.begin().await.map_err(backend)?;
        let result = orders::Entity::update_many()
            .set(changes)
            .filter(orders::Column::Id.eq(order.id().get()))
            .filter(orders::Column::Version.eq(Self::version_of(order)))
            .filter(orders::Column::LeaseOwner.eq(worker.as_str()))
            .filter(orders::Column::LeaseUntilUs.gt(unix_micros(now)))
            .exec(&txn)
            .await
            .map_err(backend)?;
        if result.rows_affected == 0 {
            let missed = Self::missed_write(&txn, order, Some(worker)).await?;
            txn.rollback().await.map_err(backend)?;
            return Err(missed);
        }
        let state = order.state();
        order_events::ActiveModel {
            order_id: Set(order.id().get()),
            attempt: Set(i32::try_from(state.attempt).unwrap_or(i32::MAX)),
            step: Set(state.step.as_str().to_owned()),
            status: Set(state.status.as_str().to_owned()),
            worker: Set(worker.as_str().to_owned()),
            at: Set(db_time(now)),
            due_at_us: Set(state.due_at.map(unix_micros)),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(backend)?;
        crate::lifecycle::store_events(&txn, order.pending_events(), now).await?;
        txn.commit().await.map_err(backend)
    }

    /// Orders due at `now_us` whose lease is free or expired.
    fn claimable(now_us: i64) -> Condition {
        Condition::all()
            .add(orders::Column::DueAtUs.lte(now_us))
            .add(
                Condition::any()
                    .add(orders::Column::LeaseOwner.is_null())
                    .add(orders::Column::LeaseUntilUs.lte(now_us)),
            )
    }

    fn lease_changes(worker: &WorkerId, lease_until: OffsetDateTime) -> orders::ActiveModel {
        orders::ActiveModel {
            lease_owner: Set(Some(worker.as_str().to_owned())),
            lease_until_us: Set(Some(unix_micros(lease_until))),
            ..Default::default()
        }
    }

    /// PostgreSQL: lock one claimable row, skipping rows other claimers hold locked, and
    /// take its lease in the same transaction.
    async fn claim_postgres(
        &self,
        worker: &WorkerId,
        user: i64,
        now_us: i64,
        lease_until: OffsetDateTime,
    ) -> Result<Option<orders::Model>, RepoError> {
        let txn = self.db.begin().await.map_err(backend)?;
        let id = orders::Entity::find()
            .select_only()
            .column(orders::Column::Id)
            .filter(Self::claimable(now_us))
            .filter(orders::Column::UserId.eq(user))
            .order_by_asc(orders::Column::DueAtUs)
            .order_by_asc(orders::Column::Id)
            .limit(1)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .into_tuple::<i64>()
            .one(&txn)
            .await
            .map_err(backend)?;
        let Some(id) = id else {
            txn.commit().await.map_err(backend)?;
            return Ok(None);
        };
        let claimed = orders::Entity::update_many()
            .set(Self::lease_changes(worker, lease_until))
            .filter(orders::Column::Id.eq(id))
            .exec_with_returning(&txn)
            .await
            .map_err(backend)?
            .into_iter()
            .next();
        txn.commit().await.map_err(backend)?;
        Ok(claimed)
    }

    /// SQLite: one conditional UPDATE. SQLite runs one writer at a time, so the
    /// statement is atomic against the other workers of this (single) instance.
    async fn claim_sqlite(
        &self,
        worker: &WorkerId,
        user: i64,
        now_us: i64,
        lease_until: OffsetDateTime,
    ) -> Result<Option<orders::Model>, RepoError> {
        let first_claimable = Query::select()
            .column(orders::Column::Id)
            .from(orders::Entity)
            .cond_where(Self::claimable(now_us))
            .and_where(orders::Column::UserId.eq(user))
            .order_by(orders::Column::DueAtUs, sea_orm::Order::Asc)
            .order_by(orders::Column::Id, sea_orm::Order::Asc)
            .limit(1)
            .to_owned();
        let claimed = orders::Entity::update_many()
            .set(Self::lease_changes(worker, lease_until))
            .filter(orders::Column::Id.in_subquery(first_claimable))
            .filter(Self::claimable(now_us))
            .exec_with_returning(&self.db)
            .await
            .map_err(backend)?;
        Ok(claimed.into_iter().next())
    }
}

#[async_trait]
impl OrderRepo for Store {
    async fn insert(&self, order: NewOrder) -> Result<Order, RepoError> {
        let spec = &order.spec;
        let (identifiers, digest) = identifiers_json(&spec.identifiers);
        // An uploaded key is sealed for the row id, known once the row exists: insert
        // without it and fill it in within one transaction.
        let txn = self.db.begin().await.map_err(backend)?;
        let state = OrderState::new();
        let created_at = db_time(order.created_at);
        let mut row = orders::ActiveModel {
            user_id: Set(order.user_id.get()),
            account_id: Set(order.account_id.get()),
            identifiers: Set(identifiers),
            identifiers_digest: Set(digest),
            challenge: Set(spec.challenge.as_str().to_owned()),
            provider: Set(spec.provider.as_ref().map(|p| p.as_str().to_owned())),
            email: Set(spec.email.as_ref().map(|e| e.as_str().to_owned())),
            subject: Set(subject_json(&spec.subject)),
            key_spec: Set(spec.key_spec.as_str().to_owned()),
            upload_csr: Set(spec.csr.clone()),
            upload_key: Set(None),
            status: Set(state.status.as_str().to_owned()),
            step: Set(state.step.as_str().to_owned()),
            acme_url: Set(None),
            published: Set(published_json(&state.published)),
            cert_key: Set(None),
            csr: Set(None),
            error: Set(None),
            detail: Set(None),
            attempt: Set(i32::try_from(state.attempt).unwrap_or(1)),
            resolved_cert_id: Set(None),
            created_at: Set(created_at),
            updated_at: Set(created_at),
            lease_owner: Set(None),
            lease_until_us: Set(None),
            version: Set(0),
            due_at_us: Set(Some(unix_micros(created_at))),
            auto_renew: Set(spec.auto_renew),
            progress: Set(progress_json(&state.progress)),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(backend)?;
        if let Some(key) = &spec.key {
            let sealed = self.cipher.seal_str(UPLOAD_KEY, row.id, key.expose())?;
            orders::Entity::update_many()
                .col_expr(orders::Column::UploadKey, Expr::value(sealed.clone()))
                .filter(orders::Column::Id.eq(row.id))
                .exec(&txn)
                .await
                .map_err(backend)?;
            row.upload_key = Some(sealed);
        }
        txn.commit().await.map_err(backend)?;
        self.order_to_domain(row)
    }

    async fn get(&self, id: OrderId) -> Result<Option<Order>, RepoError> {
        orders::Entity::find_by_id(id.get())
            .one(&self.db)
            .await
            .map_err(backend)?
            .map(|m| self.order_to_domain(m))
            .transpose()
    }

    async fn find_existing(
        &self,
        user: UserId,
        account: AccountId,
        identifiers: &Identifiers,
        challenge: ChallengeKind,
        email: Option<Email>,
    ) -> Result<Option<Order>, RepoError> {
        let (json, digest) = identifiers_json(identifiers);
        let email = match email {
            Some(e) => orders::Column::Email.eq(e.as_str()),
            None => orders::Column::Email.is_null(),
        };
        orders::Entity::find()
            .filter(orders::Column::UserId.eq(user.get()))
            .filter(orders::Column::AccountId.eq(account.get()))
            .filter(orders::Column::IdentifiersDigest.eq(digest))
            .filter(orders::Column::Identifiers.eq(json))
            .filter(orders::Column::Challenge.eq(challenge.as_str()))
            .filter(email)
            .order_by_asc(orders::Column::Id)
            .one(&self.db)
            .await
            .map_err(backend)?
            .map(|m| self.order_to_domain(m))
            .transpose()
    }

    async fn list(&self, user: UserId, page: Page) -> Result<Listing<Order>, RepoError> {
        let query = orders::Entity::find().filter(orders::Column::UserId.eq(user.get()));
        page_of(&self.db, query, orders::Column::Id, page, |m| {
            self.order_to_domain(m)
        })
        .await
    }

    async fn save(
        &self,
        order: &Order,
        worker: Option<WorkerId>,
        lease_until: OffsetDateTime,
    ) -> Result<(), RepoError> {
        if let Some(worker) = worker {
            return self.fenced_save(order, &worker, lease_until).await;
        }
        let txn = self.db.begin().await.map_err(backend)?;
        let result = orders::Entity::update_many()
            .set(self.state_changes(order)?)
            .filter(orders::Column::Id.eq(order.id().get()))
            .filter(orders::Column::Version.eq(Self::version_of(order)))
            .exec(&txn)
            .await
            .map_err(backend)?;
        if result.rows_affected == 0 {
            let missed = Self::missed_write(&txn, order, None).await?;
            txn.rollback().await.map_err(backend)?;
            return Err(missed);
        }
        crate::lifecycle::store_events(&txn, order.pending_events(), self.now()).await?;
        txn.commit().await.map_err(backend)
    }

    async fn claim(
        &self,
        worker: &WorkerId,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<Order>, RepoError> {
        let now_us = unix_micros(now);
        // The users with due orders, and each one's earliest due time.
        let candidates: Vec<(i64, Option<i64>)> = orders::Entity::find()
            .select_only()
            .column(orders::Column::UserId)
            .column_as(orders::Column::DueAtUs.min(), "due")
            .filter(Self::claimable(now_us))
            .group_by(orders::Column::UserId)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(backend)?;
        if candidates.is_empty() {
            return Ok(None);
        }
        let mut claimed = None;
        for user in self.fair_turns(candidates) {
            claimed = match self.db.get_database_backend() {
                DbBackend::Postgres => {
                    self.claim_postgres(worker, user, now_us, lease_until)
                        .await?
                }
                _ => self.claim_sqlite(worker, user, now_us, lease_until).await?,
            };
            if claimed.is_some() {
                self.served(user);
                break;
            }
        }
        let Some(row) = claimed else {
            return Ok(None);
        };
        tracing::debug!(order = row.id, %worker, "claimed order");
        self.order_to_domain(row).map(Some)
    }

    async fn renew(
        &self,
        order: OrderId,
        worker: &WorkerId,
        lease_until: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let result = orders::Entity::update_many()
            .col_expr(
                orders::Column::LeaseUntilUs,
                Expr::value(unix_micros(lease_until)),
            )
            .filter(orders::Column::Id.eq(order.get()))
            .filter(orders::Column::LeaseOwner.eq(worker.as_str()))
            .filter(orders::Column::LeaseUntilUs.gt(unix_micros(self.now())))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        if result.rows_affected == 0 {
            return Err(RepoError::LeaseLost);
        }
        Ok(())
    }

    async fn next_due(&self) -> Result<Option<OffsetDateTime>, RepoError> {
        // A leased order is claimable again once released or at its lease's end.
        let due: Option<Option<i64>> = orders::Entity::find()
            .select_only()
            .column_as(
                Expr::cust(
                    "MIN(CASE WHEN lease_owner IS NOT NULL AND lease_until_us > due_at_us \
                     THEN lease_until_us ELSE due_at_us END)",
                ),
                "due",
            )
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(backend)?;
        due.flatten()
            .map(from_micros)
            .transpose()
            .map_err(|e| Corrupt::new("orders.due_at_us", e).into())
    }

    async fn release(&self, order: OrderId, worker: &WorkerId) -> Result<(), RepoError> {
        orders::Entity::update_many()
            .set(orders::ActiveModel {
                lease_owner: Set(None),
                lease_until_us: Set(None),
                ..Default::default()
            })
            .filter(orders::Column::Id.eq(order.get()))
            .filter(orders::Column::LeaseOwner.eq(worker.as_str()))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn set_auto_renew(&self, order: OrderId, auto_renew: bool) -> Result<(), RepoError> {
        self.update_auto_renew(order, auto_renew).await
    }
}
