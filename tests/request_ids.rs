//! Request ids for writes (issue 23): the outcome recorded in the same
//! transaction as the work, replays, reuse, concurrency, retention,
//! principals, and a lost answer retried on another instance of a fleet.
mod common;

use std::time::Duration;

use common::*;
use sqlgate::api::{
    self, CommitRequest, ExecuteBatchRequest, ExecuteRequest, Statement, TransactionCommit,
    TransactionRequest, TransactionStatement, database_client::DatabaseClient,
    transaction_request::Request as Step, transaction_response::Response as Answer,
};
use tonic::{Code, transport::Channel};

/// An autocommit write with a request id.
fn with_id(sql: &str, params: Vec<api::Value>, request_id: &str) -> ExecuteRequest {
    ExecuteRequest {
        sql: sql.into(),
        params,
        request_id: request_id.into(),
        ..Default::default()
    }
}

fn commit_with_id(transaction_id: &str, request_id: &str) -> CommitRequest {
    CommitRequest {
        transaction_id: transaction_id.into(),
        request_id: request_id.into(),
    }
}

fn batch_with_id(values: &[i64], request_id: &str) -> ExecuteBatchRequest {
    ExecuteBatchRequest {
        statements: values
            .iter()
            .map(|v| Statement {
                sql: "INSERT INTO t (v) VALUES (?)".into(),
                params: vec![int(*v)],
            })
            .collect(),
        request_id: request_id.into(),
        ..Default::default()
    }
}

/// Runs `request`, which must succeed; true when it was answered as a replay.
async fn replayed(client: &mut DatabaseClient<Channel>, request: ExecuteRequest) -> bool {
    let answer = client.execute(request).await.expect("the call succeeds");
    answer.into_inner().replayed
}

async fn create_t(gateway: &TestGateway) {
    gateway
        .direct_exec("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)")
        .await;
}

async fn count(gateway: &TestGateway, sql: &str) -> i64 {
    gateway.direct_i64(sql).await.unwrap_or(0)
}

/// Begins a transaction, adds 1 to row `id`'s v in it, and returns its id.
async fn bump_in_transaction(client: &mut DatabaseClient<Channel>, id: i64) -> String {
    let tx = begin_on(client).await;
    client
        .execute(ExecuteRequest {
            sql: "UPDATE t SET v = v + 1 WHERE id = ?".into(),
            params: vec![int(id)],
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await
        .expect("the update runs");
    tx
}

#[tokio::test]
async fn a_replay_answers_the_recorded_outcome_and_runs_nothing_again() {
    let gateway = TestGateway::start().await;
    create_t(&gateway).await;
    let mut client = gateway.client.clone();

    // An autocommit INSERT.
    let insert = || with_id("INSERT INTO t (v) VALUES (?)", vec![int(7)], "r-1");
    let first = client.execute(insert()).await.unwrap().into_inner();
    assert!(!first.replayed);
    assert_eq!(first.rows_affected, 1);
    assert!(first.last_insert_id > 0);
    assert!(first.transaction_id.is_empty(), "{first:?}");
    let again = client.execute(insert()).await.unwrap().into_inner();
    assert!(again.replayed, "{again:?}");
    assert_eq!(
        (again.rows_affected, again.last_insert_id),
        (1, first.last_insert_id)
    );
    assert_eq!(count(&gateway, "SELECT COUNT(*) FROM t").await, 1);

    // An INSERT with an explicit key: running it again would fail with a
    // duplicate key; the replay never runs it.
    let keyed = || with_id("INSERT INTO t (id, v) VALUES (100, 0)", vec![], "r-2");
    assert!(!client.execute(keyed()).await.unwrap().into_inner().replayed);
    let again = client
        .execute(keyed())
        .await
        .expect("a replay, not a duplicate key");
    assert!(again.into_inner().replayed);

    // A one-call transaction (begin + commit) is the same statement.
    let one_call = ExecuteRequest {
        begin: Some(Default::default()),
        commit: true,
        ..insert()
    };
    let replayed = client.execute(one_call).await.unwrap().into_inner();
    assert!(replayed.replayed && replayed.transaction_id.is_empty());

    // A batch: each statement's counts come back.
    let first = client
        .execute_batch(batch_with_id(&[1, 2], "r-3"))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.replayed);
    let again = client
        .execute_batch(batch_with_id(&[1, 2], "r-3"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    let counts = |r: &api::ExecuteBatchResponse| {
        r.results
            .iter()
            .map(|s| (s.rows_affected, s.last_insert_id))
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&again), counts(&first));
    assert_eq!(count(&gateway, "SELECT COUNT(*) FROM t").await, 4);

    // The commit of an interactive transaction: the second attempt is
    // rolled back and answered as a replay.
    let tx = bump_in_transaction(&mut client, 100).await;
    let committed = client.commit(commit_with_id(&tx, "r-4")).await.unwrap();
    assert!(!committed.into_inner().replayed);
    let tx = bump_in_transaction(&mut client, 100).await;
    let committed = client.commit(commit_with_id(&tx, "r-4")).await.unwrap();
    assert!(committed.into_inner().replayed);
    // The same Commit again, its transaction gone: still the record.
    let committed = client.commit(commit_with_id(&tx, "r-4")).await.unwrap();
    assert!(committed.into_inner().replayed);
    // A Transaction stream's commit with the id: a replay too.
    let (requests, stream) = tokio::sync::mpsc::channel(4);
    for step in [
        Step::Begin(Default::default()),
        Step::Statement(TransactionStatement {
            sql: "UPDATE t SET v = v + 1 WHERE id = 100".into(),
            ..Default::default()
        }),
        Step::Commit(TransactionCommit {
            request_id: "r-4".into(),
        }),
    ] {
        requests
            .send(TransactionRequest {
                request: Some(step),
            })
            .await
            .unwrap();
    }
    let mut responses = client
        .transaction(tokio_stream::wrappers::ReceiverStream::new(stream))
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(response) = responses.message().await.unwrap() {
        last = response.response;
    }
    assert!(
        matches!(&last, Some(Answer::Committed(c)) if c.replayed),
        "{last:?}"
    );
    assert_eq!(
        count(&gateway, "SELECT v FROM t WHERE id = 100").await,
        1,
        "the transaction's update was applied once"
    );
    assert_eq!(
        count(&gateway, "SELECT COUNT(*) FROM sqlgate_outcomes").await,
        4,
        "one record per request id"
    );
}

#[tokio::test]
async fn a_request_id_reused_for_other_work_is_refused_and_changes_nothing() {
    let gateway = TestGateway::start().await;
    create_t(&gateway).await;
    let mut client = gateway.client.clone();
    let first = with_id("INSERT INTO t (v) VALUES (?)", vec![int(1)], "x");
    client.execute(first).await.unwrap();

    fn refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>) {
        let status = result.expect_err("refused");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert_eq!(reason(&status), "REQUEST_ID_REUSED");
    }
    // Other parameters, another statement, a batch, an interactive commit.
    refused(
        client
            .execute(with_id("INSERT INTO t (v) VALUES (?)", vec![int(2)], "x"))
            .await,
    );
    refused(
        client
            .execute(with_id("UPDATE t SET v = 5", vec![], "x"))
            .await,
    );
    refused(client.execute_batch(batch_with_id(&[1], "x")).await);
    let tx = bump_in_transaction(&mut client, 1).await;
    refused(client.commit(commit_with_id(&tx, "x")).await);
    assert!(
        !rollback(&gateway, &tx).await,
        "the refused commit rolled its transaction back"
    );
    assert_eq!(gateway.direct_ids().await, vec![1]);
    assert_eq!(count(&gateway, "SELECT v FROM t").await, 1);

    // Requests the id does not apply to.
    fn invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>) {
        let status = result.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    let tx = begin(&gateway, None).await;
    let in_transaction = ExecuteRequest {
        transaction_id: tx.clone(),
        ..with_id("UPDATE t SET v = 9", vec![], "y")
    };
    invalid(client.execute(in_transaction).await);
    rollback(&gateway, &tx).await;
    let too_long = "z".repeat(256);
    invalid(
        client
            .execute(with_id("UPDATE t SET v = 9", vec![], &too_long))
            .await,
    );
    let stream = client
        .execute_stream(with_id("UPDATE t SET v = 9", vec![], "y"))
        .await;
    let status = match stream {
        Err(status) => status,
        Ok(response) => response.into_inner().message().await.expect_err("refused"),
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // DDL commits implicitly: it cannot run in the request's transaction.
    let ddl = client
        .execute(with_id("CREATE TABLE u (id INT)", vec![], "y"))
        .await
        .expect_err("refused");
    assert_eq!(reason(&ddl), "IMPLICIT_COMMIT_IN_TRANSACTION");
    assert_eq!(count(&gateway, "SELECT v FROM t").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_with_one_request_id_apply_once() {
    let gateway = TestGateway::start().await;
    create_t(&gateway).await;
    gateway
        .direct_exec("INSERT INTO t (id, v) VALUES (1, 0)")
        .await;
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let mut client = gateway.client.clone();
            tokio::spawn(async move {
                let bump = with_id("UPDATE t SET v = v + 1 WHERE id = 1", vec![], "once");
                client.execute(bump).await.map(|r| r.into_inner())
            })
        })
        .collect();
    let mut ran = 0;
    for call in calls {
        let answer = call.await.unwrap().expect("every call succeeds");
        assert_eq!(answer.rows_affected, 1);
        ran += usize::from(!answer.replayed);
    }
    assert_eq!(ran, 1, "exactly one call ran, the others were replays");
    assert_eq!(count(&gateway, "SELECT v FROM t WHERE id = 1").await, 1);

    // Two interactive transactions committing with one id at once.
    let mut client = gateway.client.clone();
    let (a, b) = (
        bump_in_transaction(&mut client, 1).await,
        begin_on(&mut client).await,
    );
    let mut other = client.clone();
    // b waits on a's row lock until a ends.
    let b_bump = tokio::spawn(async move {
        other
            .execute(ExecuteRequest {
                sql: "UPDATE t SET v = v + 1 WHERE id = 1".into(),
                transaction_id: b.clone(),
                ..Default::default()
            })
            .await
            .expect("b's update runs once a ended");
        other.commit(commit_with_id(&b, "twice")).await
    });
    let a_commit = client.commit(commit_with_id(&a, "twice")).await.unwrap();
    let b_commit = b_bump.await.unwrap().unwrap();
    assert!(!a_commit.into_inner().replayed);
    assert!(b_commit.into_inner().replayed);
    assert_eq!(count(&gateway, "SELECT v FROM t WHERE id = 1").await, 2);
}

#[tokio::test]
async fn records_expire_after_the_retention() {
    let gateway = TestGateway::start_with(|config| {
        config.request_ids.retention = Duration::from_secs(1);
    })
    .await;
    create_t(&gateway).await;
    let mut client = gateway.client.clone();
    let insert = || with_id("INSERT INTO t (v) VALUES (1)", vec![], "old");
    assert!(!replayed(&mut client, insert()).await);
    assert_eq!(
        count(&gateway, "SELECT COUNT(*) FROM sqlgate_outcomes").await,
        1
    );
    let purged = eventually(Duration::from_secs(15), || async {
        count(&gateway, "SELECT COUNT(*) FROM sqlgate_outcomes").await == 0
    })
    .await;
    assert!(purged, "the purge removed the expired record");
    // Forgotten: the same id runs again.
    assert!(!replayed(&mut client, insert()).await);
    assert_eq!(count(&gateway, "SELECT COUNT(*) FROM t").await, 2);
}

#[tokio::test]
async fn principals_do_not_see_each_others_request_ids() {
    let tokens = token_file(
        "request-ids",
        "token-alice-0123456789,alice,read-write\ntoken-bob-0123456789ab,bob,read-write\ntoken-rita-0123456789a,rita,read-only\n",
    );
    let gateway = TestGateway::start_with(|config| {
        config.auth_tokens_file = Some(tokens.clone());
    })
    .await;
    create_t(&gateway).await;
    let mut client = gateway.client.clone();
    let insert = |token: &str, v: i64| {
        as_caller(
            token,
            with_id("INSERT INTO t (v) VALUES (?)", vec![int(v)], "shared"),
        )
    };
    let alice = client
        .execute(insert("token-alice-0123456789", 1))
        .await
        .unwrap();
    assert!(!alice.into_inner().replayed);
    // Bob's "shared" is his own: other work, not a reuse, not a replay.
    let bob = client
        .execute(insert("token-bob-0123456789ab", 2))
        .await
        .unwrap();
    assert!(!bob.into_inner().replayed);
    let bob_again = client
        .execute(insert("token-bob-0123456789ab", 2))
        .await
        .unwrap();
    assert!(bob_again.into_inner().replayed);
    let alice_as_bob = client
        .execute(insert("token-alice-0123456789", 2))
        .await
        .expect_err("not alice's");
    assert_eq!(reason(&alice_as_bob), "REQUEST_ID_REUSED");
    // A read-only principal has no writes to record: its id is ignored.
    let read = as_caller(
        "token-rita-0123456789a",
        with_id("SELECT COUNT(*) FROM t", vec![], "shared"),
    );
    let read = client.execute(read).await.unwrap().into_inner();
    assert!(!read.replayed && read.rows.len() == 1);
    assert_eq!(count(&gateway, "SELECT COUNT(*) FROM t").await, 2);
    assert_eq!(
        count(&gateway, "SELECT COUNT(*) FROM sqlgate_outcomes").await,
        2
    );
}

/// The answer of a Commit is lost (the client gives up while COMMIT waits,
/// then the instance that ran it is SIGKILLed); the client reruns the
/// transaction with the same request id on the other instance of the
/// fleet, and on a restarted first one: both answer the recorded commit,
/// and the work is there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_commit_answer_is_replayed_by_another_instance() {
    let (_, url) = fresh_database().await;
    let start = |listen: &str, peers: &str| {
        ["--database-url", &url, "--listen", listen, "--peers", peers]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let mut fleet = GatewayProcess::fleet(2, &[], start);
    let (b, a) = (fleet.pop().unwrap(), fleet.pop().unwrap());
    let mut on_a = a.client().await;
    execute(
        &mut on_a,
        "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL)",
        vec![],
    )
    .await
    .unwrap();
    // Also makes the outcomes table (DDL would wait behind the lock below).
    on_a.execute(with_id("INSERT INTO t VALUES (1, 0)", vec![], "setup"))
        .await
        .unwrap();

    let tx = bump_in_transaction(&mut on_a, 1).await;
    // Writes wait (the record's INSERT, then COMMIT) while this is held.
    let mut lock = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    use mysql_async::prelude::Queryable;
    lock.query_drop("FLUSH TABLES WITH READ LOCK")
        .await
        .unwrap();
    let mut request = tonic::Request::new(commit_with_id(&tx, "transfer-1"));
    request.set_timeout(Duration::from_millis(500));
    let lost = on_a.commit(request).await.expect_err("the client gave up");
    // UNKNOWN when the gateway answers before the client's own timer.
    assert!(
        matches!(lost.code(), Code::DeadlineExceeded | Code::Cancelled)
            || (lost.code() == Code::Unknown && reason(&lost) == "COMMIT_OUTCOME_UNKNOWN"),
        "{lost:?}"
    );
    lock.query_drop("UNLOCK TABLES").await.unwrap();
    let committed = eventually(Duration::from_secs(10), || async {
        query_i64(&url, "SELECT v FROM t WHERE id = 1").await == Some(1)
    })
    .await;
    assert!(committed, "the COMMIT went on after the client left");
    a.signal("-KILL");
    a.exit(Duration::from_secs(10)).await;

    let rerun = |mut client: DatabaseClient<Channel>| async move {
        let tx = bump_in_transaction(&mut client, 1).await;
        client
            .commit(commit_with_id(&tx, "transfer-1"))
            .await
            .expect("the rerun's commit answers")
            .into_inner()
    };
    assert!(rerun(b.client().await).await.replayed);
    // A's replacement (a new process on the same database) knows it too.
    let restarted = GatewayProcess::start(["--database-url", url.as_str()], &[]);
    assert!(rerun(restarted.client().await).await.replayed);
    assert_eq!(
        query_i64(&url, "SELECT v FROM t WHERE id = 1").await,
        Some(1)
    );
    assert_eq!(
        query_i64(
            &url,
            "SELECT COUNT(*) FROM sqlgate_outcomes WHERE request_id = 'transfer-1'"
        )
        .await,
        Some(1)
    );
}

/// The record is written as text (no PREPARE after each reset): a request id
/// with quotes, backslashes and non-ASCII characters is stored byte for byte,
/// even when the call's own SQL set `NO_BACKSLASH_ESCAPES` and `ANSI_QUOTES`
/// on the session before the record is written, and a retry (whose record
/// collides with it only if the bytes are the same) is answered from it.
#[tokio::test]
async fn request_ids_with_quotes_backslashes_and_non_ascii_are_recorded_exactly() {
    let gateway = TestGateway::start().await;
    create_t(&gateway).await;
    gateway
        .direct_exec("INSERT INTO t (id, v) VALUES (1, 0)")
        .await;
    let mut client = gateway.client.clone();
    let id = "it's \\' a \"q\" \\\\ ü 日本 '' \\0 --";
    let mut answers = Vec::new();
    for _attempt in 0..2 {
        let tx = bump_in_transaction(&mut client, 1).await;
        client
            .execute(ExecuteRequest {
                sql:
                    "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES,ANSI_QUOTES')"
                        .into(),
                transaction_id: tx.clone(),
                ..Default::default()
            })
            .await
            .expect("the session's sql_mode is set");
        let answer = client
            .commit(commit_with_id(&tx, id))
            .await
            .expect("the commit goes through or is replayed")
            .into_inner();
        answers.push(answer.replayed);
    }
    // The first committed; the retry was answered from its record (its own
    // transaction rolled back).
    assert_eq!(answers, [false, true]);
    assert_eq!(count(&gateway, "SELECT v FROM t WHERE id = 1").await, 1);
    let mut conn = gateway.direct().await;
    let stored: Vec<String> = mysql_async::prelude::Queryable::query(
        &mut conn,
        "SELECT HEX(request_id) FROM sqlgate_outcomes",
    )
    .await
    .expect("the outcomes table can be read");
    let expected: String = id.bytes().map(|b| format!("{b:02X}")).collect();
    assert_eq!(stored, vec![expected]);
}
