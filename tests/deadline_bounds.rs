//! Time bounds where nothing else bounds a call, and what the call answers
//! then: the steps after a statement (without a client deadline), and a
//! text-path read whose KILL gets no answer. A proxy in front of the
//! database plays a server that stops answering one command (see
//! `common::HoldingProxy`).
mod common;

use std::time::Duration;

use common::*;
use sqlgate::api::{ExecuteBatchRequest, ExecuteRequest, Statement};
use tonic::Code;

/// A COM_PING packet: length 1, sequence id 0, command 0x0e. The gateway
/// pings a transaction's connection after a failed statement (is the
/// transaction still open?).
const PING: &[u8] = b"\x01\x00\x00\x00\x0e";

/// The ROLLBACK of a transaction a failed call began.
const ROLLBACK: &[u8] = b"\x09\x00\x00\x00\x03ROLLBACK";

/// The release of the savepoint set before a CALL in a transaction.
const RELEASE_CALL_MARKER: &[u8] = b"RELEASE SAVEPOINT sqlgate_call_";

/// The read of an autocommit write's replication position.
const WRITE_POSITION: &[u8] = b"@@last_gtid";

/// Far longer than the gateway's bound (--acquire-timeout, 300 ms here), far
/// shorter than "for ever".
const PATIENCE: Duration = Duration::from_secs(15);

/// `call` must answer within [`PATIENCE`] (a hang fails the test).
async fn answers<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {PATIENCE:?}: the call hangs"))
}

/// Runs `call` while the proxy holds back `pattern`: its error status
/// (it must answer within [`PATIENCE`], and fail).
async fn failed_while_held<T: std::fmt::Debug>(
    proxy: &HoldingProxy,
    pattern: &'static [u8],
    what: &str,
    call: impl Future<Output = Result<T, tonic::Status>>,
) -> tonic::Status {
    proxy.hold(pattern);
    let status = answers(what, call).await.expect_err(what);
    proxy.release();
    status
}

fn short_acquire(config: &mut sqlgate::config::Config) {
    config.pool.acquire_timeout = Duration::from_millis(300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_after_a_statement_in_a_transaction_are_bounded_without_a_client_deadline() {
    let (gateway, proxy) = gateway_behind_proxy("after-tx", short_acquire).await;
    let mut client = gateway.client.clone();
    let mut direct = gateway.direct().await;
    mysql_async::prelude::Queryable::query_drop(
        &mut direct,
        "CREATE PROCEDURE p() INSERT INTO t VALUES (30)",
    )
    .await
    .unwrap();

    // A failed statement in a transaction: the gateway pings to learn
    // whether the transaction is still open. No answer: the transaction
    // ends, nothing of it committed (the statement cannot have ended it).
    let tx = begin_on(&mut client).await;
    client
        .execute(statement_in("INSERT INTO t VALUES (1)", &tx))
        .await
        .unwrap();
    let status = failed_while_held(
        &proxy,
        PING,
        "a failed statement whose ping gets no answer",
        client.execute(statement_in("INSERT INTO t VALUES (1)", &tx)),
    )
    .await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let after = client
        .execute(statement_in("SELECT 1", &tx))
        .await
        .expect_err("the transaction is over");
    assert_eq!(after.code(), Code::Aborted, "{after:?}");

    // A CALL in a transaction: the release of the savepoint set before it
    // tells whether the procedure ended the transaction. No answer: the
    // procedure may have committed, so the outcome is unknown.
    let tx = begin_on(&mut client).await;
    let status = failed_while_held(
        &proxy,
        RELEASE_CALL_MARKER,
        "a CALL whose savepoint release gets no answer",
        client.execute(statement_in("CALL p()", &tx)),
    )
    .await;
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    assert_eq!(reason(&status), "COMMIT_OUTCOME_UNKNOWN", "{status:?}");

    // A failed call that began its transaction rolls it back. No answer to
    // the ROLLBACK: the call still answers the statement's own error.
    client
        .execute(ExecuteRequest {
            sql: "INSERT INTO t VALUES (5)".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let status = failed_while_held(
        &proxy,
        ROLLBACK,
        "a failed call whose ROLLBACK gets no answer",
        client.execute(ExecuteRequest {
            sql: "INSERT INTO t VALUES (5)".into(),
            begin: Some(Default::default()),
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(reason(&status), "MYSQL_ERROR", "{status:?}");

    // Nothing but the autocommit row committed; the gateway still serves.
    assert!(
        eventually(Duration::from_secs(5), || async {
            gateway.direct_ids().await == vec![5]
        })
        .await,
        "{:?}",
        gateway.direct_ids().await
    );
    client
        .execute(statement_in("INSERT INTO t VALUES (6)", ""))
        .await
        .expect("the gateway still serves");
    direct.disconnect().await.unwrap();
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autocommit_write_whose_position_is_not_answered_answers_its_result() {
    // A replica (unreachable: it never comes into rotation) turns commit
    // tokens on: writes then read their position.
    let (gateway, proxy) = gateway_behind_proxy("after-position", |config| {
        short_acquire(config);
        config.database.replica_urls = vec!["mysql://root@127.0.0.1:1/none".into()];
    })
    .await;
    let mut client = gateway.client.clone();
    proxy.hold(WRITE_POSITION);
    let answer = answers(
        "a write whose position read gets no answer",
        client.execute(statement_in("INSERT INTO t VALUES (1)", "")),
    )
    .await
    .expect("the write committed: its result is the answer")
    .into_inner();
    proxy.release();
    assert_eq!(answer.rows_affected, 1);
    assert_eq!(answer.commit_token, "", "no position was read");
    assert_eq!(gateway.direct_ids().await, vec![1]);
    gateway.shut_down().await;
}

/// A slow read (a three-way join of 400 rows) that may take the text path
/// (a READ ONLY run of its own) after its first, binary, run.
fn slow_read(above: i64) -> ExecuteRequest {
    ExecuteRequest {
        sql: "SELECT COUNT(*) AS c FROM n a JOIN n b JOIN n c WHERE a.id > ? AND a.id + b.id + c.id > 3".into(),
        params: vec![int(above)],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_path_read_stopped_by_its_limit_is_deadline_exceeded_even_without_an_answer() {
    let (gateway, proxy) = gateway_behind_proxy("text-read-kill", |config| {
        short_acquire(config);
        config.calls.statement_timeout = Duration::from_millis(300);
    })
    .await;
    gateway
        .direct_exec("CREATE TABLE n (id INT PRIMARY KEY) SELECT seq AS id FROM seq_1_to_400")
        .await;
    let mut client = gateway.client.clone();
    // The first run is binary (quick: nothing is above 10000): the text
    // path learns its columns.
    client.execute(slow_read(10_000)).await.unwrap();
    // The KILL of the limit never reaches the server: a statement that may
    // have written would be UNKNOWN; a READ ONLY run cannot have.
    proxy.hold(KILL);
    let status = answers(
        "a text-path read past its limit",
        client.execute(slow_read(0)),
    )
    .await
    .expect_err("the limit passes");
    proxy.release();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "DEADLINE_EXCEEDED");

    // An ExecuteBatch in an open transaction is bounded by the limit too
    // (it had none): stopped, the transaction rolled back.
    let tx = begin_on(&mut client).await;
    let batch = ExecuteBatchRequest {
        transaction_id: tx.clone(),
        statements: vec![Statement {
            sql: "SELECT SLEEP(5)".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let status = answers("a batch in a transaction", client.execute_batch(batch))
        .await
        .expect_err("the limit passes");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let after = client
        .execute(statement_in("SELECT 1", &tx))
        .await
        .expect_err("the transaction is over");
    assert_eq!(after.code(), Code::Aborted, "{after:?}");
    gateway.shut_down().await;
}

/// The id of the connection running a statement that starts with `prefix`,
/// once one does.
async fn connection_running(gateway: &TestGateway, prefix: &str) -> i64 {
    let sql = format!("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '{prefix}%'");
    answers("a connection running the statement", async {
        loop {
            if let Some(id) = gateway.direct_i64(&sql).await {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_path_read_whose_connection_is_lost_applied_nothing() {
    let (gateway, _proxy) = gateway_behind_proxy("text-read-lost", |_| {}).await;
    gateway
        .direct_exec("CREATE TABLE n (id INT PRIMARY KEY) SELECT seq AS id FROM seq_1_to_400")
        .await;
    let mut client = gateway.client.clone();
    // The first run is binary (quick): the text path learns its columns.
    client.execute(slow_read(10_000)).await.unwrap();
    let call = tokio::spawn({
        let mut client = client.clone();
        async move { client.execute(slow_read(0)).await }
    });
    // Its READ ONLY text run is on the server: its connection ends there.
    let id = connection_running(&gateway, "SET STATEMENT tx_read_only=1 FOR SELECT COUNT(*)").await;
    gateway.direct_exec(&format!("KILL CONNECTION {id}")).await;
    let status = answers("a read whose connection was lost", call)
        .await
        .unwrap()
        .expect_err("its connection is gone");
    // A statement that may have written would be UNKNOWN; this one ran READ
    // ONLY, so nothing was applied.
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_ne!(reason(&status), "COMMIT_OUTCOME_UNKNOWN", "{status:?}");
    // And the gateway goes on.
    client.execute(slow_read(10_000)).await.unwrap();
    gateway.shut_down().await;
}
