//! sea-orm entities: the table rows as the adapter sees them. They never leave this crate;
//! the repository modules map them to and from domain types.

pub mod accounts;
pub mod api_keys;
pub mod audit_log;
pub mod certificates;
pub mod challenge_tokens;
pub mod domain_grants;
pub mod lifecycle_events;
pub mod order_events;
pub mod orders;
pub mod users;
