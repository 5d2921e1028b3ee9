//! An ExecuteStream whose client's deadline passes while its rows are on
//! their way, with a client that stops reading: the statement is stopped on
//! the server, the client gets a status that tells the truth about its data,
//! and another principal's calls go on.
mod common;

use std::time::Duration;

use common::*;
use sqlgate::api::{ExecuteRequest, database_client::DatabaseClient};
use tonic::Code;

const GREEDY: &str = "greedy-token-0123456789abcdef";
const OTHER: &str = "other-token-0123456789abcdef";

/// A gateway with two principals, small stream batches, and tables `w`
/// (empty) and `big` (20,000 rows of 1 KB).
async fn gateway(name: &str, stall_timeout: Duration) -> TestGateway {
    let (database, url) = fresh_database().await;
    let tokens = token_file(
        name,
        &format!("{GREEDY},greedy,read-write\n{OTHER},other,read-write\n"),
    );
    let gateway = TestGateway::start_on(database, url, move |config| {
        config.auth_tokens_file = Some(tokens);
        config.calls.stream_batch_bytes = 1024;
        config.calls.stream_stall_timeout = stall_timeout;
        config.pool.max = 4;
        config.transactions.max_open = 2;
    })
    .await;
    for sql in [
        "CREATE TABLE w (id INT PRIMARY KEY, s VARCHAR(200))",
        "CREATE TABLE big (id BIGINT PRIMARY KEY, s VARCHAR(1000))",
        "INSERT INTO big SELECT seq, REPEAT('x', 1000) FROM seq_1_to_20000",
    ] {
        gateway.direct_exec(sql).await;
    }
    gateway
}

/// A client with HTTP/2 windows of 64 KiB: a client that stops reading
/// holds the gateway back soon.
async fn small_window_client(gateway: &TestGateway) -> DatabaseClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", gateway.address))
        .unwrap()
        .initial_stream_window_size(Some(65_535))
        .initial_connection_window_size(Some(65_535))
        .connect()
        .await
        .unwrap();
    DatabaseClient::new(channel)
}

/// Opens an ExecuteStream of `sql` as the greedy principal, with a 1 s
/// deadline if `deadline` (the header alone: what the client sees is what
/// the gateway said), reads one message, stops reading for 1.5 s, then
/// reads to the end: the status it ends with.
async fn stall_past_the_deadline(
    client: &mut DatabaseClient<tonic::transport::Channel>,
    sql: &str,
    deadline: bool,
) -> tonic::Status {
    let mut request = as_caller(
        GREEDY,
        ExecuteRequest {
            sql: sql.into(),
            ..Default::default()
        },
    );
    if deadline {
        request
            .metadata_mut()
            .insert("grpc-timeout", "1S".parse().unwrap());
    }
    let mut stream = client.execute_stream(request).await.unwrap().into_inner();
    stream.message().await.expect("the first message comes");
    // The client stalls (what it does, not a wait for the gateway).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("the stream ends");
        match next {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended OK past its deadline"),
            Err(status) => return status,
        }
    }
}

async fn count(gateway: &TestGateway, sql: &str) -> i64 {
    let mut conn = gateway.direct().await;
    let n: Option<i64> = mysql_async::prelude::Queryable::query_first(&mut conn, sql)
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    n.unwrap_or(0)
}

/// ~170 KB of rows: more than the client's window, and the server may
/// have written (and committed) them all before the deadline.
const WRITE_RETURNING: &str =
    "INSERT INTO w SELECT seq, REPEAT('y', 100) FROM seq_1_to_1500 RETURNING id, s";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_stopped_mid_rows_is_never_claimed_stopped_when_it_committed() {
    // The client's deadline, then a stall (no deadline, a 500 ms stall timeout).
    for (deadline, stall_timeout, stopped_reason) in [
        (true, Duration::from_secs(30), "DEADLINE_EXCEEDED"),
        (false, Duration::from_millis(500), "STREAM_STALLED"),
    ] {
        let gateway = gateway("mid-rows-write", stall_timeout).await;
        let mut client = small_window_client(&gateway).await;
        let status = stall_past_the_deadline(&mut client, WRITE_RETURNING, deadline).await;
        let rows = count(&gateway, "SELECT COUNT(*) FROM w").await;
        match (status.code(), reason(&status).as_str()) {
            // Stopped: nothing of it committed.
            (Code::DeadlineExceeded, why) if why == stopped_reason => {
                assert_eq!(rows, 0, "{status:?}")
            }
            // It completed (and committed) before the KILL, or the gateway
            // could not learn: never "stopped".
            (Code::Unknown, "COMMIT_OUTCOME_UNKNOWN") => {
                println!("{rows} rows, {status:?}");
                assert!(rows == 0 || rows == 1500, "{rows}")
            }
            _ => panic!("{status:?}"),
        }
        gateway.shut_down().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_stopped_mid_rows_is_killed_and_others_go_on() {
    let gateway = gateway("mid-rows-read", Duration::from_secs(30)).await;
    let mut client = small_window_client(&gateway).await;
    let stalled = tokio::spawn({
        let mut client = client.clone();
        async move { stall_past_the_deadline(&mut client, "SELECT id, s FROM big", true).await }
    });
    // The other principal's calls complete meanwhile.
    let mut other = gateway.client.clone();
    for id in 0..20 {
        let request = as_caller(OTHER, statement_in(&format!("SELECT {id}"), ""));
        tokio::time::timeout(Duration::from_secs(5), other.execute(request))
            .await
            .expect("another principal's call is not held up")
            .expect("it succeeds");
    }
    let status = stalled.await.unwrap();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "DEADLINE_EXCEEDED", "{status:?}");
    // Nothing of it runs on the server any more.
    assert!(
        eventually(Duration::from_secs(5), || async {
            count(
                &gateway,
                "SELECT COUNT(*) FROM information_schema.processlist WHERE info = 'SELECT id, s FROM big'",
            )
            .await
                == 0
        })
        .await,
        "the stopped read still runs on the server"
    );
    // And the greedy principal's next call is served.
    let request = as_caller(GREEDY, statement_in("SELECT COUNT(*) FROM big", ""));
    client.execute(request).await.expect("served again");
    gateway.shut_down().await;
}
