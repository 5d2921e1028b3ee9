//! A primary and its replica (real GTID replication) for the tests of a
//! gateway that follows the primary, and the operator's failover.
use std::time::Duration;

use sqlgate::embedded::{EmbeddedDatabase, ReplicatedPair};

use super::{GatewayProcess, free_port, on, query_i64, sample, scrape};

/// Starts a replicated pair named `name` with database `app`, a table
/// `app.t (id INT PRIMARY KEY)`, and account `gw`@`127.0.0.1` (password
/// `gw-pass`) granted DML on `app.*`, SLAVE MONITOR, and `extra` global
/// privileges when not empty (e.g. `READ_ONLY ADMIN`); waits until the
/// replica has all of it.
pub async fn failover_pair(name: &str, extra: &str) -> ReplicatedPair {
    let dir = std::env::temp_dir().join(format!("sqlgate-{name}-{}", std::process::id()));
    let pair = ReplicatedPair::start(&dir)
        .await
        .expect("a primary and a replica start");
    let primary = &pair.primary;
    on(primary, "CREATE DATABASE app").await;
    on(primary, "CREATE TABLE app.t (id INT PRIMARY KEY)").await;
    on(
        primary,
        "CREATE USER 'gw'@'127.0.0.1' IDENTIFIED BY 'gw-pass'",
    )
    .await;
    on(
        primary,
        "GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO 'gw'@'127.0.0.1'",
    )
    .await;
    let global = match extra {
        "" => "SLAVE MONITOR".to_string(),
        extra => format!("SLAVE MONITOR, {extra}"),
    };
    on(
        primary,
        &format!("GRANT {global} ON *.* TO 'gw'@'127.0.0.1'"),
    )
    .await;
    caught_up(&pair).await;
    pair
}

/// Waits until the replica has applied everything the primary has.
pub async fn caught_up(pair: &ReplicatedPair) {
    assert!(
        pair.wait_until_caught_up(Duration::from_secs(20))
            .await
            .unwrap(),
        "the replica catches up"
    );
}

/// The operator's failover: the old primary read-only, the replica caught
/// up and promoted (`STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0`).
pub async fn promote_replica(pair: &ReplicatedPair) {
    on(&pair.primary, "SET GLOBAL read_only = 1").await;
    caught_up(pair).await;
    on(&pair.replica, "STOP SLAVE").await;
    on(&pair.replica, "RESET SLAVE ALL").await;
    on(&pair.replica, "SET GLOBAL read_only = 0").await;
}

/// A `--database-url` naming `servers` in this order, as `user`.
pub fn servers_url(user: &str, password: &str, servers: &[&EmbeddedDatabase]) -> String {
    let hosts: Vec<String> = servers
        .iter()
        .map(|server| format!("127.0.0.1:{}", server.tcp_port().unwrap()))
        .collect();
    format!(
        "mysql://{user}:{password}@{}/app?prefer_socket=false",
        hosts.join(",")
    )
}

/// Counts with `sql` in database `app` of `server`, directly.
pub async fn count_on(server: &EmbeddedDatabase, sql: &str) -> i64 {
    query_i64(&server.url("app"), sql).await.unwrap()
}

/// The `sqlgate_primary_checks_total` of the gateway whose metrics listen
/// on `metrics_port`.
pub fn primary_checks(metrics_port: u16) -> f64 {
    sample(
        &scrape(metrics_port).expect("metrics"),
        "sqlgate_primary_checks_total",
    )
    .unwrap_or(0.0)
}

/// A gateway process on `pair` (primary first) as the least-privilege
/// account, whose check interval is far longer than a test: only the
/// re-checks that failing calls ask for can make it follow the primary.
/// Returns it and the port of its metrics (see [`primary_checks`]).
pub fn gateway_checking_only_when_asked(pair: &ReplicatedPair) -> (GatewayProcess, u16) {
    let url = servers_url("gw", "gw-pass", &[&pair.primary, &pair.replica]);
    let metrics_port = free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let gateway = GatewayProcess::start(
        [
            "--database-url",
            &url,
            "--primary-check-interval",
            "1h",
            "--metrics-listen",
            &metrics,
        ],
        &[],
    );
    (gateway, metrics_port)
}
