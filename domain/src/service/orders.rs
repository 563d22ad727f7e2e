//! Orders: create (with "already exists" detection and reissue), look up, reorder.

use super::accounts::Outcome;
use super::{Acmeport, CreateOrderError, LookupError, ReorderError};
use crate::models::{
    AccountId, AccountStatus, ChallengeKind, CsrSubject, Email, Identifiers, KeySpec, Listing,
    NewOrder, Order, OrderId, OrderSpec, OrderStatus, Page, PrivateKeyPem, ProviderName, User,
};
use crate::ports::{CsrError, RepoError};

/// What a user asks for when creating an order (fields parsed at the edge).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateOrder {
    pub account: AccountId,
    pub identifiers: Identifiers,
    pub challenge: ChallengeKind,
    /// The DNS provider instance; the configured default when `None` (DNS-01 only).
    pub provider: Option<ProviderName>,
    pub email: Option<Email>,
    pub subject: CsrSubject,
    /// The key type to generate; the configured default when `None`.
    pub key_spec: Option<KeySpec>,
    /// An uploaded CSR, PEM. Its names must equal the identifiers.
    pub csr: Option<String>,
    /// An uploaded private key, PEM, used to build the CSR.
    pub key: Option<PrivateKeyPem>,
    /// When the same order exists already, order a new certificate for it.
    pub reissue: bool,
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

        if let Some(mut existing) = self
            .ports
            .orders
            .find_existing(
                user.id,
                account.id,
                &request.identifiers,
                request.challenge,
                request.email.clone(),
            )
            .await?
        {
            if request.reissue && existing.reissue().is_ok() {
                existing.updated_at = self.now();
                self.ports.orders.save(&existing, None, self.now()).await?;
                tracing::info!(order.id = %existing.id, "order reissued");
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
                    email: request.email,
                    subject: request.subject,
                    key_spec: request.key_spec.unwrap_or(self.settings.default_key_spec),
                    csr,
                    key,
                },
                created_at: self.now(),
            })
            .await?;
        tracing::info!(order.id = %order.id, user.id = %user.id, domains = ?order.spec.identifiers.as_slice(), "order created");
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
            .filter(|o| o.user_id == user.id)
            .ok_or(LookupError::NotFound("order"))
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
        let mut order = self.get_order(user, id).await.map_err(|e| match e {
            LookupError::NotFound(_) => ReorderError::NotFound,
            LookupError::Repo(r) => ReorderError::Repo(r),
        })?;
        if order.status() == OrderStatus::Pending {
            return Err(ReorderError::StillPending);
        }
        self.check_order_quota(user.id, &order.spec.identifiers, false)
            .await?;
        let account = self.ports.accounts.get(order.account_id).await?;
        if account.is_none_or(|a| a.status == AccountStatus::Deactivated) {
            return Err(ReorderError::AccountDeactivated);
        }
        order.reissue().map_err(|_| ReorderError::StillPending)?;
        order.updated_at = self.now();
        self.ports.orders.save(&order, None, self.now()).await?;
        tracing::info!(order.id = %order.id, attempt = order.state().attempt, "order reissued");
        Ok(order)
    }
}
