//! The streaming workloads: the whole big table to one client, as fast as it
//! reads or paced like a slow consumer.
use std::time::{Duration, Instant};

use mysql_async::{Conn, Pool, prelude::Queryable};
use sqlgate::api::{
    ExecuteRequest, database_client::DatabaseClient, execute_stream_response::Part,
};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use crate::{
    cpu::Processes,
    harness::owned_connections,
    report::{Measurement, Path},
};

const STREAM: &str = "SELECT id, i, d, s, t, m FROM bench_big";

/// Rows of the direct paths between two pauses of the slow client: about as
/// many as a 64 KiB gateway batch holds.
const ROWS_PER_BATCH: u32 = 700;

/// Streams the big table once along `path` (when `slow`, pausing 1 ms per
/// batch and giving up after `duration`), and measures rows per second and
/// the CPU time of every watched process, from the moment the client is
/// ready (connected, statement prepared).
#[allow(clippy::too_many_arguments)]
pub async fn stream_once(
    path: Path,
    mut client: DatabaseClient<Channel>,
    pool: Pool,
    opts: mysql_async::Opts,
    processes: Processes,
    duration: Duration,
    expected: u64,
    slow: bool,
) -> Measurement {
    let owned = match path {
        Path::DirectOwned | Path::DirectOwnedPaced => {
            owned_connections(&opts, 1, &[STREAM]).await.pop()
        }
        _ => None,
    };
    let before = processes.snapshot();
    let started = Instant::now();
    let give_up = started + duration;
    let rows = match path {
        Path::Gateway
        | Path::GatewayInline
        | Path::GatewayStream
        | Path::GatewayRequestId
        | Path::GatewayForwarded => {
            let mut rows = 0u64;
            let mut stream = client
                .execute_stream(ExecuteRequest {
                    sql: STREAM.into(),
                    ..Default::default()
                })
                .await
                .expect("stream")
                .into_inner();
            while let Some(message) = stream.next().await {
                if let Some(Part::Rows(batch)) = message.expect("stream message").part {
                    rows += batch.rows.len() as u64;
                    if slow {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        if Instant::now() > give_up {
                            break;
                        }
                    }
                }
            }
            rows
        }
        Path::DirectOwned | Path::DirectOwnedPaced => {
            let conn = owned.expect("an owned connection");
            direct_stream(conn, true, slow, give_up).await
        }
        Path::DirectPoolReset | Path::Slap => {
            let conn = pool.get_conn().await.expect("connection");
            direct_stream(conn, false, slow, give_up).await
        }
    };
    if !slow {
        assert_eq!(rows, expected, "every row arrived");
    }
    let elapsed = started.elapsed();
    Measurement {
        throughput: rows as f64 / elapsed.as_secs_f64(),
        latency: Some((elapsed, elapsed)),
        operations: rows,
        cpu: before.until(&processes.snapshot()),
        commands: Vec::new(),
    }
}

/// Reads the big table on `conn` with mysql_async; returns the rows read.
/// An `owned` connection is closed at the end; a pooled one goes back to
/// its pool unless the result was left half-read.
async fn direct_stream(mut conn: Conn, owned: bool, slow: bool, give_up: Instant) -> u64 {
    let mut rows = 0u64;
    let mut result = conn.exec_iter(STREAM, ()).await.expect("stream");
    let mut in_batch = 0;
    let mut finished = true;
    while let Some(row) = result.next().await.expect("row") {
        std::hint::black_box(row);
        rows += 1;
        in_batch += 1;
        if slow && in_batch == ROWS_PER_BATCH {
            in_batch = 0;
            tokio::time::sleep(Duration::from_millis(1)).await;
            if Instant::now() > give_up {
                finished = false;
                break;
            }
        }
    }
    drop(result);
    // A half-read result would be drained on return to the pool: close the
    // connection instead.
    if owned || !finished {
        let _ = conn.disconnect().await;
    }
    rows
}
