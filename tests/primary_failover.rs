//! A gateway that follows the primary: `--database-url` names a primary and
//! its replica (real GTID replication), the operator promotes the replica,
//! and the gateway writes to the new primary, never to the old one.
mod common;

use std::time::{Duration, Instant};

use common::*;
use sqlgate::{
    api::{self, database_client::DatabaseClient},
    embedded::ReplicatedPair,
};
use tonic::Code;
use tonic::transport::Channel;

const CHECK_INTERVAL: Duration = Duration::from_millis(200);

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
    // The gateway's account, on both servers through replication. Not a
    // least-privilege one on purpose: READ_ONLY ADMIN lets it write to a
    // read-only server, so only the gateway's choice of server keeps writes
    // off the old primary below. SLAVE MONITOR reads the replication status.
    let pair = failover_pair("failover", "READ_ONLY ADMIN").await;
    let ReplicatedPair { primary, replica } = &pair;
    // The replica is writable (read_only = 0) but replicating: not the primary.
    let url = servers_url("gw", "gw-pass", &[replica, primary]);
    let gateway = TestGateway::start_on("app".into(), url, |config| {
        config.database.replicas.primary_check_interval = CHECK_INTERVAL;
    })
    .await;
    let mut client = gateway.client.clone();

    execute(&mut client, "INSERT INTO t VALUES (1)", vec![])
        .await
        .expect("a write goes to the primary");
    assert_eq!(
        count_on(primary, "SELECT COUNT(*) FROM t WHERE id = 1").await,
        1
    );
    // Open across the switch, with a write not committed.
    let open = begin(&gateway, None).await;
    execute_in(&gateway, &open, "INSERT INTO t VALUES (2)", vec![])
        .await
        .unwrap();

    // The operator's failover: the old primary read-only, the replica
    // caught up and promoted.
    promote_replica(&pair).await;
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
            execute(&mut client, &sql, vec![]).await.is_ok()
                && count_on(replica, &on_new).await == 1
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
            count_on(server, "SELECT COUNT(*) FROM t WHERE id IN (2, 3)").await,
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
        count_on(primary, "SELECT COUNT(*) FROM t WHERE id >= 100").await,
        0
    );
    assert_eq!(
        count_on(replica, "SELECT COUNT(*) FROM t WHERE id >= 100").await,
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
        count_on(replica, "SELECT COUNT(*) FROM t WHERE id = 1001").await,
        1
    );
    assert_eq!(
        count_on(primary, "SELECT COUNT(*) FROM t WHERE id >= 1000").await,
        0
    );
    // The first write is on the new primary, by replication.
    assert_eq!(
        count_on(replica, "SELECT COUNT(*) FROM t WHERE id = 1").await,
        1
    );
    gateway.shut_down().await;
}

/// The gateway's `sqlgate_primary_checks_total`.
fn checks(metrics_port: u16) -> f64 {
    sample(
        &scrape(metrics_port).expect("metrics"),
        "sqlgate_primary_checks_total",
    )
    .unwrap_or(0.0)
}

/// With a check interval far longer than the test: only the re-checks that
/// failing calls ask for can make the gateway follow the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_calls_make_the_gateway_check_the_primary_at_once_but_not_too_often() {
    // A least-privilege account: the demoted primary refuses its writes
    // with error 1290.
    let mut pair = failover_pair("recheck", "").await;
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
    let mut client = gateway.client().await;
    execute(&mut client, "INSERT INTO t VALUES (1)", vec![])
        .await
        .expect("a write goes to the primary");
    assert_eq!(count_on(&pair.primary, "SELECT COUNT(*) FROM t").await, 1);

    // Demoted and replaced: the first write after the switch is refused by
    // the old primary (1290, nothing ran), which makes the gateway check at
    // once, find the new primary, and run the write there: it succeeds.
    promote_replica(&pair).await;
    let promoted = Instant::now();
    execute(&mut client, "INSERT INTO t VALUES (2)", vec![])
        .await
        .expect("the write refused by the demoted primary runs on the new one");
    println!(
        "promotion to a successful write (refused once, run again): {:?}",
        promoted.elapsed()
    );
    assert!(promoted.elapsed() < Duration::from_secs(5));
    assert_eq!(
        count_on(&pair.replica, "SELECT COUNT(*) FROM t WHERE id = 2").await,
        1
    );
    assert_eq!(
        count_on(&pair.primary, "SELECT COUNT(*) FROM t WHERE id = 2").await,
        0
    );
    // The new primary dies while the old one stays read-only: the first
    // call fails on its broken connection, and the calls of a storm that
    // follows all hear that no server is writable. They ask for checks;
    // the gateway runs them one at a time, at most one per 100 ms.
    pair.replica.kill();
    let before = (checks(metrics_port), Instant::now());
    let storm: Vec<_> = (0..8)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut codes = Vec::new();
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(1) {
                    let status = execute(&mut client, "INSERT INTO t VALUES (4)", vec![])
                        .await
                        .expect_err("no server is writable");
                    codes.push((status.code(), reason(&status)));
                }
                codes
            })
        })
        .collect();
    let mut codes = Vec::new();
    for client in storm {
        codes.push(client.await.unwrap());
    }
    let (checked, took) = (checks(metrics_port) - before.0, before.1.elapsed());
    println!(
        "{} failing calls in {took:?} made {checked} checks",
        codes.iter().map(Vec::len).sum::<usize>()
    );
    assert!(checked >= 1.0, "the failures made the gateway check");
    let most = (took.as_millis() / 100) as f64 + 2.0;
    assert!(checked <= most, "{checked} checks in {took:?}");
    // Each client's calls fail on the dead server until a check finds it
    // gone (a few, within the rate limit's gap), then hear that no server
    // is writable, for good.
    for calls in &codes {
        let first = calls
            .iter()
            .position(|(_, reason)| reason == "NO_WRITABLE_PRIMARY")
            .unwrap_or_else(|| panic!("calls hear that no server is writable: {calls:?}"));
        assert!(
            calls[..first]
                .iter()
                .all(|(code, _)| matches!(code, Code::Unavailable | Code::Unknown)),
            "{calls:?}"
        );
        assert!(
            calls[first..]
                .iter()
                .all(|(code, reason)| *code == Code::Unavailable && reason == "NO_WRITABLE_PRIMARY"),
            "{calls:?}"
        );
    }

    // The operator makes the old primary writable again: the next calls'
    // re-checks find it, long before the interval.
    on(&pair.primary, "SET GLOBAL read_only = 0").await;
    let writable = Instant::now();
    let resumed = eventually(Duration::from_secs(5), || {
        insert(&client, 5, |result| result.is_ok())
    })
    .await;
    println!(
        "old primary writable to a successful write: {:?}",
        writable.elapsed()
    );
    assert!(resumed, "writes resume on the old primary");
    assert_eq!(
        count_on(&pair.primary, "SELECT COUNT(*) FROM t WHERE id = 5").await,
        1
    );
    gateway.stop().await;
}
