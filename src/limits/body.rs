//! The request body the limiter hands on: it takes a place when a message
//! starts arriving, gives it back when the message is in, and fails reads
//! that take too long.
use std::{
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tonic::{body::Body, codegen::Bytes};

use super::places::{Budget, Place, PrincipalSlot, Waiting};
use crate::errors::GatewayError;

type Acquiring = Pin<Box<dyn Future<Output = Place> + Send>>;

/// What the request's body is: one message (every RPC but the two below), or
/// a stream of messages with pauses between them (Transaction, reflection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// One message: the whole request must arrive within the read timeout
    /// of its start (not counting a wait for a place), and a wait for a
    /// place ends after the acquire timeout.
    Unary {
        /// Longest wait for a place.
        acquire_timeout: Duration,
    },
    /// Messages with pauses: each message must arrive within the read
    /// timeout of its first byte; waits for a place are not bounded here.
    Stream,
}

/// A request body holding a place of its [`Budget`] only while one of its
/// messages is partly received.
pub(super) struct LimitedBody {
    inner: Body,
    shape: Shape,
    budget: Arc<Budget>,
    connection: Option<SocketAddr>,
    principal: PrincipalSlot,
    place: Option<Place>,
    /// A frame that starts a message, held until a place is free.
    waiting: Option<Frame<Bytes>>,
    acquiring: Option<(Acquiring, Waiting, Instant)>,
    /// When a wait for a place ends (unary requests).
    acquire_by: Option<Deadline>,
    /// When what is being read must be in.
    read_by: Option<Deadline>,
    read_timeout: Duration,
    framing: Framing,
}

impl LimitedBody {
    pub(super) fn new(
        inner: Body,
        shape: Shape,
        budget: Arc<Budget>,
        connection: Option<SocketAddr>,
        principal: PrincipalSlot,
        read_timeout: Duration,
    ) -> LimitedBody {
        // A unary request must be in within the read timeout of its
        // HEADERS: a stream that never sends its message does not stay.
        let read_by = matches!(shape, Shape::Unary { .. }).then(|| Deadline::after(read_timeout));
        LimitedBody {
            inner,
            shape,
            budget,
            connection,
            principal,
            place: None,
            waiting: None,
            acquiring: None,
            acquire_by: None,
            read_by,
            read_timeout,
            framing: Framing::default(),
        }
    }

    /// Passes `frame` on, taking note of where messages end: the place is
    /// given back at the end of a message.
    fn pass(&mut self, frame: Frame<Bytes>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if let Some(data) = frame.data_ref()
            && self.framing.consume(data)
        {
            self.place = None;
            if self.shape == Shape::Stream {
                self.read_by = None;
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    /// Takes a place for the message that `frame` starts and passes it on,
    /// or starts waiting for one (see [`Self::start_waiting`]).
    fn start_message(
        &mut self,
        frame: Frame<Bytes>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        // Most messages find a place free: no wait to set up.
        if let Some(place) = self.budget.try_acquire(self.connection, &self.principal) {
            self.place = Some(place);
            if self.shape == Shape::Stream {
                self.read_by = Some(Deadline::after(self.read_timeout));
            }
            return self.pass(frame);
        }
        self.start_waiting(frame);
        // Polls the wait (and registers for its wake-up).
        self.poll_acquiring(cx)
    }

    /// Starts waiting for a place for the message that `frame` starts.
    fn start_waiting(&mut self, frame: Frame<Bytes>) {
        let waiting = Waiting::default();
        let acquire =
            self.budget
                .clone()
                .acquire(self.connection, self.principal.clone(), waiting.clone());
        self.acquiring = Some((Box::pin(acquire), waiting, Instant::now()));
        if let Shape::Unary { acquire_timeout } = self.shape {
            self.acquire_by = Some(Deadline::after(acquire_timeout));
        }
        self.waiting = Some(frame);
    }

    /// Polls the wait for a place; once it has one, passes the frame that
    /// waited.
    fn poll_acquiring(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let (acquiring, waiting, since) = self.acquiring.as_mut().expect("waiting for a place");
        let Poll::Ready(place) = acquiring.as_mut().poll(cx) else {
            if deadline_passed(&mut self.acquire_by, cx) {
                let error = self.budget.too_many(waiting);
                self.acquiring = None;
                self.acquire_by = None;
                self.waiting = None;
                return Poll::Ready(Some(Err(tonic::Status::from(error))));
            }
            return Poll::Pending;
        };
        let waited = since.elapsed();
        self.acquiring = None;
        self.acquire_by = None;
        self.place = Some(place);
        match (&mut self.read_by, self.shape) {
            // The wait for a place does not count against the read timeout.
            (Some(read_by), Shape::Unary { .. }) => read_by.postpone(waited),
            _ => self.read_by = Some(Deadline::after(self.read_timeout)),
        }
        let frame = self.waiting.take().expect("a frame waits for the place");
        self.pass(frame)
    }
}

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        if this.acquiring.is_some() {
            return this.poll_acquiring(cx);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let starts_message = this.place.is_none()
                    && this.framing.at_boundary()
                    && frame.data_ref().is_some_and(|data| !data.is_empty());
                if starts_message {
                    return this.start_message(frame, cx);
                }
                this.pass(frame)
            }
            Poll::Ready(other) => {
                this.place = None;
                this.read_by = None;
                Poll::Ready(other)
            }
            Poll::Pending => {
                if deadline_passed(&mut this.read_by, cx) {
                    // Stalled before or within a message: give the place back.
                    this.place = None;
                    this.read_by = None;
                    let error = GatewayError::RequestReadTimeout(this.read_timeout);
                    return Poll::Ready(Some(Err(tonic::Status::from(error))));
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

/// True once `deadline` is set and has passed (registering `cx` to be woken
/// when it does).
fn deadline_passed(deadline: &mut Option<Deadline>, cx: &mut Context<'_>) -> bool {
    deadline
        .as_mut()
        .is_some_and(|deadline| deadline.passed(cx))
}

/// A point in time whose timer is only made once a read waits for it:
/// most requests arrive whole with their HEADERS, and never need one.
struct Deadline {
    at: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    /// `after` from now.
    fn after(after: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + after,
            timer: None,
        }
    }

    /// Moves it `by` later.
    fn postpone(&mut self, by: Duration) {
        self.at += by;
        if let Some(timer) = &mut self.timer {
            timer.as_mut().reset(self.at);
        }
    }

    /// True once it has passed; else `cx` is woken when it does.
    fn passed(&mut self, cx: &mut Context<'_>) -> bool {
        let at = self.at;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        timer.as_mut().poll(cx).is_ready()
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
