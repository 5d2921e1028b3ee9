//! sqlgate patch: a query sent in the same write as the connection's next
//! command instead of in a round trip of its own (see `Conn::defer_query`).
use mysql_common::constants::Command;

use crate::{error::ServerError, tracing_utils::LevelTrace, Conn, DriverError, Error, Result};

/// What became of a deferred query.
#[derive(Debug, Default)]
pub(super) enum DeferredQuery {
    /// None deferred, or its reply was OK.
    #[default]
    None,
    /// Waiting for the next command.
    Unsent(&'static str),
    /// Sent; its reply comes before the next command's.
    ReplyPending,
    /// Its reply was an error (the command sent with it ran all the same).
    Failed(ServerError),
}

impl DeferredQuery {
    pub(super) fn unsent(&self) -> bool {
        matches!(self, DeferredQuery::Unsent(_))
    }

    pub(super) fn reply_pending(&self) -> bool {
        matches!(self, DeferredQuery::ReplyPending)
    }
}

/// Commands the deferred query may leave with: one packet each, with a reply.
const PIPELINED: [Command; 4] = [
    Command::COM_QUERY,
    Command::COM_STMT_PREPARE,
    Command::COM_STMT_EXECUTE,
    Command::COM_PING,
];

/// A command of one packet is shorter than this.
const ONE_PACKET: usize = 0xFF_FF_FF;

impl Conn {
    /// sqlgate patch: `query` (a statement without a result set, e.g.
    /// `START TRANSACTION`) is sent in the same write as the next command
    /// (after a deferred reset, if one is owed), and its reply read before the
    /// command's. The server runs the command whatever the query's answer: an
    /// error does not fail the command, it is kept for
    /// [`Conn::deferred_query_error`], and until the query's OK has been read
    /// [`Conn::deferred_query_unconfirmed`] is `true`; the caller must judge
    /// the command's outcome with that in mind. A next command that cannot
    /// carry it (not a query, prepare, execute or ping of one packet) gets it
    /// in a round trip of its own first; a reset, COM_CHANGE_USER or COM_QUIT
    /// drops it unsent. Returns `false`, changing nothing, on the compressed
    /// protocol, without a connection, or with another query deferred.
    pub fn defer_query(&mut self, query: &'static str) -> bool {
        if self.inner.opts.compression().is_some()
            || self.inner.stream.is_none()
            || !matches!(self.inner.deferred_query, DeferredQuery::None)
        {
            return false;
        }
        self.inner.deferred_query = DeferredQuery::Unsent(query);
        true
    }

    /// sqlgate patch: `true` from [`Conn::defer_query`] until the deferred
    /// query's OK has been read; stays `true` when it failed.
    pub fn deferred_query_unconfirmed(&self) -> bool {
        !matches!(self.inner.deferred_query, DeferredQuery::None)
    }

    /// sqlgate patch: the error the deferred query answered, if it did.
    pub fn deferred_query_error(&self) -> Option<&ServerError> {
        match &self.inner.deferred_query {
            DeferredQuery::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// sqlgate patch: drops a deferred query not sent yet; `true` when there
    /// was one (the server never saw it).
    pub fn cancel_deferred_query(&mut self) -> bool {
        if self.inner.deferred_query.unsent() {
            self.inner.deferred_query = DeferredQuery::None;
            return true;
        }
        false
    }

    /// Sends the deferred query before the command whose first byte is
    /// `command` and whose body is `len` bytes long: in the same write when
    /// it can, else in a round trip of its own first.
    pub(super) async fn send_deferred_query(&mut self, command: u8, len: usize) -> Result<()> {
        let query = match std::mem::take(&mut self.inner.deferred_query) {
            DeferredQuery::Unsent(query) => query,
            other => {
                self.inner.deferred_query = other;
                return Ok(());
            }
        };
        let dropped = [
            Command::COM_QUIT,
            Command::COM_RESET_CONNECTION,
            Command::COM_CHANGE_USER,
        ];
        if dropped.iter().any(|c| *c as u8 == command) {
            return Ok(());
        }
        let pipelined = PIPELINED.iter().any(|c| *c as u8 == command);
        if pipelined && len < ONE_PACKET && query.len() + 1 < ONE_PACKET {
            let mut body = Vec::with_capacity(query.len() + 1);
            body.push(Command::COM_QUERY as u8);
            body.extend_from_slice(query.as_bytes());
            let queued = self.inner.stream_mut()?.queue_command(&body);
            if let Err(e) = queued {
                self.close_broken_stream();
                return Err(e.into());
            }
            // Not counted in `statement_sent`: the caller judges the command
            // it leaves with (sqlgate's START TRANSACTION, on a reset
            // session, commits nothing).
            self.inner.deferred_query = DeferredQuery::ReplyPending;
            return Ok(());
        }
        // In a round trip of its own: its reply is read as any query's.
        match self.raw_query::<_, LevelTrace>(query).await {
            Ok(()) => self.drop_result().await,
            Err(Error::Server(e)) => {
                self.inner.deferred_query = DeferredQuery::Failed(e);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the reply of a deferred query sent together with a command (see
    /// `read_packet`): an OK, or an error that is kept; anything else closes
    /// the connection.
    pub(super) async fn read_deferred_query_reply(&mut self) -> Result<()> {
        self.inner.deferred_query = DeferredQuery::None;
        let outcome = async {
            loop {
                let packet = crate::io::ReadPacket::new(&mut *self).await?;
                if packet.first() != Some(&0x00) && packet.first() != Some(&0xFF) {
                    return Err(DriverError::UnexpectedPacket {
                        payload: packet.to_vec(),
                    }
                    .into());
                }
                match self.handle_packet(&packet) {
                    // A progress report.
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(Error::Server(e)) => {
                        self.inner.deferred_query = DeferredQuery::Failed(e);
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            self.inner.stream_mut()?.expect_first_reply_packet()?;
            Ok::<_, Error>(())
        }
        .await;
        if outcome.is_err() {
            self.close_broken_stream();
        }
        outcome
    }
}
