//! ACME accounts: register, look up, deregister.

use super::{Acmeport, DeregisterAccountError, LookupError, RegisterAccountError};
use crate::models::{
    AccountId, AccountStatus, AcmeAccount, AuditAction, CsrSubject, DirectoryUrl, Email,
    ExternalAccountBinding, Listing, NewAcmeAccount, Page, Principal, PrivateKeyPem,
    RevocationReason, User,
};
use crate::ports::{AcmeError, RepoError};

/// What a user asks for when registering an ACME account.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterAccount {
    /// The contact address registered at the CA.
    pub email: Email,
    /// The ACME directory; the configured default when `None`.
    pub directory: Option<DirectoryUrl>,
    /// Defaults for the CSRs of this account's orders.
    pub subject: CsrSubject,
    /// The account key; generated when `None`.
    pub key: Option<PrivateKeyPem>,
    /// The External Account Binding, for CAs that require one (ZeroSSL, Google).
    pub eab: Option<ExternalAccountBinding>,
}

/// Whether a call made something new or found what existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Something new was made.
    Created,
    /// What existed was found and returned instead.
    Existing,
}

impl Acmeport {
    /// Registers an ACME account for the user, or returns the one the user already has
    /// for the same email and directory.
    ///
    /// # Errors
    ///
    /// [`RegisterAccountError::Acme`] when the ACME server refuses.
    pub async fn register_account(
        &self,
        user: &User,
        request: RegisterAccount,
    ) -> Result<(AcmeAccount, Outcome), RegisterAccountError> {
        let directory = request
            .directory
            .unwrap_or_else(|| self.settings.default_directory.clone());
        if !user.is_admin && !self.directory_allowed(&directory) {
            return Err(RegisterAccountError::DirectoryNotAllowed(
                directory.to_string(),
            ));
        }
        if let Some(existing) = self
            .ports
            .accounts
            .find(user.id, &request.email, &directory)
            .await?
        {
            return Ok((existing, Outcome::Existing));
        }
        self.check_account_quota(user.id).await?;
        let registered = self
            .ports
            .acme
            .register(&directory, &request.email, request.eab, request.key)
            .await?;
        let inserted = self
            .ports
            .accounts
            .insert(NewAcmeAccount {
                user_id: user.id,
                email: request.email.clone(),
                directory: directory.clone(),
                uri: registered.uri,
                subject: request.subject,
                credentials: registered.credentials,
                created_at: self.now(),
            })
            .await;
        match inserted {
            Ok(account) => {
                tracing::info!(account.id = %account.id, user.id = %user.id, directory = %directory, "ACME account registered");
                self.audit(
                    &Principal::user(user.clone()),
                    AuditAction::AccountRegistered,
                    format!("account {}", account.id),
                    format!("directory {directory}"),
                )
                .await;
                Ok((account, Outcome::Created))
            }
            // A concurrent request registered the same account first.
            Err(RepoError::Duplicate(_)) => {
                let existing = self
                    .ports
                    .accounts
                    .find(user.id, &request.email, &directory)
                    .await?
                    .ok_or(RepoError::NotFound("account"))?;
                Ok((existing, Outcome::Existing))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// True when non-admins may register at `directory`: the configured default, or one
    /// of the allowed directories (any, when the settings list none).
    #[must_use]
    pub fn directory_allowed(&self, directory: &DirectoryUrl) -> bool {
        *directory == self.settings.default_directory
            || self
                .settings
                .allowed_directories
                .as_ref()
                .is_none_or(|list| list.contains(directory))
    }

    /// The user's account with this id.
    ///
    /// # Errors
    ///
    /// [`LookupError::NotFound`] when absent or owned by another user.
    pub async fn get_account(
        &self,
        user: &User,
        id: AccountId,
    ) -> Result<AcmeAccount, LookupError> {
        self.ports
            .accounts
            .get(id)
            .await?
            .filter(|a| a.user_id == user.id)
            .ok_or(LookupError::NotFound("account"))
    }

    /// A page of the user's accounts.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn list_accounts(
        &self,
        user: &User,
        page: Page,
    ) -> Result<Listing<AcmeAccount>, RepoError> {
        self.ports.accounts.list(user.id, page).await
    }

    /// Revokes every valid certificate issued through the account, deactivates it at the
    /// ACME server and marks it deactivated here.
    ///
    /// # Errors
    ///
    /// [`DeregisterAccountError::NotFound`], [`DeregisterAccountError::AlreadyDeactivated`],
    /// and ACME failures (the account stays valid here when the server refused).
    pub async fn deregister_account(
        &self,
        user: &User,
        id: AccountId,
    ) -> Result<AcmeAccount, DeregisterAccountError> {
        let mut account = self.get_account(user, id).await.map_err(|e| match e {
            LookupError::NotFound(_) => DeregisterAccountError::NotFound,
            LookupError::Repo(r) => DeregisterAccountError::Repo(r),
        })?;
        if account.status == AccountStatus::Deactivated {
            return Err(DeregisterAccountError::AlreadyDeactivated);
        }
        for certificate in self
            .ports
            .certificates
            .valid_for_account(account.id)
            .await?
        {
            match self
                .ports
                .acme
                .revoke(
                    &account.credentials,
                    &certificate.info.leaf_pem,
                    RevocationReason::CessationOfOperation,
                )
                .await
            {
                Ok(()) | Err(AcmeError::AlreadyRevoked) => {}
                Err(e) => return Err(e.into()),
            }
            self.record_revocation(&certificate, RevocationReason::CessationOfOperation)
                .await?;
        }
        self.ports.acme.deactivate(&account.credentials).await?;
        account.status = AccountStatus::Deactivated;
        self.ports.accounts.update(&account).await?;
        tracing::info!(account.id = %account.id, "ACME account deactivated");
        self.audit(
            &Principal::user(user.clone()),
            AuditAction::AccountDeactivated,
            format!("account {}", account.id),
            String::new(),
        )
        .await;
        Ok(account)
    }

    /// Rolls the account's key over at the ACME server and stores the new credentials.
    ///
    /// # Errors
    ///
    /// [`DeregisterAccountError::NotFound`], [`DeregisterAccountError::AlreadyDeactivated`],
    /// and ACME failures (the stored key is unchanged then).
    pub async fn roll_account_key(
        &self,
        user: &User,
        id: AccountId,
    ) -> Result<AcmeAccount, DeregisterAccountError> {
        let mut account = self.get_account(user, id).await.map_err(|e| match e {
            LookupError::NotFound(_) => DeregisterAccountError::NotFound,
            LookupError::Repo(r) => DeregisterAccountError::Repo(r),
        })?;
        if account.status == AccountStatus::Deactivated {
            return Err(DeregisterAccountError::AlreadyDeactivated);
        }
        account.credentials = self.ports.acme.roll_key(&account.credentials).await?;
        self.ports.accounts.update(&account).await?;
        tracing::info!(account.id = %account.id, "ACME account key rolled over");
        self.audit(
            &Principal::user(user.clone()),
            AuditAction::AccountKeyRolled,
            format!("account {}", account.id),
            String::new(),
        )
        .await;
        Ok(account)
    }
}
