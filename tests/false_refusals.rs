//! What ordinary ORMs send passes (issue 19 item 6): savepoints inside
//! transactions, a read-only principal's isolation level and statement
//! time limit, decimals written `5.`, mysqldump's version comments. Each
//! was refused before.
mod common;

use common::*;
use sqlgate::api::{ExecuteBatchRequest, ExecuteRequest, Statement, Value, value::Kind};
use tonic::Code;

#[tokio::test]
async fn savepoints_work_inside_transactions() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY)")
        .await;
    let tx = begin(&gateway, None).await;
    for sql in [
        "INSERT INTO t VALUES (1)",
        "SAVEPOINT sa_savepoint_1",
        "INSERT INTO t VALUES (2)",
        "ROLLBACK TO SAVEPOINT sa_savepoint_1",
        "INSERT INTO t VALUES (3)",
        "RELEASE SAVEPOINT sa_savepoint_1",
    ] {
        execute_in(&gateway, &tx, sql, vec![]).await.unwrap();
    }
    // The gateway's own names stay its own.
    let status = execute_in(&gateway, &tx, "SAVEPOINT sqlgate_batch", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    // In a batch too, around the gateway's own savepoint.
    let statement = |sql: &str| Statement {
        sql: sql.into(),
        params: vec![],
    };
    let mut client = gateway.client.clone();
    client
        .execute_batch(ExecuteBatchRequest {
            statements: vec![
                statement("SAVEPOINT active_record_1"),
                statement("INSERT INTO t VALUES (4)"),
                statement("ROLLBACK TO SAVEPOINT active_record_1"),
                statement("INSERT INTO t VALUES (5)"),
            ],
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    commit(&gateway, &tx).await.unwrap();
    assert_eq!(gateway.direct_ids().await, vec![1, 3, 5]);
    // Outside a transaction they mean nothing: refused.
    let status = execute(&mut client, "SAVEPOINT s", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn decimals_and_version_comments_pass() {
    let gateway = TestGateway::start().await;
    let mut client = gateway.client.clone();
    let decimal = |text: &str| Value {
        kind: Some(Kind::DecimalValue(text.into())),
    };
    let response = execute(
        &mut client,
        "SELECT CAST(? AS CHAR), CAST(? AS CHAR)",
        vec![decimal("5."), decimal("-1.e2")],
    )
    .await
    .unwrap();
    assert_eq!(response.rows.len(), 1);
    for sql in [
        "/*!40101 SET NAMES utf8mb4 */",
        "/*!40014 SET FOREIGN_KEY_CHECKS=0 */;",
    ] {
        execute(&mut client, sql, vec![]).await.unwrap();
    }
    let status = execute(&mut client, "/*!40101 SET NAMES latin1 */", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn read_only_principals_set_isolation_and_statement_time() {
    const READER: &str = "reader-token-0123456789abcdef";
    let file = token_file("fr_reader", &format!("{READER},alice,read-only\n"));
    let gateway = TestGateway::start_with(move |config| {
        config.auth_tokens_file = Some(file);
    })
    .await;
    let mut client = gateway.client.clone();
    let sql = |text: &str| ExecuteRequest {
        sql: text.into(),
        ..Default::default()
    };
    for text in [
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "SET STATEMENT max_statement_time=5 FOR SELECT 1",
    ] {
        client.execute(as_caller(READER, sql(text))).await.unwrap();
    }
    let status = client
        .execute(as_caller(READER, sql("SET SESSION TRANSACTION READ WRITE")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

/// The guard's corpus (src/statement/guard/corpus.sql) sent through the
/// gateway to MariaDB: the server may answer errors (its tables do not
/// exist here), but nothing is refused by the gateway, and the server takes
/// every statement as a prepared statement (no 1295).
#[tokio::test]
async fn the_corpus_runs_through_the_gateway() {
    let gateway = TestGateway::start().await;
    let mut client = gateway.client.clone();
    let corpus = include_str!("../src/statement/guard/corpus.sql");
    let (mut sent, mut refused) = (0, Vec::new());
    for line in corpus.lines() {
        if line.trim().is_empty() || line.starts_with("--") || line.contains("CREATE DATABASE") {
            continue;
        }
        let (in_transaction, sql) = match line.strip_prefix("T ") {
            Some(sql) => (true, sql),
            None => (false, line),
        };
        let params = vec![int(1); sql.matches('?').count()];
        let outcome = if in_transaction {
            let tx = begin(&gateway, None).await;
            let outcome = execute_in(&gateway, &tx, sql, params).await;
            let _ = try_rollback(&gateway, &tx).await;
            outcome
        } else {
            execute(&mut client, sql, params).await
        };
        sent += 1;
        if let Err(status) = outcome {
            let (reason, metadata) = error_info(&status);
            let by_gateway = matches!(
                reason.as_str(),
                "INVALID_REQUEST" | "STATEMENT_NOT_ALLOWED" | "IMPLICIT_COMMIT_IN_TRANSACTION"
            );
            let unsupported = metadata.get("errno").is_some_and(|e| e == "1295");
            if by_gateway || unsupported {
                refused.push((sql, status.message().to_string()));
            }
        }
    }
    assert!(sent >= 200, "{sent}");
    // Rails' `'O\'Brien'` was the last one, refused until the gateway
    // read the session's sql_mode for statements whose reading depends on it.
    assert!(refused.is_empty(), "{refused:#?}");
}
