//! An HTTPS reverse proxy in front of Pebble that adds what Pebble 2.4 lacks, ACME Renewal
//! Information (RFC 9773), so that the service can be tested against a CA that has it.
//!
//! Pebble derives every URL it hands out (the directory, `Location` and `Link` headers,
//! order and authorization URLs) from the request's `Host` header, and checks each JWS
//! `url` against it too. So the proxy forwards requests with `Host` unchanged, every URL
//! the client sees points at the proxy, and no body needs rewriting. On top of that it:
//! - adds `renewalInfo` (its own `/renewal-info`) to the directory;
//! - answers `GET /renewal-info/<certificate id>` itself and records the id: a window in
//!   the future, or one in the past once the test has made that certificate due, always
//!   with `Retry-After` (instant-acme requires it);
//! - records the `replaces` of every new order Pebble accepts, and echoes it in the
//!   response as RFC 9773 requires of a server (Pebble ignores the field; instant-acme
//!   refuses an order whose `replaces` differs from its request's).
//!
//! It answers any certificate id: the tests compare the ids it recorded with the ones they
//! compute from the certificates issued.
//!
//! It also plays a CA in trouble when a test asks ([`AriProxy::inject`]): for a while, or
//! for good, it answers every request itself, in turn with a `500`, a `503`, a `429` with
//! `Retry-After` and a `rateLimited` problem, or an answer slower than the client's
//! deadline, and counts what it served.

use super::pebble::{LoopbackTls, Pebble};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{
    CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, RETRY_AFTER, TRANSFER_ENCODING,
};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Pebble's directory path; the proxy serves the directory at the same path.
const DIRECTORY_PATH: &str = "/dir";
/// Where the proxy serves renewal information.
const RENEWAL_INFO_PATH: &str = "/renewal-info";
/// The `Retry-After` of every renewal information answer, in seconds.
pub const RETRY_AFTER_SECS: u64 = 1;

/// A suggested renewal window: start and end.
pub type Window = (OffsetDateTime, OffsetDateTime);

/// The running proxy, stopped on drop.
pub struct AriProxy {
    /// `https://127.0.0.1:P/dir`: Pebble's directory as seen through the proxy.
    pub directory: String,
    /// The CA of the proxy's own HTTPS certificate.
    pub tls_ca_pem: String,
    /// The window of every certificate the test has not made due: days ahead.
    pub future_window: Window,
    proxy: Arc<Proxy>,
    server: tokio::task::JoinHandle<()>,
}

/// A failure the proxy answers with instead of forwarding a request to Pebble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// `500` with a `serverInternal` problem.
    ServerError,
    /// `503` without a body.
    Unavailable,
    /// `429` with `Retry-After: 1` and a `rateLimited` problem.
    RateLimited,
    /// A `503` sent only after this long: longer than the client's deadline.
    Slow(Duration),
}

/// What the proxy saw, and which certificates are due.
#[derive(Default)]
struct Recorded {
    renewal_info: Vec<String>,
    due: HashSet<String>,
    /// The path of Pebble's new-order URL, learnt from its directory.
    new_order_path: Option<String>,
    replaces: Vec<Option<String>>,
    /// The faults answered in turn, and until when (`None`: for good).
    faults: Vec<Fault>,
    faults_until: Option<Instant>,
    next_fault: usize,
    /// How often each fault was answered.
    faults_served: BTreeMap<Fault, usize>,
}

struct Proxy {
    /// `https://127.0.0.1:P`, Pebble's address.
    upstream: String,
    http: reqwest::Client,
    future_window: Window,
    /// The window of a due certificate: already over.
    past_window: Window,
    recorded: Mutex<Recorded>,
}

impl AriProxy {
    /// Starts a proxy in front of `pebble` on a free loopback port.
    pub async fn start(pebble: &Pebble) -> Self {
        let tls = LoopbackTls::generate();
        let chain = CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("the proxy's certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes()).expect("the proxy's key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the proxy's certificate and key");
        // No ALPN: clients speak HTTP/1.1, which keeps the `Host` header as it is.
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the ARI proxy");
        let address = listener.local_addr().expect("bound");

        let upstream = pebble
            .directory
            .as_str()
            .strip_suffix(DIRECTORY_PATH)
            .expect("Pebble's directory is at /dir")
            .to_owned();
        // Only HTTP/1.1 upstream too: the `Host` header goes to Pebble as the client sent it
        // (HTTP/2 would send the URL's authority instead).
        let http = reqwest::Client::builder()
            .http1_only()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(pebble.tls_ca_pem.as_bytes())
                    .expect("Pebble's TLS CA"),
            )
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        // Nanoseconds as RFC 3339 allows (and a CA may send): finer than stores keep time.
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(123_456_789)
            .expect("a valid nanosecond");
        let future_window = (
            now + time::Duration::days(10),
            now + time::Duration::days(11),
        );
        let past_window = (
            now - time::Duration::hours(2),
            now - time::Duration::hours(1),
        );
        let proxy = Arc::new(Proxy {
            upstream,
            http,
            future_window,
            past_window,
            recorded: Mutex::default(),
        });
        let server = tokio::spawn(serve(listener, acceptor, Arc::clone(&proxy)));
        Self {
            directory: format!("https://{address}{DIRECTORY_PATH}"),
            tls_ca_pem: tls.ca_pem,
            future_window,
            proxy,
            server,
        }
    }

    /// The certificate ids asked for at `renewalInfo`, in order.
    pub fn renewal_info_requests(&self) -> Vec<String> {
        self.proxy.recorded().renewal_info.clone()
    }

    /// The `replaces` of every new order Pebble accepted, in order (`None`: no field).
    pub fn new_orders(&self) -> Vec<Option<String>> {
        self.proxy.recorded().replaces.clone()
    }

    /// From now on, the window of certificate `id` is over (it ended an hour before the
    /// proxy started).
    pub fn make_due(&self, id: &str) {
        self.proxy.recorded().due.insert(id.to_owned());
    }

    /// From now on, every request is answered with the next of `faults` in turn instead of
    /// reaching Pebble: for `lasting` (then requests reach Pebble again), or for good.
    pub fn inject(&self, faults: &[Fault], lasting: Option<Duration>) {
        let mut recorded = self.proxy.recorded();
        recorded.faults = faults.to_vec();
        recorded.faults_until = lasting.map(|d| Instant::now() + d);
        recorded.next_fault = 0;
    }

    /// How often each fault was answered so far.
    pub fn faults_served(&self) -> BTreeMap<Fault, usize> {
        self.proxy.recorded().faults_served.clone()
    }
}

impl Drop for AriProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Accepts TLS connections and serves each with HTTP/1.1.
async fn serve(listener: TcpListener, acceptor: TlsAcceptor, proxy: Arc<Proxy>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, proxy) = (acceptor.clone(), Arc::clone(&proxy));
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service =
                hyper::service::service_fn(move |request| Arc::clone(&proxy).handle(request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

type Answer = Response<Full<Bytes>>;

impl Proxy {
    fn recorded(&self) -> MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Result<Answer, Infallible> {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) => {
                return Ok(text(
                    StatusCode::BAD_REQUEST,
                    format!("unreadable body: {e}"),
                ))
            }
        };
        if let Some(fault) = self.next_fault() {
            return Ok(fault_answer(fault).await);
        }
        let path = parts.uri.path().to_owned();
        if parts.method == Method::GET {
            if let Some(id) = path
                .strip_prefix(RENEWAL_INFO_PATH)
                .and_then(|rest| rest.strip_prefix('/'))
            {
                return Ok(self.renewal_info(id));
            }
        }
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let directory = parts.method == Method::GET && path == DIRECTORY_PATH;
        let new_order = parts.method == Method::POST
            && self.recorded().new_order_path.as_deref() == Some(path.as_str());
        let replaces = new_order.then(|| requested_replaces(&body)).flatten();

        let (status, headers, mut body) = match self.forward(parts, body).await {
            Ok(answer) => answer,
            Err(e) => return Ok(text(StatusCode::BAD_GATEWAY, format!("Pebble: {e}"))),
        };
        if directory && status == StatusCode::OK {
            body = self.with_renewal_info(&body, &host);
        }
        if new_order && status == StatusCode::CREATED {
            self.recorded().replaces.push(replaces.clone());
            if let Some(id) = &replaces {
                body = with_replaces(&body, id);
            }
        }
        let mut answer = Response::new(Full::new(body));
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }

    /// The fault to answer the current request with, if the CA is in trouble now.
    fn next_fault(&self) -> Option<Fault> {
        let mut recorded = self.recorded();
        if recorded.faults.is_empty()
            || recorded
                .faults_until
                .is_some_and(|until| Instant::now() >= until)
        {
            return None;
        }
        let fault = recorded.faults[recorded.next_fault % recorded.faults.len()];
        recorded.next_fault += 1;
        *recorded.faults_served.entry(fault).or_default() += 1;
        Some(fault)
    }

    /// Sends the request on to Pebble, `Host` unchanged; its status, headers (without
    /// framing ones: the body is whole here) and body.
    async fn forward(
        &self,
        parts: hyper::http::request::Parts,
        body: Bytes,
    ) -> Result<(StatusCode, HeaderMap, Bytes), reqwest::Error> {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut headers = parts.headers;
        strip_framing(&mut headers);
        let response = self
            .http
            .request(parts.method, format!("{}{path}", self.upstream))
            .headers(headers)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let mut headers = response.headers().clone();
        strip_framing(&mut headers);
        Ok((status, headers, response.bytes().await?))
    }

    /// Pebble's directory with `renewalInfo` added (on the host the client asked), and
    /// its new-order URL noted.
    fn with_renewal_info(&self, body: &Bytes, host: &str) -> Bytes {
        let Ok(mut directory) = serde_json::from_slice::<Value>(body) else {
            return body.clone();
        };
        let new_order = directory["newOrder"]
            .as_str()
            .and_then(|url| reqwest::Url::parse(url).ok())
            .map(|url| url.path().to_owned());
        self.recorded().new_order_path = new_order;
        directory["renewalInfo"] = Value::String(format!("https://{host}{RENEWAL_INFO_PATH}"));
        Bytes::from(directory.to_string())
    }

    /// The RFC 9773 answer for certificate `id`, recorded.
    fn renewal_info(&self, id: &str) -> Answer {
        let mut recorded = self.recorded();
        recorded.renewal_info.push(id.to_owned());
        let (start, end) = if recorded.due.contains(id) {
            self.past_window
        } else {
            self.future_window
        };
        let format = |at: OffsetDateTime| at.format(&Rfc3339).expect("RFC 3339 time");
        let body = json!({"suggestedWindow": {"start": format(start), "end": format(end)}});
        Response::builder()
            .status(StatusCode::OK)
            .header(CONTENT_TYPE, "application/json")
            .header(RETRY_AFTER, RETRY_AFTER_SECS)
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a valid response")
    }
}

/// The `replaces` field of a new-order request: the payload of its flattened JWS.
fn requested_replaces(jws: &[u8]) -> Option<String> {
    let jws: Value = serde_json::from_slice(jws).ok()?;
    let payload = URL_SAFE_NO_PAD.decode(jws["payload"].as_str()?).ok()?;
    let payload: Value = serde_json::from_slice(&payload).ok()?;
    payload["replaces"].as_str().map(str::to_owned)
}

/// Pebble's order object with `replaces` set to `id`.
fn with_replaces(body: &Bytes, id: &str) -> Bytes {
    let Ok(mut order) = serde_json::from_slice::<Value>(body) else {
        return body.clone();
    };
    order["replaces"] = Value::String(id.to_owned());
    Bytes::from(order.to_string())
}

/// The answer of a CA in trouble.
async fn fault_answer(fault: Fault) -> Answer {
    let problem = |kind: &str, detail: &str| {
        Full::new(Bytes::from(
            json!({"type": format!("urn:ietf:params:acme:error:{kind}"), "detail": detail})
                .to_string(),
        ))
    };
    let builder = Response::builder().header(CONTENT_TYPE, "application/problem+json");
    let answer = match fault {
        Fault::ServerError => builder
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(problem("serverInternal", "the database is down")),
        Fault::Unavailable => builder
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(Full::new(Bytes::new())),
        Fault::RateLimited => builder
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header(RETRY_AFTER, 1)
            .body(problem("rateLimited", "too many requests, slow down")),
        Fault::Slow(delay) => {
            tokio::time::sleep(delay).await;
            builder
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body(Full::new(Bytes::new()))
        }
    };
    answer.expect("a valid response")
}

fn strip_framing(headers: &mut HeaderMap) {
    for name in [CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION] {
        headers.remove(name);
    }
}

fn text(status: StatusCode, message: String) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(message)));
    *answer.status_mut() = status;
    answer
}
