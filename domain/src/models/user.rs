//! Users of the service and their credentials.

use super::UserId;
use std::fmt;
use time::OffsetDateTime;

/// A login name: 1 to 64 characters of letters, digits, `.`, `_`, `-` and `@`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

/// Why a string is not an acceptable username.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("username must be 1-64 characters of letters, digits, `.`, `_`, `-` and `@`")]
pub struct UsernameError;

impl Username {
    /// Parses a username (kept as given; usernames are case-sensitive).
    ///
    /// # Errors
    ///
    /// Empty, over-long names and names with other characters.
    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        let valid = !input.is_empty()
            && input.len() <= 64
            && input
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
        if valid {
            Ok(Self(input.to_owned()))
        } else {
            Err(UsernameError)
        }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({})", self.0)
    }
}

/// A slow salted password hash in PHC string format (Argon2id).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string produced by a [`crate::ports::PasswordHasher`].
    #[must_use]
    pub fn new(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }

    /// The PHC string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

/// A user of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Assigned by the repository.
    pub id: UserId,
    /// The login name, unique.
    pub username: Username,
    /// The slow salted hash of the password.
    pub password_hash: PasswordHash,
    /// An admin manages users and may order any name.
    pub is_admin: bool,
    /// When the user was created.
    pub created_at: OffsetDateTime,
    /// Raised by every change that must end the user's sessions (a new password,
    /// disabling); tokens carry the generation they were issued under and stop working
    /// when it moves on.
    pub generation: i64,
    /// A disabled user cannot log in; its tokens and API keys stop working.
    pub disabled: bool,
}

/// A user to be stored; the repository assigns the id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    /// The login name, unique.
    pub username: Username,
    /// The slow salted hash of the password.
    pub password_hash: PasswordHash,
    /// An admin manages users and may order any name.
    pub is_admin: bool,
    /// When the user is created.
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(Username::parse("alice.o-k_1@corp").is_ok());
        for bad in ["", "al ice", "a:b", &"x".repeat(65)] {
            assert_eq!(Username::parse(bad), Err(UsernameError), "{bad}");
        }
    }

    #[test]
    fn password_hash_is_redacted() {
        assert_eq!(
            format!("{:?}", PasswordHash::new("$argon2id$...")),
            "PasswordHash(***)"
        );
    }
}
