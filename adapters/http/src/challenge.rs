//! The HTTP-01 responder: answers `GET /.well-known/acme-challenge/<token>` with the key
//! authorization held in the shared [`ChallengeTokenStore`], on its own listener (port 80
//! in production).

use crate::limits::ListenerLimits;
use acmeport_domain::ports::ChallengeTokenStore;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use warp::http::{header, StatusCode};
use warp::reply::{self, Response};
use warp::{Filter, Rejection, Reply};

/// The longest token accepted; ACME tokens are 43 characters (32 random bytes in base64url),
/// so anything far longer is not worth a storage lookup.
const MAX_TOKEN_LEN: usize = 256;

/// The challenge routes. Unknown tokens, other paths and other methods all answer 404 with
/// an empty body, so the listener reveals nothing else.
pub fn challenge_routes(
    store: Arc<dyn ChallengeTokenStore>,
) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    warp::get()
        .and(warp::path!(".well-known" / "acme-challenge" / String))
        .and(warp::any().map(move || Arc::clone(&store)))
        .then(answer)
        .recover(|_: Rejection| async { Ok::<_, std::convert::Infallible>(not_found()) })
        .unify()
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
    if !is_token(&token) {
        return not_found();
    }
    match store.get(&token).await {
        Ok(Some(key_authorization)) => {
            tracing::debug!(%token, "answered HTTP-01 challenge");
            reply::with_header(key_authorization, header::CONTENT_TYPE, "text/plain")
                .into_response()
        }
        Ok(None) => {
            tracing::debug!(%token, "HTTP-01 challenge for an unknown token");
            not_found()
        }
        Err(error) => {
            // The validator retries nothing: say so loudly, and answer 500 so the failure
            // is told apart from an unknown token in the CA's problem document.
            tracing::error!(%token, error = %error, "cannot read the HTTP-01 token store");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Tokens are base64url (RFC 8555 section 8.3); anything else cannot be ours.
fn is_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}
