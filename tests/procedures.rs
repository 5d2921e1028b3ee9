//! A CALL inside a gateway transaction may end it and begin another
//! (issue 19, item 4): the server still says "in a transaction" afterwards,
//! so the gateway must not answer Commit OK or Rollback `rolled_back: true`
//! over what the procedure committed or discarded. Every variant ends the
//! transaction with TRANSACTION_ENDED_BY_STATEMENT; a procedure that leaves
//! the transaction alone keeps it open.
mod common;

use common::*;
use sqlgate::api::{ExecuteBatchRequest, Statement};
use tonic::Code;

/// Procedures that end the caller's transaction and begin another, each
/// inserting 2 in the new one; the rows the caller wrote before the CALL are
/// committed (or, for `discards`, rolled back).
const ENDING: &[(&str, &str, bool)] = &[
    (
        "commit_then_start",
        "BEGIN COMMIT; START TRANSACTION; INSERT INTO t VALUES (2); END",
        false,
    ),
    (
        "ddl_then_start",
        "BEGIN CREATE TABLE IF NOT EXISTS other (x INT); START TRANSACTION; INSERT INTO t VALUES (2); END",
        false,
    ),
    (
        "autocommit_then_start",
        "BEGIN SET autocommit = 1; START TRANSACTION; INSERT INTO t VALUES (2); END",
        false,
    ),
    (
        "commit_and_chain",
        "BEGIN COMMIT AND CHAIN; INSERT INTO t VALUES (2); END",
        false,
    ),
    (
        "rollback_and_chain",
        "BEGIN ROLLBACK AND CHAIN; INSERT INTO t VALUES (2); END",
        true,
    ),
    ("nested", "BEGIN CALL commit_and_chain(); END", false),
];

async fn with_procedures() -> TestGateway {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY)")
        .await;
    for (name, body, _) in ENDING {
        gateway
            .direct_exec(&format!("CREATE PROCEDURE {name}() {body}"))
            .await;
    }
    gateway
        .direct_exec("CREATE PROCEDURE harmless() BEGIN INSERT INTO t VALUES (3); END")
        .await;
    gateway
}

#[tokio::test]
async fn a_call_that_ends_the_transaction_is_never_misreported() {
    let gateway = with_procedures().await;
    for (name, _, discards) in ENDING {
        for end_with_commit in [false, true] {
            gateway.direct_exec("DELETE FROM t").await;
            let tx = begin(&gateway, None).await;
            execute_in(&gateway, &tx, "INSERT INTO t VALUES (1)", vec![])
                .await
                .unwrap();
            let call = execute_in(&gateway, &tx, &format!("CALL {name}()"), vec![])
                .await
                .unwrap_err();
            assert_eq!(call.code(), Code::FailedPrecondition, "{name}: {call:?}");
            assert_eq!(reason(&call), "TRANSACTION_ENDED_BY_STATEMENT", "{name}");
            // Neither Commit nor Rollback pretends to end it.
            let end = if end_with_commit {
                commit(&gateway, &tx).await.unwrap_err()
            } else {
                try_rollback(&gateway, &tx).await.unwrap_err()
            };
            assert_eq!(reason(&end), "TRANSACTION_ENDED_BY_STATEMENT", "{name}");
            // What the procedure did in its new transaction is gone with the
            // connection; what came before is as the procedure left it.
            let expected: Vec<i64> = if *discards { vec![] } else { vec![1] };
            assert_eq!(gateway.direct_ids().await, expected, "{name}");
        }
    }
}

#[tokio::test]
async fn a_call_that_keeps_the_transaction_keeps_it_open() {
    let gateway = with_procedures().await;
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "INSERT INTO t VALUES (1)", vec![])
        .await
        .unwrap();
    execute_in(&gateway, &tx, "CALL harmless()", vec![])
        .await
        .unwrap();
    execute_in(&gateway, &tx, "CALL harmless()", vec![])
        .await
        .unwrap_err(); // duplicate key: a statement error, the transaction stays
    execute_in(&gateway, &tx, "INSERT INTO t VALUES (4)", vec![])
        .await
        .unwrap();
    assert!(rollback(&gateway, &tx).await);
    assert_eq!(gateway.direct_ids().await, Vec::<i64>::new());
    // And it commits when asked to.
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "CALL harmless()", vec![])
        .await
        .unwrap();
    commit(&gateway, &tx).await.unwrap();
    assert_eq!(gateway.direct_ids().await, vec![3]);
}

#[tokio::test]
async fn a_call_that_ends_the_transaction_in_a_batch_is_reported() {
    let gateway = with_procedures().await;
    let tx = begin(&gateway, None).await;
    let statement = |sql: &str| Statement {
        sql: sql.into(),
        params: vec![],
    };
    let mut client = gateway.client.clone();
    let status = client
        .execute_batch(ExecuteBatchRequest {
            statements: vec![
                statement("INSERT INTO t VALUES (1)"),
                statement("CALL rollback_and_chain()"),
                statement("INSERT INTO t VALUES (5)"),
            ],
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let (reason, metadata) = error_info(&status);
    assert_eq!(reason, "TRANSACTION_ENDED_BY_STATEMENT", "{status:?}");
    assert_eq!(metadata["statement_index"], "1");
    let commit = commit(&gateway, &tx).await.unwrap_err();
    assert_eq!(error_info(&commit).0, "TRANSACTION_ENDED_BY_STATEMENT");
    assert_eq!(gateway.direct_ids().await, Vec::<i64>::new());
}
