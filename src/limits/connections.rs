//! Accepted connections: at most `--max-connections` open, and none kept by
//! a client that connects and says nothing.
//!
//! A connection must complete its TLS handshake and send the HTTP/2 preface
//! within `--handshake-timeout`, else it is closed (see `handshake`). And
//! when every place is taken and a new client
//! connects, the oldest connection that has not carried a request yet is
//! closed to make room: silent connections cannot lock new clients out even
//! for the handshake timeout.
use std::{
    collections::HashMap,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, ready},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_stream::Stream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

type Acquiring = Pin<Box<dyn Future<Output = OwnedSemaphorePermit> + Send>>;

/// The open connections, by client address: which have carried a request,
/// and how to close those that have not.
#[derive(Clone, Default)]
pub struct Connections {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    open: HashMap<SocketAddr, Entry>,
}

struct Entry {
    /// Accept order.
    number: u64,
    /// Whether a request has arrived on it.
    used: bool,
    close: CancellationToken,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes note of a new connection; it leaves the registry when the
    /// returned registration is dropped.
    fn register(&self, address: Option<SocketAddr>) -> Registration {
        let close = CancellationToken::new();
        if let Some(address) = address {
            let mut registry = self.lock();
            let number = registry.next;
            registry.next += 1;
            let entry = Entry {
                number,
                used: false,
                close: close.clone(),
            };
            registry.open.insert(address, entry);
        }
        Registration {
            connections: self.clone(),
            address,
            closed: Box::pin(close.clone().cancelled_owned()),
            close,
        }
    }

    /// Takes note of a request on the connection from `address`: it is no
    /// longer closed to make room.
    pub fn used(&self, address: SocketAddr) {
        if let Some(entry) = self.lock().open.get_mut(&address) {
            entry.used = true;
        }
    }

    /// Closes the oldest connection that has carried no request yet, if
    /// any; true if there was one.
    fn close_oldest_unused(&self) -> bool {
        let mut registry = self.lock();
        let oldest = registry
            .open
            .iter()
            .filter(|(_, entry)| !entry.used && !entry.close.is_cancelled())
            .min_by_key(|(_, entry)| entry.number)
            .map(|(address, _)| *address);
        match oldest.and_then(|address| registry.open.get_mut(&address)) {
            Some(entry) => {
                entry.close.cancel();
                // Closed for want of room: not a candidate any more.
                entry.used = true;
                true
            }
            None => false,
        }
    }
}

/// A connection's entry in [`Connections`].
struct Registration {
    connections: Connections,
    address: Option<SocketAddr>,
    /// Ready once the connection is to be closed to make room.
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    close: CancellationToken,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(address) = self.address {
            self.connections.lock().open.remove(&address);
        }
    }
}

/// Accepted connections, at most `max` open at once: a permit is taken for
/// each accepted connection and lives as long as it.
pub struct LimitedIncoming {
    inner: TcpIncoming,
    permits: Arc<Semaphore>,
    connections: Connections,
    accepted: Option<TcpStream>,
    /// Whether a connection was closed to make room for `accepted`.
    made_room: bool,
    acquiring: Option<Acquiring>,
}

impl LimitedIncoming {
    /// Wraps `inner` so that at most `max` of its connections are open.
    pub fn new(inner: TcpIncoming, max: usize, connections: Connections) -> Self {
        LimitedIncoming {
            inner,
            permits: Arc::new(Semaphore::new(max)),
            connections,
            accepted: None,
            made_room: false,
            acquiring: None,
        }
    }
}

impl Stream for LimitedIncoming {
    type Item = std::io::Result<LimitedConnection>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.accepted.is_none() {
            match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                Some(Ok(stream)) => {
                    this.accepted = Some(stream);
                    this.made_room = false;
                }
                other => return Poll::Ready(other.map(|error| error.map(|_| unreachable!()))),
            }
        }
        let permit = match this.acquiring.as_mut() {
            Some(acquiring) => ready!(acquiring.as_mut().poll(cx)),
            None => match this.permits.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    // Full: a client is waiting, so make room if a
                    // connection holds a place without using it.
                    if !this.made_room {
                        this.made_room = this.connections.close_oldest_unused();
                    }
                    let permits = this.permits.clone();
                    let acquiring = this.acquiring.insert(Box::pin(async move {
                        permits
                            .acquire_owned()
                            .await
                            .expect("the semaphore is never closed")
                    }));
                    ready!(acquiring.as_mut().poll(cx))
                }
            },
        };
        this.acquiring = None;
        let stream = this.accepted.take().expect("accepted above");
        let registration = this.connections.register(stream.peer_addr().ok());
        Poll::Ready(Some(Ok(LimitedConnection {
            stream,
            _permit: permit,
            registration,
        })))
    }
}

/// An accepted connection holding its place under --max-connections.
pub struct LimitedConnection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    registration: Registration,
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
        let this = &mut *self;
        let registration = &mut this.registration;
        if registration.close.is_cancelled() || registration.closed.as_mut().poll(cx).is_ready() {
            let error = "closed to make room for a new connection: it carried no request";
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                error,
            )));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
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
