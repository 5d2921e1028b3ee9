//! Several gateway processes as one fleet (`--peers`): a transaction begun on
//! one instance can be used through any other, which forwards its calls to
//! the owner.
mod common;

use std::time::Duration;

use common::*;
use sqlgate::api::{
    self, BeginRequest, CommitRequest, ExecuteBatchRequest, ExecuteRequest, RollbackRequest,
    execute_stream_response::Part,
};
use tonic::Code;

/// A fleet of `size` gateway processes on `url`, each listing all of them as
/// peers and serving metrics on a port of its own (see [`metrics_port`]);
/// `extra` flags go to every instance.
fn fleet(url: &str, size: usize, extra: &[&str]) -> Vec<GatewayProcess> {
    GatewayProcess::fleet(size, &[], |listen, peers| {
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut flags = vec!["--metrics-listen", &metrics];
        flags.extend_from_slice(extra);
        GatewayProcess::fleet_args(url, listen, peers, &flags)
    })
}

async fn count(url: &str) -> Option<i64> {
    query_i64(url, "SELECT COUNT(*) FROM t").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_instance_serves_any_transaction() {
    let (_, url) = fresh_database().await;
    let instances = fleet(&url, 3, &[]);
    let (mut a, mut b, mut c) = (
        instances[0].client().await,
        instances[1].client().await,
        instances[2].client().await,
    );
    execute(&mut a, "CREATE TABLE t (id INT PRIMARY KEY, v INT)", vec![])
        .await
        .unwrap();

    // Begun on A: the id names A; B and C forward every call to it.
    let tx = begin_on(&mut a).await;
    assert!(tx.ends_with(&format!("-{}", instances[0].address)), "{tx}");
    b.execute(statement_in("INSERT INTO t VALUES (1, 10)", &tx))
        .await
        .expect("Execute through B");
    c.execute_batch(ExecuteBatchRequest {
        statements: vec![api::Statement {
            sql: "INSERT INTO t VALUES (2, 20)".into(),
            params: vec![],
        }],
        transaction_id: tx.clone(),
        ..Default::default()
    })
    .await
    .expect("ExecuteBatch through C");
    let mut stream = c
        .execute_stream(statement_in("SELECT id FROM t ORDER BY id", &tx))
        .await
        .expect("ExecuteStream through C")
        .into_inner();
    let mut rows = 0;
    while let Some(message) = stream.message().await.unwrap() {
        if let Some(Part::Rows(batch)) = message.part {
            rows += batch.rows.len();
        }
    }
    assert_eq!(rows, 2, "the stream sees the transaction's rows");
    assert_eq!(count(&url).await, Some(0), "nothing committed yet");
    // The owner's errors come back as the owner answered them.
    let duplicate = b
        .execute(statement_in("INSERT INTO t VALUES (1, 11)", &tx))
        .await
        .expect_err("duplicate key");
    assert_eq!(duplicate.code(), Code::AlreadyExists, "{duplicate:?}");
    assert_eq!(error_info(&duplicate).0, "MYSQL_ERROR");
    b.commit(CommitRequest {
        transaction_id: tx.clone(),
        ..Default::default()
    })
    .await
    .expect("Commit through B");
    assert_eq!(count(&url).await, Some(2));

    // Rollback through another instance, and a one-call transaction begun
    // on C and committed through A.
    let tx = begin_on(&mut b).await;
    c.execute(statement_in("DELETE FROM t", &tx)).await.unwrap();
    let rolled_back = a
        .rollback(RollbackRequest {
            transaction_id: tx.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rolled_back.rolled_back);
    assert_eq!(count(&url).await, Some(2));
    let begun = c
        .execute(ExecuteRequest {
            sql: "INSERT INTO t VALUES (3, 30)".into(),
            begin: Some(Default::default()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    a.execute(ExecuteRequest {
        commit: true,
        ..statement_in("UPDATE t SET v = 31 WHERE id = 3", &begun)
    })
    .await
    .expect("Execute with commit through A");
    assert_eq!(
        query_i64(&url, "SELECT v FROM t WHERE id = 3").await,
        Some(31)
    );

    // Forwarded calls are counted and logged on the instance that forwarded.
    let metrics_port = metrics_port(&instances[1]);
    let metrics = scrape(metrics_port).expect("metrics");
    let forwarded = sample(
        &metrics,
        r#"sqlgate_forwarded_calls_total{method="Execute",outcome="owner_error"}"#,
    );
    assert_eq!(forwarded, Some(1.0), "{metrics}");
    let forwarded_to = format!("\"forwarded_to\":\"{}\"", instances[0].address);
    assert!(
        instances[1]
            .logs_within(&forwarded_to, Duration::from_secs(5))
            .await,
        "B logs where it forwarded"
    );
}

/// The instance's metrics port (`--metrics-listen`), from its log.
fn metrics_port(instance: &GatewayProcess) -> u16 {
    let log = instance.log();
    let line = log
        .lines()
        .find(|l| l.contains("serving Prometheus metrics"))
        .expect("the metrics address is logged");
    let start = line.find("\"address\":\"").unwrap() + 11;
    let address = line[start..].split('"').next().unwrap();
    address.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_stays_its_principals_through_any_instance() {
    let (_, url) = fresh_database().await;
    let tokens = token_file(
        "fleet-tokens",
        "alice-token-0123456789,alice,read-write\nbob-token-0123456789,bob,read-write\n",
    );
    let tokens = tokens.to_str().unwrap();
    let instances = fleet(&url, 2, &["--auth-tokens-file", tokens]);
    let (mut a, mut b) = (instances[0].client().await, instances[1].client().await);
    let tx = a
        .begin(as_caller("alice-token-0123456789", BeginRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    // Bob through B: forwarded with his own token, refused by the owner.
    let refused = b
        .execute(as_caller(
            "bob-token-0123456789",
            statement_in("SELECT 1", &tx),
        ))
        .await
        .expect_err("not bob's");
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    // No token at all: refused before anything is forwarded.
    let anonymous = b
        .execute(statement_in("SELECT 1", &tx))
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    b.commit(as_caller(
        "alice-token-0123456789",
        CommitRequest {
            transaction_id: tx.clone(),
            ..Default::default()
        },
    ))
    .await
    .expect("alice commits through B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_owner_answers_aborted_never_not_found() {
    let (_, url) = fresh_database().await;
    let mut instances = fleet(&url, 2, &["--peer-connect-timeout", "1s"]);
    let (mut a, mut b) = (instances[0].client().await, instances[1].client().await);
    execute(&mut a, "CREATE TABLE t (id INT PRIMARY KEY, v INT)", vec![])
        .await
        .unwrap();
    let tx = begin_on(&mut a).await;
    b.execute(statement_in("INSERT INTO t VALUES (1, 1)", &tx))
        .await
        .unwrap();
    // A crashes: the database rolls its transaction back when its
    // connections close.
    let owner = instances.remove(0);
    let owner_address = owner.address.clone();
    owner.signal("-KILL");
    let _ = owner.exit(Duration::from_secs(10)).await;
    for call in ["Execute", "Commit", "Rollback"] {
        let failed = match call {
            "Execute" => b.execute(statement_in("SELECT 1", &tx)).await.map(|_| ()),
            "Commit" => b
                .commit(CommitRequest {
                    transaction_id: tx.clone(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            _ => b
                .rollback(RollbackRequest {
                    transaction_id: tx.clone(),
                })
                .await
                .map(|_| ()),
        }
        .expect_err("the owner is gone");
        assert_eq!(failed.code(), Code::Aborted, "{call}: {failed:?}");
        let (reason, metadata) = error_info(&failed);
        assert_eq!(reason, "TRANSACTION_OWNER_UNAVAILABLE", "{call}");
        assert_eq!(metadata.get("owner"), Some(&owner_address), "{call}");
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            count(&url).await == Some(0)
        })
        .await,
        "nothing of the dead owner's transaction was committed"
    );
    // An id naming an address outside the fleet is simply not found: the
    // gateway never connects there.
    let crafted = format!("{}-10.255.255.1:50051", "a".repeat(32));
    let not_found = b
        .execute(statement_in("SELECT 1", &crafted))
        .await
        .expect_err("unknown");
    assert_eq!(not_found.code(), Code::NotFound, "{not_found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_owner_still_serves_its_open_transactions() {
    let (_, url) = fresh_database().await;
    let instances = fleet(&url, 2, &["--shutdown-grace", "30s"]);
    let (mut a, mut b) = (instances[0].client().await, instances[1].client().await);
    execute(&mut a, "CREATE TABLE t (id INT PRIMARY KEY, v INT)", vec![])
        .await
        .unwrap();
    let tx = begin_on(&mut a).await;
    instances[0].signal("-TERM");
    // Draining: new transactions go elsewhere...
    assert!(
        eventually(Duration::from_secs(10), || {
            let mut a = a.clone();
            async move {
                matches!(
                    a.begin(BeginRequest::default()).await,
                    Err(status) if status.code() == Code::Unavailable
                )
            }
        })
        .await,
        "a draining instance refuses new transactions"
    );
    // ...while its open one is still served, here through the other instance.
    b.execute(statement_in("INSERT INTO t VALUES (1, 1)", &tx))
        .await
        .expect("served while draining");
    b.commit(CommitRequest {
        transaction_id: tx.clone(),
        ..Default::default()
    })
    .await
    .expect("committed while draining");
    assert_eq!(count(&url).await, Some(1));
}

/// SIGTERM to one instance of three while 32 clients each have a
/// transaction open on it, in the middle of a load of transfers: every one
/// of those transactions finishes through the other instances' forwarding
/// (no rerun needed), new transactions go to the others, every transfer is
/// applied exactly once, and the drained instance exits by itself once its
/// transactions have ended, long before its grace runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_instance_finishes_its_open_transactions_through_the_others() {
    const CLIENTS: usize = 32;
    const TRANSFERS: usize = 20;
    const GRACE: Duration = Duration::from_secs(60);
    let (_, url) = fresh_database().await;
    // Room for all 32 transactions open on one instance at once.
    let room = ["--pool-max", "48", "--max-transactions", "40"];
    let mut instances = fleet(&url, 3, &[&room[..], &["--shutdown-grace", "60s"]].concat());
    let mut clients = Vec::new();
    for instance in &instances {
        clients.push(instance.client().await);
    }
    // Two accounts of its own per client: no lock waits, so no deadlock
    // victims, and any failure at all is a failure of the drain.
    create_accounts(&mut clients[1].clone(), 2 * CLIENTS as i64).await;
    let all_open = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    let drain_started = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    let mut workers = Vec::new();
    for worker in 0..CLIENTS {
        let clients = clients.clone();
        let (all_open, drain_started) = (all_open.clone(), drain_started.clone());
        workers.push(tokio::spawn(async move {
            let [a, b, c] = [&clients[0], &clients[1], &clients[2]].map(Clone::clone);
            let (from, to) = (2 * worker as i64 + 1, 2 * worker as i64 + 2);
            for round in 0..TRANSFERS {
                if round < TRANSFERS / 2 {
                    // Before the SIGTERM: calls rotate over all three.
                    let i = worker + round;
                    let calls = [0, 1, 2, 3].map(|k| clients[(i + k) % 3].clone());
                    transfer(calls, from, to).await.expect("before the drain");
                } else if round == TRANSFERS / 2 {
                    // Begun on A, half done when A is told to stop, finished
                    // through B and C.
                    let mut begin = a.clone();
                    let tx = begin
                        .begin(BeginRequest::default())
                        .await
                        .unwrap()
                        .into_inner()
                        .transaction_id;
                    let mut first = b.clone();
                    first.execute(move_balance(&tx, from, -1)).await.unwrap();
                    all_open.wait().await;
                    drain_started.wait().await;
                    let mut second = c.clone();
                    second
                        .execute(move_balance(&tx, to, 1))
                        .await
                        .expect("served through C while its owner drains");
                    let mut commit = b.clone();
                    commit
                        .commit(CommitRequest {
                            transaction_id: tx,
                            ..Default::default()
                        })
                        .await
                        .expect("committed through B while its owner drains");
                } else {
                    // After: the balancer sends new work to B and C only.
                    let (x, y) = if round % 2 == 0 { (&b, &c) } else { (&c, &b) };
                    let calls = [x.clone(), y.clone(), x.clone(), y.clone()];
                    transfer(calls, from, to).await.expect("after the drain");
                }
            }
        }));
    }
    // (A client that failed before the barrier would leave it waiting.)
    tokio::time::timeout(Duration::from_secs(60), all_open.wait())
        .await
        .expect("every client has a transaction open on A");
    instances[0].signal("-TERM");
    let terminated = std::time::Instant::now();
    let a = clients[0].clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            let mut a = a.clone();
            async move {
                match a.begin(BeginRequest::default()).await {
                    Err(status) => status.code() == Code::Unavailable,
                    // Not draining yet: this probe must not hold A up.
                    Ok(begun) => {
                        let transaction_id = begun.into_inner().transaction_id;
                        a.rollback(RollbackRequest { transaction_id })
                            .await
                            .unwrap();
                        false
                    }
                }
            }
        })
        .await,
        "the terminated instance refuses new transactions"
    );
    drain_started.wait().await;
    for worker in workers {
        worker.await.expect("a client failed");
    }
    let (code, _) = instances.remove(0).exit(GRACE).await;
    let took = terminated.elapsed();
    assert_eq!(code, Some(0), "the drained instance exits cleanly");
    assert!(
        took < GRACE / 2,
        "it exits once its transactions end, not at the end of its grace ({took:?})"
    );
    // Every transfer was applied exactly once: each client's first account
    // lost TRANSFERS, its second gained them.
    let exact = format!(
        "SELECT COUNT(*) FROM accounts WHERE balance = IF(id % 2 = 1, {}, {})",
        1000 - TRANSFERS as i64,
        1000 + TRANSFERS as i64
    );
    assert_eq!(query_i64(&url, &exact).await, Some(2 * CLIENTS as i64));
    let commits = forwarded_calls(&instances, "Commit");
    assert!(
        commits >= CLIENTS as f64,
        "the open transactions were committed through the others: {commits}"
    );
}

/// 32 clients × 40 transfers, each call of a transaction sent to the next
/// instance in turn (Begin on A, the updates on B and C, Commit on A): the
/// total balance is kept, nothing fails but retried ABORTED (deadlocks), and
/// the instances really forwarded calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_whose_calls_cross_instances_keep_the_total() {
    const ACCOUNTS: i64 = 10;
    const CLIENTS: usize = 32;
    const TRANSFERS: usize = 40;
    let (_, url) = fresh_database().await;
    let instances = fleet(&url, 3, &[]);
    let mut clients = Vec::new();
    for instance in &instances {
        clients.push(instance.client().await);
    }
    create_accounts(&mut clients[0].clone(), ACCOUNTS).await;
    let reruns = run_transfers(&clients, CLIENTS, TRANSFERS, ACCOUNTS).await;
    let total = query_i64(&url, "SELECT SUM(balance) FROM accounts").await;
    assert_eq!(
        total,
        Some(ACCOUNTS * 1000),
        "the total is kept ({reruns} reruns)"
    );
    let forwarded = forwarded_calls(&instances, "Execute");
    assert!(
        forwarded >= (CLIENTS * TRANSFERS) as f64,
        "calls crossed instances: {forwarded} forwarded Executes"
    );
}

/// How many `method` calls the instances forwarded successfully, from
/// their metrics.
fn forwarded_calls(instances: &[GatewayProcess], method: &str) -> f64 {
    let series = format!(r#"sqlgate_forwarded_calls_total{{method="{method}",outcome="ok"}}"#);
    instances
        .iter()
        .filter_map(|instance| scrape(metrics_port(instance)))
        .filter_map(|metrics| sample(&metrics, &series))
        .sum()
}

/// A call's W3C `traceparent` puts its trace id on the RPC's log lines, on
/// the instance it reached and on the owner it was forwarded to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_id_follows_a_call_across_instances() {
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (_, url) = fresh_database().await;
    let instances = fleet(&url, 2, &[]);
    let (mut a, mut b) = (instances[0].client().await, instances[1].client().await);
    let tx = begin_on(&mut a).await;
    let mut traced = tonic::Request::new(statement_in("SELECT 1", &tx));
    traced.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    b.execute(traced).await.unwrap();
    let logged = format!("\"trace_id\":\"{TRACE_ID}\"");
    for instance in &instances {
        assert!(
            instance.logs_within(&logged, Duration::from_secs(5)).await,
            "{} logs the trace id",
            instance.address
        );
    }
    // A malformed traceparent is ignored, not an error.
    let mut malformed = tonic::Request::new(statement_in("SELECT 1", &tx));
    malformed
        .metadata_mut()
        .insert("traceparent", "00-not-a-trace-01".parse().unwrap());
    b.execute(malformed).await.expect("served");
    b.commit(CommitRequest {
        transaction_id: tx,
        ..Default::default()
    })
    .await
    .unwrap();
}

/// The owner of transactions in flight is killed (SIGKILL): the calls that
/// reach the other instance get ABORTED / TRANSACTION_OWNER_UNAVAILABLE (or
/// UNKNOWN / COMMIT_OUTCOME_UNKNOWN for a Commit in flight), nothing is
/// half-applied, and new transactions work on the survivor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_owner_mid_transactions_loses_nothing_half_done() {
    const ACCOUNTS: i64 = 8;
    const CLIENTS: usize = 8;
    let (_, url) = fresh_database().await;
    let mut instances = fleet(&url, 2, &["--peer-connect-timeout", "1s"]);
    let (a, b) = (instances[0].client().await, instances[1].client().await);
    create_accounts(&mut b.clone(), ACCOUNTS).await;
    let killed = std::sync::Arc::new(tokio::sync::Notify::new());
    let done_before_kill = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..CLIENTS {
        let (a, b) = (a.clone(), b.clone());
        let (killed, done_before_kill) = (killed.clone(), done_before_kill.clone());
        workers.push(tokio::spawn(async move {
            let mut after_kill = 0;
            let mut owner_dead = false;
            let mut seen = Vec::new();
            let mut attempts = 0i64;
            while after_kill < 5 {
                attempts += 1;
                let from = (worker as i64 + attempts) % ACCOUNTS + 1;
                let to = from % ACCOUNTS + 1;
                // Begun on A while it lives, the rest through B.
                let owner = if owner_dead { b.clone() } else { a.clone() };
                let attempt = transfer([owner, b.clone(), b.clone(), b.clone()], from, to);
                match attempt.await {
                    Ok(()) if owner_dead => after_kill += 1,
                    Ok(()) => {
                        done_before_kill.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(status) => {
                        // Calls to the dead instance fail in the client,
                        // without ErrorInfo.
                        let reason = {
                            use tonic_types::StatusExt;
                            status
                                .get_details_error_info()
                                .map(|info| info.reason)
                                .unwrap_or_default()
                        };
                        match (status.code(), reason.as_str()) {
                            (Code::Aborted, _) | (Code::Unknown, "COMMIT_OUTCOME_UNKNOWN") => {}
                            // Begin sent straight to the dead instance.
                            (Code::Unavailable, _) | (Code::Unknown, "") | (Code::Cancelled, _) => {
                                owner_dead = true
                            }
                            _ => panic!("unexpected failure: {status:?}"),
                        }
                        seen.push((status.code(), reason));
                    }
                }
                if !owner_dead
                    && tokio::time::timeout(Duration::ZERO, killed.notified())
                        .await
                        .is_ok()
                {
                    owner_dead = true;
                }
            }
            seen
        }));
    }
    // Kill A once transactions have been going for a while.
    assert!(
        eventually(Duration::from_secs(30), || async {
            done_before_kill.load(std::sync::atomic::Ordering::SeqCst) >= 20
        })
        .await
    );
    let owner = instances.remove(0);
    owner.signal("-KILL");
    let _ = owner.exit(Duration::from_secs(10)).await;
    killed.notify_waiters();
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.expect("a client panicked"));
    }
    // Every transaction was all or nothing.
    assert!(
        eventually(Duration::from_secs(10), || async {
            query_i64(&url, "SELECT SUM(balance) FROM accounts").await == Some(ACCOUNTS * 1000)
        })
        .await,
        "the total is kept; failures seen: {failures:?}"
    );
    assert!(
        failures
            .iter()
            .any(|(code, reason)| *code == Code::Aborted
                && reason == "TRANSACTION_OWNER_UNAVAILABLE")
            || failures.iter().any(|(code, _)| *code == Code::Unavailable),
        "the kill was noticed: {failures:?}"
    );
}
