//! Ports: the traits through which the domain reaches the outside world.
//!
//! Each port is a small `#[async_trait]` trait that adapters implement. The service holds
//! them as `Arc<dyn Port>`. With the `mocks` feature, mockall mocks (`MockAcmeClient`, ...)
//! are generated for tests.
//!
//! What every implementation must guarantee, besides the contract written on each method:
//!
//! - **Shared and concurrent.** One instance serves every worker and request at once
//!   (`Send + Sync`, called concurrently, also for the same order or record).
//! - **Safe to call again.** A worker that dies or times out resumes from the order's last
//!   committed step, so any call may be repeated with the same arguments. Methods written
//!   "idempotent" must give the same outcome when repeated; the others must at least do no
//!   harm (an extra ACME order that is never finalized, for example).
//! - **Failures in the port's own error type, classified honestly.** A failure worth
//!   another try (network, timeout, a server's 5xx or rate limit) must be the variant the
//!   port calls transient ([`AcmeError::Transport`], [`AcmeError::RateLimited`],
//!   [`DnsError::Transport`], [`PropagationError::Lookup`]): the workflow retries those
//!   with backoff within its retry budget. The other variants of those ports are final and
//!   end the order `invalid` with their text, so that text must be readable by the user.
//!   A [`RepoError`] makes the worker let the order go; it is resumed from its last
//!   committed step.
//! - **No secret leaves through errors or logs**: keys, passwords, tokens and credentials
//!   never appear in an error's text or a log line.

use crate::models::{
    AccountCredentials, AccountId, AcmeAccount, Certificate, CertificateId, CertificateInfo,
    ChallengeKind, ChallengeToSolve, CsrSubject, Delivery, DirectoryUrl, DomainEvent, DomainName,
    Email, EventId, EventKind, ExternalAccountBinding, Identifiers, KeySpec, Listing,
    NewAcmeAccount, NewCertificate, NewOrder, NewUser, Order, OrderId, Page, Password,
    PasswordHash, PrivateKeyPem, RevocationReason, StoredEvent, TxtRecord, User, UserId, Username,
    WorkerId,
};
use crate::models::{
    ApiKey, ApiKeyId, AuditEntry, AuditFilter, DomainGrant, GrantId, NamePattern, NewApiKey,
    NewAuditEntry,
};
use crate::BoxError;
use async_trait::async_trait;
#[cfg(any(test, feature = "mocks"))]
use mockall::automock;
use std::time::Duration;
use time::OffsetDateTime;

// ---------------------------------------------------------------------------------------
// Storage

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// A unique constraint was hit (for example an existing username); names what.
    #[error("{0} already exists")]
    Duplicate(&'static str),
    /// The row to update does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Another worker holds the order's lease; this worker must stop working it.
    #[error("the lease on the order is held by another worker")]
    LeaseLost,
    /// The row changed since it was read (its version moved on): read it again.
    #[error("the {0} was changed by another request; read it again")]
    Conflict(&'static str),
    /// The database failed.
    #[error("storage failed")]
    Backend(#[source] BoxError),
}

/// Users.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait UserRepo: Send + Sync {
    /// Stores a new user.
    ///
    /// # Errors
    ///
    /// MUST return [`RepoError::Duplicate`] when the username is taken.
    async fn insert(&self, user: NewUser) -> Result<User, RepoError>;

    /// The user with this id.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`] only; absence is `Ok(None)`.
    async fn get(&self, id: UserId) -> Result<Option<User>, RepoError>;

    /// The user with this name.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`] only; absence is `Ok(None)`.
    async fn by_username(&self, username: &Username) -> Result<Option<User>, RepoError>;

    /// How many users exist (to tell a first start).
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn count(&self) -> Result<u64, RepoError>;

    /// A page of every user, ordered by id.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn list(&self, page: Page) -> Result<Listing<User>, RepoError>;

    /// Replaces the stored password hash, admin flag, disabled flag and generation.
    ///
    /// # Errors
    ///
    /// MUST return [`RepoError::NotFound`] when the user is gone.
    async fn update(&self, user: &User) -> Result<(), RepoError>;

    /// Deletes the user with everything they own (accounts, orders, certificates, grants,
    /// API keys).
    ///
    /// # Errors
    ///
    /// MUST return [`RepoError::NotFound`] when the user is gone.
    async fn delete(&self, id: UserId) -> Result<(), RepoError>;
}

/// The name patterns granted to users.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait GrantRepo: Send + Sync {
    /// The user's grants, ordered by id.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn grants(&self, user: UserId) -> Result<Vec<DomainGrant>, RepoError>;

    /// Grants `pattern` to the user.
    ///
    /// # Errors
    ///
    /// MUST return [`RepoError::Duplicate`] when the user has the pattern already.
    async fn grant(
        &self,
        user: UserId,
        pattern: &NamePattern,
        at: OffsetDateTime,
    ) -> Result<DomainGrant, RepoError>;

    /// Removes the user's grant of `pattern`.
    ///
    /// # Errors
    ///
    /// MUST return [`RepoError::NotFound`] when the user has no such grant.
    async fn revoke_grant(&self, user: UserId, pattern: &NamePattern)
        -> Result<GrantId, RepoError>;
}

/// Named API keys (their secrets only as digests).
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait ApiKeyRepo: Send + Sync {
    /// Stores a new key.
    ///
    /// # Errors
    ///
    /// MUST return [`RepoError::Duplicate`] when the user has a key of that name.
    async fn insert(&self, key: NewApiKey) -> Result<ApiKey, RepoError>;

    /// The key with this id, whoever owns it.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`] only; absence is `Ok(None)`.
    async fn get(&self, id: ApiKeyId) -> Result<Option<ApiKey>, RepoError>;

    /// A page of the user's keys, ordered by id.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn list(&self, user: UserId, page: Page) -> Result<Listing<ApiKey>, RepoError>;

    /// Deletes the key.
    ///
    /// # Errors
    ///
    /// MUST return [`RepoError::NotFound`] when it is gone.
    async fn delete(&self, id: ApiKeyId) -> Result<(), RepoError>;
}

/// Makes and checks the secrets of API keys.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait ApiKeySecrets: Send + Sync {
    /// A new random secret (at least 256 bits), as the text the client sends.
    fn generate(&self) -> crate::models::ApiToken;

    /// The digest stored for `secret`; equal secrets give equal digests.
    fn digest(&self, secret: &str) -> crate::models::ApiKeyDigest;
}

/// The audit log: who did what and when. Entries are only added, never changed.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends an entry.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn record(&self, entry: NewAuditEntry) -> Result<(), RepoError>;

    /// A page of entries matching `filter`, ordered by id.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn list(&self, filter: AuditFilter, page: Page)
        -> Result<Listing<AuditEntry>, RepoError>;
}

/// ACME accounts.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait AccountRepo: Send + Sync {
    /// Stores a new account.
    ///
    /// # Errors
    ///
    /// MUST return [`RepoError::Duplicate`] when the user already has an account for this
    /// email and directory.
    async fn insert(&self, account: NewAcmeAccount) -> Result<AcmeAccount, RepoError>;

    /// The account with this id, whoever owns it.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`] only; absence is `Ok(None)`.
    async fn get(&self, id: AccountId) -> Result<Option<AcmeAccount>, RepoError>;

    /// The user's account for this email and directory.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`] only.
    async fn find(
        &self,
        user: UserId,
        email: &Email,
        directory: &DirectoryUrl,
    ) -> Result<Option<AcmeAccount>, RepoError>;

    /// A page of the user's accounts, ordered by id.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn list(&self, user: UserId, page: Page) -> Result<Listing<AcmeAccount>, RepoError>;

    /// Replaces the stored account (status, credentials).
    ///
    /// # Errors
    ///
    /// [`RepoError::NotFound`] when it is gone.
    async fn update(&self, account: &AcmeAccount) -> Result<(), RepoError>;
}

/// Orders, their durable progress and the leases of the workers that run them.
///
/// Orders are read back with [`Order::restore`] exactly as they were saved (every field of
/// [`crate::models::OrderState`], the version included), so that a resumed worker continues
/// where the last one stopped. Writes are conditional on the version they were read at,
/// and a worker's writes also on its lease: two workers never both advance one order.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait OrderRepo: Send + Sync {
    /// Stores a new pending order.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn insert(&self, order: NewOrder) -> Result<Order, RepoError>;

    /// The order with this id, whoever owns it.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`] only; absence is `Ok(None)`.
    async fn get(&self, id: OrderId) -> Result<Option<Order>, RepoError>;

    /// An order of this user with the same account, ordered list of identifiers, challenge
    /// type and email ("already exists").
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn find_existing(
        &self,
        user: UserId,
        account: AccountId,
        identifiers: &Identifiers,
        challenge: ChallengeKind,
        email: Option<Email>,
    ) -> Result<Option<Order>, RepoError>;

    /// A page of the user's orders, ordered by id.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn list(&self, user: UserId, page: Page) -> Result<Listing<Order>, RepoError>;

    /// Stores the order's state, including `due_at`, if the stored version is still
    /// `order.version()`, and stores the version after it (the caller then calls
    /// [`Order::committed`]). With `worker`, the write is also fenced: it succeeds only
    /// while that worker holds the lease, renews the lease to `lease_until`, and appends
    /// the step to the order's history with the worker's name.
    ///
    /// The order's [`Order::pending_events`] are stored in the same transaction (an event
    /// whose key is stored already is skipped), fenced or not.
    ///
    /// # Errors
    ///
    /// MUST return [`RepoError::LeaseLost`] when `worker` no longer holds the lease,
    /// [`RepoError::Conflict`] when the stored version moved on, and
    /// [`RepoError::NotFound`] when the order is gone.
    async fn save(
        &self,
        order: &Order,
        worker: Option<WorkerId>,
        lease_until: OffsetDateTime,
    ) -> Result<(), RepoError>;

    /// Claims one order that is due (`due_at` at or before `now`) and whose lease is free
    /// or expired, for `worker` until `lease_until`. Two workers never hold the same
    /// order. Among the users with due orders, the one served least recently by this
    /// repository goes first (so one user's thousand orders do not starve another's one),
    /// and a user's earliest due order is taken. The cost grows with the due orders, not
    /// with all stored ones.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn claim(
        &self,
        worker: &WorkerId,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<Order>, RepoError>;

    /// Extends the worker's lease.
    ///
    /// # Errors
    ///
    /// MUST return [`RepoError::LeaseLost`] when the worker no longer holds it.
    async fn renew(
        &self,
        order: OrderId,
        worker: &WorkerId,
        lease_until: OffsetDateTime,
    ) -> Result<(), RepoError>;

    /// Gives the lease up (the order may be claimed again at once if still pending).
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn release(&self, order: OrderId, worker: &WorkerId) -> Result<(), RepoError>;

    /// Turns automatic renewal of the order on or off; writes that setting only, so it
    /// never races a worker's progress.
    ///
    /// # Errors
    ///
    /// MUST return [`RepoError::NotFound`] when the order is gone.
    async fn set_auto_renew(&self, order: OrderId, auto_renew: bool) -> Result<(), RepoError>;
    /// The earliest time an order can be claimed: its `due_at`, or for a leased order the
    /// later of that and its lease's end (a worker with nothing to do sleeps until then).
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn next_due(&self) -> Result<Option<OffsetDateTime>, RepoError>;
}

/// Issued certificates.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait CertificateRepo: Send + Sync {
    /// Stores a certificate. Idempotent: when the order already has a certificate with
    /// the same fingerprint (a resumed order storing again), that one is returned.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn insert(&self, certificate: NewCertificate) -> Result<Certificate, RepoError>;

    /// The certificate with this id, whoever owns it.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`] only; absence is `Ok(None)`.
    async fn get(&self, id: CertificateId) -> Result<Option<Certificate>, RepoError>;

    /// A page of the user's certificates, ordered by id.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn list(&self, user: UserId, page: Page) -> Result<Listing<Certificate>, RepoError>;

    /// The valid certificates issued through an account.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn valid_for_account(&self, account: AccountId) -> Result<Vec<Certificate>, RepoError>;

    /// Marks a certificate revoked at `at` for `reason`, and stores `event` (its
    /// `certificate.revoked`) in the same transaction.
    ///
    /// # Errors
    ///
    /// [`RepoError::NotFound`] when it is gone.
    async fn mark_revoked(
        &self,
        id: CertificateId,
        at: OffsetDateTime,
        reason: RevocationReason,
        event: DomainEvent,
    ) -> Result<(), RepoError>;

    /// Valid certificates whose `not_after` lies in `(now, before]`, soonest first, at
    /// most `limit` (an indexed range scan: its cost follows the certificates in range).
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn valid_expiring(
        &self,
        now: OffsetDateTime,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Certificate>, RepoError>;

    /// Deletes the certificate and its key.
    ///
    /// # Errors
    ///
    /// [`RepoError::NotFound`] when it is gone.
    async fn delete(&self, id: CertificateId) -> Result<(), RepoError>;
}

/// Lifecycle events and the durable outbox of their webhook deliveries.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait EventRepo: Send + Sync {
    /// Stores an event with a new pending delivery, unless one with the same key exists.
    /// True when it was stored now.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn record(&self, event: DomainEvent) -> Result<bool, RepoError>;

    /// A page of the user's events, ordered by id.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn list(&self, user: UserId, page: Page) -> Result<Listing<StoredEvent>, RepoError>;

    /// Claims up to `limit` pending events due at `now` whose lease is free or expired,
    /// for `worker` until `lease_until`, oldest first. Two workers never hold one event.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn claim_due(
        &self,
        worker: &WorkerId,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, RepoError>;

    /// Records the outcome of a delivery attempt and releases the lease, fenced on it.
    ///
    /// # Errors
    ///
    /// MUST return [`RepoError::LeaseLost`] when `worker` no longer holds the event.
    async fn update_delivery(
        &self,
        id: EventId,
        worker: &WorkerId,
        delivery: &Delivery,
    ) -> Result<(), RepoError>;
}

/// The HTTP-01 tokens being served, shared by every instance.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait ChallengeTokenStore: Send + Sync {
    /// Serves `key_authorization` for `token` from now on (idempotent).
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn put(&self, token: &str, key_authorization: &str) -> Result<(), RepoError>;

    /// The key authorization for `token`, if served.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn get(&self, token: &str) -> Result<Option<String>, RepoError>;

    /// Stops serving `token` (absent tokens are fine).
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn remove(&self, token: &str) -> Result<(), RepoError>;
}

/// What an HTTP-01 responder answers for a token ([`answer_http01`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Http01Answer {
    /// The key authorization to serve (200, `text/plain`).
    KeyAuthorization(String),
    /// Not a token being served, or not a token at all (404, empty body).
    Unknown,
    /// The store could not be read (500, so that the CA's problem document tells it
    /// apart from an unknown token); already logged.
    StoreFailed,
}

/// The one HTTP-01 lookup every responder makes: a `token` that cannot be an ACME token
/// is not looked up, a failing store is logged loudly (the validator retries nothing).
pub async fn answer_http01(store: &dyn ChallengeTokenStore, token: &str) -> Http01Answer {
    if !crate::models::is_http01_token(token) {
        return Http01Answer::Unknown;
    }
    match store.get(token).await {
        Ok(Some(key_authorization)) => {
            tracing::debug!(%token, "answered HTTP-01 challenge");
            Http01Answer::KeyAuthorization(key_authorization)
        }
        Ok(None) => {
            tracing::debug!(%token, "HTTP-01 challenge for an unknown token");
            Http01Answer::Unknown
        }
        Err(error) => {
            tracing::error!(%token, error = %error, "cannot read the HTTP-01 token store");
            Http01Answer::StoreFailed
        }
    }
}

// ---------------------------------------------------------------------------------------
// ACME

/// A failure talking to the ACME server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcmeError {
    /// The server refused the request; the text is its problem document made readable
    /// (type, detail and subproblems).
    #[error("the ACME server refused: {0}")]
    Rejected(String),
    /// An authorization or the order ended invalid; the text says which and why.
    #[error("validation failed: {0}")]
    ValidationFailed(String),
    /// Polling did not reach the wanted state in time.
    #[error("timed out waiting for the ACME server: {0}")]
    Timeout(String),
    /// The certificate was already revoked.
    #[error("the certificate is already revoked")]
    AlreadyRevoked,
    /// The stored credentials cannot be used.
    #[error("invalid account credentials: {0}")]
    Credentials(String),
    /// Network or protocol failure: no answer within the request deadline, a connection
    /// error, a body over the size cap, or a 5xx answer. Worth another try.
    #[error("ACME request failed: {0}")]
    Transport(#[source] BoxError),
    /// The server asks the client to slow down: a `429` answer or a
    /// `urn:ietf:params:acme:error:rateLimited` problem. `retry_after` is the server's
    /// `Retry-After` (seconds or HTTP date, turned into a wait from now) when it sent one.
    /// Worth another try, not before `retry_after`.
    #[error("the ACME server is rate limiting: {detail}")]
    RateLimited {
        /// The server's explanation.
        detail: String,
        /// How long the server asked to wait, when it said so.
        retry_after: Option<Duration>,
    },
}

impl AcmeError {
    /// True when another try later may succeed ([`AcmeError::Transport`],
    /// [`AcmeError::RateLimited`]); everything else is the server's final word.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transport(_) | Self::RateLimited { .. })
    }

    /// How long the server asked to wait before the next try, when it said so.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Where a step the CA works on stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeProgress {
    /// Finished: the order is ready (after `answer`) or the certificate issued (after
    /// `finalize`).
    Done,
    /// The CA still works; ask again after `retry_after` when it said so.
    NotYet {
        /// The CA's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
}

/// A CA's suggestion of when to renew a certificate (ACME Renewal Information).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalInfo {
    /// The ARI certificate identifier (`base64url(AKI).base64url(serial)`).
    pub cert_id: String,
    /// The start of the suggested renewal window.
    pub window_start: OffsetDateTime,
    /// The end of the suggested renewal window.
    pub window_end: OffsetDateTime,
    /// When to ask again (the response's `Retry-After`).
    pub retry_after: Option<Duration>,
    /// The CA's explanation, when it gave one.
    pub explanation_url: Option<String>,
}

/// What registering an account returns.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredAccount {
    /// The account URL.
    pub uri: String,
    /// The credentials to store (encrypted) and pass back on every call.
    pub credentials: AccountCredentials,
}

/// The ACME protocol (RFC 8555), per account.
///
/// The workflow calls these again after a crash, a lost lease or a transient error, so
/// every method that changes state at the CA reads the server's state first: a challenge
/// already answered is not answered again, an order already finalized is not finalized
/// again. [`AcmeError::Transport`], [`AcmeError::RateLimited`] and [`AcmeError::Timeout`]
/// are retried; every other error ends the order with its text.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait AcmeClient: Send + Sync {
    /// Registers an account at `directory`, agreeing to the terms of service; with an
    /// External Account Binding when given; with `key` as account key when given.
    ///
    /// # Errors
    ///
    /// [`AcmeError::Rejected`] when the server refuses (bad contact, EAB required, ...).
    async fn register(
        &self,
        directory: &DirectoryUrl,
        email: &Email,
        eab: Option<ExternalAccountBinding>,
        key: Option<PrivateKeyPem>,
    ) -> Result<RegisteredAccount, AcmeError>;

    /// Places a new order for the identifiers and returns its URL. `replaces` is the ARI
    /// identifier (RFC 9773) of the certificate this order renews, sent as `replaces`.
    ///
    /// # Errors
    ///
    /// [`AcmeError::Rejected`] when the server refuses (for example a deactivated account).
    async fn place_order(
        &self,
        account: &AccountCredentials,
        identifiers: &Identifiers,
        replaces: Option<String>,
    ) -> Result<String, AcmeError>;

    /// The challenges of `kind` still to answer for the order at `order_url`: one per
    /// authorization that is not valid yet (an already valid one needs none).
    ///
    /// # Errors
    ///
    /// [`AcmeError::Rejected`] when the server offers no challenge of that kind.
    async fn challenges(
        &self,
        account: &AccountCredentials,
        order_url: &str,
        kind: ChallengeKind,
    ) -> Result<Vec<ChallengeToSolve>, AcmeError>;

    /// Tells the server the challenges of `kind` are ready, without waiting for the
    /// validation: [`AcmeProgress::Done`] once the order is ready for finalization,
    /// [`AcmeProgress::NotYet`] while the server still validates (call again later).
    /// Idempotent: challenges already answered are not answered again.
    ///
    /// # Errors
    ///
    /// [`AcmeError::ValidationFailed`] with the server's reason when an authorization
    /// ends invalid.
    async fn answer(
        &self,
        account: &AccountCredentials,
        order_url: &str,
        kind: ChallengeKind,
    ) -> Result<AcmeProgress, AcmeError>;

    /// Finalizes the order with the CSR (DER), without waiting for the issuance:
    /// [`AcmeProgress::Done`] once the certificate is issued, [`AcmeProgress::NotYet`]
    /// while the server still processes (call again later; an order already finalized is
    /// not finalized again).
    ///
    /// # Errors
    ///
    /// [`AcmeError::Rejected`] (for example a CSR the server refuses).
    async fn finalize(
        &self,
        account: &AccountCredentials,
        order_url: &str,
        csr_der: &[u8],
    ) -> Result<AcmeProgress, AcmeError>;

    /// The renewal window the CA suggests for the certificate (leaf PEM) through ACME
    /// Renewal Information (RFC 9773), with its identifier for `replaces`. `Ok(None)` when
    /// the CA offers no ARI.
    ///
    /// # Errors
    ///
    /// [`AcmeError::Transport`] and the like; the caller falls back to the lifetime rule.
    async fn renewal_info(
        &self,
        account: &AccountCredentials,
        leaf_pem: &str,
    ) -> Result<Option<RenewalInfo>, AcmeError>;

    /// Downloads the issued chain, PEM, leaf first.
    ///
    /// # Errors
    ///
    /// [`AcmeError::Rejected`] when the order has no certificate.
    async fn certificate(
        &self,
        account: &AccountCredentials,
        order_url: &str,
    ) -> Result<String, AcmeError>;

    /// Revokes the certificate (leaf PEM) with a reason.
    ///
    /// # Errors
    ///
    /// [`AcmeError::Rejected`], for example when it is already revoked.
    async fn revoke(
        &self,
        account: &AccountCredentials,
        leaf_pem: &str,
        reason: RevocationReason,
    ) -> Result<(), AcmeError>;

    /// Deactivates the account at the server.
    ///
    /// # Errors
    ///
    /// [`AcmeError::Rejected`].
    async fn deactivate(&self, account: &AccountCredentials) -> Result<(), AcmeError>;

    /// Rolls the account key over (RFC 8555 section 7.3.5) and returns the new
    /// credentials, which replace the stored ones: the old key stops working.
    ///
    /// # Errors
    ///
    /// [`AcmeError::Rejected`] when the server refuses.
    async fn roll_key(&self, account: &AccountCredentials)
        -> Result<AccountCredentials, AcmeError>;
}

// ---------------------------------------------------------------------------------------
// Keys and CSRs

/// A failure building keys, CSRs or reading certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    /// The PEM is not a usable private key; says why.
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    /// The PEM is not a usable CSR; says why.
    #[error("invalid CSR: {0}")]
    InvalidCsr(String),
    /// The certificate chain cannot be read.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// Key generation or signing failed.
    #[error("key operation failed")]
    Internal(#[source] BoxError),
}

pub use crate::models::Csr;

/// Keys and certificate signing requests.
///
/// Pure computation (no I/O besides randomness); a failure is the input's fault
/// ([`CsrError::InvalidKey`], [`CsrError::InvalidCsr`]) or a bug
/// ([`CsrError::Internal`]), never worth a retry. No key material appears in an error.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait CsrFactory: Send + Sync {
    /// Generates a new private key, PEM.
    ///
    /// # Errors
    ///
    /// [`CsrError::Internal`].
    async fn generate_key(&self, spec: KeySpec) -> Result<PrivateKeyPem, CsrError>;

    /// Checks that a user's PEM (PKCS#1 or PKCS#8, RSA or EC) is a usable key.
    ///
    /// # Errors
    ///
    /// MUST return [`CsrError::InvalidKey`] for anything else.
    fn check_key(&self, key: &PrivateKeyPem) -> Result<(), CsrError>;

    /// Builds and signs a CSR: the first identifier as common name, all of them as SANs
    /// in the order given, and the subject.
    ///
    /// # Errors
    ///
    /// [`CsrError::InvalidKey`], [`CsrError::Internal`].
    fn build_csr(
        &self,
        key: &PrivateKeyPem,
        identifiers: &Identifiers,
        subject: &CsrSubject,
        email: Option<Email>,
    ) -> Result<Csr, CsrError>;

    /// Parses an uploaded CSR, verifies its signature and returns its DNS names with the
    /// CSR itself.
    ///
    /// # Errors
    ///
    /// MUST return [`CsrError::InvalidCsr`] for anything unreadable or badly signed.
    fn parse_csr(&self, pem: &str) -> Result<(Vec<DomainName>, Csr), CsrError>;
}

/// Reads facts from issued certificates.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait CertificateInspector: Send + Sync {
    /// Splits a PEM chain (leaf first) and reads the leaf.
    ///
    /// # Errors
    ///
    /// MUST return [`CsrError::InvalidCertificate`] when the chain cannot be read.
    fn inspect(&self, chain_pem: &str) -> Result<CertificateInfo, CsrError>;

    /// The public key (DER `SubjectPublicKeyInfo`) of the first certificate or
    /// certificate request in `pem`, to compare an issued certificate with the CSR it was
    /// issued for.
    ///
    /// # Errors
    ///
    /// MUST return [`CsrError::InvalidCertificate`] when `pem` holds neither.
    fn public_key(&self, pem: &str) -> Result<Vec<u8>, CsrError>;
}

// ---------------------------------------------------------------------------------------
// DNS

/// A failure of a DNS provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// No zone of this provider contains the name.
    #[error("no zone found for {0}")]
    ZoneNotFound(String),
    /// The provider refused the change; the text is its reason (with its error codes).
    #[error("the DNS provider refused: {0}")]
    Rejected(String),
    /// The provider refused the credentials (wrong or missing key, token or TSIG secret,
    /// or too few permissions); the text is its reason.
    #[error("the DNS provider refused the credentials: {0}")]
    Unauthorized(String),
    /// Network or protocol failure.
    #[error("DNS provider request failed: {0}")]
    Transport(#[source] BoxError),
}

/// A place where TXT records for DNS-01 can be written.
///
/// Two values on one name must coexist (a wildcard and its apex share
/// `_acme-challenge.<name>`), and cleanup removes only the given value. Both methods are
/// idempotent and may be called concurrently for records on the same name (a provider
/// that rewrites a whole record set serialises its read-modify-write). A refusal that
/// retrying cannot fix ([`DnsError::Rejected`], [`DnsError::Unauthorized`],
/// [`DnsError::ZoneNotFound`]) ends the order; [`DnsError::Transport`] is retried.
///
/// Library users can plug in a provider of their own:
///
/// ```
/// use acmeport_domain::ports::{DnsError, DnsProvider};
/// use acmeport_domain::TxtRecord;
/// use async_trait::async_trait;
///
/// struct MyDns;
///
/// #[async_trait]
/// impl DnsProvider for MyDns {
///     async fn present(&self, record: &TxtRecord) -> Result<(), DnsError> {
///         println!("add TXT {} {}", record.name, record.value);
///         Ok(())
///     }
///     async fn cleanup(&self, record: &TxtRecord) -> Result<(), DnsError> {
///         println!("remove TXT {} {}", record.name, record.value);
///         Ok(())
///     }
/// }
/// ```
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait DnsProvider: Send + Sync {
    /// Adds the value to the TXT set of the name, keeping other values. Presenting a value
    /// that is already there succeeds. Returns once the provider accepted the change
    /// (Route53: `INSYNC`).
    ///
    /// # Errors
    ///
    /// [`DnsError::ZoneNotFound`], [`DnsError::Rejected`], [`DnsError::Transport`].
    async fn present(&self, record: &TxtRecord) -> Result<(), DnsError>;

    /// Removes this value only; other values of the name stay. Removing a value that is
    /// already gone succeeds.
    ///
    /// # Errors
    ///
    /// [`DnsError::ZoneNotFound`], [`DnsError::Rejected`], [`DnsError::Transport`].
    async fn cleanup(&self, record: &TxtRecord) -> Result<(), DnsError>;
}

/// A failure of the propagation check itself (not "not yet visible").
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PropagationError {
    /// The zone's nameservers cannot be found.
    #[error("cannot find the authoritative nameservers of {0}")]
    NoNameservers(String),
    /// Resolution failed.
    #[error("DNS lookup failed: {0}")]
    Lookup(#[source] BoxError),
}

/// What one authoritative nameserver answered for a TXT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameserverAnswer {
    /// The server as shown to people: `ns1.example.com (192.0.2.53)`, or its address
    /// when servers are configured.
    pub server: String,
    /// True when its answer holds the value.
    pub serves: bool,
    /// The TXT values it answered (empty for no record or no answer).
    pub values: Vec<String>,
    /// Why it gave no usable answer (timeout, refusal, unresolvable name), if so.
    pub error: Option<String>,
    /// When it was asked.
    pub asked_at: OffsetDateTime,
}

/// Checks that a TXT value is served by every authoritative nameserver.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait PropagationChecker: Send + Sync {
    /// Asks each authoritative nameserver of the record's zone (following a CNAME on the
    /// name) and returns every server's answer, in a stable order. A server that cannot
    /// be asked is an answer that does not serve the value, with its `error`.
    ///
    /// # Errors
    ///
    /// [`PropagationError`] when the check cannot be made at all (no nameserver found).
    async fn check(&self, record: &TxtRecord) -> Result<Vec<NameserverAnswer>, PropagationError>;

    /// The nameservers that do not serve the value yet (their [`NameserverAnswer::server`]
    /// labels). Empty means propagated.
    ///
    /// # Errors
    ///
    /// [`PropagationError`] when the check cannot be made at all.
    async fn missing(&self, record: &TxtRecord) -> Result<Vec<String>, PropagationError> {
        Ok(self
            .check(record)
            .await?
            .into_iter()
            .filter(|answer| !answer.serves)
            .map(|answer| answer.server)
            .collect())
    }

    /// The name whose TXT set the CA will read for `name`: the end of its CNAME chain
    /// (delegated validation, `_acme-challenge.example.com CNAME ...`), or `name` itself
    /// when it has no CNAME. Records are written there.
    ///
    /// # Errors
    ///
    /// [`PropagationError::Lookup`] when the lookup fails (absence of a CNAME is not a
    /// failure).
    async fn delegated_name(&self, name: &str) -> Result<String, PropagationError>;
}

// ---------------------------------------------------------------------------------------
// Webhooks

/// A configured webhook endpoint, as the domain sees it (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// Identifies the endpoint in delivery records.
    pub url: String,
    /// The events it wants; `None` means all.
    pub events: Option<Vec<EventKind>>,
}

impl WebhookEndpoint {
    /// True when the endpoint wants events of `kind`.
    #[must_use]
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&kind))
    }
}

/// A failed webhook delivery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The endpoint answered with a status other than 2xx.
    #[error("the endpoint answered {status}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// Its Retry-After, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The endpoint could not be reached or did not answer in time.
    #[error("delivery failed: {0}")]
    Transport(String),
}

/// Sends signed event notifications to the configured endpoints.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// The configured endpoints.
    fn endpoints(&self) -> Vec<WebhookEndpoint>;

    /// Delivers `event` to the endpoint with this URL, signed with its secret.
    ///
    /// # Errors
    ///
    /// [`WebhookError`] when the endpoint did not accept it.
    async fn send(&self, endpoint: &str, event: &StoredEvent) -> Result<(), WebhookError>;
}

// ---------------------------------------------------------------------------------------
// Time, passwords, API tokens

/// The time source, so tests can drive time.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> OffsetDateTime;

    /// Waits for `duration`.
    async fn sleep(&self, duration: Duration);

    /// A random number in `[0, 1)`, for jitter: retries and renewals spread out instead
    /// of arriving together. Test clocks make it predictable.
    fn random(&self) -> f64;
}

/// A failure hashing a password.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError(#[source] pub BoxError);

/// Slow salted password hashing.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password.
    ///
    /// # Errors
    ///
    /// [`HashError`] when the hasher fails.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// True when the password matches the hash. Malformed hashes are `false`.
    async fn verify(&self, password: &Password, hash: &PasswordHash) -> bool;
}

/// A decoded, verified API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaims {
    /// The user the token authenticates.
    pub user: UserId,
    /// The user's generation when the token was issued; a token of an older generation
    /// (the password changed, the user was disabled) is refused.
    pub generation: i64,
    /// When the token stops being accepted.
    pub expires_at: OffsetDateTime,
}

/// Signed, expiring API tokens.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait TokenSigner: Send + Sync {
    /// A token for `user` valid until `expires_at`.
    fn sign(&self, claims: TokenClaims) -> crate::models::ApiToken;

    /// The claims of a token whose signature is good, whatever its expiry (the caller
    /// checks expiry against its clock); `None` for anything tampered or malformed.
    fn verify(&self, token: &str) -> Option<TokenClaims>;

    /// True when `text` has the shape of this signer's tokens, whoever signed it. Such a
    /// text is a token that does not verify (another key, tampered): it is refused as a
    /// token and never looked up, nor logged, as a username.
    fn is_token_shaped(&self, text: &str) -> bool;
}

// ---------------------------------------------------------------------------------------
// Quotas

/// What a user holds and has done, for per-user quotas.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait UsageCounter: Send + Sync {
    /// ACME accounts the user registered (deactivated ones included: each cost a
    /// registration at the CA).
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn accounts(&self, user: UserId) -> Result<u64, RepoError>;

    /// The user's orders that are `pending` (queued or being worked).
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn orders_in_flight(&self, user: UserId) -> Result<u64, RepoError>;

    /// The user's orders created at or after `since`.
    ///
    /// # Errors
    ///
    /// [`RepoError::Backend`].
    async fn orders_since(&self, user: UserId, since: OffsetDateTime) -> Result<u64, RepoError>;
}
