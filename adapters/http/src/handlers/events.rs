//! Lifecycle events and their webhook delivery state.

use crate::dto::{EventResponse, StatusResponse};
use crate::error::ApiError;
use crate::pagination;
use crate::routes::Api;
use acmeport_domain::{Page, User};
use warp::reply::Response;

/// The caller's events keyed by id, oldest first, with their delivery state.
#[utoipa::path(
    get, path = "/api/events", tag = "events",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("after" = Option<i64>, Query, description = "Only ids greater than this"),
    ),
    responses(
        (status = 200, description = "Events keyed by id", body = HashMap<String, EventResponse>,
            headers(("Link" = String, description = "`<...>; rel=\"next\"` when more pages follow"))),
        (status = 400, description = "Invalid limit or after", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn list(api: Api, user: User, page: Page) -> Result<Response, ApiError> {
    let listing = api.service().list_events(&user, page).await?;
    Ok(pagination::keyed_response(
        api.public_url(),
        "/api/events",
        page,
        &listing,
        |e| (e.id.get(), EventResponse::from(e)),
    ))
}
