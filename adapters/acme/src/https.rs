//! The HTTPS client instant-acme talks through: our own rustls root store (webpki roots
//! plus configured private roots), one deadline over each request including its body, a
//! cap on the body size, and the classification of answers that say "try later" (`429`,
//! `rateLimited`, `5xx`) before instant-acme reads them as final refusals.

use crate::config::{AcmeClientConfig, AcmeConfigError};
use crate::guard::{Guard, GuardedResolver};
use bytes::Bytes;
use http::Request;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A pooled hyper client; cheap to clone (clones share the pool).
#[derive(Clone)]
pub(crate) struct HttpsClient {
    inner: Client<HttpsConnector<HttpConnector<GuardedResolver>>, BodyWrapper<Bytes>>,
    timeout: Duration,
    guard: Guard,
    max_body: usize,
}

/// A request that failed below the ACME layer, carried through instant-acme as
/// `Error::Other` and turned into the port's error by [`crate::problem::translate`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpFailure {
    /// The whole exchange (connect, headers, body) did not finish within the deadline.
    #[error("no complete answer from the ACME server within {0:?}")]
    TimedOut(Duration),
    /// The body grew past the cap.
    #[error("the ACME server's answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The connection failed or broke.
    #[error("connection to the ACME server failed")]
    Connection(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A `5xx` answer.
    #[error("the ACME server failed with status {status}: {detail}")]
    Server { status: u16, detail: String },
    /// A `429` answer or a `rateLimited` problem.
    #[error("{detail}")]
    RateLimited {
        detail: String,
        retry_after: Option<Duration>,
    },
}

impl HttpsClient {
    pub(crate) fn new(config: &AcmeClientConfig) -> Result<Self, AcmeConfigError> {
        let mut roots = RootCertStore::empty();
        if config.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for (index, pem) in config.extra_roots_pem.iter().enumerate() {
            let root_error = |reason: String| AcmeConfigError::Root { index, reason };
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| root_error(e.to_string()))?;
                roots.add(cert).map_err(|e| root_error(e.to_string()))?;
                found += 1;
            }
            if found == 0 {
                return Err(root_error("no CERTIFICATE block found".into()));
            }
        }
        if roots.is_empty() {
            return Err(AcmeConfigError::NoRoots);
        }
        // An explicit provider: both ring and aws-lc-rs are in the dependency graph, and
        // the process-wide default may not be installed when a library user builds this.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(AcmeConfigError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let guard = Guard::new(&config.allowed_private_hosts);
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            guard: guard.clone(),
        });
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.request_timeout));
        // Requests are small and answered at once: without TCP_NODELAY, Nagle's
        // algorithm holds a request's last segment until the server's delayed ACK
        // (about 40 ms on Linux), once per ACME request.
        http.set_nodelay(true);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Ok(Self {
            inner: Client::builder(TokioExecutor::new()).build(connector),
            timeout: config.request_timeout,
            guard,
            max_body: config.max_body_bytes,
        })
    }
}

impl HttpClient for HttpsClient {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        // Literal IP hosts skip the resolver; check them here. hyper follows no redirect,
        // so a redirect to such an address is never followed either.
        if let Some(host) = req.uri().host() {
            if let Err(refused) = self.guard.check_literal(host) {
                tracing::warn!(host = %host, "ACME request to a non-public address refused");
                return Box::pin(async move { Err(instant_acme::Error::Other(Box::new(refused))) });
            }
        }
        let response = self.inner.request(req);
        let (timeout, max_body) = (self.timeout, self.max_body);
        Box::pin(async move {
            let exchange = async move {
                let response = response
                    .await
                    .map_err(|e| HttpFailure::Connection(Box::new(e)))?;
                let (parts, body) = response.into_parts();
                let body = read_capped(body, max_body).await?;
                classify(parts, body)
            };
            match tokio::time::timeout(timeout, exchange).await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(failure)) => Err(instant_acme::Error::Other(Box::new(failure))),
                Err(_) => Err(instant_acme::Error::Other(Box::new(HttpFailure::TimedOut(
                    timeout,
                )))),
            }
        })
    }
}

/// Reads the whole body, failing as soon as it grows past `max` bytes, so that an endless
/// or huge answer costs at most `max` bytes of memory.
async fn read_capped<B>(mut body: B, max: usize) -> Result<Bytes, HttpFailure>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    use http_body_util::BodyExt;
    let mut collected = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| HttpFailure::Connection(Box::new(e)))?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > max {
                return Err(HttpFailure::TooLarge(max));
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(collected.freeze())
}

/// Lets ordinary answers through and turns "try later" answers into failures that keep
/// the server's `Retry-After`: instant-acme would read a `429` as a final refusal and drop
/// the header, and a `5xx` as a refusal or a JSON error.
fn classify(parts: http::response::Parts, body: Bytes) -> Result<BytesResponse, HttpFailure> {
    let status = parts.status;
    if status.is_client_error() || status.is_server_error() {
        let problem = serde_json::from_slice::<instant_acme::Problem>(&body).ok();
        let rate_limited = problem
            .as_ref()
            .and_then(|p| p.r#type.as_deref())
            .is_some_and(|t| t == RATE_LIMITED);
        let detail = || {
            problem.as_ref().map_or_else(
                || {
                    status
                        .canonical_reason()
                        .unwrap_or("no reason given")
                        .to_owned()
                },
                crate::problem::describe,
            )
        };
        if status == http::StatusCode::TOO_MANY_REQUESTS || rate_limited {
            return Err(HttpFailure::RateLimited {
                detail: detail(),
                retry_after: retry_after(&parts.headers, std::time::SystemTime::now()),
            });
        }
        if status.is_server_error() {
            return Err(HttpFailure::Server {
                status: status.as_u16(),
                detail: detail(),
            });
        }
    }
    Ok(BytesResponse {
        parts,
        body: Box::new(body),
    })
}

const RATE_LIMITED: &str = "urn:ietf:params:acme:error:rateLimited";

/// The `Retry-After` header as a wait from `now`: delay-seconds or an HTTP date (a date in
/// the past is no wait).
fn retry_after(headers: &http::HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(roots: &[&str], webpki_roots: bool) -> AcmeClientConfig {
        AcmeClientConfig {
            extra_roots_pem: roots.iter().map(|r| (*r).to_owned()).collect(),
            webpki_roots,
            ..AcmeClientConfig::default()
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(http::header::RETRY_AFTER, "120".parse().expect("header"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        headers.insert(
            http::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:50:07 GMT".parse().expect("header"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        headers.insert(
            http::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:00:00 GMT".parse().expect("header"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        headers.insert(http::header::RETRY_AFTER, "soon".parse().expect("header"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn extra_roots_must_be_pem_certificates() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = params.self_signed(&key).expect("root").pem();
        let two_roots = format!("{root}{root}");

        assert!(HttpsClient::new(&config(&[&root], false)).is_ok());
        assert!(HttpsClient::new(&config(&[&two_roots], true)).is_ok());
        assert!(
            HttpsClient::new(&config(&[], true)).is_ok(),
            "webpki roots alone suffice"
        );
        match HttpsClient::new(&config(&[&root, "not a certificate"], true)) {
            Err(AcmeConfigError::Root { index: 1, reason }) => {
                assert!(reason.contains("CERTIFICATE"), "{reason}");
            }
            Err(e) => panic!("expected the second root to be refused, got {e}"),
            Ok(_) => panic!("expected the second root to be refused"),
        }
        assert!(matches!(
            HttpsClient::new(&config(&[], false)),
            Err(AcmeConfigError::NoRoots)
        ));
    }
}
