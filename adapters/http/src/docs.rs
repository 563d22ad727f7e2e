//! `/api/docs`: the OpenAPI document rendered by Swagger UI, whose files are vendored in
//! `assets/swagger-ui` (see its README: version, checksums, license) and compiled into the
//! binary. No CDN, no download at build time. Public, like the document itself: neither
//! holds a secret.

use crate::error::WrongMethod;
use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply as _};

const INDEX: &str = include_str!("../assets/swagger-ui/index.html");
const INITIALIZER: &str = include_str!("../assets/swagger-ui/swagger-initializer.js");
const BUNDLE: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");

/// Scripts only from this origin (no inline script); Swagger UI sets inline styles and
/// shows inline SVG images; it fetches the document from this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The files of the page, by path under `/api/`.
const FILES: [(&str, &str, Asset); 4] = [
    ("docs", "text/html; charset=utf-8", Asset::Text(INDEX)),
    (
        "swagger-initializer.js",
        "text/javascript; charset=utf-8",
        Asset::Text(INITIALIZER),
    ),
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        Asset::Bytes(BUNDLE),
    ),
    (
        "swagger-ui.css",
        "text/css; charset=utf-8",
        Asset::Bytes(CSS),
    ),
];

#[derive(Clone, Copy)]
enum Asset {
    Text(&'static str),
    Bytes(&'static [u8]),
}

fn respond(content_type: &'static str, asset: Asset) -> Response {
    let body: &'static [u8] = match asset {
        Asset::Text(text) => text.as_bytes(),
        Asset::Bytes(bytes) => bytes,
    };
    let mut response = warp::reply::with_status(body, StatusCode::OK).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `GET /api/docs` and its files under `/api/docs/`; 405 for other methods.
pub(crate) fn routes() -> BoxedFilter<(Response,)> {
    let page = warp::path!("api" / "docs")
        .and(warp::get())
        .map(|| respond(FILES[0].1, FILES[0].2))
        .or(warp::path!("api" / "docs").and_then(|| async {
            Err::<Response, _>(warp::reject::custom(WrongMethod { allow: "GET" }))
        }))
        .unify();
    let files = warp::path!("api" / "docs" / String)
        .and(warp::method())
        .and_then(|name: String, method: warp::http::Method| async move {
            let Some((_, content_type, asset)) =
                FILES[1..].iter().find(|(file, _, _)| *file == name)
            else {
                return Err(warp::reject::not_found());
            };
            if method == warp::http::Method::GET {
                Ok(respond(content_type, *asset))
            } else {
                Err(warp::reject::custom(WrongMethod { allow: "GET" }))
            }
        });
    page.or(files).unify().boxed()
}
