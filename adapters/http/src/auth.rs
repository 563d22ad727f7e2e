//! HTTP Basic authentication: a username and password, or an API token in the username
//! field (with any password).
//!
//! warp has no Basic-auth filter, so the header is decoded here. Credentials never reach
//! a log line: only the user id of a successful login is recorded on the request span.

use crate::error::ApiError;
use crate::login_guard::LoginOutcome;
use crate::routes::Api;
use acmeport_domain::service::AuthError;
use acmeport_domain::{Password, User};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::net::IpAddr;
use warp::http::{header, HeaderMap};
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

/// Checks the credentials of a request.
///
/// A username that carries a validly signed token is treated as a token only, so that an
/// expired token is refused as such and never looked up (and logged) as a username.
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
) -> Result<User, ApiError> {
    let credentials = parse_basic(headers).ok_or(ApiError::Unauthorized)?;
    let service = api.service();
    let user = if service
        .ports()
        .signer
        .verify(&credentials.username)
        .is_some()
    {
        service.authenticate_token(&credentials.username).await?
    } else {
        let check = service.authenticate(&credentials.username, &credentials.password);
        let is_wrong = |e: &AuthError| matches!(e, AuthError::InvalidCredentials);
        match api
            .login_guard()
            .login(&credentials.username, client, check, is_wrong)
            .await
        {
            LoginOutcome::Checked(result) => result?,
            LoginOutcome::Refused(refused) => return Err(refused.into()),
        }
    };
    tracing::Span::current().record("user.id", user.id.get());
    Ok(user)
}

/// A filter that extracts the authenticated user, or rejects with 401.
pub(crate) fn user(api: Api) -> impl Filter<Extract = (User,), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and(crate::limits::client_address())
        .and_then(move |headers: HeaderMap, client: Option<IpAddr>| {
            let api = api.clone();
            async move {
                authenticate(&api, &headers, client)
                    .await
                    .map_err(warp::reject::custom)
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
