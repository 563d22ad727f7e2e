//! The HTTP-01 responder: answers `GET /.well-known/acme-challenge/<token>` with the key
//! authorization held in the shared [`ChallengeTokenStore`], on its own listener (port 80
//! in production).

use crate::limits::ListenerLimits;
use acmeport_domain::ports::{answer_http01, ChallengeTokenStore, Http01Answer};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use warp::http::{header, StatusCode};
use warp::reply::{self, Response};
use warp::{Filter, Rejection, Reply};

/// The challenge routes. Unknown tokens, other paths and other methods all answer 404 with
/// an empty body, so the listener reveals nothing else.
pub fn challenge_routes(
    store: Arc<dyn ChallengeTokenStore>,
) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    challenge_filter(store)
        .recover(|_: Rejection| async { Ok::<_, std::convert::Infallible>(not_found()) })
        .unify()
}

/// `GET /.well-known/acme-challenge/<token>` only, rejecting every other request, so that
/// a program can combine it with its own routes (`challenge_filter(store).or(routes)`).
/// Unknown tokens answer 404 with an empty body.
pub fn challenge_filter(
    store: Arc<dyn ChallengeTokenStore>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::get()
        .and(warp::path!(".well-known" / "acme-challenge" / String))
        .and(warp::any().map(move || Arc::clone(&store)))
        .then(answer)
}

/// Serves the challenge routes on `listener` until `shutdown` completes, with the default
/// [`ListenerLimits`].
pub async fn serve_challenges(
    listener: TcpListener,
    store: Arc<dyn ChallengeTokenStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    serve_challenges_with_limits(listener, store, ListenerLimits::default(), shutdown).await;
}

/// [`serve_challenges`] within these listener limits (timeouts, connection caps): this
/// listener faces the internet.
pub async fn serve_challenges_with_limits(
    listener: TcpListener,
    store: Arc<dyn ChallengeTokenStore>,
    limits: ListenerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving HTTP-01 challenges");
    }
    crate::limits::serve_limited(listener, challenge_routes(store).boxed(), limits, shutdown).await;
}

async fn answer(token: String, store: Arc<dyn ChallengeTokenStore>) -> Response {
    match answer_http01(store.as_ref(), &token).await {
        Http01Answer::KeyAuthorization(key_authorization) => {
            reply::with_header(key_authorization, header::CONTENT_TYPE, "text/plain")
                .into_response()
        }
        Http01Answer::Unknown => not_found(),
        Http01Answer::StoreFailed => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}
