//! Orders: create (with "already exists" detection and reissue), look up, reorder.

use super::accounts::Outcome;
use super::{Acmeport, AuthorizeError, CreateOrderError, LookupError, ReorderError};
use crate::models::{
    AccountId, AccountStatus, AuditAction, ChallengeKind, CsrSubject, Email, Identifiers, KeySpec,
    Listing, NewOrder, Order, OrderId, OrderSpec, OrderStatus, Page, Principal, PrivateKeyPem,
    ProviderName, User,
};
use crate::ports::{CsrError, RepoError};

/// What a user asks for when creating an order (fields parsed at the edge).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateOrder {
    /// The ACME account to order through; must be the caller's.
    pub account: AccountId,
    /// The names of the certificate.
    pub identifiers: Identifiers,
    /// How the names are validated.
    pub challenge: ChallengeKind,
    /// The DNS provider instance; the configured default when `None` (DNS-01 only).
    pub provider: Option<ProviderName>,
    /// The e-mail address for the CSR's subject, if any.
    pub email: Option<Email>,
    /// Subject parts; the account's defaults fill the missing ones.
    pub subject: CsrSubject,
    /// The key type to generate; the configured default when `None`.
    pub key_spec: Option<KeySpec>,
    /// An uploaded CSR, PEM. Its names must equal the identifiers.
    pub csr: Option<String>,
    /// An uploaded private key, PEM, used to build the CSR.
    pub key: Option<PrivateKeyPem>,
    /// When the same order exists already, order a new certificate for it.
    pub reissue: bool,
    /// Renew the certificate on its own before it expires.
    pub auto_renew: bool,
}

impl Acmeport {
    /// Creates an order, or returns the existing one with the same account, ordered
    /// domains, type and email (reissued when `reissue` is set). The order is then worked
    /// in the background.
    ///
    /// # Errors
    ///
    /// Every validation rule of the API has its variant in [`CreateOrderError`].
    pub async fn create_order(
        &self,
        user: &User,
        request: CreateOrder,
    ) -> Result<(Order, Outcome), CreateOrderError> {
        self.create_order_as(&Principal::user(user.clone()), request)
            .await
    }

    /// As [`Self::create_order`] for a caller whose API key may limit the names.
    ///
    /// # Errors
    ///
    /// As [`Self::create_order`].
    pub async fn create_order_as(
        &self,
        principal: &Principal,
        request: CreateOrder,
    ) -> Result<(Order, Outcome), CreateOrderError> {
        let user = &principal.user;
        self.authorize_names_for(principal, &request.identifiers)
            .await
            .map_err(|e| match e {
                AuthorizeError::NotGranted(name) => CreateOrderError::NotGranted(name),
                AuthorizeError::Repo(r) => CreateOrderError::Repo(r),
            })?;
        let account = self
            .ports
            .accounts
            .get(request.account)
            .await?
            .filter(|a| a.user_id == user.id)
            .ok_or(CreateOrderError::AccountNotFound)?;
        if account.status == AccountStatus::Deactivated {
            return Err(CreateOrderError::AccountDeactivated);
        }
        let provider = self.choose_provider(&request)?;
        let (csr, key) = self.check_uploads(&request)?;
        // An order without its own e-mail uses its account's, in the CSR and when
        // looking for the same order.
        let email = request
            .email
            .clone()
            .unwrap_or_else(|| account.email.clone());

        if let Some(mut existing) = self
            .ports
            .orders
            .find_existing(
                user.id,
                account.id,
                &request.identifiers,
                request.challenge,
                Some(email.clone()),
            )
            .await?
        {
            if request.reissue {
                let now = self.now();
                if let Some(reissued) = self
                    .update_order(existing.id(), |o| o.reissue(now).is_ok())
                    .await?
                {
                    existing = reissued;
                    tracing::info!(order.id = %existing.id(), "order reissued");
                    self.audit(
                        principal,
                        AuditAction::OrderReissued,
                        format!("order {}", existing.id()),
                        String::new(),
                    )
                    .await;
                }
            }
            return Ok((existing, Outcome::Existing));
        }

        self.check_order_quota(user.id, &request.identifiers, true)
            .await?;
        let order = self
            .ports
            .orders
            .insert(NewOrder {
                user_id: user.id,
                account_id: account.id,
                spec: OrderSpec {
                    identifiers: request.identifiers,
                    challenge: request.challenge,
                    provider,
                    email: Some(email),
                    subject: request.subject,
                    key_spec: request.key_spec.unwrap_or(self.settings.default_key_spec),
                    csr,
                    key,
                    auto_renew: request.auto_renew,
                },
                created_at: self.now(),
            })
            .await?;
        tracing::info!(order.id = %order.id(), user.id = %user.id, domains = ?order.spec().identifiers.as_slice(), "order created");
        self.signal_work();
        self.audit(
            principal,
            AuditAction::OrderCreated,
            format!("order {}", order.id()),
            format!(
                "domains {}",
                order
                    .spec()
                    .identifiers
                    .as_slice()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        )
        .await;
        Ok((order, Outcome::Created))
    }

    fn choose_provider(
        &self,
        request: &CreateOrder,
    ) -> Result<Option<ProviderName>, CreateOrderError> {
        match request.challenge {
            ChallengeKind::Http01 => {
                if request.identifiers.has_wildcard() {
                    return Err(CreateOrderError::WildcardNeedsDns);
                }
                Ok(None)
            }
            ChallengeKind::Dns01 => {
                let name = request
                    .provider
                    .clone()
                    .or_else(|| self.ports.dns.default_name().cloned())
                    .ok_or_else(|| CreateOrderError::UnknownProvider {
                        name: String::new(),
                        known: self.ports.dns.names(),
                    })?;
                if self.ports.dns.get(&name).is_none() {
                    return Err(CreateOrderError::UnknownProvider {
                        name: name.to_string(),
                        known: self.ports.dns.names(),
                    });
                }
                Ok(Some(name))
            }
        }
    }

    /// Checks an uploaded CSR (names must equal the order's) or key. With a CSR, an
    /// uploaded key is not used.
    fn check_uploads(
        &self,
        request: &CreateOrder,
    ) -> Result<(Option<String>, Option<PrivateKeyPem>), CreateOrderError> {
        if let Some(pem) = &request.csr {
            let (names, _) = self.ports.csr.parse_csr(pem).map_err(|e| match e {
                CsrError::InvalidCsr(reason) => CreateOrderError::InvalidCsr(reason),
                other => CreateOrderError::Internal(other),
            })?;
            if !request.identifiers.same_set(&names)
                || names.len() != request.identifiers.as_slice().len()
            {
                return Err(CreateOrderError::CsrMismatch {
                    csr: names.iter().map(ToString::to_string).collect(),
                });
            }
            return Ok((Some(pem.clone()), None));
        }
        if let Some(key) = &request.key {
            self.ports.csr.check_key(key).map_err(|e| match e {
                CsrError::InvalidKey(reason) => CreateOrderError::InvalidKey(reason),
                other => CreateOrderError::Internal(other),
            })?;
        }
        Ok((None, request.key.clone()))
    }

    /// The user's order with this id.
    ///
    /// # Errors
    ///
    /// [`LookupError::NotFound`] when absent or owned by another user.
    pub async fn get_order(&self, user: &User, id: OrderId) -> Result<Order, LookupError> {
        self.ports
            .orders
            .get(id)
            .await?
            .filter(|o| o.user_id() == user.id)
            .ok_or(LookupError::NotFound("order"))
    }

    /// Turns automatic renewal of the user's order on or off and returns the order.
    ///
    /// # Errors
    ///
    /// [`LookupError::NotFound`] when absent or owned by another user.
    pub async fn set_auto_renew(
        &self,
        user: &User,
        id: OrderId,
        auto_renew: bool,
    ) -> Result<Order, LookupError> {
        let order = self.get_order(user, id).await?;
        if order.spec().auto_renew != auto_renew {
            self.ports.orders.set_auto_renew(id, auto_renew).await?;
            tracing::info!(order.id = %id, auto_renew, "order renewal setting changed");
        }
        self.get_order(user, id).await
    }

    /// A page of the user's orders.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn list_orders(&self, user: &User, page: Page) -> Result<Listing<Order>, RepoError> {
        self.ports.orders.list(user.id, page).await
    }

    /// Orders a new certificate for an existing order (COPY). The certificate issued
    /// before stays valid.
    ///
    /// # Errors
    ///
    /// [`ReorderError::NotFound`], [`ReorderError::StillPending`] while an attempt runs,
    /// [`ReorderError::AccountDeactivated`].
    pub async fn reorder(&self, user: &User, id: OrderId) -> Result<Order, ReorderError> {
        self.reorder_as(&Principal::user(user.clone()), id).await
    }

    /// As [`Self::reorder`] for a caller whose API key may limit the names.
    ///
    /// # Errors
    ///
    /// As [`Self::reorder`], and [`ReorderError::NotGranted`] when the caller may no
    /// longer order one of the names.
    pub async fn reorder_as(
        &self,
        principal: &Principal,
        id: OrderId,
    ) -> Result<Order, ReorderError> {
        let user = &principal.user;
        let order = self.get_order(user, id).await.map_err(|e| match e {
            LookupError::NotFound(_) => ReorderError::NotFound,
            LookupError::Repo(r) => ReorderError::Repo(r),
        })?;
        if order.status() == OrderStatus::Pending {
            return Err(ReorderError::StillPending);
        }
        self.authorize_names_for(principal, &order.spec().identifiers)
            .await
            .map_err(|e| match e {
                AuthorizeError::NotGranted(name) => ReorderError::NotGranted(name),
                AuthorizeError::Repo(r) => ReorderError::Repo(r),
            })?;
        self.check_order_quota(user.id, &order.spec().identifiers, false)
            .await?;
        let account = self.ports.accounts.get(order.account_id()).await?;
        if account.is_none_or(|a| a.status == AccountStatus::Deactivated) {
            return Err(ReorderError::AccountDeactivated);
        }
        let now = self.now();
        let mut refused = false;
        let order = self
            .update_order(order.id(), |o| {
                refused = o.reissue(now).is_err();
                !refused
            })
            .await?
            .ok_or(ReorderError::NotFound)?;
        if refused {
            return Err(ReorderError::StillPending);
        }
        tracing::info!(order.id = %order.id(), attempt = order.state().attempt, "order reissued");
        self.audit(
            principal,
            AuditAction::OrderReissued,
            format!("order {}", order.id()),
            String::new(),
        )
        .await;
        Ok(order)
    }

    /// Applies `change` to the freshest stored copy of the order and stores it when
    /// `change` says so, reading again when a worker or another request wrote in between
    /// (every write is conditional on the version read). `Ok(None)`: the order is gone.
    ///
    /// # Errors
    ///
    /// [`RepoError::Conflict`] when the order kept changing under every try; storage
    /// failures.
    pub(super) async fn update_order(
        &self,
        id: OrderId,
        mut change: impl FnMut(&mut Order) -> bool,
    ) -> Result<Option<Order>, RepoError> {
        for _ in 0..8 {
            let Some(mut order) = self.ports.orders.get(id).await? else {
                return Ok(None);
            };
            if !change(&mut order) {
                return Ok(Some(order));
            }
            let now = self.now();
            order.touched(now);
            match self.ports.orders.save(&order, None, now).await {
                Ok(()) => {
                    order.committed();
                    if order.due_at().is_some_and(|due| due <= now) {
                        self.signal_work();
                    }
                    return Ok(Some(order));
                }
                Err(RepoError::Conflict(_)) => {
                    tracing::debug!(order.id = %id, "the order changed meanwhile; reading it again");
                }
                Err(e) => return Err(e),
            }
        }
        Err(RepoError::Conflict("order"))
    }
}
