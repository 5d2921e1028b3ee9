//! The forwarding workload: a fleet of two gateway processes (`--peers`),
//! transactions whose calls either all go to the instance that began them
//! or alternate between the two instances, so that every other call is
//! forwarded to the owner. The gateways' CPU is the sum of both processes.
use std::{net::TcpListener, time::Duration};

use mysql_async::{Conn, prelude::Queryable};
use sqlgate::api::{BeginRequest, CommitRequest, ExecuteRequest, database_client::DatabaseClient};
use tonic::transport::Channel;

use crate::{
    gateway_process::GatewayProcess,
    harness::{close, owned_connections, random_id, timed},
    report::{Measurement, Path, Row},
    workloads::{Bench, CONCURRENCY, POINT_SELECT, int},
};

/// The workload's name (for `--only`).
pub const FLEET_WORKLOAD: &str =
    "transaction of 4 point selects (Begin + 4 reads + Commit), two gateways, 32 clients";

/// Point selects per transaction.
const READS: usize = 4;

impl Bench {
    /// Runs the forwarding workload along its paths: every call to the
    /// owner, calls alternating between the two instances, and direct (owned).
    pub async fn fleet_row(&self) -> std::io::Result<Row> {
        let free = || -> std::io::Result<String> {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            Ok(format!("127.0.0.1:{port}"))
        };
        let addresses = [free()?, free()?];
        let peers = vec!["--peers".to_string(), addresses.join(",")];
        let instances = [
            GatewayProcess::start_with(&self.url, CONCURRENCY, &addresses[0], &peers)?,
            GatewayProcess::start_with(&self.url, CONCURRENCY, &addresses[1], &peers)?,
        ];
        let mut channels = Vec::new();
        for instance in &instances {
            let channel = Channel::from_shared(format!("http://{}", instance.address))
                .map_err(std::io::Error::other)?
                .connect()
                .await
                .map_err(std::io::Error::other)?;
            channels.push(channel);
        }
        let mut processes = self.processes;
        processes.gateway = instances[0].pid();
        processes.second_gateway = Some(instances[1].pid());
        let duration = self.args.duration;
        let point_rows = self.args.point_rows;
        let mut row = Row {
            name: FLEET_WORKLOAD.to_string(),
            unit: "tx/s",
            paths: Vec::new(),
            gateway_peak_kib: 0,
            reaches_database: true,
        };
        // Warm both instances up (connections, statement caches).
        let clients = |alternate: bool| -> Vec<[DatabaseClient<Channel>; 2]> {
            (0..CONCURRENCY)
                .map(|worker| {
                    let owner = DatabaseClient::new(channels[worker % 2].clone());
                    let other = if alternate {
                        DatabaseClient::new(channels[(worker + 1) % 2].clone())
                    } else {
                        owner.clone()
                    };
                    [owner, other]
                })
                .collect()
        };
        let op = move |worker, iteration, mut pair: [DatabaseClient<Channel>; 2]| async move {
            let tx = pair[0]
                .begin(BeginRequest::default())
                .await
                .expect("begin")
                .into_inner()
                .transaction_id;
            for read in 0..READS {
                // Calls alternate: other, owner, other, owner, then Commit on the other.
                let client = &mut pair[(read + 1) % 2];
                let id = random_id(point_rows, worker, iteration * READS + read);
                let response = client
                    .execute(ExecuteRequest {
                        sql: POINT_SELECT.into(),
                        params: vec![int(id)],
                        transaction_id: tx.clone(),
                        ..Default::default()
                    })
                    .await
                    .expect("point select");
                assert_eq!(response.into_inner().rows.len(), 1);
            }
            pair[1]
                .commit(CommitRequest {
                    transaction_id: tx,
                    ..Default::default()
                })
                .await
                .expect("commit");
            pair
        };
        timed(processes, clients(true), Duration::from_secs(2), op).await;
        for (path, alternate) in [(Path::Gateway, false), (Path::GatewayForwarded, true)] {
            eprintln!("{FLEET_WORKLOAD}: {}...", path.label());
            for instance in &instances {
                instance.reset_peak();
            }
            let (measured, _) = timed(processes, clients(alternate), duration, op).await;
            row.gateway_peak_kib = row
                .gateway_peak_kib
                .max(instances[0].memory_kib().1 + instances[1].memory_kib().1);
            row.paths.push((path, measured));
        }
        eprintln!("{FLEET_WORKLOAD}: {}...", Path::DirectOwned.label());
        let mut direct = self.direct_transactions_of_reads(duration).await;
        direct.cpu.gateway = None;
        row.paths.push((Path::DirectOwned, direct));
        Ok(row)
    }

    /// The same transactions on connections each client owns.
    async fn direct_transactions_of_reads(&self, duration: Duration) -> Measurement {
        let point_rows = self.args.point_rows;
        let connections = owned_connections(&self.direct_opts, CONCURRENCY, &[POINT_SELECT]).await;
        let op = move |worker, iteration, mut conn: Conn| async move {
            let mut tx = conn
                .start_transaction(Default::default())
                .await
                .expect("begin");
            for read in 0..READS {
                let id = random_id(point_rows, worker, iteration * READS + read);
                let row: Option<(i64, i64, String)> = tx
                    .exec_first(POINT_SELECT, (id,))
                    .await
                    .expect("point select");
                assert!(row.is_some());
            }
            tx.commit().await.expect("commit");
            conn
        };
        let (measured, connections) = timed(self.processes, connections, duration, op).await;
        close(connections).await;
        measured
    }
}
