//! Execute and ExecuteStream: results, caps, streaming a million rows, the
//! statements that are refused, session state that must not leak, the error
//! table, and the health and reflection services beside the API.
mod common;

use common::*;
use sqlgate::api::{
    ExecuteRequest, ExecuteStreamResponse, execute_stream_response::Part, value::Kind,
};
use tokio_stream::StreamExt;
use tonic::Code;

#[tokio::test]
async fn autocommit_writes_report_counts() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20))")
        .await;
    let mut client = gateway.client.clone();
    let inserted = execute(
        &mut client,
        "INSERT INTO t (name) VALUES (?), (?)",
        vec![text("a"), text("b")],
    )
    .await
    .unwrap();
    assert_eq!(inserted.rows_affected, 2);
    assert_eq!(inserted.last_insert_id, 1);
    assert!(inserted.columns.is_empty());
    let warned = execute(&mut client, "SELECT CAST('x' AS INT)", vec![])
        .await
        .unwrap();
    assert_eq!(warned.warning_count, 1);
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(2));
}

#[tokio::test]
async fn updates_count_rows_matched_unless_found_rows_is_off() {
    for found_rows in [true, false] {
        let gateway = TestGateway::start_with(|c| c.pool.found_rows = found_rows).await;
        gateway
            .direct_exec("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
            .await;
        gateway
            .direct_exec("INSERT INTO t VALUES (1, 5), (2, 6)")
            .await;
        let mut client = gateway.client.clone();
        // Row 1 already holds 5: matched, not changed.
        let updated = execute(&mut client, "UPDATE t SET v = 5", vec![])
            .await
            .unwrap();
        assert_eq!(
            updated.rows_affected,
            if found_rows { 2 } else { 1 },
            "--found-rows {found_rows}"
        );
    }
}

#[tokio::test]
async fn transaction_control_and_stacked_statements_are_refused() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY)")
        .await;
    let mut client = gateway.client.clone();
    for sql in [
        "BEGIN",
        "START TRANSACTION",
        "COMMIT",
        "ROLLBACK",
        "SET autocommit = 0",
        "SET @@session.autocommit = 0",
        "INSERT INTO t VALUES (1); DROP TABLE t",
        "USE mysql",
        "LOCK TABLES t WRITE",
        "",
    ] {
        let status = execute(&mut client, sql, vec![]).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{sql:?}: {status:?}");
        assert_eq!(error_info(&status).0, "INVALID_REQUEST", "{sql:?}");
    }
    // Nothing ran: the table is there and empty.
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(0));
    // A trailing semicolon is fine.
    execute(&mut client, "INSERT INTO t VALUES (1);", vec![])
        .await
        .unwrap();
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(1));
}

#[tokio::test]
async fn session_state_does_not_leak_between_calls() {
    // One connection, so that later calls land on the one that was changed;
    // each check also names the connection it ran on.
    let gateway = TestGateway::start_with(|c| {
        c.pool.max = 1;
        c.transactions.max_open = 0;
    })
    .await;
    let mut client = gateway.client.clone();
    let dirty = execute(&mut client, "SELECT CONNECTION_ID(), @v := 42", vec![])
        .await
        .unwrap();
    let dirty_connection = dirty.rows[0].values[0].kind.clone();
    execute(
        &mut client,
        "CREATE TEMPORARY TABLE scratch (x INT)",
        vec![],
    )
    .await
    .unwrap();
    execute(
        &mut client,
        "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
        vec![],
    )
    .await
    .unwrap();
    execute(
        &mut client,
        "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        vec![],
    )
    .await
    .unwrap();

    let mut checked_same_connection = false;
    for _ in 0..20 {
        let check = execute(
            &mut client,
            "SELECT CONNECTION_ID(), @v, @@session.sql_mode = @@global.sql_mode, \
             @@session.tx_isolation = @@global.tx_isolation",
            vec![],
        )
        .await
        .unwrap();
        let row = &check.rows[0].values;
        assert_eq!(
            row[1].kind,
            Some(Kind::NullValue(0)),
            "user variable leaked"
        );
        assert_eq!(row[2].kind, Some(Kind::Int64Value(1)), "sql_mode leaked");
        assert_eq!(
            row[3].kind,
            Some(Kind::Int64Value(1)),
            "isolation level leaked"
        );
        checked_same_connection |= row[0].kind == dirty_connection;
        let temporary = execute(&mut client, "SELECT * FROM scratch", vec![]).await;
        assert_eq!(
            temporary.unwrap_err().code(),
            Code::NotFound,
            "temporary table leaked"
        );
    }
    assert!(
        checked_same_connection,
        "no check ran on the changed connection"
    );
}

#[tokio::test]
async fn unary_results_are_capped_unless_the_client_limits_them() {
    let gateway = TestGateway::start_with(|c| {
        c.calls.max_result_rows = 100;
        c.calls.max_result_bytes = 64 * 1024;
    })
    .await;
    let mut client = gateway.client.clone();
    let status = execute(&mut client, "SELECT seq FROM seq_1_to_1000", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(error_info(&status).0, "RESULT_TOO_LARGE");
    assert!(
        status.message().contains("ExecuteStream"),
        "{}",
        status.message()
    );

    let big_rows = execute(
        &mut client,
        "SELECT REPEAT('x', 10000) FROM seq_1_to_50",
        vec![],
    )
    .await
    .unwrap_err();
    assert_eq!(error_info(&big_rows).0, "RESULT_TOO_LARGE");
    assert!(
        big_rows.message().contains("bytes"),
        "{}",
        big_rows.message()
    );

    let limited = client
        .execute(ExecuteRequest {
            sql: "SELECT seq FROM seq_1_to_1000000".into(),
            max_rows: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(limited.rows.len(), 10);
    assert!(limited.truncated);
    assert_eq!(limited.rows[9].values[0].kind, Some(Kind::Uint64Value(10)));
    // With max_rows, the byte cap truncates instead of failing.
    let prefix = client
        .execute(ExecuteRequest {
            sql: "SELECT REPEAT('x', 10000) FROM seq_1_to_50".into(),
            max_rows: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(prefix.truncated);
    assert!(
        !prefix.rows.is_empty() && prefix.rows.len() < 10,
        "{}",
        prefix.rows.len()
    );
    // The connection that was cut short is clean for the next call.
    for _ in 0..3 {
        let next = execute(&mut client, "SELECT 7", vec![]).await.unwrap();
        assert_eq!(next.rows[0].values[0].kind, Some(Kind::Int64Value(7)));
    }
}

/// Reads a whole ExecuteStream: (header, row values of column 0, summary).
async fn read_stream(mut stream: tonic::Streaming<ExecuteStreamResponse>) -> (Vec<Part>, u64, i64) {
    let mut parts = Vec::new();
    let mut rows = 0u64;
    let mut sum = 0i64;
    while let Some(message) = stream.next().await {
        match message.unwrap().part.unwrap() {
            Part::Rows(batch) => {
                for row in batch.rows {
                    rows += 1;
                    match row.values[0].kind {
                        Some(Kind::Int64Value(v)) => sum += v,
                        // Sequence numbers are BIGINT UNSIGNED.
                        Some(Kind::Uint64Value(v)) => sum += v as i64,
                        _ => {}
                    }
                }
                parts.push(Part::Rows(Default::default()));
            }
            other => parts.push(other),
        }
    }
    (parts, rows, sum)
}

#[tokio::test]
async fn a_million_rows_stream_exactly() {
    let gateway = TestGateway::start().await;
    let mut client = gateway.client.clone();
    let stream = client
        .execute_stream(ExecuteRequest {
            sql: "SELECT seq, 'abc' FROM seq_1_to_1000000".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (parts, rows, sum) = read_stream(stream).await;
    assert_eq!(rows, 1_000_000);
    assert_eq!(sum, 1_000_000 * 1_000_001 / 2);
    let Some(Part::Header(header)) = parts.first() else {
        panic!("the first message is the header");
    };
    assert_eq!(header.columns.len(), 2);
    let Some(Part::Summary(summary)) = parts.last() else {
        panic!("the last message is the summary");
    };
    assert_eq!(summary.row_count, 1_000_000);
    assert!(!summary.truncated);
    // Many batches, each bounded by --stream-batch-bytes.
    assert!(parts.len() > 100, "only {} messages", parts.len());
}

#[tokio::test]
async fn streams_honour_max_rows_and_inline_begin() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY)")
        .await;
    let mut client = gateway.client.clone();
    let stream = client
        .execute_stream(ExecuteRequest {
            sql: "SELECT seq FROM seq_1_to_100000".into(),
            max_rows: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (parts, rows, sum) = read_stream(stream).await;
    assert_eq!((rows, sum), (5, 15));
    let Some(Part::Summary(summary)) = parts.last() else {
        panic!("summary last");
    };
    assert!(summary.truncated);

    let stream = client
        .execute_stream(ExecuteRequest {
            sql: "INSERT INTO t VALUES (1), (2)".into(),
            begin: Some(Default::default()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (parts, _, _) = read_stream(stream).await;
    let Some(Part::Header(header)) = parts.first() else {
        panic!("header first");
    };
    let Some(Part::Summary(summary)) = parts.last() else {
        panic!("summary last");
    };
    assert_eq!(summary.rows_affected, 2);
    assert_id_of(&header.transaction_id, &gateway.address.to_string());
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(0));
    client
        .commit(sqlgate::api::CommitRequest {
            transaction_id: header.transaction_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(2));
}

#[tokio::test]
async fn stream_errors_are_statuses() {
    let gateway = TestGateway::start().await;
    let mut client = gateway.client.clone();
    let outcome = client
        .execute_stream(ExecuteRequest {
            sql: "SELECT * FROM no_such_table".into(),
            ..Default::default()
        })
        .await;
    let status = match outcome {
        Err(status) => status,
        Ok(response) => {
            let mut stream = response.into_inner();
            stream.next().await.expect("an error message").unwrap_err()
        }
    };
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(error_info(&status).1["errno"], "1146");
}

#[tokio::test]
async fn database_errors_map_to_documented_codes() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE parent (id INT PRIMARY KEY) ENGINE=InnoDB")
        .await;
    gateway
        .direct_exec("CREATE TABLE child (id INT PRIMARY KEY, p INT, FOREIGN KEY (p) REFERENCES parent(id)) ENGINE=InnoDB")
        .await;
    gateway.direct_exec("INSERT INTO parent VALUES (1)").await;
    gateway.direct_exec("INSERT INTO child VALUES (1, 1)").await;
    let mut client = gateway.client.clone();
    let cases = [
        ("INSERT INTO parent VALUES (1)", Code::AlreadyExists, "1062"),
        ("SELEKT 1", Code::InvalidArgument, "1064"),
        ("SELECT * FROM nowhere", Code::NotFound, "1146"),
        ("SELECT nothing FROM parent", Code::NotFound, "1054"),
        (
            "INSERT INTO child VALUES (2, 99)",
            Code::FailedPrecondition,
            "1452",
        ),
        ("DELETE FROM parent", Code::FailedPrecondition, "1451"),
        ("SELECT * FROM mysql.no_table_here", Code::NotFound, "1146"),
    ];
    for (sql, code, errno) in cases {
        let status = execute(&mut client, sql, vec![]).await.unwrap_err();
        assert_eq!(status.code(), code, "{sql}: {status:?}");
        let (reason, metadata) = error_info(&status);
        assert_eq!(reason, "MYSQL_ERROR", "{sql}");
        assert_eq!(metadata["errno"], errno, "{sql}");
        assert_eq!(metadata["sqlstate"].len(), 5, "{sql}");
    }
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let gateway = TestGateway::start().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", gateway.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "sqlgate.v1.Database"] {
        // Watch until the first database ping has succeeded.
        let mut updates = health
            .watch(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        loop {
            let status = updates
                .next()
                .await
                .expect("watch stays open")
                .unwrap()
                .status;
            if status == ServingStatus::Serving as i32 {
                break;
            }
        }
    }

    use tonic_reflection::pb::{v1, v1alpha};
    let mut v1_client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = v1_client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("a service list");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"sqlgate.v1.Database"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");

    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "sqlgate.v1.Database".into(),
            ),
        ),
    };
    let mut responses = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    assert!(matches!(
        response.message_response,
        Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(ref files))
            if !files.file_descriptor_proto.is_empty()
    ));
}
