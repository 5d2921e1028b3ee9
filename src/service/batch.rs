//! ExecuteBatch: several statements, all or nothing.
//!
//! Without a transaction_id the batch runs in a transaction of its own that
//! commits at the end. Inside an open transaction it runs between a savepoint
//! and its release, so that a failure undoes exactly what the batch did and
//! the transaction stays usable.
use mysql_async::prelude::Queryable;

use super::{DatabaseService, batch_rows, deadline::CallDeadline, replay};
use crate::{
    api,
    auth::Principal,
    errors::GatewayError,
    outcomes::{Committed, Proceed, Summary},
    statement::{self, Statement},
    transactions::Lease,
};

const SAVEPOINT: &str = "sqlgate_batch";

pub(super) async fn execute_batch(
    service: &DatabaseService,
    request: api::ExecuteBatchRequest,
    principal: &Principal,
    deadline: CallDeadline,
) -> Result<api::ExecuteBatchResponse, GatewayError> {
    if request.statements.is_empty() {
        return Err(GatewayError::InvalidRequest("statements is empty".into()));
    }
    let max = service.limits.max_batch_statements;
    if request.statements.len() > max {
        return Err(GatewayError::InvalidRequest(format!(
            "too many statements: {} (the limit is {max}, --max-batch-statements)",
            request.statements.len()
        )));
    }
    // A batch always runs in a transaction.
    let rules = service.rules(principal, true);
    // Check every statement before touching the database.
    let mut statements: Vec<Statement> = Vec::with_capacity(request.statements.len());
    for (index, s) in request.statements.iter().enumerate() {
        // The same text as the previous statement's (executemany): checked once.
        let again = match (index.checked_sub(1), statements.last()) {
            (Some(previous), Some(last)) if request.statements[previous].sql == s.sql => {
                last.again_with(&s.params, &rules)
            }
            _ => None,
        };
        let statement = again.unwrap_or_else(|| Statement::new(&s.sql, &s.params, &rules));
        statements.push(statement.map_err(|e| in_batch(index, e))?);
    }
    let combine = request.combine_inserts;
    let key = service.outcomes.batch_key(&request, principal).await?;
    // The time limit covers the statements, in the batch's own transaction
    // or an open one (a batch stopped there rolls back and ends the
    // transaction); COMMIT, once sent, runs to its end and its outcome is
    // recorded, even if the call is dropped: the call waits for it until the
    // client's own deadline is about to pass, then answers UNKNOWN.
    let own_transaction = request.transaction_id.is_empty();
    if !own_transaction && request.options.is_some() {
        return Err(GatewayError::InvalidRequest(
            "options apply only to a batch's own transaction; leave them unset with transaction_id"
                .into(),
        ));
    }
    let work = async {
        let mut lease = if own_transaction {
            let lease = service
                .transactions
                .begin(request.options.as_ref(), principal, false)
                .await?;
            // The client never sees this transaction's id: its end is not
            // remembered (see `Transaction::note_id_unseen`).
            lease.transaction().note_id_unseen();
            match service
                .outcomes
                .unless_recorded(lease, key.as_ref())
                .await?
            {
                Proceed::Run(lease) => lease,
                Proceed::Replay(recorded) => return Ok(Proceed::Replay(recorded)),
            }
        } else {
            service
                .transactions
                .checkout(&request.transaction_id, principal)
                .await?
        };
        let outcome = match own_transaction {
            true => run_all(service, &mut lease, &statements, combine, None).await,
            false => run_in_savepoint(service, &mut lease, &statements, combine).await,
        };
        Ok(Proceed::Run((lease, outcome)))
    };
    // Past the limit, the work is dropped with its lease: the statement is
    // killed and the transaction ends as interrupted.
    let (lease, outcome) = match deadline.until(work).await? {
        Proceed::Run(ran) => ran,
        Proceed::Replay(recorded) => return Ok(replay::batch(recorded)),
    };
    let outcome = match outcome {
        // Stopped half-way (not expected here: the limit drops the work).
        Err(error) if error.is_deadline() => {
            lease.abandon();
            return Err(error);
        }
        outcome => outcome,
    };
    if let Err(error) = &outcome {
        // A lost connection or 1290: the primary is checked now.
        lease.backend().note_failure(error);
    }
    if !own_transaction {
        lease.release(&outcome);
        return Ok(api::ExecuteBatchResponse {
            results: outcome?,
            commit_token: String::new(),
            replayed: false,
        });
    }
    match outcome {
        Ok(results) => {
            let summary = Summary::batch(
                results
                    .iter()
                    .map(|r| (r.rows_affected, r.last_insert_id))
                    .collect(),
            );
            let commit = service.outcomes.clone().commit(lease, key, summary);
            let commit = service.database.tasks().spawn(commit);
            let how = "retry with the same request_id, or check whether the batch's work is there";
            let committed = deadline
                .commit_outcome(how, async {
                    commit.await.expect("committing does not panic")
                })
                .await?;
            Ok(match committed {
                Committed::Now(token) => api::ExecuteBatchResponse {
                    results,
                    commit_token: token.unwrap_or_default(),
                    replayed: false,
                },
                Committed::Replayed(recorded) => replay::batch(recorded),
            })
        }
        Err(error) if error.ended_by_statement() => {
            // Committed by the statement itself: nothing to roll back.
            let outcome = Err(error);
            lease.release::<api::ExecuteBatchResponse>(&outcome);
            outcome
        }
        Err(error) => {
            // Bounded as Execute's steps after its statement: a ROLLBACK
            // that does not answer is dropped with the lease (the
            // connection's command killed, the server rolls back).
            let after = deadline.after_statement(lease.backend().acquire_timeout());
            if tokio::time::timeout_at(after, lease.rollback())
                .await
                .is_err()
            {
                tracing::warn!(
                    "no answer to the ROLLBACK of a failed batch; abandoning its transaction"
                );
            }
            Err(error.transaction_rolled_back())
        }
    }
}

async fn run_in_savepoint(
    service: &DatabaseService,
    lease: &mut Lease,
    statements: &[Statement],
    combine: bool,
) -> Result<Vec<api::StatementResult>, GatewayError> {
    lease
        .conn()
        .query_drop(format!("SAVEPOINT {SAVEPOINT}"))
        .await?;
    let outcome = run_all(service, lease, statements, combine, Some(SAVEPOINT)).await;
    let undo = match &outcome {
        Ok(_) => format!("RELEASE SAVEPOINT {SAVEPOINT}"),
        // After an error that ended the transaction there is nothing to undo.
        Err(e) if e.ends_transaction() || e.ended_by_statement() => return outcome,
        Err(_) => format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"),
    };
    lease.conn().query_drop(undo).await?;
    outcome
}

/// `savepoint`: a savepoint set just before the batch's first statement,
/// if any (inside an open transaction).
async fn run_all(
    service: &DatabaseService,
    lease: &mut Lease,
    statements: &[Statement],
    combine_inserts: bool,
    savepoint: Option<&str>,
) -> Result<Vec<api::StatementResult>, GatewayError> {
    let limits = service.result_limits(0);
    let mut bytes_used = 0;
    let mut results = Vec::with_capacity(statements.len());
    let mut index = 0;
    while index < statements.len() {
        if combine_inserts && let Some((end, row)) = batch_rows::run_at(statements, index) {
            // Nothing ran since the batch's savepoint: its first chunk can
            // be undone to that one instead of one of its own.
            let undo_to = savepoint.filter(|_| index == 0);
            let rows = batch_rows::Run {
                run: index..end,
                row,
                undo_to,
            };
            batch_rows::run_combined(lease, statements, rows, &mut results, limits).await?;
            index = end;
            continue;
        }
        let result = run_one(lease, &statements[index], index, limits, &mut bytes_used).await?;
        results.push(result);
        index += 1;
    }
    Ok(results)
}

/// Runs the batch's statement number `index` on its own.
pub(super) async fn run_one(
    lease: &mut Lease,
    statement: &Statement,
    index: usize,
    limits: statement::ResultLimits,
    bytes_used: &mut u64,
) -> Result<api::StatementResult, GatewayError> {
    lease
        .before_statement(statement.reads_leftovers(), statement.calls())
        .await
        .map_err(|e| in_batch(index, e))?;
    let backend = lease.backend().clone();
    let (conn, sql_mode) = lease.conn_and_sql_mode();
    let result = statement::run_to_completion(
        &backend,
        conn,
        Some(sql_mode),
        statement,
        limits,
        bytes_used,
        None,
    )
    .await;
    if statement.may_change_identity() {
        lease.transaction().note_identity_in_doubt();
    }
    let result = lease
        .check_still_open(result)
        .await
        .map_err(|e| in_batch(index, e))?;
    Ok(api::StatementResult {
        columns: crate::statement::describe_columns(&result.columns),
        rows: result.rows,
        rows_affected: result.rows_affected,
        last_insert_id: result.last_insert_id,
        warning_count: result.warning_count,
    })
}

pub(super) fn in_batch(statement_index: usize, error: GatewayError) -> GatewayError {
    GatewayError::InBatch {
        statement_index,
        source: Box::new(error),
    }
}
