//! The built engine: the domain service over real adapters, the embedder's shortcuts
//! (one owner, accounts, orders, certificates as futures and streams of order events),
//! and what it serves (HTTP-01, and the REST API with feature `http`).

use crate::background::{Background, BackgroundSettings, Signals};
use crate::http01::Http01Responder;
use acmeport_domain::ports::RepoError;
use acmeport_domain::service::{CreateOrderError, LookupError, RegisterAccountError};
use acmeport_domain::{
    AccountId, AcmeAccount, Acmeport, Certificate, CertificateId, ChallengeKind, CreateOrder,
    CsrSubject, Email, Identifiers, KeySpec, NewUser, Order, OrderId, OrderStatus, OrderStep,
    PasswordHash, ProviderName, RegisterAccount, User, Username,
};
use acmeport_store::Store;
use futures::Stream;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, OnceCell};

/// The user that owns what an embedding program orders through the [`Engine`]'s
/// shortcuts. It is created on first use, disabled and without a usable password: no
/// password, token or API key logs in as it, and it is no admin.
pub const OWNER_USERNAME: &str = "acmeport-embedded";

/// How often an order-event stream reads its order when no worker of this engine
/// reports on it (orders worked by another instance on the same database).
const EVENT_POLL: Duration = Duration::from_secs(1);

/// A shortcut of the engine failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// An argument does not parse (a name, an e-mail, a provider name); says which.
    #[error("{0}")]
    Invalid(String),
    /// The engine's owner cannot be used: a user of that name exists and can log in.
    #[error(
        "the user `{OWNER_USERNAME}` exists and can log in: it is not this engine's owner; \
         rename it or disable it"
    )]
    OwnerTaken,
    /// Registering the ACME account failed.
    #[error(transparent)]
    Account(#[from] RegisterAccountError),
    /// Creating the order failed.
    #[error(transparent)]
    Order(#[from] CreateOrderError),
    /// The order or certificate does not exist.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The order ended `invalid`; the CA's or provider's reason.
    #[error("the order failed: {0}")]
    OrderFailed(String),
    /// The order's certificate was revoked.
    #[error("the order's certificate is revoked")]
    Revoked,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// What happened to an order, as its [`Engine::order_events`] stream tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrderEvent {
    /// The order is pending at this step; `detail` says what it waits for (the
    /// nameservers still missing a record, the CA's validation, a retry).
    Progress {
        /// The last step it finished.
        step: OrderStep,
        /// What it waits for, if anything.
        detail: Option<String>,
    },
    /// The certificate is issued and stored (the last event).
    Valid {
        /// Read it with [`Engine::certificate_by_id`].
        certificate: CertificateId,
    },
    /// The order failed (the last event).
    Invalid {
        /// Why: the CA's or the DNS provider's refusal.
        error: String,
    },
    /// The order's certificate was revoked (the last event).
    Revoked,
}

impl OrderEvent {
    /// True for the events that end the stream.
    #[must_use]
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Progress { .. })
    }

    fn of(order: &Order) -> Self {
        match (order.status(), order.resolved_cert_id()) {
            (OrderStatus::Valid, Some(certificate)) => Self::Valid { certificate },
            (OrderStatus::Invalid, _) => Self::Invalid {
                error: order.error().unwrap_or("no reason recorded").to_owned(),
            },
            (OrderStatus::Revoked, _) => Self::Revoked,
            _ => Self::Progress {
                step: order.step(),
                detail: order.state().detail.clone(),
            },
        }
    }
}

/// What to order: names, challenge, key. Built from an account and names; DNS-01
/// through the default provider unless told otherwise.
#[derive(Debug, Clone)]
pub struct OrderRequest {
    inner: CreateOrder,
}

impl OrderRequest {
    /// A DNS-01 order for `names` (wildcards allowed) with `account`, through the default
    /// DNS provider, renewed automatically.
    ///
    /// # Errors
    ///
    /// [`EngineError::Invalid`] naming the first name that is not a domain name.
    pub fn new<S: AsRef<str>>(account: &AcmeAccount, names: &[S]) -> Result<Self, EngineError> {
        let identifiers =
            Identifiers::parse(names).map_err(|e| EngineError::Invalid(e.to_string()))?;
        Ok(Self {
            inner: CreateOrder {
                account: account.id,
                identifiers,
                challenge: ChallengeKind::Dns01,
                provider: None,
                email: None,
                subject: CsrSubject::default(),
                key_spec: None,
                csr: None,
                key: None,
                reissue: false,
                auto_renew: true,
            },
        })
    }

    /// DNS-01 through the provider instance `provider`.
    ///
    /// # Errors
    ///
    /// [`EngineError::Invalid`] when `provider` is not a provider name.
    pub fn dns01(mut self, provider: &str) -> Result<Self, EngineError> {
        let name =
            ProviderName::parse(provider).map_err(|e| EngineError::Invalid(e.to_string()))?;
        self.inner.challenge = ChallengeKind::Dns01;
        self.inner.provider = Some(name);
        Ok(self)
    }

    /// HTTP-01: the CA fetches `http://<name>/.well-known/acme-challenge/<token>`, which
    /// [`Engine::http01`] answers where you mount it.
    #[must_use]
    pub fn http01(mut self) -> Self {
        self.inner.challenge = ChallengeKind::Http01;
        self.inner.provider = None;
        self
    }

    /// The key type of the certificate (the default is the engine's, ECDSA P-256 unless
    /// set in its settings).
    #[must_use]
    pub fn key_spec(mut self, spec: KeySpec) -> Self {
        self.inner.key_spec = Some(spec);
        self
    }

    /// Whether the certificate is renewed on its own before it expires (default true).
    #[must_use]
    pub fn auto_renew(mut self, auto_renew: bool) -> Self {
        self.inner.auto_renew = auto_renew;
        self
    }

    /// When the same order exists already, order a new certificate for it.
    #[must_use]
    pub fn reissue(mut self, reissue: bool) -> Self {
        self.inner.reissue = reissue;
        self
    }

    /// The domain's request, for every field this type does not set.
    #[must_use]
    pub fn into_inner(self) -> CreateOrder {
        self.inner
    }
}

impl From<OrderRequest> for CreateOrder {
    fn from(request: OrderRequest) -> Self {
        request.inner
    }
}

/// An issued certificate with its private key, as PEM texts.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// The stored certificate, with its validity, names and renewal plan.
    pub certificate: Certificate,
}

impl IssuedCertificate {
    /// The leaf followed by its issuers: what a TLS server sends.
    #[must_use]
    pub fn fullchain_pem(&self) -> String {
        let info = &self.certificate.info;
        let mut pem = info.leaf_pem.clone();
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        pem.push_str(&info.chain_pem);
        pem
    }

    /// The private key, PEM; `None` when the order brought its own CSR.
    #[must_use]
    pub fn key_pem(&self) -> Option<&str> {
        self.certificate.key.as_ref().map(|k| k.expose())
    }
}

pub(crate) struct Inner {
    pub service: Acmeport,
    pub store: Store,
    pub signals: Signals,
    pub background: BackgroundSettings,
    pub owner: OnceCell<User>,
    /// A temporary database lives as long as the engine.
    #[cfg(feature = "sqlite")]
    pub _temporary: Option<tempfile::TempDir>,
}

/// An acmeport engine: the service over its adapters. Cheap to clone.
///
/// Built by [`crate::Builder`]. Nothing runs in the background until
/// [`Engine::start`]; orders are only stored until then.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts the background work on the current tokio runtime: the order workers
    /// (issuance and renewals) and the lifecycle task (expiry warnings, webhooks). Stop
    /// it with [`Background::stop`].
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[must_use]
    pub fn start(&self) -> Background {
        Background::spawn(
            &self.inner.service,
            &self.inner.background,
            &self.inner.signals,
        )
    }

    /// The domain service, with every use case (users, grants, API keys, revocation,
    /// listings) for programs that serve several people.
    #[must_use]
    pub fn service(&self) -> &Acmeport {
        &self.inner.service
    }

    /// The store (for metrics, readiness probes and tools).
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The HTTP-01 responder to mount where the CA connects (port 80 of each name).
    #[must_use]
    pub fn http01(&self) -> Http01Responder {
        Http01Responder::new(self.inner.service.ports().tokens.clone())
    }

    /// Wakes an idle worker: an order became due now. The service's use cases already
    /// call it for the orders they create or change; a program that writes orders
    /// through its own store calls it itself.
    pub fn notify_new_work(&self) {
        self.inner.signals.new_work.notify_one();
    }

    /// The owner of what this engine's shortcuts create ([`OWNER_USERNAME`]), created on
    /// first use: disabled (nobody logs in as it) and no admin.
    ///
    /// # Errors
    ///
    /// [`EngineError::OwnerTaken`] when a user of that name exists and can log in;
    /// storage failures.
    pub async fn owner(&self) -> Result<User, EngineError> {
        self.inner
            .owner
            .get_or_try_init(|| self.find_or_create_owner())
            .await
            .cloned()
    }

    async fn find_or_create_owner(&self) -> Result<User, EngineError> {
        let users = &self.inner.service.ports().users;
        let name = Username::parse(OWNER_USERNAME).expect("the owner's name is valid");
        let existing = match users.by_username(&name).await? {
            Some(user) => Some(user),
            None => {
                let inserted = users
                    .insert(NewUser {
                        username: name.clone(),
                        // Not a PHC string: no password verifies against it.
                        password_hash: PasswordHash::new("!"),
                        is_admin: false,
                        created_at: self.inner.service.ports().clock.now(),
                    })
                    .await;
                match inserted {
                    Ok(mut user) => {
                        user.disabled = true;
                        users.update(&user).await?;
                        tracing::info!(user.id = %user.id, "created the embedded owner");
                        return Ok(user);
                    }
                    // Another engine on the same database was first.
                    Err(RepoError::Duplicate(_)) => users.by_username(&name).await?,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        match existing {
            Some(user) if user.disabled && !user.is_admin => Ok(user),
            _ => Err(EngineError::OwnerTaken),
        }
    }

    /// Registers an ACME account for `email` at the engine's directory (or returns the
    /// one registered before with the same e-mail and directory).
    ///
    /// # Errors
    ///
    /// [`EngineError::Invalid`] for a bad e-mail, [`EngineError::Account`] when the CA
    /// refuses.
    pub async fn register_account(&self, email: &str) -> Result<AcmeAccount, EngineError> {
        let email = Email::parse(email).map_err(|e| EngineError::Invalid(e.to_string()))?;
        self.register_account_with(RegisterAccount {
            email,
            directory: None,
            subject: CsrSubject::default(),
            key: None,
            eab: None,
        })
        .await
    }

    /// [`Self::register_account`] with every option of the domain (another directory,
    /// External Account Binding, an account key, CSR subject defaults).
    ///
    /// # Errors
    ///
    /// [`EngineError::Account`] when the CA refuses.
    pub async fn register_account_with(
        &self,
        request: RegisterAccount,
    ) -> Result<AcmeAccount, EngineError> {
        let owner = self.owner().await?;
        let (account, _) = self.inner.service.register_account(&owner, request).await?;
        Ok(account)
    }

    /// The owner's account with this id.
    ///
    /// # Errors
    ///
    /// [`EngineError::Lookup`] when it does not exist.
    pub async fn account(&self, id: AccountId) -> Result<AcmeAccount, EngineError> {
        let owner = self.owner().await?;
        Ok(self.inner.service.get_account(&owner, id).await?)
    }

    /// Creates the order (or returns the same one placed before); workers then take it
    /// through the CA. Follow it with [`Self::order_events`] or [`Self::certificate`].
    ///
    /// # Errors
    ///
    /// [`EngineError::Order`] with the rule it broke (unknown provider, ...).
    pub async fn order(&self, request: OrderRequest) -> Result<Order, EngineError> {
        let owner = self.owner().await?;
        let (order, _) = self
            .inner
            .service
            .create_order(&owner, request.into_inner())
            .await?;
        Ok(order)
    }

    /// The order with this id, as stored now.
    ///
    /// # Errors
    ///
    /// [`EngineError::Lookup`] when it does not exist.
    pub async fn get_order(&self, id: OrderId) -> Result<Order, EngineError> {
        self.inner
            .service
            .ports()
            .orders
            .get(id)
            .await?
            .ok_or(EngineError::Lookup(LookupError::NotFound("order")))
    }

    /// The certificate with this id, with its key.
    ///
    /// # Errors
    ///
    /// [`EngineError::Lookup`] when it does not exist.
    pub async fn certificate_by_id(
        &self,
        id: CertificateId,
    ) -> Result<IssuedCertificate, EngineError> {
        let certificate = self
            .inner
            .service
            .ports()
            .certificates
            .get(id)
            .await?
            .ok_or(EngineError::Lookup(LookupError::NotFound("certificate")))?;
        Ok(IssuedCertificate { certificate })
    }

    /// What happens to the order from now on: its current state first, then every
    /// change a worker leaves it in (a step, a wait, the end), ending with
    /// [`OrderEvent::Valid`], [`OrderEvent::Invalid`] or [`OrderEvent::Revoked`].
    ///
    /// Workers of this engine report each order they let go of; orders worked by another
    /// instance on the same database are read every second. Without
    /// [`Engine::start`] (here or elsewhere) nothing moves.
    ///
    /// The stream yields an error and ends when the order cannot be read.
    pub fn order_events(
        &self,
        order: OrderId,
    ) -> impl Stream<Item = Result<OrderEvent, EngineError>> + Send + 'static {
        struct State {
            engine: Engine,
            order: OrderId,
            worked: broadcast::Receiver<OrderId>,
            last: Option<OrderEvent>,
            done: bool,
        }
        impl State {
            /// Until a worker reports on this order (or on many, when this receiver
            /// lagged), at most [`EVENT_POLL`].
            async fn wait_for_news(&mut self) {
                let news = async {
                    loop {
                        match self.worked.recv().await {
                            Ok(id) if id == self.order => return,
                            Ok(_) => {}
                            Err(broadcast::error::RecvError::Lagged(_)) => return,
                            Err(broadcast::error::RecvError::Closed) => {
                                std::future::pending::<()>().await;
                            }
                        }
                    }
                };
                let _ = tokio::time::timeout(EVENT_POLL, news).await;
            }
        }

        let state = State {
            engine: self.clone(),
            order,
            // Subscribed before the first read, so no report between read and wait is lost.
            worked: self.inner.signals.worked.subscribe(),
            last: None,
            done: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            if state.done {
                return None;
            }
            loop {
                if state.last.is_some() {
                    state.wait_for_news().await;
                }
                let event = match state.engine.get_order(state.order).await {
                    Ok(order) => OrderEvent::of(&order),
                    Err(EngineError::Repo(e)) => {
                        tracing::warn!(order.id = %state.order, error = %e, "cannot read the order; trying again");
                        tokio::time::sleep(EVENT_POLL).await;
                        continue;
                    }
                    Err(e) => {
                        state.done = true;
                        return Some((Err(e), state));
                    }
                };
                if state.last.as_ref() != Some(&event) {
                    state.done = event.is_final();
                    state.last = Some(event.clone());
                    return Some((Ok(event), state));
                }
            }
        })
    }

    /// Waits until the order is settled and returns its certificate with the key.
    ///
    /// # Errors
    ///
    /// [`EngineError::OrderFailed`] with the reason when the order ends `invalid`,
    /// [`EngineError::Revoked`], or the failure to read the order.
    pub async fn certificate(&self, order: OrderId) -> Result<IssuedCertificate, EngineError> {
        use futures::StreamExt as _;
        let events = self.order_events(order);
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            match event? {
                OrderEvent::Valid { certificate } => {
                    return self.certificate_by_id(certificate).await;
                }
                OrderEvent::Invalid { error } => return Err(EngineError::OrderFailed(error)),
                OrderEvent::Revoked => return Err(EngineError::Revoked),
                OrderEvent::Progress { .. } => {}
            }
        }
        Err(EngineError::Lookup(LookupError::NotFound("order")))
    }

    /// The REST API over this engine (what `acmeport serve` serves), to serve with
    /// [`acmeport_http::serve_with_limits`] or combine with your warp routes. Its
    /// readiness probe pings the database.
    #[cfg(feature = "http")]
    #[must_use]
    pub fn api(&self, config: acmeport_http::HttpConfig) -> acmeport_http::Api {
        acmeport_http::Api::new(
            self.inner.service.clone(),
            Arc::new(crate::api::StoreReadiness::new(self.inner.store.clone())),
            config,
        )
    }
}
