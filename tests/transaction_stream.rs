//! The Transaction RPC: one transaction as one bidirectional stream.
mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;
use sqlgate::api::{
    self, StatementOutcome, TransactionCommit, TransactionRequest, TransactionResponse,
    TransactionRollback, TransactionStatement, statement_outcome::Outcome,
    transaction_request::Request as Step, transaction_response::Response as Answer,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

/// A Transaction stream seen from the client: requests go in one by one.
struct TxStream {
    requests: Option<mpsc::Sender<TransactionRequest>>,
    responses: Streaming<TransactionResponse>,
}

impl TxStream {
    async fn open(gateway: &TestGateway) -> TxStream {
        let (sender, receiver) = mpsc::channel(4);
        let begin = TransactionRequest {
            request: Some(Step::Begin(Default::default())),
        };
        sender.send(begin).await.unwrap();
        let mut client = gateway.client.clone();
        let responses = client
            .transaction(ReceiverStream::new(receiver))
            .await
            .expect("the stream opens")
            .into_inner();
        TxStream {
            requests: Some(sender),
            responses,
        }
    }

    async fn push(&self, step: Step) {
        let request = TransactionRequest {
            request: Some(step),
        };
        self.requests
            .as_ref()
            .expect("requests still open")
            .send(request)
            .await
            .expect("the call reads requests");
    }

    /// The next response, or the status that ended the stream.
    async fn answer(&mut self) -> Result<Option<Answer>, tonic::Status> {
        let message = tokio::time::timeout(Duration::from_secs(30), self.responses.message())
            .await
            .expect("an answer within 30 s")?;
        Ok(message.map(|m| m.response.expect("a response is set")))
    }

    async fn statement(&mut self, sql: &str, params: Vec<api::Value>) -> Outcome {
        self.push(Step::Statement(TransactionStatement {
            sql: sql.into(),
            params,
            max_rows: 0,
        }))
        .await;
        match self.answer().await {
            Ok(Some(Answer::Statement(StatementOutcome { outcome: Some(o) }))) => o,
            other => panic!("{sql}: expected a statement outcome, got {other:?}"),
        }
    }

    /// Commits and expects the stream to answer `Committed`.
    async fn commit(&mut self) {
        self.push(Step::Commit(TransactionCommit {
            ..Default::default()
        }))
        .await;
        let answer = self.answer().await;
        assert!(
            matches!(answer, Ok(Some(Answer::Committed(_)))),
            "expected committed, got {answer:?}"
        );
    }

    /// Ends the request stream (half-close) without commit or rollback.
    fn end_requests(&mut self) {
        self.requests = None;
    }
}

async fn began(stream: &mut TxStream) -> String {
    match stream.answer().await {
        Ok(Some(Answer::Begun(begun))) => begun.transaction_id,
        other => panic!("expected begun, got {other:?}"),
    }
}

async fn table(gateway: &TestGateway) {
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL)")
        .await;
    gateway.direct_exec("INSERT INTO t VALUES (1, 10)").await;
}

/// True when row `id` of `t` can be locked at once from another session:
/// no transaction holds it.
async fn row_is_free(gateway: &TestGateway, id: i64) -> bool {
    let mut conn = gateway.direct().await;
    let locked: Result<Option<i64>, _> = conn
        .query_first(format!("SELECT v FROM t WHERE id = {id} FOR UPDATE NOWAIT"))
        .await;
    conn.disconnect().await.unwrap();
    locked.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_statements_commit_answer_in_order() {
    let gateway = TestGateway::start().await;
    table(&gateway).await;
    let mut stream = TxStream::open(&gateway).await;
    let id = began(&mut stream).await;
    assert!(!id.is_empty());
    let inserted = stream
        .statement("INSERT INTO t VALUES (?, ?)", vec![int(2), int(20)])
        .await;
    assert!(
        matches!(inserted, Outcome::Result(ref r) if r.rows_affected == 1),
        "{inserted:?}"
    );
    let read = stream
        .statement("SELECT v FROM t ORDER BY id", vec![])
        .await;
    let Outcome::Result(read) = read else {
        panic!("{read:?}")
    };
    assert_eq!(read.rows.len(), 2, "the transaction sees its own insert");
    assert_eq!(
        gateway.direct_i64("SELECT COUNT(*) FROM t").await,
        Some(1),
        "not visible before commit"
    );
    stream.commit().await;
    assert!(
        matches!(stream.answer().await, Ok(None)),
        "the stream ends after commit"
    );
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(2));
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_error_that_leaves_the_transaction_open_is_answered_in_band() {
    let gateway = TestGateway::start().await;
    table(&gateway).await;
    let mut stream = TxStream::open(&gateway).await;
    began(&mut stream).await;
    stream
        .statement("INSERT INTO t VALUES (2, 20)", vec![])
        .await;
    let duplicate = stream
        .statement("INSERT INTO t VALUES (1, 11)", vec![])
        .await;
    let Outcome::Error(status) = duplicate else {
        panic!("expected an error, got {duplicate:?}")
    };
    assert_eq!(status.code, tonic::Code::AlreadyExists as i32, "{status:?}");
    assert!(status.message.contains("Duplicate"), "{status:?}");
    let info = status
        .details
        .iter()
        .find(|any| any.type_url.ends_with("google.rpc.ErrorInfo"))
        .expect("ErrorInfo travels with the in-band status");
    assert!(!info.value.is_empty());
    // Refused by the gateway's guard, in-band too; the transaction goes on.
    let refused = stream.statement("CREATE TABLE u (x INT)", vec![]).await;
    assert!(
        matches!(refused, Outcome::Error(ref s) if s.code == tonic::Code::FailedPrecondition as i32),
        "{refused:?}"
    );
    stream
        .statement("INSERT INTO t VALUES (3, 30)", vec![])
        .await;
    stream.commit().await;
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(3));
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literals_are_read_under_the_streams_own_sql_mode() {
    let gateway = TestGateway::start().await;
    let mut stream = TxStream::open(&gateway).await;
    began(&mut stream).await;
    let single = |outcome: Outcome| match outcome {
        Outcome::Result(r) => match &r.rows[0].values[0].kind {
            Some(api::value::Kind::StringValue(s)) => s.clone(),
            other => panic!("{other:?}"),
        },
        Outcome::Error(status) => panic!("{status:?}"),
    };
    let brien = r"SELECT 'O\'Brien'";
    assert_eq!(single(stream.statement(brien, vec![]).await), "O'Brien");
    stream
        .statement("SET sql_mode = 'NO_BACKSLASH_ESCAPES'", vec![])
        .await;
    assert_eq!(
        single(stream.statement(r"SELECT 'C:\'", vec![]).await),
        r"C:\"
    );
    // Refused in-band under the new mode; the transaction goes on.
    let refused = stream.statement(brien, vec![]).await;
    assert!(
        matches!(refused, Outcome::Error(ref s) if s.code == tonic::Code::InvalidArgument as i32),
        "{refused:?}"
    );
    stream.commit().await;
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_answers_and_undoes() {
    let gateway = TestGateway::start().await;
    table(&gateway).await;
    let mut stream = TxStream::open(&gateway).await;
    began(&mut stream).await;
    stream.statement("UPDATE t SET v = 99", vec![]).await;
    stream.push(Step::Rollback(TransactionRollback {})).await;
    match stream.answer().await {
        Ok(Some(Answer::RolledBack(r))) => assert!(r.rolled_back),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 1").await,
        Some(10)
    );
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_ending_before_commit_roll_back_at_once() {
    // An idle timeout far longer than the test: only the stream's end can
    // free the row.
    let gateway = TestGateway::start_with(|config| {
        config.transactions.idle_timeout = Duration::from_secs(600);
    })
    .await;
    table(&gateway).await;
    let mut stream = TxStream::open(&gateway).await;
    began(&mut stream).await;
    stream
        .statement("UPDATE t SET v = 99 WHERE id = 1", vec![])
        .await;
    assert!(
        !row_is_free(&gateway, 1).await,
        "the stream's transaction holds the row"
    );
    stream.end_requests();
    let ended = stream
        .answer()
        .await
        .expect_err("the stream ends with an error");
    assert_eq!(ended.code(), tonic::Code::InvalidArgument, "{ended:?}");
    assert!(ended.message().contains("rolled back"), "{ended:?}");
    assert!(
        eventually(Duration::from_secs(10), || row_is_free(&gateway, 1)).await,
        "the row is freed at once, not after the idle timeout"
    );
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 1").await,
        Some(10)
    );
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_rolls_back_at_once() {
    let gateway = TestGateway::start_with(|config| {
        config.transactions.idle_timeout = Duration::from_secs(600);
    })
    .await;
    table(&gateway).await;
    let mut stream = TxStream::open(&gateway).await;
    began(&mut stream).await;
    stream
        .statement("UPDATE t SET v = 99 WHERE id = 1", vec![])
        .await;
    assert!(!row_is_free(&gateway, 1).await);
    // The client drops the call (an RST_STREAM on the wire).
    drop(stream);
    assert!(
        eventually(Duration::from_secs(10), || row_is_free(&gateway, 1)).await,
        "the row is freed at once, not after the idle timeout"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            gateway.direct_i64("SELECT v FROM t WHERE id = 1").await == Some(10)
        })
        .await
    );
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_ends_the_victims_stream_with_aborted() {
    let gateway = TestGateway::start().await;
    table(&gateway).await;
    gateway.direct_exec("INSERT INTO t VALUES (2, 20)").await;
    let mut a = TxStream::open(&gateway).await;
    let mut b = TxStream::open(&gateway).await;
    began(&mut a).await;
    began(&mut b).await;
    a.statement("UPDATE t SET v = v + 1 WHERE id = 1", vec![])
        .await;
    b.statement("UPDATE t SET v = v + 1 WHERE id = 2", vec![])
        .await;
    // Each now waits for the other's row: one of them is the victim.
    let update = |id| {
        Step::Statement(TransactionStatement {
            sql: format!("UPDATE t SET v = v + 1 WHERE id = {id}"),
            params: vec![],
            max_rows: 0,
        })
    };
    a.push(update(2)).await;
    b.push(update(1)).await;
    let (answer_a, answer_b) = tokio::join!(a.answer(), b.answer());
    let (victim, survivor) = match (answer_a, answer_b) {
        (Err(status), Ok(answer)) | (Ok(answer), Err(status)) => (status, answer),
        other => panic!("exactly one stream ends: {other:?}"),
    };
    assert_eq!(victim.code(), tonic::Code::Aborted, "{victim:?}");
    assert!(
        matches!(
            survivor,
            Some(Answer::Statement(StatementOutcome {
                outcome: Some(Outcome::Result(_))
            }))
        ),
        "{survivor:?}"
    );
    // The survivor's client leaves: its transaction is rolled back at once.
    drop((a, b));
    assert!(eventually(Duration::from_secs(10), || row_is_free(&gateway, 1)).await);
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_request_must_begin_and_only_it() {
    let gateway = TestGateway::start().await;
    table(&gateway).await;
    // A statement first.
    let (sender, receiver) = mpsc::channel(1);
    sender
        .send(TransactionRequest {
            request: Some(Step::Commit(TransactionCommit {
                ..Default::default()
            })),
        })
        .await
        .unwrap();
    let mut client = gateway.client.clone();
    let mut responses = client
        .transaction(ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    let status = responses.message().await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    drop(sender);
    // A second begin ends the stream; its transaction is rolled back.
    let mut stream = TxStream::open(&gateway).await;
    began(&mut stream).await;
    stream
        .statement("UPDATE t SET v = 99 WHERE id = 1", vec![])
        .await;
    stream.push(Step::Begin(Default::default())).await;
    let status = stream.answer().await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(eventually(Duration::from_secs(10), || row_is_free(&gateway, 1)).await);
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 1").await,
        Some(10)
    );
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_expires_like_an_idle_transaction() {
    let gateway = TestGateway::start_with(|config| {
        config.transactions.idle_timeout = Duration::from_millis(500);
    })
    .await;
    table(&gateway).await;
    let mut stream = TxStream::open(&gateway).await;
    began(&mut stream).await;
    stream
        .statement("UPDATE t SET v = 99 WHERE id = 1", vec![])
        .await;
    // Nothing more is sent: the answer is the stream's end.
    let status = stream.answer().await.expect_err("expired");
    assert_eq!(status.code(), tonic::Code::Aborted, "{status:?}");
    assert_eq!(error_info(&status).0, "TRANSACTION_EXPIRED");
    assert!(eventually(Duration::from_secs(10), || row_is_free(&gateway, 1)).await);
    assert_eq!(
        gateway.direct_i64("SELECT v FROM t WHERE id = 1").await,
        Some(10)
    );
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_stream_holds_no_request_permit_between_messages() {
    let gateway = TestGateway::start_with(|config| {
        config.requests.max_concurrent_requests = 1;
        config.pool.acquire_timeout = Duration::from_millis(500);
    })
    .await;
    table(&gateway).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = TxStream::open(&gateway).await;
        began(&mut stream).await;
        streams.push(stream);
    }
    // With one permit in all, three open streams leave room for other calls,
    // and for each other's messages.
    let mut client = gateway.client.clone();
    let read = execute(&mut client, "SELECT v FROM t WHERE id = 1", vec![])
        .await
        .expect("a unary call gets the permit");
    assert_eq!(read.rows.len(), 1);
    for stream in &mut streams {
        let read = stream.statement("SELECT v FROM t", vec![]).await;
        assert!(matches!(read, Outcome::Result(_)), "{read:?}");
        stream.commit().await;
    }
    gateway.shut_down().await;
}
