//! A gateway that follows the primary: `--database-url` names a primary and
//! its replica (real GTID replication), the operator promotes the replica,
//! and the gateway writes to the new primary, never to the old one.
mod common;

use std::time::{Duration, Instant};

use common::*;
use sqlgate::{
    api::{self, database_client::DatabaseClient},
    embedded::{EmbeddedDatabase, ReplicatedPair},
};
use tonic::Code;
use tonic::transport::Channel;

const CHECK_INTERVAL: Duration = Duration::from_millis(200);

async fn count(server: &EmbeddedDatabase, sql: &str) -> i64 {
    query_i64(&server.url("app"), sql).await.unwrap()
}

/// Inserts row `id` through the gateway; `judge` says whether the outcome
/// is the one awaited.
async fn insert(
    client: &DatabaseClient<Channel>,
    id: i64,
    judge: impl FnOnce(Result<api::ExecuteResponse, tonic::Status>) -> bool,
) -> bool {
    let mut client = client.clone();
    judge(execute(&mut client, &format!("INSERT INTO t VALUES ({id})"), vec![]).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_a_promoted_replica_and_never_reach_the_old_primary() {
    let dir = std::env::temp_dir().join(format!("sqlgate-failover-{}", std::process::id()));
    let pair = ReplicatedPair::start(&dir)
        .await
        .expect("a primary and a replica start");
    let ReplicatedPair { primary, replica } = &pair;
    on(primary, "CREATE DATABASE app").await;
    on(primary, "CREATE TABLE app.t (id INT PRIMARY KEY)").await;
    // The gateway's account, on both servers through replication. Not a
    // least-privilege one on purpose: READ_ONLY ADMIN lets it write to a
    // read-only server, so only the gateway's choice of server keeps writes
    // off the old primary below. SLAVE MONITOR reads the replication status.
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
    on(
        primary,
        "GRANT SLAVE MONITOR, READ_ONLY ADMIN ON *.* TO 'gw'@'127.0.0.1'",
    )
    .await;
    assert!(
        pair.wait_until_caught_up(Duration::from_secs(20))
            .await
            .unwrap()
    );
    // The replica is writable (read_only = 0) but replicating: not the primary.
    let url = format!(
        "mysql://gw:gw-pass@127.0.0.1:{},127.0.0.1:{}/app?prefer_socket=false",
        replica.tcp_port().unwrap(),
        primary.tcp_port().unwrap(),
    );
    let gateway = TestGateway::start_on("app".into(), url, |config| {
        config.database.replicas.primary_check_interval = CHECK_INTERVAL;
    })
    .await;
    let mut client = gateway.client.clone();

    execute(&mut client, "INSERT INTO t VALUES (1)", vec![])
        .await
        .expect("a write goes to the primary");
    assert_eq!(
        count(primary, "SELECT COUNT(*) FROM t WHERE id = 1").await,
        1
    );
    // Open across the switch, with a write not committed.
    let open = begin(&gateway, None).await;
    execute_in(&gateway, &open, "INSERT INTO t VALUES (2)", vec![])
        .await
        .unwrap();

    // The operator's failover: the old primary read-only, the replica
    // caught up and promoted.
    on(primary, "SET GLOBAL read_only = 1").await;
    assert!(
        pair.wait_until_caught_up(Duration::from_secs(20))
            .await
            .unwrap()
    );
    on(replica, "STOP SLAVE").await;
    on(replica, "RESET SLAVE ALL").await;
    on(replica, "SET GLOBAL read_only = 0").await;
    let promoted = Instant::now();

    // New writes reach the new primary within the documented time (about
    // one check interval; the bound leaves room for a loaded machine). Until
    // the gateway's next check, writes still go to the old primary: this
    // account may write to a read-only server (a least-privilege one gets
    // error 1290 there), so each write says where it went.
    let mut id = 10;
    let switched = eventually_every(Duration::from_millis(20), Duration::from_secs(5), || {
        id += 1;
        let sql = format!("INSERT INTO t VALUES ({id})");
        let on_new = format!("SELECT COUNT(*) FROM t WHERE id = {id}");
        let mut client = client.clone();
        async move {
            execute(&mut client, &sql, vec![]).await.is_ok() && count(replica, &on_new).await == 1
        }
    })
    .await;
    let took = promoted.elapsed();
    println!("time from promotion to the first write on the new primary: {took:?}");
    assert!(switched, "writes reach the promoted replica");
    assert!(took < Duration::from_secs(3), "switched in {took:?}");

    // The transaction open on the old primary ends ABORTED, and nothing of
    // it is anywhere.
    let status = execute_in(&gateway, &open, "INSERT INTO t VALUES (3)", vec![])
        .await
        .expect_err("the transaction on the old primary is over");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert_eq!(reason(&status), "TRANSACTION_ABORTED");
    let status = commit(&gateway, &open)
        .await
        .expect_err("nothing to commit");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    for server in [primary, replica] {
        assert_eq!(
            count(server, "SELECT COUNT(*) FROM t WHERE id IN (2, 3)").await,
            0
        );
    }

    // The old primary stays up, read-only: never written to again, while
    // writes go on through the gateway (autocommit and transactions).
    for id in 100..110 {
        execute(&mut client, &format!("INSERT INTO t VALUES ({id})"), vec![])
            .await
            .expect("writes go to the new primary");
        let tx = begin(&gateway, None).await;
        execute_in(
            &gateway,
            &tx,
            &format!("INSERT INTO t VALUES ({})", id + 100),
            vec![],
        )
        .await
        .unwrap();
        commit(&gateway, &tx).await.unwrap();
        tokio::time::sleep(CHECK_INTERVAL / 4).await; // spread over several checks
    }
    assert_eq!(
        count(primary, "SELECT COUNT(*) FROM t WHERE id >= 100").await,
        0
    );
    assert_eq!(
        count(replica, "SELECT COUNT(*) FROM t WHERE id >= 100").await,
        20
    );
    // Both read-only (mid-failover): no server to write to, said so; then
    // the new primary is writable again and writes resume.
    on(replica, "SET GLOBAL read_only = 1").await;
    let refused = eventually(Duration::from_secs(5), || {
        insert(&client, 1000, |result| {
            result.is_err_and(|status| {
                status.code() == Code::Unavailable && reason(&status) == "NO_WRITABLE_PRIMARY"
            })
        })
    })
    .await;
    assert!(refused, "calls say that no server is writable");
    on(replica, "SET GLOBAL read_only = 0").await;
    let resumed = eventually(Duration::from_secs(5), || {
        insert(&client, 1001, |result| result.is_ok())
    })
    .await;
    assert!(resumed, "writes resume on the primary");
    assert_eq!(
        count(replica, "SELECT COUNT(*) FROM t WHERE id = 1001").await,
        1
    );
    assert_eq!(
        count(primary, "SELECT COUNT(*) FROM t WHERE id >= 1000").await,
        0
    );
    // The first write is on the new primary, by replication.
    assert_eq!(
        count(replica, "SELECT COUNT(*) FROM t WHERE id = 1").await,
        1
    );
    gateway.shut_down().await;
}
