//! Bounds on what one client can hold: a stream whose client stops reading,
//! a log reader that stalls, and half-sent requests.
mod common;

use std::time::{Duration, Instant};

use common::*;
use sqlgate::api::ExecuteRequest;
use tokio_stream::StreamExt;
use tonic::Code;

/// Polls `condition` every 50 ms until it holds, for at most `within`.
async fn eventually<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many server threads are running a statement starting with `prefix`.
async fn running(gateway: &TestGateway, prefix: &str) -> i64 {
    gateway
        .direct_i64(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '{prefix}%'"
        ))
        .await
        .unwrap_or(0)
}

/// A client that keeps its stream open but never reads it: tonic's client
/// hands DATA to the HTTP/2 layer's flow control only as the `Streaming` is
/// polled, so an un-polled one stops window updates once its window (2 MiB)
/// is full, and the gateway's sends wait. Its connection must come back
/// within --stream-stall-timeout, not at the server's net_write_timeout (60 s).
#[tokio::test]
async fn a_client_that_never_reads_does_not_keep_its_connection() {
    const STALLED: usize = 4;
    let gateway = TestGateway::start_with(|c| {
        c.pool_max = STALLED;
        c.max_transactions = 2;
        c.acquire_timeout = Duration::from_millis(300);
        c.stream_stall_timeout = Duration::from_secs(2);
    })
    .await;
    let sql = "SELECT seq, REPEAT('x', 1000) FROM seq_1_to_10000000";
    let mut streams = Vec::new();
    for _ in 0..STALLED {
        // A connection each: a stalled stream also fills its connection's window.
        let mut client = gateway.new_client().await;
        let request = ExecuteRequest {
            sql: sql.into(),
            ..Default::default()
        };
        streams.push(client.execute_stream(request).await.unwrap().into_inner());
    }
    // Every connection of the pool is taken by a stalled stream...
    assert!(
        eventually(Duration::from_secs(5), || async {
            running(&gateway, "SELECT seq, REPEAT").await == STALLED as i64
        })
        .await,
        "the streams did not start"
    );
    // ...and within a few seconds all are back: the queries are gone from the
    // server, and other calls get connections.
    let mut client = gateway.new_client().await;
    let started = Instant::now();
    assert!(
        eventually(Duration::from_secs(15), || async {
            running(&gateway, "SELECT seq, REPEAT").await == 0
        })
        .await,
        "the stalled queries still run after {:?}",
        started.elapsed()
    );
    for _ in 0..STALLED {
        execute(&mut client, "SELECT 1", vec![]).await.unwrap();
    }
    // A client that reads again gets what was queued, then the reason.
    let mut stream = streams.pop().unwrap();
    let status = loop {
        match stream.next().await.expect("the stream ends with a status") {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(error_info(&status).0, "STREAM_STALLED");
    assert!(status.message().contains("--stream-stall-timeout"));
    drop(streams);
    gateway.shut_down().await;
}
