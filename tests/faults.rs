//! Promises under cancellation, deadlines, exhaustion and abandonment. Each
//! test names the promise it checks; each ends by checking that nothing
//! leaked: no open transaction on the server, and no connection left once the
//! gateway has shut down.
mod common;

use std::time::{Duration, Instant};

use common::*;
use sqlgate::api::{BeginRequest, ExecuteRequest, TransactionOptions};
use tokio_stream::StreamExt;
use tonic::Code;

/// Open InnoDB transactions of connections using the test's database.
///
/// InnoDB refreshes the INNODB_TRX table only when it was not read for 100 ms:
/// poll it less often than that (see `assert_no_leaks`), or it never changes.
async fn open_transactions(gateway: &TestGateway) -> i64 {
    gateway
        .direct_i64(&format!(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX t \
             JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id \
             WHERE p.DB = '{}'",
            gateway.database
        ))
        .await
        .unwrap_or(0)
}

/// Connections to `database` (the checker's own excluded).
async fn connections(url: &str, database: &str) -> i64 {
    query_i64(
        url,
        &format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{database}' AND ID <> CONNECTION_ID()"
        ),
    )
    .await
    .unwrap_or(0)
}

/// Promise 8: after the test, no transaction is open on the server and,
/// once the gateway has shut down, none of its connections remain.
async fn assert_no_leaks(gateway: TestGateway) {
    assert!(
        eventually_every(
            Duration::from_millis(250),
            Duration::from_secs(5),
            || async { open_transactions(&gateway).await == 0 }
        )
        .await,
        "a transaction was left open on the server"
    );
    let database = gateway.database.clone();
    let url = gateway.url.clone();
    gateway.shut_down().await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            connections(&url, &database).await == 0
        })
        .await,
        "connections outlived the gateway"
    );
}

#[tokio::test]
async fn cancelling_a_call_stops_its_query_on_the_server() {
    let gateway = TestGateway::start().await;
    let mut client = gateway.client.clone();
    let call = tokio::spawn(async move { execute(&mut client, "SELECT SLEEP(30)", vec![]).await });
    assert!(
        eventually(Duration::from_secs(5), || async {
            running(&gateway, "SELECT SLEEP(30)").await == 1
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    call.abort();
    assert!(
        eventually(Duration::from_secs(2), || async {
            running(&gateway, "SELECT SLEEP(30)").await == 0
        })
        .await,
        "the cancelled query kept running"
    );
    // The pool is healthy afterwards.
    let mut client = gateway.client.clone();
    execute(&mut client, "SELECT 1", vec![]).await.unwrap();
    assert_no_leaks(gateway).await;
}

#[tokio::test]
async fn cancelling_a_call_in_a_transaction_ends_the_transaction() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB")
        .await;
    let mut client = gateway.client.clone();
    let tx = client
        .begin(BeginRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    let request = |sql: &str| ExecuteRequest {
        sql: sql.into(),
        transaction_id: tx.clone(),
        ..Default::default()
    };
    client
        .execute(request("INSERT INTO t VALUES (1)"))
        .await
        .unwrap();
    let mut background = client.clone();
    let sleeping = request("SELECT SLEEP(31)");
    let call = tokio::spawn(async move { background.execute(sleeping).await });
    assert!(
        eventually(Duration::from_secs(5), || async {
            running(&gateway, "SELECT SLEEP(31)").await == 1
        })
        .await
    );
    call.abort();
    assert!(
        eventually(Duration::from_secs(2), || async {
            running(&gateway, "SELECT SLEEP(31)").await == 0
        })
        .await
    );
    // The transaction is over: rolled back, and later calls say so. (The
    // gateway learns of the cancel asynchronously: poll briefly.)
    let deadline = Instant::now() + Duration::from_secs(2);
    let status = loop {
        match client.execute(request("SELECT 1")).await {
            Err(status) => break status,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await
            }
            Ok(_) => panic!("the transaction survived the cancelled call"),
        }
    };
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(error_info(&status).0, "TRANSACTION_ABORTED");
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(0));
    assert_no_leaks(gateway).await;
}

#[tokio::test]
async fn a_cancelled_stream_does_not_read_the_rest() {
    let gateway = TestGateway::start().await;
    let mut client = gateway.client.clone();
    let sql = "SELECT seq, REPEAT('x', 50) FROM seq_1_to_10000000";
    let mut stream = client
        .execute_stream(ExecuteRequest {
            sql: sql.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Header and a first batch arrive; then the client walks away.
    stream.next().await.unwrap().unwrap();
    stream.next().await.unwrap().unwrap();
    assert_eq!(
        running(&gateway, "SELECT seq, REPEAT").await,
        1,
        "the query is paused, not finished"
    );
    drop(stream);
    assert!(
        eventually(Duration::from_secs(2), || async {
            running(&gateway, "SELECT seq, REPEAT").await == 0
        })
        .await,
        "the abandoned query kept running (or is being drained)"
    );
    assert_no_leaks(gateway).await;
}

#[tokio::test]
async fn client_deadlines_reach_the_database() {
    let gateway = TestGateway::start().await;
    let mut client = gateway.client.clone();
    let mut request = tonic::Request::new(ExecuteRequest {
        sql: "SELECT SLEEP(32)".into(),
        ..Default::default()
    });
    // The header alone, without the client's own timer (which answers
    // CANCELLED on its side when a loaded machine delays the server's
    // answer): what the client sees is exactly what the gateway said.
    request
        .metadata_mut()
        .insert("grpc-timeout", "300m".parse().unwrap());
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(10), client.execute(request))
        .await
        .expect("the gateway answers by the deadline")
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        eventually(Duration::from_secs(2), || async {
            running(&gateway, "SELECT SLEEP(32)").await == 0
        })
        .await
    );
    assert_no_leaks(gateway).await;
}

#[tokio::test]
async fn the_statement_timeout_applies_without_a_client_deadline() {
    let gateway =
        TestGateway::start_with(|c| c.calls.statement_timeout = Duration::from_millis(300)).await;
    let mut client = gateway.client.clone();
    let status = execute(&mut client, "SELECT SLEEP(33)", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(error_info(&status).0, "DEADLINE_EXCEEDED");
    assert!(
        eventually(Duration::from_secs(2), || async {
            running(&gateway, "SELECT SLEEP(33)").await == 0
        })
        .await
    );
    // Streams: the limit bounds the time until the result starts.
    let mut stream = client
        .execute_stream(ExecuteRequest {
            sql: "SELECT SLEEP(34)".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let status = stream.next().await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(
        eventually(Duration::from_secs(2), || async {
            running(&gateway, "SELECT SLEEP(34)").await == 0
        })
        .await
    );
    assert_no_leaks(gateway).await;
}

#[tokio::test]
async fn pool_exhaustion_is_bounded_and_autocommit_keeps_connections() {
    let gateway = TestGateway::start_with(|c| {
        c.pool.max = 5;
        c.transactions.max_open = 4;
        c.pool.acquire_timeout = Duration::from_millis(500);
    })
    .await;
    let mut client = gateway.client.clone();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(
            client
                .begin(BeginRequest::default())
                .await
                .unwrap()
                .into_inner()
                .transaction_id,
        );
    }
    let started = Instant::now();
    let status = client.begin(BeginRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(error_info(&status).0, "TOO_MANY_TRANSACTIONS");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "Begin waited {:?}",
        started.elapsed()
    );
    // Autocommit calls still have a connection.
    execute(&mut client, "SELECT 1", vec![]).await.unwrap();
    for tx in held {
        client
            .rollback(sqlgate::api::RollbackRequest { transaction_id: tx })
            .await
            .unwrap();
    }
    assert_no_leaks(gateway).await;
}

#[tokio::test]
async fn waiting_for_a_pooled_connection_is_bounded() {
    let gateway = TestGateway::start_with(|c| {
        c.pool.max = 2;
        c.transactions.max_open = 1;
        c.pool.acquire_timeout = Duration::from_millis(300);
    })
    .await;
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let mut client = gateway.client.clone();
            tokio::spawn(async move { execute(&mut client, "SELECT SLEEP(3)", vec![]).await })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(5), || async {
            running(&gateway, "SELECT SLEEP(3)").await == 2
        })
        .await
    );
    let mut client = gateway.client.clone();
    let status = execute(&mut client, "SELECT 1", vec![]).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(error_info(&status).0, "POOL_EXHAUSTED");
    for call in busy {
        call.await.unwrap().unwrap();
    }
    execute(&mut client, "SELECT 1", vec![]).await.unwrap();
    assert_no_leaks(gateway).await;
}

#[tokio::test]
async fn abandoned_transactions_free_their_locks() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
        .await;
    gateway.direct_exec("INSERT INTO t VALUES (1, 0)").await;
    {
        // A client that locks a row and vanishes without a word.
        let mut doomed = gateway.new_client().await;
        let response = doomed
            .execute(ExecuteRequest {
                sql: "UPDATE t SET v = 1 WHERE id = 1".into(),
                begin: Some(TransactionOptions {
                    idle_timeout: Some(prost_types::Duration {
                        seconds: 0,
                        nanos: 300_000_000,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(!response.into_inner().transaction_id.is_empty());
    }
    // Another client can update the row once the reaper rolled it back.
    let mut client = gateway.new_client().await;
    let started = Instant::now();
    let updated = execute(&mut client, "UPDATE t SET v = 2 WHERE id = 1", vec![])
        .await
        .unwrap();
    assert_eq!(updated.rows_affected, 1);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(gateway.direct_i64("SELECT v FROM t").await, Some(2));
    assert_no_leaks(gateway).await;
}
