//! Domain models: values parsed once at the edge, and the entities built from them.

mod account;
mod certificate;
mod challenge;
mod dns_record;
mod domain_name;
mod email;
mod ids;
mod key_spec;
mod lifecycle;
mod order;
mod redact;
mod schedule;
mod secret;
mod security;
mod subject;
mod user;

pub use account::*;
pub use certificate::*;
pub use challenge::*;
pub use dns_record::*;
pub use domain_name::*;
pub use email::*;
pub use ids::*;
pub use key_spec::*;
pub use lifecycle::*;
pub use order::*;
pub use redact::*;
pub use schedule::*;
pub use secret::*;
pub use security::*;
pub use subject::*;
pub use user::*;
