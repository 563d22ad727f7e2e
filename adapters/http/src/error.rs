//! The one HTTP error type, the translation of every domain error into it, and the one
//! function that turns it (or a warp rejection) into a response.
//!
//! Clients get a JSON body `{"status": "<reason>"}`. Reasons of 4xx answers are the
//! domain's readable messages. Server-side failures are logged with their whole source
//! chain and answered with a fixed text, so no database or library message ever reaches
//! a client.

use crate::dto::StatusResponse;
use acmeport_domain::ports::{AcmeError, RepoError};
use acmeport_domain::service::{
    AuthError, CreateOrderError, CreateUserError, DeregisterAccountError, LookupError, ManageError,
    QuotaExceeded, QuotaKind, RegisterAccountError, ReorderError, RevokeError,
};
use acmeport_domain::BoxError;
use std::convert::Infallible;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Rejection;

/// Everything a request can fail with. Each variant documents its status code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: the input is wrong, or the id does not exist or is another user's (one text
    /// for both, decided by the domain).
    #[error("{0}")]
    BadRequest(String),
    /// 401 with `WWW-Authenticate`: missing, wrong or expired credentials.
    #[error("authentication required")]
    Unauthorized,
    /// 403: authenticated but not allowed (a non-admin creating users).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such route.
    #[error("not found")]
    NotFound,
    /// 405: the route exists, not with this method; `allow` lists the methods it has.
    /// Raised as a `WrongMethod` rejection by the fallback route of each path.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The `Allow` header's value.
        allow: &'static str,
    },
    /// 415: a request body that is not `application/json` (so that a cross-site form or
    /// `text/plain` post cannot act for a logged-in browser).
    #[error("request body must be application/json")]
    UnsupportedMediaType,
    /// 409: the object changed under this request more often than the service retries
    /// (another request or a worker kept writing it); reading it again and retrying works.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than the configured limit.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit, bytes.
        limit: u64,
    },
    /// 429 with `Retry-After` (when known): a rate limit or quota was hit; the text names
    /// the limit.
    #[error("{reason}")]
    TooManyRequests {
        /// Which limit, and its setting.
        reason: String,
        /// When a retry can succeed, if known (sent as `Retry-After`).
        retry_after: Option<std::time::Duration>,
    },
    /// 503 with `Retry-After: 1`: too many password checks are waiting.
    #[error("too many logins in progress, try again shortly")]
    Busy,
    /// 502: the ACME server could not be reached or answered nonsense.
    #[error("the ACME server could not be reached")]
    Upstream(#[source] BoxError),
    /// 504: the ACME server did not answer in time.
    #[error("the ACME server did not answer in time")]
    UpstreamTimeout(String),
    /// 503: a dependency (the database) is unavailable.
    #[error("service unavailable")]
    Unavailable(#[source] BoxError),
    /// 500: a bug or a storage failure.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl warp::reject::Reject for ApiError {}

/// The rejection of a path's fallback route: the path exists, the method does not.
/// Kept apart from [`ApiError`] because it must lose against any error raised by the
/// route whose method did match (such as a 401 or 400).
#[derive(Debug)]
pub(crate) struct WrongMethod {
    pub(crate) allow: &'static str,
}

impl warp::reject::Reject for WrongMethod {}

impl ApiError {
    /// A 400 with this reason.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::BadRequest(reason.into())
    }

    /// A 500 caused by `source`.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        Self::Internal(source.into())
    }

    /// The status code of this error: the one place that decides it.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response: `{"status": reason}` plus the headers the status needs. Server-side
    /// failures are logged here with their causes.
    #[must_use]
    pub fn to_response(&self) -> Response {
        match self {
            Self::Internal(_) => tracing::error!(error = %chain(self), "request failed"),
            Self::Unavailable(_) | Self::Upstream(_) | Self::UpstreamTimeout(_) => {
                tracing::warn!(error = %chain(self), "request failed");
            }
            _ => {}
        }
        let mut response =
            crate::reply::json(self.status(), &StatusResponse::new(self.to_string()));
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="Authentication Required""#),
                );
            }
            Self::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::TooManyRequests {
                retry_after: Some(wait),
                ..
            } => {
                // Whole seconds, rounded up: a client waiting that long is never early.
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
            Self::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

/// The error and its sources, for logs.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Turns what no route accepted into a response: an [`ApiError`] raised by a filter of
/// the route that matched, else warp's own rejections, else 404.
pub(crate) async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let response = if let Some(error) = rejection.find::<ApiError>() {
        error.to_response()
    } else if let Some(WrongMethod { allow }) = rejection.find::<WrongMethod>() {
        ApiError::MethodNotAllowed { allow }.to_response()
    } else if rejection.is_not_found() {
        ApiError::NotFound.to_response()
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        ApiError::BadRequest(e.to_string()).to_response()
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::BadRequest(e.to_string()).to_response()
    } else {
        tracing::warn!(?rejection, "unexpected rejection");
        ApiError::NotFound.to_response()
    };
    Ok(response)
}

// ---------------------------------------------------------------------------------------
// Translation of the domain's errors.

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        match e {
            // The service already retried its conditional write; the caller may try again.
            RepoError::Conflict(_) => Self::Conflict(e.to_string()),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<AcmeError> for ApiError {
    fn from(e: AcmeError) -> Self {
        match e {
            // The server's problem document is readable and about the user's request
            // (bad contact, EAB required, rate limits, ...).
            AcmeError::Rejected(_) | AcmeError::ValidationFailed(_) | AcmeError::AlreadyRevoked => {
                Self::BadRequest(e.to_string())
            }
            AcmeError::Timeout(_) => Self::UpstreamTimeout(e.to_string()),
            AcmeError::Transport(_) => Self::Upstream(Box::new(e)),
            // The CA's rate limit, passed on with its Retry-After.
            AcmeError::RateLimited { retry_after, .. } => Self::TooManyRequests {
                reason: e.to_string(),
                retry_after,
            },
            // Stored credentials that cannot be used are our fault, not the caller's.
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<crate::login_guard::LoginRefused> for ApiError {
    fn from(refused: crate::login_guard::LoginRefused) -> Self {
        match refused {
            crate::login_guard::LoginRefused::TooManyFailures { which, retry_after } => {
                Self::TooManyRequests {
                    reason: format!("too many failed logins for this {which}, try again later"),
                    retry_after: Some(retry_after),
                }
            }
            crate::login_guard::LoginRefused::Busy => Self::Busy,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => Self::Unauthorized,
            AuthError::Repo(r) => r.into(),
        }
    }
}

/// A quota that the request itself breaks (too many names) is a 400; one that the user's
/// history breaks is a 429. Either way the text names the limit and its setting.
impl From<QuotaExceeded> for ApiError {
    fn from(q: QuotaExceeded) -> Self {
        if q.kind == QuotaKind::NamesPerOrder {
            Self::BadRequest(q.to_string())
        } else {
            Self::TooManyRequests {
                reason: q.to_string(),
                retry_after: q.retry_after,
            }
        }
    }
}

impl From<CreateUserError> for ApiError {
    fn from(e: CreateUserError) -> Self {
        match e {
            CreateUserError::Forbidden => Self::Forbidden(e.to_string()),
            CreateUserError::Duplicate(_) => Self::BadRequest(e.to_string()),
            CreateUserError::Hash(h) => Self::Internal(Box::new(h)),
            CreateUserError::Repo(r) => r.into(),
        }
    }
}

impl From<LookupError> for ApiError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::NotFound(_) => Self::BadRequest(e.to_string()),
            LookupError::Repo(r) => r.into(),
        }
    }
}

impl From<RegisterAccountError> for ApiError {
    fn from(e: RegisterAccountError) -> Self {
        match e {
            RegisterAccountError::DirectoryNotAllowed(_) => Self::BadRequest(e.to_string()),
            // At registration, unusable credentials come from the caller's `key`.
            RegisterAccountError::Acme(AcmeError::Credentials(reason)) => {
                Self::BadRequest(format!("key: {reason}"))
            }
            RegisterAccountError::Acme(a) => a.into(),
            RegisterAccountError::Quota(q) => q.into(),
            RegisterAccountError::Repo(r) => r.into(),
        }
    }
}

impl From<DeregisterAccountError> for ApiError {
    fn from(e: DeregisterAccountError) -> Self {
        match e {
            DeregisterAccountError::NotFound | DeregisterAccountError::AlreadyDeactivated => {
                Self::BadRequest(e.to_string())
            }
            DeregisterAccountError::Acme(a) => a.into(),
            DeregisterAccountError::Repo(r) => r.into(),
        }
    }
}

impl From<CreateOrderError> for ApiError {
    fn from(e: CreateOrderError) -> Self {
        match e {
            CreateOrderError::NotGranted(_)
            | CreateOrderError::AccountNotFound
            | CreateOrderError::AccountDeactivated
            | CreateOrderError::WildcardNeedsDns
            | CreateOrderError::UnknownProvider { .. }
            | CreateOrderError::CsrMismatch { .. }
            | CreateOrderError::InvalidCsr(_)
            | CreateOrderError::InvalidKey(_)
            | CreateOrderError::Identifiers(_) => Self::BadRequest(e.to_string()),
            CreateOrderError::Quota(q) => q.into(),
            CreateOrderError::Repo(r) => r.into(),
            CreateOrderError::Internal(_) => Self::Internal(Box::new(e)),
        }
    }
}

impl From<ReorderError> for ApiError {
    fn from(e: ReorderError) -> Self {
        match e {
            ReorderError::NotFound
            | ReorderError::NotGranted(_)
            | ReorderError::StillPending
            | ReorderError::AccountDeactivated => Self::BadRequest(e.to_string()),
            ReorderError::Quota(q) => q.into(),
            ReorderError::Repo(r) => r.into(),
        }
    }
}

impl From<RevokeError> for ApiError {
    fn from(e: RevokeError) -> Self {
        match e {
            RevokeError::NotFound | RevokeError::AlreadyRevoked => Self::BadRequest(e.to_string()),
            RevokeError::Acme(a) => a.into(),
            RevokeError::Repo(r) => r.into(),
        }
    }
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::NotFound(_) | ManageError::Invalid(_) => Self::BadRequest(e.to_string()),
            // Not part of the seed's contract (which answers a taken username with 400):
            // a name that is taken is a conflict with what exists.
            ManageError::Duplicate(_) => Self::Conflict(e.to_string()),
            ManageError::Forbidden(_) => Self::Forbidden(e.to_string()),
            ManageError::Unavailable(_) | ManageError::Hash(_) => Self::Internal(Box::new(e)),
            ManageError::Repo(r) => r.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_and_not_yours_share_one_text() {
        // The domain answers both with LookupError::NotFound; the text must not vary.
        let a = ApiError::from(LookupError::NotFound("order"));
        let b = ApiError::from(ReorderError::NotFound);
        assert_eq!(a.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            a.to_string(),
            b.to_string(),
            "GET and COPY must answer alike"
        );
        let c = ApiError::from(LookupError::NotFound("certificate"));
        let d = ApiError::from(RevokeError::NotFound);
        assert_eq!(
            c.to_string(),
            d.to_string(),
            "GET and DELETE must answer alike"
        );
        let e = ApiError::from(LookupError::NotFound("account"));
        let f = ApiError::from(DeregisterAccountError::NotFound);
        let g = ApiError::from(CreateOrderError::AccountNotFound);
        assert_eq!(e.to_string(), f.to_string());
        assert_eq!(e.to_string(), g.to_string());
    }

    #[test]
    fn a_write_that_keeps_conflicting_is_a_409_not_a_500() {
        let e = ApiError::from(RepoError::Conflict("order"));
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert!(e.to_string().contains("read it again"), "{e}");
        let d = ApiError::from(ManageError::Duplicate("API key of this name"));
        assert_eq!(d.status(), StatusCode::CONFLICT);
        // A taken username stays 400, as the seed's contract says.
        let u = ApiError::from(CreateUserError::Duplicate("bob".into()));
        assert_eq!(u.status(), StatusCode::BAD_REQUEST);
        // Other storage failures stay 500.
        let b = ApiError::from(RepoError::NotFound("order"));
        assert_eq!(b.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn internals_are_not_sent() {
        let e = ApiError::from(RepoError::Backend("database is locked at /var/db".into()));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.to_string(), "internal error");
        let e = ApiError::from(AcmeError::Transport("dns error: no such host".into()));
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY);
        assert!(!e.to_string().contains("no such host"), "{e}");
    }

    #[test]
    fn acme_refusals_are_the_callers_problem() {
        let e = ApiError::from(RegisterAccountError::Acme(AcmeError::Rejected(
            "urn:ietf:params:acme:error:invalidContact: bad domain".into(),
        )));
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.to_string().contains("invalidContact"), "{e}");
    }
}
