//! One operation of each workload, along each path: what the timed loops
//! of [`crate::workloads`] repeat.

use super::*;

pub(super) async fn direct_point_select(conn: &mut Conn, id: i64) {
    let row: Option<(i64, i64, String)> = conn
        .exec_first(POINT_SELECT, (id,))
        .await
        .expect("point select");
    assert!(row.is_some());
}

/// Begin + 2 UPDATE + Commit, the Commit with `request_id` unless empty.
pub(super) async fn gateway_transaction(
    client: &mut DatabaseClient<Channel>,
    a: i64,
    b: i64,
    request_id: String,
) {
    let tx = client
        .begin(BeginRequest::default())
        .await
        .expect("begin")
        .into_inner()
        .transaction_id;
    for id in [a, b] {
        client
            .execute(ExecuteRequest {
                sql: UPDATE.into(),
                params: vec![int(id)],
                transaction_id: tx.clone(),
                ..Default::default()
            })
            .await
            .expect("update");
    }
    let committed = client
        .commit(CommitRequest {
            transaction_id: tx,
            request_id,
        })
        .await
        .expect("commit");
    assert!(!committed.into_inner().replayed, "a new request id");
}

/// The same transaction in two calls: the first UPDATE begins it, the
/// second commits it.
pub(super) async fn gateway_inline_transaction(
    client: &mut DatabaseClient<Channel>,
    a: i64,
    b: i64,
) {
    let tx = client
        .execute(ExecuteRequest {
            sql: UPDATE.into(),
            params: vec![int(a)],
            begin: Some(Default::default()),
            ..Default::default()
        })
        .await
        .expect("begin + update")
        .into_inner()
        .transaction_id;
    client
        .execute(ExecuteRequest {
            sql: UPDATE.into(),
            params: vec![int(b)],
            transaction_id: tx,
            commit: true,
            ..Default::default()
        })
        .await
        .expect("update + commit");
}

/// The same transaction as one Transaction stream: every request is sent
/// at once, then the four answers are read.
pub(super) async fn gateway_stream_transaction(
    client: &mut DatabaseClient<Channel>,
    a: i64,
    b: i64,
) {
    use sqlgate::api::{
        TransactionCommit, TransactionRequest, TransactionStatement,
        transaction_request::Request as Step, transaction_response::Response as Answer,
    };
    let statement = |id| {
        Step::Statement(TransactionStatement {
            sql: UPDATE.into(),
            params: vec![int(id)],
            max_rows: 0,
        })
    };
    let steps = [
        Step::Begin(Default::default()),
        statement(a),
        statement(b),
        Step::Commit(TransactionCommit {
            ..Default::default()
        }),
    ];
    let requests = steps.map(|step| TransactionRequest {
        request: Some(step),
    });
    let mut answers = client
        .transaction(tokio_stream::iter(requests))
        .await
        .expect("transaction stream")
        .into_inner();
    let mut last = None;
    while let Some(message) = answers.message().await.expect("transaction answer") {
        last = message.response;
    }
    assert!(matches!(last, Some(Answer::Committed(_))), "{last:?}");
}

pub(super) async fn direct_transaction(conn: &mut Conn, a: i64, b: i64) {
    let mut tx = conn
        .start_transaction(Default::default())
        .await
        .expect("begin");
    tx.exec_drop(UPDATE, (a,)).await.expect("update");
    tx.exec_drop(UPDATE, (b,)).await.expect("update");
    tx.commit().await.expect("commit");
}

pub fn int(v: i64) -> sqlgate::api::Value {
    sqlgate::api::Value {
        kind: Some(Kind::Int64Value(v)),
    }
}
