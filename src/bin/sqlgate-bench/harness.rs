//! What every workload uses: the timed loop, row ids, the tables and the
//! direct path's connections.
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use mysql_async::{Conn, prelude::Queryable};

use crate::{Args, cpu::Processes, report::Measurement};

/// Runs `op` in one concurrent loop per element of `states` for `duration`
/// and measures each call, and the CPU time of every watched process over
/// the loops (not over the making of `states`: connecting and preparing
/// happen before, as in a program that has been running for a while).
///
/// Each loop is its own tokio task, so the client's work spreads over the
/// runtime's workers on every path alike. A loop's state (a connection, a
/// gRPC client) is moved into each call and handed back by it; the states
/// are returned at the end, for the caller to close.
pub async fn timed<S, F, Fut>(
    processes: Processes,
    states: Vec<S>,
    duration: Duration,
    op: F,
) -> (Measurement, Vec<S>)
where
    S: Send + 'static,
    F: Fn(usize, usize, S) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = S> + Send + 'static,
{
    timed_paced(processes, states, duration, None, op).await
}

/// [`timed`], with each loop starting a call at most every `pace` (a call
/// that is late starts at once); the wait is not part of its latency.
pub async fn timed_paced<S, F, Fut>(
    processes: Processes,
    states: Vec<S>,
    duration: Duration,
    pace: Option<Duration>,
    op: F,
) -> (Measurement, Vec<S>)
where
    S: Send + 'static,
    F: Fn(usize, usize, S) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = S> + Send + 'static,
{
    let before = processes.snapshot();
    let started = Instant::now();
    let deadline = started + duration;
    let op = Arc::new(op);
    let workers: Vec<_> = states
        .into_iter()
        .enumerate()
        .map(|(worker, mut state)| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut iteration = 0;
                while Instant::now() < deadline {
                    if let Some(pace) = pace {
                        let slot = started + pace * iteration as u32;
                        tokio::time::sleep_until(slot.into()).await;
                    }
                    let call = Instant::now();
                    state = op(worker, iteration, state).await;
                    latencies.push(call.elapsed());
                    iteration += 1;
                }
                (latencies, state)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut states = Vec::new();
    for worker in workers {
        let (done, state) = worker.await.expect("a workload task panicked");
        latencies.extend(done);
        states.push(state);
    }
    let elapsed = started.elapsed();
    let mut measured = Measurement::from_latencies(latencies, elapsed);
    measured.cpu = before.until(&processes.snapshot());
    (measured, states)
}

/// `count` connections of their own for the direct (owned) path, each with
/// `statements` already prepared (in its statement cache), like those of a
/// program that talks to MySQL directly and has been running for a while.
pub async fn owned_connections(
    opts: &mysql_async::Opts,
    count: usize,
    statements: &[&str],
) -> Vec<Conn> {
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        let mut conn = Conn::new(opts.clone()).await.expect("connection");
        for statement in statements {
            conn.prep(*statement).await.expect("prepare");
        }
        connections.push(conn);
    }
    connections
}

/// Closes the direct (owned) path's connections.
pub async fn close(connections: Vec<Conn>) {
    for conn in connections {
        let _ = conn.disconnect().await;
    }
}

/// A pseudo-random row id in `1..=point_rows`, different per worker and iteration.
pub fn random_id(point_rows: u64, worker: usize, iteration: usize) -> i64 {
    let mixed = (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (iteration as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (mixed % point_rows) as i64 + 1
}

/// Two different rows, in ascending order so transfers never deadlock.
pub fn two_ids(point_rows: u64, worker: usize, iteration: usize) -> (i64, i64) {
    let a = random_id(point_rows, worker, iteration * 2);
    let mut b = random_id(point_rows, worker, iteration * 2 + 1);
    if a == b {
        b = a % point_rows as i64 + 1;
    }
    (a.min(b), a.max(b))
}

/// Creates the tables if they are not there with the right number of rows.
pub async fn setup(url: &str, args: &Args) -> Result<(), mysql_async::Error> {
    let mut conn = mysql_async::Conn::from_url(url).await?;
    let count = |table: &str| format!("SELECT COUNT(*) FROM {table}");
    let points: Option<u64> = conn.query_first(count("bench_point")).await.unwrap_or(None);
    if points != Some(args.point_rows) {
        eprintln!("creating bench_point ({} rows)...", args.point_rows);
        conn.query_drop("DROP TABLE IF EXISTS bench_point").await?;
        conn.query_drop("CREATE TABLE bench_point (id INT PRIMARY KEY, v INT NOT NULL, name VARCHAR(64) NOT NULL) ENGINE=InnoDB").await?;
        conn.query_drop(format!(
            "INSERT INTO bench_point SELECT seq, seq % 1000, CONCAT('name-', seq) FROM seq_1_to_{}",
            args.point_rows
        ))
        .await?;
    }
    let big: Option<u64> = conn.query_first(count("bench_big")).await.unwrap_or(None);
    if big != Some(args.stream_rows) {
        eprintln!("creating bench_big ({} rows)...", args.stream_rows);
        conn.query_drop("DROP TABLE IF EXISTS bench_big").await?;
        conn.query_drop(
            "CREATE TABLE bench_big (id BIGINT PRIMARY KEY, i INT NOT NULL, d DOUBLE NOT NULL, \
             s VARCHAR(64) NOT NULL, t DATETIME NOT NULL, m DECIMAL(12,2) NOT NULL) ENGINE=InnoDB",
        )
        .await?;
        conn.query_drop(format!(
            "INSERT INTO bench_big SELECT seq, seq % 100000, seq / 7, CONCAT('row number ', seq, ' of the big table'), \
             '2024-01-01 00:00:00' + INTERVAL seq SECOND, seq / 100 FROM seq_1_to_{}",
            args.stream_rows
        ))
        .await?;
    }
    conn.disconnect().await
}

/// The program `name` on PATH, else in /usr/bin.
pub fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let fallback = std::path::Path::new("/usr/bin").join(name);
        fallback.is_file().then_some(fallback)
    })
}
