//! The guard reads a statement under the session's actual `sql_mode` when
//! its readings differ (issue 19): `'O\'Brien'` and `"O\"Brien"` (Rails'
//! mysql2 inlines literals so) run where the session reads them one way,
//! and give what the server reads; a session's mode follows `SET sql_mode`
//! in a transaction and the server's global mode for new sessions; a mode
//! the guard does not model, or one it cannot read without disturbing the
//! statement, falls back to every reading (refused when they differ).
mod common;

use common::*;
use sqlgate::api::{ExecuteBatchRequest, ExecuteRequest, ExecuteResponse, Statement, value::Kind};
use tonic::Code;

/// The string cells of a response, row by row.
fn strings(response: &ExecuteResponse) -> Vec<Vec<String>> {
    response
        .rows
        .iter()
        .map(|row| {
            row.values
                .iter()
                .map(|value| match &value.kind {
                    Some(Kind::StringValue(s)) => s.clone(),
                    other => panic!("not a string: {other:?}"),
                })
                .collect()
        })
        .collect()
}

/// What the server itself answers to `sql` as a text query on a session
/// with `sql_mode`.
async fn server_reads(gateway: &TestGateway, sql_mode: &str, sql: &str) -> Vec<Vec<String>> {
    use mysql_async::prelude::Queryable;
    let mut conn = gateway.direct().await;
    conn.query_drop(format!("SET SESSION sql_mode = '{sql_mode}'"))
        .await
        .unwrap();
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.unwrap();
    conn.disconnect().await.unwrap();
    rows.into_iter()
        .map(|row| {
            (0..row.len())
                .map(|i| row.get::<String, _>(i).unwrap())
                .collect()
        })
        .collect()
}

fn assert_refused_for_quoting(outcome: Result<ExecuteResponse, tonic::Status>, sql: &str) {
    let status = outcome.expect_err(sql);
    assert_eq!(status.code(), Code::InvalidArgument, "{sql}: {status:?}");
}

#[tokio::test]
async fn backslash_escaped_literals_read_as_a_default_session_reads_them() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(40))")
        .await;
    let mut client = gateway.client.clone();
    for sql in [
        r"INSERT INTO people VALUES (1, 'O\'Brien')",
        r#"INSERT INTO people VALUES (2, "O\"Brien")"#,
    ] {
        execute(&mut client, sql, vec![]).await.unwrap();
    }
    // In a transaction, with a parameter, as Rails sends them.
    let tx = begin(&gateway, None).await;
    execute_in(
        &gateway,
        &tx,
        r"UPDATE people SET name = 'it\'s \\ fine' WHERE id = ?",
        vec![int(2)],
    )
    .await
    .unwrap();
    let found = execute_in(
        &gateway,
        &tx,
        r"SELECT name FROM people WHERE name = 'O\'Brien'",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(strings(&found), vec![vec!["O'Brien".to_string()]]);
    commit(&gateway, &tx).await.unwrap();
    let mut conn = gateway.direct().await;
    use mysql_async::prelude::Queryable;
    let names: Vec<String> = conn
        .query("SELECT name FROM people ORDER BY id")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    assert_eq!(names, vec![r"O'Brien", r"it's \ fine"]);

    // Whatever the text, the rows are the server's own reading of it.
    let default_mode = "STRICT_TRANS_TABLES";
    for sql in [
        r#"SELECT 'O\'Brien', "O\"Brien""#,
        // One string with backslash escapes on: not a second statement.
        r"SELECT 'a\'; COMMIT; -- '",
    ] {
        let through_gateway = execute(&mut client, sql, vec![]).await.unwrap();
        assert_eq!(
            strings(&through_gateway),
            server_reads(&gateway, default_mode, sql).await,
            "{sql}"
        );
    }
    // A batch and a stream read them the same way.
    let batch = client
        .execute_batch(ExecuteBatchRequest {
            statements: vec![Statement {
                sql: r"SELECT 'O\'Brien'".into(),
                params: vec![],
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.results[0].rows.len(), 1);
    let mut stream = client
        .execute_stream(ExecuteRequest {
            sql: r#"SELECT "O\"Brien""#.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut parts = 0;
    while stream.message().await.unwrap().is_some() {
        parts += 1;
    }
    assert!(parts >= 2, "a header and rows or a summary");
    // What the default session does not read as one statement stays refused.
    for sql in [r"SELECT 'C:\', 'x'", r"SELECT 'a\'; COMMIT; -- '; COMMIT"] {
        assert_refused_for_quoting(execute(&mut client, sql, vec![]).await, sql);
    }
    let status = execute(&mut client, r"SELECT 'C:\', 'x'", vec![])
        .await
        .unwrap_err();
    assert!(
        status.message().contains("sql_mode"),
        "the message says which reading: {}",
        status.message()
    );
}

#[tokio::test]
async fn a_transaction_follows_its_own_set_sql_mode() {
    let gateway = TestGateway::start().await;
    let tx = begin(&gateway, None).await;
    let windows_path = r"SELECT 'C:\', 'x'";
    assert_refused_for_quoting(
        execute_in(&gateway, &tx, windows_path, vec![]).await,
        windows_path,
    );
    // Rails' own way of setting it.
    execute_in(
        &gateway,
        &tx,
        "SET @@SESSION.sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')",
        vec![],
    )
    .await
    .unwrap();
    let path = execute_in(&gateway, &tx, windows_path, vec![])
        .await
        .unwrap();
    assert_eq!(strings(&path), vec![vec![r"C:\".to_string(), "x".into()]]);
    let brien = r"SELECT 'O\'Brien'";
    assert_refused_for_quoting(execute_in(&gateway, &tx, brien, vec![]).await, brien);
    // The statement after SET STATEMENT … FOR is read under the session's
    // mode, not the one it sets.
    let set_statement = r"SET STATEMENT sql_mode = '' FOR SELECT 'C:\', 'x'";
    let path = execute_in(&gateway, &tx, set_statement, vec![])
        .await
        .unwrap();
    assert_eq!(strings(&path), vec![vec![r"C:\".to_string(), "x".into()]]);
    execute_in(&gateway, &tx, "SET sql_mode = 'ANSI_QUOTES'", vec![])
        .await
        .unwrap();
    let column = execute_in(&gateway, &tx, r#"SELECT 1 AS "x\""#, vec![])
        .await
        .unwrap();
    assert_eq!(column.columns[0].name, r"x\");
    let quoted = r#"SELECT "O\"Brien""#;
    assert_refused_for_quoting(execute_in(&gateway, &tx, quoted, vec![]).await, quoted);
    execute_in(&gateway, &tx, "SET sql_mode = DEFAULT", vec![])
        .await
        .unwrap();
    let brien_then = execute_in(&gateway, &tx, brien, vec![]).await.unwrap();
    assert_eq!(strings(&brien_then), vec![vec!["O'Brien".to_string()]]);
    // What the previous statement left (`ROW_COUNT()`: 1 after this UPDATE)
    // is the client's: once the mode is known, a statement reading it
    // passes and reads it.
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY)")
        .await;
    execute_in(&gateway, &tx, "INSERT INTO t VALUES (1)", vec![])
        .await
        .unwrap();
    let leftovers = r"SELECT ROW_COUNT(), FOUND_ROWS(), 'O\'Brien'";
    let read = execute_in(&gateway, &tx, leftovers, vec![]).await.unwrap();
    assert_eq!(ints(&read), (1, 1));
    // After a statement that may change the mode, reading it would
    // overwrite them: not read, and every reading must agree (refused).
    execute_in(&gateway, &tx, "SET @x = 1", vec![])
        .await
        .unwrap();
    assert_refused_for_quoting(
        execute_in(&gateway, &tx, leftovers, vec![]).await,
        leftovers,
    );
    rollback(&gateway, &tx).await;
    // A session's first statement gets a fresh session's values (0 and -1
    // here: FOUND_ROWS() then ROW_COUNT()), the mode read notwithstanding.
    let leftovers = r"SELECT FOUND_ROWS(), ROW_COUNT(), 'O\'Brien'";
    let fresh = begin(&gateway, None).await;
    let read = execute_in(&gateway, &fresh, leftovers, vec![])
        .await
        .unwrap();
    assert_eq!(ints(&read), (0, -1));
    rollback(&gateway, &fresh).await;
    let mut client = gateway.client.clone();
    let read = execute(&mut client, leftovers, vec![]).await.unwrap();
    assert_eq!(ints(&read), (0, -1));
}

/// The first two cells of a response's only row, integers.
fn ints(response: &ExecuteResponse) -> (i64, i64) {
    let int = |i: usize| match &response.rows[0].values[i].kind {
        Some(Kind::Int64Value(v)) => *v,
        other => panic!("not an integer: {other:?}"),
    };
    (int(0), int(1))
}

#[tokio::test]
async fn new_sessions_follow_the_servers_global_sql_mode() {
    // A server of its own: the test changes its global sql_mode.
    let server = private_server("sql_mode_global");
    let url = server.url("sqlgate");
    let gateway = TestGateway::start_on("sqlgate".into(), url, |config| {
        // One connection: after a call that began after the global change,
        // it is a new session (reset), which takes the new global mode.
        config.pool.max = 1;
    })
    .await;
    let mut client = gateway.client.clone();
    let brien = r"SELECT 'O\'Brien'";
    let windows_path = r"SELECT 'C:\', 'x'";
    let quoted_column = r#"SELECT 1 AS "x\""#;
    let set_global = |setting: &'static str| {
        let url = server.url("sqlgate");
        async move {
            use mysql_async::prelude::Queryable;
            let mut conn = mysql_async::Conn::from_url(url).await.unwrap();
            conn.query_drop(format!("SET GLOBAL {setting}"))
                .await
                .unwrap();
            conn.disconnect().await.unwrap();
        }
    };
    // A call's own SET sql_mode ends with its session: the next call (on
    // the same connection, reset in between) reads the reset session's mode.
    execute(&mut client, "SET sql_mode = 'NO_BACKSLASH_ESCAPES'", vec![])
        .await
        .unwrap();
    let brien_after_reset = execute(&mut client, brien, vec![]).await.unwrap();
    assert_eq!(
        strings(&brien_after_reset),
        vec![vec!["O'Brien".to_string()]]
    );
    // What it costs: the gateway reads the session's mode (the general log
    // shows each read) only for statements whose reading depends on it,
    // once per transaction.
    set_global("log_output = 'TABLE'").await;
    set_global("general_log = ON").await;
    execute(&mut client, "SELECT 'it''s', \"plain\"", vec![])
        .await
        .unwrap();
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "SELECT 1", vec![]).await.unwrap();
    for _ in 0..3 {
        execute_in(&gateway, &tx, brien, vec![]).await.unwrap();
    }
    commit(&gateway, &tx).await.unwrap();
    execute(&mut client, brien, vec![]).await.unwrap();
    set_global("general_log = OFF").await;
    let mode_reads = query_i64(
        &server.url("sqlgate"),
        "SELECT COUNT(*) FROM mysql.general_log WHERE argument LIKE 'SELECT @@SESSION.sql_mode%'",
    )
    .await;
    assert_eq!(
        mode_reads,
        Some(2),
        "one read per transaction or call that needs it"
    );
    let session_mode = |client: &mut sqlgate::api::database_client::DatabaseClient<_>| {
        let mut client = client.clone();
        async move {
            let response = execute(&mut client, "SELECT @@sql_mode", vec![])
                .await
                .unwrap();
            strings(&response)[0][0].clone()
        }
    };

    set_global("sql_mode = 'NO_BACKSLASH_ESCAPES'").await;
    session_mode(&mut client).await;
    assert_eq!(session_mode(&mut client).await, "NO_BACKSLASH_ESCAPES");
    let path = execute(&mut client, windows_path, vec![]).await.unwrap();
    assert_eq!(strings(&path), vec![vec![r"C:\".to_string(), "x".into()]]);
    assert_refused_for_quoting(execute(&mut client, brien, vec![]).await, brien);
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, windows_path, vec![])
        .await
        .unwrap();
    rollback(&gateway, &tx).await;

    set_global("sql_mode = 'ANSI_QUOTES'").await;
    session_mode(&mut client).await;
    assert_eq!(session_mode(&mut client).await, "ANSI_QUOTES");
    let column = execute(&mut client, quoted_column, vec![]).await.unwrap();
    assert_eq!(column.columns[0].name, r"x\");
    let brien_in_ansi = execute(&mut client, brien, vec![]).await.unwrap();
    assert_eq!(strings(&brien_in_ansi), vec![vec!["O'Brien".to_string()]]);
    let quoted = r#"SELECT "O\"Brien""#;
    assert_refused_for_quoting(execute(&mut client, quoted, vec![]).await, quoted);

    // A mode the guard does not model: every reading must agree, as when
    // nothing is known.
    set_global("sql_mode = 'MSSQL'").await;
    session_mode(&mut client).await;
    assert!(session_mode(&mut client).await.contains("MSSQL"));
    assert_refused_for_quoting(execute(&mut client, brien, vec![]).await, brien);
    execute(&mut client, "SELECT 'it''s'", vec![])
        .await
        .unwrap();
    gateway.shut_down().await;
}
