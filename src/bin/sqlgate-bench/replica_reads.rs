//! Reads on a replica: a private primary and a replica of it with real GTID
//! replication (their own pair, apart from the other workloads' server), a
//! gateway with `--replica-url`, and point selects that allow a replica
//! (`max_staleness`), against mysql_async connections owned on the replica.
//! The database's CPU here is the replica's.
use std::time::{Duration, Instant};

use mysql_async::{Conn, prelude::Queryable};
use sqlgate::{
    api::{
        ExecuteRequest, ReadConsistency, database_client::DatabaseClient, read_consistency::Bound,
        value::Kind,
    },
    embedded::ReplicatedPair,
};
use tonic::transport::Channel;

use crate::{
    gateway_process::GatewayProcess,
    harness::{close, owned_connections, random_id, timed},
    report::{Path, Row},
    workloads::{Bench, CONCURRENCY, POINT_SELECT, int},
};

/// The workload's name (for `--only`).
pub const REPLICA_WORKLOAD: &str = "point select on a replica (max_staleness 60 s), 32 clients";

impl Bench {
    /// Runs the replica workload through the gateway and directly on the replica.
    pub async fn replica_row(&self) -> Result<Row, Box<dyn std::error::Error>> {
        if self.args.database_url.is_some() {
            return Err("needs the private servers (no --database-url)".into());
        }
        eprintln!("{REPLICA_WORKLOAD}: starting a primary and a replica...");
        let dir =
            std::env::temp_dir().join(format!("sqlgate-bench-replicas-{}", std::process::id()));
        let pair = ReplicatedPair::start(&dir).await?;
        let (primary_url, replica_url) = (pair.primary.url("sqlgate"), pair.replica.url("sqlgate"));
        let mut primary = Conn::from_url(primary_url.as_str()).await?;
        primary
            .query_drop("CREATE TABLE bench_point (id INT PRIMARY KEY, v INT NOT NULL, name VARCHAR(64) NOT NULL) ENGINE=InnoDB")
            .await?;
        primary
            .query_drop(format!(
                "INSERT INTO bench_point SELECT seq, seq % 1000, CONCAT('name-', seq) FROM seq_1_to_{}",
                self.args.point_rows
            ))
            .await?;
        primary.disconnect().await?;
        if !pair.wait_until_caught_up(Duration::from_secs(120)).await? {
            return Err("the replica did not catch up".into());
        }
        let extra = [
            "--replica-url".to_string(),
            replica_url.clone(),
            "--replica-check-interval".to_string(),
            "200ms".to_string(),
        ];
        let gateway = GatewayProcess::start_with(&primary_url, CONCURRENCY, "127.0.0.1:0", &extra)?;
        let channel = Channel::from_shared(format!("http://{}", gateway.address))?
            .connect()
            .await?;
        let staleness = || ReadConsistency {
            bound: Some(Bound::MaxStaleness(prost_types::Duration {
                seconds: 60,
                nanos: 0,
            })),
        };
        // Until reads go to the replica (server id 2).
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            let response = DatabaseClient::new(channel.clone())
                .execute(ExecuteRequest {
                    sql: "SELECT @@server_id".into(),
                    read_consistency: Some(staleness()),
                    ..Default::default()
                })
                .await?
                .into_inner();
            let server = response.rows[0].values[0].kind.clone();
            if matches!(server, Some(Kind::Int64Value(2) | Kind::Uint64Value(2))) {
                break;
            }
            if Instant::now() > give_up {
                return Err("the replica never came into rotation".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut processes = self.processes;
        processes.gateway = gateway.pid();
        processes.database = Some(pair.replica.pid());
        let point_rows = self.args.point_rows;
        let duration = self.args.duration;
        let mut row = Row {
            name: REPLICA_WORKLOAD.to_string(),
            unit: "q/s",
            paths: Vec::new(),
            gateway_peak_kib: 0,
            reaches_database: true,
        };
        eprintln!("{REPLICA_WORKLOAD}: {}...", Path::Gateway.label());
        let clients = (0..CONCURRENCY)
            .map(|_| DatabaseClient::new(channel.clone()))
            .collect();
        let op = move |worker, iteration, mut client: DatabaseClient<Channel>| async move {
            let response = client
                .execute(ExecuteRequest {
                    sql: POINT_SELECT.into(),
                    params: vec![int(random_id(point_rows, worker, iteration))],
                    read_consistency: Some(staleness()),
                    ..Default::default()
                })
                .await
                .expect("point select on the replica");
            assert_eq!(response.into_inner().rows.len(), 1);
            client
        };
        gateway.reset_peak();
        let (measured, _) = timed(processes, clients, duration, op).await;
        row.gateway_peak_kib = gateway.memory_kib().1;
        row.paths.push((Path::Gateway, measured));
        eprintln!("{REPLICA_WORKLOAD}: {}...", Path::DirectOwned.label());
        let replica_opts = mysql_async::Opts::from_url(&replica_url)?;
        let connections = owned_connections(&replica_opts, CONCURRENCY, &[POINT_SELECT]).await;
        let op = move |worker, iteration, mut conn: Conn| async move {
            let found: Option<(i64, i64, String)> = conn
                .exec_first(POINT_SELECT, (random_id(point_rows, worker, iteration),))
                .await
                .expect("point select");
            assert!(found.is_some());
            conn
        };
        let (mut measured, connections) = timed(processes, connections, duration, op).await;
        close(connections).await;
        measured.cpu.gateway = None;
        row.paths.push((Path::DirectOwned, measured));
        drop(gateway);
        Ok(row)
    }
}
