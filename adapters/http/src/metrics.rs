//! `GET /metrics`: the Prometheus text page, behind a bearer token on the API listener
//! or open on a listener of its own.

use crate::error::ApiError;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply as _};

/// Renders the current metrics in the Prometheus text format.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// The page.
    async fn render(&self) -> String;
}

/// Where the metrics come from and who may read them.
#[derive(Clone)]
pub struct MetricsEndpoint {
    source: Arc<dyn MetricsSource>,
    token: Option<Arc<SecretString>>,
}

impl MetricsEndpoint {
    /// Serves `source`; with `token`, only to requests with `Authorization: Bearer
    /// <token>`.
    #[must_use]
    pub fn new(source: Arc<dyn MetricsSource>, token: Option<SecretString>) -> Self {
        Self {
            source,
            token: token.map(Arc::new),
        }
    }

    fn allows(&self, authorization: Option<&str>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let Some(given) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        constant_time_eq(given.trim().as_bytes(), token.expose_secret().as_bytes())
    }
}

/// Compares without stopping at the first difference, so timing does not reveal how
/// much of a guessed token is right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The Prometheus text format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Answers one metrics request.
pub(crate) async fn respond(endpoint: MetricsEndpoint, authorization: Option<String>) -> Response {
    if !endpoint.allows(authorization.as_deref()) {
        let mut response = ApiError::Unauthorized.to_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="metrics""#),
        );
        return response;
    }
    let body = endpoint.source.render().await;
    let mut response = warp::reply::with_status(body, StatusCode::OK).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// `GET /metrics` alone, for a listener of its own.
#[must_use]
pub fn metrics_routes(endpoint: MetricsEndpoint) -> BoxedFilter<(Response,)> {
    warp::path!("metrics")
        .and(warp::get())
        .and(warp::any().map(move || endpoint.clone()))
        .and(warp::header::optional::<String>("authorization"))
        .then(respond)
        .boxed()
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve_metrics<S>(listener: TcpListener, endpoint: MetricsEndpoint, shutdown: S)
where
    S: Future<Output = ()> + Send + 'static,
{
    warp::serve(metrics_routes(endpoint))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    #[async_trait]
    impl MetricsSource for Fixed {
        async fn render(&self) -> String {
            "# TYPE up gauge\nup 1\n".to_owned()
        }
    }

    #[tokio::test]
    async fn the_token_is_required_when_configured() {
        let endpoint =
            MetricsEndpoint::new(Arc::new(Fixed), Some(SecretString::from("s3cret-token")));
        let routes = metrics_routes(endpoint);
        for auth in [None, Some("Bearer wrong"), Some("Basic czNjcmV0LXRva2Vu")] {
            let mut req = warp::test::request().path("/metrics");
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let res = req.reply(&routes).await;
            assert_eq!(res.status(), 401, "{auth:?} must be refused");
            assert!(!String::from_utf8_lossy(res.body()).contains("up 1"));
        }
        let res = warp::test::request()
            .path("/metrics")
            .header("authorization", "Bearer s3cret-token")
            .reply(&routes)
            .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], CONTENT_TYPE);
        assert_eq!(res.body().as_ref(), b"# TYPE up gauge\nup 1\n");
    }

    #[tokio::test]
    async fn without_a_token_it_is_open() {
        let routes = metrics_routes(MetricsEndpoint::new(Arc::new(Fixed), None));
        let res = warp::test::request().path("/metrics").reply(&routes).await;
        assert_eq!(res.status(), 200);
    }
}
