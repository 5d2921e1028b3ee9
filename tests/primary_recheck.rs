//! Every call on the primary that fails as a gone or demoted primary would
//! (a lost connection, error 1290) makes the gateway check the primary at
//! once: ExecuteBatch and COMMIT (unary `Commit`, a Transaction stream's
//! `commit`) as well as Execute (tests/primary_failover.rs). The check
//! interval is far longer than the test, so only those re-checks can count.
mod common;

use std::time::Duration;

use common::*;
use sqlgate::api::{
    CommitRequest, ExecuteBatchRequest, Statement, StatementOutcome, TransactionCommit,
    TransactionRequest, TransactionStatement, database_client::DatabaseClient,
    statement_outcome::Outcome, transaction_request::Request as Step,
    transaction_response::Response as Answer,
};
use sqlgate::embedded::EmbeddedDatabase;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// The connection id of a result holding `CONNECTION_ID()`.
fn connection_id(rows: &[sqlgate::api::Row]) -> i64 {
    text_of(&rows[0].values[0])
        .expect("a connection id")
        .parse()
        .unwrap()
}

/// Kills connection `id` on `server`, as an outage or a failover would.
async fn kill_connection(server: &EmbeddedDatabase, id: i64) {
    on(server, &format!("KILL CONNECTION {id}")).await;
}

/// Waits until the gateway has checked the primary more than `before` times.
async fn checked_since(metrics_port: u16, before: f64, what: &str) {
    assert!(
        eventually(Duration::from_secs(5), || async {
            primary_checks(metrics_port) > before
        })
        .await,
        "{what} made the gateway check the primary"
    );
}

/// A Transaction stream that runs `SELECT CONNECTION_ID()`, lets `between`
/// kill that connection, then commits; the status the stream ends with.
async fn stream_commit_after<F, Fut>(client: &mut DatabaseClient<Channel>, between: F)
where
    F: FnOnce(i64) -> Fut,
    Fut: Future<Output = ()>,
{
    let (requests, receiver) = mpsc::channel(4);
    let step = |step| TransactionRequest {
        request: Some(step),
    };
    requests
        .send(step(Step::Begin(Default::default())))
        .await
        .unwrap();
    requests
        .send(step(Step::Statement(TransactionStatement {
            sql: "SELECT CONNECTION_ID()".into(),
            ..Default::default()
        })))
        .await
        .unwrap();
    let mut responses = client
        .transaction(ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    let id = loop {
        match responses.message().await.unwrap().unwrap().response {
            Some(Answer::Statement(StatementOutcome {
                outcome: Some(Outcome::Result(result)),
            })) => break connection_id(&result.rows),
            Some(Answer::Begun(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    between(id).await;
    requests
        .send(step(Step::Commit(TransactionCommit::default())))
        .await
        .unwrap();
    let ended = responses.message().await;
    assert!(
        ended.is_err(),
        "the COMMIT on a killed connection fails: {ended:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_or_a_commit_that_fails_on_the_primary_makes_the_gateway_check_it_at_once() {
    let pair = failover_pair("recheck-commit", "").await;
    let (gateway, metrics_port) = gateway_checking_only_when_asked(&pair);
    let mut client = gateway.client().await;
    execute(&mut client, "INSERT INTO t VALUES (1)", vec![])
        .await
        .expect("a write goes to the primary");

    // A unary Commit whose connection was killed (lost during COMMIT).
    let tx = begin_on(&mut client).await;
    let id = client
        .execute(statement_in("SELECT CONNECTION_ID()", &tx))
        .await
        .unwrap()
        .into_inner();
    kill_connection(&pair.primary, connection_id(&id.rows)).await;
    let before = primary_checks(metrics_port);
    let status = client
        .commit(CommitRequest {
            transaction_id: tx,
            ..Default::default()
        })
        .await
        .expect_err("the COMMIT's connection is gone");
    println!("Commit on a killed connection: {status:?}");
    checked_since(metrics_port, before, "a Commit that lost its connection").await;

    // The same through a Transaction stream's commit.
    let before = primary_checks(metrics_port);
    stream_commit_after(&mut client, |id| kill_connection(&pair.primary, id)).await;
    checked_since(
        metrics_port,
        before,
        "a stream's commit that lost its connection",
    )
    .await;

    // An ExecuteBatch refused by the demoted primary (1290): the check
    // finds the new primary, and the next batch runs there (only batches
    // run from here on: nothing else asks for a check).
    promote_replica(&pair).await;
    let batch = || ExecuteBatchRequest {
        statements: vec![Statement {
            sql: "INSERT INTO t VALUES (2)".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let before = primary_checks(metrics_port);
    let status = client
        .execute_batch(batch())
        .await
        .expect_err("the demoted primary refuses the write");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    checked_since(metrics_port, before, "a batch refused with 1290").await;
    assert!(
        eventually(Duration::from_secs(5), || {
            let mut client = client.clone();
            async move { client.execute_batch(batch()).await.is_ok() }
        })
        .await,
        "batches run on the new primary"
    );
    assert_eq!(
        count_on(&pair.replica, "SELECT COUNT(*) FROM t WHERE id = 2").await,
        1
    );
    gateway.stop().await;
}
