//! Honest outcomes when a forwarded or streamed call is cut by time, a
//! restarted owner, commit outcomes kept per principal, and forwarded calls
//! that never hold each other up (issue 20), with real gateway processes.
mod common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use common::*;
use mysql_async::prelude::Queryable;
use sqlgate::api::{
    self, CommitRequest, ExecuteBatchRequest, ExecuteRequest, RollbackRequest, TransactionRequest,
    TransactionResponse, database_client::DatabaseClient, transaction_request::Request as Step,
    transaction_response::Response as Answer,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, transport::Channel};

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

/// A Transaction stream: requests sent up front, responses read on demand.
async fn open_transaction(
    client: &mut DatabaseClient<Channel>,
    steps: Vec<Step>,
    timeout: Option<Duration>,
) -> (
    mpsc::Sender<TransactionRequest>,
    tonic::Streaming<TransactionResponse>,
) {
    let (sender, receiver) = mpsc::channel(64);
    for step in steps {
        let request = TransactionRequest {
            request: Some(step),
        };
        sender.send(request).await.unwrap();
    }
    let mut request = tonic::Request::new(ReceiverStream::new(receiver));
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    let responses = client.transaction(request).await.unwrap().into_inner();
    (sender, responses)
}

fn statement(sql: &str) -> Step {
    Step::Statement(api::TransactionStatement {
        sql: sql.into(),
        ..Default::default()
    })
}

/// How a stream ended: its last answer, and its status.
async fn read_to_end(
    responses: &mut tonic::Streaming<TransactionResponse>,
) -> (Option<Answer>, Result<(), tonic::Status>) {
    let mut last = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), responses.message())
            .await
            .expect("the stream ends")
        {
            Ok(Some(message)) => last = message.response,
            Ok(None) => return (last, Ok(())),
            Err(status) => return (last, Err(status)),
        }
    }
}

/// Transaction streams whose client stops reading past
/// --stream-stall-timeout end with an explicit outcome: `committed` when
/// COMMIT ran, otherwise STREAM_STALLED saying it was rolled back — never OK
/// without either. Streams stall at different points (before or at their
/// commit's answer): what each says matches the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_transaction_stream_ends_with_an_explicit_outcome() {
    const STREAMS: i64 = 6;
    let (_, url) = fresh_database().await;
    let gateway = GatewayProcess::start(
        ["--database-url", &url, "--stream-stall-timeout", "1s"],
        &[],
    );
    let mut setup = gateway.client().await;
    execute(&mut setup, "CREATE TABLE t (id INT PRIMARY KEY)", vec![])
        .await
        .unwrap();
    let mut streams = Vec::new();
    for k in 0..STREAMS {
        // A connection of its own with a small window: its unread big
        // answer fills it at once.
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", gateway.address))
                .unwrap()
                .initial_stream_window_size(65_535)
                .initial_connection_window_size(65_535)
                .connect()
                .await
                .unwrap();
        let mut client = DatabaseClient::new(channel);
        let mut steps = vec![
            Step::Begin(Default::default()),
            statement(&format!("INSERT INTO t VALUES ({k})")),
            statement("SELECT REPEAT('x', 300000)"),
        ];
        steps.extend((0..k).map(|_| statement("SELECT 1")));
        steps.push(Step::Commit(Default::default()));
        streams.push(open_transaction(&mut client, steps, None).await);
    }
    // Every stream has ended on the gateway (committed, or rolled back once
    // it stalled) before anyone reads: each one's call is logged as over.
    let over = || {
        let log = gateway.log();
        log.lines()
            .filter(|l| l.contains("rpc f") && l.contains("\"Transaction\""))
            .count()
    };
    assert!(
        eventually(Duration::from_secs(20), || async {
            over() == STREAMS as usize
        })
        .await,
        "every stream ends ({} of {STREAMS}):\n{}",
        over(),
        gateway.log()
    );
    let mut stalled = 0;
    for (k, (_requests, mut responses)) in streams.into_iter().enumerate() {
        let (last, status) = read_to_end(&mut responses).await;
        let present = query_i64(&url, &format!("SELECT COUNT(*) FROM t WHERE id = {k}")).await;
        match (last, status) {
            (Some(Answer::Committed(_)), Ok(())) => {
                assert_eq!(present, Some(1), "stream {k} said committed")
            }
            (_, Err(status)) => {
                assert_eq!(
                    status.code(),
                    Code::DeadlineExceeded,
                    "stream {k}: {status:?}"
                );
                assert_eq!(error_info(&status).0, "STREAM_STALLED", "stream {k}");
                assert!(status.message().contains("rolled back"), "{status:?}");
                assert_eq!(present, Some(0), "stream {k} said rolled back");
                stalled += 1;
            }
            (last, Ok(())) => panic!("stream {k} ended OK without an outcome: {last:?}"),
        }
    }
    assert!(stalled >= 1, "some streams stalled before their commit");
}

/// A Transaction stream whose deadline passes while its COMMIT is in flight
/// ends with UNKNOWN / COMMIT_OUTCOME_UNKNOWN, not DEADLINE_EXCEEDED
/// ("rolled back"); the commit then completes and a Commit call on the id
/// answers that it committed.
///
/// The COMMIT is held on the server by another session's `BACKUP STAGE
/// BLOCK_COMMIT` (commits wait; the Begin and the INSERT before it do not),
/// and the test sees it waiting there before it reads the stream's end.
/// Seen before the stream's deadline could have passed, the COMMIT was
/// certainly in flight when it did. On a machine too slow for that (the
/// deadline passed before the COMMIT was seen) nothing is asserted about
/// that attempt and the test tries again with a longer deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_deadline_during_commit_says_the_outcome_is_unknown() {
    let server = private_server("honest-commit-deadline");
    let url = server.url("mysql");
    let gateway = GatewayProcess::start(["--database-url", &url], &[]);
    let mut client = gateway.client().await;
    execute(&mut client, "CREATE DATABASE d", vec![])
        .await
        .unwrap();
    execute(&mut client, "CREATE TABLE d.t (id INT PRIMARY KEY)", vec![])
        .await
        .unwrap();
    let mut blocker = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    let commit_waits = || async {
        query_i64(
            &url,
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = 'COMMIT'",
        )
        .await
            > Some(0)
    };
    let mut deadline = Duration::from_secs(3);
    for attempt in 1..=3 {
        blocker.query_drop("BACKUP STAGE START").await.unwrap();
        blocker
            .query_drop("BACKUP STAGE BLOCK_COMMIT")
            .await
            .unwrap();
        let steps = vec![
            Step::Begin(Default::default()),
            statement(&format!("INSERT INTO d.t VALUES ({attempt})")),
            Step::Commit(Default::default()),
        ];
        // The gateway's deadline starts no earlier than this.
        let started = Instant::now();
        let (_requests, mut responses) = open_transaction(&mut client, steps, Some(deadline)).await;
        let mut seen_in_time = false;
        while started.elapsed() < deadline {
            if commit_waits().await {
                seen_in_time = started.elapsed() < deadline;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (begun, last, status) = {
            let first = responses.message().await;
            let (last, status) = read_to_end(&mut responses).await;
            (first, last, status)
        };
        blocker.query_drop("BACKUP STAGE END").await.unwrap();
        if !seen_in_time {
            eprintln!(
                "attempt {attempt}: the COMMIT was not seen waiting within the {deadline:?} deadline (slow machine); trying with a longer one"
            );
            deadline *= 2;
            continue;
        }
        let Some(Answer::Begun(begun)) = begun.unwrap().unwrap().response else {
            panic!("begun first");
        };
        assert!(
            matches!(last, Some(Answer::Statement(_))),
            "the insert's answer, then nothing: {last:?}"
        );
        let status = status.expect_err("the deadline passed during COMMIT");
        assert_eq!(status.code(), Code::Unknown, "{status:?}");
        assert_eq!(error_info(&status).0, "COMMIT_OUTCOME_UNKNOWN");
        // Let go, the COMMIT completes; the id tells the outcome.
        client
            .commit(CommitRequest {
                transaction_id: begun.transaction_id,
                ..Default::default()
            })
            .await
            .expect("it committed");
        assert_eq!(
            query_i64(
                &url,
                &format!("SELECT COUNT(*) FROM d.t WHERE id = {attempt}")
            )
            .await,
            Some(1)
        );
        return;
    }
    panic!("the COMMIT was never seen waiting before the stream's deadline");
}

/// Three forwarded ExecuteStreams whose client never reads do not hold up
/// other forwarded calls to the same owner, and are ended with
/// STREAM_STALLED once --stream-stall-timeout passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_forwarded_streams_never_block_other_forwarded_calls() {
    let (_, url) = fresh_database().await;
    let instances = fleet(&url, 2, &["--stream-stall-timeout", "3s"]);
    let (mut a, b) = (instances[0].client().await, instances[1].client().await);
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let tx = begin_on(&mut a).await;
        // A client of its own, like another user's program.
        let mut reader = instances[1].client().await;
        let big = statement_in("SELECT seq, REPEAT('x', 1000) FROM seq_1_to_20000", &tx);
        let mut stream = reader.execute_stream(big).await.unwrap().into_inner();
        stream.message().await.unwrap().expect("the header");
        stalled.push(stream);
    }
    let probe = begin_on(&mut a).await;
    let mut slowest = Duration::ZERO;
    let measuring = Instant::now();
    while measuring.elapsed() < Duration::from_secs(2) {
        let started = Instant::now();
        let mut b = b.clone();
        let call = with_timeout(statement_in("SELECT 1", &probe), Duration::from_secs(5));
        b.execute(call)
            .await
            .expect("a forwarded call while streams stall");
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("slowest forwarded call while 3 forwarded streams stall: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "forwarded calls were held up for {slowest:?}"
    );
    // Another client's forwarded stream (3 MiB, more than a stalled
    // stream's window) is read whole meanwhile.
    let started = Instant::now();
    let mut reader = b.clone();
    let big = statement_in("SELECT seq, REPEAT('x', 300) FROM seq_1_to_10000", &probe);
    let mut stream = reader.execute_stream(big).await.unwrap().into_inner();
    while stream.message().await.expect("read whole").is_some() {}
    let took = started.elapsed();
    eprintln!("a forwarded 3 MiB stream read whole while 3 stall: {took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    // Read once the forwarder has ended them: what was queued, then
    // STREAM_STALLED.
    assert!(
        eventually(Duration::from_secs(20), || async {
            instances[1]
                .log()
                .matches("a forwarded stream's client stalled")
                .count()
                == 3
        })
        .await,
        "the forwarder ends the stalled streams"
    );
    let mut stream = stalled.remove(0);
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await
    .expect("the stream ends");
    let status = ended.expect("a stalled stream ends with a status");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(error_info(&status).0, "STREAM_STALLED");
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
