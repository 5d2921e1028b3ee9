//! The workloads, each run through the gateway and directly.
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use mysql_async::{Pool, PoolConstraints, PoolOpts, prelude::Queryable};
use sqlgate::{
    api::{
        BeginRequest, CommitRequest, ExecuteBatchRequest, ExecuteRequest, Statement,
        database_client::DatabaseClient, execute_stream_response::Part, value::Kind,
    },
    embedded::{EmbeddedDatabase, EmbeddedOptions},
};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    Args,
    cpu::Processes,
    gateway_process::GatewayProcess,
    report::{self, Measurement, Row},
};

/// Clients of the concurrent workloads, and the pool size of both sides.
const CONCURRENCY: usize = 32;
/// gRPC channels (HTTP/2 connections) the concurrent clients share.
const CHANNELS: usize = 4;

const POINT_SELECT: &str = "SELECT id, v, name FROM bench_point WHERE id = ?";
const UPDATE: &str = "UPDATE bench_point SET v = v + 1 WHERE id = ?";
const STREAM: &str = "SELECT id, i, d, s, t, m FROM bench_big";

/// Everything a workload needs.
struct Bench {
    args: Args,
    processes: Processes,
    gateway: GatewayProcess,
    /// The HTTP/2 connections to the gateway that the clients share.
    channels: Vec<Channel>,
    direct: Pool,
    direct_opts: mysql_async::Opts,
}

/// The direct pool's size: as many connections as the gateway's pool.
fn pool_constraints() -> PoolConstraints {
    PoolConstraints::new(CONCURRENCY, CONCURRENCY + 8).expect("min <= max")
}

pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let _private;
    let mut database_pid = None;
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            eprintln!("starting a private MariaDB...");
            let server = EmbeddedDatabase::start(&EmbeddedOptions {
                data_dir: std::env::temp_dir()
                    .join(format!("sqlgate-bench-{}", std::process::id())),
                remove_on_stop: true,
            })?;
            let url = server.url("sqlgate");
            database_pid = Some(server.pid());
            _private = server;
            url
        }
    };
    setup(&url, &args).await?;
    eprintln!("starting the gateway...");
    let gateway = GatewayProcess::start(&url, CONCURRENCY)?;
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(
            Channel::from_shared(format!("http://{}", gateway.address))?
                .connect()
                .await?,
        );
    }
    let direct_opts = mysql_async::Opts::from_url(&url)?;
    let direct = Pool::new(
        mysql_async::OptsBuilder::from_opts(direct_opts.clone())
            .pool_opts(PoolOpts::default().with_constraints(pool_constraints())),
    );
    let processes = Processes {
        client: std::process::id(),
        gateway: gateway.pid(),
        database: database_pid,
    };
    let bench = Bench {
        args,
        processes,
        gateway,
        channels,
        direct,
        direct_opts,
    };
    // Warm both sides up (connections, statement caches, page cache).
    bench.point_select(CONCURRENCY, true).await;
    bench.point_select(CONCURRENCY, false).await;
    let (rest, _) = bench.gateway.memory_kib();

    let mut rows = Vec::new();
    let selected = |name: &str| {
        bench
            .args
            .only
            .as_ref()
            .is_none_or(|only| name.contains(only.as_str()))
    };
    for clients in [1, CONCURRENCY] {
        let name = format!(
            "round trip (health Check / COM_PING), {clients} client{}",
            if clients == 1 { "" } else { "s" }
        );
        if selected(&name) {
            rows.push(
                bench
                    .compare(&name, "calls/s", |gateway| {
                        bench.round_trip(clients, gateway)
                    })
                    .await,
            );
        }
    }
    for clients in [1, CONCURRENCY] {
        let name = format!(
            "point select, {clients} client{}",
            if clients == 1 { "" } else { "s" }
        );
        if selected(&name) {
            rows.push(
                bench
                    .compare(&name, "q/s", |gateway| bench.point_select(clients, gateway))
                    .await,
            );
        }
    }
    let name = format!("transaction Begin + 2 UPDATE + Commit, {CONCURRENCY} clients");
    if selected(&name) {
        rows.push(
            bench
                .compare(&name, "tx/s", |gateway| bench.transaction(gateway))
                .await,
        );
    }
    let name = format!("ExecuteBatch of 2 UPDATEs, {CONCURRENCY} clients");
    if selected(&name) {
        rows.push(
            bench
                .compare(&name, "tx/s", |gateway| bench.batch(gateway))
                .await,
        );
    }
    let name = format!(
        "stream {} rows × 6 columns, 1 client",
        bench.args.stream_rows
    );
    if selected(&name) {
        rows.push(
            bench
                .compare(&name, "rows/s", |gateway| bench.stream(gateway, false))
                .await,
        );
    }
    let name = "stream to a slow client (1 ms per 64 KiB batch)".to_string();
    if selected(&name) {
        rows.push(
            bench
                .compare(&name, "rows/s", |gateway| bench.stream(gateway, true))
                .await,
        );
    }
    report::print(&rows, rest);
    bench.direct.disconnect().await?;
    Ok(())
}

impl Bench {
    /// Runs one workload through the gateway, then directly.
    async fn compare<'a, F, Fut>(&'a self, name: &str, unit: &'static str, workload: F) -> Row
    where
        F: Fn(bool) -> Fut,
        Fut: Future<Output = Measurement> + 'a,
    {
        eprintln!("{name}: gateway...");
        self.gateway.reset_peak();
        let before = self.processes.snapshot();
        let mut gateway = workload(true).await;
        let after = self.processes.snapshot();
        gateway.cpu = before.until(&after);
        let (_, peak) = self.gateway.memory_kib();
        eprintln!("{name}: direct...");
        let mut direct = workload(false).await;
        direct.cpu = after.until(&self.processes.snapshot());
        Row {
            name: name.to_string(),
            unit,
            gateway,
            direct,
            gateway_peak_kib: peak,
        }
    }

    fn client(&self, worker: usize) -> DatabaseClient<Channel> {
        DatabaseClient::new(self.channels[worker % self.channels.len()].clone())
    }

    /// The cheapest call each path has: an RPC that does not touch the
    /// database, and a COM_PING on a connection taken from a pool that does
    /// not reset connections.
    async fn round_trip(&self, clients: usize, through_gateway: bool) -> Measurement {
        let channels = self.channels.clone();
        let pool = Pool::new(
            mysql_async::OptsBuilder::from_opts(self.direct_opts.clone()).pool_opts(
                PoolOpts::default()
                    .with_constraints(pool_constraints())
                    .with_reset_connection(false),
            ),
        );
        let measured = timed(clients, self.args.duration, {
            let pool = pool.clone();
            move |worker, _| {
                let mut health = HealthClient::new(channels[worker % channels.len()].clone());
                let pool = pool.clone();
                async move {
                    if through_gateway {
                        let response = health
                            .check(HealthCheckRequest::default())
                            .await
                            .expect("health check");
                        assert_eq!(response.into_inner().status, ServingStatus::Serving as i32);
                    } else {
                        let mut conn = pool.get_conn().await.expect("connection");
                        conn.ping().await.expect("ping");
                    }
                }
            }
        })
        .await;
        let _ = pool.disconnect().await;
        measured
    }

    async fn point_select(&self, clients: usize, through_gateway: bool) -> Measurement {
        let channels = self.channels.clone();
        let pool = self.direct.clone();
        let point_rows = self.args.point_rows;
        timed(clients, self.args.duration, move |worker, iteration| {
            let id = random_id(point_rows, worker, iteration);
            let mut client = DatabaseClient::new(channels[worker % channels.len()].clone());
            let pool = pool.clone();
            async move {
                if through_gateway {
                    let response = client
                        .execute(ExecuteRequest {
                            sql: POINT_SELECT.into(),
                            params: vec![int(id)],
                            ..Default::default()
                        })
                        .await
                        .expect("point select");
                    assert_eq!(response.into_inner().rows.len(), 1);
                } else {
                    let mut conn = pool.get_conn().await.expect("connection");
                    let row: Option<(i64, i64, String)> = conn
                        .exec_first(POINT_SELECT, (id,))
                        .await
                        .expect("point select");
                    assert!(row.is_some());
                }
            }
        })
        .await
    }

    async fn transaction(&self, through_gateway: bool) -> Measurement {
        let channels = self.channels.clone();
        let pool = self.direct.clone();
        let point_rows = self.args.point_rows;
        timed(CONCURRENCY, self.args.duration, move |worker, iteration| {
            let (a, b) = two_ids(point_rows, worker, iteration);
            let mut client = DatabaseClient::new(channels[worker % channels.len()].clone());
            let pool = pool.clone();
            async move {
                if through_gateway {
                    let tx = client
                        .begin(BeginRequest::default())
                        .await
                        .expect("begin")
                        .into_inner()
                        .transaction_id;
                    for id in [a, b] {
                        client
                            .execute(ExecuteRequest {
                                sql: UPDATE.into(),
                                params: vec![int(id)],
                                transaction_id: tx.clone(),
                                ..Default::default()
                            })
                            .await
                            .expect("update");
                    }
                    client
                        .commit(CommitRequest { transaction_id: tx })
                        .await
                        .expect("commit");
                } else {
                    direct_transaction(&pool, a, b).await;
                }
            }
        })
        .await
    }

    async fn batch(&self, through_gateway: bool) -> Measurement {
        let channels = self.channels.clone();
        let pool = self.direct.clone();
        let point_rows = self.args.point_rows;
        timed(CONCURRENCY, self.args.duration, move |worker, iteration| {
            let (a, b) = two_ids(point_rows, worker, iteration);
            let mut client = DatabaseClient::new(channels[worker % channels.len()].clone());
            let pool = pool.clone();
            async move {
                if through_gateway {
                    let statement = |id| Statement {
                        sql: UPDATE.into(),
                        params: vec![int(id)],
                    };
                    client
                        .execute_batch(ExecuteBatchRequest {
                            statements: vec![statement(a), statement(b)],
                            ..Default::default()
                        })
                        .await
                        .expect("batch");
                } else {
                    direct_transaction(&pool, a, b).await;
                }
            }
        })
        .await
    }

    /// Streams the big table once (or, slowly, for the run's duration), in
    /// a task of its own like the other workloads' clients.
    async fn stream(&self, through_gateway: bool, slow: bool) -> Measurement {
        let client = self.client(0);
        let pool = self.direct.clone();
        let (duration, expected) = (self.args.duration, self.args.stream_rows);
        tokio::spawn(stream_once(
            client,
            pool,
            duration,
            expected,
            through_gateway,
            slow,
        ))
        .await
        .expect("the stream task panicked")
    }
}

async fn stream_once(
    mut client: DatabaseClient<Channel>,
    pool: Pool,
    duration: Duration,
    expected: u64,
    through_gateway: bool,
    slow: bool,
) -> Measurement {
    let started = Instant::now();
    let give_up = started + duration;
    let mut rows = 0u64;
    if through_gateway {
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
    } else {
        let mut conn = pool.get_conn().await.expect("connection");
        let mut result = conn.exec_iter(STREAM, ()).await.expect("stream");
        let mut in_batch = 0;
        while let Some(row) = result.next().await.expect("row") {
            std::hint::black_box(row);
            rows += 1;
            in_batch += 1;
            // About as many rows as a 64 KiB gateway batch holds.
            if slow && in_batch == 700 {
                in_batch = 0;
                tokio::time::sleep(Duration::from_millis(1)).await;
                if Instant::now() > give_up {
                    break;
                }
            }
        }
        drop(result);
        // A half-read result would be drained on return: close instead.
        if slow {
            let _ = conn.disconnect().await;
        }
    }
    if !slow {
        assert_eq!(rows, expected, "every row arrived");
    }
    let elapsed = started.elapsed();
    Measurement {
        throughput: rows as f64 / elapsed.as_secs_f64(),
        p50: elapsed,
        p99: elapsed,
        operations: rows,
        cpu: Default::default(),
    }
}

async fn direct_transaction(pool: &Pool, a: i64, b: i64) {
    let mut conn = pool.get_conn().await.expect("connection");
    let mut tx = conn
        .start_transaction(Default::default())
        .await
        .expect("begin");
    tx.exec_drop(UPDATE, (a,)).await.expect("update");
    tx.exec_drop(UPDATE, (b,)).await.expect("update");
    tx.commit().await.expect("commit");
}

fn int(v: i64) -> sqlgate::api::Value {
    sqlgate::api::Value {
        kind: Some(Kind::Int64Value(v)),
    }
}

/// Runs `op` in `clients` concurrent loops for `duration`; measures each call.
///
/// Each loop is its own tokio task, so the client's work spreads over the
/// runtime's workers on both paths alike.
async fn timed<F, Fut>(clients: usize, duration: Duration, op: F) -> Measurement
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + duration;
    let op = Arc::new(op);
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut iteration = 0;
                while Instant::now() < deadline {
                    let call = Instant::now();
                    op(worker, iteration).await;
                    latencies.push(call.elapsed());
                    iteration += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("a workload task panicked"));
    }
    Measurement::from_latencies(latencies, started.elapsed())
}

/// A pseudo-random row id in `1..=point_rows`, different per worker and iteration.
fn random_id(point_rows: u64, worker: usize, iteration: usize) -> i64 {
    let mixed = (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (iteration as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (mixed % point_rows) as i64 + 1
}

/// Two different rows, in ascending order so transfers never deadlock.
fn two_ids(point_rows: u64, worker: usize, iteration: usize) -> (i64, i64) {
    let a = random_id(point_rows, worker, iteration * 2);
    let mut b = random_id(point_rows, worker, iteration * 2 + 1);
    if a == b {
        b = a % point_rows as i64 + 1;
    }
    (a.min(b), a.max(b))
}

/// Creates the tables if they are not there with the right number of rows.
async fn setup(url: &str, args: &Args) -> Result<(), mysql_async::Error> {
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
