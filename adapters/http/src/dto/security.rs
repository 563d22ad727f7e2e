//! Bodies of the grant, user management, API key and audit endpoints.

use super::rfc3339;
use crate::error::ApiError;
use acmeport_domain::service::{CreateApiKey, UserChange};
use acmeport_domain::{
    ApiKey, ApiKeyScope, AuditEntry, DomainGrant, NamePattern, OrderId, Password,
};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// `POST` and `DELETE /api/users/{id}/domains`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantRequest {
    /// `example.com` (exactly), `*.example.com` (one label below, and the wildcard) or
    /// `.example.com` (the name and everything below it). IDNA names are accepted.
    #[schema(example = ".example.com")]
    pub pattern: String,
}

impl GrantRequest {
    pub(crate) fn try_into_domain(self) -> Result<NamePattern, ApiError> {
        NamePattern::parse(&self.pattern)
            .map_err(|e| ApiError::bad_request(format!("pattern: {e}")))
    }
}

/// A granted pattern.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GrantResponse {
    #[schema(example = 3)]
    pub id: i64,
    /// The pattern, normalised (IDNA names as punycode).
    #[schema(example = ".example.com")]
    pub pattern: String,
    pub created_at: String,
}

impl From<&DomainGrant> for GrantResponse {
    fn from(g: &DomainGrant) -> Self {
        Self {
            id: g.id.get(),
            pattern: g.pattern.to_string(),
            created_at: rfc3339(g.created_at),
        }
    }
}

/// `PUT /api/users/{id}/password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordRequest {
    /// The user's current password; not needed when an admin sets another user's.
    #[schema(format = Password)]
    pub current_password: Option<String>,
    /// At least 8 characters.
    #[schema(format = Password)]
    pub password: String,
}

impl std::fmt::Debug for PasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordRequest(***)")
    }
}

impl PasswordRequest {
    pub(crate) fn try_into_domain(self) -> Result<(Option<Password>, Password), ApiError> {
        let new = Password::parse_new(&self.password)
            .map_err(|e| ApiError::bad_request(format!("password: {e}")))?;
        Ok((self.current_password.map(Password::new), new))
    }
}

/// `PATCH /api/users/{id}`: fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUserRequest {
    /// A disabled user cannot log in; their tokens and API keys stop working at once.
    pub disabled: Option<bool>,
    /// Whether the user is an admin.
    pub admin: Option<bool>,
}

impl From<UpdateUserRequest> for UserChange {
    fn from(r: UpdateUserRequest) -> Self {
        Self {
            disabled: r.disabled,
            admin: r.admin,
        }
    }
}

/// A user as admins see them in lists and after a change.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserDetail {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "alice")]
    pub username: String,
    pub admin: bool,
    pub disabled: bool,
    pub created_at: String,
}

impl From<&acmeport_domain::User> for UserDetail {
    fn from(u: &acmeport_domain::User) -> Self {
        Self {
            id: u.id.get(),
            username: u.username.to_string(),
            admin: u.is_admin,
            disabled: u.disabled,
            created_at: rfc3339(u.created_at),
        }
    }
}

/// The scope of an API key.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeBody {
    /// Only `GET` requests.
    #[serde(default)]
    pub read_only: bool,
    /// Only these orders and their certificates (no lists, no new orders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders: Option<Vec<i64>>,
    /// New orders and reissues only for names these patterns cover (on top of the user's
    /// grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(["*.example.com"]))]
    pub domains: Option<Vec<String>>,
}

impl From<&ApiKeyScope> for ScopeBody {
    fn from(s: &ApiKeyScope) -> Self {
        Self {
            read_only: s.read_only,
            orders: s
                .orders
                .as_ref()
                .map(|ids| ids.iter().map(|id| id.get()).collect()),
            domains: s
                .domains
                .as_ref()
                .map(|ps| ps.iter().map(ToString::to_string).collect()),
        }
    }
}

/// `POST /api/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKeyRequest {
    /// A name for the key, unique among the caller's keys.
    #[schema(example = "deploy-web1")]
    pub name: String,
    /// When the key stops working (RFC 3339); never when absent.
    #[schema(example = "2027-01-01T00:00:00Z")]
    pub expires_at: Option<String>,
    /// What the key may do; everything its user may when absent.
    #[serde(default)]
    pub scope: Option<ScopeBody>,
}

impl CreateKeyRequest {
    pub(crate) fn try_into_domain(self) -> Result<CreateApiKey, ApiError> {
        let expires_at = self
            .expires_at
            .as_deref()
            .map(|t| {
                OffsetDateTime::parse(t, &Rfc3339).map_err(|e| {
                    ApiError::bad_request(format!("expires_at: not an RFC 3339 time: {e}"))
                })
            })
            .transpose()?;
        let scope = self.scope.unwrap_or_default();
        let domains = scope
            .domains
            .map(|ps| {
                ps.iter()
                    .enumerate()
                    .map(|(i, p)| {
                        NamePattern::parse(p)
                            .map_err(|e| ApiError::bad_request(format!("scope.domains[{i}]: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(CreateApiKey {
            name: self.name,
            expires_at,
            scope: ApiKeyScope {
                read_only: scope.read_only,
                orders: scope
                    .orders
                    .map(|ids| ids.into_iter().map(OrderId::new).collect()),
                domains,
            },
        })
    }
}

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyResponse {
    #[schema(example = 4)]
    pub id: i64,
    #[schema(example = "deploy-web1")]
    pub name: String,
    pub scope: ScopeBody,
    pub expires_at: Option<String>,
    pub created_at: String,
}

impl From<&ApiKey> for KeyResponse {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.get(),
            name: k.name.clone(),
            scope: ScopeBody::from(&k.scope),
            expires_at: k.expires_at.map(rfc3339),
            created_at: rfc3339(k.created_at),
        }
    }
}

/// The answer to `POST /api/keys`: the key and, this once, its secret.
#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedKeyResponse {
    #[serde(flatten)]
    pub key: KeyResponse,
    /// Send it as `Authorization: Bearer <secret>` or as the Basic username. Shown only
    /// now: only a digest is stored.
    #[schema(example = "apk_4_q8Jx...")]
    pub secret: String,
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditResponse {
    #[schema(example = 12)]
    pub id: i64,
    pub at: String,
    /// The acting user; null for failed logins of unknown names.
    pub user: Option<i64>,
    /// The API key used, if any.
    pub api_key: Option<i64>,
    #[schema(example = "order.created")]
    pub action: String,
    #[schema(example = "order 7")]
    pub target: String,
    pub detail: String,
}

impl From<&AuditEntry> for AuditResponse {
    fn from(e: &AuditEntry) -> Self {
        Self {
            id: e.id.get(),
            at: rfc3339(e.entry.at),
            user: e.entry.actor.map(|u| u.get()),
            api_key: e.entry.api_key.map(|k| k.get()),
            action: e.entry.action.as_str().to_owned(),
            target: e.entry.target.clone(),
            detail: e.entry.detail.clone(),
        }
    }
}
