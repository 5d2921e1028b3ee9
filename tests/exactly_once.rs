//! Exactly-once transfers through a gateway crash and a primary failover
//! (issue 23): a primary and its replica with real GTID replication, both
//! named in one multi-host `--database-url`; a fleet of two gateway
//! processes; 32 clients running transfers, each committed with a request
//! id and rerun with the same id on every retryable status, while the test
//! (a) SIGKILLs a gateway that owns transactions (and starts it again),
//! (b) SIGKILLs the primary during commits and promotes the replica, and
//! (c) starts the old primary again, read-only.
//!
//! What is counted. A client considers a transfer done when a Commit with
//! its request id answers OK (run now, or `replayed`). Replication is
//! semi-synchronous (`AFTER_SYNC`), as a failover setup that promises no
//! lost commits runs it, and the replica applies everything it received
//! before it is promoted: a commit answered OK is on the new primary. A
//! transaction that committed on the old primary but whose answer was lost
//! (COMMIT in flight at the SIGKILL) may be missing on the new primary: it
//! is lost with the old primary's history, and the client's retry with its
//! request id runs it again on the new primary — it is applied once in the
//! surviving history, which is what the assertions check, on the new
//! primary only: per-account balances equal the initial ones moved by
//! exactly the done transfers, the ledger has one row per done transfer,
//! the outcomes table one record per request id, and no client is left with
//! an unresolved UNKNOWN. The old primary, back read-only (the gateway's
//! account holds READ_ONLY ADMIN, so only the gateway's choice of server
//! keeps writes off it), is never written to again; what it committed that
//! the new primary lacks (read from its ledger) was run again there.
//!
//! The clients do what a careful client does: they route around a gateway
//! that does not answer, and roll back a failed attempt's transaction (a
//! Commit sent through an instance that died never reached the owner: the
//! transaction would hold its locks until `--tx-idle-timeout`).
mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::*;
use mysql_async::prelude::Queryable;
use sqlgate::{
    api::{
        BeginRequest, CommitRequest, ExecuteRequest, RollbackRequest,
        database_client::DatabaseClient,
    },
    embedded::{EmbeddedDatabase, ReplicatedPair},
};
use tonic::{Code, transport::Channel};

const CLIENTS: usize = 32;
const ACCOUNTS: i64 = 64;
const INITIAL_BALANCE: i64 = 1_000_000;
/// Transfers done between two steps of the test (a few seconds of load).
const LOAD: usize = 150;
/// How long a phase may take to see its load done.
const PHASE: Duration = Duration::from_secs(20);
/// How long a client may keep retrying one transfer.
const GIVE_UP: Duration = Duration::from_secs(30);

/// Reads rows of (text, integer) as root in `app` on `server`.
async fn pairs(server: &EmbeddedDatabase, sql: &str) -> Vec<(String, i64)> {
    let mut conn = mysql_async::Conn::from_url(server.url("app"))
        .await
        .unwrap();
    let rows = conn.query(sql).await.unwrap();
    conn.disconnect().await.unwrap();
    rows
}

async fn global(server: &EmbeddedDatabase, sql: &str) -> String {
    let mut conn = mysql_async::Conn::from_url(server.url("mysql"))
        .await
        .unwrap();
    let value: Option<String> = conn.query_first(sql).await.unwrap();
    conn.disconnect().await.unwrap();
    value.unwrap_or_default()
}

/// The replica's `SHOW SLAVE STATUS` field `name`; None when not a replica.
async fn slave_status(server: &EmbeddedDatabase, name: &str) -> Option<String> {
    let mut conn = mysql_async::Conn::from_url(server.url("mysql"))
        .await
        .unwrap();
    let row: Option<mysql_async::Row> = conn.query_first("SHOW SLAVE STATUS").await.unwrap();
    conn.disconnect().await.unwrap();
    row.and_then(|row| row.get_opt::<String, _>(name)?.ok())
}

/// What an orchestrator does once the primary is gone: let the replica
/// apply every transaction it received, then make it the primary.
async fn promote(replica: &EmbeddedDatabase) {
    on(replica, "STOP SLAVE IO_THREAD").await;
    let applied = eventually(Duration::from_secs(10), || async {
        slave_status(replica, "Slave_SQL_Running_State")
            .await
            .is_some_and(|state| state.contains("read all relay log"))
    })
    .await;
    assert!(applied, "the replica applies its relay log");
    on(replica, "STOP SLAVE").await;
    on(replica, "RESET SLAVE ALL").await;
    on(replica, "SET GLOBAL read_only = 0").await;
}

/// One transfer: `amount` from account `from` to account `to`, committed
/// with `request_id`.
#[derive(Debug, Clone)]
struct Transfer {
    request_id: String,
    from: i64,
    to: i64,
    amount: i64,
}

/// What the clients share with the test.
#[derive(Default)]
struct Shared {
    /// Transfers done so far, by all clients.
    done: AtomicUsize,
    /// Set by the test: finish the current transfer, start no other.
    stop: AtomicBool,
    /// When the replica was promoted, and the first commit after that.
    promotion: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl Shared {
    /// Waits until `LOAD` more transfers than now are done; on a timeout,
    /// fails with the gateways' logs.
    async fn more_load(&self, step: &str, fleet: &[GatewayProcess]) {
        let target = self.done.load(Ordering::SeqCst) + LOAD;
        let reached = eventually(PHASE, || async {
            self.done.load(Ordering::SeqCst) >= target
        })
        .await;
        if !reached {
            for gateway in fleet {
                eprintln!(
                    "--- log of the gateway at {}:\n{}",
                    gateway.address,
                    gateway.log()
                );
            }
        }
        assert!(
            reached,
            "{step}: {} of {target} transfers done within {PHASE:?}",
            self.done.load(Ordering::SeqCst)
        );
    }

    fn committed(&self) {
        self.done.fetch_add(1, Ordering::SeqCst);
        let mut promotion = self.promotion.lock().unwrap();
        if let (Some(_), None) = *promotion {
            promotion.1 = Some(Instant::now());
        }
    }
}

/// What one client saw.
#[derive(Debug, Default)]
struct ClientReport {
    done: Vec<Transfer>,
    /// Reruns by the status that caused them.
    reruns: BTreeMap<String, usize>,
    /// Commits that answered UNKNOWN (or whose answer was lost), all
    /// resolved by a later commit with the same id unless `unresolved`.
    unknown: usize,
    replayed: usize,
    unresolved: Option<(String, String)>,
}

/// A gRPC status the client reruns the transfer on, keeping its request id.
fn retryable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        Code::Aborted
            | Code::Unavailable
            | Code::ResourceExhausted
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::Cancelled
    )
}

fn with_deadline<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(Duration::from_secs(10));
    request
}

/// Why an attempt failed: the status, whether it answered the Commit (the
/// transfer may have committed), and which gateway answered it.
struct Failure {
    status: tonic::Status,
    at_commit: bool,
    gateway: usize,
}

/// One attempt of `transfer` through `gateways[route[0]]` (the owner: Begin
/// and every other statement) and `gateways[route[1]]` (the other
/// statements, forwarded to the owner, and Commit). `Ok(replayed)` once
/// committed.
async fn attempt(
    gateways: &[DatabaseClient<Channel>; 2],
    route: [usize; 2],
    transfer: &Transfer,
) -> Result<bool, Failure> {
    let owner = route[0];
    let failed = |gateway, at_commit| {
        move |status| Failure {
            status,
            at_commit,
            gateway,
        }
    };
    let tx = gateways[owner]
        .clone()
        .begin(with_deadline(BeginRequest::default()))
        .await
        .map_err(failed(owner, false))?
        .into_inner()
        .transaction_id;
    let result = statements_and_commit(gateways, route, transfer, &tx).await;
    if result.is_err() {
        // As a client does: end the transaction so that its locks go now,
        // not after the gateway's idle timeout (best effort: its owner may
        // be gone). Also after a failed Commit: a Commit sent through an
        // instance that died before forwarding it never reached the owner,
        // and a Rollback racing a COMMIT is harmless, the request id tells
        // which won.
        let rollback = RollbackRequest {
            transaction_id: tx.clone(),
        };
        let _ = gateways[owner]
            .clone()
            .rollback(with_deadline(rollback))
            .await;
    }
    result
}

/// The statements and the Commit of an attempt, in transaction `tx`.
async fn statements_and_commit(
    gateways: &[DatabaseClient<Channel>; 2],
    [owner, other]: [usize; 2],
    transfer: &Transfer,
    tx: &str,
) -> Result<bool, Failure> {
    let failed = |gateway, at_commit| {
        move |status| Failure {
            status,
            at_commit,
            gateway,
        }
    };
    // In account order: transfers never deadlock on each other.
    let (first, second) = if transfer.from < transfer.to {
        (
            (transfer.from, -transfer.amount),
            (transfer.to, transfer.amount),
        )
    } else {
        (
            (transfer.to, transfer.amount),
            (transfer.from, -transfer.amount),
        )
    };
    let statements = [
        (
            "UPDATE accounts SET balance = balance + ? WHERE id = ?",
            vec![int(first.1), int(first.0)],
        ),
        (
            "UPDATE accounts SET balance = balance + ? WHERE id = ?",
            vec![int(second.1), int(second.0)],
        ),
        (
            "INSERT INTO ledger (request_id) VALUES (?)",
            vec![text(&transfer.request_id)],
        ),
    ];
    for (n, (sql, params)) in statements.into_iter().enumerate() {
        let through = if n % 2 == 0 { other } else { owner };
        gateways[through]
            .clone()
            .execute(with_deadline(ExecuteRequest {
                sql: sql.into(),
                params,
                transaction_id: tx.into(),
                ..Default::default()
            }))
            .await
            .map_err(failed(through, false))?;
    }
    let committed = gateways[other]
        .clone()
        .commit(with_deadline(CommitRequest {
            transaction_id: tx.into(),
            request_id: transfer.request_id.clone(),
        }))
        .await
        .map_err(failed(other, true))?;
    Ok(committed.into_inner().replayed)
}

/// The route of the next attempt: the owner alternates between the
/// gateways, and a gateway that failed to answer (a transport error: no
/// sqlgate status) is left out for a moment, as a client-side balancer
/// would; when both are out, both are tried.
fn route(attempt: usize, out_until: &[Option<Instant>; 2]) -> [usize; 2] {
    let up = |gateway: usize| out_until[gateway].is_none_or(|until| Instant::now() >= until);
    let owner = attempt % 2;
    match (up(owner), up(1 - owner)) {
        (true, true) | (false, false) => [owner, 1 - owner],
        (true, false) => [owner, owner],
        (false, true) => [1 - owner, 1 - owner],
    }
}

/// A client: transfers until told to stop, each until it is done.
async fn client(
    number: usize,
    gateways: [DatabaseClient<Channel>; 2],
    shared: Arc<Shared>,
) -> ClientReport {
    let mut report = ClientReport::default();
    let mut attempts = number;
    let mut out_until = [None; 2];
    for n in 0.. {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let seed = (number * 7919 + n * 104_729) as i64;
        let from = seed % ACCOUNTS + 1;
        let to = (seed / ACCOUNTS + 1) % ACCOUNTS + 1;
        let transfer = Transfer {
            request_id: format!("c{number}-t{n}"),
            from,
            to: if to == from { from % ACCOUNTS + 1 } else { to },
            amount: seed % 97 + 1,
        };
        let started = Instant::now();
        let mut unknown = false;
        let mut backoff = Duration::from_millis(10);
        loop {
            attempts += 1;
            match attempt(&gateways, route(attempts, &out_until), &transfer).await {
                Ok(replayed) => {
                    report.replayed += usize::from(replayed);
                    shared.committed();
                    break;
                }
                Err(failure) if retryable(&failure.status) => {
                    let Failure {
                        status,
                        at_commit,
                        gateway,
                    } = failure;
                    let reason = match status.details().is_empty() {
                        false => reason(&status),
                        true => {
                            out_until[gateway] = Some(Instant::now() + Duration::from_millis(300));
                            "transport".into()
                        }
                    };
                    *report
                        .reruns
                        .entry(format!("{:?}/{reason}", status.code()))
                        .or_default() += 1;
                    if at_commit && !unknown {
                        // The commit may have gone through: only a
                        // commit with the same id tells.
                        unknown = true;
                        report.unknown += 1;
                    }
                    if started.elapsed() > GIVE_UP {
                        report.unresolved = Some((transfer.request_id, format!("{status:?}")));
                        return report;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(100));
                }
                Err(failure) => panic!("transfer {transfer:?} failed: {:?}", failure.status),
            }
        }
        report.done.push(transfer);
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_apply_exactly_once_through_gateway_and_primary_crashes() {
    let test_started = Instant::now();
    let dir = std::env::temp_dir().join(format!("sqlgate-exactly-once-{}", std::process::id()));
    let pair = ReplicatedPair::start(&dir)
        .await
        .expect("a primary and a replica start");
    let mut pair = pair;
    let (primary, replica) = (&pair.primary, &pair.replica);
    // Semi-synchronous: a commit is answered once the replica has it.
    on(
        primary,
        "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC",
    )
    .await;
    on(primary, "SET GLOBAL rpl_semi_sync_master_timeout = 30000").await;
    on(primary, "SET GLOBAL rpl_semi_sync_master_enabled = ON").await;
    on(replica, "SET GLOBAL rpl_semi_sync_slave_enabled = ON").await;
    on(replica, "STOP SLAVE IO_THREAD").await;
    on(replica, "START SLAVE IO_THREAD").await;
    on(replica, "SET GLOBAL read_only = 1").await;
    let semi_sync = eventually(Duration::from_secs(10), || async {
        let clients = "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                       WHERE VARIABLE_NAME = 'Rpl_semi_sync_master_clients'";
        global(primary, clients).await == "1"
    })
    .await;
    assert!(semi_sync, "the replica acknowledges commits");

    on(primary, "CREATE DATABASE app").await;
    on(
        primary,
        "CREATE TABLE app.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)",
    )
    .await;
    let fill =
        format!("INSERT INTO app.accounts SELECT seq, {INITIAL_BALANCE} FROM seq_1_to_{ACCOUNTS}");
    on(primary, &fill).await;
    // Not unique: a transfer applied twice would show as two rows.
    on(
        primary,
        "CREATE TABLE app.ledger (n BIGINT AUTO_INCREMENT PRIMARY KEY, \
         request_id VARCHAR(64) NOT NULL, KEY (request_id))",
    )
    .await;
    // The gateway's account (on both servers through replication): the
    // outcomes table lives in `app` and is made by the gateway. READ_ONLY
    // ADMIN on purpose (see the module's comment); SLAVE MONITOR reads the
    // replication status.
    on(
        primary,
        "CREATE USER 'gw'@'127.0.0.1' IDENTIFIED BY 'gw-pass'",
    )
    .await;
    on(primary, "GRANT ALL ON app.* TO 'gw'@'127.0.0.1'").await;
    on(
        primary,
        "GRANT SLAVE MONITOR, READ_ONLY ADMIN ON *.* TO 'gw'@'127.0.0.1'",
    )
    .await;

    let url = format!(
        "mysql://gw:gw-pass@127.0.0.1:{},127.0.0.1:{}/app?prefer_socket=false",
        primary.tcp_port().unwrap(),
        replica.tcp_port().unwrap(),
    );
    let args = |listen: &str, peers: &str| {
        let quick = [
            "--primary-check-interval",
            "200ms",
            "--peer-connect-timeout",
            "1s",
        ];
        GatewayProcess::fleet_args(&url, listen, peers, &quick)
    };
    let mut fleet = GatewayProcess::fleet(2, &[], args);
    let peers = format!("{},{}", fleet[0].address, fleet[1].address);
    // Connects on first use (and again after a restart); a call that gets
    // no answer is given up on the client's side too, so that a hang shows
    // as a failed test, not a stuck one.
    let lazy = |address: &str| {
        DatabaseClient::new(
            Channel::from_shared(format!("http://{address}"))
                .unwrap()
                .timeout(Duration::from_secs(15))
                .connect_lazy(),
        )
    };
    let gateways = [lazy(&fleet[0].address), lazy(&fleet[1].address)];
    // Makes the outcomes table before the load.
    gateways[0]
        .clone()
        .execute(ExecuteRequest {
            sql: "UPDATE accounts SET balance = balance WHERE id = 1".into(),
            request_id: "setup".into(),
            ..Default::default()
        })
        .await
        .expect("the first write with a request id");
    let caught_up = pair.wait_until_caught_up(Duration::from_secs(20)).await;
    assert!(caught_up.unwrap());
    let ready = test_started.elapsed();

    let shared = Arc::new(Shared::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|number| tokio::spawn(client(number, gateways.clone(), shared.clone())))
        .collect();
    shared.more_load("warm-up", &fleet).await;

    // (a) The gateway that owns half the transactions dies, then comes back
    // on its address.
    let address = fleet[0].address.clone();
    fleet[0].signal("-KILL");
    let killed = fleet.remove(0);
    let log_a = killed.log();
    killed.exit(Duration::from_secs(10)).await;
    shared
        .more_load("after the gateway's SIGKILL", &fleet)
        .await;
    fleet.insert(
        0,
        GatewayProcess::try_start(args(&address, &peers), &[])
            .expect("the gateway starts again on its address"),
    );
    shared
        .more_load("after the gateway's restart", &fleet)
        .await;

    // (b) The primary dies during commits; the replica is promoted.
    pair.primary.kill();
    let killed_at = Instant::now();
    promote(&pair.replica).await;
    let promoted = Instant::now();
    shared.promotion.lock().unwrap().0 = Some(promoted);
    shared.more_load("after the promotion", &fleet).await;
    let first_write = shared.promotion.lock().unwrap().1.unwrap();
    println!(
        "primary SIGKILLed; replica promoted {:?} later; first successful write {:?} after the promotion",
        promoted - killed_at,
        first_write - promoted
    );

    // (c) The old primary comes back read-only: never written to again.
    pair.primary
        .restart_with(&["--read-only"])
        .expect("the old primary starts again");
    let old_history = global(&pair.primary, "SELECT @@gtid_binlog_pos").await;
    shared.more_load("with the old primary back", &fleet).await;

    shared.stop.store(true, Ordering::SeqCst);
    let mut reports = Vec::new();
    for task in clients {
        reports.push(task.await.expect("a client panicked"));
    }
    let load_time = test_started.elapsed() - ready;

    // Nothing reached the old primary since it came back.
    assert_eq!(
        global(&pair.primary, "SELECT @@gtid_binlog_pos").await,
        old_history,
        "the old primary was written to"
    );
    let unresolved: Vec<_> = reports
        .iter()
        .filter_map(|r| r.unresolved.as_ref())
        .collect();
    let done: Vec<&Transfer> = reports.iter().flat_map(|r| &r.done).collect();
    let mut reruns = BTreeMap::new();
    for (status, n) in reports.iter().flat_map(|r| &r.reruns) {
        *reruns.entry(status.clone()).or_insert(0) += n;
    }
    let unknown: usize = reports.iter().map(|r| r.unknown).sum();
    let replayed: usize = reports.iter().map(|r| r.replayed).sum();
    println!(
        "{} transfers done in {load_time:?} of load ({:?} in all); {unknown} commits with a lost \
         or UNKNOWN answer, {replayed} answered as replays; reruns: {reruns:?}",
        done.len(),
        test_started.elapsed()
    );
    if !unresolved.is_empty() {
        for (n, gateway) in fleet.iter().enumerate() {
            eprintln!("--- gateway {n} log:\n{}", gateway.log());
        }
        eprintln!("--- killed gateway's log:\n{log_a}");
    }
    assert!(
        unresolved.is_empty(),
        "unresolved transfers: {unresolved:?}"
    );

    // Exactly once, on the new primary.
    let mut expected: BTreeMap<i64, i64> = (1..=ACCOUNTS).map(|id| (id, INITIAL_BALANCE)).collect();
    for transfer in &done {
        *expected.get_mut(&transfer.from).unwrap() -= transfer.amount;
        *expected.get_mut(&transfer.to).unwrap() += transfer.amount;
    }
    let balances: BTreeMap<i64, i64> = pairs(&pair.replica, "SELECT id, balance FROM accounts")
        .await
        .into_iter()
        .map(|(id, balance)| (id.parse().unwrap(), balance))
        .collect();
    assert_eq!(balances, expected, "balances on the new primary");
    let done_ids: BTreeSet<String> = done.iter().map(|t| t.request_id.clone()).collect();
    assert_eq!(done_ids.len(), done.len());
    let ledger = pairs(
        &pair.replica,
        "SELECT request_id, COUNT(*) FROM ledger GROUP BY request_id HAVING COUNT(*) > 1",
    )
    .await;
    assert!(ledger.is_empty(), "transfers applied twice: {ledger:?}");
    let ledger: BTreeSet<(String, i64)> = pairs(&pair.replica, "SELECT request_id, n FROM ledger")
        .await
        .into_iter()
        .collect();
    let ids: BTreeSet<String> = ledger.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, done_ids, "the ledger has each done transfer once");
    // Transactions the old primary committed that the new one never got
    // (their answers were lost): each ran again on the new primary, with
    // its request id.
    let old_ledger = pairs(&pair.primary, "SELECT request_id, n FROM ledger").await;
    let lost: Vec<&(String, i64)> = old_ledger
        .iter()
        .filter(|row| !ledger.contains(*row))
        .collect();
    println!(
        "{} transactions lost with the old primary's history, run again on the new one: {lost:?}",
        lost.len()
    );
    assert!(lost.iter().all(|(id, _)| done_ids.contains(id)), "{lost:?}");
    let records = pairs(
        &pair.replica,
        "SELECT request_id, COUNT(*) FROM sqlgate_outcomes WHERE request_id <> 'setup' GROUP BY request_id",
    )
    .await;
    assert!(records.iter().all(|(_, n)| *n == 1), "{records:?}");
    let records: BTreeSet<String> = records.into_iter().map(|(id, _)| id).collect();
    assert_eq!(records, done_ids, "one outcome record per done request id");
}
