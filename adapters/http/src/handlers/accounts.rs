//! ACME accounts.

use crate::dto::{AccountResponse, CreatedResponse, RegisterAccountRequest, StatusResponse};
use crate::error::ApiError;
use crate::pagination;
use crate::reply;
use crate::routes::Api;
use acmeport_domain::service::Outcome;
use acmeport_domain::{AccountId, Page, User};
use warp::http::StatusCode;
use warp::reply::Response;

/// Registers an ACME account, or returns the caller's account for the same email and
/// server.
#[utoipa::path(
    post, path = "/api/acme", tag = "accounts",
    request_body = RegisterAccountRequest,
    responses(
        (status = 201, description = "Account registered", body = CreatedResponse,
            headers(("Location" = String, description = "URI of the account"))),
        (status = 200, description = "The caller already has this account", body = CreatedResponse,
            headers(("Location" = String, description = "URI of the account"))),
        (status = 400, description = "Missing or invalid field, or the ACME server refused", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 429, description = "Too many failed logins, or a quota was hit: quotas.accounts_per_user, or the CA rate-limits (with its Retry-After); the status names it", body = StatusResponse,
            headers(("Retry-After" = String, description = "Seconds to wait, when known"))),
        (status = 503, description = "Too many logins waiting for a password check", body = StatusResponse),
        (status = 502, description = "The ACME server could not be reached", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn register(
    api: Api,
    user: User,
    body: RegisterAccountRequest,
) -> Result<Response, ApiError> {
    let request = body.try_into_domain()?;
    let (account, outcome) = api.service().register_account(&user, request).await?;
    let status = match outcome {
        Outcome::Created => StatusCode::CREATED,
        Outcome::Existing => StatusCode::OK,
    };
    let body = CreatedResponse {
        id: account.id.get(),
        status: account.status.as_str().to_owned(),
    };
    Ok(reply::with_location(
        reply::json(status, &body),
        &api.url(&format!("/api/acme/{}", account.id)),
    ))
}

/// One of the caller's accounts.
#[utoipa::path(
    get, path = "/api/acme/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    responses(
        (status = 200, description = "The account", body = AccountResponse),
        (status = 400, description = "No such account of the caller", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn get(id: i64, api: Api, user: User) -> Result<Response, ApiError> {
    let account = api.service().get_account(&user, AccountId::new(id)).await?;
    Ok(reply::json(
        StatusCode::OK,
        &AccountResponse::from(&account),
    ))
}

/// The caller's accounts, keyed by id.
#[utoipa::path(
    get, path = "/api/acme", tag = "accounts",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("after" = Option<i64>, Query, description = "Only ids greater than this"),
    ),
    responses(
        (status = 200, description = "Accounts keyed by id", body = HashMap<String, AccountResponse>,
            headers(("Link" = String, description = "`<...>; rel=\"next\"` when more pages follow"))),
        (status = 400, description = "Invalid limit or after", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn list(api: Api, user: User, page: Page) -> Result<Response, ApiError> {
    let listing = api.service().list_accounts(&user, page).await?;
    Ok(pagination::keyed_response(
        api.public_url(),
        "/api/acme",
        page,
        &listing,
        |a| (a.id.get(), AccountResponse::from(a)),
    ))
}

/// Revokes the account's valid certificates, deactivates it at the ACME server and
/// marks it deactivated.
#[utoipa::path(
    delete, path = "/api/acme/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    responses(
        (status = 200, description = "Deactivated", body = StatusResponse),
        (status = 400, description = "No such account of the caller, already deactivated, or the ACME server refused", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 502, description = "The ACME server could not be reached", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn deregister(id: i64, api: Api, user: User) -> Result<Response, ApiError> {
    let account = api
        .service()
        .deregister_account(&user, AccountId::new(id))
        .await?;
    Ok(reply::json(
        StatusCode::OK,
        &StatusResponse::new(account.status.as_str()),
    ))
}
