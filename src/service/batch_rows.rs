//! ExecuteBatch's `combine_inserts`: a run of consecutive statements with
//! the same SQL, a plain `INSERT … VALUES (row)` (see
//! [`crate::statement::guard::values_row`]), is sent as multi-row INSERTs,
//! one round trip per chunk instead of one per statement.
//!
//! Each chunk runs after a savepoint (its own, or for a run that starts a
//! batch inside an open transaction the batch's, set just before it: one
//! round trip less). When it fails with an error that
//! leaves the transaction open (a duplicate key, a NULL in a NOT NULL
//! column, …), or succeeds with warnings or a row count other than its
//! number of rows (where one row at a time could have read differently:
//! e.g. a NULL into NOT NULL is an error for a one-row INSERT but a warning
//! in a multi-row one without strict mode), the chunk is undone to the
//! savepoint and its statements run one at a time, so rows, errors (naming
//! the failing statement) and warnings are exactly those of the batch
//! without combining. The chunks' savepoint is not released: the batch's
//! end (COMMIT, or releasing or rolling back to the batch's savepoint, which
//! drops the savepoints set after it) discards it, one round trip less.
use std::ops::Range;

use mysql_async::prelude::Queryable;

use super::batch::{in_batch, run_one};
use crate::{
    api,
    errors::GatewayError,
    statement::{self, ResultLimits, Statement},
    transactions::Lease,
};

const ROWS_SAVEPOINT: &str = "sqlgate_rows";
/// Rows per multi-row INSERT at most.
const MAX_ROWS: usize = 1000;
/// Placeholders of one prepared statement at most (the server's limit).
const MAX_PLACEHOLDERS: usize = 65_535;
/// Parameter bytes per multi-row INSERT at most: far below the smallest
/// default `max_allowed_packet` (4 MiB on MySQL 5.7, 16 MiB on MariaDB).
const MAX_BYTES: usize = 1 << 20;

/// When `statements[start]` begins a run of at least two statements with
/// the same SQL that can be combined: the run's end and the row's range.
pub(super) fn run_at(statements: &[Statement], start: usize) -> Option<(usize, Range<usize>)> {
    let first = &statements[start];
    if !statements.get(start + 1)?.same_sql(first) {
        return None;
    }
    let row = first.values_row()?;
    let same = statements[start + 1..]
        .iter()
        .take_while(|s| s.same_sql(first))
        .count();
    Some((start + 1 + same, row))
}

/// A run of statements to combine (see [`run_at`]).
pub(super) struct Run<'a> {
    /// The statements' indexes in the batch.
    pub run: Range<usize>,
    /// The row's byte range in their SQL.
    pub row: Range<usize>,
    /// A savepoint set just before `run.start`'s statement, which undoes
    /// exactly the first chunk.
    pub undo_to: Option<&'a str>,
}

/// Runs `statements[run]` (see [`run_at`]) as multi-row INSERTs, pushing one
/// result per statement: `rows_affected` 1, `warning_count` 0, and
/// `last_insert_id` 0 except for the first statement of each INSERT sent,
/// which has that INSERT's.
pub(super) async fn run_combined(
    lease: &mut Lease,
    statements: &[Statement],
    Run { run, row, undo_to }: Run<'_>,
    results: &mut Vec<api::StatementResult>,
    limits: ResultLimits,
) -> Result<(), GatewayError> {
    let first = &statements[run.start];
    let row_bytes = first.params_bytes() + row.len();
    let chunk = MAX_ROWS
        .min(MAX_PLACEHOLDERS / first.param_count().max(1))
        .min(MAX_BYTES / row_bytes.max(1))
        .max(1);
    lease
        .before_statement(false, false)
        .await
        .map_err(|e| in_batch(run.start, e))?;
    let mut start = run.start;
    while start < run.end {
        let end = (start + chunk).min(run.end);
        let rows = &statements[start..end];
        let savepoint = match undo_to.filter(|_| start == run.start) {
            Some(savepoint) => savepoint,
            None => {
                lease
                    .conn()
                    .query_drop(format!("SAVEPOINT {ROWS_SAVEPOINT}"))
                    .await
                    .map_err(|e| in_batch(start, e.into()))?;
                ROWS_SAVEPOINT
            }
        };
        let combined = statement::combine(rows, row.clone());
        let backend = lease.backend().clone();
        let mut bytes_used = 0;
        let (conn, sql_mode) = lease.conn_and_sql_mode();
        let outcome = statement::run_to_completion(
            &backend,
            conn,
            Some(sql_mode),
            &combined,
            limits,
            &mut bytes_used,
            None,
        )
        .await;
        let exact = match &outcome {
            Ok(result) => result.rows_affected == rows.len() as u64 && result.warning_count == 0,
            Err(error) => !replayable(error),
        };
        if exact {
            let result = lease
                .check_still_open(outcome)
                .await
                .map_err(|e| in_batch(start, e))?;
            results.extend((0..rows.len()).map(|k| api::StatementResult {
                rows_affected: 1,
                last_insert_id: if k == 0 { result.last_insert_id } else { 0 },
                ..api::StatementResult::default()
            }));
        } else {
            // One statement at a time, as without combining.
            lease
                .conn()
                .query_drop(format!("ROLLBACK TO SAVEPOINT {savepoint}"))
                .await
                .map_err(|e| in_batch(start, e.into()))?;
            for (index, statement) in (start..end).zip(rows) {
                let mut bytes_used = 0;
                results.push(run_one(lease, statement, index, limits, &mut bytes_used).await?);
            }
        }
        start = end;
    }
    Ok(())
}

/// True for an error of a multi-row INSERT after which its rows are run
/// again one at a time: a database error that leaves the transaction open
/// and is about a row, not about time or locks.
fn replayable(error: &GatewayError) -> bool {
    match error.mysql_errno() {
        // Lock wait timeout, statement timeouts, interrupted, packet too large.
        Some(1205 | 1969 | 3024 | 1317 | 1153) | None => false,
        Some(_) => !error.ends_transaction() && !error.connection_lost(),
    }
}
