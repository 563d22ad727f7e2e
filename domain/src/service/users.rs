//! Users, authentication and API tokens.

use super::{Acmeport, AuthError, CreateUserError, LookupError};
use crate::models::{ApiToken, NewUser, Password, User, UserId, Username};
use crate::ports::{RepoError, TokenClaims};
use std::time::Duration;

impl Acmeport {
    /// Creates a user on behalf of `actor`, who must be an admin.
    ///
    /// # Errors
    ///
    /// [`CreateUserError::Forbidden`] for non-admins, [`CreateUserError::Duplicate`] for a
    /// taken name.
    pub async fn create_user(
        &self,
        actor: &User,
        username: Username,
        password: &Password,
        is_admin: bool,
    ) -> Result<User, CreateUserError> {
        if !actor.is_admin {
            return Err(CreateUserError::Forbidden);
        }
        let user = self.add_user(username, password, is_admin).await?;
        self.audit(
            &crate::models::Principal::user(actor.clone()),
            crate::models::AuditAction::UserCreated,
            format!("user {}", user.id),
            format!("username {}, admin={is_admin}", user.username),
        )
        .await;
        Ok(user)
    }

    /// Creates a user without an acting admin: for the command line and first start.
    ///
    /// # Errors
    ///
    /// [`CreateUserError::Duplicate`] for a taken name.
    pub async fn add_user(
        &self,
        username: Username,
        password: &Password,
        is_admin: bool,
    ) -> Result<User, CreateUserError> {
        if self
            .ports
            .users
            .by_username(&username)
            .await
            .map_err(CreateUserError::Repo)?
            .is_some()
        {
            return Err(CreateUserError::Duplicate(username.to_string()));
        }
        let password_hash = self.ports.hasher.hash(password).await?;
        let name = username.to_string();
        let user = self
            .ports
            .users
            .insert(NewUser {
                username,
                password_hash,
                is_admin,
                created_at: self.now(),
            })
            .await
            .map_err(|e| match e {
                RepoError::Duplicate(_) => CreateUserError::Duplicate(name),
                other => CreateUserError::Repo(other),
            })?;
        tracing::info!(user.id = %user.id, user.name = %user.username, admin = is_admin, "user created");
        Ok(user)
    }

    /// True when no user exists yet (first start).
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn has_no_users(&self) -> Result<bool, RepoError> {
        Ok(self.ports.users.count().await? == 0)
    }

    /// Checks a username and password.
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidCredentials`] for an unknown user or a wrong password alike.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &Password,
    ) -> Result<User, AuthError> {
        // A token that did not verify is no username: never look it up nor log it.
        if self.ports.signer.is_token_shaped(username) {
            tracing::info!("login failed: a token that does not verify");
            return Err(AuthError::InvalidCredentials);
        }
        let Ok(username) = Username::parse(username) else {
            return Err(AuthError::InvalidCredentials);
        };
        let Some(user) = self.ports.users.by_username(&username).await? else {
            self.spend_a_verification(password).await;
            tracing::info!(user.name = %username, "login failed: unknown user");
            self.login_failed(&username, None, "unknown user").await;
            return Err(AuthError::InvalidCredentials);
        };
        let verified = self
            .ports
            .hasher
            .verify(password, &user.password_hash)
            .await;
        if verified && !user.disabled {
            Ok(user)
        } else {
            let reason = if verified {
                "user disabled"
            } else {
                "wrong password"
            };
            tracing::info!(user.name = %username, reason, "login failed");
            self.login_failed(&username, Some(user.id), reason).await;
            Err(AuthError::InvalidCredentials)
        }
    }

    async fn login_failed(&self, username: &Username, user: Option<UserId>, reason: &str) {
        self.record_audit(crate::models::NewAuditEntry {
            at: self.now(),
            actor: user,
            api_key: None,
            action: crate::models::AuditAction::LoginFailed,
            target: format!("username {username}"),
            detail: reason.to_owned(),
        })
        .await;
    }

    /// Verifies `password` against a decoy hash (made once), as long as a real check takes.
    async fn spend_a_verification(&self, password: &Password) {
        let cached = self
            .decoy_hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let decoy = match cached {
            Some(hash) => hash,
            None => match self
                .ports
                .hasher
                .hash(&Password::new("acmeport decoy password"))
                .await
            {
                Ok(hash) => {
                    *self
                        .decoy_hash
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(hash.clone());
                    hash
                }
                Err(_) => return,
            },
        };
        let _ = self.ports.hasher.verify(password, &decoy).await;
    }

    /// Checks an API token: signature, expiry, and that its user still exists, is enabled
    /// and has the generation the token was issued under.
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidCredentials`] for tampered, malformed or expired tokens.
    pub async fn authenticate_token(&self, token: &str) -> Result<User, AuthError> {
        let claims = self
            .ports
            .signer
            .verify(token)
            .ok_or(AuthError::InvalidCredentials)?;
        if claims.expires_at <= self.now() {
            tracing::info!(user.id = %claims.user, "login failed: expired token");
            return Err(AuthError::InvalidCredentials);
        }
        let user = self
            .ports
            .users
            .get(claims.user)
            .await?
            .ok_or(AuthError::InvalidCredentials)?;
        if user.disabled || user.generation != claims.generation {
            tracing::info!(user.id = %claims.user, "login failed: token of a past generation or a disabled user");
            return Err(AuthError::InvalidCredentials);
        }
        Ok(user)
    }

    /// Issues a token for the user, valid for the configured lifetime.
    #[must_use]
    pub fn issue_token(&self, user: &User) -> (ApiToken, Duration) {
        let ttl = self.settings.token_ttl;
        let token = self.ports.signer.sign(TokenClaims {
            user: user.id,
            generation: user.generation,
            expires_at: self.now() + ttl,
        });
        (token, ttl)
    }

    /// A user, visible to itself and to admins.
    ///
    /// # Errors
    ///
    /// [`LookupError::NotFound`] for absent users and users the actor may not see.
    pub async fn get_user(&self, actor: &User, id: UserId) -> Result<User, LookupError> {
        if !actor.is_admin && actor.id != id {
            return Err(LookupError::NotFound("user"));
        }
        self.ports
            .users
            .get(id)
            .await?
            .ok_or(LookupError::NotFound("user"))
    }
}
