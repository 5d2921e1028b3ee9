//! Connections reused without COM_RESET_CONNECTION after plain reads
//! (`GiveBack::Reuse`): nothing a client leaves in its session reaches a
//! later call, and a clean read really skips the reset (and the PREPARE the
//! reset would force).
mod common;

use common::*;
use mysql_async::prelude::Queryable;
use sqlgate::{
    api::{self, value::Kind},
    config::Config,
};

/// One connection, so that every call runs on the same session.
fn one_connection(config: &mut Config) {
    config.pool.min = 0;
    config.pool.max = 1;
    config.transactions.max_open = 0;
    config.pool.session_reuse = sqlgate::config::SessionReuse::Reads;
}

/// The single value of a one-row, one-column result, as text.
fn only_value(response: &api::ExecuteResponse) -> String {
    let value = &response.rows[0].values[0];
    match &value.kind {
        Some(Kind::StringValue(s)) => s.clone(),
        Some(Kind::BytesValue(b)) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

/// Everything a session could carry over, in one call (so that it reads the
/// session exactly as the previous call left it). A temporary table `tt`
/// would hide the real, one-row table `tt`.
const SESSION_STATE: &str = "SELECT CONCAT_WS('|', \
    IFNULL(@x, '-'), IFNULL(@y, '-'), @@session.sql_mode, @@session.time_zone, \
    @@session.character_set_client, @@session.collation_connection, \
    (SELECT COUNT(*) FROM tt), LAST_INSERT_ID(), \
    IFNULL(DATABASE(), '-'), @@session.tx_isolation, \
    @@session.tx_read_only, @@session.autocommit, IFNULL(LASTVAL(seq), '-'), \
    @@session.max_statement_time)";

/// What plain reads in between the statements look like.
const PLAIN_READS: [&str; 2] = ["SELECT 1", "SELECT v FROM t WHERE id = 1"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_session_sets_reaches_later_calls() {
    let gateway = TestGateway::start_with(one_connection).await;
    let (other_database, _) = fresh_database().await;
    for sql in [
        "CREATE TABLE t (id INT PRIMARY KEY, v INT)",
        "INSERT INTO t VALUES (1, 10)",
        "CREATE TABLE tt (x INT)",
        "INSERT INTO tt VALUES (42)",
        "CREATE PROCEDURE p() SET @y = 1",
        "CREATE SEQUENCE seq",
    ] {
        gateway.direct_exec(sql).await;
    }
    let mut client = gateway.client.clone();
    let baseline = only_value(&execute(&mut client, SESSION_STATE, vec![]).await.unwrap());
    assert!(
        baseline.starts_with("-|-|"),
        "a fresh session has no user variables: {baseline}"
    );

    let use_other = format!("USE {other_database}");
    let statements = [
        "SET @x = 1",
        "SET SESSION sql_mode = ''",
        "SET NAMES utf8mb4 COLLATE utf8mb4_bin",
        "SET time_zone = '+01:00'",
        "SET SESSION max_statement_time = 100",
        "CREATE TEMPORARY TABLE tt (x INT)",
        "PREPARE s FROM 'SELECT 1'",
        use_other.as_str(),
        "CALL p()",
        "SET autocommit = 0",
        "START TRANSACTION",
        "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET SESSION TRANSACTION READ ONLY",
        // The server does not flag these: the guard must.
        "SELECT @y := 2",
        "SELECT GET_LOCK('l', 0)",
        "SELECT LAST_INSERT_ID(5)",
        "SELECT NEXTVAL(seq)",
        "SELECT 1 INTO @z",
        "SELECT v FROM t WHERE id = 1 FOR UPDATE",
    ];
    let mut calls = 0;
    for sql in statements {
        // Refused by the guard or failing is fine: nothing may leak either way.
        let _ = execute(&mut client, sql, vec![]).await;
        for read in PLAIN_READS {
            execute(&mut client, read, vec![]).await.unwrap();
        }
        let state = only_value(&execute(&mut client, SESSION_STATE, vec![]).await.unwrap());
        assert_eq!(state, baseline, "after {sql}");
        let lock = gateway.direct_i64("SELECT IS_USED_LOCK('l')").await;
        assert_eq!(lock, None, "after {sql}: the named lock is released");
        calls += 1;
    }
    // And from many later calls.
    while calls < 50 {
        for read in PLAIN_READS {
            execute(&mut client, read, vec![]).await.unwrap();
        }
        let state = only_value(&execute(&mut client, SESSION_STATE, vec![]).await.unwrap());
        assert_eq!(state, baseline);
        calls += 1;
    }
    gateway.shut_down().await;
}

/// A gateway with one connection (adjusted by `adjust`) on a private server
/// of its own, so that the server's global counters count its calls only,
/// with a table `t` of two rows.
async fn private_gateway(
    name: &str,
    adjust: impl FnOnce(&mut Config),
) -> (sqlgate::embedded::EmbeddedDatabase, String, TestGateway) {
    let server = private_server(name);
    let url = server.url("sqlgate");
    let gateway = TestGateway::start_on("sqlgate".into(), url.clone(), |config| {
        one_connection(config);
        adjust(config);
    })
    .await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        .await;
    gateway
        .direct_exec("INSERT INTO t VALUES (1, 10), (2, 20)")
        .await;
    (server, url, gateway)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_read_skips_the_reset_and_the_prepare() {
    let (_server, url, gateway) = private_gateway("reuse", |_| {}).await;
    let mut client = gateway.client.clone();
    let point_select = "SELECT v FROM t WHERE id = ?";
    // Warm up: the connection opens and prepares the statement once.
    execute(&mut client, point_select, vec![int(1)])
        .await
        .unwrap();
    let (resets_before, prepares_before) = reset_and_prepare_counters(&url).await;
    for i in 0..100 {
        let response = execute(&mut client, point_select, vec![int(1 + i % 2)])
            .await
            .unwrap();
        assert_eq!(response.rows.len(), 1);
    }
    let (resets_after, prepares_after) = reset_and_prepare_counters(&url).await;
    assert!(
        resets_after - resets_before < 5,
        "COM_RESET_CONNECTION (and COM_PING) per point select: {} for 100",
        resets_after - resets_before
    );
    assert!(
        prepares_after - prepares_before < 5,
        "COM_STMT_PREPARE per point select: {} for 100",
        prepares_after - prepares_before
    );

    // A statement that is not a plain read still resets its connection.
    execute(&mut client, "SET @x = 1", vec![]).await.unwrap();
    execute(&mut client, point_select, vec![int(1)])
        .await
        .unwrap();
    let (resets_later, _) = reset_and_prepare_counters(&url).await;
    assert!(resets_later > resets_after, "SET @x resets the connection");
    gateway.shut_down().await;
}

/// `--statement-cache-size` is how many statements a connection keeps
/// prepared: a workload of that many statements prepares none of them again;
/// one more, and (least recently used going first) every call prepares.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_cache_keeps_as_many_statements_as_configured() {
    let (_server, url, gateway) = private_gateway("stmt-cache", |config| {
        config.pool.statement_cache_size = 2;
    })
    .await;
    let mut client = gateway.client.clone();
    let statements = [
        "SELECT v FROM t WHERE id = ?",
        "SELECT id FROM t WHERE id = ?",
        "SELECT v, id FROM t WHERE id = ?",
    ];
    for kept in [2, 3] {
        let workload = &statements[..kept];
        for sql in workload {
            execute(&mut client, sql, vec![int(1)]).await.unwrap();
        }
        let (_, prepares_before) = reset_and_prepare_counters(&url).await;
        for round in 0..30 {
            for sql in workload {
                let response = execute(&mut client, sql, vec![int(1 + round % 2)])
                    .await
                    .unwrap();
                assert_eq!(response.rows.len(), 1);
            }
        }
        let prepares = reset_and_prepare_counters(&url).await.1 - prepares_before;
        let calls = 30 * kept as u64;
        if kept == 2 {
            assert!(
                prepares < 5,
                "{kept} statements: {prepares} prepares for {calls} calls"
            );
        } else {
            assert!(
                prepares >= calls - 5,
                "{kept} statements, cache of 2: {prepares} prepares for {calls} calls"
            );
        }
    }
    gateway.shut_down().await;
}

/// `FOUND_ROWS()` is not session state the server tracks: after a clean read
/// is reused, a statement reading it (or a transaction) gets a connection
/// reset first, so it never learns the row count of another call's read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_rows_of_another_call_never_shows() {
    // COM_RESET_CONNECTION does not clear them either: both modes leaked
    // FOUND_ROWS() before the gateway cleared it for statements reading it.
    for reuse in [
        sqlgate::config::SessionReuse::Reads,
        sqlgate::config::SessionReuse::Off,
    ] {
        found_rows_stay_private(reuse).await;
    }
}

async fn found_rows_stay_private(reuse: sqlgate::config::SessionReuse) {
    let gateway = TestGateway::start_with(|config| {
        one_connection(config);
        config.transactions.max_open = 1;
        config.pool.session_reuse = reuse;
    })
    .await;
    gateway
        .direct_exec("CREATE TABLE seven (id INT PRIMARY KEY)")
        .await;
    gateway
        .direct_exec("INSERT INTO seven VALUES (1), (2), (3), (4), (5), (6), (7)")
        .await;
    let mut client = gateway.client.clone();
    for _ in 0..5 {
        let read = execute(&mut client, "SELECT id FROM seven", vec![])
            .await
            .unwrap();
        assert_eq!(read.rows.len(), 7);
        let found = execute(&mut client, "SELECT FOUND_ROWS()", vec![])
            .await
            .unwrap();
        assert_ne!(
            only_value(&found),
            format!("{:?}", Some(Kind::Int64Value(7)))
        );
        assert_ne!(
            only_value(&found),
            format!("{:?}", Some(Kind::Uint64Value(7)))
        );
        execute(&mut client, "SELECT id FROM seven", vec![])
            .await
            .unwrap();
        let tx = begin(&gateway, None).await;
        let in_transaction = execute_in(&gateway, &tx, "SELECT FOUND_ROWS()", vec![])
            .await
            .unwrap();
        assert_ne!(
            only_value(&in_transaction),
            format!("{:?}", Some(Kind::Int64Value(7)))
        );
        assert_ne!(
            only_value(&in_transaction),
            format!("{:?}", Some(Kind::Uint64Value(7)))
        );
        rollback(&gateway, &tx).await;
    }
}

/// Session tracking is turned on lazily, on a connection about to serve a
/// read that may be reused: a read-only principal's `SET SESSION TRANSACTION
/// READ ONLY` (run on its autocommit connection when it has no database
/// account of its own) comes after it, is seen, and the connection is reset
/// before a read-write principal gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_session_never_reaches_a_writer() {
    const READER: &str = "reader-token-0123456789";
    const WRITER: &str = "writer-token-0123456789";
    let file = token_file(
        "reuse-read-only",
        &format!("{READER},alice,read-only\n{WRITER},bob,read-write\n"),
    );
    let gateway = TestGateway::start_with(move |config| {
        one_connection(config);
        config.auth_tokens_file = Some(file);
    })
    .await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        .await;
    let mut client = gateway.client.clone();
    let call = |token: &str, sql: &str| {
        as_caller(
            token,
            api::ExecuteRequest {
                sql: sql.into(),
                ..Default::default()
            },
        )
    };
    for id in 0..5 {
        let read_only = client
            .execute(call(READER, "SELECT @@session.tx_read_only"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            only_value(&read_only),
            format!("{:?}", Some(Kind::Int64Value(1)))
        );
        let writer_view = client
            .execute(call(WRITER, "SELECT @@session.tx_read_only"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            only_value(&writer_view),
            format!("{:?}", Some(Kind::Int64Value(0)))
        );
        client
            .execute(call(WRITER, &format!("INSERT INTO t VALUES ({id}, 1)")))
            .await
            .expect("the writer's session is not read-only");
    }
    gateway.shut_down().await;
}

/// A transaction's connection is reset after it (COM_RESET_CONNECTION) but
/// does not pay for turning session tracking back on: only reads that may
/// be reused do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_do_not_pay_for_session_tracking() {
    let (_server, url, gateway) = private_gateway("tx-tracking", |config| {
        config.transactions.max_open = 1;
        config.pool.max = 2;
        // The text path's SET STATEMENT ... FOR counts as a SET too.
        config.pool.text_protocol = sqlgate::config::TextProtocol::Off;
    })
    .await;
    let set_options = || async {
        let mut conn = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
        let value: Option<(String, u64)> = conn
            .query_first("SHOW GLOBAL STATUS LIKE 'Com_set_option'")
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
        value.unwrap().1
    };
    let before = set_options().await;
    for i in 0..20 {
        let tx = begin(&gateway, None).await;
        execute_in(
            &gateway,
            &tx,
            "UPDATE t SET v = ? WHERE id = 1",
            vec![int(i)],
        )
        .await
        .unwrap();
        commit(&gateway, &tx).await.unwrap();
    }
    let spent = set_options().await - before;
    assert!(spent < 3, "SET statements for 20 transactions: {spent}");
    // A read that may be reused turns tracking on (once) and is then reused.
    let mut client = gateway.client.clone();
    for _ in 0..20 {
        execute(&mut client, "SELECT v FROM t WHERE id = 1", vec![])
            .await
            .unwrap();
    }
    let reads = set_options().await - before - spent;
    assert!(
        (1..=3).contains(&reads),
        "SET statements for 20 reads: {reads}"
    );
    gateway.shut_down().await;
}
