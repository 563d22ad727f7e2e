//! `?limit=N&after=ID` on list endpoints, and the `Link: <...>; rel="next"` header.

use crate::config::PublicUrl;
use crate::dto::Keyed;
use crate::error::ApiError;
use crate::reply;
use acmeport_domain::{Listing, Page};
use serde::Serialize;
use warp::http::{header, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

/// Extracts the page asked for. A malformed `limit` or `after`, or any other parameter,
/// is a 400 naming it (as unknown body fields are).
pub(crate) fn page() -> impl Filter<Extract = (Page,), Error = Rejection> + Clone {
    page_with(&[])
}

/// As [`page`], for a list that also takes the query parameters `others` (which its
/// handler reads).
pub(crate) fn page_with(
    others: &'static [&'static str],
) -> impl Filter<Extract = (Page,), Error = Rejection> + Clone {
    warp::query::<Vec<(String, String)>>().and_then(
        move |pairs: Vec<(String, String)>| async move {
            if let Some((name, _)) = pairs.iter().find(|(name, _)| {
                !matches!(name.as_str(), "limit" | "after") && !others.contains(&name.as_str())
            }) {
                return Err(warp::reject::custom(ApiError::bad_request(format!(
                    "unknown query parameter `{name}`"
                ))));
            }
            parse(&pairs).map_err(warp::reject::custom)
        },
    )
}

fn parse(pairs: &[(String, String)]) -> Result<Page, ApiError> {
    let mut limit = None;
    let mut after = None;
    for (name, value) in pairs {
        match name.as_str() {
            "limit" => {
                let n: u32 = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=Page::MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "limit: must be an integer from 1 to {}",
                            Page::MAX_LIMIT
                        ))
                    })?;
                limit = Some(n);
            }
            "after" => {
                let id: i64 = value
                    .parse()
                    .map_err(|_| ApiError::bad_request("after: must be an integer id"))?;
                after = Some(id);
            }
            _ => {}
        }
    }
    Ok(Page::new(limit, after))
}

/// A page of a list as the API answers it: a JSON object keyed by id, with a `Link`
/// header to the next page while more rows exist. `item` gives each row's id and DTO.
pub(crate) fn keyed_response<R, T: Serialize>(
    base: &PublicUrl,
    path: &str,
    page: Page,
    listing: &Listing<R>,
    item: impl Fn(&R) -> (i64, T),
) -> Response {
    let rows: Vec<(i64, T)> = listing.items.iter().map(item).collect();
    let last = rows.last().map(|(id, _)| *id);
    let response = reply::json(StatusCode::OK, &Keyed(rows));
    match last {
        Some(last) if listing.has_more => {
            reply::with_header(response, header::LINK, &next_link(base, path, page, last))
        }
        _ => response,
    }
}

/// The `Link` header value pointing at the page after `last_id`.
pub(crate) fn next_link(base: &PublicUrl, path: &str, page: Page, last_id: i64) -> String {
    format!(
        "<{}?limit={}&after={last_id}>; rel=\"next\"",
        base.join(path),
        page.limit()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn pages_parse_and_name_bad_parameters() {
        let page = parse(&pairs(&[("limit", "2"), ("after", "7"), ("x", "y")])).expect("valid");
        assert_eq!((page.limit(), page.after()), (2, Some(7)));
        assert_eq!(parse(&[]).expect("valid"), Page::default());
        for (q, field) in [
            (("limit", "0"), "limit"),
            (("limit", "abc"), "limit"),
            (("limit", "1001"), "limit"),
            (("after", "x"), "after"),
        ] {
            let err = parse(&pairs(&[q])).expect_err("must be refused");
            assert!(err.to_string().starts_with(field), "{err}");
        }
    }

    #[test]
    fn link_points_at_the_next_page() {
        let base = PublicUrl::parse("https://api.example.com").expect("valid");
        let link = next_link(&base, "/api/order", Page::new(Some(2), None), 9);
        assert_eq!(
            link,
            "<https://api.example.com/api/order?limit=2&after=9>; rel=\"next\""
        );
    }
}
