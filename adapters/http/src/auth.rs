//! HTTP Basic authentication: a username and password, or an API token in the username
//! field (with any password); and named API keys, as Bearer token or Basic username.
//!
//! warp has no Basic-auth filter, so the header is decoded here. Credentials never reach
//! a log line: only the user id of a successful login is recorded on the request span.

use crate::error::ApiError;
use crate::login_guard::LoginOutcome;
use crate::routes::Api;
use acmeport_domain::service::{AuthError, API_KEY_PREFIX};
use acmeport_domain::{CertificateId, OrderId, Password, Principal, User};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::net::IpAddr;
use warp::http::{header, HeaderMap, Method};
use warp::path::FullPath;
use warp::{Filter, Rejection};

/// The two halves of a Basic `Authorization` header.
pub(crate) struct BasicCredentials {
    pub(crate) username: String,
    pub(crate) password: Password,
}

/// Decodes `Authorization: Basic base64(user:password)`. `None` for anything else.
pub(crate) fn parse_basic(headers: &HeaderMap) -> Option<BasicCredentials> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    // RFC 7617: the user-id cannot contain a colon; the password may.
    let (username, password) = decoded.split_once(':')?;
    Some(BasicCredentials {
        username: username.to_owned(),
        password: Password::new(password),
    })
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Password,
    Token,
    ApiKey,
}

/// An API key in `Authorization: Bearer <secret>`.
fn parse_bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim().to_owned())
}

/// Checks the credentials of a request.
///
/// A username shaped like a token is treated as a token only, so that an expired token, or
/// one signed by another key, is refused as such and never looked up (and logged) as a
/// username. An
/// API key (`apk_...`) comes as a Bearer token or as the Basic username.
///
/// Password logins (unknown usernames included) pass the [`LoginGuard`] of the API: a
/// bounded number of password checks at once, and rate limits on failed logins per
/// client address and per username.
///
/// [`LoginGuard`]: crate::login_guard::LoginGuard
pub(crate) async fn authenticate(
    api: &Api,
    headers: &HeaderMap,
    client: Option<IpAddr>,
) -> Result<(Principal, Via), ApiError> {
    let service = api.service();
    if let Some(secret) = parse_bearer(headers) {
        let principal = service.authenticate_api_key(&secret).await?;
        record(&principal);
        return Ok((principal, Via::ApiKey));
    }
    let credentials = parse_basic(headers).ok_or(ApiError::Unauthorized)?;
    let (principal, via) = if credentials.username.starts_with(API_KEY_PREFIX) {
        (
            service.authenticate_api_key(&credentials.username).await?,
            Via::ApiKey,
        )
    } else if service
        .ports()
        .signer
        .is_token_shaped(&credentials.username)
    {
        // Also a token signed by another key or tampered with: the token check refuses
        // it, and it is never looked up (nor logged) as a username.
        let user = service.authenticate_token(&credentials.username).await?;
        (Principal::user(user), Via::Token)
    } else {
        let check = service.authenticate(&credentials.username, &credentials.password);
        let is_wrong = |e: &AuthError| matches!(e, AuthError::InvalidCredentials);
        let user = match api
            .login_guard()
            .login(&credentials.username, client, check, is_wrong)
            .await
        {
            LoginOutcome::Checked(result) => result?,
            LoginOutcome::Refused(refused) => return Err(refused.into()),
        };
        (Principal::user(user), Via::Password)
    };
    record(&principal);
    Ok((principal, via))
}

fn record(principal: &Principal) {
    tracing::Span::current().record("user.id", principal.user.id.get());
}

/// Holds an API key to its scope: keys never manage users, keys or grants, never mint
/// tokens nor read the audit log; a read-only key only reads; a key limited to orders
/// reaches only those orders and their certificates.
async fn check_scope(
    api: &Api,
    principal: &Principal,
    method: &Method,
    path: &str,
) -> Result<(), ApiError> {
    let Some(scope) = principal.scope() else {
        return Ok(());
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let forbidden = |reason: &str| Err(ApiError::Forbidden(format!("API key: {reason}")));
    if matches!(
        segments.get(1),
        Some(&("users" | "keys" | "token" | "audit"))
    ) {
        return forbidden("cannot manage users, keys or tokens");
    }
    if scope.read_only && !(method == Method::GET || method == Method::HEAD) {
        return forbidden("read-only");
    }
    if scope.orders.is_some() {
        let id = segments.get(2).and_then(|s| s.parse::<i64>().ok());
        let allowed = match (segments.get(1), id) {
            (Some(&"resource" | &"openapi.json"), None) => true,
            (Some(&"order"), Some(id)) => scope.allows_order(OrderId::new(id)),
            (Some(&"certificate"), Some(id)) => {
                match api
                    .service()
                    .get_certificate(&principal.user, CertificateId::new(id))
                    .await
                {
                    Ok(certificate) => scope.allows_order(certificate.order_id),
                    // Let the handler give its usual answer for a missing certificate.
                    Err(_) => true,
                }
            }
            _ => false,
        };
        if !allowed {
            return forbidden("limited to other orders");
        }
    }
    Ok(())
}

/// A filter that extracts the caller, held to its API key's scope; rejects with 401
/// (bad credentials) or 403 (outside the key's scope).
pub(crate) fn principal(
    api: Api,
) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(crate::limits::client_address())
        .and_then(
            move |method: Method, path: FullPath, headers: HeaderMap, client: Option<IpAddr>| {
                let api = api.clone();
                async move {
                    let (principal, _) = authenticate(&api, &headers, client)
                        .await
                        .map_err(warp::reject::custom)?;
                    check_scope(&api, &principal, &method, path.as_str())
                        .await
                        .map_err(warp::reject::custom)?;
                    Ok::<_, Rejection>(principal)
                }
            },
        )
}

/// A filter that extracts the authenticated user, or rejects with 401.
pub(crate) fn user(api: Api) -> impl Filter<Extract = (User,), Error = Rejection> + Clone {
    principal(api).map(|p: Principal| p.user)
}

/// A filter for a user who logged in with their password: a token or an API key cannot
/// be exchanged for a new token (403).
pub(crate) fn password_user(api: Api) -> impl Filter<Extract = (User,), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and(crate::limits::client_address())
        .and_then(move |headers: HeaderMap, client: Option<IpAddr>| {
            let api = api.clone();
            async move {
                match authenticate(&api, &headers, client).await {
                    Ok((principal, Via::Password)) => Ok(principal.user),
                    Ok(_) => Err(warp::reject::custom(ApiError::Forbidden(
                        "a new token needs the password; a token or API key cannot mint one".into(),
                    ))),
                    Err(e) => Err(warp::reject::custom(e)),
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("ascii"),
        );
        h
    }

    #[test]
    fn basic_headers_decode() {
        let c = parse_basic(&headers(&format!(
            "Basic {}",
            STANDARD.encode("alice:pa:ss")
        )))
        .expect("valid");
        assert_eq!(c.username, "alice");
        assert_eq!(
            c.password.expose(),
            "pa:ss",
            "the password keeps its colons"
        );
        let c =
            parse_basic(&headers(&format!("basic {}", STANDARD.encode("tok:")))).expect("valid");
        assert_eq!((c.username.as_str(), c.password.expose()), ("tok", ""));
    }

    #[test]
    fn other_headers_are_no_credentials() {
        for bad in [
            "Bearer abc".to_owned(),
            "Basic".to_owned(),
            "Basic !!!notbase64".to_owned(),
            format!("Basic {}", STANDARD.encode("no-colon")),
            format!("Digest {}", STANDARD.encode("a:b")),
        ] {
            assert!(
                parse_basic(&headers(&bad)).is_none(),
                "{bad} must not decode"
            );
        }
        assert!(parse_basic(&HeaderMap::new()).is_none());
    }
}
