//! Who may do what: bearer tokens and roles, transactions that belong to
//! their principal, limits against abuse, hostile input, secrets.
mod common;

use std::{process::Command, time::Duration};

use common::*;
use sqlgate::api::{
    BeginRequest, CommitRequest, ExecuteBatchRequest, ExecuteRequest, RollbackRequest, Statement,
    Value, database_client::DatabaseClient, value::Kind,
};
use tonic::{Code, Request, transport::Channel};

const READER: &str = "reader-token-0123456789abcdef";
const WRITER: &str = "writer-token-0123456789abcdef";
const OTHER_WRITER: &str = "other-writer-0123456789abcdef";
const MIGRATOR: &str = "migrator-token-0123456789abcdef";

fn tokens() -> String {
    format!(
        "# test tokens\n{READER},alice,read-only\n{WRITER},bob,read-write\n{OTHER_WRITER},carol,read-write\n{MIGRATOR},dave,schema\n"
    )
}

async fn secured_gateway(name: &str) -> TestGateway {
    let file = token_file(name, &tokens());
    TestGateway::start_with(move |config| {
        config.auth_tokens_file = Some(file);
        config.transactions.max_per_principal = 3;
    })
    .await
}

fn sql(text: &str) -> ExecuteRequest {
    ExecuteRequest {
        sql: text.into(),
        ..Default::default()
    }
}

async fn run(
    client: &mut DatabaseClient<Channel>,
    token: &str,
    text: &str,
) -> Result<tonic::Response<sqlgate::api::ExecuteResponse>, tonic::Status> {
    client.execute(as_caller(token, sql(text))).await
}

#[tokio::test]
async fn callers_need_a_valid_bearer_token() {
    let gateway = secured_gateway("valid").await;
    let mut client = gateway.client.clone();
    let missing = client.execute(sql("SELECT 1")).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    let wrong = run(&mut client, "not-a-token-at-all-000", "SELECT 1")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert!(
        !wrong.message().contains("not-a-token"),
        "tokens are never echoed"
    );
    run(&mut client, WRITER, "SELECT 1").await.unwrap();
    // Health stays open for probes.
    let channel = Channel::from_shared(format!("http://{}", gateway.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn read_only_principals_cannot_write() {
    let gateway = secured_gateway("read-only").await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY)")
        .await;
    gateway.direct_exec("INSERT INTO t VALUES (1)").await;
    let mut client = gateway.client.clone();
    let read = run(&mut client, READER, "SELECT COUNT(*) FROM t")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.rows[0].values[0].kind, Some(Kind::Int64Value(1)));
    for write in [
        "INSERT INTO t VALUES (2)",
        "DELETE FROM t",
        "DROP TABLE t",
        "CREATE TABLE u (x INT)",
    ] {
        let status = run(&mut client, READER, write).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{write}: {status:?}");
        assert_eq!(error_info(&status).0, "READ_ONLY_PRINCIPAL", "{write}");
    }
    // It cannot talk its way out of read-only mode either.
    for escape in [
        "SET SESSION TRANSACTION READ WRITE",
        "SET STATEMENT tx_read_only=0 FOR DELETE FROM t",
    ] {
        let status = run(&mut client, READER, escape).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{escape}");
    }
    // Its transactions and batches are read-only too.
    let tx = client
        .begin(as_caller(READER, BeginRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    let mut in_tx = sql("INSERT INTO t VALUES (3)");
    in_tx.transaction_id = tx.clone();
    let status = client.execute(as_caller(READER, in_tx)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    client
        .rollback(as_caller(READER, RollbackRequest { transaction_id: tx }))
        .await
        .unwrap();
    let batch = ExecuteBatchRequest {
        statements: vec![
            Statement {
                sql: "SELECT 1".into(),
                params: vec![],
            },
            Statement {
                sql: "INSERT INTO t VALUES (4)".into(),
                params: vec![],
            },
        ],
        ..Default::default()
    };
    let status = client
        .execute_batch(as_caller(READER, batch))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(error_info(&status).1["statement_index"], "1");
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(1));
    // The read-only connection mode does not stick to pooled connections.
    run(&mut client, WRITER, "INSERT INTO t VALUES (5)")
        .await
        .unwrap();
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(2));
}

#[tokio::test]
async fn only_the_schema_role_installs_code() {
    let gateway = secured_gateway("schema_role").await;
    let mut client = gateway.client.clone();
    run(&mut client, WRITER, "CREATE TABLE t (id INT)")
        .await
        .unwrap();
    let code = [
        "CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); END",
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.id = NEW.id * 10; END",
        "CREATE PROCEDURE q() EXECUTE IMMEDIATE 'SELECT 1'",
        "CREATE VIEW v AS SELECT id FROM t",
    ];
    for text in code {
        for token in [WRITER, READER] {
            let status = run(&mut client, token, text).await.unwrap_err();
            assert_eq!(status.code(), Code::PermissionDenied, "{text}: {status:?}");
        }
        let status = run(&mut client, WRITER, text).await.unwrap_err();
        assert_eq!(error_info(&status).0, "STATEMENT_NOT_ALLOWED", "{text}");
        assert!(
            status.message().contains("schema role"),
            "{}",
            status.message()
        );
    }
    let routines = gateway
        .direct_i64(
            "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()",
        )
        .await;
    assert_eq!(routines, Some(0), "nothing was installed");
    // The schema role installs them, compound bodies included; the others use them.
    for text in code {
        run(&mut client, MIGRATOR, text).await.unwrap();
    }
    run(&mut client, WRITER, "CALL p()").await.unwrap();
    let rows = run(&mut client, READER, "SELECT id FROM v ORDER BY id")
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(rows.len(), 2);
    assert_eq!(gateway.direct_i64("SELECT SUM(id) FROM t").await, Some(30));
    // Still one statement per call, and no implicit commit in a transaction.
    let status = run(&mut client, MIGRATOR, "SELECT 1; DROP TABLE t")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = run(
        &mut client,
        MIGRATOR,
        "CREATE PROCEDURE p2() BEGIN SELECT 1; END; DROP TABLE t",
    )
    .await
    .unwrap_err();
    assert_ne!(status.code(), Code::Ok);
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(2));
    let status = run(&mut client, WRITER, "DROP PROCEDURE p")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    run(&mut client, MIGRATOR, "DROP PROCEDURE p")
        .await
        .unwrap();
}

#[tokio::test]
async fn transactions_belong_to_their_principal() {
    let gateway = secured_gateway("owner").await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY)")
        .await;
    let mut client = gateway.client.clone();
    let tx = client
        .begin(as_caller(WRITER, BeginRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    let mut insert = sql("INSERT INTO t VALUES (1)");
    insert.transaction_id = tx.clone();
    // Another principal holding the id sees nothing at all.
    let status = client
        .execute(as_caller(OTHER_WRITER, insert.clone()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(error_info(&status).0, "TRANSACTION_NOT_FOUND");
    let hijack = client
        .rollback(as_caller(
            OTHER_WRITER,
            RollbackRequest {
                transaction_id: tx.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!hijack.rolled_back);
    let status = client
        .commit(as_caller(
            OTHER_WRITER,
            CommitRequest {
                transaction_id: tx.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    // Its owner carries on.
    client.execute(as_caller(WRITER, insert)).await.unwrap();
    client
        .commit(as_caller(
            WRITER,
            CommitRequest {
                transaction_id: tx.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(1));
    // Even its end is not told to others.
    let mut again = sql("SELECT 1");
    again.transaction_id = tx;
    let status = client
        .execute(as_caller(OTHER_WRITER, again))
        .await
        .unwrap_err();
    assert!(!status.message().contains("committed"), "{status:?}");
}

#[tokio::test]
async fn limits_are_clear_errors() {
    let gateway = secured_gateway("limits").await;
    let mut client = gateway.client.clone();
    // Open transactions per principal (3 in this test).
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            client
                .begin(as_caller(WRITER, BeginRequest::default()))
                .await
                .unwrap()
                .into_inner()
                .transaction_id,
        );
    }
    let status = client
        .begin(as_caller(WRITER, BeginRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(error_info(&status).0, "TOO_MANY_TRANSACTIONS");
    // Others are not affected.
    client
        .begin(as_caller(OTHER_WRITER, BeginRequest::default()))
        .await
        .unwrap();
    // Parameters per statement.
    let mut many = sql("SELECT 1");
    many.params = vec![int(1); 10_000];
    let status = client.execute(as_caller(WRITER, many)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("--max-params"),
        "{}",
        status.message()
    );
    // Statements per batch.
    let batch = ExecuteBatchRequest {
        statements: vec![
            Statement {
                sql: "SELECT 1".into(),
                params: vec![]
            };
            1001
        ],
        ..Default::default()
    };
    let status = client
        .execute_batch(as_caller(WRITER, batch))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    // Request size (4 MiB by default).
    let mut huge = sql("SELECT ?");
    huge.params = vec![text(&"x".repeat(5 * 1024 * 1024))];
    let status = client.execute(as_caller(WRITER, huge)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(error_info(&status).0, "REQUEST_TOO_LARGE");
    // The gateway is fine afterwards.
    run(&mut client, WRITER, "SELECT 1").await.unwrap();
}

/// Bad input of every kind gets INVALID_ARGUMENT and changes nothing.
#[tokio::test]
async fn hostile_requests_are_refused_and_change_nothing() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY, d DATE, n DECIMAL(10,2), s VARCHAR(10))")
        .await;
    let mut client = gateway.client.clone();
    let value = |kind: Kind| Value { kind: Some(kind) };
    let mut bad_params: Vec<Value> = vec![Value { kind: None }];
    for date in [
        "2023-02-29",
        "2024-13-01",
        "24-1-1",
        "",
        "\u{0}",
        "9999-99-99",
        "2024-01-01T",
        "ｓ",
    ] {
        bad_params.push(value(Kind::DateValue(date.into())));
        bad_params.push(value(Kind::DatetimeValue(format!("{date} 25:61:61"))));
        bad_params.push(value(Kind::TimeValue(format!("{date}:99"))));
        bad_params.push(value(Kind::DecimalValue(format!("{date}e"))));
    }
    for n in ["NaN", "inf", "1e", "--1", "1.2.3", "0x1F", &"9".repeat(200)] {
        bad_params.push(value(Kind::DecimalValue(n.into())));
    }
    let mut refused = 0;
    for (i, param) in bad_params.iter().enumerate() {
        for statement in [
            "INSERT INTO t (id, d) VALUES (1, ?)",
            "INSERT INTO t (id, n) VALUES (1, ?)",
            "INSERT INTO t (id, s) VALUES (1, ?)",
            "UPDATE t SET d = ? WHERE id = 1",
            "SELECT ?",
        ] {
            let mut request = sql(statement);
            request.params = vec![param.clone()];
            let status = client
                .execute(request)
                .await
                .expect_err(&format!("param {i} {param:?}"));
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{param:?}: {status:?}"
            );
            refused += 1;
        }
    }
    // Unknown enum values, invalid requests, strings with NUL and invalid-in-SQL bytes.
    let mut bad_isolation = sql("SELECT 1");
    bad_isolation.begin = Some(sqlgate::api::TransactionOptions {
        isolation: 99,
        ..Default::default()
    });
    let requests = vec![
        bad_isolation,
        sql(""),
        sql(";;;"),
        sql("SELECT 1; DROP TABLE t"),
        sql("INSERT INTO t VALUES (1, NULL, NULL, NULL); DELETE FROM t"),
        sql("\u{0}"),
        sql("SELECT '\u{0}"),
    ];
    for request in requests {
        let status = client.execute(request.clone()).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{:?}: {status:?}",
            request.sql
        );
        refused += 1;
    }
    // A too-long string and an out-of-range number are refused by the server (strict mode).
    let mut long = sql("INSERT INTO t (id, s) VALUES (1, ?)");
    long.params = vec![text(&"y".repeat(100_000))];
    assert_eq!(
        client.execute(long).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let mut out_of_range = sql("INSERT INTO t (id, n) VALUES (1, ?)");
    out_of_range.params = vec![value(Kind::DecimalValue("12345678901234567890".into()))];
    assert_eq!(
        client.execute(out_of_range).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert!(refused >= 200, "{refused} hostile requests");
    // Nothing changed, and the gateway still serves.
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(0));
    let ok = execute(&mut client, "SELECT 41 + 1", vec![]).await.unwrap();
    assert_eq!(ok.rows[0].values[0].kind, Some(Kind::Int64Value(42)));
}

#[tokio::test]
async fn the_password_can_come_from_a_file_and_is_never_logged() {
    let (database, url) = fresh_database().await;
    let password = "s3cret-Pa55word!";
    {
        use mysql_async::prelude::Queryable;
        let mut admin = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
        admin
            .query_drop(format!(
                "CREATE USER app@localhost IDENTIFIED BY '{password}'"
            ))
            .await
            .unwrap();
        admin
            .query_drop(format!("GRANT ALL ON {database}.* TO app@localhost"))
            .await
            .unwrap();
        admin.disconnect().await.unwrap();
    }
    let password_file = token_file("password", &format!("{password}\n"));
    let app_url = url.replacen("mysql://root@", "mysql://app@", 1);
    let process = GatewayProcess::start(
        [
            "--database-url",
            &app_url,
            "--database-password-file",
            password_file.to_str().unwrap(),
        ],
        &[("RUST_LOG", "debug")],
    );
    let address = process.address.clone();
    let mut client = DatabaseClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let mut connected = false;
    for _ in 0..100 {
        if execute(&mut client, "SELECT CURRENT_USER()", vec![])
            .await
            .is_ok()
        {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        connected,
        "the gateway connects with the password from the file"
    );
    let log = process.log();
    assert_eq!(process.stop().await, Some(0));
    assert!(!log.contains(password), "the password appeared in the log");
}

#[tokio::test]
async fn non_loopback_listeners_need_authentication() {
    let output = Command::new(env!("CARGO_BIN_EXE_sqlgate"))
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--database-url",
            "mysql://root@localhost/x",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("--auth-tokens-file"), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "{message}");
}

#[tokio::test]
async fn sighup_reloads_the_token_file() {
    let (_, url) = fresh_database().await;
    let file = token_file("reload", &format!("{WRITER},bob,read-write\n"));
    let process = GatewayProcess::start(
        [
            "--database-url",
            &url,
            "--auth-tokens-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    let address = process.address.clone();
    let mut client = DatabaseClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    run(&mut client, WRITER, "SELECT 1").await.unwrap();
    assert_eq!(
        run(&mut client, OTHER_WRITER, "SELECT 1")
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    std::fs::write(&file, format!("{OTHER_WRITER},carol,read-write\n")).unwrap();
    process.signal("-HUP");
    let mut reloaded = false;
    for _ in 0..100 {
        if run(&mut client, OTHER_WRITER, "SELECT 1").await.is_ok() {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reloaded,
        "the new token works after SIGHUP, on the same connection"
    );
    assert_eq!(
        run(&mut client, WRITER, "SELECT 1")
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(process.stop().await, Some(0));
}

/// An ExecuteRequest as raw protobuf, with `sql` as arbitrary bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct RawExecuteRequest {
    #[prost(bytes = "vec", tag = "1")]
    sql: Vec<u8>,
}

#[tokio::test]
async fn undecodable_requests_are_invalid_arguments() {
    let gateway = TestGateway::start().await;
    let channel = Channel::from_shared(format!("http://{}", gateway.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec =
        tonic_prost::ProstCodec::<RawExecuteRequest, sqlgate::api::ExecuteResponse>::default();
    let request = Request::new(RawExecuteRequest {
        sql: b"SELECT '\xff\xfe'".to_vec(),
    });
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/sqlgate.v1.Database/Execute");
    let status = grpc.unary(request, path, codec).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // And the gateway carries on.
    let mut client = gateway.client.clone();
    execute(&mut client, "SELECT 1", vec![]).await.unwrap();
}
