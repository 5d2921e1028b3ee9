//! ExecuteStream: results of any size, with backpressure.
//!
//! A task per stream owns the session (connection or transaction lease) and
//! writes to a small bounded channel, so rows are read from the database only
//! as fast as the client takes batches: memory does not grow with the result.
//! If the client goes away, the task's work is dropped, which kills the
//! running statement and ends a transaction it was in (see `Lease`).
//!
//! A client that stops taking messages (but keeps its connection) must not
//! keep a connection forever: a send that waits longer than
//! --stream-stall-timeout ends the stream the same way (STREAM_STALLED). The
//! timer is armed per batch, and only when the channel is full.
use std::time::Duration;

use mysql_async::{BinaryProtocol, QueryResult};
use prost::bytes::BytesMut;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{
    ExecuteStreamStream, Session, checked_statement,
    deadline::{CallDeadline, Cut, Stopped},
    status_for,
};
use crate::{
    api::{self, ExecuteStreamResponse, execute_stream_response::Part},
    auth::Principal,
    database::{Backend, Database},
    errors::GatewayError,
    statement::{RowConverter, Statement, StatementRules, describe_columns, stop_reading},
    telemetry::RpcLog,
    transactions::Transactions,
};

/// Batches in flight between the database task and the client: enough to
/// keep both busy, few enough to bound memory.
const CHANNEL_CAPACITY: usize = 2;

/// How one stream is cut into batches.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// Target size of a batch (--stream-batch-bytes).
    pub batch_bytes: u64,
    /// Longest wait for the client to take a message (--stream-stall-timeout).
    pub stall_timeout: Duration,
    /// The client's max_rows, if any.
    pub client_max_rows: Option<u64>,
    /// The limit until the result starts (client deadline or
    /// --statement-timeout); the client's deadline bounds the whole stream.
    pub deadline: CallDeadline,
    /// The rules the caller's statement must follow.
    pub rules: StatementRules,
}

/// Most bytes reserved for a batch before rows arrive (batches may still grow
/// past it when --stream-batch-bytes is larger).
const MAX_PREALLOCATED_BATCH: u64 = 1 << 20;

/// Room for the last row, which takes a batch past its target size.
const BATCH_SLACK: usize = 4096;

type Sender = mpsc::Sender<Result<ExecuteStreamResponse, Status>>;

/// Starts streaming the result of `request` and returns the stream of messages.
pub fn start(
    database: Database,
    transactions: Transactions,
    request: api::ExecuteRequest,
    principal: Principal,
    settings: StreamSettings,
    log: RpcLog,
    mut end_streams: tokio::sync::watch::Receiver<bool>,
) -> ExecuteStreamStream {
    let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
    let span = log.span().clone();
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let work = async {
                let work = stream_result(
                    &database,
                    &transactions,
                    request,
                    &principal,
                    settings,
                    &sender,
                );
                settings.deadline.until_answer(work).await
            };
            tokio::select! {
                outcome = work => match outcome {
                    Ok(rows) => log.finish(rows, None),
                    Err(error) => {
                        if matches!(error, GatewayError::StreamStalled(_)) {
                            crate::stats::record_stream_stalled();
                        }
                        let status = status_for(error, &principal);
                        log.finish(0, Some(&status));
                        // The connection is back already; a stalled client
                        // gets the status if it ever reads again.
                        let _ = sender.send(Err(status)).await;
                    }
                },
                // The client went away: dropping `work` kills the statement.
                _ = sender.closed() => {
                    log.finish(0, Some(&Status::cancelled("the client went away")));
                }
                // Shutdown's grace is over: end the stream the same way.
                _ = ended(&mut end_streams) => {
                    let status = Status::from(GatewayError::ShuttingDown);
                    log.finish(0, Some(&status));
                    let _ = sender.try_send(Err(status));
                }
            }
        },
        span,
    ));
    Box::pin(ReceiverStream::new(receiver))
}

/// Resolves once `end` turns true (never, if its sender is gone).
async fn ended(end: &mut tokio::sync::watch::Receiver<bool>) {
    while !*end.borrow_and_update() {
        if end.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs the statement and sends header, batches and summary; returns the row count.
async fn stream_result(
    database: &Database,
    transactions: &Transactions,
    request: api::ExecuteRequest,
    principal: &Principal,
    settings: StreamSettings,
    sender: &Sender,
) -> Result<u64, GatewayError> {
    if request.commit {
        return Err(GatewayError::InvalidRequest(
            "commit applies to Execute only: after an ExecuteStream, call Commit".into(),
        ));
    }
    if !request.request_id.is_empty() {
        return Err(GatewayError::InvalidRequest(
            "request_id applies to Execute, ExecuteBatch and Commit, not ExecuteStream".into(),
        ));
    }
    let (statement, bound) = checked_statement(&request, settings.rules)?;
    tracing::debug!(sql = statement.sql(), "execute stream");
    let open = Session::open_for(
        database,
        transactions,
        &request,
        principal,
        // Streams always reset their connection (see below).
        false,
        bound.as_ref(),
    );
    // One deadline for everything until the result starts.
    let mut session = settings.deadline.until(open).await?;
    let transaction_id = session.begun_transaction_id().unwrap_or_default();
    let outcome = match session.before_statement(&statement).await {
        Ok(()) => send_rows(&mut session, &statement, settings, sender, transaction_id).await,
        Err(e) => Err(e),
    };
    let after = settings
        .deadline
        .after_statement(session.backend().acquire_timeout());
    let outcome = session
        // Streams always reset their connection (a stream may stop
        // half-way; its truncation is not tracked here).
        .check_by(
            after,
            statement.calls(),
            statement.may_change_identity(),
            false,
            outcome,
        )
        .await;
    session.close(after, &outcome).await;
    outcome
}

async fn send_rows(
    session: &mut Session,
    statement: &Statement,
    settings: StreamSettings,
    sender: &Sender,
    transaction_id: String,
) -> Result<u64, GatewayError> {
    let connection_id = session.conn().id();
    let backend = session.backend().clone();
    let may_commit = session.commits_by_itself();
    let (conn, sql_mode) = session.conn_and_sql_mode();
    // An autocommit statement that runs into the limit before its result
    // starts may have completed (a write's result is its OK): its own
    // answer tells (see `CallDeadline::stop_or_learn`).
    let (started, stopped) = settings
        .deadline
        .stop_or_learn(
            statement.start(conn, sql_mode),
            || may_commit,
            statement.calls(),
            backend.acquire_timeout(),
            backend.kill_query(connection_id),
        )
        .await;
    let streamed = match started {
        Ok(mut result) => {
            let parts = Parts { settings, sender };
            let killed = stopped != Stopped::No;
            let streaming = parts.stream(&mut result, transaction_id, killed);
            // The client's deadline bounds the rows too. Where the statement
            // may have committed by itself, it is stopped a margin early, so
            // that what it did can still be learned (`stop_mid_result`);
            // elsewhere the whole stream is dropped at the deadline (see
            // `start`), which stops it.
            let streamed = match settings.deadline.client_stop().filter(|_| may_commit) {
                None => streaming.await,
                Some(stop) => tokio::time::timeout_at(stop, streaming)
                    .await
                    .unwrap_or(Err(GatewayError::DeadlineExceeded(settings.deadline.limit))),
            };
            // Cut mid-rows where the statement may have committed: what it
            // did is learned (see `stop_mid_result`).
            let cut = match &streamed {
                Err(GatewayError::DeadlineExceeded(_)) => Some(Cut::Deadline),
                Err(GatewayError::StreamStalled(limit)) => Some(Cut::Stalled(*limit)),
                _ => None,
            };
            if let Some(cut) = cut.filter(|_| may_commit) {
                let rest = async { Ok(result.drop_result().await?) };
                let kill = backend.kill_query(connection_id);
                let (wait, calls) = (backend.acquire_timeout(), statement.calls());
                let deadline = settings.deadline;
                let (error, how) = deadline.stop_mid_result(cut, wait, rest, kill, calls).await;
                session.stopped(how);
                return Err(error);
            }
            let streamed = match streamed {
                Ok((summary, truncated)) => {
                    finish_result(&backend, connection_id, result, truncated)
                        .await
                        .map(|()| summary)
                }
                Err(e) => Err(e),
            };
            match streamed {
                // The KILL landed after the result started.
                Err(e) if killed => Err(settings.deadline.after_kill(e, statement.calls())),
                streamed => streamed,
            }
        }
        Err(e) => Err(e),
    };
    session.stopped(stopped);
    let mut summary = streamed?;
    if !statement.plain_read() {
        // An autocommit write's position, when the database has replicas.
        let after = settings.deadline.after_statement(backend.acquire_timeout());
        summary.commit_token = session
            .autocommit_write_position(after)
            .await
            .unwrap_or_default();
    }
    let row_count = summary.row_count;
    send(sender, Part::Summary(summary), settings.stall_timeout).await?;
    Ok(row_count)
}

/// Where a started result goes.
struct Parts<'a> {
    settings: StreamSettings,
    sender: &'a Sender,
}

impl Parts<'_> {
    /// Sends the header and the rows of `result`; its summary, to send once
    /// the connection is at rest (see `finish_result`), and whether the rows
    /// were truncated. `stopped`: a KILL was sent after the
    /// result started (a SELECT's columns come before its rows are made):
    /// the first row is read before the header goes, so that a statement
    /// the KILL interrupted sends nothing.
    async fn stream(
        &self,
        result: &mut QueryResult<'_, 'static, BinaryProtocol>,
        transaction_id: String,
        stopped: bool,
    ) -> Result<(api::ResultSummary, bool), GatewayError> {
        let (settings, sender) = (self.settings, self.sender);
        let mut first = match stopped {
            true => Some(result.next().await?),
            false => None,
        };
        let columns = result.columns();
        let columns = columns.as_deref().unwrap_or(&[]);
        let converter = RowConverter::new(columns);
        let header = Part::Header(api::ResultHeader {
            columns: describe_columns(columns),
            transaction_id,
        });
        send(sender, header, settings.stall_timeout).await?;

        // Rows go out already encoded: no protobuf value is built per cell.
        // Sized for a full batch up front, so that it rarely grows while filling.
        let capacity = settings.batch_bytes.min(MAX_PREALLOCATED_BATCH) as usize + BATCH_SLACK;
        let mut batch = BytesMut::with_capacity(capacity);
        let mut batch_rows = 0usize;
        let mut scratch = Vec::new();
        let mut row_count = 0u64;
        let mut truncated = false;
        loop {
            let row = match first.take() {
                Some(row) => row,
                None => result.next().await?,
            };
            let Some(row) = row else { break };
            if settings.client_max_rows.is_some_and(|max| row_count >= max) {
                truncated = true;
                break;
            }
            converter.encode_row(&row, &mut scratch, &mut batch)?;
            batch_rows += 1;
            row_count += 1;
            if batch.len() as u64 >= settings.batch_bytes {
                send_batch(sender, &mut batch, &mut batch_rows, settings).await?;
                batch.reserve(capacity);
            }
        }
        if batch_rows > 0 {
            send_batch(sender, &mut batch, &mut batch_rows, settings).await?;
        }
        let summary = api::ResultSummary {
            rows_affected: result.affected_rows(),
            last_insert_id: result.last_insert_id().unwrap_or(0),
            warning_count: u32::from(result.warnings()),
            truncated,
            row_count,
            commit_token: String::new(),
        };
        Ok((summary, truncated))
    }
}

/// Leaves the connection clean: stops a truncated result, or reads the
/// remaining result sets of a finished one.
async fn finish_result(
    backend: &Backend,
    connection_id: u32,
    result: QueryResult<'_, 'static, BinaryProtocol>,
    truncated: bool,
) -> Result<(), GatewayError> {
    if truncated {
        stop_reading(backend, connection_id, result).await;
    } else {
        result.drop_result().await?;
    }
    Ok(())
}

/// Sends the rows encoded so far as one batch and empties it.
async fn send_batch(
    sender: &Sender,
    batch: &mut BytesMut,
    batch_rows: &mut usize,
    settings: StreamSettings,
) -> Result<(), GatewayError> {
    crate::stats::record_streamed(*batch_rows, batch.len() as u64);
    let encoded = batch.split().freeze();
    *batch_rows = 0;
    let rows = Part::Rows(api::RowBatch::from_encoded(encoded));
    send(sender, rows, settings.stall_timeout).await
}

/// Sends one message, waiting while the client is behind, but not longer than
/// `stall_timeout`: past it the stream fails with `StreamStalled`, and its
/// session is abandoned (which kills the statement).
async fn send(sender: &Sender, part: Part, stall_timeout: Duration) -> Result<(), GatewayError> {
    let message = Ok(ExecuteStreamResponse { part: Some(part) });
    // Room in the channel: no timer at all.
    let message = match sender.try_send(message) {
        Ok(()) => return Ok(()),
        Err(TrySendError::Full(message)) => message,
        Err(TrySendError::Closed(_)) => return client_gone().await,
    };
    match tokio::time::timeout(stall_timeout, sender.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => client_gone().await,
        Err(_) => Err(GatewayError::StreamStalled(stall_timeout)),
    }
}

/// The client has gone: `sender.closed()` in `start` is ready and drops this
/// work, which kills the statement and ends its transaction.
async fn client_gone() -> Result<(), GatewayError> {
    std::future::pending().await
}
