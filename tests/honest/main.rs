//! Honest outcomes when a forwarded or streamed call is cut by time, a
//! restarted owner, commit outcomes kept per principal, and forwarded calls
//! that never hold each other up (issue 20), with real gateway processes.
#[path = "../common/mod.rs"]
mod common;
mod streams;

use std::{process::Command, time::Duration};

use common::*;
use sqlgate::api::{self, CommitRequest, ExecuteBatchRequest, ExecuteRequest, RollbackRequest};
use tonic::Code;

/// The arguments of one fleet instance on `url`.
fn fleet_args(url: &str, listen: &str, peers: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["--database-url", url, "--listen", listen, "--peers", peers];
    args.extend_from_slice(extra);
    args.into_iter().map(String::from).collect()
}

fn fleet(url: &str, size: usize, extra: &[&str]) -> Vec<GatewayProcess> {
    GatewayProcess::fleet(size, &[], |listen, peers| {
        fleet_args(url, listen, peers, extra)
    })
}

/// SIGSTOP to a process; SIGCONT when dropped, whatever the test did.
struct Paused(u32);

impl Paused {
    fn pause(pid: u32) -> Paused {
        signal("-STOP", pid);
        Paused(pid)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        signal("-CONT", self.0);
    }
}

fn signal(name: &str, pid: u32) {
    let sent = Command::new("kill")
        .args([name, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

fn with_timeout<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// A forwarded Rollback or Commit whose deadline passes while the owner is
/// slow (paused) answers DEADLINE_EXCEEDED, never ABORTED /
/// TRANSACTION_OWNER_UNAVAILABLE or "the connection to the database failed";
/// the owner then carries on, and what the client learns next is the truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_call_cut_by_its_deadline_says_deadline_exceeded() {
    let (_, url) = fresh_database().await;
    let instances = fleet(&url, 2, &[]);
    let (mut a, mut b) = (instances[0].client().await, instances[1].client().await);
    execute(&mut a, "CREATE TABLE t (id INT PRIMARY KEY)", vec![])
        .await
        .unwrap();
    let rolled = begin_on(&mut a).await;
    let committed = begin_on(&mut a).await;
    b.execute(statement_in("INSERT INTO t VALUES (1)", &rolled))
        .await
        .unwrap();
    b.execute(statement_in("INSERT INTO t VALUES (2)", &committed))
        .await
        .unwrap();
    {
        let _paused = Paused::pause(instances[0].pid());
        let deadline = Duration::from_millis(300);
        let rollback = RollbackRequest {
            transaction_id: rolled.clone(),
        };
        let cut = b
            .rollback(with_timeout(rollback, deadline))
            .await
            .expect_err("the owner is paused");
        assert_eq!(cut.code(), Code::DeadlineExceeded, "Rollback: {cut:?}");
        assert_eq!(error_info(&cut).0, "DEADLINE_EXCEEDED", "{cut:?}");
        let commit = CommitRequest {
            transaction_id: committed.clone(),
            ..Default::default()
        };
        let cut = b
            .commit(with_timeout(commit, deadline))
            .await
            .expect_err("the owner is paused");
        assert_eq!(cut.code(), Code::DeadlineExceeded, "Commit: {cut:?}");
        assert_eq!(error_info(&cut).0, "DEADLINE_EXCEEDED", "{cut:?}");
        assert!(cut.message().contains("Commit again"), "{cut:?}");
    }
    // Resumed: asking again tells the truth, whatever the cut calls did.
    b.rollback(RollbackRequest {
        transaction_id: rolled.clone(),
    })
    .await
    .expect("a Rollback again");
    b.commit(CommitRequest {
        transaction_id: committed.clone(),
        ..Default::default()
    })
    .await
    .expect("a Commit again answers it committed, or commits it");
    assert_eq!(
        query_i64(&url, "SELECT GROUP_CONCAT(id) + 0 FROM t").await,
        Some(2),
        "the rolled back row is gone, the committed one is there"
    );
}

/// An owner restarted on the same address answers ABORTED /
/// TRANSACTION_OWNER_UNAVAILABLE for the ids of its previous life, directly
/// and through another instance, instead of NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_owner_knows_the_ids_of_its_previous_life() {
    let (_, url) = fresh_database().await;
    let mut instances = fleet(&url, 2, &[]);
    let (mut a, mut b) = (instances[0].client().await, instances[1].client().await);
    let tx = begin_on(&mut a).await;
    b.execute(statement_in("SELECT 1", &tx)).await.unwrap();
    let address = instances[0].address.clone();
    let peers = format!("{},{}", instances[0].address, instances[1].address);
    let owner = instances.remove(0);
    owner.signal("-KILL");
    let _ = owner.exit(Duration::from_secs(10)).await;
    // Back on the same address (a container restart keeps the pod's IP).
    let mut restarted = None;
    for _ in 0..50 {
        restarted = GatewayProcess::try_start(fleet_args(&url, &address, &peers, &[]), &[]);
        if restarted.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let restarted = restarted.expect("the owner restarts on its address");
    let mut direct = restarted.client().await;
    let fresh = begin_on(&mut direct).await;
    assert_ne!(fresh, tx);
    let through_b = b.execute(statement_in("SELECT 1", &tx)).await;
    let at_owner = direct.execute(statement_in("SELECT 1", &tx)).await;
    let commit = b
        .commit(CommitRequest {
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await;
    assert_previous_life(
        &address,
        [
            ("Execute through B", through_b.map(|_| ())),
            ("Execute at the owner", at_owner.map(|_| ())),
            ("Commit through B", commit.map(|_| ())),
        ],
    );
    // This life's transactions are served as ever.
    b.execute(statement_in("SELECT 1", &fresh))
        .await
        .expect("served through B");
    b.commit(CommitRequest {
        transaction_id: fresh,
        ..Default::default()
    })
    .await
    .unwrap();
}

/// Each call on an id of the previous life of the gateway at `address`
/// answered ABORTED / TRANSACTION_OWNER_UNAVAILABLE naming it, with the
/// warning that an earlier Commit of it may have gone through.
fn assert_previous_life<const N: usize>(
    address: &String,
    outcomes: [(&str, Result<(), tonic::Status>); N],
) {
    for (call, outcome) in outcomes {
        let status = outcome.expect_err("an id of the previous life");
        assert_eq!(status.code(), Code::Aborted, "{call}: {status:?}");
        let (reason, metadata) = error_info(&status);
        assert_eq!(reason, "TRANSACTION_OWNER_UNAVAILABLE", "{call}");
        assert_eq!(metadata.get("owner"), Some(address), "{call}");
        assert!(
            status.message().contains("may have gone through"),
            "{call}: {status:?}"
        );
    }
}

/// A single gateway (no fleet) restarted on the same address answers
/// ABORTED / TRANSACTION_OWNER_UNAVAILABLE for the ids of its previous life,
/// not NOT_FOUND; ids it never made stay NOT_FOUND. An id whose COMMIT went
/// through in the previous life answers the same (outcomes are remembered in
/// memory only), as the README says, with a detail saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_single_instance_knows_the_ids_of_its_previous_life() {
    let (_, url) = fresh_database().await;
    let args = |listen: &str| -> Vec<String> {
        ["--database-url", &url, "--listen", listen]
            .map(String::from)
            .to_vec()
    };
    let gateway = (0..5)
        .find_map(|_| {
            let listen = format!("127.0.0.1:{}", free_port());
            GatewayProcess::try_start(args(&listen), &[])
        })
        .expect("the gateway starts on a free port");
    let address = gateway.address.clone();
    let mut client = gateway.client().await;
    execute(&mut client, "CREATE TABLE t (id INT PRIMARY KEY)", vec![])
        .await
        .unwrap();
    let open = begin_on(&mut client).await;
    assert_id_of(&open, &address);
    client
        .execute(statement_in("INSERT INTO t VALUES (1)", &open))
        .await
        .unwrap();
    let committed = begin_on(&mut client).await;
    client
        .execute(statement_in("INSERT INTO t VALUES (2)", &committed))
        .await
        .unwrap();
    client
        .commit(CommitRequest {
            transaction_id: committed.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    gateway.signal("-KILL");
    let _ = gateway.exit(Duration::from_secs(10)).await;
    // Back on the same address, as a container restart keeps its IP.
    let mut restarted = None;
    for _ in 0..50 {
        restarted = GatewayProcess::try_start(args(&address), &[]);
        if restarted.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let restarted = restarted.expect("the gateway restarts on its address");
    let mut client = restarted.client().await;
    let execute_open = client.execute(statement_in("SELECT 1", &open)).await;
    let commit_open = client
        .commit(CommitRequest {
            transaction_id: open.clone(),
            ..Default::default()
        })
        .await;
    let commit_committed = client
        .commit(CommitRequest {
            transaction_id: committed.clone(),
            ..Default::default()
        })
        .await;
    assert_previous_life(
        &address,
        [
            ("Execute", execute_open.map(|_| ())),
            ("Commit", commit_open.map(|_| ())),
            ("Commit of a committed id", commit_committed.map(|_| ())),
        ],
    );
    // The open transaction was rolled back; the committed one is there.
    assert_eq!(
        query_i64(&url, "SELECT GROUP_CONCAT(id) + 0 FROM t").await,
        Some(2)
    );
    // Ids this address never made are still NOT_FOUND.
    let random = "0123456789abcdef0123456789abcdef".to_string();
    let elsewhere = format!("{random}-01234567-127.0.0.1:1");
    for id in [random, elsewhere] {
        let status = client
            .execute(statement_in("SELECT 1", &id))
            .await
            .expect_err("no such transaction");
        assert_eq!(status.code(), Code::NotFound, "{id}: {status:?}");
    }
    // This life's transactions are served as ever.
    let fresh = begin_on(&mut client).await;
    assert_ne!(fresh, open);
    client
        .commit(CommitRequest {
            transaction_id: fresh,
            ..Default::default()
        })
        .await
        .unwrap();
}

/// A principal's load of short transactions forgets only its own ends: the
/// outcome of another principal's commit is still answered. ExecuteBatch's
/// own transactions (whose ids no client ever sees) count against nobody's
/// bound: a principal's batches never flush the outcome of its own
/// interactive transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_principal_cannot_flush_anothers_commit_outcomes() {
    const BOUND: usize = 50;
    let (_, url) = fresh_database().await;
    let tokens = token_file(
        "honest-tokens",
        "alice-token-0123456789,alice,read-write\nmallory-token-0123456789,mallory,read-only\n",
    );
    let bound = BOUND.to_string();
    let gateway = GatewayProcess::start(
        [
            "--database-url",
            &url,
            "--auth-tokens-file",
            tokens.to_str().unwrap(),
            "--tx-outcomes-per-principal",
            &bound,
        ],
        &[],
    );
    let mut client = gateway.client().await;
    let begin = |token: &str| as_caller(token, api::BeginRequest::default());
    let alice = "alice-token-0123456789";
    let mallory = "mallory-token-0123456789";
    let tx = client.begin(begin(alice)).await.unwrap().into_inner();
    let commit = |token: &str, id: &str| {
        as_caller(
            token,
            CommitRequest {
                transaction_id: id.into(),
                ..Default::default()
            },
        )
    };
    client
        .commit(commit(alice, &tx.transaction_id))
        .await
        .unwrap();
    let own = client.begin(begin(mallory)).await.unwrap().into_inner();
    client
        .commit(commit(mallory, &own.transaction_id))
        .await
        .unwrap();
    // Mallory's batches each run a transaction of their own, more than the
    // bound: none of them is remembered.
    for _ in 0..BOUND + 10 {
        let batch = ExecuteBatchRequest {
            statements: vec![api::Statement {
                sql: "SELECT 1".into(),
                params: vec![],
            }],
            ..Default::default()
        };
        client
            .execute_batch(as_caller(mallory, batch))
            .await
            .unwrap();
    }
    client
        .commit(commit(mallory, &own.transaction_id))
        .await
        .expect("Mallory's batches did not flush her own commit outcome");
    // Transactions whose ids Mallory holds do count: one call each (begin
    // and commit in one Execute), as many as the bound.
    for _ in 0..BOUND {
        let whole = ExecuteRequest {
            sql: "SELECT 1".into(),
            begin: Some(api::TransactionOptions::default()),
            commit: true,
            ..Default::default()
        };
        let done = client
            .execute(as_caller(mallory, whole))
            .await
            .unwrap()
            .into_inner();
        assert!(!done.transaction_id.is_empty());
    }
    client
        .commit(commit(alice, &tx.transaction_id))
        .await
        .expect("Alice's commit is still remembered");
    // Past the bound, Mallory's own oldest outcome is forgotten.
    let forgotten = client
        .commit(commit(mallory, &own.transaction_id))
        .await
        .expect_err("forgotten");
    assert_eq!(forgotten.code(), Code::NotFound, "{forgotten:?}");
}

/// Metadata that fits what an instance accepts, but not once the forwarder
/// adds its own headers: refused by the forwarder with RESOURCE_EXHAUSTED /
/// METADATA_TOO_LARGE, never UNKNOWN (which is for commit outcomes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_too_large_to_forward_is_refused_with_a_reason() {
    let (_, url) = fresh_database().await;
    let instances = fleet(&url, 2, &[]);
    let (mut a, mut b) = (instances[0].client().await, instances[1].client().await);
    let tx = begin_on(&mut a).await;
    let padded = |request: ExecuteRequest| {
        let mut request = tonic::Request::new(request);
        let pad = "x".repeat(16 * 1024 - 420);
        request.metadata_mut().insert("x-pad", pad.parse().unwrap());
        request
    };
    a.execute(padded(statement_in("SELECT 1", &tx)))
        .await
        .expect("the owner accepts it from a client");
    let refused = b
        .execute(padded(ExecuteRequest {
            commit: true,
            ..statement_in("SELECT 1", &tx)
        }))
        .await
        .expect_err("too large to forward");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(error_info(&refused).0, "METADATA_TOO_LARGE");
    // Nothing was sent: the transaction is still open and usable.
    b.commit(CommitRequest {
        transaction_id: tx,
        ..Default::default()
    })
    .await
    .expect("still open");
}
