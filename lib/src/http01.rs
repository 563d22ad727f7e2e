//! HTTP-01 for embedders: the challenge responder as a plain function from a request
//! path to a response (axum, hyper or any other server calls it), and as a warp filter
//! (feature `http`).
//!
//! The key authorizations live in the engine's store, so any instance on the same
//! database answers for orders any instance placed. Mount the responder where the CA
//! connects: port 80 of every name ordered with HTTP-01.

use acmeport_domain::ports::{answer_http01, ChallengeTokenStore, Http01Answer};
use http::{header, Response, StatusCode};
use std::sync::Arc;

/// Answers `GET /.well-known/acme-challenge/<token>` for an engine's orders.
///
/// Unknown tokens and other paths answer 404 with an empty body, so a server that
/// mounts the responder at its root reveals nothing else through it.
///
/// From any server's handler for `GET /.well-known/acme-challenge/<token>` (compiled as
/// a doc-test):
///
/// ```no_run
/// # async fn demo(engine: &acmeport::Engine) {
/// let responder = engine.http01();
/// let response = responder
///     .respond("/.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
///     .await;
/// assert!(response.status() == 200 || response.status() == 404);
/// # }
/// ```
///
/// With axum, the same call becomes the route's handler:
///
/// ```text
/// let responder = engine.http01();
/// let app = axum::Router::new().route(
///     "/.well-known/acme-challenge/{token}",
///     axum::routing::get(move |uri: axum::http::Uri| async move {
///         responder.respond(uri.path()).await
///     }),
/// );
/// ```
#[derive(Clone)]
pub struct Http01Responder {
    tokens: Arc<dyn ChallengeTokenStore>,
}

impl std::fmt::Debug for Http01Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http01Responder").finish_non_exhaustive()
    }
}

impl Http01Responder {
    /// A responder over a token store (the engine's: [`crate::Engine::http01`]).
    #[must_use]
    pub fn new(tokens: Arc<dyn ChallengeTokenStore>) -> Self {
        Self { tokens }
    }

    /// The response to a `GET` of `path` (without query): 200 with the key
    /// authorization as `text/plain`, 404 with an empty body for an unknown token or
    /// another path, 500 when the store cannot be read (so that the CA's problem
    /// document tells it apart from an unknown token).
    pub async fn respond(&self, path: &str) -> Response<String> {
        let Some(token) = acmeport_domain::http01_token(path) else {
            return status(StatusCode::NOT_FOUND);
        };
        match answer_http01(self.tokens.as_ref(), token).await {
            Http01Answer::KeyAuthorization(key_authorization) => {
                let mut response = Response::new(key_authorization);
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/plain"),
                );
                response
            }
            Http01Answer::Unknown => status(StatusCode::NOT_FOUND),
            Http01Answer::StoreFailed => status(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The responder as a warp filter: it takes `GET /.well-known/acme-challenge/<token>`
    /// (an unknown token answers an empty 404) and rejects every other request, so it
    /// combines with your routes: `responder.warp_filter().or(my_routes)`.
    #[cfg(feature = "http")]
    #[must_use]
    pub fn warp_filter(
        &self,
    ) -> impl warp::Filter<Extract = (warp::reply::Response,), Error = warp::Rejection>
           + Clone
           + Send
           + Sync
           + 'static {
        acmeport_http::challenge::challenge_filter(self.tokens.clone())
    }

    /// The token store it reads.
    #[must_use]
    pub fn tokens(&self) -> &Arc<dyn ChallengeTokenStore> {
        &self.tokens
    }
}

fn status(code: StatusCode) -> Response<String> {
    let mut response = Response::new(String::new());
    *response.status_mut() = code;
    response
}
