//! Bounds on what clients can make the gateway hold with requests they have
//! not finished sending, shared out so that one client cannot take them all.
//!
//! tonic buffers a request message whole before decoding it, and reserves its
//! declared length as soon as the 5-byte gRPC header arrives. So:
//! - at most `--max-concurrent-requests` request messages of the Database
//!   service are being received at once ([`RequestLimitLayer`]). A request
//!   takes a place when the first byte of a message arrives and gives it back
//!   when the message is in (a stream that sent only HEADERS holds none);
//!   one connection holds at most `--max-requests-per-connection` places,
//!   one authenticated principal at most `--max-requests-per-principal`.
//!   A unary request that waits longer than `--acquire-timeout` for a place
//!   fails RESOURCE_EXHAUSTED; a Transaction stream's message waits;
//! - health and reflection have a budget of their own ([`PROBE_PLACES`],
//!   [`PROBE_PLACES_PER_CONNECTION`] per connection) and messages of at most
//!   [`PROBE_MAX_MESSAGE_BYTES`]: they never compete with database calls;
//! - `--request-read-timeout` applies to every path: a unary request must be
//!   in within it of its HEADERS (not counting a wait for a place), a
//!   message of a stream within it of its first byte;
//! - unread bytes stay in HTTP/2 flow control: a connection may have at most
//!   [`CONNECTION_WINDOW`] bytes unread, whatever its number of streams;
//! - at most `--max-connections` connections are open ([`LimitedIncoming`]);
//!   one that has not completed its TLS handshake and sent the HTTP/2
//!   preface within `--handshake-timeout` is closed ([`TlsIncoming`],
//!   [`handshake::plaintext`]), and one that has carried no request is
//!   closed when a new client needs its room.
//!
//! Hence held request bytes ≤ max_concurrent_requests × max_request_bytes +
//! max_connections × (CONNECTION_WINDOW + per-connection buffers).
mod body;
mod connections;
pub mod handshake;
mod places;

use std::{
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tonic::{
    body::Body,
    codegen::{Service, http},
    transport::server::{TcpConnectInfo, TlsConnectInfo},
};

use body::{LimitedBody, Shape};
pub use connections::{Connections, LimitedConnection, LimitedIncoming};
pub use handshake::TlsIncoming;
use places::Budget;
pub use places::PrincipalSlot;

/// Paths of the Database service's RPCs, each of which takes one request
/// message, except [`TRANSACTION_PATH`].
const DATABASE_PATH: &str = "/sqlgate.v1.Database/";
/// The Transaction RPC: a request stream of many messages.
const TRANSACTION_PATH: &str = "/sqlgate.v1.Database/Transaction";
/// The reflection services (v1 and v1alpha): request streams.
const REFLECTION_PATH: &str = "/grpc.reflection.";

/// Places for health and reflection requests being received, apart from the
/// database calls' places.
pub const PROBE_PLACES: usize = 16;
/// Most of the [`PROBE_PLACES`] one connection holds.
pub const PROBE_PLACES_PER_CONNECTION: usize = 4;
/// Largest health or reflection request message.
pub const PROBE_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// HTTP/2 flow-control window of one request stream, bytes.
pub const STREAM_WINDOW: u32 = 64 * 1024;
/// HTTP/2 flow-control window of one connection: the most bytes a client can
/// have sent that the gateway has not read yet.
pub const CONNECTION_WINDOW: u32 = 256 * 1024;

/// The layer that limits the request messages being received at once; see
/// the module's documentation.
#[derive(Clone)]
pub struct RequestLimitLayer {
    calls: Arc<Budget>,
    probes: Arc<Budget>,
    connections: Connections,
    wait: Duration,
    read_timeout: Duration,
}

impl RequestLimitLayer {
    /// At most `settings.max_concurrent_requests` database requests being
    /// received, with the per-connection and per-principal shares of
    /// `settings`; a unary request waits up to `wait` for a place. Requests
    /// are noted in `connections` (see [`Connections::used`]).
    pub fn new(
        settings: &crate::config::RequestConfig,
        wait: Duration,
        connections: Connections,
    ) -> Self {
        RequestLimitLayer {
            calls: Budget::new(
                settings.max_concurrent_requests,
                "--max-concurrent-requests",
                settings.max_per_connection,
                Some(settings.max_per_principal),
            ),
            probes: Budget::new(
                PROBE_PLACES,
                "health and reflection places",
                PROBE_PLACES_PER_CONNECTION,
                None,
            ),
            connections,
            wait,
            read_timeout: settings.read_timeout,
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

/// The client address of a request's connection.
fn remote_addr<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
}

impl<S> Service<http::Request<Body>> for RequestLimit<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let limit = &self.limit;
        let path = request.uri().path();
        let (budget, shape) = if path == TRANSACTION_PATH {
            (&limit.calls, Shape::Stream)
        } else if path.starts_with(DATABASE_PATH) {
            let acquire_timeout = limit.wait;
            (&limit.calls, Shape::Unary { acquire_timeout })
        } else if path.starts_with(REFLECTION_PATH) {
            (&limit.probes, Shape::Stream)
        } else {
            let acquire_timeout = limit.wait;
            (&limit.probes, Shape::Unary { acquire_timeout })
        };
        let connection = remote_addr(&request);
        if let Some(address) = connection {
            limit.connections.used(address);
        }
        let principal = PrincipalSlot::default();
        request.extensions_mut().insert(principal.clone());
        let budget = budget.clone();
        let read_timeout = limit.read_timeout;
        let request = request.map(|body| {
            Body::new(LimitedBody::new(
                body,
                shape,
                budget,
                connection,
                principal,
                read_timeout,
            ))
        });
        self.inner.call(request)
    }
}
