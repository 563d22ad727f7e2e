//! Probes and the API description; no authentication.

use crate::dto::StatusResponse;
use crate::error::ApiError;
use crate::routes::Api;
use crate::{openapi, reply};
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

/// This API's OpenAPI 3.1 document; public, as it holds no secret. `COPY` and `PURGE`,
/// which OpenAPI 3.1 cannot express as operations, are listed under
/// `x-additional-operations` of their paths (the shape of OpenAPI 3.2's
/// `additionalOperations`); their aliases `POST .../reissue` and `POST .../purge` are
/// ordinary operations.
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "health", operation_id = "openapi",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json",
            body = Object),
    )
)]
pub(crate) async fn openapi_json(api: Api) -> Result<Response, ApiError> {
    let service = api.service();
    let settings = service.settings();
    let directories = settings.allowed_directories.as_ref().map(|allowed| {
        std::iter::once(&settings.default_directory)
            .chain(allowed)
            .map(ToString::to_string)
            .collect()
    });
    let document = openapi::for_instance(&service.ports().dns.names(), directories);
    Ok(reply::json(StatusCode::OK, &document))
}
