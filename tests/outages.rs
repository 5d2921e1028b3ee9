//! The database going away and coming back, and the gateway shutting down
//! on SIGTERM. These tests start database servers (and gateway processes) of
//! their own, because they kill them.
mod common;

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::*;
use sqlgate::{
    api::{BeginRequest, CommitRequest, ExecuteRequest, database_client::DatabaseClient},
    config::Config,
    server::Gateway,
};
use tokio_stream::StreamExt;
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Waits (up to `within`) until the health service reports `wanted`.
async fn health_becomes(channel: &Channel, wanted: ServingStatus, within: Duration) -> bool {
    let mut health = HealthClient::new(channel.clone());
    let watch = async {
        let mut updates = health
            .watch(HealthCheckRequest {
                service: "sqlgate.v1.Database".into(),
            })
            .await
            .ok()?
            .into_inner();
        while let Some(Ok(update)) = updates.next().await {
            if update.status == wanted as i32 {
                return Some(());
            }
        }
        None
    };
    matches!(tokio::time::timeout(within, watch).await, Ok(Some(())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_can_go_away_and_come_back() {
    let mut server = private_server("outage");
    let mut config = Config::for_database_url(server.url("sqlgate"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.pool.allow_admin_account = true; // the test server's root
    config.pool.acquire_timeout = Duration::from_secs(2);
    let gateway = Gateway::start(config).await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", gateway.local_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = DatabaseClient::new(channel.clone());
    assert!(health_becomes(&channel, ServingStatus::Serving, Duration::from_secs(10)).await);
    execute(&mut client, "CREATE TABLE t (id INT PRIMARY KEY)", vec![])
        .await
        .unwrap();
    let open = client
        .begin(BeginRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transaction_id;

    server.kill();
    // Calls fail fast with UNAVAILABLE: no hang, no panic.
    for _ in 0..5 {
        let started = Instant::now();
        let status = execute(&mut client, "SELECT 1", vec![]).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert!(health_becomes(&channel, ServingStatus::NotServing, Duration::from_secs(10)).await);
    // The open transaction's connection died with the server.
    let status = client
        .execute(ExecuteRequest {
            sql: "INSERT INTO t VALUES (1)".into(),
            transaction_id: open.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let later = client
        .commit(CommitRequest {
            transaction_id: open,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(later.code(), Code::Aborted, "{later:?}");

    server.restart().unwrap();
    assert!(health_becomes(&channel, ServingStatus::Serving, Duration::from_secs(10)).await);
    // New work succeeds without restarting the gateway (stale pooled
    // connections may fail once each; a client retries UNAVAILABLE). A
    // write that fails here was not applied (it is never UNKNOWN: a pooled
    // connection is checked when taken, and the gateway knows no statement
    // was sent on one found dead), or the retry would find its row.
    let mut succeeded = false;
    for _ in 0..40 {
        match execute(&mut client, "INSERT INTO t VALUES (2)", vec![]).await {
            Ok(_) => {
                succeeded = true;
                break;
            }
            Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        }
    }
    assert!(succeeded, "the gateway did not recover");
    let tx = client
        .begin(BeginRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    client
        .commit(CommitRequest {
            transaction_id: tx,
            ..Default::default()
        })
        .await
        .unwrap();
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_connection_dies_has_an_unknown_outcome() {
    let mut server = private_server("commit");
    let mut config = Config::for_database_url(server.url("sqlgate"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.pool.allow_admin_account = true; // the test server's root
    let gateway = Gateway::start(config).await.unwrap();
    let mut client = DatabaseClient::connect(format!("http://{}", gateway.local_addr()))
        .await
        .unwrap();
    execute(&mut client, "CREATE TABLE t (id INT PRIMARY KEY)", vec![])
        .await
        .unwrap();
    let tx = client
        .begin(BeginRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    client
        .execute(ExecuteRequest {
            sql: "INSERT INTO t VALUES (1)".into(),
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Freeze the server, send COMMIT, then kill the server under it.
    let pid = server.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut committer = client.clone();
    let commit = tokio::spawn(async move {
        committer
            .commit(CommitRequest {
                transaction_id: tx,
                ..Default::default()
            })
            .await
    });
    // The COMMIT must be on the wire before the kill; there is no signal to
    // wait for from a frozen server, so give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    let status = commit.await.unwrap().unwrap_err();
    assert_outcome_unknown(&status);
    gateway.shut_down().await;
}

async fn run_direct(url: &str, sql: &str) {
    use mysql_async::prelude::Queryable;
    let mut conn = mysql_async::Conn::from_url(url).await.unwrap();
    conn.query_drop(sql).await.unwrap();
    conn.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_exits_cleanly() {
    let (_, url) = fresh_database().await;
    run_direct(&url, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    let process = GatewayProcess::start(["--database-url", &url, "--shutdown-grace", "10s"], &[]);
    let channel = Channel::from_shared(format!("http://{}", process.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = DatabaseClient::new(channel.clone());
    assert!(health_becomes(&channel, ServingStatus::Serving, Duration::from_secs(10)).await);
    let tx = client
        .begin(BeginRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    let mut slow = client.clone();
    let in_flight =
        tokio::spawn(async move { execute(&mut slow, "SELECT SLEEP(1)", vec![]).await });

    process.signal("-TERM");
    assert!(health_becomes(&channel, ServingStatus::NotServing, Duration::from_secs(2)).await);
    let refused = client.begin(BeginRequest::default()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    assert_eq!(error_info(&refused).0, "SHUTTING_DOWN");
    // The call in flight finishes, and the open transaction may still commit.
    in_flight
        .await
        .unwrap()
        .expect("the call in flight finishes");
    client
        .execute(ExecuteRequest {
            sql: "INSERT INTO t VALUES (1)".into(),
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .commit(CommitRequest {
            transaction_id: tx,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(query_i64(&url, "SELECT COUNT(*) FROM t").await, Some(1));
    // With no transaction left, it exits at once, with status 0.
    let (code, took) = process.exit(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(8), "exit took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_rolls_back_what_is_left_after_the_grace_period() {
    let (database, url) = fresh_database().await;
    run_direct(&url, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    let process = GatewayProcess::start(["--database-url", &url, "--shutdown-grace", "1s"], &[]);
    let mut client = DatabaseClient::connect(format!("http://{}", process.address))
        .await
        .unwrap();
    let tx = client
        .begin(BeginRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    client
        .execute(ExecuteRequest {
            sql: "INSERT INTO t VALUES (1)".into(),
            transaction_id: tx,
            ..Default::default()
        })
        .await
        .unwrap();
    // A client that keeps a stream open and never reads it does not hold
    // the exit up either.
    let _stalled = client
        .execute_stream(ExecuteRequest {
            sql: "SELECT seq FROM seq_1_to_10000000".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    process.signal("-INT");
    let (code, took) = process.exit(Duration::from_secs(15)).await;
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(1 + 8), "exit took {took:?}");
    // The abandoned transaction was rolled back, and no connection remains.
    assert_eq!(query_i64(&url, "SELECT COUNT(*) FROM t").await, Some(0));
    // (The server notices closed connections a moment after the exit.)
    let leftover = format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{database}' AND ID <> CONNECTION_ID()"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            query_i64(&url, &leftover).await == Some(0)
        })
        .await,
        "connections of the gateway remain after its exit"
    );
}

/// Kills, from another session, the gateway's connection running the
/// statement whose text contains `marker`, once it runs.
async fn kill_connection_running(url: &str, marker: &str) {
    let running = format!(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%{marker}%' AND ID <> CONNECTION_ID()"
    );
    let started = Instant::now();
    let id = loop {
        if let Some(id) = query_i64(url, &running).await {
            break id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the statement did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    run_direct(url, &format!("KILL CONNECTION {id}")).await;
}

/// Asserts `status` says the outcome is unknown (UNKNOWN /
/// COMMIT_OUTCOME_UNKNOWN).
fn assert_outcome_unknown(status: &tonic::Status) {
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    assert_eq!(error_info(status).0, "COMMIT_OUTCOME_UNKNOWN");
}

/// Runs `sql` through the gateway in autocommit mode while its connection is
/// killed (the statement must contain `marker`); returns the error.
async fn killed_mid_statement(gateway: &TestGateway, sql: &str, marker: &str) -> tonic::Status {
    let mut client = gateway.client.clone();
    let sql = sql.to_string();
    let call = tokio::spawn(async move { execute(&mut client, &sql, vec![]).await });
    kill_connection_running(&gateway.url, marker).await;
    call.await.unwrap().expect_err("its connection was killed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autocommit_statement_whose_connection_dies_has_an_unknown_outcome() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        .await;
    gateway.direct_exec("INSERT INTO t VALUES (1, 0)").await;
    // A write killed while it runs: UNKNOWN (the gateway cannot tell whether
    // it was applied; here InnoDB rolled it back).
    let status = killed_mid_statement(
        &gateway,
        "UPDATE t SET v = v + 1 WHERE id = 1 AND SLEEP(10) = 0 /* m1 */",
        "m1 */",
    )
    .await;
    assert_outcome_unknown(&status);
    assert!(status.message().contains("autocommit"), "{status:?}");
    assert_eq!(gateway.direct_i64("SELECT v FROM t").await, Some(0));

    // A SELECT that writes through a function (to a table that is not
    // transactional): the write stays although the connection died, so an
    // UNAVAILABLE ("retry") would have been a lie.
    gateway
        .direct_exec("CREATE TABLE log (id INT) ENGINE=MyISAM")
        .await;
    gateway
        .direct_exec(
            "CREATE FUNCTION note() RETURNS INT MODIFIES SQL DATA \
             BEGIN INSERT INTO log VALUES (1); RETURN SLEEP(10); END",
        )
        .await;
    let status = killed_mid_statement(&gateway, "SELECT note() /* m2 */", "m2 */").await;
    assert_outcome_unknown(&status);
    assert_eq!(
        gateway.direct_i64("SELECT COUNT(*) FROM log").await,
        Some(1)
    );

    // The same through ExecuteStream: the stream ends with UNKNOWN.
    let mut client = gateway.client.clone();
    let call = tokio::spawn(async move {
        let mut stream = client
            .execute_stream(ExecuteRequest {
                sql: "SELECT note() /* m3 */".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        while stream.message().await?.is_some() {}
        Ok::<_, tonic::Status>(())
    });
    kill_connection_running(&gateway.url, "m3 */").await;
    let status = call.await.unwrap().expect_err("its connection was killed");
    assert_outcome_unknown(&status);
    assert_eq!(
        gateway.direct_i64("SELECT COUNT(*) FROM log").await,
        Some(2)
    );

    // The gateway goes on serving.
    let mut client = gateway.client.clone();
    execute(&mut client, "UPDATE t SET v = v + 1 WHERE id = 1", vec![])
        .await
        .unwrap();
    assert_eq!(gateway.direct_i64("SELECT v FROM t").await, Some(1));
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_session_whose_connection_dies_is_unavailable() {
    const READER: &str = "reader-token-0123456789abcdef";
    let tokens = token_file("outages-reader", &format!("{READER},alice,read-only\n"));
    let gateway =
        TestGateway::start_with(move |config| config.auth_tokens_file = Some(tokens)).await;
    let mut client = gateway.client.clone();
    let call = tokio::spawn(async move {
        let read = ExecuteRequest {
            sql: "SELECT SLEEP(10) /* m4 */".into(),
            ..Default::default()
        };
        client.execute(as_caller(READER, read)).await
    });
    kill_connection_running(&gateway.url, "m4 */").await;
    // Its READ ONLY session cannot have written: retrying is safe.
    let status = call.await.unwrap().expect_err("its connection was killed");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(error_info(&status).0, "DATABASE_UNAVAILABLE");
    gateway.shut_down().await;
}

/// The COM_QUERY packet of `COMMIT`: length 7, sequence id 0, command 3.
const COMMIT_PACKET: &[u8] = b"\x07\x00\x00\x00\x03COMMIT";

/// Starts a unix-socket proxy in front of the test's database server that,
/// when `cut` holds 1, forwards the next COMMIT (alone, or at the end of the
/// outcome's `INSERT …;COMMIT`) and closes the connection
/// (the server commits, the gateway gets no answer), and when it holds 2,
/// closes it instead of forwarding the COMMIT (the server rolls back).
/// Returns the database's URL through the proxy.
fn commit_cutting_proxy(
    name: &str,
    database: &str,
    direct_url: &str,
    cut: Arc<AtomicUsize>,
) -> String {
    judging_proxy(name, database, direct_url, move |write: &[u8]| {
        // Alone, or after the outcome's INSERT in one query (`…;COMMIT`).
        let commit = write
            .windows(COMMIT_PACKET.len())
            .any(|w| w == COMMIT_PACKET)
            || write.ends_with(b";COMMIT");
        let verdict = match commit.then(|| cut.swap(0, Ordering::SeqCst)) {
            Some(1) => Verdict::ForwardAndClose,
            Some(2) => Verdict::Close,
            _ => Verdict::Forward,
        };
        async move { verdict }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_settles_a_lost_commit_with_a_request_id_from_its_record() {
    let (database, direct_url) = fresh_database().await;
    run_direct(&direct_url, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    let cut = Arc::new(AtomicUsize::new(0));
    let url = commit_cutting_proxy("settle", &database, &direct_url, cut.clone());
    // (Its checks through the proxy too, with nothing to cut.)
    let gateway = TestGateway::start_on(database, url, |_| {}).await;
    let mut client = gateway.client.clone();
    let insert = |id: i64, request_id: &str| ExecuteRequest {
        sql: "INSERT INTO t VALUES (?)".into(),
        params: vec![int(id)],
        request_id: request_id.into(),
        ..Default::default()
    };
    // The COMMIT reached the server, its answer did not reach the gateway:
    // the record says it committed, and the call answers so.
    cut.store(1, Ordering::SeqCst);
    let answer = client
        .execute(insert(1, "settle-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cut.load(Ordering::SeqCst), 0, "the COMMIT was cut");
    assert_eq!(answer.rows_affected, 1);
    assert!(!answer.replayed);
    assert_eq!(gateway.direct_ids().await, vec![1]);
    // The COMMIT never reached the server: it rolled back, nothing was
    // committed, and the call says so (ABORTED: rerun it).
    cut.store(2, Ordering::SeqCst);
    let status = client.execute(insert(2, "settle-2")).await.unwrap_err();
    assert_eq!(cut.load(Ordering::SeqCst), 0, "the COMMIT was cut");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert_eq!(gateway.direct_ids().await, vec![1]);
    // The rerun with the same id runs it now, once.
    let answer = client
        .execute(insert(2, "settle-2"))
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.replayed);
    assert_eq!(gateway.direct_ids().await, vec![1, 2]);
    // A Commit of an interactive transaction: settled the same way, and a
    // later Commit of its id says the same (not UNKNOWN).
    for (id, cut_at, committed) in [(3, 1, true), (4, 2, false)] {
        let tx = begin_on(&mut client).await;
        client
            .execute(statement_in(&format!("INSERT INTO t VALUES ({id})"), &tx))
            .await
            .unwrap();
        cut.store(cut_at, Ordering::SeqCst);
        let commit = CommitRequest {
            transaction_id: tx.clone(),
            request_id: format!("settle-tx-{id}"),
        };
        let first = client.commit(commit).await;
        assert_eq!(cut.load(Ordering::SeqCst), 0, "the COMMIT was cut");
        let again = client
            .commit(CommitRequest {
                transaction_id: tx,
                ..Default::default()
            })
            .await;
        for answer in [first, again] {
            match committed {
                true => assert!(answer.is_ok(), "{answer:?}"),
                false => assert_eq!(answer.unwrap_err().code(), Code::Aborted),
            }
        }
    }
    assert_eq!(gateway.direct_ids().await, vec![1, 2, 3]);
    gateway.shut_down().await;
}
