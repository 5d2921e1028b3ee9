//! `--text-protocol auto` answers exactly as the binary protocol: the same
//! statements and parameters through a gateway with the text path and one
//! forced binary (`off`), on the same database, over a table with a column of
//! every type (edge values, NULLs, several character sets), parameters of
//! every kind, expressions, errors and warnings. Each statement runs 3 times on
//! the `auto` gateway (the first run, binary, teaches it the columns); the
//! server's prepare counter tells which later runs went as text, and the
//! statements that must go as text (a column of each type, a parameter of
//! each kind) are checked to have.
mod common;

use common::*;
use sqlgate::{
    api::{ExecuteResponse, Value, value::Kind},
    config::TextProtocol,
};

const COLUMNS: &str = "id INT PRIMARY KEY,
    ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED,
    mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
    bi BIGINT, bu BIGINT UNSIGNED, zf INT(6) ZEROFILL, bo BOOLEAN,
    de DECIMAL(65,30), d2 DECIMAL(12,2), fl FLOAT, fl2 FLOAT(7,3), db DOUBLE, db2 DOUBLE(12,4),
    dt DATE, dtm DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6), ts TIMESTAMP(6) NULL,
    tm TIME, tm6 TIME(6), yr YEAR, bt BIT(12),
    ch CHAR(10), vc VARCHAR(50), tx TEXT, l1 VARCHAR(20) CHARACTER SET latin1,
    u3 VARCHAR(20) CHARACTER SET utf8mb3, uc VARCHAR(20) COLLATE utf8mb4_unicode_ci,
    bn BINARY(4), vb VARBINARY(20), bl BLOB,
    en ENUM('a','b'), st SET('x','y'), js JSON, geo GEOMETRY";

const ROWS: [&str; 3] = [
    "(1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
      9223372036854775807, 18446744073709551615, 42, TRUE,
      99999999999999999999999999999999999.123456789012345678901234567890, 12345.60,
      16777217, 1234.567, 0.1e0 + 0.2e0, 12345678.1234,
      '2024-02-29', '9999-12-31 23:59:59', '2000-01-01 00:00:00.123', '9999-12-31 23:59:59.999999',
      '2000-02-29 12:00:00.000001', '838:59:59', '-838:59:59.000000', 2155, b'101010101010',
      'it''s', 'é日本😀', 'long text with ? and \\\\ inside', 'é', 'ü€', 'Ä',
      x'00ff0a27', x'5c00', x'deadbeef', 'b', 'x,y', '{\"a\": [1, 2.5, \"x\"]}',
      ST_GeomFromText('POINT(1 2)'))",
    "(2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0,
      -9223372036854775808, 0, 0, FALSE,
      -0.000000000000000000000000000001, -0.01,
      3.4028234e38, -0.001, 5e-324, -0.0001,
      '0000-00-00', '0000-00-00 00:00:00', '1000-01-01 00:00:00.5', '1970-01-01 00:00:00.000001',
      '2037-01-01 00:00:00.999999', '-00:00:01', '100:00:00.5', 0, b'0',
      '', '', '', '', '', '',
      x'', x'', x'', 'a', '', '[]',
      ST_GeomFromText('LINESTRING(0 0, 1.5 2.25)'))",
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1e300, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
];

fn value(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

/// What a call answered, in a form two calls can be compared by.
#[derive(Debug, PartialEq)]
enum Answer {
    Result(ExecuteResponse),
    Error {
        code: tonic::Code,
        message: String,
        info: (String, Vec<(String, String)>),
    },
}

async fn answer(gateway: &TestGateway, sql: &str, params: &[Value]) -> Answer {
    let mut client = gateway.client.clone();
    match execute(&mut client, sql, params.to_vec()).await {
        Ok(response) => Answer::Result(response),
        Err(status) => {
            let (reason, metadata) = error_info(&status);
            let mut metadata: Vec<_> = metadata.into_iter().collect();
            metadata.sort();
            Answer::Error {
                code: status.code(),
                message: status.message().to_string(),
                info: (reason, metadata),
            }
        }
    }
}

/// Runs `sql` through the binary gateway and twice through the text one;
/// asserts the three answers equal; returns whether the second text-gateway
/// run went without a PREPARE (as text), and the binary answer.
async fn compare(
    binary: &TestGateway,
    text: &TestGateway,
    sql: &str,
    params: &[Value],
) -> (bool, Answer) {
    let expected = answer(binary, sql, params).await;
    let first = answer(text, sql, params).await;
    assert_eq!(first, expected, "first run of {sql} {params:?}");
    // Another gateway of this binary starting may prepare something at the
    // same moment: a text path is one that prepares nothing in one of two runs.
    let mut as_text = false;
    for run in ["second", "third"] {
        let (_, prepares_before) = reset_and_prepare_counters(&text.url).await;
        let again = answer(text, sql, params).await;
        let (_, prepares_after) = reset_and_prepare_counters(&text.url).await;
        assert_eq!(again, expected, "{run} run of {sql} {params:?}");
        as_text |= prepares_after == prepares_before;
    }
    (as_text, expected)
}

/// The server's prepare counter tells the paths apart: one test at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn gateways() -> (TestGateway, TestGateway) {
    let (database, url) = fresh_database().await;
    let binary = TestGateway::start_on(database.clone(), url.clone(), |config| {
        config.pool.text_protocol = TextProtocol::Off;
    })
    .await;
    let text = TestGateway::start_on(database, url, |config| {
        config.pool.text_protocol = TextProtocol::Auto;
    })
    .await;
    binary
        .direct_exec(&format!("CREATE TABLE m ({COLUMNS}) CHARACTER SET utf8mb4"))
        .await;
    binary
        .direct_exec(&format!("INSERT INTO m VALUES {}", ROWS.join(", ")))
        .await;
    (binary, text)
}

/// Every column type, each row, read on both paths; each column alone must
/// go as text unless its text form is not exact (fixed-decimals floating
/// point).
#[tokio::test]
async fn every_column_type_reads_the_same_on_both_paths() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (binary, text) = gateways().await;
    for id in 1..=3 {
        compare(&binary, &text, "SELECT * FROM m WHERE id = ?", &[int(id)]).await;
    }
    let names: Vec<&str> = COLUMNS
        .split(',')
        .filter_map(|definition| definition.split_whitespace().next())
        .filter(|name| {
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        .collect();
    assert!(names.len() > 40, "{names:?}");
    let mut not_text = Vec::new();
    for name in &names {
        let sql = format!("SELECT id, {name} FROM m WHERE id >= ? AND id <= ?");
        let (as_text, _) = compare(&binary, &text, &sql, &[int(1), int(3)]).await;
        if !as_text {
            not_text.push(*name);
        }
    }
    // MariaDB prints FLOAT with 6 significant digits, and FLOAT(7,3) and
    // DOUBLE(12,4) with their fixed decimals: they stay binary. Every other
    // type goes as text.
    assert_eq!(not_text, ["fl", "fl2", "db2"]);
    binary.shut_down().await;
    text.shut_down().await;
}

/// A parameter of every kind, written as a literal, selects what the bound
/// parameter selects, and has its character set, collation and coercibility.
#[tokio::test]
async fn every_parameter_kind_reads_the_same_on_both_paths() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (binary, text) = gateways().await;
    let must_go_text = [
        (
            "SELECT id FROM m WHERE i = ?",
            value(Kind::Int64Value(2147483647)),
        ),
        (
            "SELECT id FROM m WHERE bi = ?",
            value(Kind::Int64Value(-9223372036854775807)),
        ),
        (
            "SELECT id FROM m WHERE bu = ?",
            value(Kind::Uint64Value(u64::MAX)),
        ),
        (
            "SELECT id FROM m WHERE db = ?",
            value(Kind::DoubleValue(0.1 + 0.2)),
        ),
        (
            "SELECT id FROM m WHERE db = ?",
            value(Kind::DoubleValue(5e-324)),
        ),
        (
            "SELECT id FROM m WHERE fl = ?",
            value(Kind::FloatValue(16777216.0)),
        ),
        (
            "SELECT id FROM m WHERE bo = ?",
            value(Kind::BoolValue(true)),
        ),
        (
            "SELECT id FROM m WHERE ch = ?",
            value(Kind::StringValue("it's".into())),
        ),
        (
            "SELECT id FROM m WHERE vc = ?",
            value(Kind::StringValue("é日本😀".into())),
        ),
        (
            "SELECT id FROM m WHERE l1 = ?",
            value(Kind::StringValue("é".into())),
        ),
        (
            "SELECT id FROM m WHERE uc = ?",
            value(Kind::StringValue("ä".into())),
        ),
        (
            "SELECT id FROM m WHERE vb = ?",
            value(Kind::BytesValue(vec![])),
        ),
        (
            "SELECT id FROM m WHERE d2 = ?",
            value(Kind::DecimalValue("12345.6".into())),
        ),
        (
            "SELECT id FROM m WHERE js = ?",
            value(Kind::JsonValue("[]".into())),
        ),
        ("SELECT id FROM m WHERE i <=> ?", value(Kind::NullValue(0))),
        (
            "SELECT CONCAT(vc, ?) AS x FROM m WHERE id = 1",
            value(Kind::StringValue("'x'".into())),
        ),
        (
            "SELECT CHARSET(?) AS c",
            value(Kind::StringValue("a".into())),
        ),
        (
            "SELECT COLLATION(?) AS c",
            value(Kind::StringValue("a".into())),
        ),
        (
            "SELECT COERCIBILITY(?) AS c",
            value(Kind::StringValue("a".into())),
        ),
        (
            "SELECT COERCIBILITY(?) AS c",
            value(Kind::BytesValue(b"a".to_vec())),
        ),
        (
            "SELECT id FROM m WHERE vc = ? COLLATE utf8mb4_bin",
            value(Kind::StringValue("É日本😀".into())),
        ),
        (
            "SELECT id FROM m WHERE id >= ? LIMIT 1",
            value(Kind::Int64Value(2)),
        ),
    ];
    let mut not_text = Vec::new();
    for (sql, param) in &must_go_text {
        let (as_text, answer) = compare(&binary, &text, sql, std::slice::from_ref(param)).await;
        assert!(matches!(answer, Answer::Result(_)), "{sql}: {answer:?}");
        if !as_text {
            not_text.push((*sql, param.clone()));
        }
    }
    assert!(not_text.is_empty(), "went binary: {not_text:?}");
    // These stay binary (values that cannot be literals, texts the path
    // refuses) and must answer the same all the same.
    let binary_only = [
        (
            "SELECT id FROM m WHERE bi = ?",
            value(Kind::Int64Value(i64::MIN)),
        ),
        (
            "SELECT id FROM m WHERE vb = ?",
            value(Kind::BytesValue(vec![0x5c, 0])),
        ),
        (
            "SELECT id FROM m WHERE tx = ?",
            value(Kind::StringValue("a\\b".into())),
        ),
        (
            "SELECT id FROM m WHERE dt = ?",
            value(Kind::DateValue("2024-02-29".into())),
        ),
        (
            "SELECT id FROM m WHERE dtm6 = ?",
            value(Kind::DatetimeValue("9999-12-31 23:59:59.999999".into())),
        ),
        (
            "SELECT id FROM m WHERE tm = ?",
            value(Kind::TimeValue("838:59:59".into())),
        ),
        (
            "SELECT id FROM m ORDER BY ? LIMIT 1",
            value(Kind::Int64Value(2)),
        ),
        ("SELECT ? AS x", value(Kind::DoubleValue(-0.0))),
    ];
    for (sql, param) in &binary_only {
        let (as_text, _) = compare(&binary, &text, sql, std::slice::from_ref(param)).await;
        assert!(!as_text, "{sql} {param:?} went as text");
    }
    binary.shut_down().await;
    text.shut_down().await;
}

/// Expressions whose result columns depend on the literal (its name, its
/// length) fall back to the binary answer; errors and warnings of a
/// statement that ran as text before are the binary path's.
#[tokio::test]
async fn expressions_errors_and_warnings_are_the_binary_paths() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (binary, text) = gateways().await;
    for (sql, params) in [
        ("SELECT ?", vec![int(5)]),
        ("SELECT ?", vec![text_value("abc")]),
        ("SELECT ? + 1 AS x", vec![int(5)]),
        ("SELECT ? + 0.1 AS x", vec![value(Kind::DoubleValue(0.2))]),
        ("SELECT ? + 0.1 AS x", vec![int(7)]),
        ("SELECT ? * 2 AS x", vec![value(Kind::Uint64Value(3))]),
        ("SELECT 1e300 AS x, 0.1e0 + 0.2e0 AS y, -0.0e0 AS z", vec![]),
        (
            "SELECT CAST(? AS CHAR) AS x",
            vec![value(Kind::DoubleValue(1e-7))],
        ),
        ("SELECT ? / 3 AS x", vec![value(Kind::DoubleValue(1.0))]),
        ("SELECT id, tm6, dtm6 FROM m WHERE id < ?", vec![int(3)]),
        (
            "SELECT COUNT(*) AS n FROM m WHERE db > ?",
            vec![value(Kind::DoubleValue(0.0))],
        ),
    ] {
        compare(&binary, &text, sql, &params).await;
    }
    // NOW(6) differs from call to call: the columns must agree.
    let expected = answer(&binary, "SELECT NOW(6) AS x", &[]).await;
    for _ in 0..2 {
        let got = answer(&text, "SELECT NOW(6) AS x", &[]).await;
        match (&expected, &got) {
            (Answer::Result(a), Answer::Result(b)) => {
                assert_eq!(a.columns, b.columns);
                let shape = |r: &ExecuteResponse| text_of(&r.rows[0].values[0]).map(|t| t.len());
                assert_eq!(shape(a), shape(b));
            }
            _ => panic!("{expected:?} / {got:?}"),
        }
    }
    // An error that depends on the value, after a text run that worked: the
    // message names the expression as the binary path does.
    let sql = "SELECT bu + ? AS x FROM m WHERE id = 1";
    let (as_text, ok) = compare(&binary, &text, sql, &[int(0)]).await;
    assert!(as_text && matches!(ok, Answer::Result(_)), "{ok:?}");
    let (_, error) = compare(&binary, &text, sql, &[int(1)]).await;
    match error {
        Answer::Error { message, .. } => assert!(message.contains("out of range"), "{message}"),
        other => panic!("{other:?}"),
    }
    // Warnings: the answer (and its count) is the binary path's.
    let sql = "SELECT CAST(? AS SIGNED) AS x";
    compare(&binary, &text, sql, &[text_value("12")]).await;
    let (_, warned) = compare(&binary, &text, sql, &[text_value("12abc")]).await;
    match warned {
        Answer::Result(r) => assert_eq!(r.warning_count, 1),
        other => panic!("{other:?}"),
    }
    // A procedure's result sets, and its affected rows: CALL stays binary.
    binary
        .direct_exec("CREATE PROCEDURE two_sets(x INT) BEGIN SELECT x AS a; SELECT x + 1 AS b; END")
        .await;
    let (as_text, _) = compare(&binary, &text, "CALL two_sets(?)", &[int(4)]).await;
    assert!(!as_text);
    // A missing table: the same error either way.
    let (_, error) = compare(
        &binary,
        &text,
        "SELECT * FROM missing WHERE id = ?",
        &[int(1)],
    )
    .await;
    assert!(matches!(error, Answer::Error { .. }), "{error:?}");
    binary.shut_down().await;
    text.shut_down().await;
}

/// A plain read by its text that writes through a view (a function writing
/// a MyISAM table, which no rollback undoes), then fails on some values: a
/// text run that fails is run again binary, so it must not have written.
/// Every call writes exactly once, on both gateways.
#[tokio::test]
async fn a_view_that_writes_is_written_once_per_call() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (binary, text) = gateways().await;
    binary
        .direct_exec("CREATE TABLE audit (n INT) ENGINE=MyISAM")
        .await;
    binary
        .direct_exec(
            "CREATE FUNCTION audited() RETURNS INT MODIFIES SQL DATA \
             BEGIN INSERT INTO audit VALUES (1); RETURN 1; END",
        )
        .await;
    binary
        .direct_exec("CREATE VIEW audited_v AS SELECT audited() AS a")
        .await;
    let sql = "SELECT CAST(a AS UNSIGNED) - ? AS x FROM audited_v";
    let (as_text, answer) = compare(&binary, &text, sql, &[int(0)]).await;
    assert!(matches!(answer, Answer::Result(_)), "{answer:?}");
    assert!(!as_text, "a statement that writes stays binary");
    // Out of range once the function has written.
    let (_, answer) = compare(&binary, &text, sql, &[int(5)]).await;
    assert!(matches!(answer, Answer::Error { .. }), "{answer:?}");
    // Two calls on the binary gateway, six on the text one.
    assert_eq!(
        binary.direct_i64("SELECT COUNT(*) FROM audit").await,
        Some(8),
        "one write per call"
    );
    binary.shut_down().await;
    text.shut_down().await;
}

fn text_value(v: &str) -> Value {
    text(v)
}
