//! A transaction's START TRANSACTION leaves in the same write as its first
//! command (Begin, `begin` on an Execute, a Transaction stream's `begin`):
//! the transaction still begins before its first statement runs (a rollback
//! undoes everything), a transaction in which nothing ran sends nothing, and
//! a START TRANSACTION that fails (here: a proxy turns it into a failing
//! query) leaves the statement sent with it to run on its own in autocommit
//! mode, which the call reports exactly: `TRANSACTION_ENDED_BY_STATEMENT`,
//! saying whether that statement was committed, and nothing else is claimed.
mod common;

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use common::*;
use sqlgate::{api, config::Config};

/// The payload of the gateway's START TRANSACTION (COM_QUERY).
const START: &[u8] = b"\x03START TRANSACTION";

/// What the proxy sends instead when it fails the START: a query that fails.
const FAILING: &[u8] = b"\x03SELECT * FROM sqlgate_no_such_table";

/// A unix-socket proxy in front of the database that watches the gateway's
/// START TRANSACTION packets, and can make them fail.
#[derive(Clone, Default)]
struct Watch {
    /// Writes with a START followed by another command.
    with_a_command: Arc<AtomicUsize>,
    /// Writes that end with a START (nothing after it in the write).
    alone: Arc<AtomicUsize>,
    /// Replace every START by a failing query.
    fail: Arc<AtomicBool>,
}

/// The packets of one write: (sequence id, payload), or None if it is not
/// made of whole packets.
fn packets(write: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut packets = Vec::new();
    let mut rest = write;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return None;
        }
        let len = usize::from(rest[0]) | usize::from(rest[1]) << 8 | usize::from(rest[2]) << 16;
        let payload = rest.get(4..4 + len)?;
        packets.push((rest[3], payload));
        rest = &rest[4 + len..];
    }
    Some(packets)
}

/// What the proxy sends on for one write of the gateway: the same packets,
/// a START counted and, while `watch.fail` is set, replaced.
fn watched(write: &[u8], watch: &Watch) -> Vec<u8> {
    let Some(packets) = packets(write) else {
        return write.to_vec();
    };
    if let Some(at) = packets.iter().position(|(_, p)| *p == START) {
        match at + 1 < packets.len() {
            true => watch.with_a_command.fetch_add(1, Ordering::SeqCst),
            false => watch.alone.fetch_add(1, Ordering::SeqCst),
        };
    }
    let mut out = Vec::with_capacity(write.len() + FAILING.len());
    for (seq, payload) in packets {
        let payload = match payload == START && watch.fail.load(Ordering::SeqCst) {
            true => FAILING,
            false => payload,
        };
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
        out.push(seq);
        out.extend_from_slice(payload);
    }
    out
}

/// Room for a transaction and autocommit calls; resets only with the next
/// command.
fn settings(config: &mut Config) {
    config.pool.min = 0;
    config.pool.max = 3;
    config.transactions.max_open = 2;
    config.pool.reset_delay = std::time::Duration::from_secs(600);
}

async fn gateway_behind_proxy(name: &str) -> (TestGateway, Watch) {
    let (database, direct_url) = fresh_database().await;
    let watch = Watch::default();
    let seen = watch.clone();
    let url = judging_proxy(name, &database, &direct_url, move |write: &[u8]| {
        std::future::ready(Verdict::Send(watched(write, &seen)))
    });
    let gateway = TestGateway::start_on(database, url, settings).await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY)")
        .await;
    (gateway, watch)
}

async fn rows(gateway: &TestGateway) -> i64 {
    gateway.direct_i64("SELECT COUNT(*) FROM t").await.unwrap()
}

fn insert(id: i64) -> api::ExecuteRequest {
    api::ExecuteRequest {
        sql: "INSERT INTO t VALUES (?)".into(),
        params: vec![int(id)],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_leaves_with_the_first_statement_and_still_begins_the_transaction() {
    let (gateway, watch) = gateway_behind_proxy("start-pipelined").await;
    let mut client = gateway.client.clone();

    // Begin sends nothing; the START leaves with the first INSERT; a
    // rollback undoes both INSERTs: they ran in the transaction.
    let tx = begin(&gateway, None).await;
    assert_eq!(watch.with_a_command.load(Ordering::SeqCst), 0);
    execute_in(&gateway, &tx, "INSERT INTO t VALUES (?)", vec![int(1)])
        .await
        .unwrap();
    execute_in(&gateway, &tx, "INSERT INTO t VALUES (?)", vec![int(2)])
        .await
        .unwrap();
    assert_eq!(rows(&gateway).await, 0, "not committed yet");
    assert!(rollback(&gateway, &tx).await);
    assert_eq!(rows(&gateway).await, 0, "rolled back");

    // `begin` on an Execute, then `commit` on the next.
    let first = client
        .execute(api::ExecuteRequest {
            begin: Some(Default::default()),
            ..insert(3)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rows(&gateway).await, 0, "not committed yet");
    client
        .execute(api::ExecuteRequest {
            transaction_id: first.transaction_id,
            commit: true,
            ..insert(4)
        })
        .await
        .unwrap();
    assert_eq!(rows(&gateway).await, 2);

    // A failed statement of such a transaction leaves it open, its
    // earlier work still there (the START did begin it).
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "INSERT INTO t VALUES (?)", vec![int(5)])
        .await
        .unwrap();
    let duplicate = execute_in(&gateway, &tx, "INSERT INTO t VALUES (?)", vec![int(5)])
        .await
        .unwrap_err();
    assert_eq!(error_info(&duplicate).1["transaction_open"], "true");
    commit(&gateway, &tx).await.unwrap();
    assert_eq!(rows(&gateway).await, 3);

    assert_eq!(watch.with_a_command.load(Ordering::SeqCst), 3);
    assert_eq!(watch.alone.load(Ordering::SeqCst), 0, "STARTs sent alone");

    // A transaction in which nothing ran sends no START at all.
    let tx = begin(&gateway, None).await;
    commit(&gateway, &tx).await.unwrap();
    let tx = begin(&gateway, None).await;
    assert!(rollback(&gateway, &tx).await);
    assert_eq!(watch.with_a_command.load(Ordering::SeqCst), 3);
    assert_eq!(watch.alone.load(Ordering::SeqCst), 0);
    // The connections went back clean: autocommit calls commit at once.
    execute(&mut client, "INSERT INTO t VALUES (?)", vec![int(6)])
        .await
        .unwrap();
    assert_eq!(rows(&gateway).await, 4);
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_is_reported_with_what_the_statement_did() {
    let (gateway, watch) = gateway_behind_proxy("start-failed").await;
    let mut client = gateway.client.clone();
    watch.fail.store(true, Ordering::SeqCst);

    // The INSERT ran on its own and committed: the call says so.
    let tx = begin(&gateway, None).await;
    let error = execute_in(&gateway, &tx, "INSERT INTO t VALUES (?)", vec![int(1)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::FailedPrecondition, "{error:?}");
    assert_eq!(reason(&error), "TRANSACTION_ENDED_BY_STATEMENT");
    assert!(
        error.message().contains("did not begin") && error.message().contains("was committed"),
        "{error:?}"
    );
    assert_eq!(rows(&gateway).await, 1, "committed, as the call said");
    // The transaction is over: nothing more runs under its id.
    let later = commit(&gateway, &tx).await.unwrap_err();
    assert_eq!(reason(&later), "TRANSACTION_ENDED_BY_STATEMENT");

    // A statement that fails then: nothing committed, and the call says so.
    let error = client
        .execute(api::ExecuteRequest {
            begin: Some(Default::default()),
            ..insert(1)
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&error), "TRANSACTION_ENDED_BY_STATEMENT");
    assert!(
        error.message().contains("nothing was committed"),
        "{error:?}"
    );
    assert_eq!(rows(&gateway).await, 1);

    // `begin` and `commit` on one Execute: no commit is claimed, the
    // statement's own commit is reported.
    let error = client
        .execute(api::ExecuteRequest {
            begin: Some(Default::default()),
            commit: true,
            ..insert(2)
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&error), "TRANSACTION_ENDED_BY_STATEMENT");
    assert!(error.message().contains("was committed"), "{error:?}");
    assert_eq!(rows(&gateway).await, 2);

    // Once STARTs go through again, transactions work on the same pool.
    watch.fail.store(false, Ordering::SeqCst);
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "INSERT INTO t VALUES (?)", vec![int(3)])
        .await
        .unwrap();
    assert!(rollback(&gateway, &tx).await);
    assert_eq!(rows(&gateway).await, 2);
    gateway.shut_down().await;
}
