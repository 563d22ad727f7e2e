//! Authentication adapters: Argon2id password hashing (with a short-lived cache of
//! successful checks), HMAC-SHA256 signed, expiring API tokens, and the system clock.
//!
//! These implement the domain's [`acmeport_domain::ports::PasswordHasher`],
//! [`acmeport_domain::ports::TokenSigner`] and [`acmeport_domain::ports::Clock`] ports.
//! Nothing here knows about HTTP.

#![warn(missing_docs)]

mod api_keys;
mod cache;
mod clock;
mod password;
mod token;

pub use api_keys::RandomKeySecrets;
pub use cache::CachingHasher;
pub use clock::SystemClock;
pub use password::{Argon2Hasher, Argon2Params, ParamsError};
pub use token::{HmacTokenSigner, TokenSecretError};
