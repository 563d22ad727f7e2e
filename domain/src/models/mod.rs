//! Domain models: values parsed once at the edge, and the entities built from them.

mod account;
mod certificate;
mod challenge;
mod domain_name;
mod email;
mod ids;
mod key_spec;
mod order;
mod secret;
mod security;
mod subject;
mod user;

pub use account::*;
pub use certificate::*;
pub use challenge::*;
pub use domain_name::*;
pub use email::*;
pub use ids::*;
pub use key_spec::*;
pub use order::*;
pub use secret::*;
pub use security::*;
pub use subject::*;
pub use user::*;
