//! Every Value case round-trips, as a parameter and as a result, through a
//! table with a column of each MySQL type — with edge values, NULL of every
//! type, and the same cells through ExecuteStream.
mod common;

use common::*;
use sqlgate::api::{ExecuteRequest, Value, execute_stream_response::Part, value::Kind};
use tokio_stream::StreamExt;
use tonic::Code;

/// (column definition, parameter sent, cell expected back)
fn cases() -> Vec<(&'static str, Kind, Kind)> {
    let decimal_65_30 = format!("{}.{}", "9".repeat(35), "123456789012345678901234567890");
    vec![
        (
            "c_tinyint TINYINT",
            Kind::Int64Value(-128),
            Kind::Int64Value(-128),
        ),
        (
            "c_bool TINYINT(1)",
            Kind::BoolValue(true),
            Kind::Int64Value(1),
        ),
        (
            "c_smallint SMALLINT",
            Kind::Int64Value(-32768),
            Kind::Int64Value(-32768),
        ),
        (
            "c_mediumint MEDIUMINT",
            Kind::Int64Value(8388607),
            Kind::Int64Value(8388607),
        ),
        (
            "c_int_unsigned INT UNSIGNED",
            Kind::Uint64Value(4294967295),
            Kind::Int64Value(4294967295),
        ),
        (
            "c_bigint BIGINT",
            Kind::Int64Value(i64::MIN),
            Kind::Int64Value(i64::MIN),
        ),
        (
            "c_bigint_unsigned BIGINT UNSIGNED",
            Kind::Uint64Value(u64::MAX),
            Kind::Uint64Value(u64::MAX),
        ),
        (
            "c_float FLOAT",
            Kind::FloatValue(1.5),
            Kind::FloatValue(1.5),
        ),
        (
            "c_double DOUBLE",
            Kind::DoubleValue(0.1),
            Kind::DoubleValue(0.1),
        ),
        (
            "c_decimal DECIMAL(65,30)",
            Kind::DecimalValue(decimal_65_30.clone()),
            Kind::DecimalValue(decimal_65_30),
        ),
        (
            "c_decimal_neg DECIMAL(12,2)",
            Kind::DecimalValue("-12345.60".into()),
            Kind::DecimalValue("-12345.60".into()),
        ),
        (
            "c_date DATE",
            Kind::DateValue("2024-02-29".into()),
            Kind::DateValue("2024-02-29".into()),
        ),
        (
            "c_datetime DATETIME",
            Kind::DatetimeValue("1999-12-31 23:59:59".into()),
            Kind::DatetimeValue("1999-12-31 23:59:59".into()),
        ),
        (
            "c_datetime6 DATETIME(6)",
            Kind::DatetimeValue("9999-12-31 23:59:59.999999".into()),
            Kind::DatetimeValue("9999-12-31 23:59:59.999999".into()),
        ),
        (
            "c_timestamp3 TIMESTAMP(3) NULL",
            Kind::DatetimeValue("2038-01-19 03:14:07.5".into()),
            Kind::DatetimeValue("2038-01-19 03:14:07.500".into()),
        ),
        (
            "c_time TIME",
            Kind::TimeValue("-838:59:59".into()),
            Kind::TimeValue("-838:59:59".into()),
        ),
        (
            "c_time_pos TIME",
            Kind::TimeValue("838:59:59".into()),
            Kind::TimeValue("838:59:59".into()),
        ),
        (
            "c_time6 TIME(6)",
            Kind::TimeValue("-01:02:03.000004".into()),
            Kind::TimeValue("-01:02:03.000004".into()),
        ),
        (
            "c_year YEAR",
            Kind::Int64Value(2155),
            Kind::Int64Value(2155),
        ),
        (
            "c_char CHAR(10)",
            Kind::StringValue("abc".into()),
            Kind::StringValue("abc".into()),
        ),
        (
            "c_varchar VARCHAR(100)",
            Kind::StringValue("😀𝄞 é".into()),
            Kind::StringValue("😀𝄞 é".into()),
        ),
        (
            "c_text TEXT",
            Kind::StringValue("line\nbreak 😀".into()),
            Kind::StringValue("line\nbreak 😀".into()),
        ),
        (
            "c_longtext LONGTEXT",
            Kind::StringValue("x".repeat(70_000)),
            Kind::StringValue("x".repeat(70_000)),
        ),
        (
            "c_binary BINARY(4)",
            Kind::BytesValue(vec![0, 1, 2, 255]),
            Kind::BytesValue(vec![0, 1, 2, 255]),
        ),
        (
            "c_varbinary VARBINARY(100)",
            Kind::BytesValue(vec![0xff, 0xfe]),
            Kind::BytesValue(vec![0xff, 0xfe]),
        ),
        (
            "c_blob BLOB",
            Kind::BytesValue(vec![]),
            Kind::BytesValue(vec![]),
        ),
        (
            "c_longblob LONGBLOB",
            Kind::BytesValue(vec![7; 100_000]),
            Kind::BytesValue(vec![7; 100_000]),
        ),
        (
            "c_bit BIT(12)",
            Kind::BytesValue(vec![0x0a, 0xbc]),
            Kind::BytesValue(vec![0x0a, 0xbc]),
        ),
        (
            "c_enum ENUM('a','b')",
            Kind::StringValue("b".into()),
            Kind::StringValue("b".into()),
        ),
        (
            "c_set SET('x','y')",
            Kind::StringValue("x,y".into()),
            Kind::StringValue("x,y".into()),
        ),
        // MariaDB's JSON is LONGTEXT: it comes back as text.
        (
            "c_json JSON",
            Kind::JsonValue("{\"k\": [1, 2]}".into()),
            Kind::StringValue("{\"k\": [1, 2]}".into()),
        ),
    ]
}

fn value(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

async fn create_table(gateway: &TestGateway) -> Vec<(&'static str, Kind, Kind)> {
    let cases = cases();
    let columns: Vec<&str> = cases.iter().map(|(column, _, _)| *column).collect();
    gateway
        .direct_exec(&format!(
            "CREATE TABLE v (id INT PRIMARY KEY, {})",
            columns.join(", ")
        ))
        .await;
    cases
}

fn names(cases: &[(&'static str, Kind, Kind)]) -> Vec<&'static str> {
    cases
        .iter()
        .map(|(column, _, _)| column.split(' ').next().unwrap())
        .collect()
}

#[tokio::test]
async fn every_case_round_trips_as_parameter_and_result() {
    let gateway = TestGateway::start().await;
    let cases = create_table(&gateway).await;
    let names = names(&cases);
    let mut client = gateway.client.clone();
    let placeholders = vec!["?"; names.len()].join(", ");
    let mut params = vec![int(1)];
    params.extend(cases.iter().map(|(_, sent, _)| value(sent.clone())));
    let insert = format!(
        "INSERT INTO v (id, {}) VALUES (?, {placeholders})",
        names.join(", ")
    );
    execute(&mut client, &insert, params).await.unwrap();
    // NULL of every type.
    let mut nulls = vec![int(2)];
    nulls.extend(cases.iter().map(|_| null()));
    execute(&mut client, &insert, nulls).await.unwrap();

    let select = format!("SELECT {} FROM v ORDER BY id", names.join(", "));
    let result = execute(&mut client, &select, vec![]).await.unwrap();
    assert_eq!(result.rows.len(), 2);
    for (i, (column, _, expected)) in cases.iter().enumerate() {
        assert_eq!(
            result.rows[0].values[i].kind.as_ref(),
            Some(expected),
            "{column}"
        );
        assert_eq!(
            result.rows[1].values[i].kind,
            Some(Kind::NullValue(0)),
            "NULL {column}"
        );
    }
    // Column metadata follows the types.
    let column = |name: &str| result.columns.iter().find(|c| c.name == name).unwrap();
    assert_eq!(column("c_bigint_unsigned").r#type, "BIGINT");
    assert!(column("c_bigint_unsigned").unsigned);
    assert_eq!(column("c_decimal_neg").decimals, 2);
    assert_eq!(column("c_datetime6").decimals, 6);
    assert!(column("c_varbinary").binary && !column("c_varchar").binary);
    assert!(column("c_date").nullable);

    // ExecuteStream gives the very same cells.
    let mut stream = client
        .execute_stream(ExecuteRequest {
            sql: select.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut streamed = Vec::new();
    while let Some(message) = stream.next().await {
        if let Some(Part::Rows(batch)) = message.unwrap().part {
            streamed.extend(batch.rows);
        }
    }
    assert_eq!(streamed, result.rows);
}

#[tokio::test]
async fn bad_parameters_change_nothing() {
    let gateway = TestGateway::start().await;
    create_table(&gateway).await;
    let mut client = gateway.client.clone();
    for (column, bad) in [
        ("c_date", Value { kind: None }),
        ("c_date", value(Kind::DateValue("2023-02-29".into()))),
        (
            "c_datetime",
            value(Kind::DatetimeValue("2024-01-01 25:00:00".into())),
        ),
        ("c_time", value(Kind::TimeValue("839:00:00".into()))),
        ("c_decimal", value(Kind::DecimalValue("abc".into()))),
    ] {
        let status = execute(
            &mut client,
            &format!("INSERT INTO v (id, {column}) VALUES (1, ?)"),
            vec![bad],
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{column}");
        assert_eq!(error_info(&status).0, "INVALID_VALUE", "{column}");
    }
    let status = execute(
        &mut client,
        "INSERT INTO v (id) VALUES (?)",
        vec![int(1), int(2)],
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    // Strict mode: the server's own data checks.
    for (sql, errno) in [
        ("INSERT INTO v (id, c_tinyint) VALUES (1, 300)", "1264"),
        (
            "INSERT INTO v (id, c_char) VALUES (1, 'far too long for ten')",
            "1406",
        ),
        ("INSERT INTO v (c_tinyint) VALUES (1)", "1364"),
    ] {
        let status = execute(&mut client, sql, vec![]).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{sql}: {status:?}");
        assert_eq!(error_info(&status).1["errno"], errno, "{sql}");
    }
    let status = execute(&mut client, "INSERT INTO v (id) VALUES (NULL)", vec![])
        .await
        .unwrap_err();
    assert_eq!(error_info(&status).1["errno"], "1048");
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM v").await, Some(0));
}

/// A decimal parameter is computed with as a decimal, never as a floating
/// point number: in arithmetic with DECIMAL columns and literals, as a
/// result of its own, and in a batch; a decimal too large for DECIMAL(65,30)
/// still works (as text). A date parameter is a DATE.
#[tokio::test]
async fn decimal_and_date_parameters_keep_their_types_in_expressions() {
    let gateway = TestGateway::start().await;
    let mut client = gateway.client.clone();
    let decimal = |text: &str| value(Kind::DecimalValue(text.into()));
    let exact = |text: &str| Some(Kind::DecimalValue(text.into()));
    let cell = |response: &sqlgate::api::ExecuteResponse| response.rows[0].values[0].kind.clone();
    gateway
        .direct_exec("CREATE TABLE d (id INT PRIMARY KEY, x DECIMAL(10,1))")
        .await;
    gateway.direct_exec("INSERT INTO d VALUES (1, 2.9)").await;
    for (sql, params, expected) in [
        // A string operand would make these 40.019999999999996...
        (
            "SELECT x + ? FROM d",
            vec![decimal("37.12")],
            exact("40.02"),
        ),
        // ...and 1.2345678901234568e22.
        (
            "SELECT CAST(1 AS DECIMAL(30,0)) + ?",
            vec![decimal("12345678901234567890123")],
            exact("12345678901234567890124"),
        ),
        ("SELECT ?", vec![decimal("15.7563")], exact("15.7563")),
        (
            "SELECT ? * ?",
            vec![decimal("0.1"), decimal("3")],
            exact("0.3"),
        ),
        ("SELECT ? - 0.5", vec![decimal("1.5e-3")], exact("-0.4985")),
        (
            "SELECT ? = 0.3",
            vec![decimal("0.30")],
            Some(Kind::Int64Value(1)),
        ),
    ] {
        let response = execute(&mut client, sql, params).await.unwrap();
        assert_eq!(cell(&response), expected, "{sql}");
    }
    // Mixed with other parameters, in an UPDATE inside a batch.
    client
        .execute_batch(sqlgate::api::ExecuteBatchRequest {
            statements: vec![sqlgate::api::Statement {
                sql: "UPDATE d SET x = x + ? WHERE id = ?".into(),
                params: vec![decimal("0.1"), int(1)],
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let response = execute(&mut client, "SELECT x = 3.0 FROM d", vec![])
        .await
        .unwrap();
    assert_eq!(cell(&response), Some(Kind::Int64Value(1)));
    // A date is a DATE, not a DATETIME at midnight.
    let date = |text: &str| value(Kind::DateValue(text.into()));
    let response = execute(
        &mut client,
        "SELECT ?, ? + INTERVAL 1 DAY",
        vec![date("2012-10-15"), date("2012-12-31")],
    )
    .await
    .unwrap();
    assert_eq!(
        response.rows[0].values,
        vec![date("2012-10-15"), date("2013-01-01")]
    );
    // Too large for a DECIMAL: sent as text, as before.
    let huge = format!("1{}", "0".repeat(80));
    let response = execute(&mut client, "SELECT ? > 0", vec![decimal(&huge)])
        .await
        .unwrap();
    assert_eq!(cell(&response), Some(Kind::Int64Value(1)));
}
