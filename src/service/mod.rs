//! The `sqlgate.v1.Database` RPCs: thin glue between requests and the
//! transaction, statement and streaming modules.
use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use forward::Routed;

use crate::{
    api::{self, database_server},
    auth::{Principal, Role},
    config::CallConfig,
    database::{Database, replicas::ReadBound},
    errors::{EndReason, GatewayError},
    fleet::Fleet,
    outcomes::{Committed, Fingerprint, Outcomes, Proceed, Summary},
    statement::{self, ResultLimits, Statement, StatementRules},
    telemetry::RpcLog,
    transactions::{Transactions, read_bound},
};

mod batch;
mod batch_rows;
pub mod deadline;
mod forward;
mod outbox;
mod replay;
mod respond;
mod session;
mod stream;
mod transaction_stream;

use deadline::CallDeadline;
use stream::StreamSettings;

pub use respond::WithErrorInfo;
pub use session::Session;

/// The Database service.
#[derive(Clone)]
pub struct DatabaseService {
    database: Database,
    transactions: Transactions,
    /// Outcomes of writes with request ids.
    outcomes: Outcomes,
    limits: CallConfig,
    /// Turns true when shutdown ends the streams still running.
    end_streams: tokio::sync::watch::Receiver<bool>,
    /// The other instances, when this one is part of a fleet.
    fleet: Option<Fleet>,
}

impl DatabaseService {
    /// A service over this database and transaction registry; streams end
    /// when `end_streams` turns true. In a `fleet`, calls for transactions
    /// another instance owns are forwarded to it.
    pub fn new(
        database: Database,
        transactions: Transactions,
        outcomes: Outcomes,
        limits: CallConfig,
        end_streams: tokio::sync::watch::Receiver<bool>,
        fleet: Option<Fleet>,
    ) -> Self {
        DatabaseService {
            database,
            transactions,
            outcomes,
            limits,
            end_streams,
            fleet,
        }
    }

    /// The time limit of a unary call: the client's deadline, capped by
    /// --statement-timeout.
    fn time_limit<T>(&self, request: &Request<T>) -> std::time::Duration {
        self.call_deadline(request).limit
    }

    /// The time limit of a unary call, starting now (see [`CallDeadline`]).
    fn call_deadline<T>(&self, request: &Request<T>) -> CallDeadline {
        CallDeadline::of(request.metadata().as_ref(), self.limits.statement_timeout)
    }

    /// The rules `principal`'s statements must follow, in a transaction or not.
    fn rules(&self, principal: &Principal, in_transaction: bool) -> StatementRules {
        StatementRules {
            max_params: self.limits.max_params,
            read_only: principal.role == Role::ReadOnly,
            in_transaction,
            schema: principal.role == Role::Schema,
        }
    }

    fn result_limits(&self, client_max_rows: u64) -> ResultLimits {
        ResultLimits {
            max_rows: self.limits.max_result_rows,
            max_bytes: self.limits.max_result_bytes,
            client_max_rows: (client_max_rows > 0).then_some(client_max_rows),
        }
    }

    /// Runs an Execute call within `deadline` (see
    /// [`CallDeadline::stop_or_learn`] for a statement that runs into it).
    /// `may_rerun`: an autocommit statement that the primary refused
    /// because it was demoted (error 1290, nothing ran) may run once more on
    /// the new primary (see [`Database::primary_moved_after_refusal`]).
    async fn execute(
        &self,
        mut request: api::ExecuteRequest,
        principal: &Principal,
        may_rerun: bool,
        deadline: CallDeadline,
    ) -> Result<api::ExecuteResponse, GatewayError> {
        let in_transaction = !request.transaction_id.is_empty() || request.begin.is_some();
        if request.commit && !in_transaction {
            return Err(GatewayError::InvalidRequest(
                "commit needs a transaction: set transaction_id or begin (an autocommit call commits by itself)".into(),
            ));
        }
        let key = self.outcomes.execute_key(&request, principal).await?;
        // An autocommit write with a request id runs in a transaction of
        // its own, which records its outcome.
        let own_transaction = key.is_some() && !in_transaction;
        if own_transaction {
            request.begin = Some(Default::default());
            request.commit = true;
        }
        let rules = self.rules(principal, in_transaction || own_transaction);
        let (statement, bound) = checked_statement(&request, rules)?;
        tracing::debug!(sql = statement.sql(), "execute");
        // One timer for both steps (they share the call's limit). The steps
        // and the statement below are boxed: a future handed to `until` or
        // `stop_or_learn` is stored again in each wrapper (rustc keeps the
        // slot of a moved argument), which made this call's future 6.9 KB,
        // copied into its box and allocated on every call (1.8 KB boxed).
        let session = deadline
            .until(Box::pin(async {
                Session::open_for(
                    &self.database,
                    &self.transactions,
                    &request,
                    principal,
                    statement.plain_read(),
                    bound.as_ref(),
                )
                .await?
                .unless_recorded(&self.outcomes, key.as_ref())
                .await
            }))
            .await?;
        let mut session = match session {
            Proceed::Run(session) => session,
            Proceed::Replay(recorded) => return Ok(replay::execute(recorded)),
        };
        let limits = self.result_limits(request.max_rows);
        let backend = session.backend().clone();
        let connection_id = session.conn().id();
        let may_commit = session.commits_by_itself();
        // False while only a READ ONLY text-path run was sent.
        let may_write = std::sync::atomic::AtomicBool::new(false);
        let run = Box::pin(async {
            session.before_statement(&statement).await?;
            let (conn, sql_mode) = session.conn_and_sql_mode();
            let written = Some(&may_write);
            statement::run_to_completion(
                &backend, conn, sql_mode, &statement, limits, &mut 0, written,
            )
            .await
        });
        let (outcome, stopped) = deadline
            .stop_or_learn(
                run,
                || may_commit && may_write.load(std::sync::atomic::Ordering::Relaxed),
                statement.calls(),
                backend.acquire_timeout(),
                // Made only if the statement runs into its limit.
                async { Box::pin(backend.kill_query(connection_id)).await },
            )
            .await;
        session.stopped(stopped);
        if !may_write.load(std::sync::atomic::Ordering::Relaxed) {
            session.sent_read_only();
        }
        let outcome = match outcome {
            // Stopped half-way, nothing committed: dropping the session
            // kills the statement and, in a transaction, ends it as
            // interrupted.
            Err(e) if e.is_deadline() => {
                drop(session);
                return Err(e);
            }
            outcome => outcome,
        };
        // A truncated result was stopped half-way (its statement killed).
        let plain_read = statement.plain_read() && outcome.as_ref().is_ok_and(|r| !r.truncated);
        // The steps after the statement are bounded (see `after_statement`).
        let after = deadline.after_statement(backend.acquire_timeout());
        let outcome = session
            .check_by(
                after,
                statement.calls(),
                statement.may_change_identity(),
                plain_read,
                outcome,
            )
            .await;
        let transaction_id = match own_transaction {
            true => String::new(),
            false => session.begun_transaction_id().unwrap_or_default(),
        };
        let mut commit_token = None;
        if let (true, Ok(result)) = (request.commit, &outcome) {
            let summary = Summary {
                rows_affected: result.rows_affected,
                last_insert_id: result.last_insert_id,
                statements: None,
            };
            let tasks = self.database.tasks();
            // Boxed, as the other paths a point select does not take: the
            // call's future stays small (it is moved, and allocated per call).
            let commit = Box::pin(session.commit(tasks, &self.outcomes, key, summary));
            let how = "call Commit with the transaction's id, or retry with the same request_id, to learn whether it committed";
            match Box::pin(deadline.commit_outcome(how, commit)).await? {
                Committed::Now(token) => commit_token = token,
                Committed::Replayed(recorded) => return Ok(replay::execute(recorded)),
            }
        } else {
            if outcome.is_ok() && !statement.plain_read() {
                commit_token = Box::pin(session.autocommit_write_position(after)).await;
            }
            session.close(after, &outcome).await;
        }
        if let Err(e) = &outcome
            && may_rerun
            && !in_transaction
            && !own_transaction
            && !statement.calls()
            && Box::pin(self.database.primary_moved_after_refusal(&backend, e)).await
        {
            tracing::info!(
                "running an autocommit statement refused by the demoted primary again, on the new primary"
            );
            return Box::pin(self.execute(request, principal, false, deadline)).await;
        }
        let result = outcome?;
        // The column descriptions go as bytes encoded once per result shape.
        let mut response = api::ExecuteResponse::default();
        response.set_encoded_columns(crate::values::encoded_columns(&result.columns));
        response.rows = result.rows;
        response.rows_affected = result.rows_affected;
        response.last_insert_id = result.last_insert_id;
        response.warning_count = result.warning_count;
        response.truncated = result.truncated;
        response.transaction_id = transaction_id;
        response.commit_token = commit_token.unwrap_or_default();
        Ok(response)
    }

    /// Commits `principal`'s transaction `id`, recording its outcome under
    /// `request_id` if one is given; returns its commit token, if any (for
    /// one committed already, the token it committed with). A transaction
    /// that is gone is answered from the outcomes table when `request_id`
    /// is recorded there.
    async fn commit_transaction(
        &self,
        id: &str,
        principal: &Principal,
        request_id: &str,
    ) -> Result<Committed, GatewayError> {
        let key = self
            .outcomes
            .key(principal, request_id, Fingerprint::commit)
            .await?;
        let lease = match self.transactions.checkout(id, principal).await {
            Ok(lease) => lease,
            Err(e) => {
                if let Some(key) = &key
                    && let Some(recorded) = self.outcomes.recorded_for(principal, key).await?
                {
                    return Ok(Committed::Replayed(recorded));
                }
                return match e {
                    // Committed already (e.g. by a Commit whose client gave
                    // up waiting): the truth is that it committed, and where.
                    GatewayError::TransactionNotFound(Some(EndReason::Committed)) => Ok(
                        Committed::Now(self.transactions.commit_token_of(id, principal)),
                    ),
                    e => Err(e),
                };
            }
        };
        // Once sent, COMMIT runs to its end and its outcome is recorded, even
        // if this call is dropped (client cancel or deadline).
        let commit = self.outcomes.clone().commit(lease, key, Summary::default());
        self.database
            .tasks()
            .spawn(commit)
            .await
            .expect("committing does not panic")
    }

    async fn begin(
        &self,
        request: api::BeginRequest,
        principal: &Principal,
    ) -> Result<api::BeginResponse, GatewayError> {
        let lease = self
            .transactions
            .begin(request.options.as_ref(), principal, true)
            .await?;
        let response = api::BeginResponse {
            transaction_id: lease.transaction().id().to_string(),
            idle_timeout: Some(to_proto_duration(lease.transaction().idle_timeout())),
            max_lifetime: Some(to_proto_duration(self.transactions.settings().max_lifetime)),
        };
        lease.release::<()>(&Ok(()));
        Ok(response)
    }
}

/// The statement of an Execute or ExecuteStream request, checked against
/// `rules`, and the replica bound its read_consistency asks for: anything but
/// strong is for autocommit reads only, wherever the read then lands.
fn checked_statement(
    request: &api::ExecuteRequest,
    mut rules: StatementRules,
) -> Result<(Statement, Option<ReadBound>), GatewayError> {
    let bound = read_bound(request.read_consistency.as_ref())?;
    let in_transaction = !request.transaction_id.is_empty() || request.begin.is_some();
    if bound.is_some() && (in_transaction || request.commit) {
        return Err(GatewayError::InvalidRequest(
            "read_consistency applies to autocommit reads: leave it unset (or strong) with transaction_id, begin or commit".into(),
        ));
    }
    rules.read_only |= bound.is_some();
    let statement = Statement::new(&request.sql, &request.params, &rules).map_err(|e| match e {
        GatewayError::ReadOnlyStatement(why) if bound.is_some() => GatewayError::InvalidRequest(
            format!("only reads may set a read_consistency other than strong: {why}"),
        ),
        e => e,
    })?;
    Ok((statement, bound))
}

fn to_proto_duration(duration: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(duration).expect("configured durations fit a protobuf Duration")
}

/// A read-only principal's refused write becomes PERMISSION_DENIED /
/// READ_ONLY_PRINCIPAL: the database says 1792 ("read only transaction") in
/// a READ ONLY transaction, and 1142 ("command denied") or 1044 (access
/// denied to a database) to the read-only account.
fn for_caller(error: GatewayError, principal: &Principal) -> GatewayError {
    let refused_write = matches!(error.mysql_errno(), Some(1792 | 1142 | 1044));
    if principal.role == Role::ReadOnly && refused_write {
        GatewayError::ReadOnlyPrincipal {
            principal: principal.name.to_string(),
            source: Box::new(error),
        }
    } else {
        error
    }
}

/// The status a failed call answers: the error as `principal` should see it
/// (see [`for_caller`]), counted by errno when the database reported it.
fn status_for(error: GatewayError, principal: &Principal) -> Status {
    if let Some(errno) = error.mysql_errno() {
        crate::stats::record_database_error(errno);
    }
    Status::from(for_caller(error, principal))
}

/// Runs an RPC's work inside its span, logs how it ended, and turns its
/// error into a gRPC status.
async fn serve<T>(
    log: RpcLog,
    principal: &Principal,
    rows: impl FnOnce(&T) -> u64,
    work: impl Future<Output = Result<T, GatewayError>>,
) -> Result<Response<T>, Status> {
    let result = work.instrument(log.span().clone()).await;
    match result {
        Ok(response) => {
            log.finish(rows(&response), None);
            Ok(Response::new(response))
        }
        Err(error) => {
            let status = status_for(error, principal);
            log.finish(0, Some(&status));
            Err(status)
        }
    }
}

/// The stream type of Transaction.
pub type TransactionStream =
    Pin<Box<dyn Stream<Item = Result<api::TransactionResponse, Status>> + Send>>;

/// The stream type of ExecuteStream.
pub type ExecuteStreamStream =
    Pin<Box<dyn Stream<Item = Result<api::ExecuteStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl database_server::Database for DatabaseService {
    async fn execute(
        &self,
        request: Request<api::ExecuteRequest>,
    ) -> Result<Response<api::ExecuteResponse>, Status> {
        let request = match forward::unary(self.fleet.as_ref(), request).await {
            Routed::Here(request) => request,
            Routed::Forwarded(answer) => return answer,
        };
        let deadline = self.call_deadline(&request);
        let principal = Principal::of(&request);
        let log = RpcLog::start(
            "Execute",
            &request.get_ref().transaction_id,
            request.metadata(),
        );
        let request = request.into_inner();
        // Boxed: the statement's future is large, and moving it into the
        // span and the trait's boxed future copied it each time.
        let work = Box::pin(self.execute(request, &principal, true, deadline));
        serve(log, &principal, |r| r.rows.len() as u64, work).await
    }

    type ExecuteStreamStream = ExecuteStreamStream;

    async fn execute_stream(
        &self,
        request: Request<api::ExecuteRequest>,
    ) -> Result<Response<Self::ExecuteStreamStream>, Status> {
        let stall_timeout = self.limits.stream_stall_timeout;
        let request = match forward::stream(self.fleet.as_ref(), request, stall_timeout).await {
            Routed::Here(request) => request,
            Routed::Forwarded(answer) => return answer,
        };
        let settings = StreamSettings {
            batch_bytes: self.limits.stream_batch_bytes,
            stall_timeout: self.limits.stream_stall_timeout,
            client_max_rows: (request.get_ref().max_rows > 0).then_some(request.get_ref().max_rows),
            deadline: self.call_deadline(&request),
            // Same rule as Execute: in a transaction when it names or begins one.
            rules: self.rules(
                &Principal::of(&request),
                !request.get_ref().transaction_id.is_empty() || request.get_ref().begin.is_some(),
            ),
        };
        let principal = Principal::of(&request);
        let log = RpcLog::start(
            "ExecuteStream",
            &request.get_ref().transaction_id,
            request.metadata(),
        );
        let request = request.into_inner();
        let stream = stream::start(
            self.database.clone(),
            self.transactions.clone(),
            request,
            principal,
            settings,
            log,
            self.end_streams.clone(),
        );
        Ok(Response::new(stream))
    }

    async fn begin(
        &self,
        request: Request<api::BeginRequest>,
    ) -> Result<Response<api::BeginResponse>, Status> {
        let limit = self.time_limit(&request);
        let principal = Principal::of(&request);
        let log = RpcLog::start("Begin", "", request.metadata());
        let span = log.span().clone();
        let work = deadline::within(limit, async {
            let response = self.begin(request.into_inner(), &principal).await?;
            span.record("transaction_id", response.transaction_id.as_str());
            Ok(response)
        });
        serve(log, &principal, |_| 0, work).await
    }

    async fn commit(
        &self,
        request: Request<api::CommitRequest>,
    ) -> Result<Response<api::CommitResponse>, Status> {
        let request = match forward::unary(self.fleet.as_ref(), request).await {
            Routed::Here(request) => request,
            Routed::Forwarded(answer) => return answer,
        };
        let deadline = self.call_deadline(&request);
        let principal = Principal::of(&request);
        let log = RpcLog::start(
            "Commit",
            &request.get_ref().transaction_id,
            request.metadata(),
        );
        let request = request.into_inner();
        serve(log, &principal, |_| 0, async {
            let commit =
                self.commit_transaction(&request.transaction_id, &principal, &request.request_id);
            let how =
                "call Commit again (or with the same request_id) to learn whether it committed";
            let committed = deadline.commit_outcome(how, commit).await?;
            Ok(replay::commit(committed))
        })
        .await
    }

    type TransactionStream = TransactionStream;

    async fn transaction(
        &self,
        request: Request<tonic::Streaming<api::TransactionRequest>>,
    ) -> Result<Response<Self::TransactionStream>, Status> {
        let settings = transaction_stream::TransactionStreamSettings {
            first_request: self.transactions.settings().idle_timeout,
            stall_timeout: self.limits.stream_stall_timeout,
            client_timeout: deadline::client_timeout(request.metadata()),
        };
        let principal = Principal::of(&request);
        let log = RpcLog::start("Transaction", "", request.metadata());
        let requests = request.into_inner();
        let stream = transaction_stream::start(self.clone(), requests, principal, settings, log);
        Ok(Response::new(stream))
    }

    async fn rollback(
        &self,
        request: Request<api::RollbackRequest>,
    ) -> Result<Response<api::RollbackResponse>, Status> {
        let request = match forward::unary(self.fleet.as_ref(), request).await {
            Routed::Here(request) => request,
            Routed::Forwarded(answer) => return answer,
        };
        let principal = Principal::of(&request);
        let log = RpcLog::start(
            "Rollback",
            &request.get_ref().transaction_id,
            request.metadata(),
        );
        let request = request.into_inner();
        serve(log, &principal, |_| 0, async {
            // Once asked, the rollback runs to its end even if this call is
            // dropped (client cancel or deadline), as COMMIT does.
            let (transactions, principal) = (self.transactions.clone(), principal.clone());
            let rolled_back = self
                .database
                .tasks()
                .spawn(async move {
                    transactions
                        .rollback(&request.transaction_id, &principal)
                        .await
                })
                .await
                .expect("rolling back does not panic")?;
            Ok(api::RollbackResponse { rolled_back })
        })
        .await
    }

    async fn execute_batch(
        &self,
        request: Request<api::ExecuteBatchRequest>,
    ) -> Result<Response<api::ExecuteBatchResponse>, Status> {
        let request = match forward::unary(self.fleet.as_ref(), request).await {
            Routed::Here(request) => request,
            Routed::Forwarded(answer) => return answer,
        };
        let deadline = self.call_deadline(&request);
        let principal = Principal::of(&request);
        let log = RpcLog::start(
            "ExecuteBatch",
            &request.get_ref().transaction_id,
            request.metadata(),
        );
        let request = request.into_inner();
        let rows =
            |r: &api::ExecuteBatchResponse| r.results.iter().map(|s| s.rows.len() as u64).sum();
        let work = batch::execute_batch(self, request, &principal, deadline);
        serve(log, &principal, rows, work).await
    }
}
