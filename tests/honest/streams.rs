//! Transaction streams cut by a stall or a deadline, and unread forwarded
//! streams that never hold up other forwarded calls.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use sqlgate::api::{
    self, TransactionRequest, TransactionResponse, database_client::DatabaseClient,
    transaction_request::Request as Step, transaction_response::Response as Answer,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, transport::Channel};

use super::*;

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
