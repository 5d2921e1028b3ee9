//! The answers of calls with a request id: a replay of a recorded outcome,
//! or a commit that ran now.
use crate::{
    api,
    outcomes::{Committed, Recorded},
};

/// An Execute answered from its record: no columns or rows.
pub(super) fn execute(recorded: Recorded) -> api::ExecuteResponse {
    let mut response = api::ExecuteResponse::default();
    response.rows_affected = recorded.summary.rows_affected;
    response.last_insert_id = recorded.summary.last_insert_id;
    response.commit_token = recorded.commit_token.unwrap_or_default();
    response.replayed = true;
    response
}

/// An ExecuteBatch answered from its record: each statement's counts, no rows.
pub(super) fn batch(recorded: Recorded) -> api::ExecuteBatchResponse {
    let results = recorded
        .summary
        .statements
        .unwrap_or_default()
        .into_iter()
        .map(|(rows_affected, last_insert_id)| api::StatementResult {
            rows_affected,
            last_insert_id,
            ..Default::default()
        })
        .collect();
    api::ExecuteBatchResponse {
        results,
        commit_token: recorded.commit_token.unwrap_or_default(),
        replayed: true,
    }
}

/// The answer of a Commit (or a Transaction stream's commit).
pub(super) fn commit(committed: Committed) -> api::CommitResponse {
    match committed {
        Committed::Now(token) => api::CommitResponse {
            commit_token: token.unwrap_or_default(),
            replayed: false,
        },
        Committed::Replayed(recorded) => api::CommitResponse {
            commit_token: recorded.commit_token.unwrap_or_default(),
            replayed: true,
        },
    }
}
