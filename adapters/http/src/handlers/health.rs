//! Probes and the API description; no authentication except for the description.

use crate::dto::StatusResponse;
use crate::error::ApiError;
use crate::routes::Api;
use crate::{openapi, reply};
use acmeport_domain::User;
use warp::http::StatusCode;
use warp::reply::Response;

/// The process is alive.
#[utoipa::path(
    get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = StatusResponse))
)]
pub(crate) async fn healthz() -> Result<Response, ApiError> {
    Ok(reply::json(StatusCode::OK, &StatusResponse::new("ok")))
}

/// The service can take traffic: its database answers.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = StatusResponse),
        (status = 503, description = "A dependency is unavailable", body = StatusResponse),
    )
)]
pub(crate) async fn readyz(api: Api) -> Result<Response, ApiError> {
    api.readiness()
        .check()
        .await
        .map_err(|e| ApiError::Unavailable(Box::new(e)))?;
    Ok(reply::json(StatusCode::OK, &StatusResponse::new("ready")))
}

/// This API's OpenAPI 3 document. `COPY` and `PURGE`, which OpenAPI 3.1 cannot express
/// as operations, are listed under `x-additional-operations` of their paths (the shape
/// of OpenAPI 3.2's `additionalOperations`).
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "health",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json"),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn openapi_json(_user: User) -> Result<Response, ApiError> {
    Ok(reply::json(StatusCode::OK, &openapi()))
}
