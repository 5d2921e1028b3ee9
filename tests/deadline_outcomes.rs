//! What a call that runs into its time limit answers when the statement (or
//! COMMIT) may have committed anyway: never "stopped" (DEADLINE_EXCEEDED)
//! unless the database said so. The races are made deterministic by a proxy
//! in front of the database that holds back the gateway's KILL (or COMMIT)
//! until the test lets it go.
mod common;

use std::time::Duration;

use common::*;
use sqlgate::api::{
    CommitRequest, ExecuteBatchRequest, ExecuteRequest, Statement, TransactionCommit,
    TransactionRequest, TransactionStatement, execute_stream_response::Part,
    transaction_request::Request as Step, transaction_response::Response as Answer,
};
use tonic::Code;

/// An autocommit INSERT of `id` that takes `seconds` before it writes.
fn slow_insert(id: i64, seconds: f64) -> ExecuteRequest {
    ExecuteRequest {
        sql: format!("INSERT INTO t SELECT {id} FROM DUAL WHERE SLEEP({seconds}) = 0"),
        ..Default::default()
    }
}

async fn has_row(gateway: &TestGateway, id: i64) -> bool {
    gateway.direct_ids().await.contains(&id)
}

fn assert_unknown(status: &tonic::Status) {
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    assert_eq!(reason(status), "COMMIT_OUTCOME_UNKNOWN", "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autocommit_write_that_commits_before_its_kill_lands_answers_what_it_did() {
    let (gateway, proxy) = gateway_behind_proxy("kill-late", |c| {
        c.calls.statement_timeout = Duration::from_millis(300)
    })
    .await;
    let mut client = gateway.client.clone();

    // --statement-timeout: the KILL is held back until the statement has
    // committed; the gateway learns that from the statement's own answer and
    // answers its result, not "stopped".
    proxy.hold(KILL);
    let call = tokio::spawn({
        let mut client = client.clone();
        async move { client.execute(slow_insert(1, 0.8)).await }
    });
    proxy.wait_held().await;
    assert!(
        eventually(Duration::from_secs(5), || has_row(&gateway, 1)).await,
        "the statement commits while its KILL is held back"
    );
    proxy.release();
    let answer = call
        .await
        .unwrap()
        .expect("the statement completed: its result is the answer")
        .into_inner();
    assert_eq!(answer.rows_affected, 1);

    // ExecuteStream: the same, before its result starts.
    proxy.hold(KILL);
    let call = tokio::spawn({
        let mut client = client.clone();
        async move {
            let mut stream = client
                .execute_stream(slow_insert(5, 0.8))
                .await?
                .into_inner();
            let mut parts = Vec::new();
            while let Some(message) = stream.message().await? {
                parts.extend(message.part);
            }
            Ok::<_, tonic::Status>(parts)
        }
    });
    proxy.wait_held().await;
    assert!(
        eventually(Duration::from_secs(5), || has_row(&gateway, 5)).await,
        "the streamed statement commits while its KILL is held back"
    );
    proxy.release();
    let parts = call
        .await
        .unwrap()
        .expect("the statement completed: its result is the answer");
    let summary = parts.iter().find_map(|part| match part {
        Part::Summary(summary) => Some(summary.rows_affected),
        _ => None,
    });
    assert_eq!(summary, Some(1), "{parts:?}");

    // The client's deadline: no answer to the KILL before it passes. The
    // gateway cannot know, and says so (UNKNOWN); the row does come.
    proxy.hold(KILL);
    let status = client
        .execute(with_deadline(slow_insert(2, 1.0), "500m"))
        .await
        .expect_err("the deadline passes");
    assert_unknown(&status);
    assert!(
        eventually(Duration::from_secs(5), || has_row(&gateway, 2)).await,
        "the write the gateway could not stop committed: UNKNOWN was the truth"
    );
    proxy.release();

    // A KILL that lands first: the statement was stopped, nothing written.
    for request in [
        with_deadline(slow_insert(3, 5.0), "500m"),
        tonic::Request::new(slow_insert(4, 5.0)),
    ] {
        let status = client.execute(request).await.expect_err("it is stopped");
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert_eq!(reason(&status), "DEADLINE_EXCEEDED");
    }
    assert_eq!(gateway.direct_ids().await, vec![1, 2, 5]);
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_in_flight_when_the_deadline_passes_is_unknown_never_stopped() {
    let (gateway, proxy) = gateway_behind_proxy("commit-late", |_| {}).await;
    let mut client = gateway.client.clone();
    let insert = |id: i64| format!("INSERT INTO t VALUES ({id})");
    for (id, kind) in [
        (1, "Commit"),
        (2, "ExecuteBatch"),
        (3, "Execute"),
        (4, "Transaction"),
    ] {
        let transaction_id = match kind {
            "Commit" => {
                let tx = begin_on(&mut client).await;
                client
                    .execute(statement_in(&insert(id), &tx))
                    .await
                    .unwrap();
                tx
            }
            _ => String::new(),
        };
        proxy.hold(COMMIT);
        let status = match kind {
            "Commit" => client
                .commit(with_deadline(
                    CommitRequest {
                        transaction_id: transaction_id.clone(),
                        ..Default::default()
                    },
                    "500m",
                ))
                .await
                .map(drop),
            "ExecuteBatch" => client
                .execute_batch(with_deadline(
                    ExecuteBatchRequest {
                        statements: vec![Statement {
                            sql: insert(id),
                            ..Default::default()
                        }],
                        ..Default::default()
                    },
                    "500m",
                ))
                .await
                .map(drop),
            "Execute" => client
                .execute(with_deadline(
                    ExecuteRequest {
                        sql: insert(id),
                        begin: Some(Default::default()),
                        commit: true,
                        ..Default::default()
                    },
                    "500m",
                ))
                .await
                .map(drop),
            _ => transaction_stream_commit(&mut client, &insert(id)).await,
        }
        .expect_err("the COMMIT is held back past the deadline");
        assert_unknown(&status);
        proxy.release();
        assert!(
            eventually(Duration::from_secs(5), || has_row(&gateway, id)).await,
            "{kind}: the COMMIT ran to its end and committed: UNKNOWN was the truth"
        );
        if kind == "Commit" {
            // The gateway remembers the outcome: a later Commit tells.
            client
                .commit(CommitRequest {
                    transaction_id,
                    ..Default::default()
                })
                .await
                .expect("a later Commit answers that it committed");
        }
    }
    gateway.shut_down().await;
}

/// A Transaction stream (with a 500 ms deadline) that runs `sql` and
/// commits; the status it ends with.
async fn transaction_stream_commit(
    client: &mut sqlgate::api::database_client::DatabaseClient<tonic::transport::Channel>,
    sql: &str,
) -> Result<(), tonic::Status> {
    let requests = [
        Step::Begin(Default::default()),
        Step::Statement(TransactionStatement {
            sql: sql.into(),
            ..Default::default()
        }),
        Step::Commit(TransactionCommit::default()),
    ]
    .map(|step| TransactionRequest {
        request: Some(step),
    });
    let mut responses = client
        .transaction(with_deadline(tokio_stream::iter(requests), "500m"))
        .await?
        .into_inner();
    loop {
        match responses.message().await? {
            Some(message) if matches!(message.response, Some(Answer::Committed(_))) => {
                return Ok(());
            }
            Some(_) => {}
            None => return Ok(()),
        }
    }
}
