//! Users, tokens and the credentials check.

use crate::dto::{
    CreateUserRequest, ResourceResponse, StatusResponse, TokenResponse, UserResponse,
};
use crate::error::ApiError;
use crate::reply;
use crate::routes::Api;
use acmeport_domain::{User, UserId};
use warp::http::{HeaderName, StatusCode};
use warp::reply::Response;

/// Creates a user; admins only.
#[utoipa::path(
    post, path = "/api/users", tag = "users",
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "User created", body = UserResponse,
            headers(("Location" = String, description = "URI of the new user"))),
        (status = 400, description = "Missing or invalid field, or existing username", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 403, description = "The caller is not an admin", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn create(
    api: Api,
    actor: User,
    body: CreateUserRequest,
) -> Result<Response, ApiError> {
    let input = body.try_into_domain()?;
    let user = api
        .service()
        .create_user(&actor, input.username, &input.password, input.admin)
        .await?;
    let response = reply::json(StatusCode::CREATED, &UserResponse::from(&user));
    Ok(reply::with_location(
        response,
        &api.url(&format!("/api/users/{}", user.id)),
    ))
}

/// A user: the caller itself, or any user for admins.
#[utoipa::path(
    get, path = "/api/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserResponse),
        (status = 400, description = "No such user visible to the caller", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn get(id: i64, api: Api, actor: User) -> Result<Response, ApiError> {
    let user = api.service().get_user(&actor, UserId::new(id)).await?;
    Ok(reply::json(StatusCode::OK, &UserResponse::from(&user)))
}

/// A fresh API token for the caller, also sent in the `token` header. Needs the
/// password: a token or API key cannot mint a token.
#[utoipa::path(
    get, path = "/api/token", tag = "users",
    responses(
        (status = 200, description = "A signed token", body = TokenResponse,
            headers(("token" = String, description = "The same token"))),
        (status = 401, description = "Missing, wrong or expired credentials", body = StatusResponse),
        (status = 403, description = "Credentials other than the password (a token, an API key)", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn token(api: Api, user: User) -> Result<Response, ApiError> {
    let (token, ttl) = api.service().issue_token(&user);
    let body = TokenResponse {
        token: token.expose().to_owned(),
        duration: ttl.as_secs(),
    };
    let response = reply::json(StatusCode::OK, &body);
    let response = reply::with_header(response, HeaderName::from_static("token"), token.expose());
    Ok(reply::no_store(response))
}

/// Greets the caller: a way to test credentials.
#[utoipa::path(
    get, path = "/api/resource", tag = "users",
    responses(
        (status = 200, description = "The credentials work", body = ResourceResponse),
        (status = 401, description = "Missing, wrong or expired credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn resource(user: User) -> Result<Response, ApiError> {
    Ok(reply::json(
        StatusCode::OK,
        &ResourceResponse {
            data: format!("Hello, {}!", user.username),
        },
    ))
}
