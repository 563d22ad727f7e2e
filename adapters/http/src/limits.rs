//! The server loop of both listeners (the API and the HTTP-01 responder), with the limits a
//! listener on the internet needs: a deadline for the request headers (which also closes
//! idle keep-alive connections), a deadline for the request body, an idle timeout on the
//! connection (no byte read or written), and a cap on open connections, overall and per
//! client address. Connections over a cap are answered `503` and closed at once.
//!
//! warp 0.4 serves with hyper 1 but sets none of these, so the loop drives hyper's HTTP/1
//! connection itself with warp's filter as the service. HTTP/2 is not offered: both
//! listeners serve plain HTTP, where clients speak HTTP/1.1.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

/// The limits of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerLimits {
    /// From the moment a connection waits for a request until its headers are complete.
    /// Also how long an idle keep-alive connection stays open. Past it, the connection is
    /// closed (a request cut short is answered `408`).
    pub header_read_timeout: Duration,
    /// From the request's arrival until its body is complete; past it the request fails
    /// and the connection is closed.
    pub body_read_timeout: Duration,
    /// The connection is closed once nothing was read or written for this long (a client
    /// that stops reading its answer, a stuck connection).
    pub idle_timeout: Duration,
    /// Open connections at most; more are answered `503` and closed.
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: its /64) at most; more are
    /// answered `503` and closed.
    pub max_connections_per_address: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_connections: 1024,
            max_connections_per_address: 64,
        }
    }
}

/// The client's address, put on every request by [`serve_limited`].
#[derive(Debug, Clone, Copy)]
struct ClientAddr(SocketAddr);

/// The client's address: set by [`serve_limited`], or by warp's own server and test
/// requests (`warp::addr::remote`).
pub(crate) fn client_address(
) -> impl Filter<Extract = (Option<IpAddr>,), Error = std::convert::Infallible> + Clone {
    warp::ext::optional::<ClientAddr>()
        .and(warp::addr::remote())
        .map(|ours: Option<ClientAddr>, warps: Option<SocketAddr>| {
            ours.map(|c| c.0).or(warps).map(|a| a.ip())
        })
}

/// The answer to a connection over a cap, written without waiting before it is closed.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
Content-Length: 0\r\nConnection: close\r\n\r\n";

/// Serves `filter` on `listener` within `limits` until `shutdown` completes, then lets
/// the requests in flight finish.
pub async fn serve_limited(
    listener: TcpListener,
    filter: BoxedFilter<(Response,)>,
    limits: ListenerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = Arc::new(Mutex::new(HashMap::<IpAddr, usize>::new()));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: pause
                    // briefly instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(client = %remote.ip(), "connection limit reached; refusing a connection");
            refuse(&stream);
            continue;
        };
        let Some(address_slot) = AddressSlot::take(
            &per_address,
            remote.ip(),
            limits.max_connections_per_address.max(1),
        ) else {
            tracing::warn!(client = %remote.ip(), "per-address connection limit reached; refusing a connection");
            refuse(&stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = WithLimits {
            inner: warp::service(filter.clone()),
            client: remote,
            body_read_timeout: limits.body_read_timeout,
        };
        let service = hyper_util::service::TowerToHyperService::new(service);
        let io = TokioIo::new(IdleTimeout::new(stream, limits.idle_timeout));
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true)
            .max_buf_size(64 * 1024)
            .serve_connection(io, service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop((slot, address_slot));
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

fn refuse(stream: &TcpStream) {
    let _ = stream.try_write(OVER_CAPACITY);
}

/// One open connection counted against its address; uncounted on drop.
struct AddressSlot {
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
    address: IpAddr,
}

impl AddressSlot {
    fn take(map: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<Self> {
        let address = crate::login_guard::address_key(ip);
        let mut counts = map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(address).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Self {
            map: map.clone(),
            address,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

/// warp's service with the client address on each request and a deadline on its body.
#[derive(Clone)]
struct WithLimits<S> {
    inner: S,
    client: SocketAddr,
    body_read_timeout: Duration,
}

impl<S> tower_service::Service<http::Request<hyper::body::Incoming>> for WithLimits<S>
where
    S: tower_service::Service<http::Request<TimedBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<hyper::body::Incoming>) -> Self::Future {
        let deadline = Instant::now() + self.body_read_timeout;
        let mut request = request.map(|body| TimedBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            limit: self.body_read_timeout,
        });
        request.extensions_mut().insert(ClientAddr(self.client));
        self.inner.call(request)
    }
}

/// A request body that fails once its deadline passes before it is complete.
struct TimedBody {
    inner: hyper::body::Incoming,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
}

/// The request body did not arrive within the body read timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub(crate) struct BodyTimedOut(Duration);

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            tracing::info!(limit = ?this.limit, "request body too slow; giving up on it");
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection that fails once nothing was read or written for `timeout` while the
/// server waits on it.
struct IdleTimeout {
    io: TcpStream,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
}

impl IdleTimeout {
    fn new(io: TcpStream, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            timer: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn active(&mut self) {
        let next = Instant::now() + self.timeout;
        self.timer.as_mut().reset(next);
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.timer.as_mut().poll(cx).is_ready()
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long")
}

impl AsyncRead for IdleTimeout {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.active();
                }
                Poll::Ready(result)
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, data) {
            Poll::Ready(result) => {
                if matches!(result, Ok(n) if n > 0) {
                    this.active();
                }
                Poll::Ready(result)
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
