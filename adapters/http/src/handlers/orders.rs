//! Orders (`seed/orders.md`).

use crate::dto::{
    CreateOrderRequest, CreatedResponse, OrderResponse, StatusResponse, UpdateOrderRequest,
};
use crate::error::ApiError;
use crate::pagination;
use crate::reply;
use crate::routes::Api;
use acmeport_domain::service::Outcome;
use acmeport_domain::{OrderId, Page, Principal, User};
use warp::http::StatusCode;
use warp::reply::Response;

/// Creates an order, worked in the background; or returns the existing same order
/// (reissued when `reissue` is true).
#[utoipa::path(
    post, path = "/api/order", tag = "orders",
    request_body = CreateOrderRequest,
    responses(
        (status = 201, description = "Order created", body = CreatedResponse,
            headers(("Location" = String, description = "URI of the order"))),
        (status = 200, description = "The same order exists (same account, domains in order, type and email)", body = CreatedResponse,
            headers(("Location" = String, description = "URI of the order"))),
        (status = 400, description = "Missing `domains` or `account`, an invalid field, a wildcard with `type: http`, an unknown provider, a CSR whose names differ, an invalid key, a name not granted to the caller", body = StatusResponse),
        (status = 403, description = "Outside the API key's scope", body = StatusResponse),
        (status = 415, description = "The body is not application/json", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 429, description = "Too many failed logins, or a quota was hit: quotas.orders_in_flight_per_user or quotas.orders_per_hour_per_user (with Retry-After); the status names it", body = StatusResponse,
            headers(("Retry-After" = String, description = "Seconds to wait, when known"))),
        (status = 503, description = "Too many logins waiting for a password check", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn create(
    api: Api,
    caller: Principal,
    body: CreateOrderRequest,
) -> Result<Response, ApiError> {
    let request = body.try_into_domain()?;
    let (order, outcome) = api.service().create_order_as(&caller, request).await?;
    let status = match outcome {
        Outcome::Created => StatusCode::CREATED,
        Outcome::Existing => StatusCode::OK,
    };
    let body = CreatedResponse {
        id: order.id().get(),
        status: order.status().as_str().to_owned(),
    };
    Ok(reply::with_location(
        reply::json(status, &body),
        &api.url(&format!("/api/order/{}", order.id())),
    ))
}

/// One of the caller's orders; `Location` names its certificate once issued.
#[utoipa::path(
    get, path = "/api/order/{id}", tag = "orders",
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = OrderResponse,
            headers(("Location" = String, description = "URI of the certificate, once `resolved_cert_id` is set"))),
        (status = 400, description = "No such order of the caller", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn get(id: i64, api: Api, user: User) -> Result<Response, ApiError> {
    let order = api.service().get_order(&user, OrderId::new(id)).await?;
    let response = reply::json(StatusCode::OK, &OrderResponse::from(&order));
    Ok(match order.resolved_cert_id() {
        Some(cert) => reply::with_location(response, &api.url(&format!("/api/certificate/{cert}"))),
        None => response,
    })
}

/// The caller's orders, keyed by id.
#[utoipa::path(
    get, path = "/api/order", tag = "orders",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("after" = Option<i64>, Query, description = "Only ids greater than this"),
    ),
    responses(
        (status = 200, description = "Orders keyed by id", body = HashMap<String, OrderResponse>,
            headers(("Link" = String, description = "`<...>; rel=\"next\"` when more pages follow"))),
        (status = 400, description = "Invalid limit or after", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn list(api: Api, user: User, page: Page) -> Result<Response, ApiError> {
    let listing = api.service().list_orders(&user, page).await?;
    Ok(pagination::keyed_response(
        api.public_url(),
        "/api/order",
        page,
        &listing,
        |o| (o.id().get(), OrderResponse::from(o)),
    ))
}

/// `COPY`: orders a new certificate for the order (a reissue). The earlier certificate
/// stays valid.
#[utoipa::path(
    trace, path = "/api/order/{id}", tag = "orders", operation_id = "reorder",
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, description = "Reissue started", body = CreatedResponse),
        (status = 400, description = "No such order of the caller, still pending, its account is deactivated, or a name no longer granted to the caller", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn reorder(id: i64, api: Api, caller: Principal) -> Result<Response, ApiError> {
    let order = api.service().reorder_as(&caller, OrderId::new(id)).await?;
    Ok(reply::json(
        StatusCode::OK,
        &CreatedResponse {
            id: order.id().get(),
            status: order.status().as_str().to_owned(),
        },
    ))
}

/// `POST /api/order/<id>/reissue`: the alias of `COPY /api/order/<id>` for clients that
/// only speak the standard methods; the same handler, the same answers.
#[utoipa::path(
    post, path = "/api/order/{id}/reissue", tag = "orders", operation_id = "reissue",
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, description = "Reissue started", body = CreatedResponse),
        (status = 400, description = "No such order of the caller, still pending, its account is deactivated, or a name no longer granted to the caller", body = StatusResponse),
        (status = 429, description = "A quota was hit: quotas.orders_in_flight_per_user or quotas.orders_per_hour_per_user (with Retry-After); or too many failed logins", body = StatusResponse,
            headers(("Retry-After" = String, description = "Seconds to wait, when known"))),
    ),
    security(("basic" = []))
)]
pub(crate) async fn reissue(id: i64, api: Api, caller: Principal) -> Result<Response, ApiError> {
    reorder(id, api, caller).await
}

/// Changes the order's settings: whether its certificate is renewed automatically.
#[utoipa::path(
    patch, path = "/api/order/{id}", tag = "orders",
    params(("id" = i64, Path, description = "Order id")),
    request_body = UpdateOrderRequest,
    responses(
        (status = 200, description = "The order, changed", body = OrderResponse),
        (status = 400, description = "No such order of the caller, or an invalid body", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 413, description = "Body larger than the configured limit", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn update(
    id: i64,
    api: Api,
    user: User,
    body: UpdateOrderRequest,
) -> Result<Response, ApiError> {
    let order = api
        .service()
        .set_auto_renew(&user, OrderId::new(id), body.auto_renew)
        .await?;
    Ok(reply::json(StatusCode::OK, &OrderResponse::from(&order)))
}
