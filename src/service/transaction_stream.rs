//! Transaction: one transaction as one bidirectional stream.
//!
//! A task per stream reads the requests in order and answers each one on a
//! small bounded channel, so a client that stops reading responses stops
//! being read from. The stream is the transaction: whatever ends the stream
//! before a commit — the request stream ending, the client resetting it or
//! going away, a deadline, shutdown — rolls the transaction back at once
//! ([`Open`] does it on drop), rather than after the idle timeout.
//!
//! Each statement runs exactly like an Execute call in the transaction
//! (same guard, limits, server-side checks), so that a failure leaves the
//! transaction in the same state; whether it is still open then decides
//! whether the error is answered in-band or ends the stream.
use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use prost::Message;
use tonic::{Status, Streaming};

use super::{
    DatabaseService, TransactionStream,
    outbox::{self, NotSent},
    status_for,
};
use crate::{
    api::{
        self, StatementOutcome, TransactionRequest, TransactionResponse, statement_outcome,
        transaction_request::Request as Step, transaction_response::Response as Answer,
    },
    auth::Principal,
    errors::{EndReason, GatewayError},
    tasks::Tasks,
    telemetry::RpcLog,
    transactions::Transactions,
};

/// Responses in flight to the client.
const CHANNEL_CAPACITY: usize = 2;

type Sender = outbox::Outbox<TransactionResponse>;

/// How long the stream waits, and for what.
#[derive(Debug, Clone, Copy)]
pub(super) struct TransactionStreamSettings {
    /// Longest wait for the first request (--tx-idle-timeout: a stream
    /// that has not begun is as idle as a transaction nobody uses).
    pub first_request: Duration,
    /// Longest wait for the client to take a response (--stream-stall-timeout).
    pub stall_timeout: Duration,
    /// The client's deadline for the whole stream, if it set one.
    pub client_timeout: Option<Duration>,
}

/// Starts the stream's task; returns the responses.
pub(super) fn start(
    service: DatabaseService,
    requests: Streaming<TransactionRequest>,
    principal: Principal,
    settings: TransactionStreamSettings,
    log: RpcLog,
) -> TransactionStream {
    let (outbox, messages) = outbox::outbox(CHANNEL_CAPACITY);
    let span = log.span().clone();
    let tasks = service.database.tasks().clone();
    tasks.spawn(tracing::Instrument::instrument(
        async move {
            let mut end_streams = service.end_streams.clone();
            let commit_sent = AtomicBool::new(false);
            let work = run(&service, requests, &principal, &outbox, settings, &commit_sent);
            let deadline = async {
                match settings.client_timeout {
                    Some(timeout) => tokio::time::sleep(timeout).await,
                    None => std::future::pending().await,
                }
            };
            // Whatever ends the work early drops it, and with it the open
            // transaction: rolled back at once — unless its COMMIT was sent,
            // which runs to its end (see `commit_transaction`).
            let cut = |error: GatewayError| match commit_sent.load(Ordering::SeqCst) {
                true => Ended::Failed(GatewayError::CommitOutcomeUnknown(format!(
                    "{error}, while the transaction's COMMIT was in flight: COMMIT runs to its end; call Commit with the transaction's id (from `begun`) to learn whether it committed"
                ))),
                false => Ended::Failed(error),
            };
            let outcome = tokio::select! {
                outcome = work => outcome,
                () = outbox.closed() => Err(Ended::ClientLeft),
                () = deadline => Err(cut(GatewayError::DeadlineExceeded(
                    settings.client_timeout.unwrap_or_default(),
                ))),
                _ = end_streams.wait_for(|end| *end) => Err(cut(GatewayError::ShuttingDown)),
            };
            match outcome {
                Ok(statements) => log.finish(statements, None),
                Err(Ended::ClientLeft) => {
                    log.finish(0, Some(&Status::cancelled("the client went away")))
                }
                Err(Ended::Stalled(outcome)) => {
                    // The outcome is the stream's last word: read after
                    // everything queued, if the client ever reads again.
                    crate::stats::record_stream_stalled();
                    let stalled = Status::from(GatewayError::StreamStalled(settings.stall_timeout));
                    log.finish(0, Some(&stalled));
                    outbox.finish(Ok(outcome));
                }
                Err(Ended::Failed(error)) => {
                    if matches!(error, GatewayError::TransactionStreamStalled(_)) {
                        crate::stats::record_stream_stalled();
                    }
                    let status = status_for(error, &principal);
                    log.finish(0, Some(&status));
                    outbox.finish(Err(status));
                }
                Err(Ended::Status(status)) => {
                    log.finish(0, Some(&status));
                    outbox.finish(Err(status));
                }
            }
        },
        span,
    ));
    Box::pin(messages)
}

/// Why a stream ended before its commit or rollback was answered.
enum Ended {
    /// The client reset the stream or went away: nobody to tell.
    ClientLeft,
    /// The stream ends with this error's status.
    Failed(GatewayError),
    /// The stream ends with this status, from reading the requests.
    Status(Status),
    /// The transaction committed or rolled back, and the client took no
    /// response for the stall timeout: this outcome ends the stream.
    Stalled(TransactionResponse),
}

impl From<GatewayError> for Ended {
    fn from(error: GatewayError) -> Ended {
        Ended::Failed(error)
    }
}

/// The open transaction of a stream. Dropped before [`Open::finish`], it is
/// rolled back in a task of its own (a statement still running on it is
/// killed first).
struct Open {
    id: String,
    principal: Principal,
    transactions: Transactions,
    tasks: Tasks,
    finished: bool,
}

impl Open {
    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if self.finished || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let (transactions, id, principal) = (
            self.transactions.clone(),
            std::mem::take(&mut self.id),
            self.principal.clone(),
        );
        self.tasks.spawn(async move {
            if let Err(e) = transactions.rollback(&id, &principal).await {
                tracing::warn!(transaction_id = %id, error = %e, "could not roll back the stream's transaction");
            }
        });
    }
}

/// Serves the stream's requests; returns the number of statements run.
async fn run(
    service: &DatabaseService,
    mut requests: Streaming<TransactionRequest>,
    principal: &Principal,
    sender: &Sender,
    settings: TransactionStreamSettings,
    commit_sent: &AtomicBool,
) -> Result<u64, Ended> {
    let first = next_request(&mut requests, settings.first_request, || {
        invalid("no `begin` request arrived within --tx-idle-timeout")
    })
    .await?;
    let Some(Step::Begin(options)) = first else {
        return Err(invalid("the first request of a Transaction stream must be `begin`").into());
    };
    // The futures of the calls are boxed while they run, so that the task
    // of an idle stream (waiting for its next request) holds only its small
    // state, not room for the largest call (see README, "Memory held by
    // idle streams").
    let begun = Box::pin(service.begin(
        api::BeginRequest {
            options: Some(options),
        },
        principal,
    ));
    let begun = begun.await?;
    let idle_timeout = begun
        .idle_timeout
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(service.transactions.settings().idle_timeout);
    let open = Open {
        id: begun.transaction_id.clone(),
        principal: principal.clone(),
        transactions: service.transactions.clone(),
        tasks: service.database.tasks().clone(),
        finished: false,
    };
    tracing::Span::current().record("transaction_id", open.id.as_str());
    send(sender, Answer::Begun(begun), settings.stall_timeout, false).await?;
    let mut statements = 0;
    loop {
        let request = next_request(&mut requests, idle_timeout, || {
            GatewayError::TransactionExpired(EndReason::IdleTimeout)
        })
        .await?;
        let answer = match request {
            None => {
                return Err(invalid(
                    "the request stream ended without commit or rollback: the transaction was rolled back",
                )
                .into());
            }
            Some(Step::Begin(_)) => {
                return Err(invalid(
                    "`begin` may only be the first request of a Transaction stream",
                )
                .into());
            }
            Some(Step::Statement(statement)) => {
                statements += 1;
                Answer::Statement(Box::pin(run_statement(service, &open, statement)).await?)
            }
            Some(Step::Commit(commit)) => {
                commit_sent.store(true, Ordering::SeqCst);
                let committed =
                    Box::pin(service.commit_transaction(&open.id, principal, &commit.request_id))
                        .await;
                // Committed, or failed for good (nothing left to roll back).
                open.finish();
                let committed = committed?;
                send(
                    sender,
                    Answer::Committed(super::replay::commit(committed)),
                    settings.stall_timeout,
                    true,
                )
                .await?;
                return Ok(statements);
            }
            Some(Step::Rollback(_)) => {
                let rolled_back =
                    Box::pin(service.transactions.rollback(&open.id, principal)).await;
                open.finish();
                let rolled_back = rolled_back?;
                let answer = Answer::RolledBack(api::RollbackResponse { rolled_back });
                send(sender, answer, settings.stall_timeout, true).await?;
                return Ok(statements);
            }
        };
        send(sender, answer, settings.stall_timeout, false).await?;
    }
}

/// Runs one statement as Execute would in the transaction. A failure that
/// leaves the transaction open is the statement's outcome; one that ended
/// it ends the stream.
async fn run_statement(
    service: &DatabaseService,
    open: &Open,
    statement: api::TransactionStatement,
) -> Result<StatementOutcome, Ended> {
    let request = api::ExecuteRequest {
        sql: statement.sql,
        params: statement.params,
        transaction_id: open.id.clone(),
        max_rows: statement.max_rows,
        ..Default::default()
    };
    let deadline = super::deadline::CallDeadline::after(service.limits.statement_timeout);
    let outcome = service
        .execute(request, &open.principal, false, deadline)
        .await;
    let outcome = match outcome {
        Ok(result) => statement_outcome::Outcome::Result(result),
        Err(error) if service.transactions.is_open(&open.id, &open.principal) => {
            statement_outcome::Outcome::Error(rpc_status(&status_for(error, &open.principal)))
        }
        Err(error) => return Err(error.into()),
    };
    Ok(StatementOutcome {
        outcome: Some(outcome),
    })
}

/// The next request, `None` when the client ended the request stream;
/// waiting longer than `wait` fails with `late()`.
async fn next_request(
    requests: &mut Streaming<TransactionRequest>,
    wait: Duration,
    late: impl FnOnce() -> GatewayError,
) -> Result<Option<Step>, Ended> {
    match tokio::time::timeout(wait, requests.message()).await {
        Err(_) => Err(late().into()),
        Ok(Ok(None)) => Ok(None),
        Ok(Ok(Some(TransactionRequest { request: None }))) => Err(invalid(
            "a Transaction request must set begin, statement, commit or rollback",
        )
        .into()),
        Ok(Ok(Some(TransactionRequest {
            request: Some(step),
        }))) => Ok(Some(step)),
        // A malformed or stalled message (the request limits' own status),
        // or a broken stream: answered as is, if the client is still there.
        Ok(Err(status)) => Err(Ended::Status(status)),
    }
}

/// Sends one response, waiting at most `stall_timeout` for room. A stalled
/// `last` response (the transaction's outcome) ends the stream as its last
/// word; any other ends it with STREAM_STALLED, the transaction rolled back.
async fn send(
    sender: &Sender,
    answer: Answer,
    stall_timeout: Duration,
    last: bool,
) -> Result<(), Ended> {
    let response = TransactionResponse {
        response: Some(answer),
    };
    match sender.send(Ok(response), stall_timeout).await {
        Ok(()) => Ok(()),
        Err(NotSent::ClientLeft) => Err(Ended::ClientLeft),
        Err(NotSent::Stalled(Ok(outcome))) if last => Err(Ended::Stalled(outcome)),
        Err(NotSent::Stalled(_)) => {
            Err(GatewayError::TransactionStreamStalled(stall_timeout).into())
        }
    }
}

fn invalid(message: &str) -> GatewayError {
    GatewayError::InvalidRequest(message.to_string())
}

/// A status as a `google.rpc.Status` message: the one tonic carries in
/// `grpc-status-details-bin` (code, message and ErrorInfo), when it has one.
fn rpc_status(status: &Status) -> tonic_types::pb::Status {
    let carried = (!status.details().is_empty())
        .then(|| tonic_types::pb::Status::decode(status.details()).ok())
        .flatten();
    carried.unwrap_or_else(|| tonic_types::pb::Status {
        code: status.code() as i32,
        message: status.message().to_string(),
        details: Vec::new(),
    })
}
