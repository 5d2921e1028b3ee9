//! Transactions through the gateway: visibility of commit and rollback,
//! inline begin, unknown/expired/ended transactions, concurrent calls on one
//! transaction, ExecuteBatch atomicity, and what ABORTED means.
mod batches;
#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use common::*;
use sqlgate::api::{
    self, BeginRequest, ExecuteBatchRequest, ExecuteRequest, Statement, TransactionOptions,
    value::Kind,
};
use tonic::Code;

async fn accounts(gateway: &TestGateway) {
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB")
        .await;
    gateway
        .direct_exec("INSERT INTO t VALUES (1, 10), (2, 20)")
        .await;
}

#[tokio::test]
async fn commit_is_visible_and_rollback_is_not() {
    let gateway = TestGateway::start().await;
    accounts(&gateway).await;

    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "INSERT INTO t VALUES (3, 30)", vec![])
        .await
        .unwrap();
    // Not visible from another connection before the commit.
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(2));
    // Visible inside the transaction.
    let inside = execute_in(&gateway, &tx, "SELECT COUNT(*) FROM t", vec![])
        .await
        .unwrap();
    assert_eq!(inside.rows[0].values[0].kind, Some(Kind::Int64Value(3)));
    commit(&gateway, &tx).await.unwrap();
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(3));

    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "DELETE FROM t", vec![])
        .await
        .unwrap();
    assert!(rollback(&gateway, &tx).await);
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(3));
    // Rollback is idempotent, and the ended transaction is gone.
    assert!(!rollback(&gateway, &tx).await);
    let status = execute_in(&gateway, &tx, "SELECT 1", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(error_info(&status).0, "TRANSACTION_NOT_FOUND");
}

#[tokio::test]
async fn begin_reports_timers_and_unguessable_ids() {
    let gateway = TestGateway::start_with(|c| {
        c.transactions.idle_timeout = Duration::from_secs(30);
        c.transactions.max_lifetime = Duration::from_secs(300);
    })
    .await;
    let mut client = gateway.client.clone();
    let asked = TransactionOptions {
        idle_timeout: Some(prost_types::Duration {
            seconds: 5,
            nanos: 0,
        }),
        ..Default::default()
    };
    let response = client
        .begin(BeginRequest {
            options: Some(asked),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.idle_timeout.unwrap().seconds, 5);
    assert_eq!(response.max_lifetime.unwrap().seconds, 300);
    assert_id_of(&response.transaction_id, &gateway.address.to_string());
    // A larger idle timeout than the server's is capped to it.
    let too_long = TransactionOptions {
        idle_timeout: Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        }),
        ..Default::default()
    };
    let capped = client
        .begin(BeginRequest {
            options: Some(too_long),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(capped.idle_timeout.unwrap().seconds, 30);
    assert_ne!(capped.transaction_id, response.transaction_id);
}

#[tokio::test]
async fn inline_begin_returns_the_transaction_id() {
    let gateway = TestGateway::start().await;
    accounts(&gateway).await;
    let mut client = gateway.client.clone();
    let response = client
        .execute(ExecuteRequest {
            sql: "UPDATE t SET v = v + 1 WHERE id = 1".into(),
            begin: Some(TransactionOptions::default()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.rows_affected, 1);
    let tx = response.transaction_id;
    assert_id_of(&tx, &gateway.address.to_string());
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 1").await,
        Some(10)
    );
    commit(&gateway, &tx).await.unwrap();
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 1").await,
        Some(11)
    );

    // transaction_id and begin together are refused.
    let status = client
        .execute(ExecuteRequest {
            sql: "SELECT 1".into(),
            transaction_id: tx,
            begin: Some(TransactionOptions::default()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn unknown_and_ended_transactions() {
    let gateway = TestGateway::start().await;
    let unknown = "00000000000000000000000000000000";
    let status = execute_in(&gateway, unknown, "SELECT 1", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(error_info(&status).0, "TRANSACTION_NOT_FOUND");
    assert_eq!(
        commit(&gateway, unknown).await.unwrap_err().code(),
        Code::NotFound
    );
    assert!(!rollback(&gateway, unknown).await);

    let tx = begin(&gateway, None).await;
    commit(&gateway, &tx).await.unwrap();
    // A repeated Commit answers the truth: it committed (a client whose first
    // Commit timed out learns the outcome instead of rerunning the work).
    commit(&gateway, &tx).await.unwrap();
    let after = execute_in(&gateway, &tx, "SELECT 1", vec![])
        .await
        .unwrap_err();
    assert_eq!(after.code(), Code::NotFound);
    assert!(after.message().contains("committed"), "{}", after.message());
    assert!(!rollback(&gateway, &tx).await);
}

#[tokio::test]
async fn idle_transactions_expire_and_release_their_locks() {
    let gateway = TestGateway::start().await;
    accounts(&gateway).await;
    let options = TransactionOptions {
        idle_timeout: Some(prost_types::Duration {
            seconds: 0,
            nanos: 200_000_000,
        }),
        ..Default::default()
    };
    let tx = begin(&gateway, Some(options)).await;
    execute_in(&gateway, &tx, "UPDATE t SET v = 99 WHERE id = 1", vec![])
        .await
        .unwrap();
    // The row lock is released once the reaper rolls the transaction back: a
    // direct update waiting for it (up to 10 s) goes through.
    let mut direct = gateway.direct().await;
    use mysql_async::prelude::Queryable;
    direct
        .query_drop("SET innodb_lock_wait_timeout = 10")
        .await
        .unwrap();
    direct
        .query_drop("UPDATE t SET v = 5 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 1").await,
        Some(5)
    );
    let status = execute_in(&gateway, &tx, "SELECT 1", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(error_info(&status).0, "TRANSACTION_EXPIRED");
    assert!(status.message().contains("idle"), "{}", status.message());
    assert!(!rollback(&gateway, &tx).await);
}

#[tokio::test]
async fn busy_transactions_still_end_at_max_lifetime() {
    let gateway =
        TestGateway::start_with(|c| c.transactions.max_lifetime = Duration::from_millis(500)).await;
    let tx = begin(&gateway, None).await;
    // Keep it busy; within a few seconds it must be gone anyway.
    let mut outcome = Ok(());
    for _ in 0..200 {
        match execute_in(&gateway, &tx, "SELECT SLEEP(0.05)", vec![]).await {
            Ok(_) => continue,
            Err(status) => {
                outcome = Err(status);
                break;
            }
        }
    }
    let status = outcome.expect_err("the transaction outlived its max lifetime");
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(error_info(&status).0, "TRANSACTION_EXPIRED");
    assert!(status.message().contains("maximum"), "{}", status.message());
}

#[tokio::test]
async fn concurrent_calls_on_one_transaction_take_turns() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE log (n INT PRIMARY KEY, conn BIGINT NOT NULL)")
        .await;
    let tx = begin(&gateway, None).await;
    let calls = (0..20).map(|n| {
        let mut client = gateway.client.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            client
                .execute(ExecuteRequest {
                    sql: "INSERT INTO log VALUES (?, CONNECTION_ID())".into(),
                    params: vec![int(n)],
                    transaction_id: tx,
                    ..Default::default()
                })
                .await
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap().expect("every concurrent call succeeds");
    }
    commit(&gateway, &tx).await.unwrap();
    assert_eq!(
        gateway.direct_i64("SELECT COUNT(*) FROM log").await,
        Some(20)
    );
    // All of them ran on the transaction's one connection.
    assert_eq!(
        gateway
            .direct_i64("SELECT COUNT(DISTINCT conn) FROM log")
            .await,
        Some(1)
    );
}

#[tokio::test]
async fn execute_can_commit_its_transaction() {
    use tokio_stream::StreamExt;
    let gateway = TestGateway::start().await;
    accounts(&gateway).await;
    let mut client = gateway.client.clone();
    let committing = |sql: &str, transaction_id: &str, begin: bool| ExecuteRequest {
        sql: sql.into(),
        transaction_id: transaction_id.into(),
        begin: begin.then(TransactionOptions::default),
        commit: true,
        ..Default::default()
    };
    // A one-call transaction: begin, statement, commit.
    let response = client
        .execute(committing("UPDATE t SET v = 7 WHERE id = 1", "", true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.rows_affected, 1);
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 1").await,
        Some(7)
    );
    let tx = response.transaction_id;
    assert!(!tx.is_empty());
    let after = execute_in(&gateway, &tx, "SELECT 1", vec![])
        .await
        .unwrap_err();
    assert_eq!(after.code(), Code::NotFound);
    commit(&gateway, &tx).await.expect("it committed");
    // The last statement of an open transaction commits it.
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "UPDATE t SET v = 8 WHERE id = 2", vec![])
        .await
        .unwrap();
    client
        .execute(committing(
            "UPDATE t SET v = v + 1 WHERE id = 2",
            &tx,
            false,
        ))
        .await
        .unwrap();
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 2").await,
        Some(9)
    );
    // A failing statement commits nothing.
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "UPDATE t SET v = 100 WHERE id = 2", vec![])
        .await
        .unwrap();
    let duplicate = client
        .execute(committing("INSERT INTO t VALUES (1, 0)", &tx, false))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 2").await,
        Some(9)
    );
    assert!(rollback(&gateway, &tx).await, "the transaction stayed open");
    let begun = client
        .execute(committing("INSERT INTO t VALUES (1, 0)", "", true))
        .await
        .unwrap_err();
    assert_eq!(begun.code(), Code::AlreadyExists);
    // Without a transaction, or on a stream, it is refused.
    let alone = client
        .execute(committing("UPDATE t SET v = 0", "", false))
        .await
        .unwrap_err();
    assert_eq!(alone.code(), Code::InvalidArgument);
    let mut stream = client
        .execute_stream(committing("SELECT * FROM t", "", true))
        .await
        .unwrap()
        .into_inner();
    let refused = stream.next().await.unwrap().unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(gateway.direct_i64("SELECT SUM(v) FROM t").await, Some(16));
}

/// Holds the row lock of `t.id = 1` on a direct connection until dropped
/// (the connection's transaction is rolled back when it closes).
async fn hold_row_lock(gateway: &TestGateway) -> mysql_async::Conn {
    use mysql_async::prelude::Queryable;
    let mut holder = gateway.direct().await;
    holder.query_drop("START TRANSACTION").await.unwrap();
    holder
        .query_drop("UPDATE t SET v = v WHERE id = 1")
        .await
        .unwrap();
    holder
}

#[tokio::test]
async fn a_lock_wait_timeout_leaves_the_transaction_open_as_in_mysql() {
    let gateway = TestGateway::start().await;
    accounts(&gateway).await;
    let holder = hold_row_lock(&gateway).await;
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "INSERT INTO t VALUES (3, 30)", vec![])
        .await
        .unwrap();
    // NOWAIT answers 1205 at once; a plain lock wait after its timeout.
    for sql in [
        "SELECT v FROM t WHERE id = 1 FOR UPDATE NOWAIT",
        "SET STATEMENT innodb_lock_wait_timeout = 1 FOR UPDATE t SET v = 0 WHERE id = 1",
    ] {
        let status = execute_in(&gateway, &tx, sql, vec![]).await.unwrap_err();
        let (reason, metadata) = error_info(&status);
        assert_eq!(status.code(), Code::Aborted, "{sql}: {status:?}");
        assert_eq!(reason, "MYSQL_ERROR");
        assert_eq!(metadata["errno"], "1205");
        assert_eq!(metadata["transaction_open"], "true", "{sql}");
        assert!(
            status.message().contains("still open"),
            "{}",
            status.message()
        );
    }
    // Any other statement error says so too.
    let status = execute_in(&gateway, &tx, "INSERT INTO t VALUES (2, 0)", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(error_info(&status).1["transaction_open"], "true");
    // A batch that hits it is undone alone (its savepoint); the transaction
    // goes on.
    let mut client = gateway.client.clone();
    let status = client
        .execute_batch(ExecuteBatchRequest {
            statements: vec![
                Statement {
                    sql: "INSERT INTO t VALUES (4, 40)".into(),
                    params: vec![],
                },
                Statement {
                    sql: "SELECT v FROM t WHERE id = 1 FOR UPDATE NOWAIT".into(),
                    params: vec![],
                },
            ],
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let (_, metadata) = error_info(&status);
    assert_eq!(metadata["errno"], "1205");
    assert_eq!(metadata["statement_index"], "1");
    assert_eq!(metadata["transaction_open"], "true");
    drop(holder);
    // The INSERT before the errors is committed with the transaction.
    commit(&gateway, &tx).await.unwrap();
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 3").await,
        Some(30)
    );
    assert_eq!(
        gateway
            .direct_i64("SELECT COUNT(*) FROM t WHERE id = 4")
            .await,
        Some(0)
    );
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(3));
}

#[tokio::test]
async fn a_lock_wait_timeout_that_rolled_back_ends_the_transaction() {
    // With innodb_rollback_on_timeout the server rolls the whole transaction
    // back on 1205: the gateway asks the server rather than trusting the code.
    let server = sqlgate::embedded::EmbeddedDatabase::start(&sqlgate::embedded::EmbeddedOptions {
        data_dir: std::env::temp_dir().join(format!("sqlgate-rbtimeout-{}", std::process::id())),
        remove_on_stop: true,
        extra_args: vec!["--innodb-rollback-on-timeout=ON".into()],
        ..Default::default()
    })
    .expect("a private MariaDB starts");
    let url = server.url("sqlgate");
    let gateway = TestGateway::start_on("sqlgate".into(), url, |_| {}).await;
    accounts(&gateway).await;
    let holder = hold_row_lock(&gateway).await;
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "INSERT INTO t VALUES (3, 30)", vec![])
        .await
        .unwrap();
    let status = execute_in(
        &gateway,
        &tx,
        "SELECT v FROM t WHERE id = 1 FOR UPDATE NOWAIT",
        vec![],
    )
    .await
    .unwrap_err();
    let (_, metadata) = error_info(&status);
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(metadata["errno"], "1205");
    assert_eq!(metadata["transaction_open"], "false");
    assert!(
        status
            .message()
            .contains("rolled the whole transaction back"),
        "{}",
        status.message()
    );
    let later = execute_in(&gateway, &tx, "SELECT 1", vec![])
        .await
        .unwrap_err();
    assert_eq!(error_info(&later).0, "TRANSACTION_ABORTED");
    assert_eq!(
        commit(&gateway, &tx).await.unwrap_err().code(),
        Code::Aborted
    );
    drop(holder);
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(2));
}
