//! The guard against the real server: statements built from fragments
//! (transaction control, session changes, DDL, hidden in every comment and
//! quoting form) are checked with the guard as inside a transaction; every
//! one it accepts is run on a direct connection inside `START TRANSACTION`,
//! as a prepared statement like the gateway runs it, under each quoting
//! `sql_mode`: everything that every reading accepts, under every mode, and
//! what the guard accepts when it knows the session's mode (as the gateway
//! does once it has read it), under that mode. The server must still be in
//! the transaction, with autocommit on and the same default database: no
//! accepted statement ends the transaction or changes the session's identity.
mod common;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};
use sqlgate::guard::{GuardContext, SqlMode, check_statement};

/// Statements (and pieces of statements) that end a transaction or change
/// the session, and harmless ones. `{db}` is another database.
const CORES: &[&str] = &[
    "COMMIT",
    "ROLLBACK",
    "BEGIN",
    "START TRANSACTION",
    "USE {db}",
    "SET autocommit=0",
    "SET @@session.autocommit=0",
    "SET `autocommit`=0",
    "SET @@`session`.`autocommit`=0",
    "SET x=1, autocommit=0",
    "LOCK TABLES t WRITE",
    "SAVEPOINT s",
    "SELECT 1",
    "SELECT 2",
    "CREATE TABLE c (x INT)",
    "CREATE TEMPORARY TABLE tmp (x INT)",
    "TRUNCATE t",
    "DROP TABLE t",
    "SET STATEMENT max_statement_time=10 FOR COMMIT",
    "SET ROLE NONE",
    "SET completion_type=2",
    "SET NAMES latin1",
    "SET NAMES sjis",
    "SELECT 1 INTO OUTFILE '{file}'",
    "INTO OUTFILE '{file}'",
];

/// How a fragment is wrapped: prefix and suffix.
const WRAPPERS: &[(&str, &str)] = &[
    ("", ""),
    ("", ""),
    ("", ""),
    ("/*!999999 ", " */"),
    ("/*M!999999 ", " */"),
    ("/*! ", " */"),
    ("/*M! ", " */"),
    ("/* ", " */"),
    ("/*+ ", " */"),
    ("-- ", "\n"),
    ("--\x0b", "\n"),
    ("--\x0c", "\n"),
    ("--\r", "\n"),
    ("--", "\n"),
    ("#", "\n"),
    ("#", "\r"),
    ("-- x\r", ""),
    ("'", "'"),
    ("\"", "\""),
    ("`", "`"),
    ("'\\'", "'"),
    ("\"\\\"", "\""),
    ("(", ")"),
    ("[", "]"),
    ("[x'] ", " -- ']"),
    ("SELECT 1 ", ""),
    ("SELECT '", "'"),
];

/// What separates fragments.
const SEPARATORS: &[&str] = &[
    " ", " ", "\n", "\r", "\x0b", "\x0c", "\t", "", ";", "\\", "'", "\"", "`",
];

/// The quoting modes the guard must be sound under.
const SQL_MODES: &[&str] = &[
    "",
    "NO_BACKSLASH_ESCAPES",
    "ANSI_QUOTES",
    "ANSI_QUOTES,NO_BACKSLASH_ESCAPES",
    "MSSQL",
    "MSSQL,NO_BACKSLASH_ESCAPES",
];

/// Upper, lower or mixed case.
fn recase(text: &str, style: u8) -> String {
    match style % 3 {
        0 => text.to_ascii_uppercase(),
        1 => text.to_ascii_lowercase(),
        _ => text
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect(),
    }
}

/// Wrappers that hide a fragment from the server, or seem to.
const HIDING: &[(&str, &str)] = &[
    ("/*!999999 ", " */"),
    ("/*M!999999 ", " */"),
    ("/*!999999", "*/"),
    ("/*! ", " */"),
    ("/*M! ", " */"),
    ("/* ", " */"),
    ("/*+ ", " */"),
    ("-- ", "\n"),
    ("--\x0b", "\n"),
    ("--\x0c", "\n"),
    ("--\r", "\n"),
    ("--\x01", "\n"),
    ("#", "\n"),
    ("#", "\r\n"),
    ("'", "'"),
    ("\"", "\""),
    ("'\\'", "'"),
    ("[x'] ", " -- ']"),
    ("AS [x'] ", " -- ']"),
];

/// A file no accepted statement may write.
fn forbidden_file() -> String {
    format!("/tmp/sqlgate-guard-test-{}", std::process::id())
}

fn fragment(other_db: &str, core: usize, style: u8) -> String {
    let core = CORES[core]
        .replace("{db}", other_db)
        .replace("{file}", &forbidden_file());
    recase(&core, style)
}

/// Fragments in any order and wrapping: mostly text the server refuses.
fn scrambled(other_db: &str) -> impl Strategy<Value = String> + use<'_> {
    let piece = (
        0..CORES.len(),
        0..WRAPPERS.len(),
        0u8..3,
        0..SEPARATORS.len(),
    );
    (proptest::collection::vec(piece, 1..5), 0u8..3).prop_map(move |(pieces, start)| {
        // Often start with a harmless SELECT, so that more is accepted.
        let mut sql = match start {
            0 => "SELECT 1 ".to_string(),
            _ => String::new(),
        };
        for (core, wrapper, style, separator) in pieces {
            let (prefix, suffix) = WRAPPERS[wrapper];
            sql.push_str(prefix);
            sql.push_str(&fragment(other_db, core, style));
            sql.push_str(suffix);
            sql.push_str(SEPARATORS[separator]);
        }
        sql
    })
}

/// One statement between hidden ones: `<hidden> <statement> <hidden>`,
/// mostly text the server runs.
fn shaped(other_db: &str) -> impl Strategy<Value = String> + use<'_> {
    let hidden = proptest::option::of((0..CORES.len(), 0..HIDING.len(), 0u8..3));
    (
        hidden.clone(),
        0..CORES.len(),
        0u8..3,
        hidden,
        0..SEPARATORS.len(),
    )
        .prop_map(move |(before, core, style, after, separator)| {
            let hide = |(core, wrapper, style): (usize, usize, u8)| {
                let (prefix, suffix) = HIDING[wrapper];
                format!("{prefix}{}{suffix}", fragment(other_db, core, style))
            };
            format!(
                "{}{}{}{}{}",
                before.map(hide).unwrap_or_default(),
                SEPARATORS[separator],
                fragment(other_db, core, style),
                SEPARATORS[separator],
                after.map(hide).unwrap_or_default(),
            )
        })
}

/// A harmless statement with a hidden tail: `SELECT 1 <hidden>`.
fn tailed(other_db: &str) -> impl Strategy<Value = String> + use<'_> {
    (0..CORES.len(), 0..HIDING.len(), 0u8..3).prop_map(move |(core, wrapper, style)| {
        let (prefix, suffix) = HIDING[wrapper];
        format!(
            "SELECT 1 {prefix}{}{suffix}",
            fragment(other_db, core, style)
        )
    })
}

fn statements(other_db: &str) -> impl Strategy<Value = String> + use<'_> {
    proptest::prop_oneof![
        1 => scrambled(other_db),
        1 => shaped(other_db),
        2 => tailed(other_db)
    ]
}

#[tokio::test]
async fn accepted_statements_keep_the_transaction_and_the_session() {
    let (database, url) = common::fresh_database().await;
    let other_db = format!("{database}_other");
    let mut conn = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    conn.query_drop(format!("CREATE DATABASE {other_db}"))
        .await
        .unwrap();
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();

    let client_charset: String = conn
        .query_first("SELECT @@character_set_client")
        .await
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_file(forbidden_file());
    let strategy = statements(&other_db);
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let context = GuardContext {
        in_transaction: true,
        read_only: false,
        schema: false,
        sql_mode: None,
    };
    let (mut accepted, mut refused, mut ran_cleanly) = (0, 0, 0);
    for _ in 0..2000 {
        let sql = strategy.new_tree(&mut runner).unwrap().current();
        let every_reading = check_statement(&sql, context);
        let mut accepted_in_some_mode = false;
        for sql_mode in SQL_MODES {
            // As the gateway checks it on a session it has read the mode of
            // (a mode it does not model stays unknown).
            let known = GuardContext {
                sql_mode: SqlMode::of_session(sql_mode),
                ..context
            };
            let Ok(checked) = check_statement(&sql, known) else {
                assert!(
                    every_reading.is_err(),
                    "{sql:?}: accepted by every reading, refused under '{sql_mode}'"
                );
                continue;
            };
            if let Ok(every) = &every_reading {
                assert_eq!(every.sql, checked.sql, "{sql:?} under '{sql_mode}'");
            }
            accepted_in_some_mode = true;
            // GUARD_DEBUG=1 lists what the guard accepted (with --nocapture).
            if std::env::var_os("GUARD_DEBUG").is_some() {
                eprintln!("accepted {sql:?} under '{sql_mode}'");
            }
            conn.query_drop(format!("SET SESSION sql_mode = '{sql_mode}'"))
                .await
                .unwrap();
            conn.query_drop("START TRANSACTION").await.unwrap();
            let outcome =
                tokio::time::timeout(Duration::from_secs(10), conn.exec_drop(checked.sql, ()))
                    .await
                    .unwrap_or_else(|_| panic!("{sql:?} hung"));
            if outcome.is_ok() {
                ran_cleanly += 1;
            }
            let state: (i64, i64, Option<String>, String) = conn
                .query_first(
                    "SELECT @@in_transaction, @@autocommit, DATABASE(), @@character_set_client",
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                state,
                (1, 1, Some(database.clone()), client_charset.clone()),
                "accepted {sql:?} (sent as {:?}, sql_mode '{sql_mode}', outcome {outcome:?}) changed the transaction or the session",
                checked.sql
            );
            assert!(
                !std::path::Path::new(&forbidden_file()).exists(),
                "accepted {sql:?} (sql_mode '{sql_mode}') wrote a file"
            );
            conn.query_drop("ROLLBACK").await.unwrap();
            conn.query_drop("DROP TEMPORARY TABLE IF EXISTS tmp")
                .await
                .unwrap();
        }
        if accepted_in_some_mode {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    // The generator exercised both sides.
    assert!(accepted >= 30, "only {accepted} statements were accepted");
    assert!(refused >= 30, "only {refused} statements were refused");
    assert!(ran_cleanly >= 10, "only {ran_cleanly} ran without error");
    eprintln!("{accepted} accepted ({ran_cleanly} ran cleanly), {refused} refused");
    conn.disconnect().await.unwrap();
}
