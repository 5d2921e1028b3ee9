//! ExecuteBatch with `combine_inserts`: runs of the same plain INSERT sent as
//! multi-row INSERTs write exactly the rows one statement at a time would,
//! and fail (all or nothing, naming the statement) exactly as they would.
mod common;

use common::*;
use sqlgate::api::{self, ExecuteBatchRequest, Statement};
use tonic::Code;

const INSERT: &str = "INSERT INTO t (name, qty) VALUES (?, ?)";

fn insert(name: &str, qty: i64) -> Statement {
    Statement {
        sql: INSERT.into(),
        params: vec![text(name), int(qty)],
    }
}

async fn table(gateway: &TestGateway) {
    gateway
        .direct_exec(
            "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(3000) NOT NULL UNIQUE, qty INT NOT NULL) ENGINE=InnoDB",
        )
        .await;
}

async fn batch(
    gateway: &TestGateway,
    statements: Vec<Statement>,
    combine_inserts: bool,
) -> Result<api::ExecuteBatchResponse, tonic::Status> {
    batch_request(gateway, "", statements, combine_inserts).await
}

/// A batch with `combine_inserts` inside `transaction_id`.
async fn batch_in(
    gateway: &TestGateway,
    transaction_id: &str,
    statements: Vec<Statement>,
) -> Result<api::ExecuteBatchResponse, tonic::Status> {
    batch_request(gateway, transaction_id, statements, true).await
}

async fn batch_request(
    gateway: &TestGateway,
    transaction_id: &str,
    statements: Vec<Statement>,
    combine_inserts: bool,
) -> Result<api::ExecuteBatchResponse, tonic::Status> {
    let mut client = gateway.client.clone();
    client
        .execute_batch(ExecuteBatchRequest {
            statements,
            combine_inserts,
            transaction_id: transaction_id.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// 1,000 rows of ~2 KiB: more than the 1 MiB of one multi-row INSERT, so
/// they go as two.
fn rows(prefix: &str) -> Vec<Statement> {
    (0..1000)
        .map(|i| insert(&format!("{prefix}{i:04}{}", "é".repeat(1000)), i))
        .collect()
}

#[tokio::test]
async fn combined_rows_are_the_rows_and_results_say_so() {
    let gateway = TestGateway::start().await;
    table(&gateway).await;
    let response = batch(&gateway, rows("a"), true).await.unwrap();
    assert_eq!(response.results.len(), 1000);
    assert!(response.results.iter().all(|r| r.rows_affected == 1));
    assert_eq!(response.results[0].last_insert_id, 1);
    // A second multi-row INSERT starts where the first ended: its first
    // statement has its id, the others 0.
    let firsts: Vec<(usize, u64)> = response
        .results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.last_insert_id != 0)
        .map(|(i, r)| (i, r.last_insert_id))
        .collect();
    assert_eq!(firsts.len(), 2, "{firsts:?}");
    assert_eq!(firsts[1].1, firsts[1].0 as u64 + 1, "{firsts:?}");
    // Every value exact, in order, with consecutive ids.
    assert_eq!(
        gateway.direct_i64("SELECT COUNT(*) FROM t").await,
        Some(1000)
    );
    assert_eq!(
        gateway
            .direct_i64(
                "SELECT COUNT(*) FROM t WHERE id = qty + 1 AND name = CONCAT('a', LPAD(qty, 4, '0'), REPEAT('é', 1000))"
            )
            .await,
        Some(1000)
    );
}

#[tokio::test]
async fn a_failing_row_is_named_and_nothing_is_written() {
    let gateway = TestGateway::start().await;
    table(&gateway).await;
    let mut statements = rows("b");
    // Row 700 (in the second multi-row INSERT) repeats row 3's name.
    statements[700] = statements[3].clone();
    for combine in [false, true] {
        let failed = batch(&gateway, statements.clone(), combine)
            .await
            .unwrap_err();
        assert_eq!(failed.code(), Code::AlreadyExists, "combine {combine}");
        let (_, metadata) = error_info(&failed);
        assert_eq!(metadata["statement_index"], "700", "combine {combine}");
        assert_eq!(metadata["errno"], "1062");
        assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(0));
    }
}

#[tokio::test]
async fn a_row_that_would_only_warn_when_combined_fails_as_alone() {
    // Without strict mode, a NULL into a NOT NULL column is an error for a
    // one-row INSERT but only a warning in a multi-row one: the gateway
    // runs the rows one at a time again and reports the error.
    let gateway = TestGateway::start().await;
    table(&gateway).await;
    let mut statements = vec![Statement {
        sql: "SET SESSION sql_mode = ''".into(),
        params: vec![],
    }];
    statements.extend((0..5).map(|i| insert(&format!("c{i}"), i)));
    statements[4].params[1] = null();
    for combine in [false, true] {
        let failed = batch(&gateway, statements.clone(), combine)
            .await
            .unwrap_err();
        let (_, metadata) = error_info(&failed);
        assert_eq!(metadata["errno"], "1048", "combine {combine}");
        assert_eq!(metadata["statement_index"], "4", "combine {combine}");
        assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(0));
    }
}

#[tokio::test]
async fn statements_that_are_not_plain_inserts_run_one_at_a_time() {
    let gateway = TestGateway::start().await;
    table(&gateway).await;
    let upsert = "INSERT INTO t (name, qty) VALUES (?, ?) ON DUPLICATE KEY UPDATE qty = qty + 1";
    let statements: Vec<Statement> = (0..3)
        .map(|_| Statement {
            sql: upsert.into(),
            params: vec![text("same"), int(1)],
        })
        .collect();
    let response = batch(&gateway, statements, true).await.unwrap();
    let affected: Vec<u64> = response.results.iter().map(|r| r.rows_affected).collect();
    assert_eq!(affected, [1, 2, 2]);
    assert_eq!(
        gateway
            .direct_i64("SELECT qty FROM t WHERE name = 'same'")
            .await,
        Some(3)
    );
}

#[tokio::test]
async fn inside_a_transaction_a_batch_undoes_only_itself_and_warns_as_alone() {
    // A batch that starts with a run of rows inside an open transaction:
    // its first multi-row INSERT is undone to the batch's own savepoint.
    let gateway = TestGateway::start().await;
    table(&gateway).await;
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "SET SESSION sql_mode = ''", vec![])
        .await
        .unwrap();
    execute_in(&gateway, &tx, INSERT, vec![text("before"), int(0)])
        .await
        .unwrap();
    // Fails as alone (NULL into NOT NULL: an error one row at a time, only a
    // warning combined): nothing of it stays, the transaction goes on.
    let mut failing: Vec<Statement> = (0..5).map(|i| insert(&format!("c{i}"), i)).collect();
    failing[3].params[1] = null();
    let failed = batch_in(&gateway, &tx, failing).await.unwrap_err();
    let (_, metadata) = error_info(&failed);
    assert_eq!(metadata["errno"], "1048");
    assert_eq!(metadata["statement_index"], "3");
    // Warns as alone: a name one character too long is cut, with a warning
    // for that statement only.
    let mut warning: Vec<Statement> = (0..5).map(|i| insert(&format!("d{i}"), i)).collect();
    warning[2].params[0] = text(&"x".repeat(3001));
    let warned = batch_in(&gateway, &tx, warning).await.unwrap();
    let warnings: Vec<u32> = warned.results.iter().map(|r| r.warning_count).collect();
    assert_eq!(warnings, [0, 0, 1, 0, 0]);
    assert!(warned.results.iter().all(|r| r.rows_affected == 1));
    // Exact when combined.
    let rows: Vec<Statement> = (0..5).map(|i| insert(&format!("e{i}"), i)).collect();
    let combined = batch_in(&gateway, &tx, rows).await.unwrap();
    assert!(
        combined
            .results
            .iter()
            .all(|r| r.rows_affected == 1 && r.warning_count == 0)
    );
    commit(&gateway, &tx).await.unwrap();
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(11));
    assert_eq!(
        gateway
            .direct_i64("SELECT COUNT(*) FROM t WHERE name LIKE 'c%'")
            .await,
        Some(0)
    );
    assert_eq!(
        gateway
            .direct_i64("SELECT COUNT(*) FROM t WHERE name = REPEAT('x', 3000)")
            .await,
        Some(1)
    );
}
