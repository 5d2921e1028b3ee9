//! What open streams cost the gateway process, and that the memory comes
//! back once they close (README, "Memory held by idle streams").
mod common;

use std::time::{Duration, Instant};

use common::*;
use sqlgate::api::ExecuteRequest;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Connections of each kind per burst, and streams on each.
const CONNECTIONS: usize = 8;
const STREAMS: usize = 200;
/// Bursts, one after another.
const BURSTS: usize = 3;
/// ExecuteStreams per burst that send a query and never read its rows.
const UNREAD: usize = 8;
/// How far above the baseline RSS may stay once a burst has closed (README).
const RETURN_BOUND: u64 = 16 * MIB;

/// The kinds of idle stream a burst opens, with the README's bound for each.
const IDLE: [(&str, u64); 3] = [
    ("sqlgate.v1.Database/Execute", 8 * KIB),
    ("sqlgate.v1.Database/ExecuteStream", 8 * KIB),
    ("sqlgate.v1.Database/Transaction", 16 * KIB),
];
/// The README's bound for an ExecuteStream whose client reads nothing: two
/// batches queued and one being sent, and HTTP/2's send buffer.
const UNREAD_BOUND: u64 = MIB;

/// Before: RSS stayed at each burst's peak (glibc keeps freed memory), 447 →
/// 572 → 602 → 619 MB over repeated bursts. Now, bursts of idle streams of
/// every kind (and a few unread ExecuteStreams) stay within the README's bound
/// while open, and RSS comes back within RETURN_BOUND of the baseline after
/// each, burst after burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_comes_back_after_bursts_of_idle_streams() {
    let (_, url) = fresh_database().await;
    let process = GatewayProcess::start(["--database-url", &url], &[]);
    let address = process.address.clone();
    let pid = process.pid();
    let mut client = process.client().await;
    execute(&mut client, "SELECT 1", vec![]).await.unwrap();
    let unread = grpc_frame(&ExecuteRequest {
        sql: "SELECT seq, REPEAT('x', 100) FROM seq_1_to_1000000".into(),
        ..Default::default()
    });
    let baseline = rss(pid);
    let streams_per_kind = (CONNECTIONS * STREAMS) as u64;
    let bound = baseline
        + IDLE
            .iter()
            .map(|(_, per_stream)| streams_per_kind * per_stream)
            .sum::<u64>()
        + UNREAD as u64 * UNREAD_BOUND;
    for burst in 1..=BURSTS {
        let started = Instant::now();
        let mut open = Vec::new();
        for (method, _) in IDLE {
            open.push(open_streams(&address, method, Sent::Nothing, CONNECTIONS, STREAMS).await);
        }
        let method = "sqlgate.v1.Database/ExecuteStream";
        open.push(
            open_streams(
                &address,
                method,
                Sent::Message(unread.clone()),
                1,
                UNREAD + 1,
            )
            .await,
        );
        let peak = peak_rss(pid, Duration::from_millis(500)).await;
        eprintln!(
            "burst {burst}: {} streams open in {:?}, RSS {} MiB (baseline {} MiB, bound {} MiB)",
            3 * streams_per_kind as usize + UNREAD,
            started.elapsed(),
            peak / MIB,
            baseline / MIB,
            bound / MIB
        );
        assert!(
            peak <= bound,
            "burst {burst}: RSS {} MiB over the bound {} MiB",
            peak / MIB,
            bound / MIB
        );
        drop(open);
        let closed = Instant::now();
        let returned = eventually(Duration::from_secs(10), || async {
            rss(pid) <= baseline + RETURN_BOUND
        })
        .await;
        eprintln!(
            "burst {burst}: closed, RSS {} MiB after {:?}",
            rss(pid) / MIB,
            closed.elapsed()
        );
        assert!(
            returned,
            "burst {burst}: RSS stayed at {} MiB, more than {} MiB over the baseline {} MiB",
            rss(pid) / MIB,
            RETURN_BOUND / MIB,
            baseline / MIB
        );
        // Calls work on once the streams are gone.
        execute(&mut client, "SELECT 1", vec![]).await.unwrap();
    }
}
