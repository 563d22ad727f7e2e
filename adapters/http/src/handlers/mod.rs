//! One async function per endpoint. Each takes parsed input, calls the domain service
//! and builds the response; failures are returned as [`crate::ApiError`]. The
//! `#[utoipa::path]` attributes describe them for the OpenAPI document.

pub(crate) mod accounts;
pub(crate) mod certificates;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod orders;
pub(crate) mod security;
pub(crate) mod users;
