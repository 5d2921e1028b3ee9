//! A gateway that follows the primary: `--database-url` names a primary and
//! its replica (real GTID replication), the operator promotes the replica,
//! and the gateway writes to the new primary, never to the old one.
mod common;

use std::time::{Duration, Instant};

use common::*;
use sqlgate::{
    api::{self, ReadConsistency, database_client::DatabaseClient, read_consistency::Bound},
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
    // Both named `localhost`: each check resolves the name again, and every
    // address it has is a server (127.0.0.1 here; ::1 too where /etc/hosts
    // says so, which the servers do not listen on: unreachable, skipped).
    let url = servers_url("gw", "gw-pass", &[replica, primary]).replace("127.0.0.1", "localhost");
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
    // The servers they name are the addresses `localhost` resolved to.
    let status = execute(&mut client, "INSERT INTO t VALUES (1000)", vec![])
        .await
        .unwrap_err();
    for server in [primary, replica] {
        let address = format!("127.0.0.1:{}", server.tcp_port().unwrap());
        assert!(status.message().contains(&address), "{status:?}");
    }
    assert!(!status.message().contains("localhost"), "{status:?}");
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

/// With a check interval far longer than the test: only the re-checks that
/// failing calls ask for can make the gateway follow the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_calls_make_the_gateway_check_the_primary_at_once_but_not_too_often() {
    // A least-privilege account: the demoted primary refuses its writes
    // with error 1290.
    let mut pair = failover_pair("recheck", "").await;
    let (gateway, metrics_port) = gateway_checking_only_when_asked(&pair);
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
    let before = (primary_checks(metrics_port), Instant::now());
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
    let (checked, took) = (primary_checks(metrics_port) - before.0, before.1.elapsed());
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

const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-0123456789abcdef";

/// Runs `request` as the principal of `token`.
async fn execute_as(
    client: &DatabaseClient<Channel>,
    token: &str,
    request: api::ExecuteRequest,
) -> Result<api::ExecuteResponse, tonic::Status> {
    let mut client = client.clone();
    client
        .execute(as_caller(token, request))
        .await
        .map(|r| r.into_inner())
}

/// Two principals mapped to database accounts of their own
/// (`--database-accounts-file`) across a switch: each principal's pool
/// moves to the new primary, where its writes land under its own account;
/// a transaction each had open on the old primary ends ABORTED; and none
/// of their connections stays on the old primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_with_their_own_accounts_follow_the_primary() {
    let pair = failover_pair("accounts", "").await;
    let ReplicatedPair { primary, replica } = &pair;
    on(
        primary,
        "CREATE TABLE app.who (id INT PRIMARY KEY, account VARCHAR(200))",
    )
    .await;
    for user in ["alice_db", "bob_db"] {
        on(
            primary,
            &format!("CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{user}-pw'"),
        )
        .await;
        on(
            primary,
            &format!("GRANT SELECT, INSERT ON app.* TO '{user}'@'127.0.0.1'"),
        )
        .await;
    }
    caught_up(&pair).await;
    let tokens = token_file(
        "failover-accounts",
        &format!("{ALICE},alice,read-write\n{BOB},bob,read-write\n"),
    );
    let accounts = private_file(
        "failover-accounts",
        "alice_db alice_db-pw alice\nbob_db bob_db-pw bob\n",
    );
    let url = servers_url("gw", "gw-pass", &[primary, replica]);
    let gateway = TestGateway::start_on("app".into(), url, |config| {
        config.database.replicas.primary_check_interval = CHECK_INTERVAL;
        config.auth_tokens_file = Some(tokens);
        config.database.accounts_file = Some(accounts);
    })
    .await;
    let client = gateway.client.clone();
    let principals = [(ALICE, "alice_db", 0), (BOB, "bob_db", 100)];
    let write = |token: &'static str, id: i64| {
        let client = client.clone();
        async move {
            execute_as(
                &client,
                token,
                statement_in(
                    &format!("INSERT INTO who VALUES ({id}, CURRENT_USER())"),
                    "",
                ),
            )
            .await
        }
    };
    let mut open = Vec::new();
    for (token, _, base) in principals {
        write(token, base + 1).await.expect("writes to the primary");
        let begun = execute_as(
            &client,
            token,
            api::ExecuteRequest {
                sql: format!("INSERT INTO who VALUES ({}, CURRENT_USER())", base + 2),
                begin: Some(Default::default()),
                ..Default::default()
            },
        )
        .await
        .expect("begins on the primary");
        open.push((token, begun.transaction_id));
    }
    assert_eq!(
        count_on(primary, "SELECT COUNT(*) FROM who WHERE id IN (1, 101)").await,
        2
    );

    promote_replica(&pair).await;
    for (token, account, base) in principals {
        // The first write may still go to the old primary, which refuses it
        // (1290): it runs again on the new primary.
        let moved = eventually(Duration::from_secs(5), || async move {
            write(token, base + 3).await.is_ok()
        })
        .await;
        assert!(moved, "{account}'s writes reach the new primary");
        assert_eq!(
            count_on(
                replica,
                &format!(
                    "SELECT COUNT(*) FROM who WHERE id = {} AND account = '{account}@127.0.0.1'",
                    base + 3
                )
            )
            .await,
            1,
            "{account}'s write is on the new primary, under its own account"
        );
    }
    // The transactions open on the old primary end ABORTED, nothing of them
    // anywhere.
    for (token, id) in &open {
        let status = execute_as(&client, token, statement_in("SELECT 1", id))
            .await
            .expect_err("the transaction on the old primary is over");
        assert_eq!(status.code(), Code::Aborted, "{status:?}");
        assert_eq!(reason(&status), "TRANSACTION_ABORTED");
    }
    for server in [primary, replica] {
        assert_eq!(
            count_on(server, "SELECT COUNT(*) FROM who WHERE id IN (2, 102)").await,
            0
        );
    }
    // None of the principals' connections stays on the old primary.
    let gone = eventually(Duration::from_secs(5), || async {
        count_on(
            primary,
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER IN ('alice_db', 'bob_db')",
        )
        .await
            == 0
    })
    .await;
    assert!(
        gone,
        "the principals' connections to the old primary are closed"
    );
    assert_eq!(
        count_on(primary, "SELECT COUNT(*) FROM who WHERE id IN (3, 103)").await,
        0
    );
    gateway.shut_down().await;
}

/// (v of row `id` of `r`, the server id that answered) for a read that may
/// go to a replica as `bound` allows, and how long it took.
async fn read_v(
    client: &DatabaseClient<Channel>,
    id: i64,
    bound: Bound,
) -> ((Option<i64>, i64), Duration) {
    let started = Instant::now();
    let response = execute_as(
        client,
        "",
        api::ExecuteRequest {
            sql: format!("SELECT (SELECT v FROM r WHERE id = {id}), @@server_id"),
            read_consistency: Some(ReadConsistency { bound: Some(bound) }),
            ..Default::default()
        },
    )
    .await
    .expect("the read is served");
    let int = |value: &api::Value| text_of(value).map(|v| v.parse::<i64>().unwrap());
    let row = &response.rows[0].values;
    (
        (int(&row[0]), int(&row[1]).expect("a server id")),
        started.elapsed(),
    )
}

/// Replica reads across a switch (`--replica-url` naming the replica that
/// gets promoted): reads with a commit token of the new primary neither
/// wait out --replica-wait on the promoted server (`MASTER_GTID_WAIT` waits
/// on `@@gtid_slave_pos`, which its own writes do not advance) nor miss the
/// write, and the promoted server leaves the replica rotation at once,
/// although replicas are checked only once an hour here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_reads_keep_working_when_the_replica_is_promoted() {
    let pair = failover_pair("replica-switch", "").await;
    let ReplicatedPair { primary, replica } = &pair;
    on(primary, "CREATE TABLE app.r (id INT PRIMARY KEY, v INT)").await;
    caught_up(&pair).await;
    let url = servers_url("gw", "gw-pass", &[primary, replica]);
    let replica_url = servers_url("gw", "gw-pass", &[replica]);
    const WAIT: Duration = Duration::from_secs(3);
    let gateway = TestGateway::start_on("app".into(), url, move |config| {
        config.database.replicas.primary_check_interval = CHECK_INTERVAL;
        config.database.replica_urls = vec![replica_url];
        config.database.replicas.check_interval = Duration::from_secs(3600);
        config.database.replicas.wait = WAIT;
    })
    .await;
    let client = gateway.client.clone();
    let write = |id: i64| {
        let mut client = client.clone();
        async move {
            execute(
                &mut client,
                &format!("INSERT INTO r VALUES ({id}, {id}0)"),
                vec![],
            )
            .await
        }
    };
    let before = write(1).await.expect("writes to the primary").commit_token;
    assert!(before.starts_with("0-1-"), "{before}");
    let ((v, _), _) = read_v(&client, 1, Bound::MinCommitToken(before.clone())).await;
    assert_eq!(v, Some(10), "a read with the token sees the write");
    let ((_, server), _) = read_v(&client, 1, staleness(60)).await;
    assert_eq!(server, 2, "the replica serves reads that allow it");

    promote_replica(&pair).await;
    let moved = eventually(Duration::from_secs(5), || async {
        execute(&mut client.clone(), "INSERT INTO r VALUES (2, 20)", vec![])
            .await
            .is_ok()
    })
    .await;
    assert!(moved, "writes reach the new primary");
    let after = write(3)
        .await
        .expect("writes to the new primary")
        .commit_token;
    assert!(
        after.starts_with("0-2-"),
        "issued by the new primary: {after}"
    );
    // Tokens of both primaries are honoured, without waiting out
    // --replica-wait, by the promoted server as the primary.
    for (id, token, v) in [(3, &after, 30), (1, &before, 10)] {
        let ((read, server), took) =
            read_v(&client, id, Bound::MinCommitToken(token.clone())).await;
        assert_eq!(read, Some(v), "a read with {token} sees its write");
        assert_eq!(server, 2);
        assert!(took < WAIT / 2, "read with {token} took {took:?}");
    }
    // Reads that allow a replica still work, on the new primary: the
    // promoted server is no replica any more, and the old primary is none.
    let ((v, server), took) = read_v(&client, 3, staleness(60)).await;
    assert_eq!((v, server), (Some(30), 2));
    assert!(took < WAIT / 2, "{took:?}");
    gateway.shut_down().await;
}

fn staleness(seconds: i64) -> Bound {
    Bound::MaxStaleness(prost_types::Duration { seconds, nanos: 0 })
}
