//! Who may do what: domain grants and the name check of orders, user management
//! (passwords, disabling, deleting), named API keys, the audit log, and the checks of the
//! workflow that keep records inside the names and zones an order may touch.

use super::{Acmeport, AuthError, LookupError};
use crate::models::{
    ApiKey, ApiKeyId, ApiKeyScope, ApiToken, AuditAction, AuditEntry, AuditFilter,
    ChallengeToSolve, DomainGrant, DomainName, Identifiers, Listing, NamePattern, NewApiKey,
    NewAuditEntry, Order, Page, Password, Principal, ProviderName, User, UserId,
};
use crate::ports::{ApiKeyRepo, ApiKeySecrets, AuditLog, GrantRepo, RepoError};
use std::sync::Arc;
use time::OffsetDateTime;

/// The ports of grants, API keys and the audit log. A service built without them
/// ([`Acmeport::new`] alone) knows no grants (so, unless any name is allowed, only admins
/// may order), cannot make API keys, and writes audit entries to the log only.
#[derive(Clone)]
pub struct SecurityPorts {
    /// Name patterns granted to users.
    pub grants: Arc<dyn GrantRepo>,
    /// Named API keys.
    pub api_keys: Arc<dyn ApiKeyRepo>,
    /// Makes and checks API key secrets.
    pub key_secrets: Arc<dyn ApiKeySecrets>,
    /// The audit log.
    pub audit: Arc<dyn AuditLog>,
}

/// A name of an order is not covered by the caller's grants (or API key scope).
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error("domain `{0}` is not granted to this user")]
    /// A name is not covered; names it.
    NotGranted(String),
    #[error(transparent)]
    /// Storage failed.
    Repo(#[from] RepoError),
}

/// Managing users, grants, API keys or reading the audit log failed.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// Absent, or not visible to the caller: one answer for both.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller may not do this (not an admin, an API key, a wrong current password).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The input breaks a rule; the text names the field.
    #[error("{0}")]
    Invalid(String),
    #[error("{0} already exists")]
    /// Something of that name exists already; names what.
    Duplicate(&'static str),
    /// Grants, keys or the audit log are not wired into this service.
    #[error("{0} are not available in this service")]
    Unavailable(&'static str),
    #[error(transparent)]
    /// Hashing a password failed.
    Hash(#[from] crate::ports::HashError),
    #[error(transparent)]
    /// Storage failed.
    Repo(RepoError),
}

impl From<RepoError> for ManageError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Duplicate(what) => Self::Duplicate(what),
            RepoError::NotFound(what) => Self::NotFound(what),
            other => Self::Repo(other),
        }
    }
}

impl From<LookupError> for ManageError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::NotFound(what) => Self::NotFound(what),
            LookupError::Repo(r) => Self::Repo(r),
        }
    }
}

/// An admin's change to a user (`PATCH /api/users/<id>`); `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserChange {
    /// Disable (true) or enable (false) the user.
    pub disabled: Option<bool>,
    /// Make the user an admin (true) or not (false).
    pub admin: Option<bool>,
}

/// A new API key as the caller asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateApiKey {
    /// Its name, unique among the caller's keys.
    pub name: String,
    /// When it stops working; never when `None`.
    pub expires_at: Option<OffsetDateTime>,
    /// What it may do.
    pub scope: ApiKeyScope,
}

/// The longest API key name.
const MAX_KEY_NAME: usize = 100;

/// The prefix of API key secrets, so that they are told from tokens and usernames.
pub const API_KEY_PREFIX: &str = "apk_";

impl Acmeport {
    /// Adds the ports of grants, API keys and the audit log.
    #[must_use]
    pub fn with_security(mut self, ports: SecurityPorts) -> Self {
        self.security = Some(Arc::new(ports));
        self
    }

    fn security(&self, what: &'static str) -> Result<&SecurityPorts, ManageError> {
        self.security
            .as_deref()
            .ok_or(ManageError::Unavailable(what))
    }

    // -----------------------------------------------------------------------------------
    // Domain authorization

    /// Checks that `user` may order certificates for every name of `identifiers`:
    /// admins may order any name, as may everybody when the service allows any name;
    /// others need a grant covering each name. Call it before an order is created,
    /// reissued or renewed.
    ///
    /// # Errors
    ///
    /// [`AuthorizeError::NotGranted`] naming the first name no grant covers.
    pub async fn authorize_names(
        &self,
        user: &User,
        identifiers: &Identifiers,
    ) -> Result<(), AuthorizeError> {
        if user.is_admin || self.settings.allow_any_name {
            return Ok(());
        }
        let patterns: Vec<NamePattern> = match &self.security {
            Some(security) => security
                .grants
                .grants(user.id)
                .await?
                .into_iter()
                .map(|g| g.pattern)
                .collect(),
            None => Vec::new(),
        };
        match NamePattern::first_uncovered(&patterns, identifiers.as_slice()) {
            Some(name) => Err(AuthorizeError::NotGranted(name.to_string())),
            None => Ok(()),
        }
    }

    /// As [`Self::authorize_names`] for a caller, whose API key (if any) may limit the
    /// names further.
    ///
    /// # Errors
    ///
    /// [`AuthorizeError::NotGranted`] naming the first name not allowed.
    pub async fn authorize_names_for(
        &self,
        principal: &Principal,
        identifiers: &Identifiers,
    ) -> Result<(), AuthorizeError> {
        if let Some(patterns) = principal.scope().and_then(|s| s.domains.as_ref()) {
            if let Some(name) = NamePattern::first_uncovered(patterns, identifiers.as_slice()) {
                return Err(AuthorizeError::NotGranted(name.to_string()));
            }
        }
        self.authorize_names(&principal.user, identifiers).await
    }

    /// The grants of user `id`; admins only.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`] for an absent user or a caller who is not an admin.
    pub async fn list_grants(
        &self,
        actor: &Principal,
        id: UserId,
    ) -> Result<Vec<DomainGrant>, ManageError> {
        let user = self.admin_target(actor, id).await?;
        Ok(self
            .security("domain grants")?
            .grants
            .grants(user.id)
            .await?)
    }

    /// Grants `pattern` to user `id`; admins only.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`], [`ManageError::Duplicate`] for a pattern the user has.
    pub async fn add_grant(
        &self,
        actor: &Principal,
        id: UserId,
        pattern: &NamePattern,
    ) -> Result<DomainGrant, ManageError> {
        let user = self.admin_target(actor, id).await?;
        let grant = self
            .security("domain grants")?
            .grants
            .grant(user.id, pattern, self.now())
            .await?;
        self.audit(
            actor,
            AuditAction::GrantAdded,
            format!("user {}", user.id),
            format!("pattern {pattern}"),
        )
        .await;
        Ok(grant)
    }

    /// Removes the grant of `pattern` from user `id`; admins only.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`] for an absent user or grant.
    pub async fn remove_grant(
        &self,
        actor: &Principal,
        id: UserId,
        pattern: &NamePattern,
    ) -> Result<(), ManageError> {
        let user = self.admin_target(actor, id).await?;
        self.security("domain grants")?
            .grants
            .revoke_grant(user.id, pattern)
            .await
            .map_err(|e| match e {
                RepoError::NotFound(_) => ManageError::NotFound("grant"),
                other => other.into(),
            })?;
        self.audit(
            actor,
            AuditAction::GrantRemoved,
            format!("user {}", user.id),
            format!("pattern {pattern}"),
        )
        .await;
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Checks inside the workflow

    /// Checks that every authorization the CA returned is for a name of the order: a CA
    /// (or a man in the middle) must not make the service publish records for names
    /// nobody ordered.
    ///
    /// # Errors
    ///
    /// The reason naming the first foreign identifier; the order must fail with it before
    /// anything is published.
    pub fn check_authorizations(
        order: &Order,
        challenges: &[ChallengeToSolve],
    ) -> Result<(), String> {
        for challenge in challenges {
            // A wildcard's authorization is for its base name (`wildcard: true`), which
            // clients show with or without the `*.`.
            let known = DomainName::parse(&challenge.identifier).is_ok_and(|name| {
                order
                    .spec()
                    .identifiers
                    .as_slice()
                    .iter()
                    .any(|ordered| *ordered == name || ordered.base() == name.as_str())
            });
            if !known {
                return Err(format!(
                    "the CA returned an authorization for `{}`, which is not in the order",
                    challenge.identifier
                ));
            }
        }
        Ok(())
    }

    /// Checks that the provider instance may write a TXT record at `record_name` (after
    /// following a CNAME delegation).
    ///
    /// # Errors
    ///
    /// The reason naming the record and the instance; the order must fail with it before
    /// anything is published.
    pub fn check_record_zone(
        &self,
        provider: &ProviderName,
        record_name: &str,
    ) -> Result<(), String> {
        if self.ports.dns.may_write(provider, record_name) {
            Ok(())
        } else {
            Err(format!(
                "the record `{record_name}` lies outside the zones DNS provider `{provider}` may write"
            ))
        }
    }

    // -----------------------------------------------------------------------------------
    // Users

    /// Every user, for admins.
    ///
    /// # Errors
    ///
    /// [`ManageError::Forbidden`] for non-admins.
    pub async fn list_users(
        &self,
        actor: &Principal,
        page: Page,
    ) -> Result<Listing<User>, ManageError> {
        Self::require_admin(actor)?;
        Ok(self.ports.users.list(page).await?)
    }

    /// Sets a new password: the user themselves with their current password, or an admin.
    /// Every token and cached login of the user stops working at once.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`] for users the caller may not see,
    /// [`ManageError::Forbidden`] for a missing or wrong current password.
    pub async fn change_password(
        &self,
        actor: &Principal,
        id: UserId,
        current: Option<&Password>,
        new: &Password,
    ) -> Result<(), ManageError> {
        if actor.key.is_some() {
            return Err(ManageError::Forbidden("API keys cannot change passwords"));
        }
        let mut user = self.get_user(&actor.user, id).await?;
        let by_admin = actor.user.is_admin && actor.user.id != id;
        if !by_admin {
            let ok = match current {
                Some(current) => self.ports.hasher.verify(current, &user.password_hash).await,
                None => false,
            };
            if !ok {
                return Err(ManageError::Forbidden("current_password: missing or wrong"));
            }
        }
        user.password_hash = self.ports.hasher.hash(new).await?;
        user.generation += 1;
        self.ports.users.update(&user).await?;
        tracing::info!(user.id = %user.id, "password changed; earlier tokens are void");
        self.audit(
            actor,
            AuditAction::PasswordChanged,
            format!("user {}", user.id),
            String::new(),
        )
        .await;
        Ok(())
    }

    /// Disables or enables a user, or changes the admin flag; admins only. Disabling ends
    /// every token of the user at once. Admins cannot disable or demote themselves.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`], [`ManageError::Forbidden`].
    pub async fn update_user(
        &self,
        actor: &Principal,
        id: UserId,
        change: UserChange,
    ) -> Result<User, ManageError> {
        let mut user = self.admin_target(actor, id).await?;
        if user.id == actor.user.id
            && (change.disabled == Some(true) || change.admin == Some(false))
        {
            return Err(ManageError::Forbidden(
                "admins cannot disable or demote themselves",
            ));
        }
        let mut detail = Vec::new();
        if let Some(disabled) = change.disabled {
            if disabled != user.disabled {
                user.disabled = disabled;
                user.generation += 1;
                detail.push(format!("disabled={disabled}"));
            }
        }
        if let Some(admin) = change.admin {
            if admin != user.is_admin {
                user.is_admin = admin;
                user.generation += 1;
                detail.push(format!("admin={admin}"));
            }
        }
        self.ports.users.update(&user).await?;
        self.audit(
            actor,
            AuditAction::UserUpdated,
            format!("user {}", user.id),
            detail.join(", "),
        )
        .await;
        Ok(user)
    }

    /// Deletes a user with everything they own; admins only, not themselves. Their
    /// certificates are not revoked (revoke them first if they must stop working).
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`], [`ManageError::Forbidden`].
    pub async fn delete_user(&self, actor: &Principal, id: UserId) -> Result<(), ManageError> {
        let user = self.admin_target(actor, id).await?;
        if user.id == actor.user.id {
            return Err(ManageError::Forbidden("admins cannot delete themselves"));
        }
        self.ports.users.delete(user.id).await?;
        self.audit(
            actor,
            AuditAction::UserDeleted,
            format!("user {}", user.id),
            format!("username {}", user.username),
        )
        .await;
        Ok(())
    }

    fn require_admin(actor: &Principal) -> Result<(), ManageError> {
        if actor.user.is_admin && actor.key.is_none() {
            Ok(())
        } else {
            Err(ManageError::Forbidden("only an admin may do this"))
        }
    }

    /// The user `id` for an admin's action; "not found" for anybody else, so ids cannot
    /// be probed.
    async fn admin_target(&self, actor: &Principal, id: UserId) -> Result<User, ManageError> {
        if !actor.user.is_admin || actor.key.is_some() {
            return Err(ManageError::NotFound("user"));
        }
        self.ports
            .users
            .get(id)
            .await?
            .ok_or(ManageError::NotFound("user"))
    }

    // -----------------------------------------------------------------------------------
    // API keys

    /// Creates an API key for the caller. The secret is returned once; only its digest is
    /// stored. API keys cannot create API keys.
    ///
    /// # Errors
    ///
    /// [`ManageError::Invalid`] naming the field, [`ManageError::Duplicate`] for a name
    /// the caller uses already, [`ManageError::Forbidden`] for API keys.
    pub async fn create_api_key(
        &self,
        actor: &Principal,
        request: CreateApiKey,
    ) -> Result<(ApiKey, ApiToken), ManageError> {
        if actor.key.is_some() {
            return Err(ManageError::Forbidden("API keys cannot create API keys"));
        }
        let name = request.name.trim().to_owned();
        if name.is_empty()
            || name.chars().count() > MAX_KEY_NAME
            || name.chars().any(char::is_control)
        {
            return Err(ManageError::Invalid(format!(
                "name: must be 1 to {MAX_KEY_NAME} printable characters"
            )));
        }
        if request.expires_at.is_some_and(|at| at <= self.now()) {
            return Err(ManageError::Invalid(
                "expires_at: must lie in the future".to_owned(),
            ));
        }
        if let Some(orders) = &request.scope.orders {
            for id in orders {
                self.get_order(&actor.user, *id)
                    .await
                    .map_err(|_| ManageError::Invalid(format!("orders: order {id} not found")))?;
            }
        }
        let security = self.security("API keys")?;
        let random = security.key_secrets.generate();
        let key = security
            .api_keys
            .insert(NewApiKey {
                user_id: actor.user.id,
                name,
                scope: request.scope,
                digest: security.key_secrets.digest(random.expose()),
                expires_at: request.expires_at,
                created_at: self.now(),
            })
            .await
            .map_err(|e| match e {
                RepoError::Duplicate(_) => ManageError::Duplicate("API key of this name"),
                other => other.into(),
            })?;
        let secret = ApiToken::new(format!("{API_KEY_PREFIX}{}_{}", key.id, random.expose()));
        self.audit(
            actor,
            AuditAction::ApiKeyCreated,
            format!("api key {}", key.id),
            format!("name {}", key.name),
        )
        .await;
        Ok((key, secret))
    }

    /// A page of the caller's API keys.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn list_api_keys(
        &self,
        actor: &Principal,
        page: Page,
    ) -> Result<Listing<ApiKey>, ManageError> {
        Ok(self
            .security("API keys")?
            .api_keys
            .list(actor.user.id, page)
            .await?)
    }

    /// One of the caller's API keys.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`] when absent or another user's.
    pub async fn get_api_key(
        &self,
        actor: &Principal,
        id: ApiKeyId,
    ) -> Result<ApiKey, ManageError> {
        self.security("API keys")?
            .api_keys
            .get(id)
            .await?
            .filter(|k| k.user_id == actor.user.id)
            .ok_or(ManageError::NotFound("API key"))
    }

    /// Revokes (deletes) one of the caller's API keys; it stops working at once.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`] when absent or another user's.
    pub async fn revoke_api_key(&self, actor: &Principal, id: ApiKeyId) -> Result<(), ManageError> {
        let key = self.get_api_key(actor, id).await?;
        self.security("API keys")?.api_keys.delete(key.id).await?;
        self.audit(
            actor,
            AuditAction::ApiKeyRevoked,
            format!("api key {}", key.id),
            format!("name {}", key.name),
        )
        .await;
        Ok(())
    }

    /// Checks an API key secret (`apk_<id>_<random>`): a stored, unexpired key of an
    /// enabled user whose digest is that of the random part.
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidCredentials`] for anything else.
    pub async fn authenticate_api_key(&self, secret: &str) -> Result<Principal, AuthError> {
        let Some(security) = self.security.as_deref() else {
            return Err(AuthError::InvalidCredentials);
        };
        let (id, random) = secret
            .strip_prefix(API_KEY_PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .and_then(|(id, random)| Some((id.parse::<i64>().ok()?, random)))
            .ok_or(AuthError::InvalidCredentials)?;
        let key = security
            .api_keys
            .get(ApiKeyId::new(id))
            .await?
            .ok_or(AuthError::InvalidCredentials)?;
        let digest = security.key_secrets.digest(random);
        if !constant_time_eq(digest.as_str(), key.digest.as_str()) {
            return Err(AuthError::InvalidCredentials);
        }
        if key.expires_at.is_some_and(|at| at <= self.now()) {
            tracing::info!(api_key.id = %key.id, "login failed: expired API key");
            return Err(AuthError::InvalidCredentials);
        }
        let user = self
            .ports
            .users
            .get(key.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(AuthError::InvalidCredentials)?;
        Ok(Principal {
            user,
            key: Some((key.id, key.scope)),
        })
    }

    // -----------------------------------------------------------------------------------
    // Audit log

    /// Records an audit entry for the caller. A storage failure is logged, not returned:
    /// the action it records has happened already.
    pub async fn audit(
        &self,
        actor: &Principal,
        action: AuditAction,
        target: String,
        detail: String,
    ) {
        self.record_audit(NewAuditEntry {
            at: self.now(),
            actor: Some(actor.user.id),
            api_key: actor.key.as_ref().map(|(id, _)| *id),
            action,
            target,
            detail,
        })
        .await;
    }

    /// Records an entry as it is.
    pub async fn record_audit(&self, entry: NewAuditEntry) {
        tracing::info!(
            audit.action = entry.action.as_str(),
            audit.actor = ?entry.actor.map(UserId::get),
            audit.target = %entry.target,
            "audit"
        );
        if let Some(security) = &self.security {
            if let Err(e) = security.audit.record(entry).await {
                tracing::error!(error = %e, "the audit entry could not be stored");
            }
        }
    }

    /// A page of the audit log; admins only.
    ///
    /// # Errors
    ///
    /// [`ManageError::Forbidden`] for anybody else.
    pub async fn list_audit(
        &self,
        actor: &Principal,
        filter: AuditFilter,
        page: Page,
    ) -> Result<Listing<AuditEntry>, ManageError> {
        Self::require_admin(actor)?;
        Ok(self
            .security("audit entries")?
            .audit
            .list(filter, page)
            .await?)
    }
}

/// Compares two digests without an early exit.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
