//! The sending side of a server stream whose last word always reaches the
//! client: a small bounded channel, plus a slot for the final message (an
//! outcome or the status that ends the stream) that is used when the channel
//! is full because the client stopped reading. A client that reads again
//! gets every message queued before it, then that final one.
use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_stream::Stream;
use tonic::Status;

type Item<T> = Result<T, Status>;
type Slot<T> = Arc<Mutex<Option<Item<T>>>>;

/// Where a stream's task sends its messages.
pub(super) struct Outbox<T> {
    sender: mpsc::Sender<Item<T>>,
    last: Slot<T>,
}

/// Why a message was not sent.
pub(super) enum NotSent<T> {
    /// The client went away (reset the stream or closed the connection).
    ClientLeft,
    /// The client took no message for the stall timeout; the message is
    /// given back, e.g. to be the final one.
    Stalled(Item<T>),
}

/// An outbox of `capacity` messages and the stream the client reads.
pub(super) fn outbox<T: Send + 'static>(capacity: usize) -> (Outbox<T>, Messages<T>) {
    let (sender, receiver) = mpsc::channel(capacity);
    let last = Slot::default();
    let messages = Messages {
        receiver,
        last: last.clone(),
    };
    (Outbox { sender, last }, messages)
}

impl<T> Outbox<T> {
    /// Sends one message, waiting at most `stall_timeout` for room.
    pub(super) async fn send(
        &self,
        item: Item<T>,
        stall_timeout: Duration,
    ) -> Result<(), NotSent<T>> {
        let permit = match tokio::time::timeout(stall_timeout, self.sender.reserve()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(NotSent::ClientLeft),
            Err(_) => return Err(NotSent::Stalled(item)),
        };
        permit.send(item);
        Ok(())
    }

    /// Resolves when the client went away.
    pub(super) async fn closed(&self) {
        self.sender.closed().await
    }

    /// Ends the stream with `item`: queued if there is room, otherwise kept
    /// to be read after everything queued.
    pub(super) fn finish(self, item: Item<T>) {
        match self.sender.try_send(item) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(item)) => {
                *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(item);
            }
        }
    }
}

/// The messages the client reads: what was queued, then the final message
/// kept aside, if any.
pub(super) struct Messages<T> {
    receiver: mpsc::Receiver<Item<T>>,
    last: Slot<T>,
}

impl<T> Stream for Messages<T> {
    type Item = Item<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item<T>>> {
        match self.receiver.poll_recv(cx) {
            Poll::Ready(None) => {
                Poll::Ready(self.last.lock().unwrap_or_else(|e| e.into_inner()).take())
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn the_final_message_follows_a_full_channel() {
        let (outbox, mut messages) = outbox::<u32>(1);
        outbox
            .send(Ok(1), Duration::from_secs(1))
            .await
            .ok()
            .unwrap();
        let stalled = outbox.send(Ok(2), Duration::from_millis(10)).await;
        let Err(NotSent::Stalled(Ok(2))) = stalled else {
            panic!("the second message stalls and is given back");
        };
        outbox.finish(Err(Status::deadline_exceeded("stalled")));
        assert_eq!(messages.next().await.unwrap().unwrap(), 1);
        let last = messages.next().await.unwrap().unwrap_err();
        assert_eq!(last.code(), tonic::Code::DeadlineExceeded);
        assert!(messages.next().await.is_none());
    }
}
