//! [`InstantAcmeClient`]: the [`AcmeClient`] port over instant-acme.

use crate::account_keys::{account_key, eab_key};
use crate::config::{AcmeClientConfig, AcmeConfigError};
use crate::https::HttpsClient;
use crate::problem::{describe, describe_authorization, problem_type, Failure};
use acmeport_domain::ports::{AcmeClient, AcmeError, AcmeProgress, RegisteredAccount, RenewalInfo};
use acmeport_domain::{
    AccountCredentials, ChallengeKind, ChallengeToSolve, DirectoryUrl, Email,
    ExternalAccountBinding, Identifiers, PrivateKeyPem, RevocationReason,
};
use async_trait::async_trait;
use instant_acme::{
    Account, AccountBuilder, AuthorizationStatus, CertificateIdentifier, ChallengeStatus,
    ChallengeType, Identifier, Key, NewAccount, NewOrder, Order, OrderStatus, RevocationRequest,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

/// Restored accounts kept in memory; past this many the cache starts over. A service has
/// a handful of accounts, so this only bounds memory against misuse.
const ACCOUNT_CACHE_LIMIT: usize = 256;

/// The [`AcmeClient`] port over instant-acme, with its own HTTPS client (configured roots,
/// request timeout), `badNonce` retries around whole operations, and polling that honours
/// `Retry-After`.
pub struct InstantAcmeClient {
    http: HttpsClient,
    config: AcmeClientConfig,
    /// Accounts restored from credentials, keyed by the credentials' JSON, so that a run of
    /// calls for one order does not fetch the directory each time.
    accounts: Mutex<HashMap<String, Account>>,
}

impl std::fmt::Debug for InstantAcmeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The account cache holds credentials: never print it.
        f.debug_struct("InstantAcmeClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl InstantAcmeClient {
    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`AcmeConfigError`] when a configured root is not a PEM certificate or no root is
    /// trusted at all.
    pub fn new(config: AcmeClientConfig) -> Result<Self, AcmeConfigError> {
        Ok(Self {
            http: HttpsClient::new(&config)?,
            config,
            accounts: Mutex::new(HashMap::new()),
        })
    }

    /// Rolls the account key over (RFC 8555 section 7.3.5): a new key is generated and
    /// bound to the account. Returns the new credentials, which must replace the stored
    /// ones; the old key stops working.
    ///
    /// # Errors
    ///
    /// [`AcmeError::Rejected`] when the server refuses, [`AcmeError::Credentials`] when the
    /// stored credentials cannot be used.
    #[tracing::instrument(skip_all)]
    pub async fn update_key(
        &self,
        credentials: &AccountCredentials,
    ) -> Result<AccountCredentials, AcmeError> {
        let new = self
            .retrying("roll the account key over", || async move {
                let mut account = self.account(credentials).await?;
                let new = account.update_key().await?;
                tracing::info!(account = account.id(), "rolled the account key over");
                Ok(new)
            })
            .await?;
        self.forget(credentials);
        serialize(&new)
    }

    fn builder(&self) -> AccountBuilder {
        Account::builder_with_http(Box::new(self.http.clone()))
    }

    /// The account for stored credentials, restored once and then cached.
    async fn account(&self, credentials: &AccountCredentials) -> Result<Account, Failure> {
        if let Some(account) = self.cache().get(credentials.expose()) {
            return Ok(account.clone());
        }
        // serde's message names a position, never the content; still, say only what it is.
        let parsed: instant_acme::AccountCredentials = serde_json::from_str(credentials.expose())
            .map_err(|_| {
            AcmeError::Credentials("not the JSON credentials of an ACME account".into())
        })?;
        let account = self
            .builder()
            .from_credentials(parsed)
            .await
            .map_err(|e| match e {
                instant_acme::Error::KeyRejected | instant_acme::Error::Crypto => Failure::Port(
                    AcmeError::Credentials("the stored account key cannot be used".into()),
                ),
                other => Failure::Acme(other),
            })?;
        let mut cache = self.cache();
        if cache.len() >= ACCOUNT_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(credentials.expose().to_owned(), account.clone());
        Ok(account)
    }

    fn forget(&self, credentials: &AccountCredentials) {
        self.cache().remove(credentials.expose());
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Account>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs an idempotent operation, again from the start while the server keeps
    /// answering `badNonce` after instant-acme's own three attempts.
    async fn retrying<T, F, Fut>(&self, operation: &'static str, mut run: F) -> Result<T, AcmeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut attempt = 1;
        loop {
            match run().await {
                Ok(value) => return Ok(value),
                Err(failure)
                    if failure.is_retryable() && attempt < self.config.bad_nonce_attempts =>
                {
                    tracing::warn!(operation, attempt, reason = %failure, "trying the operation again");
                    attempt += 1;
                }
                Err(failure) => return Err(failure.into_port()),
            }
        }
    }

    async fn order(&self, credentials: &AccountCredentials, url: &str) -> Result<Order, Failure> {
        let account = self.account(credentials).await?;
        Ok(account.order(url.to_owned()).await?)
    }
}

#[async_trait]
impl AcmeClient for InstantAcmeClient {
    #[tracing::instrument(skip_all, fields(directory = %directory))]
    async fn register(
        &self,
        directory: &DirectoryUrl,
        email: &Email,
        eab: Option<ExternalAccountBinding>,
        key: Option<PrivateKeyPem>,
    ) -> Result<RegisteredAccount, AcmeError> {
        let contact = format!("mailto:{email}");
        let eab = eab.as_ref().map(eab_key).transpose()?;
        let own_key = key.as_ref().map(account_key).transpose()?;
        if own_key.is_some() && eab.is_some() {
            // instant-acme binds an external account only to keys it generates itself.
            return Err(AcmeError::Credentials(
                "an own account key cannot be combined with External Account Binding".into(),
            ));
        }
        let (contact, eab, own_key) = (&contact, &eab, &own_key);
        let (account, credentials) = self
            .retrying("register an account", || async move {
                let contacts = [contact.as_str()];
                match own_key {
                    None => {
                        let new = NewAccount {
                            contact: &contacts,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        };
                        Ok(self
                            .builder()
                            .create(&new, directory.as_str().to_owned(), eab.as_ref())
                            .await?)
                    }
                    Some(der) => {
                        // instant-acme registers an own key without contact; the contact is
                        // set right after. A retry finds the account by its key again.
                        let signing = Key::from_pkcs8_der(der.clone_key())?;
                        let (account, credentials) = self
                            .builder()
                            .create_from_key(
                                (signing, PrivateKeyDer::Pkcs8(der.clone_key())),
                                directory.as_str().to_owned(),
                            )
                            .await?;
                        account.update_contacts(&contacts).await?;
                        Ok((account, credentials))
                    }
                }
            })
            .await?;
        tracing::info!(account = account.id(), "registered an ACME account");
        Ok(RegisteredAccount {
            uri: account.id().to_owned(),
            credentials: serialize(&credentials)?,
        })
    }

    #[tracing::instrument(skip_all, fields(names = identifiers.as_slice().len()))]
    async fn place_order(
        &self,
        account: &AccountCredentials,
        identifiers: &Identifiers,
        replaces: Option<String>,
    ) -> Result<String, AcmeError> {
        // Wildcards go into the order as `*.example.com` (RFC 8555 section 7.1.3); their
        // authorizations come back as the base name with the wildcard flag.
        let ids: Vec<Identifier> = identifiers
            .as_slice()
            .iter()
            .map(|name| Identifier::Dns(name.as_str().to_owned()))
            .collect();
        let ids = &ids;
        let replaces = replaces
            .map(|id| match id.split_once('.') {
                Some((aki, serial)) if !aki.is_empty() && !serial.is_empty() => {
                    Ok(CertificateIdentifier {
                        authority_key_identifier: aki.to_owned().into(),
                        serial: serial.to_owned().into(),
                    })
                }
                _ => Err(AcmeError::Rejected(format!(
                    "unusable ARI certificate id `{id}`"
                ))),
            })
            .transpose()?;
        let replaces = &replaces;
        let url = self
            .retrying("place an order", || async move {
                let acme = self.account(account).await?;
                let mut request = NewOrder::new(ids);
                if let Some(id) = replaces {
                    request = request.replaces(id.clone());
                }
                let order = acme.new_order(&request).await?;
                Ok(order.url().to_owned())
            })
            .await?;
        tracing::info!(order = %url, common_name = %identifiers.common_name(), "placed an ACME order");
        Ok(url)
    }

    #[tracing::instrument(skip_all, fields(order = %order_url, kind = %kind))]
    async fn challenges(
        &self,
        account: &AccountCredentials,
        order_url: &str,
        kind: ChallengeKind,
    ) -> Result<Vec<ChallengeToSolve>, AcmeError> {
        let wanted = challenge_type(kind)?;
        let wanted = &wanted;
        self.retrying("list the challenges", || async move {
            let mut order = self.order(account, order_url).await?;
            let mut found = Vec::new();
            let mut authorizations = order.authorizations();
            while let Some(authz) = authorizations.next().await {
                let mut authz = authz?;
                let identifier = authz.identifier().to_string();
                match authz.status {
                    AuthorizationStatus::Valid => {
                        tracing::debug!(%identifier, "authorization already valid");
                        continue;
                    }
                    AuthorizationStatus::Pending => {}
                    _ => {
                        return Err(
                            AcmeError::ValidationFailed(describe_authorization(&authz)).into()
                        )
                    }
                }
                let Some(challenge) = authz.challenge(wanted.clone()) else {
                    return Err(AcmeError::Rejected(format!(
                        "the server offers no {} challenge for {identifier}",
                        kind.acme_name()
                    ))
                    .into());
                };
                let key_authorization = challenge.key_authorization();
                found.push(ChallengeToSolve {
                    identifier,
                    kind,
                    token: challenge.token.clone(),
                    key_authorization: key_authorization.as_str().to_owned(),
                    dns_value: key_authorization.dns_value(),
                });
            }
            tracing::debug!(count = found.len(), "challenges to solve");
            Ok(found)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(order = %order_url, kind = %kind))]
    async fn answer(
        &self,
        account: &AccountCredentials,
        order_url: &str,
        kind: ChallengeKind,
    ) -> Result<AcmeProgress, AcmeError> {
        let wanted = challenge_type(kind)?;
        let wanted = &wanted;
        self.retrying("answer the challenges", || async move {
            let mut order = self.order(account, order_url).await?;
            match order.state().status {
                OrderStatus::Pending => {}
                OrderStatus::Ready | OrderStatus::Processing | OrderStatus::Valid => {
                    tracing::debug!("challenges validated");
                    return Ok(AcmeProgress::Done);
                }
                OrderStatus::Invalid => return Err(validation_failure(&mut order).await.into()),
            }
            let mut authorizations = order.authorizations();
            while let Some(authz) = authorizations.next().await {
                let mut authz = authz?;
                let identifier = authz.identifier().to_string();
                match authz.status {
                    AuthorizationStatus::Valid => continue,
                    AuthorizationStatus::Pending => {}
                    _ => {
                        return Err(
                            AcmeError::ValidationFailed(describe_authorization(&authz)).into()
                        )
                    }
                }
                let Some(mut challenge) = authz.challenge(wanted.clone()) else {
                    return Err(AcmeError::Rejected(format!(
                        "the server offers no {} challenge for {identifier}",
                        kind.acme_name()
                    ))
                    .into());
                };
                match challenge.status {
                    ChallengeStatus::Pending => {
                        challenge.set_ready().await?;
                        tracing::info!(%identifier, "challenge answered");
                    }
                    // Answered before (a resumed order): answering again is not allowed.
                    ChallengeStatus::Processing | ChallengeStatus::Valid => {
                        tracing::debug!(%identifier, "challenge already answered");
                    }
                    ChallengeStatus::Invalid => {
                        let reason = challenge
                            .error
                            .as_ref()
                            .map_or_else(|| "challenge is invalid".to_owned(), describe);
                        return Err(
                            AcmeError::ValidationFailed(format!("{identifier}: {reason}")).into(),
                        );
                    }
                }
            }
            // One look after answering: a fast CA is done already.
            let status = order.refresh().await?.status;
            match status {
                OrderStatus::Ready | OrderStatus::Processing | OrderStatus::Valid => {
                    tracing::info!("challenges validated, order ready");
                    Ok(AcmeProgress::Done)
                }
                OrderStatus::Invalid => Err(validation_failure(&mut order).await.into()),
                OrderStatus::Pending => Ok(AcmeProgress::NotYet { retry_after: None }),
            }
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(order = %order_url))]
    async fn finalize(
        &self,
        account: &AccountCredentials,
        order_url: &str,
        csr_der: &[u8],
    ) -> Result<AcmeProgress, AcmeError> {
        self.retrying("finalize the order", || async move {
            let mut order = self.order(account, order_url).await?;
            match order.state().status {
                OrderStatus::Ready => {
                    order.finalize_csr(csr_der).await?;
                    tracing::info!("order finalized");
                }
                OrderStatus::Processing | OrderStatus::Valid => {
                    tracing::debug!("order finalized before");
                }
                OrderStatus::Pending => {
                    return Err(AcmeError::Rejected(
                        "the order cannot be finalized: its authorizations are still pending"
                            .into(),
                    )
                    .into())
                }
                OrderStatus::Invalid => return Err(validation_failure(&mut order).await.into()),
            }
            if order.state().status == OrderStatus::Processing {
                order.refresh().await?;
            }
            match order.state().status {
                OrderStatus::Valid => {
                    tracing::info!("certificate issued");
                    Ok(AcmeProgress::Done)
                }
                OrderStatus::Invalid => {
                    let reason = order
                        .state()
                        .error
                        .as_ref()
                        .map_or_else(|| "no reason given".to_owned(), describe);
                    Err(AcmeError::Rejected(format!("the CA refused to issue: {reason}")).into())
                }
                _ => Ok(AcmeProgress::NotYet { retry_after: None }),
            }
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn renewal_info(
        &self,
        account: &AccountCredentials,
        leaf_pem: &str,
    ) -> Result<Option<RenewalInfo>, AcmeError> {
        let der = CertificateDer::from_pem_slice(leaf_pem.as_bytes())
            .map_err(|e| AcmeError::Rejected(format!("unreadable certificate: {e}")))?;
        let id = CertificateIdentifier::try_from(&der)
            .map_err(|e| {
                AcmeError::Rejected(format!("no ARI identifier for the certificate: {e}"))
            })?
            .into_owned();
        let id = &id;
        let answer = self
            .retrying("fetch renewal information", || async move {
                let acme = self.account(account).await?;
                match acme.renewal_info(id).await {
                    Ok(found) => Ok(Some(found)),
                    Err(instant_acme::Error::Unsupported(_)) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        Ok(answer.map(|(info, retry_after)| RenewalInfo {
            cert_id: id.to_string(),
            window_start: info.suggested_window.start,
            window_end: info.suggested_window.end,
            retry_after: Some(retry_after),
            explanation_url: info.explanation_url,
        }))
    }

    #[tracing::instrument(skip_all, fields(order = %order_url))]
    async fn certificate(
        &self,
        account: &AccountCredentials,
        order_url: &str,
    ) -> Result<String, AcmeError> {
        self.retrying("download the certificate", || async move {
            let mut order = self.order(account, order_url).await?;
            let status = order.state().status;
            if status != OrderStatus::Valid {
                return Err(AcmeError::Rejected(format!(
                    "the order is {}, it has no certificate yet",
                    order_status(status)
                ))
                .into());
            }
            match order.certificate().await? {
                Some(chain) => {
                    tracing::info!("certificate downloaded");
                    Ok(chain)
                }
                None => Err(AcmeError::Rejected("the order has no certificate yet".into()).into()),
            }
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(reason = reason.code()))]
    async fn revoke(
        &self,
        account: &AccountCredentials,
        leaf_pem: &str,
        reason: RevocationReason,
    ) -> Result<(), AcmeError> {
        let leaf = CertificateDer::from_pem_slice(leaf_pem.as_bytes()).map_err(|e| {
            AcmeError::Rejected(format!("the certificate to revoke cannot be read: {e}"))
        })?;
        let leaf = &leaf;
        self.retrying("revoke a certificate", || async move {
            let acme = self.account(account).await?;
            acme.revoke(&RevocationRequest {
                certificate: leaf,
                reason: Some(revocation_reason(reason)),
            })
            .await?;
            tracing::info!("certificate revoked");
            Ok(())
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn deactivate(&self, account: &AccountCredentials) -> Result<(), AcmeError> {
        self.retrying("deactivate the account", || async move {
            let acme = self.account(account).await?;
            // instant-acme discards the server's answer to the deactivation request, so a
            // refusal (a nonce rejected three times, say) would pass for success. Ask the
            // server afterwards: it refuses every request of a deactivated account.
            acme.clone().deactivate().await?;
            match acme.order(acme.id().to_owned()).await {
                Err(e) if problem_type(&e) == Some("unauthorized") => {
                    tracing::info!(account = acme.id(), "account deactivated");
                    Ok(())
                }
                Err(e) if problem_type(&e).is_some() => Err(e.into()),
                // The account object answered (and is no order): it is still active, so
                // the whole operation is tried again.
                Ok(_) | Err(instant_acme::Error::Json(_)) => Err(Failure::NotApplied(
                    "the ACME server did not deactivate the account",
                )),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
        self.forget(account);
        Ok(())
    }

    async fn roll_key(
        &self,
        account: &AccountCredentials,
    ) -> Result<AccountCredentials, AcmeError> {
        self.update_key(account).await
    }
}

/// Why an order is invalid: its own problem, and each authorization that failed with its
/// challenges' problems.
async fn validation_failure(order: &mut Order) -> AcmeError {
    let mut reasons = Vec::new();
    if let Some(problem) = &order.state().error {
        reasons.push(describe(problem));
    }
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        match authz {
            Ok(authz) if authz.status != AuthorizationStatus::Valid => {
                reasons.push(describe_authorization(&authz));
            }
            Ok(_) => {}
            Err(e) => {
                reasons.push(format!("cannot fetch an authorization: {e}"));
                break;
            }
        }
    }
    if reasons.is_empty() {
        reasons.push("the order became invalid and the server gave no reason".into());
    }
    let reason = reasons.join("; ");
    tracing::warn!(%reason, "validation failed");
    AcmeError::ValidationFailed(reason)
}

fn challenge_type(kind: ChallengeKind) -> Result<ChallengeType, AcmeError> {
    match kind {
        ChallengeKind::Http01 => Ok(ChallengeType::Http01),
        ChallengeKind::Dns01 => Ok(ChallengeType::Dns01),
        other => Err(AcmeError::Rejected(format!(
            "challenge type {} is not supported",
            other.acme_name()
        ))),
    }
}

fn revocation_reason(reason: RevocationReason) -> instant_acme::RevocationReason {
    use instant_acme::RevocationReason as R;
    match reason.code() {
        1 => R::KeyCompromise,
        3 => R::AffiliationChanged,
        4 => R::Superseded,
        5 => R::CessationOfOperation,
        _ => R::Unspecified,
    }
}

fn order_status(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Pending => "pending",
        OrderStatus::Ready => "ready",
        OrderStatus::Processing => "processing",
        OrderStatus::Valid => "valid",
        OrderStatus::Invalid => "invalid",
    }
}

fn serialize(
    credentials: &instant_acme::AccountCredentials,
) -> Result<AccountCredentials, AcmeError> {
    serde_json::to_string(credentials)
        .map(AccountCredentials::new)
        .map_err(|e| AcmeError::Transport(Box::new(e)))
}
