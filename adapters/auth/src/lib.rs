//! Authentication adapters: Argon2id password hashing (with a short-lived cache of
//! successful checks) and HMAC-SHA256 signed, expiring API tokens.
//!
//! These implement the domain's [`acmeport_domain::ports::PasswordHasher`] and
//! [`acmeport_domain::ports::TokenSigner`] ports. Nothing here knows about HTTP.

mod cache;
mod password;
mod token;

pub use cache::CachingHasher;
pub use password::{Argon2Hasher, Argon2Params, ParamsError};
pub use token::{HmacTokenSigner, TokenSecretError};
