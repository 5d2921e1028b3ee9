//! The handshake timeout (`--handshake-timeout`): a new connection must have
//! sent the first bytes of the HTTP/2 client preface within it of being
//! accepted, on the plaintext and the TLS listener alike, or it is closed.
//!
//! On TLS the timeout covers the TLS handshake and then the preface, read
//! after decryption: a client that completes the handshake and then says
//! nothing holds its connection place no longer than one that never starts
//! it. That is why the gateway terminates TLS itself here ([`TlsIncoming`])
//! instead of leaving it to tonic, whose handshake timeout ends with the
//! handshake and whose stream hides the decrypted bytes. The handshakes run
//! concurrently, so that a slow client never delays the others.
use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    task::JoinSet,
    time::{Instant, Sleep},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::Stream;
use tonic::transport::server::Connected;

use super::{LimitedConnection, LimitedIncoming};

/// The HTTP/2 client connection preface, bytes.
const PREFACE_LEN: usize = 24;

/// A connection that must send the HTTP/2 preface by a deadline.
pub struct Prefaced<IO> {
    io: IO,
    /// The preface still to come, and by when; `None` once it has come.
    preface: Option<Preface>,
}

struct Preface {
    left: usize,
    by: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl<IO> Prefaced<IO> {
    /// `io`, which must send the preface before `deadline` (`timeout` after
    /// it was accepted).
    fn new(io: IO, deadline: Instant, timeout: Duration) -> Prefaced<IO> {
        Prefaced {
            io,
            preface: Some(Preface {
                left: PREFACE_LEN,
                by: Box::pin(tokio::time::sleep_until(deadline)),
                timeout,
            }),
        }
    }
}

/// The plaintext listener's connections: each must send the preface within
/// `timeout` of being accepted.
pub fn plaintext(
    incoming: LimitedIncoming,
    timeout: Duration,
) -> impl Stream<Item = io::Result<Prefaced<LimitedConnection>>> {
    use tokio_stream::StreamExt;
    incoming.map(move |accepted| {
        accepted.map(|connection| Prefaced::new(connection, Instant::now() + timeout, timeout))
    })
}

impl<IO: Connected> Connected for Prefaced<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> IO::ConnectInfo {
        self.io.connect_info()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Prefaced<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Some(preface) = &mut this.preface {
            let read = buf.filled().len() - before;
            if polled.is_ready() {
                preface.left = preface.left.saturating_sub(read);
                if preface.left == 0 || read == 0 {
                    this.preface = None;
                }
            } else if preface.by.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(no_preface(preface.timeout)));
            }
        }
        polled
    }
}

fn no_preface(timeout: Duration) -> io::Error {
    let message = format!("no HTTP/2 preface within {timeout:?} (--handshake-timeout)");
    io::Error::new(io::ErrorKind::TimedOut, message)
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Prefaced<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

type TlsConnection = Prefaced<TlsStream<LimitedConnection>>;

/// The TLS listener's connections: each completes its TLS handshake and
/// sends the preface within `timeout` of being accepted.
pub struct TlsIncoming {
    incoming: LimitedIncoming,
    acceptor: TlsAcceptor,
    timeout: Duration,
    handshakes: JoinSet<Option<TlsConnection>>,
}

impl TlsIncoming {
    /// TLS with `acceptor` on the connections of `incoming`.
    pub fn new(incoming: LimitedIncoming, acceptor: TlsAcceptor, timeout: Duration) -> TlsIncoming {
        TlsIncoming {
            incoming,
            acceptor,
            timeout,
            handshakes: JoinSet::new(),
        }
    }
}

impl Stream for TlsIncoming {
    type Item = io::Result<TlsConnection>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // Start the handshake of every connection accepted so far.
        while let Poll::Ready(accepted) = Pin::new(&mut this.incoming).poll_next(cx) {
            let connection = match accepted {
                Some(Ok(connection)) => connection,
                other => return Poll::Ready(other.map(|error| error.map(|_| unreachable!()))),
            };
            let (acceptor, timeout) = (this.acceptor.clone(), this.timeout);
            let deadline = Instant::now() + timeout;
            this.handshakes.spawn(async move {
                match tokio::time::timeout_at(deadline, acceptor.accept(connection)).await {
                    Ok(Ok(tls)) => Some(Prefaced::new(tls, deadline, timeout)),
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        None
                    }
                    Err(_) => {
                        tracing::debug!(?timeout, "no TLS handshake within --handshake-timeout");
                        None
                    }
                }
            });
        }
        loop {
            match ready!(this.handshakes.poll_join_next(cx)) {
                Some(Ok(Some(connection))) => return Poll::Ready(Some(Ok(connection))),
                Some(_) => continue,
                // None running: woken by the listener when it accepts.
                None => return Poll::Pending,
            }
        }
    }
}
