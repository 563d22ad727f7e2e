//! Who may do what: domain grants, user management, API keys, the audit log and the
//! rollover of ACME account keys.

use crate::dto::{
    AuditResponse, CreateKeyRequest, CreatedKeyResponse, CreatedResponse, GrantRequest,
    GrantResponse, KeyResponse, Keyed, PasswordRequest, StatusResponse, UpdateUserRequest,
    UserDetail,
};
use crate::error::ApiError;
use crate::pagination;
use crate::reply;
use crate::routes::Api;
use acmeport_domain::{AccountId, ApiKeyId, AuditFilter, Page, Principal, UserId};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use warp::http::{header, StatusCode};
use warp::reply::Response;

/// Every user, keyed by id; admins only.
#[utoipa::path(
    get, path = "/api/users", tag = "users",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("after" = Option<i64>, Query, description = "Only ids greater than this"),
    ),
    responses(
        (status = 200, description = "Users keyed by id", body = HashMap<String, UserDetail>,
            headers(("Link" = String, description = "`<...>; rel=\"next\"` when more pages follow"))),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 403, description = "The caller is not an admin", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn list_users(
    api: Api,
    actor: Principal,
    page: Page,
) -> Result<Response, ApiError> {
    let listing = api.service().list_users(&actor, page).await?;
    Ok(pagination::keyed_response(
        api.public_url(),
        "/api/users",
        page,
        &listing,
        |u| (u.id.get(), UserDetail::from(u)),
    ))
}

/// Disables or enables a user, or changes the admin flag; admins only. Disabling ends
/// every token and API key of the user at once.
#[utoipa::path(
    patch, path = "/api/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The user after the change", body = UserDetail),
        (status = 400, description = "No such user, an invalid field, or the caller is not an admin", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 403, description = "An admin disabling or demoting themselves", body = StatusResponse),
        (status = 415, description = "The body is not application/json", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn update_user(
    id: i64,
    api: Api,
    actor: Principal,
    body: UpdateUserRequest,
) -> Result<Response, ApiError> {
    let user = api
        .service()
        .update_user(&actor, UserId::new(id), body.into())
        .await?;
    Ok(reply::json(StatusCode::OK, &UserDetail::from(&user)))
}

/// Deletes a user with their accounts, orders, certificates, grants and keys; admins
/// only, not themselves. Certificates are not revoked.
#[utoipa::path(
    delete, path = "/api/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "Deleted", body = StatusResponse),
        (status = 400, description = "No such user, or the caller is not an admin", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 403, description = "An admin deleting themselves", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn delete_user(id: i64, api: Api, actor: Principal) -> Result<Response, ApiError> {
    api.service().delete_user(&actor, UserId::new(id)).await?;
    Ok(reply::json(StatusCode::OK, &StatusResponse::new("deleted")))
}

/// Sets a new password: the user with their current password, or an admin. Every token
/// of the user stops working.
#[utoipa::path(
    put, path = "/api/users/{id}/password", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    request_body = PasswordRequest,
    responses(
        (status = 200, description = "Changed", body = StatusResponse),
        (status = 400, description = "No such user visible to the caller, or a password too short or long", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 403, description = "Missing or wrong current password, or an API key", body = StatusResponse),
        (status = 415, description = "The body is not application/json", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn change_password(
    id: i64,
    api: Api,
    actor: Principal,
    body: PasswordRequest,
) -> Result<Response, ApiError> {
    let (current, new) = body.try_into_domain()?;
    api.service()
        .change_password(&actor, UserId::new(id), current.as_ref(), &new)
        .await?;
    Ok(reply::json(
        StatusCode::OK,
        &StatusResponse::new("password changed"),
    ))
}

/// The name patterns granted to a user, keyed by grant id; admins only.
#[utoipa::path(
    get, path = "/api/users/{id}/domains", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "Grants keyed by id", body = HashMap<String, GrantResponse>),
        (status = 400, description = "No such user, or the caller is not an admin", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn list_grants(id: i64, api: Api, actor: Principal) -> Result<Response, ApiError> {
    let grants = api.service().list_grants(&actor, UserId::new(id)).await?;
    Ok(reply::json(
        StatusCode::OK,
        &Keyed(
            grants
                .iter()
                .map(|g| (g.id.get(), GrantResponse::from(g)))
                .collect(),
        ),
    ))
}

/// Grants a name pattern to a user; admins only.
#[utoipa::path(
    post, path = "/api/users/{id}/domains", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    request_body = GrantRequest,
    responses(
        (status = 201, description = "Granted", body = GrantResponse),
        (status = 400, description = "No such user, the caller is not an admin, or an invalid pattern", body = StatusResponse),
        (status = 409, description = "The user has this pattern already", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 415, description = "The body is not application/json", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn add_grant(
    id: i64,
    api: Api,
    actor: Principal,
    body: GrantRequest,
) -> Result<Response, ApiError> {
    let pattern = body.try_into_domain()?;
    let grant = api
        .service()
        .add_grant(&actor, UserId::new(id), &pattern)
        .await?;
    Ok(reply::json(
        StatusCode::CREATED,
        &GrantResponse::from(&grant),
    ))
}

/// Takes a granted pattern back; admins only. Orders already made stay; their reissues
/// and renewals are refused.
#[utoipa::path(
    delete, path = "/api/users/{id}/domains", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    request_body = GrantRequest,
    responses(
        (status = 200, description = "Removed", body = StatusResponse),
        (status = 400, description = "No such user or grant, or the caller is not an admin", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 415, description = "The body is not application/json", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn remove_grant(
    id: i64,
    api: Api,
    actor: Principal,
    body: GrantRequest,
) -> Result<Response, ApiError> {
    let pattern = body.try_into_domain()?;
    api.service()
        .remove_grant(&actor, UserId::new(id), &pattern)
        .await?;
    Ok(reply::json(StatusCode::OK, &StatusResponse::new("removed")))
}

/// Creates a named API key for the caller. The secret is in this answer only.
#[utoipa::path(
    post, path = "/api/keys", tag = "keys",
    request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "Created; the secret is shown once", body = CreatedKeyResponse,
            headers(("Location" = String, description = "URI of the key"))),
        (status = 400, description = "An invalid or unknown field, a name in use, an expiry in the past, an order that is not the caller's", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 403, description = "An API key cannot create keys", body = StatusResponse),
        (status = 415, description = "The body is not application/json", body = StatusResponse),
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub(crate) async fn create_key(
    api: Api,
    actor: Principal,
    body: CreateKeyRequest,
) -> Result<Response, ApiError> {
    let request = body.try_into_domain()?;
    let (key, secret) = api.service().create_api_key(&actor, request).await?;
    let body = CreatedKeyResponse {
        key: KeyResponse::from(&key),
        secret: secret.expose().to_owned(),
    };
    let response = reply::with_location(
        reply::json(StatusCode::CREATED, &body),
        &api.url(&format!("/api/keys/{}", key.id)),
    );
    Ok(reply::no_store(response))
}

/// The caller's API keys, keyed by id, without secrets.
#[utoipa::path(
    get, path = "/api/keys", tag = "keys",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("after" = Option<i64>, Query, description = "Only ids greater than this"),
    ),
    responses(
        (status = 200, description = "Keys keyed by id", body = HashMap<String, KeyResponse>,
            headers(("Link" = String, description = "`<...>; rel=\"next\"` when more pages follow"))),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn list_keys(
    api: Api,
    actor: Principal,
    page: Page,
) -> Result<Response, ApiError> {
    let listing = api.service().list_api_keys(&actor, page).await?;
    Ok(pagination::keyed_response(
        api.public_url(),
        "/api/keys",
        page,
        &listing,
        |k| (k.id.get(), KeyResponse::from(k)),
    ))
}

/// One of the caller's API keys, without its secret.
#[utoipa::path(
    get, path = "/api/keys/{id}", tag = "keys",
    params(("id" = i64, Path, description = "API key id")),
    responses(
        (status = 200, description = "The key", body = KeyResponse),
        (status = 400, description = "No such key of the caller", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn get_key(id: i64, api: Api, actor: Principal) -> Result<Response, ApiError> {
    let key = api.service().get_api_key(&actor, ApiKeyId::new(id)).await?;
    Ok(reply::json(StatusCode::OK, &KeyResponse::from(&key)))
}

/// Revokes one of the caller's API keys; it stops working at once.
#[utoipa::path(
    delete, path = "/api/keys/{id}", tag = "keys",
    params(("id" = i64, Path, description = "API key id")),
    responses(
        (status = 200, description = "Revoked", body = StatusResponse),
        (status = 400, description = "No such key of the caller", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn revoke_key(id: i64, api: Api, actor: Principal) -> Result<Response, ApiError> {
    api.service()
        .revoke_api_key(&actor, ApiKeyId::new(id))
        .await?;
    Ok(reply::json(StatusCode::OK, &StatusResponse::new("revoked")))
}

/// The audit log, keyed by entry id, oldest first; admins only.
#[utoipa::path(
    get, path = "/api/audit", tag = "audit",
    params(
        ("user" = Option<i64>, Query, description = "Only entries whose acting user is this one"),
        ("since" = Option<String>, Query, description = "Only entries at or after this time (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Only entries before this time (RFC 3339)"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("after" = Option<i64>, Query, description = "Only ids greater than this"),
    ),
    responses(
        (status = 200, description = "Entries keyed by id", body = HashMap<String, AuditResponse>,
            headers(("Link" = String, description = "`<...>; rel=\"next\"` when more pages follow"))),
        (status = 400, description = "An invalid filter", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 403, description = "The caller is not an admin", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn list_audit(
    api: Api,
    actor: Principal,
    page: Page,
    query: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    let (filter, kept) = audit_filter(&query)?;
    let listing = api.service().list_audit(&actor, filter, page).await?;
    let rows: Vec<(i64, AuditResponse)> = listing
        .items
        .iter()
        .map(|e| (e.id.get(), AuditResponse::from(e)))
        .collect();
    let last = rows.last().map(|(id, _)| *id);
    let response = reply::json(StatusCode::OK, &Keyed(rows));
    Ok(match last {
        Some(last) if listing.has_more => {
            let link = format!(
                "<{}?{kept}limit={}&after={last}>; rel=\"next\"",
                api.url("/api/audit"),
                page.limit()
            );
            reply::with_header(response, header::LINK, &link)
        }
        _ => response,
    })
}

/// The filter of `GET /api/audit`, and its parameters again for the next page's link.
fn audit_filter(query: &[(String, String)]) -> Result<(AuditFilter, String), ApiError> {
    let mut filter = AuditFilter::default();
    let mut kept = String::new();
    let time = |name: &str, value: &str| {
        OffsetDateTime::parse(value, &Rfc3339)
            .map_err(|_| ApiError::bad_request(format!("{name}: must be an RFC 3339 time")))
    };
    for (name, value) in query {
        match name.as_str() {
            "user" => {
                let id: i64 = value
                    .parse()
                    .map_err(|_| ApiError::bad_request("user: must be an integer id"))?;
                filter.actor = Some(UserId::new(id));
                kept.push_str(&format!("user={id}&"));
            }
            "since" => {
                let at = time("since", value)?;
                filter.since = Some(at);
                kept.push_str(&format!("since={}&", encode(value)));
            }
            "until" => {
                let at = time("until", value)?;
                filter.until = Some(at);
                kept.push_str(&format!("until={}&", encode(value)));
            }
            _ => {}
        }
    }
    Ok((filter, kept))
}

/// Percent-encodes the characters of an RFC 3339 time that a query cannot hold as they are.
fn encode(value: &str) -> String {
    value.replace('+', "%2B").replace(':', "%3A")
}

/// Rolls the account's key over at the ACME server; the old key stops working.
#[utoipa::path(
    post, path = "/api/acme/{id}/key-rollover", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    responses(
        (status = 200, description = "Rolled over", body = CreatedResponse),
        (status = 400, description = "No such account of the caller, deactivated, or the ACME server refused", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 502, description = "The ACME server could not be reached", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn roll_key(id: i64, api: Api, actor: Principal) -> Result<Response, ApiError> {
    let account = api
        .service()
        .roll_account_key(&actor.user, AccountId::new(id))
        .await?;
    Ok(reply::json(
        StatusCode::OK,
        &CreatedResponse {
            id: account.id.get(),
            status: account.status.as_str().to_owned(),
        },
    ))
}
