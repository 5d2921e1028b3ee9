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

/// A port that was free a moment ago (the exporter cannot report the one it got).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of `name` on GET /metrics (with curl).
fn metric(port: u16, name: &str) -> Option<f64> {
    let output = std::process::Command::new("curl")
        .args([
            "-sf",
            "-m",
            "5",
            &format!("http://127.0.0.1:{port}/metrics"),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines()
        .find(|line| line.starts_with(name))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// A log collector that stops reading (stderr is a pipe nobody drains) must
/// not freeze the gateway: lines are dropped and counted instead. Before,
/// calls stalled for good after about 8,700 lines (the 64 KiB pipe plus the
/// 8,192-line queue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_log_reader_does_not_stall_calls() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    const CALLS: usize = 20_000;
    const TASKS: usize = 32;
    let (_, url) = fresh_database().await;
    let metrics_port = free_port();
    let metrics_address = format!("127.0.0.1:{metrics_port}");
    let process = GatewayProcess::start_with_stalled_log(
        ["--database-url", &url, "--metrics-listen", &metrics_address],
        &[("RUST_LOG", "info")],
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", process.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let mut client = sqlgate::api::database_client::DatabaseClient::new(channel.clone());
            tokio::spawn(async move {
                for call in (task..CALLS).step_by(TASKS) {
                    let mut request = tonic::Request::new(ExecuteRequest {
                        sql: "SELECT 1".into(),
                        ..Default::default()
                    });
                    request.set_timeout(Duration::from_secs(10));
                    let outcome =
                        tokio::time::timeout(Duration::from_secs(15), client.execute(request))
                            .await;
                    match outcome {
                        Ok(Ok(_)) => {}
                        Ok(Err(status)) => panic!("call {call} failed: {status:?}"),
                        Err(_) => panic!("call {call} hung"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let mut health = HealthClient::new(channel);
    let check = health.check(HealthCheckRequest {
        service: String::new(),
    });
    tokio::time::timeout(Duration::from_secs(5), check)
        .await
        .expect("the health check answers")
        .unwrap();
    // The log really was stalled: lines were dropped, and counted.
    assert!(
        eventually(Duration::from_secs(5), || async {
            metric(metrics_port, "sqlgate_log_lines_dropped_total").is_some_and(|n| n > 0.0)
        })
        .await,
        "no dropped line was counted"
    );
    eprintln!(
        "{CALLS} calls in {elapsed:?}; {} log lines dropped",
        metric(metrics_port, "sqlgate_log_lines_dropped_total").unwrap_or(0.0)
    );
}
