//! The workloads, each run through the gateway and along the direct paths
//! it is compared with (see [`Path`]).
use std::{future::Future, sync::Arc, time::Duration};

use mysql_async::{Conn, Pool, PoolConstraints, PoolOpts, prelude::Queryable};
use sqlgate::{
    api::{
        BeginRequest, CommitRequest, ExecuteBatchRequest, ExecuteRequest, Statement,
        database_client::DatabaseClient, value::Kind,
    },
    embedded::{EmbeddedDatabase, EmbeddedOptions},
};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    Args,
    cpu::Processes,
    gateway_process::GatewayProcess,
    harness::{close, owned_connections, random_id, setup, timed, timed_paced, two_ids},
    report::{self, Measurement, Path, Row},
    server_counters::ServerCounters,
    slap::{Slap, queries_for},
    stream::stream_once,
};

mod operations;

pub use operations::int;
use operations::*;

/// Clients of the concurrent workloads, and the pool size of the gateway
/// and of the direct (pool + reset) path.
pub const CONCURRENCY: usize = 32;
/// gRPC channels (HTTP/2 connections) the concurrent clients share.
const CHANNELS: usize = 4;

pub const POINT_SELECT: &str = "SELECT id, v, name FROM bench_point WHERE id = ?";
const UPDATE: &str = "UPDATE bench_point SET v = v + 1 WHERE id = ?";

/// The point select with its id written in, for `mariadb-slap`'s text protocol.
fn point_select_text(id: i64) -> String {
    format!("SELECT id, v, name FROM bench_point WHERE id = {id}")
}

/// Everything a workload needs.
pub struct Bench {
    pub args: Args,
    pub processes: Processes,
    gateway: GatewayProcess,
    /// The HTTP/2 connections to the gateway that the clients share.
    channels: Vec<Channel>,
    /// The direct (pool + reset) path's pool: mysql_async's defaults.
    pool: Pool,
    /// How the direct paths connect.
    pub direct_opts: mysql_async::Opts,
    /// `mariadb-slap`, when there is one.
    slap: Option<Arc<Slap>>,
    /// The database the gateways serve.
    pub url: String,
    /// The bench's own connection, to read the server's counters; `None`
    /// when it could not be opened.
    monitor: tokio::sync::Mutex<Option<Conn>>,
}

/// Throughputs of a workload's paths measured so far (0 before they ran).
#[derive(Debug, Clone, Copy, Default)]
pub struct SoFar {
    /// Through the gateway, four calls per transaction.
    gateway: f64,
    /// Direct (owned).
    owned: f64,
}

/// The direct pool's size: as many connections as the gateway's pool.
fn pool_constraints() -> PoolConstraints {
    PoolConstraints::new(CONCURRENCY, CONCURRENCY + 8).expect("min <= max")
}

/// "1 client" or "32 clients".
fn clients_name(clients: usize) -> String {
    format!("{clients} client{}", if clients == 1 { "" } else { "s" })
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
                // More mariadbd options, e.g. `--session-track-system-variables=`
                // (BENCHMARKS.md, "MariaDB's CPU per point select, call by call").
                extra_args: std::env::var("SQLGATE_BENCH_MARIADB_ARGS")
                    .map(|args| args.split_whitespace().map(String::from).collect())
                    .unwrap_or_default(),
                ..Default::default()
            })?;
            let url = server.url("sqlgate");
            database_pid = Some(server.pid());
            _private = server;
            url
        }
    };
    setup(&url, &args).await?;
    eprintln!("starting the gateway...");
    let mut span_export = Vec::new();
    let sink = if args.gateway_otlp {
        let (sink, endpoint) = crate::span_sink::SpanSink::start().await?;
        span_export.extend(["--otlp-endpoint".to_string(), endpoint]);
        Some(sink)
    } else {
        None
    };
    let gateway = GatewayProcess::start_with(&url, CONCURRENCY, "127.0.0.1:0", &span_export)?;
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(
            Channel::from_shared(format!("http://{}", gateway.address))?
                .connect()
                .await?,
        );
    }
    let direct_opts = mysql_async::Opts::from_url(&url)?;
    let pool = Pool::new(
        mysql_async::OptsBuilder::from_opts(direct_opts.clone())
            .pool_opts(PoolOpts::default().with_constraints(pool_constraints())),
    );
    let slap = if args.no_slap {
        None
    } else {
        Slap::new(
            args.mariadb_slap.clone(),
            &direct_opts,
            point_select_text,
            args.point_rows,
        )?
        .map(Arc::new)
    };
    let processes = Processes {
        client: std::process::id(),
        gateway: gateway.pid(),
        second_gateway: None,
        database: database_pid,
    };
    let monitor = Conn::new(direct_opts.clone()).await.ok();
    let bench = Bench {
        args,
        processes,
        gateway,
        channels,
        pool,
        direct_opts,
        slap,
        url: url.clone(),
        monitor: tokio::sync::Mutex::new(monitor),
    };
    // Warm the gateway up (its connections and statement caches, and the
    // database's buffer pool); the direct paths connect and prepare before
    // each of their runs.
    bench
        .point_select_for(CONCURRENCY, Path::Gateway, Duration::from_secs(2), None)
        .await;
    let (rest, _) = bench.gateway.memory_kib();

    let rows = bench.all().await;
    report::print(&rows, rest);
    if bench.selected(crate::h2load::H2LOAD_WORKLOAD) {
        bench.h2load_table().await?;
    }
    if let Some(sink) = sink {
        println!(
            "\nspans exported by the gateway (--gateway-otlp): {} received",
            sink.received()
        );
    }
    bench.pool.disconnect().await?;
    Ok(())
}

impl Bench {
    /// Whether `--only` selects the workload `name`.
    pub fn selected(&self, name: &str) -> bool {
        self.args
            .only
            .as_ref()
            .is_none_or(|only| name.contains(only.as_str()))
    }

    /// Runs the selected workloads, each along its paths.
    async fn all(&self) -> Vec<Row> {
        use Path::*;
        let mut rows = Vec::new();
        let selected = |name: &str| self.selected(name);
        let duration = self.args.duration;
        for clients in [1, CONCURRENCY] {
            let name = format!(
                "round trip (health Check / COM_PING), {}",
                clients_name(clients)
            );
            if selected(&name) {
                let paths = [Gateway, DirectOwned];
                let row = self.compare(&name, "calls/s", &paths, |path, _| async move {
                    Some(self.round_trip(clients, path).await)
                });
                rows.push(row.await);
            }
        }
        for clients in [1, CONCURRENCY] {
            let name = format!("point select, {}", clients_name(clients));
            if selected(&name) {
                let paths = [
                    Gateway,
                    DirectOwned,
                    DirectOwnedPaced,
                    Slap,
                    DirectPoolReset,
                ];
                let row = self.compare(&name, "q/s", &paths, |path, so_far| async move {
                    match path {
                        Slap => {
                            let queries = queries_for(so_far.owned, duration);
                            self.slap_point_select(clients, queries).await
                        }
                        DirectOwnedPaced => {
                            let pace = clients as f64 / so_far.gateway.max(1.0);
                            let pace = Some(Duration::from_secs_f64(pace));
                            Some(self.point_select(clients, path, pace).await)
                        }
                        _ => Some(self.point_select(clients, path, None).await),
                    }
                });
                rows.push(row.await);
            }
        }
        let paths = [Gateway, DirectOwned, DirectPoolReset];
        let name = format!("transaction Begin + 2 UPDATE + Commit, {CONCURRENCY} clients");
        if selected(&name) {
            let paths = [
                Gateway,
                GatewayRequestId,
                GatewayInline,
                GatewayStream,
                DirectOwned,
                DirectPoolReset,
            ];
            let row = self.compare(&name, "tx/s", &paths, |path, _| async move {
                Some(self.transaction(path, false).await)
            });
            rows.push(row.await);
        }
        let name = format!("ExecuteBatch of 2 UPDATEs, {CONCURRENCY} clients");
        if selected(&name) {
            let row = self.compare(&name, "tx/s", &paths, |path, _| async move {
                Some(self.transaction(path, true).await)
            });
            rows.push(row.await);
        }
        let name = format!(
            "stream {} rows × 6 columns, 1 client",
            self.args.stream_rows
        );
        if selected(&name) {
            let row = self.compare(&name, "rows/s", &paths, |path, _| async move {
                Some(self.stream(path, false).await)
            });
            rows.push(row.await);
        }
        let name = "stream to a slow client (1 ms per 64 KiB batch)".to_string();
        if selected(&name) {
            let row = self.compare(&name, "rows/s", &paths, |path, _| async move {
                Some(self.stream(path, true).await)
            });
            rows.push(row.await);
        }
        let name = crate::replica_reads::REPLICA_WORKLOAD;
        if selected(name) {
            match self.replica_row().await {
                Ok(row) => rows.push(row),
                Err(e) => eprintln!("{name}: skipped: {e}"),
            }
        }
        let name = crate::fleet::FLEET_WORKLOAD;
        if selected(name) {
            match self.fleet_row().await {
                Ok(row) => rows.push(row),
                Err(e) => eprintln!("{name}: skipped, the fleet did not start: {e}"),
            }
        }
        rows
    }

    /// Runs one workload along each of `paths` in turn (the gateway first;
    /// `workload` gets the path and the throughputs measured so far). A path
    /// that measured nothing (no `mariadb-slap`) is left out of the row.
    async fn compare<'a, F, Fut>(
        &'a self,
        name: &str,
        unit: &'static str,
        paths: &[Path],
        workload: F,
    ) -> Row
    where
        F: Fn(Path, SoFar) -> Fut,
        Fut: Future<Output = Option<Measurement>> + 'a,
    {
        let mut row = Row {
            name: name.to_string(),
            unit,
            paths: Vec::new(),
            gateway_peak_kib: 0,
            reaches_database: !name.starts_with("round trip"),
        };
        let mut so_far = SoFar::default();
        for &path in paths {
            if path == Path::Slap && self.slap.is_none() {
                continue;
            }
            eprintln!("{name}: {}...", path.label());
            if path.is_gateway() {
                self.gateway.reset_peak();
            }
            let counters_before = self.server_counters().await;
            let Some(mut measured) = workload(path, so_far).await else {
                continue;
            };
            if let (Some(before), Some(after)) = (counters_before, self.server_counters().await) {
                measured.commands = before.per_operation(&after, measured.operations);
            }
            if path.is_gateway() {
                row.gateway_peak_kib = row.gateway_peak_kib.max(self.gateway.memory_kib().1);
            } else {
                // The gateway is idle on the direct paths.
                measured.cpu.gateway = None;
            }
            match path {
                Path::Gateway => so_far.gateway = measured.throughput,
                Path::DirectOwned => so_far.owned = measured.throughput,
                _ => {}
            }
            row.paths.push((path, measured));
        }
        row
    }

    /// The server's command counters now, if they can be read.
    async fn server_counters(&self) -> Option<ServerCounters> {
        let mut monitor = self.monitor.lock().await;
        ServerCounters::read(monitor.as_mut()?).await.ok()
    }

    fn client(&self, worker: usize) -> DatabaseClient<Channel> {
        DatabaseClient::new(self.channels[worker % self.channels.len()].clone())
    }

    /// gRPC clients for `clients` loops, spread over the channels.
    fn clients(&self, clients: usize) -> Vec<DatabaseClient<Channel>> {
        (0..clients).map(|worker| self.client(worker)).collect()
    }

    /// The cheapest call each path has: an RPC that does not touch the
    /// database, and a COM_PING on a connection the client task owns.
    async fn round_trip(&self, clients: usize, path: Path) -> Measurement {
        let duration = self.args.duration;
        if path == Path::Gateway {
            let health = (0..clients)
                .map(|worker| HealthClient::new(self.channels[worker % CHANNELS].clone()))
                .collect();
            let op = |_, _, mut health: HealthClient<Channel>| async move {
                let response = health
                    .check(HealthCheckRequest::default())
                    .await
                    .expect("health check");
                assert_eq!(response.into_inner().status, ServingStatus::Serving as i32);
                health
            };
            return timed(self.processes, health, duration, op).await.0;
        }
        let connections = owned_connections(&self.direct_opts, clients, &[]).await;
        let op = |_, _, mut conn: Conn| async move {
            conn.ping().await.expect("ping");
            conn
        };
        let (measured, connections) = timed(self.processes, connections, duration, op).await;
        close(connections).await;
        measured
    }

    /// Autocommit point selects by primary key, random ids, for the run's
    /// duration, each client starting one at most every `pace`.
    async fn point_select(
        &self,
        clients: usize,
        path: Path,
        pace: Option<Duration>,
    ) -> Measurement {
        self.point_select_for(clients, path, self.args.duration, pace)
            .await
    }

    async fn point_select_for(
        &self,
        clients: usize,
        path: Path,
        duration: Duration,
        pace: Option<Duration>,
    ) -> Measurement {
        let point_rows = self.args.point_rows;
        match path {
            Path::Gateway
            | Path::GatewayInline
            | Path::GatewayStream
            | Path::GatewayRequestId
            | Path::GatewayForwarded => {
                let op = move |worker, iteration, mut client: DatabaseClient<Channel>| async move {
                    let response = client
                        .execute(ExecuteRequest {
                            sql: POINT_SELECT.into(),
                            params: vec![int(random_id(point_rows, worker, iteration))],
                            ..Default::default()
                        })
                        .await
                        .expect("point select");
                    assert_eq!(response.into_inner().rows.len(), 1);
                    client
                };
                timed(self.processes, self.clients(clients), duration, op)
                    .await
                    .0
            }
            Path::DirectOwned | Path::DirectOwnedPaced => {
                let connections =
                    owned_connections(&self.direct_opts, clients, &[POINT_SELECT]).await;
                let op = move |worker, iteration, mut conn: Conn| async move {
                    direct_point_select(&mut conn, random_id(point_rows, worker, iteration)).await;
                    conn
                };
                let (measured, connections) =
                    timed_paced(self.processes, connections, duration, pace, op).await;
                close(connections).await;
                measured
            }
            Path::DirectPoolReset | Path::Slap => {
                let op = move |worker, iteration, pool: Pool| async move {
                    let mut conn = pool.get_conn().await.expect("connection");
                    direct_point_select(&mut conn, random_id(point_rows, worker, iteration)).await;
                    drop(conn);
                    pool
                };
                let pools = vec![self.pool.clone(); clients];
                timed(self.processes, pools, duration, op).await.0
            }
        }
    }

    /// The point select by `mariadb-slap`, `queries` of them.
    async fn slap_point_select(&self, clients: usize, queries: u64) -> Option<Measurement> {
        let slap = self.slap.clone()?;
        let processes = self.processes;
        // The child is waited for on a blocking thread: the runtime stays free.
        tokio::task::spawn_blocking(move || slap.run(processes, clients, queries))
            .await
            .expect("the mariadb-slap thread panicked")
    }

    /// A transaction of two UPDATEs on `CONCURRENCY` clients: through the
    /// gateway as Begin + 2 Execute + Commit, or as one ExecuteBatch when
    /// `batch`; directly, the same statements on one connection either way.
    async fn transaction(&self, path: Path, batch: bool) -> Measurement {
        let point_rows = self.args.point_rows;
        let duration = self.args.duration;
        match path {
            Path::Gateway if batch => {
                let op = move |worker, iteration, mut client: DatabaseClient<Channel>| async move {
                    let (a, b) = two_ids(point_rows, worker, iteration);
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
                    client
                };
                timed(self.processes, self.clients(CONCURRENCY), duration, op)
                    .await
                    .0
            }
            Path::Gateway
            | Path::GatewayInline
            | Path::GatewayStream
            | Path::GatewayRequestId
            | Path::GatewayForwarded => {
                // Request ids unique to this run: a database kept between
                // runs would otherwise answer replays.
                let run = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
                let op = move |worker, iteration, mut client: DatabaseClient<Channel>| {
                    let request_id = format!("bench-{run}-{worker}-{iteration}");
                    async move {
                        let (a, b) = two_ids(point_rows, worker, iteration);
                        match path {
                            Path::GatewayInline => {
                                gateway_inline_transaction(&mut client, a, b).await
                            }
                            Path::GatewayStream => {
                                gateway_stream_transaction(&mut client, a, b).await
                            }
                            Path::GatewayRequestId => {
                                gateway_transaction(&mut client, a, b, request_id).await
                            }
                            _ => gateway_transaction(&mut client, a, b, String::new()).await,
                        }
                        client
                    }
                };
                timed(self.processes, self.clients(CONCURRENCY), duration, op)
                    .await
                    .0
            }
            Path::DirectOwned | Path::DirectOwnedPaced => {
                let connections =
                    owned_connections(&self.direct_opts, CONCURRENCY, &[UPDATE]).await;
                let op = move |worker, iteration, mut conn: Conn| async move {
                    let (a, b) = two_ids(point_rows, worker, iteration);
                    direct_transaction(&mut conn, a, b).await;
                    conn
                };
                let (measured, connections) =
                    timed(self.processes, connections, duration, op).await;
                close(connections).await;
                measured
            }
            Path::DirectPoolReset | Path::Slap => {
                let op = move |worker, iteration, pool: Pool| async move {
                    let (a, b) = two_ids(point_rows, worker, iteration);
                    let mut conn = pool.get_conn().await.expect("connection");
                    direct_transaction(&mut conn, a, b).await;
                    drop(conn);
                    pool
                };
                let pools = vec![self.pool.clone(); CONCURRENCY];
                timed(self.processes, pools, duration, op).await.0
            }
        }
    }

    /// Streams the big table once (or, slowly, for the run's duration), in
    /// a task of its own like the other workloads' clients.
    async fn stream(&self, path: Path, slow: bool) -> Measurement {
        tokio::spawn(stream_once(
            path,
            self.client(0),
            self.pool.clone(),
            self.direct_opts.clone(),
            self.processes,
            self.args.duration,
            self.args.stream_rows,
            slow,
        ))
        .await
        .expect("the stream task panicked")
    }
}
