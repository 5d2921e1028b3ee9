//! The pool's COM_RESET_CONNECTION sent in the same write as the next command
//! on the connection (`--reset-delay`, the default): every call still starts
//! on a reset session, a connection left idle is reset after the delay (so it
//! does not keep a named lock), and a connection that dies while it owes its
//! reset fails the call that takes it: no statement ever runs on a session
//! that kept another call's state.
mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::*;
use sqlgate::{api, config::Config};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixStream,
};

/// A COM_RESET_CONNECTION packet: length 1, sequence id 0, command 0x1f.
const RESET_PACKET: [u8; 5] = [1, 0, 0, 0, 0x1f];

/// A unix-socket proxy in front of the database server that watches the
/// client's writes: it counts the resets that left in the same write as a
/// command, and those sent alone, and can cut a connection at its next
/// pipelined reset.
struct Proxy {
    /// The URL of the test's database through the proxy.
    url: String,
    /// Writes that start with a reset followed by a command.
    pipelined: Arc<AtomicUsize>,
    /// Writes that are a reset alone, on connections that also sent resets
    /// with commands (not the gateway's control connections, whose pool
    /// resets them as they come back).
    alone: Arc<AtomicUsize>,
    /// At the next pipelined reset: 1 cuts the client off after forwarding
    /// the whole write, 2 after forwarding the reset only.
    cut: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(name: &str, database: &str, direct_url: &str) -> Proxy {
        let (server, listener, url) = proxy_listener(name, database, direct_url);
        let proxy = Proxy {
            url,
            pipelined: Arc::default(),
            alone: Arc::default(),
            cut: Arc::default(),
        };
        let (pipelined, alone, cut) = (
            proxy.pipelined.clone(),
            proxy.alone.clone(),
            proxy.cut.clone(),
        );
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = UnixStream::connect(&server).await else {
                    continue;
                };
                let counters = (pipelined.clone(), alone.clone(), cut.clone());
                tokio::spawn(relay(client, server, counters));
            }
        });
        proxy
    }
}

/// Relays one connection until either side closes it, or it is cut.
async fn relay(
    client: UnixStream,
    server: UnixStream,
    (pipelined, alone, cut): (Arc<AtomicUsize>, Arc<AtomicUsize>, Arc<AtomicUsize>),
) -> std::io::Result<()> {
    let (mut client_in, mut client_out) = client.into_split();
    let (mut server_in, mut server_out) = server.into_split();
    let (mut up, mut down) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut pipelines = false;
    loop {
        tokio::select! {
            n = client_in.read(&mut up) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                let write = &up[..n];
                let resets = write.starts_with(&RESET_PACKET);
                if resets && n == RESET_PACKET.len() && pipelines {
                    alone.fetch_add(1, Ordering::SeqCst);
                }
                if resets && n > RESET_PACKET.len() {
                    pipelines = true;
                    pipelined.fetch_add(1, Ordering::SeqCst);
                    match cut.swap(0, Ordering::SeqCst) {
                        1 => {
                            server_out.write_all(write).await?;
                            return Ok(());
                        }
                        2 => {
                            server_out.write_all(&RESET_PACKET).await?;
                            return Ok(());
                        }
                        _ => {}
                    }
                }
                server_out.write_all(write).await?;
            }
            n = server_in.read(&mut down) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                client_out.write_all(&down[..n]).await?;
            }
        }
    }
}

/// One connection (so that every call runs on the same session until it
/// dies), resets deferred by `delay`.
fn one_connection(delay: Duration) -> impl FnOnce(&mut Config) {
    move |config| {
        config.pool.min = 0;
        config.pool.max = 1;
        config.transactions.max_open = 0;
        config.pool.reset_delay = delay;
    }
}

/// Long enough that no background reset happens during a test: every reset
/// is the one sent with the next command.
const NEVER: Duration = Duration::from_secs(600);

/// The single value of a one-row, one-column result (`None` for NULL).
fn only_value(response: &api::ExecuteResponse) -> Option<String> {
    text_of(&response.rows[0].values[0])
}

/// Two connections, one of them for a transaction.
fn room_for_a_transaction(config: &mut Config) {
    config.pool.min = 0;
    config.pool.max = 2;
    config.transactions.max_open = 1;
    config.pool.reset_delay = NEVER;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_starts_on_a_reset_session() {
    // A server of its own: its global counters count this gateway's calls.
    let server = private_server("deferred-reset");
    let url = server.url("sqlgate");
    let proxy = Proxy::start("deferred-reset", "sqlgate", &url).await;
    let gateway =
        TestGateway::start_on("sqlgate".into(), proxy.url.clone(), one_connection(NEVER)).await;
    gateway.direct_exec("CREATE TABLE t (id INT)").await;
    gateway.direct_exec("INSERT INTO t VALUES (1)").await;
    let mut client = gateway.client.clone();
    execute(&mut client, "SELECT 1", vec![]).await.unwrap();

    let (resets_before, prepares_before) = reset_and_prepare_counters(&url).await;
    let pipelined_before = proxy.pipelined.load(Ordering::SeqCst);
    let rounds = 20;
    for i in 0..rounds {
        execute(&mut client, "SET @x = ?", vec![int(i)])
            .await
            .unwrap();
        let x = execute(&mut client, "SELECT @x + ?", vec![int(1)])
            .await
            .unwrap();
        assert_eq!(
            only_value(&x),
            None,
            "round {i}: @x does not survive the call"
        );
        execute(&mut client, "CREATE TEMPORARY TABLE t (id INT)", vec![])
            .await
            .unwrap();
        // The real table (one row), not the empty temporary one.
        let rows = execute(&mut client, "SELECT COUNT(*) FROM t", vec![])
            .await
            .unwrap();
        assert_eq!(
            only_value(&rows),
            Some("1".into()),
            "round {i}: the temporary table died with its call's session"
        );
    }
    let (resets_after, prepares_after) = reset_and_prepare_counters(&url).await;
    let calls = 4 * rounds as u64;
    // One reset per call, each sent with the next call's first command (the
    // last call's is still owed): none in a background round trip.
    let resets = resets_after - resets_before;
    assert!(
        (calls - 1..=calls).contains(&resets),
        "{resets} resets for {calls} calls"
    );
    let pipelined = (proxy.pipelined.load(Ordering::SeqCst) - pipelined_before) as u64;
    assert_eq!(pipelined, calls, "resets sent with a command");
    assert_eq!(proxy.alone.load(Ordering::SeqCst), 0, "resets sent alone");
    // A reset drops the server's prepared statements: the driver knew. (The
    // two writes of each round are prepared again; the reads may go as text,
    // `--text-protocol auto`, which prepares nothing.)
    assert!(
        prepares_after - prepares_before >= 2 * rounds as u64,
        "{} prepares for {calls} calls",
        prepares_after - prepares_before
    );
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_does_not_keep_a_named_lock_for_long() {
    for (delay, idle_keeps_it) in [(Duration::from_millis(20), false), (NEVER, true)] {
        let gateway = TestGateway::start_with(one_connection(delay)).await;
        let lock = format!("{}_lock", gateway.database);
        // Behind a view, as a client could hide it from the guard.
        gateway
            .direct_exec(&format!(
                "CREATE VIEW vlock AS SELECT GET_LOCK('{lock}', 0) AS g"
            ))
            .await;
        let mut client = gateway.client.clone();
        let taken = execute(&mut client, "SELECT g FROM vlock", vec![])
            .await
            .unwrap();
        assert_eq!(only_value(&taken), Some("1".into()));
        let held = format!("SELECT IS_USED_LOCK('{lock}')");
        let released = eventually(Duration::from_secs(5), || async {
            gateway.direct_i64(&held).await.is_none()
        });
        if idle_keeps_it {
            // Nothing but the next command resets it...
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                gateway.direct_i64(&held).await.is_some(),
                "an idle connection owing its reset keeps the lock until it is used"
            );
            // ... which it does before that command runs.
            let mine = execute(
                &mut client,
                &format!("SELECT IS_USED_LOCK('{lock}') = CONNECTION_ID()"),
                vec![],
            )
            .await
            .unwrap();
            assert_eq!(only_value(&mine), None, "the next call does not hold it");
            assert!(released.await, "released by the next call's reset");
        } else {
            assert!(released.await, "released by the background reset");
        }
        gateway.shut_down().await;
    }
}

/// A connection taken again before its deferred reset is due owes the reset
/// of its latest return, due a delay after that return: the background reset
/// armed at an earlier return does not act on it. (It did: a connection in
/// steady use was reset in a round trip of its own whenever the timer of an
/// earlier return found it idle between two calls.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_in_steady_use_is_not_reset_alone() {
    let delay = Duration::from_millis(800);
    let (database, url) = fresh_database().await;
    let proxy = Proxy::start("steady-reset", &database, &url).await;
    let gateway = TestGateway::start_on(database, proxy.url.clone(), one_connection(delay)).await;
    let mut client = gateway.client.clone();
    // A call every third of the delay: each return's timer falls due while
    // the connection idles between two later calls, owing a later reset.
    let mut calls = Vec::new();
    for _ in 0..12 {
        let start = std::time::Instant::now();
        execute(&mut client, "SELECT 1", vec![]).await.unwrap();
        calls.push((start, std::time::Instant::now()));
        tokio::time::sleep(delay / 3).await;
    }
    let alone = proxy.alone.load(Ordering::SeqCst);
    // The connection idled at most from a call's start to the next call's
    // end: where that was longer than the delay (a stalled machine), it was
    // rightly reset alone.
    let idle_spells_over_the_delay = calls
        .windows(2)
        .filter(|pair| pair[1].1 - pair[0].0 >= delay)
        .count();
    assert!(
        alone <= idle_spells_over_the_delay,
        "{alone} resets sent alone in steady use ({idle_spells_over_the_delay} idle spells over the delay)"
    );
    assert!(
        proxy.pipelined.load(Ordering::SeqCst) >= 11 - alone,
        "the other calls took their resets with them"
    );
    // Left idle, it is reset in the background once, a delay after its last
    // return.
    assert!(
        eventually(Duration::from_secs(10), || async {
            proxy.alone.load(Ordering::SeqCst) > alone
        })
        .await,
        "the idle connection is reset alone"
    );
    assert_eq!(proxy.alone.load(Ordering::SeqCst), alone + 1);
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_at_its_pipelined_reset_fails_the_call() {
    let (database, url) = fresh_database().await;
    let proxy = Proxy::start("cut-reset", &database, &url).await;
    let gateway = TestGateway::start_on(database, proxy.url.clone(), one_connection(NEVER)).await;
    let mut client = gateway.client.clone();
    // 1: the server got the reset and the command, the client no reply;
    // 2: the server got the reset only.
    for cut in [1, 2] {
        execute(&mut client, "SET @x = 'secret'", vec![])
            .await
            .unwrap();
        proxy.cut.store(cut, Ordering::SeqCst);
        let status = execute(&mut client, "SELECT @x", vec![])
            .await
            .expect_err("the reset's failure is the call's");
        // The command left with the reset: in 1 the server ran it, and the
        // gateway cannot tell 1 from 2 (a missing reset reply proves nothing
        // through a proxy), nor a read from a write by its text: UNKNOWN.
        assert_eq!(status.code(), tonic::Code::Unknown, "{status:?}");
        assert_eq!(reason(&status), "COMMIT_OUTCOME_UNKNOWN");
        assert_eq!(
            proxy.cut.load(Ordering::SeqCst),
            0,
            "cut at the pipelined reset"
        );
        // The broken connection is gone; the next one starts clean.
        let x = execute(&mut client, "SELECT @x", vec![]).await.unwrap();
        assert_eq!(only_value(&x), None, "cut {cut}");
    }
    // A connection killed while idle (owing its reset) is found dead when
    // taken, and replaced: the call runs on a fresh session.
    let id = execute(&mut client, "SELECT CONNECTION_ID()", vec![])
        .await
        .unwrap();
    let id = only_value(&id).unwrap();
    execute(&mut client, "SET @x = 'secret'", vec![])
        .await
        .unwrap();
    gateway.direct_exec(&format!("KILL {id}")).await;
    let x = execute(&mut client, "SELECT @x", vec![]).await;
    if let Ok(x) = x {
        assert_eq!(only_value(&x), None);
    }
    let x = execute(&mut client, "SELECT @x, CONNECTION_ID()", vec![])
        .await
        .unwrap();
    assert_eq!(only_value(&x), None);
    let new_id = text_of(&x.rows[0].values[1]).unwrap();
    assert_ne!(new_id, id);
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_begins_on_a_reset_session() {
    let gateway = TestGateway::start_with(room_for_a_transaction).await;
    gateway.direct_exec("CREATE TABLE t (id INT)").await;
    let mut client = gateway.client.clone();
    for round in 0..5 {
        // Whichever connection the transaction takes has served one of
        // these (the pool hands out the last returned first) and owes a reset.
        for _ in 0..2 {
            execute(&mut client, "SET @x = 'secret'", vec![])
                .await
                .unwrap();
        }
        let tx = begin(&gateway, None).await;
        let x = execute_in(&gateway, &tx, "SELECT @x", vec![])
            .await
            .unwrap();
        assert_eq!(only_value(&x), None, "round {round}");
        execute_in(&gateway, &tx, "INSERT INTO t VALUES (?)", vec![int(round)])
            .await
            .unwrap();
        commit(&gateway, &tx).await.unwrap();
    }
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(5));
    gateway.shut_down().await;
}

/// MariaDB's prepare and execute in one write (the first statement after a
/// reset): a prepare that fails fails the call with the server's error, runs
/// nothing (not an earlier statement of the session either), and leaves the
/// connection in step for the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pipelined_prepare_runs_nothing_and_keeps_the_connection() {
    let gateway = TestGateway::start_with(one_connection(NEVER)).await;
    gateway.direct_exec("CREATE TABLE t (id INT)").await;
    let mut client = gateway.client.clone();
    let id = execute(&mut client, "SELECT CONNECTION_ID()", vec![])
        .await
        .unwrap();
    let id = only_value(&id).unwrap();
    execute(&mut client, "INSERT INTO t VALUES (?)", vec![int(1)])
        .await
        .unwrap();
    for (sql, params, code) in [
        (
            "INSERT INTO nosuch VALUES (?)",
            vec![int(2)],
            tonic::Code::NotFound,
        ),
        (
            "INSERT INTO t VALUES (?) garbage ?",
            vec![int(2), int(3)],
            tonic::Code::InvalidArgument,
        ),
        (
            "SELECT nosuch FROM t WHERE id = ?",
            vec![int(2)],
            tonic::Code::NotFound,
        ),
    ] {
        let status = execute(&mut client, sql, params).await.expect_err(sql);
        assert_eq!(status.code(), code, "{sql}: {status:?}");
        // The same session answers the next call, in step.
        let same = execute(&mut client, "SELECT CONNECTION_ID() + ?", vec![int(0)])
            .await
            .unwrap();
        assert_eq!(only_value(&same), Some(id.clone()), "after {sql}");
    }
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(1));
    gateway.shut_down().await;

    // In a transaction, the first statement is prepared and executed in one
    // write; a later failed prepare does not run it again.
    let gateway = TestGateway::start_with(room_for_a_transaction).await;
    gateway.direct_exec("CREATE TABLE t (id INT)").await;
    gateway.direct_exec("INSERT INTO t VALUES (1)").await;
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "INSERT INTO t VALUES (?)", vec![int(10)])
        .await
        .unwrap();
    let status = execute_in(
        &gateway,
        &tx,
        "INSERT INTO nosuch VALUES (?)",
        vec![int(11)],
    )
    .await
    .expect_err("no such table");
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(
        gateway.direct_i64("SELECT COUNT(*) FROM t").await,
        Some(1),
        "only the autocommit row is committed so far"
    );
    let _ = rollback(&gateway, &tx).await;
    assert_eq!(
        gateway.direct_i64("SELECT COUNT(*) FROM t").await,
        Some(1),
        "no statement ran twice"
    );
    gateway.shut_down().await;
}
