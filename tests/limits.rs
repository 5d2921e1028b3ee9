//! Bounds on what one client can hold: a stream whose client stops reading,
//! a log reader that stalls, and half-sent requests.
mod common;

use std::time::{Duration, Instant};

use common::*;
use sqlgate::api::ExecuteRequest;
use tokio_stream::StreamExt;
use tonic::Code;

/// A client that keeps its stream open but never reads it: tonic's client
/// hands DATA to the HTTP/2 layer's flow control only as the `Streaming` is
/// polled, so an un-polled one stops window updates once its window (2 MiB)
/// is full, and the gateway's sends wait. Its connection must come back
/// within --stream-stall-timeout, not at the server's net_write_timeout (60 s).
#[tokio::test]
async fn a_client_that_never_reads_does_not_keep_its_connection() {
    const STALLED: usize = 4;
    let gateway = TestGateway::start_with(|c| {
        c.pool.max = STALLED;
        c.transactions.max_open = 2;
        c.pool.acquire_timeout = Duration::from_millis(300);
        c.calls.stream_stall_timeout = Duration::from_secs(2);
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

/// The value of `name` on GET /metrics.
fn metric(port: u16, name: &str) -> Option<f64> {
    sample(&scrape(port)?, name)
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

/// Opens `streams` Execute calls on one new HTTP/2 connection, each sending
/// the gRPC header of a `declared`-byte message and then only `sent` bytes of
/// it. Returns what keeps them open.
async fn half_sent_requests(
    address: &str,
    streams: usize,
    sent: usize,
    declared: u32,
) -> impl Drop {
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(connection);
    let mut open = Vec::new();
    for _ in 0..streams {
        client = client.ready().await.unwrap();
        let request = tonic::codegen::http::Request::post(format!(
            "http://{address}/sqlgate.v1.Database/Execute"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
        let (response, mut body) = client.send_request(request, false).unwrap();
        let mut message = vec![0u8];
        message.extend_from_slice(&declared.to_be_bytes());
        message.resize(5 + sent, b'x');
        // h2 sends it as the gateway's flow-control windows allow.
        body.send_data(message.into(), false).unwrap();
        open.push((response, body));
    }
    struct Open<T>(T, tokio::task::JoinHandle<Result<(), h2::Error>>);
    impl<T> Drop for Open<T> {
        fn drop(&mut self) {
            self.1.abort();
        }
    }
    Open((client, open), driver)
}

/// Clients that send part of large request messages and stop must not make
/// the gateway hold memory without bound. Before, 150 streams each sending
/// 1 MiB of a declared 4 MiB message grew RSS by 150 MiB+ (one buffer per
/// stream); now at most --max-concurrent-requests are received at once, the
/// rest stay in HTTP/2 flow control (one connection window each), and a
/// normal call fails clearly (RESOURCE_EXHAUSTED) instead of piling up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_have_a_memory_bound() {
    const MIB: u64 = 1024 * 1024;
    const MAX_CONNECTIONS: u64 = 4;
    const MAX_REQUESTS: u64 = 4;
    const MAX_REQUEST_BYTES: u64 = 4 * MIB;
    let (_, url) = fresh_database().await;
    let process = GatewayProcess::start(
        [
            "--database-url",
            &url,
            "--max-connections",
            &MAX_CONNECTIONS.to_string(),
            "--max-concurrent-requests",
            &MAX_REQUESTS.to_string(),
            "--max-request-bytes",
            "4MiB",
            "--acquire-timeout",
            "1s",
            // Each attacking connection may take every place (the shares
            // per connection are tested in tests/fairness.rs).
            "--max-requests-per-connection",
            &MAX_REQUESTS.to_string(),
        ],
        &[],
    );
    let address = process.address.clone();
    let mut client =
        sqlgate::api::database_client::DatabaseClient::connect(format!("http://{address}"))
            .await
            .unwrap();
    execute(&mut client, "SELECT 1", vec![]).await.unwrap();
    let baseline = rss(process.pid());

    // Three connections (the fourth is the client above), 50 streams each.
    let mut attackers = Vec::new();
    for _ in 0..3 {
        attackers.push(half_sent_requests(&address, 50, MIB as usize, 4 * MIB as u32).await);
    }
    // The documented bound (README, "Memory held by requests"), plus slack
    // for allocator rounding and per-stream HTTP/2 state.
    let bound = baseline
        + MAX_REQUESTS * MAX_REQUEST_BYTES
        + MAX_CONNECTIONS * (u64::from(sqlgate::limits::CONNECTION_WINDOW) + MIB)
        + 16 * MIB;
    // While the attack goes on, a normal call is refused clearly, not hung.
    let status = execute(&mut client, "SELECT 1", vec![]).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(error_info(&status).0, "TOO_MANY_REQUESTS");
    // Watch the RSS for a while: what the attack could deliver has arrived.
    let mut peak = 0;
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(3) {
        peak = peak.max(rss(process.pid()));
        assert!(
            std::env::var("NO_ASSERT").is_ok() || peak <= bound,
            "RSS {} MiB over the bound {} MiB (baseline {} MiB)",
            peak / MIB,
            bound / MIB,
            baseline / MIB
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "RSS: baseline {} MiB, peak {} MiB under attack, bound {} MiB",
        baseline / MIB,
        peak / MIB,
        bound / MIB
    );
    // Once the attackers leave, calls work again.
    drop(attackers);
    assert!(
        eventually(Duration::from_secs(10), || {
            let mut client = client.clone();
            async move { execute(&mut client, "SELECT 1", vec![]).await.is_ok() }
        })
        .await,
        "calls did not recover after the attackers left"
    );
}

/// A client that sends part of a request message and stalls loses its place
/// after --request-read-timeout: it cannot hold one of the
/// --max-concurrent-requests places (and the memory behind it) for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_loses_its_place() {
    let (_, url) = fresh_database().await;
    let process = GatewayProcess::start(
        [
            "--database-url",
            &url,
            "--max-concurrent-requests",
            "1",
            "--request-read-timeout",
            "1s",
            "--acquire-timeout",
            "30s",
        ],
        &[],
    );
    let address = process.address.clone();
    // A Transaction stream's messages are each held to the same limit.
    for method in ["Execute", "Transaction"] {
        let started = Instant::now();
        let status = stalled_request(&address, method).await;
        assert_eq!(
            status.code(),
            Code::DeadlineExceeded,
            "{method}: {status:?}"
        );
        assert_eq!(error_info(&status).0, "REQUEST_READ_TIMEOUT", "{method}");
        assert!(started.elapsed() >= Duration::from_millis(900), "{method}");
        // Its place is free again: an ordinary call gets through at once.
        let mut grpc =
            sqlgate::api::database_client::DatabaseClient::connect(format!("http://{address}"))
                .await
                .unwrap();
        execute(&mut grpc, "SELECT 1", vec![]).await.unwrap();
    }
}

/// Calls `method` with the gRPC header of a 1,000-byte message and then only
/// 10 bytes of it, and waits for the status the gateway ends the call with
/// (in the response headers, or in trailers after a streamed response).
async fn stalled_request(address: &str, method: &str) -> tonic::Status {
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = tonic::codegen::http::Request::post(format!(
        "http://{address}/sqlgate.v1.Database/{method}"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (response, mut body) = client.send_request(request, false).unwrap();
    let mut message = vec![0u8];
    message.extend_from_slice(&1000u32.to_be_bytes());
    message.resize(5 + 10, b'x');
    body.send_data(message.into(), false).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), async {
        let response = response.await.unwrap();
        if let Some(status) = tonic::Status::from_header_map(response.headers()) {
            return status;
        }
        let mut responses = response.into_body();
        while let Some(data) = responses.data().await {
            assert!(
                data.unwrap().is_empty(),
                "no response message to a stalled request"
            );
        }
        let trailers = responses.trailers().await.unwrap().expect("trailers");
        tonic::Status::from_header_map(&trailers).expect("a status in the trailers")
    })
    .await
    .expect("the gateway answers the stalled request");
    drop(body);
    driver.abort();
    status
}

/// Before: an idle stream took ~14 kB (Execute) to ~20 kB (Transaction):
/// tonic allocated an 8 KiB request and an 8 KiB response buffer per call up
/// front, and 100 connections of 200 idle Transaction streams added 423 MiB.
/// Now the buffers start at 1 KiB and an idle stream holds at most what the
/// README says ("Memory held by idle streams").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_stay_within_the_memory_bound() {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const CONNECTIONS: u64 = 20;
    const STREAMS: u64 = 200;
    // The README's figures per idle stream.
    for (method, per_stream) in [
        ("sqlgate.v1.Database/Execute", 8 * KIB),
        ("sqlgate.v1.Database/Transaction", 16 * KIB),
    ] {
        let (_, url) = fresh_database().await;
        let process = GatewayProcess::start(["--database-url", &url], &[]);
        let address = process.address.clone();
        let mut client = process.client().await;
        execute(&mut client, "SELECT 1", vec![]).await.unwrap();
        let baseline = rss(process.pid());
        let bound = baseline + CONNECTIONS * STREAMS * per_stream;
        let streams = open_streams(
            &address,
            method,
            Sent::Nothing,
            CONNECTIONS as usize,
            STREAMS as usize,
        )
        .await;
        let peak = peak_rss(process.pid(), Duration::from_millis(500)).await;
        eprintln!(
            "{method}: {} idle streams, RSS {} MiB (baseline {} MiB, bound {} MiB)",
            CONNECTIONS * STREAMS,
            peak / MIB,
            baseline / MIB,
            bound / MIB
        );
        assert!(
            peak <= bound,
            "{method}: RSS {} MiB over the bound {} MiB",
            peak / MIB,
            bound / MIB
        );
        drop(streams);
        // Calls work on once the streams are gone.
        execute(&mut client, "SELECT 1", vec![]).await.unwrap();
    }
}
