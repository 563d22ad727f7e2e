//! Reading JSON request bodies: a size limit that holds for chunked bodies too, and
//! parse errors that name the offending field.

use crate::error::ApiError;
use futures::TryStreamExt as _;
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

/// Extracts the body as `T`. Answers 415 unless it is declared `application/json`, 413
/// when it exceeds `limit` bytes (checked on the announced `Content-Length` before
/// reading, and again while reading), 400 naming the field when it is not valid JSON for
/// `T` (unknown fields included).
pub(crate) fn json<T>(limit: u64) -> impl Filter<Extract = (T,), Error = Rejection> + Clone
where
    T: DeserializeOwned + Send + 'static,
{
    warp::header::optional::<String>("content-type")
        .and_then(|declared: Option<String>| async move {
            if declared.as_deref().is_some_and(is_json) {
                Ok(())
            } else {
                Err(warp::reject::custom(ApiError::UnsupportedMediaType))
            }
        })
        .untuple_one()
        .and(warp::header::optional::<u64>("content-length"))
        .and_then(move |announced: Option<u64>| async move {
            match announced {
                Some(length) if length > limit => {
                    Err(warp::reject::custom(ApiError::PayloadTooLarge { limit }))
                }
                _ => Ok(()),
            }
        })
        .untuple_one()
        .and(warp::body::stream())
        .and_then(move |stream| async move {
            let bytes = read_limited(stream, limit)
                .await
                .map_err(warp::reject::custom)?;
            parse::<T>(&bytes).map_err(warp::reject::custom)
        })
}

/// As [`json`], for a body that may be left out: an empty body is `None`; a body that is
/// there must be declared `application/json` (415 otherwise).
pub(crate) fn optional_json<T>(
    limit: u64,
) -> impl Filter<Extract = (Option<T>,), Error = Rejection> + Clone
where
    T: DeserializeOwned + Send + 'static,
{
    warp::header::optional::<u64>("content-length")
        .and_then(move |announced: Option<u64>| async move {
            match announced {
                Some(length) if length > limit => {
                    Err(warp::reject::custom(ApiError::PayloadTooLarge { limit }))
                }
                _ => Ok(()),
            }
        })
        .untuple_one()
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::stream())
        .and_then(move |declared: Option<String>, stream| async move {
            let bytes = read_limited(stream, limit)
                .await
                .map_err(warp::reject::custom)?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            if !declared.as_deref().is_some_and(is_json) {
                return Err(warp::reject::custom(ApiError::UnsupportedMediaType));
            }
            parse::<T>(&bytes).map(Some).map_err(warp::reject::custom)
        })
}

/// True for `application/json`, with or without parameters (`; charset=utf-8`). A
/// browser cannot send this type across sites without a CORS preflight, which this API
/// never grants, so a form or `text/plain` post from another site cannot act for a user.
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

async fn read_limited<S, B>(stream: S, limit: u64) -> Result<Vec<u8>, ApiError>
where
    S: futures::Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut body = Vec::new();
    while let Some(mut chunk) = stream
        .try_next()
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?
    {
        if (body.len() + chunk.remaining()) as u64 > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(body)
}

/// Parses a JSON document into `T`, naming the field on failure.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde accepts a struct written as an array; the API takes objects only.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Err(e) if !bytes.iter().all(u8::is_ascii_whitespace) => {
                    ApiError::bad_request(format!("malformed JSON: {}", message(&e)))
                }
                _ => ApiError::bad_request("request body must be a JSON object"),
            },
        );
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        // serde_json reports a number where an enum's string belongs as a syntax error
        // ("expected value"); in a well-formed document it is a wrong value.
        let well_formed = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        if well_formed && path != "." && e.inner().is_syntax() {
            return ApiError::bad_request(format!("{path}: unexpected value"));
        }
        describe(&path, e.inner())
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {}", message(&e))))?;
    Ok(value)
}

fn describe(path: &str, error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let at_root = path == ".";
    let reason = match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            if at_root {
                format!("malformed JSON: {}", message(error))
            } else {
                format!("malformed JSON in `{path}`: {}", message(error))
            }
        }
        // At the root, a type error means the body is not an object at all; a missing
        // field names itself ("missing field `domains`").
        Category::Data if at_root && message(error).starts_with("invalid type") => {
            "request body must be a JSON object".to_owned()
        }
        Category::Data if at_root => message(error),
        Category::Data => format!("{path}: {}", message(error)),
    };
    ApiError::BadRequest(reason)
}

/// serde_json's message without its " at line L column C" suffix.
fn message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Probe {
        domains: Vec<String>,
        account: i64,
        #[serde(rename = "type")]
        kind: Option<Kind>,
        #[serde(default)]
        reissue: Option<bool>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Dns,
        Http,
    }

    fn reason(json: &str) -> String {
        match parse::<Probe>(json.as_bytes()) {
            Err(ApiError::BadRequest(reason)) => reason,
            other => panic!("expected a 400 for {json}, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(reason(r#"{"account": 1}"#), "missing field `domains`");
        assert_eq!(
            reason(r#"{"domains": ["a.example"]}"#),
            "missing field `account`"
        );
        let r = reason(r#"{"domains": "a.example", "account": 1}"#);
        assert!(r.starts_with("domains: invalid type: string"), "{r}");
        let r = reason(r#"{"domains": ["a", 5], "account": 1}"#);
        assert!(r.starts_with("domains[1]: invalid type: integer"), "{r}");
        let r = reason(r#"{"domains": [], "account": "1"}"#);
        assert!(r.starts_with("account: invalid type: string"), "{r}");
        let r = reason(r#"{"domains": [], "account": 1, "type": "tls"}"#);
        assert_eq!(r, "type: unknown variant `tls`, expected `dns` or `http`");
        let r = reason(r#"{"domains": [], "account": 1, "type": 1}"#);
        assert_eq!(r, "type: unexpected value");
        let r = reason(r#"{"domains": [], "account": 1, "reissue": "yes"}"#);
        assert!(r.starts_with("reissue: invalid type: string"), "{r}");
    }

    #[test]
    fn malformed_documents_are_400() {
        assert!(reason(r#"{"domains": ["a"], "account": 1"#).starts_with("malformed JSON"));
        assert!(
            reason(r#"{"domains": ["a"], "account": 1} trailing"#).starts_with("malformed JSON")
        );
        assert_eq!(reason(""), "request body must be a JSON object");
        assert_eq!(reason("[1, 2]"), "request body must be a JSON object");
        assert_eq!(reason("null"), "request body must be a JSON object");
        assert!(
            !reason("{,}").contains("line 1"),
            "positions are noise for API clients"
        );
    }

    #[test]
    fn only_json_is_accepted() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            " application/json ;x=y",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        name: String,
    }

    #[test]
    fn unknown_fields_are_named() {
        match parse::<Strict>(br#"{"name": "a", "is_admin": true}"#) {
            Err(ApiError::BadRequest(reason)) => {
                assert!(
                    reason.starts_with("is_admin: unknown field `is_admin`"),
                    "{reason}"
                );
            }
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn valid_documents_parse() {
        let probe: Probe =
            parse(br#"{"domains": ["a.example"], "account": 3, "type": "http", "extra": 1}"#)
                .expect("valid");
        assert_eq!(probe.account, 3);
        assert!(matches!(probe.kind, Some(Kind::Http)));
    }
}
