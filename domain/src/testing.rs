//! In-memory fakes of every port, for unit tests here and in other crates (feature
//! `testing`). They keep state in memory, record what was done to them, and can be told
//! to fail.

use crate::models::{
    AccountCredentials, AccountId, AccountStatus, AcmeAccount, ApiToken, Certificate,
    CertificateId, CertificateInfo, CertificateStatus, ChallengeKind, ChallengeToSolve, CsrSubject,
    Delivery, DeliveryState, DirectoryUrl, DomainEvent, DomainName, Email, EventId,
    ExternalAccountBinding, Identifiers, KeySpec, Listing, NewAcmeAccount, NewCertificate,
    NewOrder, NewUser, Order, OrderId, OrderSpec, OrderStatus, OrderStep, Page, Password,
    PasswordHash, PrivateKeyPem, RevocationReason, StoredEvent, TxtRecord, User, UserId, Username,
    WorkerId,
};
use crate::models::{
    ApiKey, ApiKeyDigest, ApiKeyId, AuditEntry, AuditFilter, AuditId, DomainGrant, GrantId,
    NamePattern, NewApiKey, NewAuditEntry,
};
use crate::ports::{
    AccountRepo, AcmeClient, AcmeError, AcmeProgress, CertificateInspector, CertificateRepo,
    ChallengeTokenStore, Clock, Csr, CsrError, CsrFactory, DnsError, DnsProvider, EventRepo,
    HashError, NameserverAnswer, OrderRepo, PasswordHasher, PropagationChecker, PropagationError,
    RegisteredAccount, RenewalInfo, RepoError, TokenClaims, TokenSigner, UserRepo, WebhookEndpoint,
    WebhookError, WebhookSender,
};
use crate::ports::{ApiKeyRepo, ApiKeySecrets, AuditLog, GrantRepo};
use crate::service::{DnsProviders, Ports, SecurityPorts, Settings};
use crate::{Acmeport, ProviderName};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use time::OffsetDateTime;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn page_of<T: Clone>(rows: impl Iterator<Item = (i64, T)>, page: Page) -> Listing<T> {
    let mut items: Vec<T> = rows
        .filter(|(id, _)| page.after().is_none_or(|after| *id > after))
        .map(|(_, row)| row)
        .take(page.limit() as usize + 1)
        .collect();
    let has_more = items.len() > page.limit() as usize;
    items.truncate(page.limit() as usize);
    Listing { items, has_more }
}

// ---------------------------------------------------------------------------------------

/// A clock that starts at a fixed time and whose `sleep` advances time at once.
pub struct FakeClock {
    now: Mutex<OffsetDateTime>,
    slept: Mutex<Duration>,
    random: Mutex<f64>,
}

impl FakeClock {
    /// A clock at 2026-01-01T00:00:00Z.
    #[must_use]
    pub fn new() -> Self {
        Self {
            now: Mutex::new(time::macros::datetime!(2026-01-01 0:00 UTC)),
            slept: Mutex::new(Duration::ZERO),
            random: Mutex::new(0.0),
        }
    }

    /// The number [`Clock::random`] answers from now on (0 at first: no jitter).
    pub fn set_random(&self, value: f64) {
        *lock(&self.random) = value;
    }

    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        *lock(&self.now) += by;
    }

    /// The total time slept through this clock.
    #[must_use]
    pub fn slept(&self) -> Duration {
        *lock(&self.slept)
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        *lock(&self.now)
    }

    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
        *lock(&self.slept) += duration;
        YieldOnce(false).await;
    }

    fn random(&self) -> f64 {
        *lock(&self.random)
    }
}

/// Returns `Pending` once, so that a sleeping task lets others run.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct StoreState {
    next_id: i64,
    users: BTreeMap<i64, User>,
    accounts: BTreeMap<i64, AcmeAccount>,
    orders: BTreeMap<i64, (Order, Option<WorkerId>, OffsetDateTime)>,
    certificates: BTreeMap<i64, Certificate>,
    tokens: HashMap<String, String>,
    history: Vec<(OrderId, OrderStep, OrderStatus, Option<WorkerId>)>,
    /// Stored events with their delivery and the lease (owner, until) on them.
    events: BTreeMap<i64, (StoredEvent, Option<(WorkerId, OffsetDateTime)>)>,
    grants: BTreeMap<i64, DomainGrant>,
    api_keys: BTreeMap<i64, ApiKey>,
    audit: BTreeMap<i64, AuditEntry>,
    /// Saves that still succeed before saves start failing; `None`: never fail.
    saves_left: Option<usize>,
    /// The claim turn at which each user was last served.
    served: HashMap<i64, u64>,
    serve_counter: u64,
}

impl StoreState {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
}

/// Every repository and the token store, in memory.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<StoreState>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// After `n` more successful saves of orders, every save fails with a backend error
    /// (a database outage, or a crash as seen from the order). `None` heals it.
    pub fn fail_saves_after(&self, n: Option<usize>) {
        lock(&self.state).saves_left = n;
    }

    /// The (order, step, status, worker) of every fenced save, in order.
    #[must_use]
    pub fn history(&self) -> Vec<(OrderId, OrderStep, OrderStatus, Option<WorkerId>)> {
        lock(&self.state).history.clone()
    }

    /// Who holds the order's lease.
    #[must_use]
    pub fn lease_owner(&self, id: OrderId) -> Option<WorkerId> {
        lock(&self.state)
            .orders
            .get(&id.get())
            .and_then(|(_, owner, _)| owner.clone())
    }

    /// The tokens currently served.
    #[must_use]
    pub fn served_tokens(&self) -> Vec<String> {
        lock(&self.state).tokens.keys().cloned().collect()
    }

    /// Every stored order.
    #[must_use]
    pub fn orders(&self) -> Vec<Order> {
        lock(&self.state)
            .orders
            .values()
            .map(|(o, _, _)| o.clone())
            .collect()
    }

    /// Every stored certificate.
    #[must_use]
    pub fn certificates(&self) -> Vec<Certificate> {
        lock(&self.state).certificates.values().cloned().collect()
    }

    /// Every stored event.
    #[must_use]
    pub fn events(&self) -> Vec<StoredEvent> {
        lock(&self.state)
            .events
            .values()
            .map(|(e, _)| e.clone())
            .collect()
    }
}

impl StoreState {
    fn record_event(&mut self, event: DomainEvent, at: OffsetDateTime) -> bool {
        if self
            .events
            .values()
            .any(|(e, _)| e.event.key() == event.key())
        {
            return false;
        }
        let id = self.id();
        let stored = StoredEvent {
            id: EventId::new(id),
            event,
            created_at: at,
            delivery: Delivery::new(at),
        };
        self.events.insert(id, (stored, None));
        true
    }
}

#[async_trait]
impl UserRepo for MemoryStore {
    async fn insert(&self, user: NewUser) -> Result<User, RepoError> {
        let mut s = lock(&self.state);
        if s.users.values().any(|u| u.username == user.username) {
            return Err(RepoError::Duplicate("user"));
        }
        let id = s.id();
        let user = User {
            id: UserId::new(id),
            username: user.username,
            password_hash: user.password_hash,
            is_admin: user.is_admin,
            created_at: user.created_at,
            generation: 0,
            disabled: false,
        };
        s.users.insert(id, user.clone());
        Ok(user)
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, RepoError> {
        Ok(lock(&self.state).users.get(&id.get()).cloned())
    }

    async fn by_username(&self, username: &Username) -> Result<Option<User>, RepoError> {
        Ok(lock(&self.state)
            .users
            .values()
            .find(|u| &u.username == username)
            .cloned())
    }

    async fn count(&self) -> Result<u64, RepoError> {
        Ok(lock(&self.state).users.len() as u64)
    }

    async fn list(&self, page: Page) -> Result<Listing<User>, RepoError> {
        let s = lock(&self.state);
        Ok(page_of(
            s.users.iter().map(|(id, u)| (*id, u.clone())),
            page,
        ))
    }

    async fn update(&self, user: &User) -> Result<(), RepoError> {
        let mut s = lock(&self.state);
        let stored = s
            .users
            .get_mut(&user.id.get())
            .ok_or(RepoError::NotFound("user"))?;
        *stored = user.clone();
        Ok(())
    }

    async fn delete(&self, id: UserId) -> Result<(), RepoError> {
        let mut s = lock(&self.state);
        s.users
            .remove(&id.get())
            .ok_or(RepoError::NotFound("user"))?;
        s.accounts.retain(|_, a| a.user_id != id);
        s.orders.retain(|_, (o, _, _)| o.user_id() != id);
        s.certificates.retain(|_, c| c.user_id != id);
        s.grants.retain(|_, g| g.user_id != id);
        s.api_keys.retain(|_, k| k.user_id != id);
        Ok(())
    }
}

#[async_trait]
impl GrantRepo for MemoryStore {
    async fn grants(&self, user: UserId) -> Result<Vec<DomainGrant>, RepoError> {
        Ok(lock(&self.state)
            .grants
            .values()
            .filter(|g| g.user_id == user)
            .cloned()
            .collect())
    }

    async fn grant(
        &self,
        user: UserId,
        pattern: &NamePattern,
        at: OffsetDateTime,
    ) -> Result<DomainGrant, RepoError> {
        let mut s = lock(&self.state);
        if s.grants
            .values()
            .any(|g| g.user_id == user && &g.pattern == pattern)
        {
            return Err(RepoError::Duplicate("grant"));
        }
        let id = s.id();
        let grant = DomainGrant {
            id: GrantId::new(id),
            user_id: user,
            pattern: pattern.clone(),
            created_at: at,
        };
        s.grants.insert(id, grant.clone());
        Ok(grant)
    }

    async fn revoke_grant(
        &self,
        user: UserId,
        pattern: &NamePattern,
    ) -> Result<GrantId, RepoError> {
        let mut s = lock(&self.state);
        let id = s
            .grants
            .values()
            .find(|g| g.user_id == user && &g.pattern == pattern)
            .map(|g| g.id)
            .ok_or(RepoError::NotFound("grant"))?;
        s.grants.remove(&id.get());
        Ok(id)
    }
}

#[async_trait]
impl ApiKeyRepo for MemoryStore {
    async fn insert(&self, key: NewApiKey) -> Result<ApiKey, RepoError> {
        let mut s = lock(&self.state);
        if s.api_keys
            .values()
            .any(|k| k.user_id == key.user_id && k.name == key.name)
        {
            return Err(RepoError::Duplicate("API key"));
        }
        let id = s.id();
        let key = ApiKey {
            id: ApiKeyId::new(id),
            user_id: key.user_id,
            name: key.name,
            scope: key.scope,
            digest: key.digest,
            expires_at: key.expires_at,
            created_at: key.created_at,
        };
        s.api_keys.insert(id, key.clone());
        Ok(key)
    }

    async fn get(&self, id: ApiKeyId) -> Result<Option<ApiKey>, RepoError> {
        Ok(lock(&self.state).api_keys.get(&id.get()).cloned())
    }

    async fn list(&self, user: UserId, page: Page) -> Result<Listing<ApiKey>, RepoError> {
        let s = lock(&self.state);
        Ok(page_of(
            s.api_keys
                .iter()
                .filter(|(_, k)| k.user_id == user)
                .map(|(id, k)| (*id, k.clone())),
            page,
        ))
    }

    async fn delete(&self, id: ApiKeyId) -> Result<(), RepoError> {
        lock(&self.state)
            .api_keys
            .remove(&id.get())
            .map(|_| ())
            .ok_or(RepoError::NotFound("API key"))
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn record(&self, entry: NewAuditEntry) -> Result<(), RepoError> {
        let mut s = lock(&self.state);
        let id = s.id();
        s.audit.insert(
            id,
            AuditEntry {
                id: AuditId::new(id),
                entry,
            },
        );
        Ok(())
    }

    async fn list(
        &self,
        filter: AuditFilter,
        page: Page,
    ) -> Result<Listing<AuditEntry>, RepoError> {
        let s = lock(&self.state);
        Ok(page_of(
            s.audit
                .iter()
                .filter(|(_, e)| {
                    filter.actor.is_none_or(|a| e.entry.actor == Some(a))
                        && filter.since.is_none_or(|t| e.entry.at >= t)
                        && filter.until.is_none_or(|t| e.entry.at < t)
                })
                .map(|(id, e)| (*id, e.clone())),
            page,
        ))
    }
}

/// API key secrets from a counter, with a readable digest.
#[derive(Default)]
pub struct FakeKeySecrets {
    next: Mutex<u64>,
}

impl ApiKeySecrets for FakeKeySecrets {
    fn generate(&self) -> ApiToken {
        let mut next = lock(&self.next);
        *next += 1;
        ApiToken::new(format!("secret{next}"))
    }

    fn digest(&self, secret: &str) -> ApiKeyDigest {
        ApiKeyDigest::new(format!("digest({secret})"))
    }
}

#[async_trait]
impl AccountRepo for MemoryStore {
    async fn insert(&self, account: NewAcmeAccount) -> Result<AcmeAccount, RepoError> {
        let mut s = lock(&self.state);
        if s.accounts.values().any(|a| {
            a.user_id == account.user_id
                && a.email == account.email
                && a.directory == account.directory
        }) {
            return Err(RepoError::Duplicate("account"));
        }
        let id = s.id();
        let account = AcmeAccount {
            id: AccountId::new(id),
            user_id: account.user_id,
            email: account.email,
            directory: account.directory,
            uri: account.uri,
            status: AccountStatus::Valid,
            subject: account.subject,
            credentials: account.credentials,
            created_at: account.created_at,
        };
        s.accounts.insert(id, account.clone());
        Ok(account)
    }

    async fn get(&self, id: AccountId) -> Result<Option<AcmeAccount>, RepoError> {
        Ok(lock(&self.state).accounts.get(&id.get()).cloned())
    }

    async fn find(
        &self,
        user: UserId,
        email: &Email,
        directory: &DirectoryUrl,
    ) -> Result<Option<AcmeAccount>, RepoError> {
        Ok(lock(&self.state)
            .accounts
            .values()
            .find(|a| a.user_id == user && &a.email == email && &a.directory == directory)
            .cloned())
    }

    async fn list(&self, user: UserId, page: Page) -> Result<Listing<AcmeAccount>, RepoError> {
        let s = lock(&self.state);
        Ok(page_of(
            s.accounts
                .iter()
                .filter(|(_, a)| a.user_id == user)
                .map(|(id, a)| (*id, a.clone())),
            page,
        ))
    }

    async fn update(&self, account: &AcmeAccount) -> Result<(), RepoError> {
        let mut s = lock(&self.state);
        let row = s
            .accounts
            .get_mut(&account.id.get())
            .ok_or(RepoError::NotFound("account"))?;
        *row = account.clone();
        Ok(())
    }
}

#[async_trait]
impl OrderRepo for MemoryStore {
    async fn insert(&self, order: NewOrder) -> Result<Order, RepoError> {
        let mut s = lock(&self.state);
        let id = s.id();
        let at = order.created_at;
        let order = Order::restore(
            OrderId::new(id),
            order,
            crate::models::OrderState {
                due_at: Some(at),
                ..crate::models::OrderState::new()
            },
            None,
            at,
        );
        s.orders.insert(id, (order.clone(), None, at));
        Ok(order)
    }

    async fn get(&self, id: OrderId) -> Result<Option<Order>, RepoError> {
        Ok(lock(&self.state)
            .orders
            .get(&id.get())
            .map(|(o, _, _)| o.clone()))
    }

    async fn find_existing(
        &self,
        user: UserId,
        account: AccountId,
        identifiers: &Identifiers,
        challenge: ChallengeKind,
        email: Option<Email>,
    ) -> Result<Option<Order>, RepoError> {
        Ok(lock(&self.state)
            .orders
            .values()
            .map(|(o, _, _)| o)
            .find(|o| {
                o.user_id() == user
                    && o.account_id() == account
                    && &o.spec().identifiers == identifiers
                    && o.spec().challenge == challenge
                    && o.spec().email == email
            })
            .cloned())
    }

    async fn list(&self, user: UserId, page: Page) -> Result<Listing<Order>, RepoError> {
        let s = lock(&self.state);
        Ok(page_of(
            s.orders
                .iter()
                .filter(|(_, (o, _, _))| o.user_id() == user)
                .map(|(id, (o, _, _))| (*id, o.clone())),
            page,
        ))
    }

    async fn save(
        &self,
        order: &Order,
        worker: Option<WorkerId>,
        lease_until: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let mut s = lock(&self.state);
        match &mut s.saves_left {
            Some(0) => return Err(RepoError::Backend("saves are failing".into())),
            Some(n) => *n -= 1,
            None => {}
        }
        let row = s
            .orders
            .get_mut(&order.id().get())
            .ok_or(RepoError::NotFound("order"))?;
        if let Some(worker) = &worker {
            if row.1.as_ref() != Some(worker) {
                return Err(RepoError::LeaseLost);
            }
        }
        if row.0.version() != order.version() {
            return Err(RepoError::Conflict("order"));
        }
        if worker.is_some() {
            row.2 = lease_until;
        }
        // Only `set_auto_renew` changes the spec.
        let spec = row.0.spec().clone();
        row.0 = with_spec(order, spec);
        row.0.committed();
        row.0.clear_events();
        let at = order.updated_at();
        for event in order.pending_events() {
            s.record_event(event.clone(), at);
        }
        s.history
            .push((order.id(), order.step(), order.status(), worker));
        Ok(())
    }

    async fn claim(
        &self,
        worker: &WorkerId,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<Order>, RepoError> {
        let mut s = lock(&self.state);
        let due = |(o, owner, until): &(Order, Option<WorkerId>, OffsetDateTime)| {
            o.due_at().is_some_and(|d| d <= now) && (owner.is_none() || *until <= now)
        };
        // Fairness: the user served longest ago first, then that user's earliest due order.
        let served = s.served.clone();
        let pick = s
            .orders
            .iter()
            .filter(|(_, row)| due(row))
            .min_by_key(|(id, (o, _, _))| {
                (
                    served.get(&o.user_id().get()).copied().unwrap_or(0),
                    o.due_at(),
                    **id,
                )
            })
            .map(|(id, _)| *id);
        let Some(id) = pick else {
            return Ok(None);
        };
        s.serve_counter += 1;
        let turn = s.serve_counter;
        let (o, owner, until) = s.orders.get_mut(&id).expect("picked from the map");
        *owner = Some(worker.clone());
        *until = lease_until;
        let order = o.clone();
        s.served.insert(order.user_id().get(), turn);
        Ok(Some(order))
    }

    async fn next_due(&self) -> Result<Option<OffsetDateTime>, RepoError> {
        Ok(lock(&self.state)
            .orders
            .values()
            .filter_map(|(o, owner, until)| {
                o.due_at().map(|due| {
                    if owner.is_some() {
                        due.max(*until)
                    } else {
                        due
                    }
                })
            })
            .min())
    }

    async fn renew(
        &self,
        order: OrderId,
        worker: &WorkerId,
        lease_until: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let mut s = lock(&self.state);
        let row = s
            .orders
            .get_mut(&order.get())
            .ok_or(RepoError::NotFound("order"))?;
        if row.1.as_ref() != Some(worker) {
            return Err(RepoError::LeaseLost);
        }
        row.2 = lease_until;
        Ok(())
    }

    async fn release(&self, order: OrderId, worker: &WorkerId) -> Result<(), RepoError> {
        let mut s = lock(&self.state);
        if let Some(row) = s.orders.get_mut(&order.get()) {
            if row.1.as_ref() == Some(worker) {
                row.1 = None;
            }
        }
        Ok(())
    }

    async fn set_auto_renew(&self, order: OrderId, auto_renew: bool) -> Result<(), RepoError> {
        let mut s = lock(&self.state);
        let row = s
            .orders
            .get_mut(&order.get())
            .ok_or(RepoError::NotFound("order"))?;
        let mut spec = row.0.spec().clone();
        spec.auto_renew = auto_renew;
        row.0 = with_spec(&row.0, spec);
        Ok(())
    }
}

/// `order` with another spec, rebuilt as a repository does (without pending events).
fn with_spec(order: &Order, spec: OrderSpec) -> Order {
    Order::restore(
        order.id(),
        NewOrder {
            user_id: order.user_id(),
            account_id: order.account_id(),
            spec,
            created_at: order.created_at(),
        },
        order.state().clone(),
        order.resolved_cert_id(),
        order.updated_at(),
    )
}

#[async_trait]
impl CertificateRepo for MemoryStore {
    async fn insert(&self, c: NewCertificate) -> Result<Certificate, RepoError> {
        let mut s = lock(&self.state);
        if let Some(existing) = s
            .certificates
            .values()
            .find(|e| e.order_id == c.order_id && e.info.fingerprint == c.info.fingerprint)
        {
            return Ok(existing.clone());
        }
        let id = s.id();
        let certificate = Certificate {
            id: CertificateId::new(id),
            order_id: c.order_id,
            user_id: c.user_id,
            account_id: c.account_id,
            status: CertificateStatus::Valid,
            info: c.info,
            key: c.key,
            csr: c.csr,
            created_at: c.created_at,
            revoked_at: None,
            revocation_reason: None,
            renewal: None,
            renewal_error: None,
        };
        s.certificates.insert(id, certificate.clone());
        Ok(certificate)
    }

    async fn get(&self, id: CertificateId) -> Result<Option<Certificate>, RepoError> {
        Ok(lock(&self.state).certificates.get(&id.get()).cloned())
    }

    async fn list(&self, user: UserId, page: Page) -> Result<Listing<Certificate>, RepoError> {
        let s = lock(&self.state);
        Ok(page_of(
            s.certificates
                .iter()
                .filter(|(_, c)| c.user_id == user)
                .map(|(id, c)| (*id, c.clone())),
            page,
        ))
    }

    async fn valid_for_account(&self, account: AccountId) -> Result<Vec<Certificate>, RepoError> {
        Ok(lock(&self.state)
            .certificates
            .values()
            .filter(|c| c.account_id == account && c.status == CertificateStatus::Valid)
            .cloned()
            .collect())
    }

    async fn mark_revoked(
        &self,
        id: CertificateId,
        at: OffsetDateTime,
        reason: RevocationReason,
        event: DomainEvent,
    ) -> Result<(), RepoError> {
        let mut s = lock(&self.state);
        let c = s
            .certificates
            .get_mut(&id.get())
            .ok_or(RepoError::NotFound("certificate"))?;
        c.status = CertificateStatus::Revoked;
        c.revoked_at = Some(at);
        c.revocation_reason = Some(reason);
        s.record_event(event, at);
        Ok(())
    }

    async fn valid_expiring(
        &self,
        now: OffsetDateTime,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Certificate>, RepoError> {
        let s = lock(&self.state);
        let mut due: Vec<_> = s
            .certificates
            .values()
            .filter(|c| c.status == CertificateStatus::Valid)
            .filter(|c| c.info.not_after > now && c.info.not_after <= before)
            .cloned()
            .collect();
        due.sort_by_key(|c| c.info.not_after);
        due.truncate(limit as usize);
        Ok(due)
    }

    async fn delete(&self, id: CertificateId) -> Result<(), RepoError> {
        lock(&self.state)
            .certificates
            .remove(&id.get())
            .map(|_| ())
            .ok_or(RepoError::NotFound("certificate"))
    }
}

#[async_trait]
impl EventRepo for MemoryStore {
    async fn record(&self, event: DomainEvent) -> Result<bool, RepoError> {
        // The fake has no clock of its own: events are stamped with the epoch.
        Ok(lock(&self.state).record_event(event, OffsetDateTime::UNIX_EPOCH))
    }

    async fn list(&self, user: UserId, page: Page) -> Result<Listing<StoredEvent>, RepoError> {
        let s = lock(&self.state);
        Ok(page_of(
            s.events
                .iter()
                .filter(|(_, (e, _))| e.event.user_id == user)
                .map(|(id, (e, _))| (*id, e.clone())),
            page,
        ))
    }

    async fn claim_due(
        &self,
        worker: &WorkerId,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, RepoError> {
        let mut s = lock(&self.state);
        let mut claimed = Vec::new();
        for (event, lease) in s.events.values_mut() {
            if claimed.len() >= limit as usize {
                break;
            }
            let due = event.delivery.state == DeliveryState::Pending
                && event.delivery.next_attempt_at.is_some_and(|at| at <= now);
            let free = lease.as_ref().is_none_or(|(_, until)| *until <= now);
            if due && free {
                *lease = Some((worker.clone(), lease_until));
                claimed.push(event.clone());
            }
        }
        Ok(claimed)
    }

    async fn update_delivery(
        &self,
        id: EventId,
        worker: &WorkerId,
        delivery: &Delivery,
    ) -> Result<(), RepoError> {
        let mut s = lock(&self.state);
        let (event, lease) = s
            .events
            .get_mut(&id.get())
            .ok_or(RepoError::NotFound("event"))?;
        if lease.as_ref().map(|(w, _)| w) != Some(worker) {
            return Err(RepoError::LeaseLost);
        }
        event.delivery = delivery.clone();
        *lease = None;
        Ok(())
    }
}

/// A webhook sender that records what it sent and can be told to fail.
#[derive(Default)]
pub struct FakeWebhooks {
    endpoints: Mutex<Vec<WebhookEndpoint>>,
    sent: Mutex<Vec<(String, StoredEvent)>>,
    failing: Mutex<BTreeSet<String>>,
}

impl FakeWebhooks {
    /// Senders to `endpoints`.
    #[must_use]
    pub fn new(endpoints: Vec<WebhookEndpoint>) -> Self {
        Self {
            endpoints: Mutex::new(endpoints),
            ..Self::default()
        }
    }

    /// Makes the endpoint at `url` refuse (true) or accept (false) from now on.
    pub fn fail(&self, url: &str, failing: bool) {
        let mut f = lock(&self.failing);
        if failing {
            f.insert(url.to_owned());
        } else {
            f.remove(url);
        }
    }

    /// What was accepted: (endpoint URL, event).
    #[must_use]
    pub fn sent(&self) -> Vec<(String, StoredEvent)> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl WebhookSender for FakeWebhooks {
    fn endpoints(&self) -> Vec<WebhookEndpoint> {
        lock(&self.endpoints).clone()
    }

    async fn send(&self, endpoint: &str, event: &StoredEvent) -> Result<(), WebhookError> {
        if lock(&self.failing).contains(endpoint) {
            return Err(WebhookError::Status {
                status: 503,
                retry_after: None,
            });
        }
        lock(&self.sent).push((endpoint.to_owned(), event.clone()));
        Ok(())
    }
}

#[async_trait]
impl ChallengeTokenStore for MemoryStore {
    async fn put(&self, token: &str, key_authorization: &str) -> Result<(), RepoError> {
        lock(&self.state)
            .tokens
            .insert(token.to_owned(), key_authorization.to_owned());
        Ok(())
    }

    async fn get(&self, token: &str) -> Result<Option<String>, RepoError> {
        Ok(lock(&self.state).tokens.get(token).cloned())
    }

    async fn remove(&self, token: &str) -> Result<(), RepoError> {
        lock(&self.state).tokens.remove(token);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct AcmeState {
    next: u64,
    orders: HashMap<String, Vec<String>>,
    finalized: BTreeSet<String>,
    revoked: BTreeSet<String>,
    deactivated: BTreeSet<String>,
    failures: HashMap<&'static str, String>,
    transport_failures: HashMap<&'static str, u32>,
    /// Failed validations still to report (then `answer` works), with the reason.
    failed_validations: Option<(u32, String)>,
    /// Polls that still answer "not yet", per operation (`answer`, `finalize`).
    slow: HashMap<&'static str, u32>,
    /// Rate-limit answers still to give, per operation, with their Retry-After.
    rate_limited: HashMap<&'static str, (u32, Duration)>,
    calls: Vec<String>,
    /// Issued certificates: not before (unix seconds) and lifetime.
    issued_at: i64,
    lifetime: Duration,
    renewal_info: Option<(OffsetDateTime, OffsetDateTime, Option<Duration>)>,
    replaces: Vec<Option<String>>,
    /// Identifiers whose authorizations every order gets on top of its own.
    foreign: Vec<String>,
}

/// An ACME server in memory. Certificates are text that [`FakeCsr`] can inspect.
#[derive(Default)]
pub struct FakeAcme {
    state: Mutex<AcmeState>,
}

impl FakeAcme {
    /// A fresh server.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `operation` (`register`, `place_order`, `challenges`, `answer`, `finalize`,
    /// `certificate`, `revoke`, `deactivate`) answer `Rejected(reason)`.
    pub fn reject(&self, operation: &'static str, reason: &str) {
        lock(&self.state)
            .failures
            .insert(operation, reason.to_owned());
    }

    /// Makes `answer` report a failed validation `times` times, then validate.
    pub fn fail_validation(&self, times: u32, reason: &str) {
        lock(&self.state).failed_validations = Some((times, reason.to_owned()));
    }

    /// Makes `operation` fail with a transport error `times` times, then work.
    pub fn flake(&self, operation: &'static str, times: u32) {
        lock(&self.state)
            .transport_failures
            .insert(operation, times);
    }

    /// Makes `operation` answer `rateLimited` with `Retry-After: retry_after` `times` times.
    pub fn rate_limit(&self, operation: &'static str, times: u32, retry_after: Duration) {
        lock(&self.state)
            .rate_limited
            .insert(operation, (times, retry_after));
    }

    /// Makes `answer` or `finalize` answer "not yet" `polls` times before it is done.
    pub fn slow(&self, operation: &'static str, polls: u32) {
        lock(&self.state).slow.insert(operation, polls);
    }

    /// Certificates issued from now on start at `not_before` and live `lifetime`.
    pub fn issue_as(&self, not_before: OffsetDateTime, lifetime: Duration) {
        let mut s = lock(&self.state);
        s.issued_at = not_before.unix_timestamp();
        s.lifetime = lifetime;
    }

    /// Offers ACME Renewal Information: this window and `Retry-After` for every
    /// certificate (`None`: no ARI, the default).
    pub fn offer_renewal_info(
        &self,
        window: Option<(OffsetDateTime, OffsetDateTime)>,
        retry_after: Option<Duration>,
    ) {
        lock(&self.state).renewal_info = window.map(|(a, b)| (a, b, retry_after));
    }

    /// The `replaces` value of every order placed, in order.
    #[must_use]
    pub fn replaces(&self) -> Vec<Option<String>> {
        lock(&self.state).replaces.clone()
    }

    /// Adds an authorization for `name` to every order from now on, as a misbehaving CA
    /// (or one in the middle) would.
    pub fn add_foreign_authorization(&self, name: &str) {
        lock(&self.state).foreign.push(name.to_owned());
    }

    /// The operations called, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<String> {
        lock(&self.state).calls.clone()
    }

    /// The leaf PEMs revoked.
    #[must_use]
    pub fn revoked(&self) -> Vec<String> {
        lock(&self.state).revoked.iter().cloned().collect()
    }

    /// True when the account with these credentials was deactivated.
    #[must_use]
    pub fn is_deactivated(&self, credentials: &AccountCredentials) -> bool {
        lock(&self.state).deactivated.contains(credentials.expose())
    }

    fn enter(&self, operation: &'static str) -> Result<MutexGuard<'_, AcmeState>, AcmeError> {
        let mut s = lock(&self.state);
        s.calls.push(operation.to_owned());
        if let Some(reason) = s.failures.get(operation) {
            return Err(if operation == "answer" {
                AcmeError::ValidationFailed(reason.clone())
            } else {
                AcmeError::Rejected(reason.clone())
            });
        }
        if operation == "answer" {
            if let Some((left, reason)) = &mut s.failed_validations {
                if *left > 0 {
                    *left -= 1;
                    return Err(AcmeError::ValidationFailed(reason.clone()));
                }
            }
        }
        if let Some((left, retry_after)) = s.rate_limited.get_mut(operation) {
            if *left > 0 {
                *left -= 1;
                return Err(AcmeError::RateLimited {
                    detail: "urn:ietf:params:acme:error:rateLimited: too many new orders".into(),
                    retry_after: Some(*retry_after),
                });
            }
        }
        if let Some(left) = s.transport_failures.get_mut(operation) {
            if *left > 0 {
                *left -= 1;
                return Err(AcmeError::Transport("connection reset".into()));
            }
        }
        Ok(s)
    }
}

#[async_trait]
impl AcmeClient for FakeAcme {
    async fn register(
        &self,
        directory: &DirectoryUrl,
        _email: &Email,
        _eab: Option<ExternalAccountBinding>,
        _key: Option<PrivateKeyPem>,
    ) -> Result<RegisteredAccount, AcmeError> {
        let mut s = self.enter("register")?;
        s.next += 1;
        Ok(RegisteredAccount {
            uri: format!("{directory}/acct/{}", s.next),
            credentials: AccountCredentials::new(format!("creds-{}", s.next)),
        })
    }

    async fn place_order(
        &self,
        account: &AccountCredentials,
        identifiers: &Identifiers,
        replaces: Option<String>,
    ) -> Result<String, AcmeError> {
        let mut s = self.enter("place_order")?;
        s.replaces.push(replaces);
        if s.deactivated.contains(account.expose()) {
            return Err(AcmeError::Rejected(
                "urn:ietf:params:acme:error:unauthorized: account deactivated".into(),
            ));
        }
        s.next += 1;
        let url = format!("https://acme.test/order/{}", s.next);
        s.orders.insert(
            url.clone(),
            identifiers
                .as_slice()
                .iter()
                .map(ToString::to_string)
                .collect(),
        );
        Ok(url)
    }

    async fn challenges(
        &self,
        _account: &AccountCredentials,
        order_url: &str,
        kind: ChallengeKind,
    ) -> Result<Vec<ChallengeToSolve>, AcmeError> {
        let s = self.enter("challenges")?;
        let mut names = s
            .orders
            .get(order_url)
            .cloned()
            .ok_or_else(|| AcmeError::Rejected("no such order".into()))?;
        names.extend(s.foreign.iter().cloned());
        Ok(names
            .iter()
            .enumerate()
            .map(|(i, name)| ChallengeToSolve {
                identifier: name.trim_start_matches("*.").to_owned(),
                kind,
                token: format!("token-{}-{i}", order_url.rsplit('/').next().unwrap_or("")),
                key_authorization: format!("keyauth-{name}"),
                dns_value: format!("dns-{name}"),
            })
            .collect())
    }

    async fn answer(
        &self,
        _account: &AccountCredentials,
        _order_url: &str,
        _kind: ChallengeKind,
    ) -> Result<AcmeProgress, AcmeError> {
        let mut s = self.enter("answer")?;
        Ok(not_yet(&mut s, "answer"))
    }

    async fn finalize(
        &self,
        _account: &AccountCredentials,
        order_url: &str,
        csr_der: &[u8],
    ) -> Result<AcmeProgress, AcmeError> {
        let mut s = self.enter("finalize")?;
        if csr_der.is_empty() {
            return Err(AcmeError::Rejected(
                "urn:ietf:params:acme:error:badCSR: empty".into(),
            ));
        }
        let progress = not_yet(&mut s, "finalize");
        if progress == AcmeProgress::Done {
            s.finalized.insert(order_url.to_owned());
        }
        Ok(progress)
    }

    async fn renewal_info(
        &self,
        _account: &AccountCredentials,
        leaf_pem: &str,
    ) -> Result<Option<RenewalInfo>, AcmeError> {
        let s = self.enter("renewal_info")?;
        Ok(s.renewal_info.map(|(start, end, retry_after)| RenewalInfo {
            cert_id: format!("ari.{}", leaf_pem.len()),
            window_start: start,
            window_end: end,
            retry_after,
            explanation_url: None,
        }))
    }

    async fn certificate(
        &self,
        _account: &AccountCredentials,
        order_url: &str,
    ) -> Result<String, AcmeError> {
        let s = self.enter("certificate")?;
        if !s.finalized.contains(order_url) {
            return Err(AcmeError::Rejected("order not finalized".into()));
        }
        let names = s.orders.get(order_url).cloned().unwrap_or_default();
        let lifetime = if s.lifetime.is_zero() {
            Duration::from_secs(90 * 86400)
        } else {
            s.lifetime
        };
        let not_before = if s.issued_at == 0 {
            time::macros::datetime!(2026-01-01 0:00 UTC).unix_timestamp()
        } else {
            s.issued_at
        };
        Ok(format!(
            "LEAF {order_url} {not_before} {} {}\nISSUER fake-ca\n",
            lifetime.as_secs(),
            names.join(",")
        ))
    }

    async fn revoke(
        &self,
        _account: &AccountCredentials,
        leaf_pem: &str,
        _reason: RevocationReason,
    ) -> Result<(), AcmeError> {
        let mut s = self.enter("revoke")?;
        if !s.revoked.insert(leaf_pem.to_owned()) {
            return Err(AcmeError::AlreadyRevoked);
        }
        Ok(())
    }

    async fn deactivate(&self, account: &AccountCredentials) -> Result<(), AcmeError> {
        let mut s = self.enter("deactivate")?;
        s.deactivated.insert(account.expose().to_owned());
        Ok(())
    }

    async fn roll_key(
        &self,
        account: &AccountCredentials,
    ) -> Result<AccountCredentials, AcmeError> {
        let mut s = self.enter("roll_key")?;
        s.next += 1;
        // The old key is retired: orders with it are refused like a deactivated account's.
        s.deactivated.insert(account.expose().to_owned());
        Ok(AccountCredentials::new(format!("creds-{}", s.next)))
    }
}

/// "Not yet" while polls of `operation` are left, then done.
fn not_yet(s: &mut AcmeState, operation: &'static str) -> AcmeProgress {
    match s.slow.get_mut(operation) {
        Some(left) if *left > 0 => {
            *left -= 1;
            AcmeProgress::NotYet { retry_after: None }
        }
        _ => AcmeProgress::Done,
    }
}

// ---------------------------------------------------------------------------------------

/// Keys and CSRs as readable text: `KEY <spec> <n>` and `CSR <names>|<subject>`.
#[derive(Default)]
pub struct FakeCsr {
    generated: Mutex<u32>,
    parsed: Mutex<u32>,
}

impl FakeCsr {
    /// How many keys were generated.
    #[must_use]
    pub fn generated(&self) -> u32 {
        *lock(&self.generated)
    }

    /// How many CSRs were parsed (uploads; a built CSR is never parsed again).
    #[must_use]
    pub fn parsed(&self) -> u32 {
        *lock(&self.parsed)
    }

    /// The text of a CSR for these names, as `parse_csr` reads it.
    #[must_use]
    pub fn csr_for(names: &[&str]) -> String {
        format!("CSR {}|", names.join(","))
    }
}

#[async_trait]
impl CsrFactory for FakeCsr {
    async fn generate_key(&self, spec: KeySpec) -> Result<PrivateKeyPem, CsrError> {
        let mut n = lock(&self.generated);
        *n += 1;
        Ok(PrivateKeyPem::new(format!("KEY {spec} {n}")))
    }

    fn check_key(&self, key: &PrivateKeyPem) -> Result<(), CsrError> {
        if key.expose().starts_with("KEY ") {
            Ok(())
        } else {
            Err(CsrError::InvalidKey("not a PEM private key".into()))
        }
    }

    fn build_csr(
        &self,
        key: &PrivateKeyPem,
        identifiers: &Identifiers,
        subject: &CsrSubject,
        _email: Option<Email>,
    ) -> Result<Csr, CsrError> {
        self.check_key(key)?;
        let names: Vec<&str> = identifiers
            .as_slice()
            .iter()
            .map(DomainName::as_str)
            .collect();
        let org = subject.organization.as_ref().map_or("", |o| o.as_str());
        let pem = format!("CSR {}|O={org}", names.join(","));
        Ok(Csr {
            der: pem.clone().into_bytes(),
            pem,
        })
    }

    fn parse_csr(&self, pem: &str) -> Result<(Vec<DomainName>, Csr), CsrError> {
        *lock(&self.parsed) += 1;
        let rest = pem
            .strip_prefix("CSR ")
            .ok_or_else(|| CsrError::InvalidCsr("not a CSR".into()))?;
        let names = rest.split('|').next().unwrap_or("");
        let names = names
            .split(',')
            .map(|n| DomainName::parse(n).map_err(|e| CsrError::InvalidCsr(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((
            names,
            Csr {
                pem: pem.to_owned(),
                der: pem.as_bytes().to_vec(),
            },
        ))
    }
}

#[async_trait]
impl crate::ports::UsageCounter for MemoryStore {
    async fn accounts(&self, user: UserId) -> Result<u64, RepoError> {
        Ok(lock(&self.state)
            .accounts
            .values()
            .filter(|a| a.user_id == user)
            .count() as u64)
    }

    async fn orders_in_flight(&self, user: UserId) -> Result<u64, RepoError> {
        Ok(lock(&self.state)
            .orders
            .values()
            .filter(|(o, ..)| o.user_id() == user && o.status() == OrderStatus::Pending)
            .count() as u64)
    }

    async fn orders_since(&self, user: UserId, since: OffsetDateTime) -> Result<u64, RepoError> {
        Ok(lock(&self.state)
            .orders
            .values()
            .filter(|(o, ..)| o.user_id() == user && o.created_at() >= since)
            .count() as u64)
    }
}

impl CertificateInspector for FakeCsr {
    fn inspect(&self, chain_pem: &str) -> Result<CertificateInfo, CsrError> {
        let mut lines = chain_pem.lines();
        let leaf = lines
            .next()
            .filter(|l| l.starts_with("LEAF "))
            .ok_or_else(|| CsrError::InvalidCertificate("no leaf".into()))?;
        let names = leaf
            .rsplit(' ')
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::to_owned)
            .collect();
        let mut fields = leaf.split(' ').skip(2);
        let number = |field: Option<&str>| {
            field
                .and_then(|f| f.parse::<i64>().ok())
                .ok_or_else(|| CsrError::InvalidCertificate("malformed fake leaf".into()))
        };
        let start = OffsetDateTime::from_unix_timestamp(number(fields.next())?)
            .map_err(|e| CsrError::InvalidCertificate(e.to_string()))?;
        let lifetime = Duration::from_secs(number(fields.next())?.unsigned_abs());
        Ok(CertificateInfo {
            leaf_pem: leaf.to_owned(),
            chain_pem: lines.collect::<Vec<_>>().join("\n"),
            fingerprint: format!(
                "fp-{}",
                leaf.len() + leaf.bytes().map(u64::from).sum::<u64>() as usize
            ),
            serial: format!("{:x}", leaf.bytes().map(u64::from).sum::<u64>()),
            issuer: "CN=Fake CA".to_owned(),
            not_before: start,
            not_after: start + lifetime,
            names,
        })
    }

    /// Fake certificates and CSRs all carry the same key.
    fn public_key(&self, pem: &str) -> Result<Vec<u8>, CsrError> {
        if pem.starts_with("LEAF ") || pem.starts_with("CSR ") {
            Ok(b"fake public key".to_vec())
        } else {
            Err(CsrError::InvalidCertificate(
                "neither a leaf nor a CSR".into(),
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------

/// A DNS provider holding TXT records in memory.
#[derive(Default)]
pub struct FakeDns {
    records: Mutex<BTreeSet<(String, String)>>,
    fail_present: Mutex<Option<String>>,
    fail_cleanup: Mutex<Option<String>>,
}

impl FakeDns {
    /// The records present now.
    #[must_use]
    pub fn records(&self) -> Vec<(String, String)> {
        lock(&self.records).iter().cloned().collect()
    }

    /// Makes `present` refuse with this reason.
    pub fn refuse_present(&self, reason: &str) {
        *lock(&self.fail_present) = Some(reason.to_owned());
    }

    /// Makes `cleanup` refuse with this reason.
    pub fn refuse_cleanup(&self, reason: &str) {
        *lock(&self.fail_cleanup) = Some(reason.to_owned());
    }

    /// Makes `cleanup` work again.
    pub fn allow_cleanup(&self) {
        *lock(&self.fail_cleanup) = None;
    }
}

#[async_trait]
impl DnsProvider for FakeDns {
    async fn present(&self, record: &TxtRecord) -> Result<(), DnsError> {
        if let Some(reason) = lock(&self.fail_present).clone() {
            return Err(DnsError::Rejected(reason));
        }
        lock(&self.records).insert((record.name.clone(), record.value.clone()));
        Ok(())
    }

    async fn cleanup(&self, record: &TxtRecord) -> Result<(), DnsError> {
        if let Some(reason) = lock(&self.fail_cleanup).clone() {
            return Err(DnsError::Rejected(reason));
        }
        lock(&self.records).remove(&(record.name.clone(), record.value.clone()));
        Ok(())
    }
}

/// A propagation checker that reports `ns1.fake` missing for the first `n` checks.
#[derive(Default)]
pub struct FakePropagation {
    missing_for: Mutex<u32>,
    checks: Mutex<u32>,
    cnames: Mutex<HashMap<String, String>>,
}

impl FakePropagation {
    /// Records stay invisible for `checks` checks.
    pub fn missing_for(&self, checks: u32) {
        *lock(&self.missing_for) = checks;
    }

    /// How many checks were made.
    #[must_use]
    pub fn checks(&self) -> u32 {
        *lock(&self.checks)
    }

    /// Delegates `name` to `target` with a CNAME.
    pub fn delegate(&self, name: &str, target: &str) {
        lock(&self.cnames).insert(name.to_owned(), target.to_owned());
    }
}

#[async_trait]
impl PropagationChecker for FakePropagation {
    async fn check(&self, record: &TxtRecord) -> Result<Vec<NameserverAnswer>, PropagationError> {
        *lock(&self.checks) += 1;
        let mut left = lock(&self.missing_for);
        let serves = if *left > 0 {
            *left -= 1;
            false
        } else {
            true
        };
        Ok(vec![NameserverAnswer {
            server: "ns1.fake".into(),
            serves,
            values: if serves {
                vec![record.value.clone()]
            } else {
                Vec::new()
            },
            error: None,
            asked_at: OffsetDateTime::UNIX_EPOCH,
        }])
    }

    async fn delegated_name(&self, name: &str) -> Result<String, PropagationError> {
        Ok(lock(&self.cnames)
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned()))
    }
}

/// A password "hasher" that keeps the password readable: fast, for tests only.
pub struct PlainHasher;

#[async_trait]
impl PasswordHasher for PlainHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        Ok(PasswordHash::new(format!("plain${}", password.expose())))
    }

    async fn verify(&self, password: &Password, hash: &PasswordHash) -> bool {
        hash.as_str().strip_prefix("plain$") == Some(password.expose())
    }
}

/// Tokens of the form `user.expiry-unix.sig`, where sig must be `ok`.
pub struct FakeSigner;

impl TokenSigner for FakeSigner {
    fn sign(&self, claims: TokenClaims) -> ApiToken {
        ApiToken::new(format!(
            "{}.{}.{}.ok",
            claims.user,
            claims.generation,
            claims.expires_at.unix_timestamp()
        ))
    }

    fn verify(&self, token: &str) -> Option<TokenClaims> {
        let mut parts = token.split('.');
        let user = parts.next()?.parse().ok()?;
        let generation = parts.next()?.parse().ok()?;
        let expires = parts.next()?.parse().ok()?;
        (parts.next()? == "ok" && parts.next().is_none()).then_some(())?;
        Some(TokenClaims {
            user,
            generation,
            expires_at: OffsetDateTime::from_unix_timestamp(expires).ok()?,
        })
    }

    fn is_token_shaped(&self, text: &str) -> bool {
        let parts: Vec<&str> = text.split('.').collect();
        parts.len() == 4 && parts[..3].iter().all(|p| p.parse::<i64>().is_ok())
    }
}

// ---------------------------------------------------------------------------------------

/// A service wired to fakes, with handles on each fake.
pub struct Kit {
    /// The service under test.
    pub service: Acmeport,
    /// The in-memory store behind every repository port.
    pub store: Arc<MemoryStore>,
    /// The fake CA.
    pub acme: Arc<FakeAcme>,
    /// The fake key and CSR factory.
    pub csr: Arc<FakeCsr>,
    /// The fake DNS provider.
    pub dns: Arc<FakeDns>,
    /// The fake propagation checker.
    pub propagation: Arc<FakePropagation>,
    /// The fake clock.
    pub clock: Arc<FakeClock>,
}

impl Kit {
    /// A service over fakes, with one DNS provider `fake` as default.
    #[must_use]
    pub fn new() -> Self {
        Self::with_settings(Settings::default())
    }

    /// As [`Self::new`] with the given settings.
    #[must_use]
    pub fn with_settings(settings: Settings) -> Self {
        Self::build(settings, None)
    }

    /// As [`Self::with_settings`], the DNS provider `fake` confined to `zones`.
    #[must_use]
    pub fn with_zones(settings: Settings, zones: &[&str]) -> Self {
        let zones = zones
            .iter()
            .map(|z| DomainName::parse(z).expect("valid zone"))
            .collect();
        Self::build(settings, Some(crate::service::ZoneScope::new(zones)))
    }

    fn build(settings: Settings, zones: Option<crate::service::ZoneScope>) -> Self {
        let store = Arc::new(MemoryStore::new());
        let acme = Arc::new(FakeAcme::new());
        let csr = Arc::new(FakeCsr::default());
        let dns = Arc::new(FakeDns::default());
        let propagation = Arc::new(FakePropagation::default());
        let clock = Arc::new(FakeClock::new());
        let fake = ProviderName::parse("fake").expect("valid name");
        let ports = Ports {
            users: store.clone(),
            accounts: store.clone(),
            orders: store.clone(),
            certificates: store.clone(),
            events: store.clone(),
            tokens: store.clone(),
            acme: acme.clone(),
            csr: csr.clone(),
            inspector: csr.clone(),
            dns: {
                let providers = DnsProviders::new()
                    .with(fake.clone(), dns.clone())
                    .with_default(fake.clone());
                match zones {
                    Some(zones) => providers.with_zones(fake, zones),
                    None => providers,
                }
            },
            propagation: propagation.clone(),
            clock: clock.clone(),
            hasher: Arc::new(PlainHasher),
            signer: Arc::new(FakeSigner),
        };
        let security = SecurityPorts {
            grants: store.clone(),
            api_keys: store.clone(),
            key_secrets: Arc::new(FakeKeySecrets::default()),
            audit: store.clone(),
        };
        Self {
            service: Acmeport::new(ports, settings).with_security(security),
            store,
            acme,
            csr,
            dns,
            propagation,
            clock,
        }
    }
}

impl Default for Kit {
    fn default() -> Self {
        Self::new()
    }
}
