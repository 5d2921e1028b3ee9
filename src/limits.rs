//! Bounds on the memory that clients can make the gateway hold with requests
//! they have not finished sending.
//!
//! tonic buffers a request message whole before decoding it, and reserves its
//! declared length as soon as the 5-byte gRPC header arrives. So:
//! - at most `--max-concurrent-requests` request bodies are being received at
//!   once ([`RequestLimitLayer`]); a request holds its permit until its body
//!   ends or is dropped (for unary requests, as soon as the message is in).
//!   Others wait up to `--acquire-timeout` and then fail RESOURCE_EXHAUSTED,
//!   and nothing reads their bodies meanwhile. A Transaction stream, whose
//!   request stream stays open for the whole transaction, holds a permit only
//!   while one of its messages is partly received (its later messages wait for
//!   a permit instead of failing), and `--request-read-timeout` applies from
//!   a message's first byte to its last;
//! - unread bytes stay in HTTP/2 flow control: a connection may have at most
//!   [`CONNECTION_WINDOW`] bytes unread, whatever its number of streams;
//! - at most `--max-connections` connections are open ([`LimitedIncoming`]);
//!   past it the gateway stops accepting until one closes.
//!
//! Hence held request bytes ≤ max_concurrent_requests × max_request_bytes +
//! max_connections × (CONNECTION_WINDOW + per-connection buffers).
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use http_body::{Frame, SizeHint};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_stream::Stream;
use tonic::{
    body::Body,
    codegen::{Bytes, Service, http},
    transport::server::{Connected, TcpConnectInfo, TcpIncoming},
};

use tokio_util::sync::PollSemaphore;

use crate::errors::GatewayError;

/// Paths of the Database service's RPCs, each of which takes one request
/// message, except [`TRANSACTION_PATH`].
const DATABASE_PATH: &str = "/sqlgate.v1.Database/";
/// The Transaction RPC: a request stream of many messages.
const TRANSACTION_PATH: &str = "/sqlgate.v1.Database/Transaction";

/// HTTP/2 flow-control window of one request stream, bytes.
pub const STREAM_WINDOW: u32 = 64 * 1024;
/// HTTP/2 flow-control window of one connection: the most bytes a client can
/// have sent that the gateway has not read yet.
pub const CONNECTION_WINDOW: u32 = 256 * 1024;

type Acquiring = Pin<Box<dyn Future<Output = OwnedSemaphorePermit> + Send>>;

/// Accepted connections, at most `max` open at once: a permit is taken before
/// accepting and lives as long as the connection.
pub struct LimitedIncoming {
    inner: TcpIncoming,
    permits: Arc<Semaphore>,
    acquiring: Option<Acquiring>,
    permit: Option<OwnedSemaphorePermit>,
}

impl LimitedIncoming {
    /// Wraps `inner` so that at most `max` of its connections are open.
    pub fn new(inner: TcpIncoming, max: usize) -> Self {
        LimitedIncoming {
            inner,
            permits: Arc::new(Semaphore::new(max)),
            acquiring: None,
            permit: None,
        }
    }
}

impl Stream for LimitedIncoming {
    type Item = std::io::Result<LimitedConnection>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.permit.is_none() {
            let permits = this.permits.clone();
            let acquiring = this.acquiring.get_or_insert_with(|| {
                Box::pin(async move {
                    permits
                        .acquire_owned()
                        .await
                        .expect("the semaphore is never closed")
                })
            });
            this.permit = Some(ready!(acquiring.as_mut().poll(cx)));
            this.acquiring = None;
        }
        Poll::Ready(match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
            Some(Ok(stream)) => Some(Ok(LimitedConnection {
                stream,
                _permit: this.permit.take().expect("taken above"),
            })),
            other => other.map(|error| error.map(|_| unreachable!())),
        })
    }
}

/// An accepted connection holding its place under --max-connections.
pub struct LimitedConnection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl Connected for LimitedConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for LimitedConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The layer that lets at most `max` request bodies be received at once.
#[derive(Clone)]
pub struct RequestLimitLayer {
    permits: Arc<Semaphore>,
    max: usize,
    wait: Duration,
    read_timeout: Duration,
}

impl RequestLimitLayer {
    /// At most `max` requests being received; others wait up to `wait`; one
    /// being received keeps its place at most `read_timeout`.
    pub fn new(max: usize, wait: Duration, read_timeout: Duration) -> Self {
        RequestLimitLayer {
            permits: Arc::new(Semaphore::new(max)),
            max,
            wait,
            read_timeout,
        }
    }
}

impl<S> tower_layer::Layer<S> for RequestLimitLayer {
    type Service = RequestLimit<S>;

    fn layer(&self, inner: S) -> RequestLimit<S> {
        RequestLimit {
            inner,
            limit: self.clone(),
        }
    }
}

/// See [`RequestLimitLayer`].
#[derive(Clone)]
pub struct RequestLimit<S> {
    inner: S,
    limit: RequestLimitLayer,
}

impl<S> Service<http::Request<Body>> for RequestLimit<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone may not be ready: call the one that was polled.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.limit.clone();
        Box::pin(async move {
            if request.uri().path() == TRANSACTION_PATH {
                let request = request.map(|body| {
                    Body::new(MessagePermitBody {
                        inner: body,
                        permits: PollSemaphore::new(limit.permits.clone()),
                        permit: None,
                        waiting: None,
                        framing: Framing::default(),
                        read_by: None,
                        read_timeout: limit.read_timeout,
                    })
                });
                return inner.call(request).await;
            }
            let acquire = limit.permits.acquire_owned();
            let Ok(Ok(permit)) = tokio::time::timeout(limit.wait, acquire).await else {
                let error = GatewayError::TooManyRequests { limit: limit.max };
                return Ok(tonic::Status::from(error).into_http());
            };
            // Every Database RPC takes one request message; other services
            // (reflection) may keep a request stream open between messages.
            let read_timeout = request
                .uri()
                .path()
                .starts_with(DATABASE_PATH)
                .then_some(limit.read_timeout);
            let request = request.map(|body| {
                Body::new(PermitBody {
                    inner: body,
                    permit: Some(permit),
                    read_by: read_timeout.map(|timeout| Box::pin(tokio::time::sleep(timeout))),
                    read_timeout: read_timeout.unwrap_or_default(),
                })
            });
            inner.call(request).await
        })
    }
}

/// A request body that holds its permit until it ends, is dropped, or has
/// taken longer than the read timeout (then it fails).
struct PermitBody {
    inner: Body,
    permit: Option<OwnedSemaphorePermit>,
    /// When a single-message request must have arrived (Database RPCs).
    read_by: Option<Pin<Box<tokio::time::Sleep>>>,
    read_timeout: Duration,
}

impl http_body::Body for PermitBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.permit = None;
        }
        let late = polled.is_pending() && deadline_passed(&mut self.read_by, cx);
        if late && self.permit.is_some() {
            // Sent part of a message and stalled: give the place back.
            self.permit = None;
            return read_timed_out(self.read_timeout);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// True once `read_by` is set and has passed (registering `cx` to be woken
/// when it does).
fn deadline_passed(
    read_by: &mut Option<Pin<Box<tokio::time::Sleep>>>,
    cx: &mut Context<'_>,
) -> bool {
    read_by
        .as_mut()
        .is_some_and(|read_by| read_by.as_mut().poll(cx).is_ready())
}

/// The body's answer to a message that did not arrive within `read_timeout`.
fn read_timed_out(read_timeout: Duration) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
    let error = GatewayError::RequestReadTimeout(read_timeout);
    Poll::Ready(Some(Err(tonic::Status::from(error))))
}

/// The request body of a Transaction stream: holds a permit of the
/// [`RequestLimitLayer`] only while a message is partly received, and fails
/// a message that takes longer than the read timeout from its first byte.
struct MessagePermitBody {
    inner: Body,
    permits: PollSemaphore,
    permit: Option<OwnedSemaphorePermit>,
    /// A frame that starts a message, held until a permit is free.
    waiting: Option<Frame<Bytes>>,
    framing: Framing,
    /// When the message being received must be in whole.
    read_by: Option<Pin<Box<tokio::time::Sleep>>>,
    read_timeout: Duration,
}

impl MessagePermitBody {
    /// Passes `frame` on, taking note of where messages end: the permit is
    /// given back at the end of a message.
    fn pass(&mut self, frame: Frame<Bytes>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if let Some(data) = frame.data_ref()
            && self.framing.consume(data)
        {
            self.permit = None;
            self.read_by = None;
        }
        Poll::Ready(Some(Ok(frame)))
    }
}

impl http_body::Body for MessagePermitBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        if this.waiting.is_some() {
            let Some(permit) = ready!(this.permits.poll_acquire(cx)) else {
                return Poll::Ready(Some(Err(tonic::Status::unavailable("closed"))));
            };
            this.permit = Some(permit);
            this.read_by = Some(Box::pin(tokio::time::sleep(this.read_timeout)));
            let frame = this.waiting.take().expect("checked above");
            return this.pass(frame);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let starts_message = this.permit.is_none()
                    && this.framing.at_boundary()
                    && frame.data_ref().is_some_and(|data| !data.is_empty());
                if starts_message {
                    this.waiting = Some(frame);
                    // Polls the semaphore (and registers for its wake-up).
                    return self.poll_frame(cx);
                }
                this.pass(frame)
            }
            Poll::Ready(other) => {
                this.permit = None;
                this.read_by = None;
                Poll::Ready(other)
            }
            Poll::Pending => {
                if deadline_passed(&mut this.read_by, cx) {
                    // Sent part of a message and stalled: give the place back.
                    this.permit = None;
                    this.read_by = None;
                    return read_timed_out(this.read_timeout);
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.waiting.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Where a stream of gRPC messages is: each is a 5-byte prefix (a
/// compression flag and a big-endian length) and that many bytes.
#[derive(Debug, Default)]
struct Framing {
    prefix: [u8; 5],
    /// Bytes of the current message's prefix seen (0: between messages).
    prefix_len: usize,
    /// Bytes of the current message still to come once the prefix is in.
    remaining: usize,
}

impl Framing {
    /// Takes note of `data`; true when it ends between two messages.
    fn consume(&mut self, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            if self.prefix_len < self.prefix.len() {
                let take = (self.prefix.len() - self.prefix_len).min(data.len());
                self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&data[..take]);
                self.prefix_len += take;
                data = &data[take..];
                if self.prefix_len == self.prefix.len() {
                    let length = [
                        self.prefix[1],
                        self.prefix[2],
                        self.prefix[3],
                        self.prefix[4],
                    ];
                    self.remaining = u32::from_be_bytes(length) as usize;
                }
            } else {
                let take = self.remaining.min(data.len());
                self.remaining -= take;
                data = &data[take..];
            }
            if self.prefix_len == self.prefix.len() && self.remaining == 0 {
                self.prefix_len = 0;
            }
        }
        self.at_boundary()
    }

    /// True between two messages.
    fn at_boundary(&self) -> bool {
        self.prefix_len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Framing;

    fn message(body: &[u8]) -> Vec<u8> {
        let mut framed = vec![0];
        framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
        framed.extend_from_slice(body);
        framed
    }

    #[test]
    fn message_ends_are_found_however_the_bytes_are_cut() {
        let mut stream = message(b"hello");
        stream.extend(message(b""));
        stream.extend(message(&[7; 300]));
        // Where each message ends, in bytes from the start.
        let ends = [10, 15, 320];
        for cut in 1..stream.len() {
            let mut framing = Framing::default();
            let (first, rest) = stream.split_at(cut);
            let at_first = framing.consume(first);
            assert_eq!(at_first, ends.contains(&cut), "cut at {cut}");
            assert!(framing.consume(rest), "cut at {cut}: all messages end");
        }
        let mut framing = Framing::default();
        for (i, byte) in stream.iter().enumerate() {
            assert_eq!(
                framing.consume(&[*byte]),
                ends.contains(&(i + 1)),
                "byte {i}"
            );
        }
    }
}
