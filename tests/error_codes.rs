//! Every status the Database service answers carries a `google.rpc.ErrorInfo`
//! (domain `sqlgate`) with a documented reason and the README's code: also
//! the ones tonic produces itself (oversize, bad framing), expired client
//! deadlines, unknown server errors and driver refusals.
mod common;

use std::time::Duration;

use common::*;
use sqlgate::api::{self, ExecuteRequest};
use tonic::{Code, Request, Status, codegen::Bytes};

fn sql(text: &str) -> ExecuteRequest {
    ExecuteRequest {
        sql: text.into(),
        ..Default::default()
    }
}

/// Code and ErrorInfo reason of a status; fails when it has no ErrorInfo.
fn code_and_reason(status: &Status) -> (Code, String) {
    let (reason, _) = error_info(status);
    (status.code(), reason)
}

/// The gRPC status of a raw HTTP/2 call to `path` with extra `headers`, whose
/// request body is `body` (gRPC framing included, so it can be wrong): from
/// the response headers (trailers-only) or from the trailers.
async fn raw_call(
    address: std::net::SocketAddr,
    path: &str,
    headers: &[(&'static str, &'static str)],
    body: Vec<u8>,
) -> Status {
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let mut request = tonic::codegen::http::Request::builder()
        .method("POST")
        .uri(format!("http://{address}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (response, mut send) = client
        .send_request(request.body(()).unwrap(), body.is_empty())
        .unwrap();
    if !body.is_empty() {
        send.send_data(Bytes::from(body), true).unwrap();
    }
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    if let Some(status) = Status::from_header_map(response.headers()) {
        return status;
    }
    let mut body = response.into_body();
    while let Some(data) = body.data().await {
        let _ = data.unwrap();
    }
    let trailers = body.trailers().await.unwrap().expect("trailers");
    Status::from_header_map(&trailers).expect("a grpc-status in the trailers")
}

/// A message in gRPC framing: uncompressed, length-prefixed.
fn framed(message: &impl prost::Message) -> Vec<u8> {
    let encoded = message.encode_to_vec();
    let mut body = vec![0];
    body.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    body.extend_from_slice(&encoded);
    body
}

/// A request message over --max-request-bytes: RESOURCE_EXHAUSTED /
/// REQUEST_TOO_LARGE naming the limit and the flag, for unary and streaming
/// calls; the gateway keeps serving.
#[tokio::test]
async fn oversize_requests_are_resource_exhausted() {
    let gateway = TestGateway::start_with(|config| config.requests.max_request_bytes = 1024).await;
    let mut client = gateway.client.clone();
    let mut big = sql("SELECT ?");
    big.params = vec![text(&"x".repeat(4096))];

    let status = client.execute(big.clone()).await.unwrap_err();
    assert_eq!(
        code_and_reason(&status),
        (Code::ResourceExhausted, "REQUEST_TOO_LARGE".into()),
        "{status:?}"
    );
    assert!(status.message().contains("1024 bytes"), "{status:?}");
    assert!(
        status.message().contains("--max-request-bytes"),
        "{status:?}"
    );

    let status = client.execute_stream(big).await.unwrap_err();
    assert_eq!(
        code_and_reason(&status),
        (Code::ResourceExhausted, "REQUEST_TOO_LARGE".into()),
        "{status:?}"
    );

    let ok = execute(&mut client, "SELECT 1", vec![]).await.unwrap();
    assert_eq!(ok.rows.len(), 1);
}

/// Bad gRPC framing and undecodable messages: INVALID_ARGUMENT /
/// MALFORMED_REQUEST, never INTERNAL, for unary and streaming calls.
#[tokio::test]
async fn malformed_requests_are_invalid_argument() {
    let gateway = TestGateway::start().await;
    let cases: [(&str, &[u8]); 5] = [
        ("invalid compression flag", &[7, 0, 0, 0, 1, 0]),
        ("compressed flag without grpc-encoding", &[1, 0, 0, 0, 1, 0]),
        ("truncated message", &[0, 0, 0, 0, 10, 1, 2]),
        ("no message at all", &[]),
        // Field 1 (sql, a string) holding invalid UTF-8.
        (
            "not protobuf of the call's type",
            &[0, 0, 0, 0, 3, 0x0a, 1, 0xff],
        ),
    ];
    for path in [
        "/sqlgate.v1.Database/Execute",
        "/sqlgate.v1.Database/ExecuteStream",
    ] {
        for (what, body) in cases {
            let status = raw_call(gateway.address, path, &[], body.to_vec()).await;
            assert_eq!(
                code_and_reason(&status),
                (Code::InvalidArgument, "MALFORMED_REQUEST".into()),
                "{path}, {what}: {status:?}"
            );
        }
    }
    // An unknown method keeps tonic's code, with ErrorInfo too.
    let status = raw_call(
        gateway.address,
        "/sqlgate.v1.Database/NoSuchMethod",
        &[],
        vec![0, 0, 0, 0, 0],
    )
    .await;
    assert_eq!(
        code_and_reason(&status),
        (Code::Unimplemented, "TRANSPORT_ERROR".into()),
        "{status:?}"
    );
}

/// `grpc-timeout: 0m`: DEADLINE_EXCEEDED / DEADLINE_EXCEEDED at once (not
/// tonic's CANCELLED), and the statement never runs. Sent over raw HTTP/2, as
/// other clients send it: tonic's client applies the header locally too and
/// would answer CANCELLED itself before the gateway's answer arrives.
#[tokio::test]
async fn an_expired_deadline_is_deadline_exceeded_and_runs_nothing() {
    let gateway = TestGateway::start().await;
    gateway.direct_exec("CREATE TABLE t (id INT)").await;
    let insert = framed(&sql("INSERT INTO t VALUES (1)"));
    for timeout in ["0m", "0n", "0S", "500u"] {
        for _ in 0..10 {
            for path in [
                "/sqlgate.v1.Database/Execute",
                "/sqlgate.v1.Database/ExecuteStream",
            ] {
                let status = raw_call(
                    gateway.address,
                    path,
                    &[("grpc-timeout", timeout)],
                    insert.clone(),
                )
                .await;
                assert_eq!(
                    code_and_reason(&status),
                    (Code::DeadlineExceeded, "DEADLINE_EXCEEDED".into()),
                    "{path}, {timeout}: {status:?}"
                );
            }
        }
    }
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(0));
    // A deadline that can be met still works.
    let mut client = gateway.client.clone();
    let mut request = Request::new(sql("INSERT INTO t VALUES (1)"));
    request.set_timeout(Duration::from_secs(10));
    client.execute(request).await.unwrap();
    let status = raw_call(
        gateway.address,
        "/sqlgate.v1.Database/Execute",
        &[("grpc-timeout", "10S")],
        insert,
    )
    .await;
    assert_eq!(status.code(), Code::Ok, "{status:?}");
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(2));
}

/// Server errors the table does not name (HY000 general errors) are never
/// UNKNOWN: FAILED_PRECONDITION / MYSQL_ERROR with their errno.
#[tokio::test]
async fn unrecognised_server_errors_are_failed_precondition() {
    let gateway = TestGateway::start().await;
    let mut client = gateway.client.clone();
    for (statement, errno) in [
        ("SET SESSION no_such_variable = 1", "1193"),
        ("SELECT @@no_such_variable", "1193"),
        ("SELECT CONVERT(_utf8mb4 0xff USING utf8mb4)", "1300"),
    ] {
        let status = execute(&mut client, statement, vec![]).await.unwrap_err();
        let (reason, metadata) = error_info(&status);
        assert_eq!(
            (status.code(), reason.as_str()),
            (Code::FailedPrecondition, "MYSQL_ERROR"),
            "{statement}: {status:?}"
        );
        assert_eq!(metadata["errno"], errno, "{statement}: {status:?}");
        assert_eq!(metadata["sqlstate"], "HY000", "{statement}: {status:?}");
    }
}

/// Parameters that do not match the placeholders: INVALID_ARGUMENT /
/// INVALID_REQUEST, saying how many of each; a transaction survives it.
#[tokio::test]
async fn parameter_count_mismatches_are_invalid_requests() {
    let gateway = TestGateway::start().await;
    let mut client = gateway.client.clone();
    let status = execute(&mut client, "SELECT ?", vec![int(1), int(2)])
        .await
        .unwrap_err();
    assert_eq!(
        code_and_reason(&status),
        (Code::InvalidArgument, "INVALID_REQUEST".into()),
        "{status:?}"
    );
    assert_eq!(
        status.message(),
        "the statement has 1 placeholder but 2 parameters were sent"
    );
    let status = execute(&mut client, "SELECT ?, ?", vec![])
        .await
        .unwrap_err();
    assert_eq!(
        status.message(),
        "the statement has 2 placeholders but 0 parameters were sent"
    );

    // Inside a transaction: refused, and the transaction stays usable.
    let begun = client
        .begin(api::BeginRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut in_transaction = sql("SELECT ?");
    in_transaction.transaction_id = begun.transaction_id.clone();
    in_transaction.params = vec![int(1), int(2)];
    let status = client.execute(in_transaction.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    in_transaction.params = vec![int(7)];
    let response = client.execute(in_transaction).await.unwrap().into_inner();
    assert_eq!(response.rows.len(), 1);
    client
        .commit(api::CommitRequest {
            transaction_id: begun.transaction_id,
            ..Default::default()
        })
        .await
        .unwrap();

    // In a batch, too, with the failing statement's index.
    let status = client
        .execute_batch(api::ExecuteBatchRequest {
            statements: vec![
                api::Statement {
                    sql: "SELECT 1".into(),
                    params: vec![],
                },
                api::Statement {
                    sql: "SELECT ?".into(),
                    params: vec![],
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap_err();
    let (reason, metadata) = error_info(&status);
    assert_eq!(
        (status.code(), reason.as_str()),
        (Code::InvalidArgument, "INVALID_REQUEST")
    );
    assert_eq!(metadata["statement_index"], "1");
}

/// No or a wrong token: UNAUTHENTICATED with ErrorInfo reason UNAUTHENTICATED.
#[tokio::test]
async fn unauthenticated_calls_carry_error_info() {
    let path = std::env::temp_dir().join(format!("sqlgate-codes-tokens-{}", std::process::id()));
    std::fs::write(&path, "codes-token-0123456789abcdef,alice,read-write\n").unwrap();
    let gateway = TestGateway::start_with(move |config| config.auth_tokens_file = Some(path)).await;
    let mut client = gateway.client.clone();
    let status = execute(&mut client, "SELECT 1", vec![]).await.unwrap_err();
    assert_eq!(
        code_and_reason(&status),
        (Code::Unauthenticated, "UNAUTHENTICATED".into()),
        "{status:?}"
    );
    let mut wrong = Request::new(sql("SELECT 1"));
    wrong.metadata_mut().insert(
        "authorization",
        "Bearer wrong-token-0123456789".parse().unwrap(),
    );
    let status = client.execute_stream(wrong).await.unwrap_err();
    assert_eq!(
        code_and_reason(&status),
        (Code::Unauthenticated, "UNAUTHENTICATED".into()),
        "{status:?}"
    );
    let mut right = Request::new(sql("SELECT 1"));
    right.metadata_mut().insert(
        "authorization",
        "Bearer codes-token-0123456789abcdef".parse().unwrap(),
    );
    client.execute(right).await.unwrap();
    // Without a token the call is refused before its request is even read.
    let status = raw_call(gateway.address, "/sqlgate.v1.Database/Execute", &[], vec![]).await;
    assert_eq!(
        code_and_reason(&status),
        (Code::Unauthenticated, "UNAUTHENTICATED".into())
    );
}
