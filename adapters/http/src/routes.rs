//! The route table, the request log, and the server loop.

use crate::config::{HttpConfig, PublicUrl};
use crate::error::{self, ApiError, WrongMethod};
use crate::handlers::{accounts, certificates, events, health, orders, security, users};
use crate::limits::ListenerLimits;
use crate::login_guard::{LoginGuard, LoginLimits};
use crate::metrics::MetricsEndpoint;
use crate::readiness::Readiness;
use crate::{auth, body, pagination};
use acmeport_domain::Acmeport;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use warp::filters::BoxedFilter;
use warp::http::Method;
use warp::reply::Response;
use warp::{Filter, Rejection};

/// What the handlers need: the service, the readiness probe and the settings.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    service: Acmeport,
    readiness: Arc<dyn Readiness>,
    config: HttpConfig,
    metrics: Option<MetricsEndpoint>,
    login_guard: Arc<LoginGuard>,
}

impl Api {
    /// The API over `service`. New orders and reissues wake the workers through the
    /// service's own work signal (`Acmeport::with_work_signal`), not through the API.
    #[must_use]
    pub fn new(service: Acmeport, readiness: Arc<dyn Readiness>, config: HttpConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                service,
                readiness,
                config,
                metrics: None,
                login_guard: Arc::default(),
            }),
        }
    }

    /// This API with one setting changed (the builder methods below).
    fn with(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| (*shared).clone());
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Serves `GET /metrics` on the API listener (give the endpoint a bearer token).
    #[must_use]
    pub fn with_metrics(self, endpoint: MetricsEndpoint) -> Self {
        self.with(|inner| inner.metrics = Some(endpoint))
    }

    /// Protects password logins with these limits instead of the defaults.
    #[must_use]
    pub fn with_login_limits(self, limits: LoginLimits) -> Self {
        self.with(|inner| inner.login_guard = Arc::new(LoginGuard::new(limits)))
    }

    pub(crate) fn login_guard(&self) -> &LoginGuard {
        &self.inner.login_guard
    }

    pub(crate) fn service(&self) -> &Acmeport {
        &self.inner.service
    }

    pub(crate) fn readiness(&self) -> &dyn Readiness {
        self.inner.readiness.as_ref()
    }

    pub(crate) fn public_url(&self) -> &PublicUrl {
        &self.inner.config.public_url
    }

    /// The absolute URL of an API path.
    pub(crate) fn url(&self, path: &str) -> String {
        self.inner.config.public_url.join(path)
    }
}

/// Matches one method only; other methods fall through to the path's 405 route.
fn method(expected: Method) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::method()
        .and_then(move |actual: Method| {
            let matches = actual == expected;
            async move {
                if matches {
                    Ok(())
                } else {
                    Err(warp::reject::not_found())
                }
            }
        })
        .untuple_one()
}

/// The 405 answer for a path whose methods did not match.
fn not_allowed<F>(path: F, allow: &'static str) -> BoxedFilter<(Response,)>
where
    F: Filter<Extract = (), Error = Rejection> + Clone + Send + Sync + 'static,
{
    path.and_then(
        move || async move { Err::<Response, _>(warp::reject::custom(WrongMethod { allow })) },
    )
    .boxed()
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|e| e.to_response())
}

fn custom(name: &'static [u8]) -> Method {
    Method::from_bytes(name).expect("a valid method token")
}

/// Every route of the API, with error recovery, one span and one log line per request.
pub fn routes(api: Api) -> BoxedFilter<(Response,)> {
    let limit = api.inner.config.body_limit;
    let with_api = {
        let api = api.clone();
        warp::any().map(move || api.clone())
    };
    let user = auth::user(api.clone());
    let principal = auth::principal(api.clone());

    // /api/users, /api/users/<id>, /api/token, /api/resource
    let users_path = || warp::path!("api" / "users");
    let user_path = || warp::path!("api" / "users" / i64);
    let users = users_path()
        .and(method(Method::POST))
        .and(with_api.clone())
        .and(user.clone())
        .and(body::json(limit))
        .then(users::create)
        .map(respond)
        .or(users_path()
            .and(method(Method::GET))
            .and(with_api.clone())
            .and(principal.clone())
            .and(pagination::page())
            .then(security::list_users)
            .map(respond))
        .unify()
        .or(not_allowed(users_path(), "GET, POST"))
        .unify()
        .or(user_path()
            .and(method(Method::GET))
            .and(with_api.clone())
            .and(user.clone())
            .then(users::get)
            .map(respond))
        .unify()
        .or(user_path()
            .and(method(Method::PATCH))
            .and(with_api.clone())
            .and(principal.clone())
            .and(body::json(limit))
            .then(security::update_user)
            .map(respond))
        .unify()
        .or(user_path()
            .and(method(Method::DELETE))
            .and(with_api.clone())
            .and(principal.clone())
            .then(security::delete_user)
            .map(respond))
        .unify()
        .or(not_allowed(
            user_path().map(|_| ()).untuple_one(),
            "GET, PATCH, DELETE",
        ))
        .unify()
        .or(warp::path!("api" / "token")
            .and(method(Method::GET))
            .and(with_api.clone())
            .and(auth::password_user(api.clone()))
            .then(users::token)
            .map(respond))
        .unify()
        .or(not_allowed(warp::path!("api" / "token"), "GET"))
        .unify()
        .or(warp::path!("api" / "resource")
            .and(method(Method::GET))
            .and(user.clone())
            .then(users::resource)
            .map(respond))
        .unify()
        .or(not_allowed(warp::path!("api" / "resource"), "GET"))
        .unify()
        .boxed();

    // /api/users/<id>/password, /api/users/<id>/domains, /api/keys, /api/keys/<id>,
    // /api/audit, /api/acme/<id>/key-rollover
    let password_path = || warp::path!("api" / "users" / i64 / "password");
    let grants_path = || warp::path!("api" / "users" / i64 / "domains");
    let keys_path = || warp::path!("api" / "keys");
    let key_path = || warp::path!("api" / "keys" / i64);
    let rollover_path = || warp::path!("api" / "acme" / i64 / "key-rollover");
    let security = password_path()
        .and(method(Method::PUT))
        .and(with_api.clone())
        .and(principal.clone())
        .and(body::json(limit))
        .then(security::change_password)
        .map(respond)
        .or(not_allowed(
            password_path().map(|_| ()).untuple_one(),
            "PUT",
        ))
        .unify()
        .or(grants_path()
            .and(method(Method::GET))
            .and(with_api.clone())
            .and(principal.clone())
            .then(security::list_grants)
            .map(respond))
        .unify()
        .or(grants_path()
            .and(method(Method::POST))
            .and(with_api.clone())
            .and(principal.clone())
            .and(body::json(limit))
            .then(security::add_grant)
            .map(respond))
        .unify()
        .or(grants_path()
            .and(method(Method::DELETE))
            .and(with_api.clone())
            .and(principal.clone())
            .and(body::json(limit))
            .then(security::remove_grant)
            .map(respond))
        .unify()
        .or(not_allowed(
            grants_path().map(|_| ()).untuple_one(),
            "GET, POST, DELETE",
        ))
        .unify()
        .or(keys_path()
            .and(method(Method::POST))
            .and(with_api.clone())
            .and(principal.clone())
            .and(body::json(limit))
            .then(security::create_key)
            .map(respond))
        .unify()
        .or(keys_path()
            .and(method(Method::GET))
            .and(with_api.clone())
            .and(principal.clone())
            .and(pagination::page())
            .then(security::list_keys)
            .map(respond))
        .unify()
        .or(not_allowed(keys_path(), "GET, POST"))
        .unify()
        .or(key_path()
            .and(method(Method::GET))
            .and(with_api.clone())
            .and(principal.clone())
            .then(security::get_key)
            .map(respond))
        .unify()
        .or(key_path()
            .and(method(Method::DELETE))
            .and(with_api.clone())
            .and(principal.clone())
            .then(security::revoke_key)
            .map(respond))
        .unify()
        .or(not_allowed(
            key_path().map(|_| ()).untuple_one(),
            "GET, DELETE",
        ))
        .unify()
        .or(warp::path!("api" / "audit")
            .and(method(Method::GET))
            .and(with_api.clone())
            .and(principal.clone())
            .and(pagination::page_with(&["user", "since", "until"]))
            .and(warp::query::<Vec<(String, String)>>())
            .then(security::list_audit)
            .map(respond))
        .unify()
        .or(not_allowed(warp::path!("api" / "audit"), "GET"))
        .unify()
        .or(rollover_path()
            .and(method(Method::POST))
            .and(with_api.clone())
            .and(principal.clone())
            .then(security::roll_key)
            .map(respond))
        .unify()
        .or(not_allowed(
            rollover_path().map(|_| ()).untuple_one(),
            "POST",
        ))
        .unify()
        .boxed();

    // /api/acme, /api/acme/<id>
    let accounts_path = || warp::path!("api" / "acme");
    let account_path = || warp::path!("api" / "acme" / i64);
    let accounts = accounts_path()
        .and(method(Method::POST))
        .and(with_api.clone())
        .and(user.clone())
        .and(body::json(limit))
        .then(accounts::register)
        .map(respond)
        .or(accounts_path()
            .and(method(Method::GET))
            .and(with_api.clone())
            .and(user.clone())
            .and(pagination::page())
            .then(accounts::list)
            .map(respond))
        .unify()
        .or(not_allowed(accounts_path(), "GET, POST"))
        .unify()
        .or(account_path()
            .and(method(Method::GET))
            .and(with_api.clone())
            .and(user.clone())
            .then(accounts::get)
            .map(respond))
        .unify()
        .or(account_path()
            .and(method(Method::DELETE))
            .and(with_api.clone())
            .and(user.clone())
            .then(accounts::deregister)
            .map(respond))
        .unify()
        .or(not_allowed(
            account_path().map(|_| ()).untuple_one(),
            "GET, DELETE",
        ))
        .unify()
        .boxed();

    // /api/order, /api/order/<id>
    let orders_path = || warp::path!("api" / "order");
    let order_path = || warp::path!("api" / "order" / i64);
    let reissue_path = || warp::path!("api" / "order" / i64 / "reissue");
    let orders = orders_path()
        .and(method(Method::POST))
        .and(with_api.clone())
        .and(principal.clone())
        .and(body::json(limit))
        .then(orders::create)
        .map(respond)
        .or(orders_path()
            .and(method(Method::GET))
            .and(with_api.clone())
            .and(user.clone())
            .and(pagination::page())
            .then(orders::list)
            .map(respond))
        .unify()
        .or(not_allowed(orders_path(), "GET, POST"))
        .unify()
        .or(order_path()
            .and(method(Method::GET))
            .and(with_api.clone())
            .and(user.clone())
            .then(orders::get)
            .map(respond))
        .unify()
        .or(order_path()
            .and(method(custom(b"COPY")))
            .and(with_api.clone())
            .and(principal.clone())
            .then(orders::reorder)
            .map(respond))
        .unify()
        .or(order_path()
            .and(method(Method::PATCH))
            .and(with_api.clone())
            .and(user.clone())
            .and(body::json(limit))
            .then(orders::update)
            .map(respond))
        .unify()
        .or(not_allowed(
            order_path().map(|_| ()).untuple_one(),
            "GET, PATCH, COPY",
        ))
        .unify()
        // The alias of COPY for clients that only speak the standard methods.
        .or(reissue_path()
            .and(method(Method::POST))
            .and(with_api.clone())
            .and(principal.clone())
            .then(orders::reissue)
            .map(respond))
        .unify()
        .or(not_allowed(
            reissue_path().map(|_| ()).untuple_one(),
            "POST",
        ))
        .unify()
        .boxed();

    // /api/certificate, /api/certificate/<id>
    let certificates_path = || warp::path!("api" / "certificate");
    let certificate_path = || warp::path!("api" / "certificate" / i64);
    let purge_path = || warp::path!("api" / "certificate" / i64 / "purge");
    let certificates = certificates_path()
        .and(method(Method::GET))
        .and(with_api.clone())
        .and(user.clone())
        .and(pagination::page())
        .then(certificates::list)
        .map(respond)
        .or(not_allowed(certificates_path(), "GET"))
        .unify()
        .or(certificate_path()
            .and(method(Method::GET))
            .and(with_api.clone())
            .and(principal.clone())
            .then(certificates::get)
            .map(respond))
        .unify()
        .or(certificate_path()
            .and(method(Method::DELETE))
            .and(with_api.clone())
            .and(user.clone())
            .and(body::optional_json(limit))
            .then(certificates::revoke)
            .map(respond))
        .unify()
        .or(certificate_path()
            .and(method(custom(b"PURGE")))
            .and(with_api.clone())
            .and(user.clone())
            .and(body::optional_json(limit))
            .then(certificates::purge)
            .map(respond))
        .unify()
        .or(not_allowed(
            certificate_path().map(|_| ()).untuple_one(),
            "GET, DELETE, PURGE",
        ))
        .unify()
        // The alias of PURGE for clients that only speak the standard methods.
        .or(purge_path()
            .and(method(Method::POST))
            .and(with_api.clone())
            .and(user.clone())
            .and(body::optional_json(limit))
            .then(certificates::purge_by_post)
            .map(respond))
        .unify()
        .or(not_allowed(purge_path().map(|_| ()).untuple_one(), "POST"))
        .unify()
        .boxed();

    // /api/events
    let events = warp::path!("api" / "events")
        .and(method(Method::GET))
        .and(with_api.clone())
        .and(user.clone())
        .and(pagination::page())
        .then(events::list)
        .map(respond)
        .or(not_allowed(warp::path!("api" / "events"), "GET"))
        .unify()
        .boxed();

    // /metrics: a bearer token of its own, not a user's credentials; 404 when the
    // metrics are not served here.
    let metrics = {
        let api = api.clone();
        warp::path!("metrics")
            .and(method(Method::GET))
            .and(warp::header::optional::<String>("authorization"))
            .then(move |authorization: Option<String>| {
                let endpoint = api.inner.metrics.clone();
                async move {
                    match endpoint {
                        Some(endpoint) => crate::metrics::respond(endpoint, authorization).await,
                        None => ApiError::NotFound.to_response(),
                    }
                }
            })
            .or(not_allowed(warp::path!("metrics"), "GET"))
            .unify()
            .boxed()
    };

    // Probes and the API description.
    let health = warp::path!("healthz")
        .and(method(Method::GET))
        .then(health::healthz)
        .map(respond)
        .or(not_allowed(warp::path!("healthz"), "GET"))
        .unify()
        .or(warp::path!("readyz")
            .and(method(Method::GET))
            .and(with_api.clone())
            .then(health::readyz)
            .map(respond))
        .unify()
        .or(not_allowed(warp::path!("readyz"), "GET"))
        .unify()
        .or(warp::path!("api" / "openapi.json")
            .and(method(Method::GET))
            .and(with_api.clone())
            .then(health::openapi_json)
            .map(respond))
        .unify()
        .or(not_allowed(warp::path!("api" / "openapi.json"), "GET"))
        .unify()
        .boxed();

    users
        .or(security)
        .unify()
        .or(accounts)
        .unify()
        .or(orders)
        .unify()
        .or(certificates)
        .unify()
        .or(events)
        .unify()
        .or(metrics)
        .unify()
        .or(health)
        .unify()
        .or(crate::docs::routes())
        .unify()
        .or(malformed_id(user))
        .unify()
        .recover(error::recover)
        .unify()
        .with(warp::log::custom(log_request))
        .with(warp::trace(request_span))
        .map(warp::Reply::into_response)
        .boxed()
}

/// What no route matched because the id segment of a path with ids
/// (`/api/order/abc`, `/api/acme/x/key-rollover`) is not an integer: a 400 naming it
/// (not a 404), after authentication, as for any other malformed input.
fn malformed_id(
    user: impl Filter<Extract = (acmeport_domain::User,), Error = Rejection>
        + Clone
        + Send
        + Sync
        + 'static,
) -> BoxedFilter<(Response,)> {
    warp::path("api")
        .and(warp::path::param::<String>())
        .and(warp::path::param::<String>())
        .and_then(|collection: String, id: String| async move {
            let has_ids = matches!(
                collection.as_str(),
                "users" | "keys" | "acme" | "order" | "certificate"
            );
            if has_ids && id.parse::<i64>().is_err() {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(warp::path::tail())
        .and(user)
        .map(|_, _| ApiError::bad_request("id: must be an integer").to_response())
        .boxed()
}

/// The span of one request. `user.id` is filled in by authentication; nothing else
/// from the request (no header, no query, no body) is recorded, so no credential can
/// end up in a log.
fn request_span(info: warp::trace::Info<'_>) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %info.method(),
        path = %info.path(),
        user.id = tracing::field::Empty,
    )
}

/// The one log line per request, inside its span (which carries method, path and
/// user id).
fn log_request(info: warp::log::Info<'_>) {
    let latency_ms = info.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        target: "acmeport_http::access",
        status = info.status().as_u16(),
        latency_ms = format_args!("{latency_ms:.1}"),
        "request handled"
    );
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests
/// in flight; with the default [`ListenerLimits`].
pub async fn serve<S>(listener: TcpListener, api: Api, shutdown: S)
where
    S: Future<Output = ()> + Send + 'static,
{
    serve_with_limits(listener, api, ListenerLimits::default(), shutdown).await;
}

/// [`serve`] within these listener limits (timeouts, connection caps).
pub async fn serve_with_limits<S>(
    listener: TcpListener,
    api: Api,
    limits: ListenerLimits,
    shutdown: S,
) where
    S: Future<Output = ()> + Send + 'static,
{
    crate::limits::serve_limited(listener, routes(api), limits, shutdown).await;
}
