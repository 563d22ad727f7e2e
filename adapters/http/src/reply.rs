//! Small helpers to build JSON responses with headers.

use serde::Serialize;
use warp::http::{header, HeaderName, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Reply as _;

/// A JSON response with this status.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// Adds a header; values that are not valid header text are dropped with a log line
/// (they come from our own URLs and tokens, so this is a bug, not a client error).
pub(crate) fn with_header(mut response: Response, name: HeaderName, value: &str) -> Response {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            response.headers_mut().insert(name, value);
        }
        Err(_) => tracing::error!(header = %name, "header value is not valid header text"),
    }
    response
}

/// Adds a `Location` header.
pub(crate) fn with_location(response: Response, url: &str) -> Response {
    with_header(response, header::LOCATION, url)
}

/// Marks a response that carries a secret (a token, a private key) as not to be stored
/// by caches.
pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
