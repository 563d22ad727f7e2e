//! Bodies of the user, token and resource endpoints.

use crate::error::ApiError;
use acmeport_domain::{Password, User, Username};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/users`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUserRequest {
    /// 1 to 64 letters, digits, `.`, `_`, `-` and `@`.
    #[schema(example = "alice")]
    pub username: String,
    /// At least 8 characters. Stored only as an Argon2id hash.
    #[schema(example = "correct horse battery staple", format = Password)]
    pub password: String,
    /// Whether the new user may create users. Default false.
    #[serde(default)]
    pub admin: Option<bool>,
}

// The password must never reach a log through `{:?}`.
impl std::fmt::Debug for CreateUserRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUserRequest")
            .field("username", &self.username)
            .field("password", &"***")
            .field("admin", &self.admin)
            .finish()
    }
}

/// A parsed `POST /api/users` body.
pub(crate) struct NewUserInput {
    pub username: Username,
    pub password: Password,
    pub admin: bool,
}

impl CreateUserRequest {
    /// Parses the fields.
    ///
    /// # Errors
    ///
    /// A 400 naming `username` or `password`.
    pub(crate) fn try_into_domain(self) -> Result<NewUserInput, ApiError> {
        let username = Username::parse(self.username.trim())
            .map_err(|e| ApiError::bad_request(format!("username: {e}")))?;
        let password = Password::parse_new(&self.password)
            .map_err(|e| ApiError::bad_request(format!("password: {e}")))?;
        Ok(NewUserInput {
            username,
            password,
            admin: self.admin.unwrap_or(false),
        })
    }
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserResponse {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "alice")]
    pub username: String,
    /// Whether the user may create users.
    pub admin: bool,
}

impl From<&User> for UserResponse {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.get(),
            username: u.username.to_string(),
            admin: u.is_admin,
        }
    }
}

/// `GET /api/token`.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenResponse {
    /// Send it as the Basic username, with any password.
    pub token: String,
    /// Seconds until the token expires.
    #[schema(example = 3600)]
    pub duration: u64,
}

/// `GET /api/resource`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResourceResponse {
    #[schema(example = "Hello, alice!")]
    pub data: String,
}
