//! The gateway's promises, tried as a hostile client would: a transaction
//! stays atomic whatever SQL it is sent, nothing one client does to its
//! session reaches another, a read-only principal can neither write nor
//! administer, a Commit's outcome is never misreported, and limits cannot be
//! raced. Each test is a reproduction from a security review.
#[path = "../common/mod.rs"]
mod common;
mod roles;

use std::time::Duration;

use common::*;
use sqlgate::api::{
    BeginRequest, CommitRequest, ExecuteBatchRequest, ExecuteRequest, Statement,
    database_client::DatabaseClient,
};
use tonic::{Code, transport::Channel};

/// A procedure that commits whatever transaction calls it, and a table.
async fn table_and_committing_procedure(gateway: &TestGateway) {
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY)")
        .await;
    gateway
        .direct_exec("CREATE PROCEDURE sneaky_commit() COMMIT")
        .await;
}

#[tokio::test]
async fn a_statement_that_commits_ends_the_transaction_visibly() {
    let gateway = TestGateway::start().await;
    table_and_committing_procedure(&gateway).await;
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "INSERT INTO t VALUES (1)", vec![])
        .await
        .unwrap();
    let ended = execute_in(&gateway, &tx, "CALL sneaky_commit()", vec![])
        .await
        .unwrap_err();
    assert_eq!(ended.code(), Code::FailedPrecondition, "{ended:?}");
    assert_eq!(reason(&ended), "TRANSACTION_ENDED_BY_STATEMENT");
    assert!(ended.message().contains("committed"), "{}", ended.message());
    // Never in autocommit: the next statement of the transaction is refused...
    let later = execute_in(&gateway, &tx, "INSERT INTO t VALUES (2)", vec![])
        .await
        .unwrap_err();
    assert_eq!(reason(&later), "TRANSACTION_ENDED_BY_STATEMENT");
    // ...and neither Rollback nor Commit pretends to end it.
    let rolled = try_rollback(&gateway, &tx).await.unwrap_err();
    assert_eq!(reason(&rolled), "TRANSACTION_ENDED_BY_STATEMENT");
    let committed = commit(&gateway, &tx).await.unwrap_err();
    assert_eq!(reason(&committed), "TRANSACTION_ENDED_BY_STATEMENT");
    assert_eq!(
        gateway.direct_ids().await,
        vec![1],
        "what ran before was committed"
    );
}

#[tokio::test]
async fn execute_batch_reports_a_statement_that_commits() {
    let gateway = TestGateway::start().await;
    table_and_committing_procedure(&gateway).await;
    let statements = |ids: [i64; 2]| {
        vec![
            Statement {
                sql: format!("INSERT INTO t VALUES ({})", ids[0]),
                params: vec![],
            },
            Statement {
                sql: "CALL sneaky_commit()".into(),
                params: vec![],
            },
            Statement {
                sql: format!("INSERT INTO t VALUES ({})", ids[1]),
                params: vec![],
            },
        ]
    };
    let mut client = gateway.client.clone();
    // In a transaction of its own.
    let status = client
        .execute_batch(ExecuteBatchRequest {
            statements: statements([10, 11]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let (reason, metadata) = error_info(&status);
    assert_eq!(reason, "TRANSACTION_ENDED_BY_STATEMENT", "{status:?}");
    assert_eq!(metadata["statement_index"], "1");
    // Inside an open transaction: no "SAVEPOINT does not exist".
    let tx = begin(&gateway, None).await;
    let status = client
        .execute_batch(ExecuteBatchRequest {
            statements: statements([20, 21]),
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error_info(&status).0, "TRANSACTION_ENDED_BY_STATEMENT");
    assert!(
        !status.message().contains("SAVEPOINT"),
        "{}",
        status.message()
    );
    let later = execute_in(&gateway, &tx, "SELECT 1", vec![])
        .await
        .unwrap_err();
    assert_eq!(error_info(&later).0, "TRANSACTION_ENDED_BY_STATEMENT");
    assert_eq!(gateway.direct_ids().await, vec![10, 20]);
}

#[tokio::test]
async fn tricks_never_commit_part_of_a_transaction() {
    let gateway = TestGateway::start().await;
    table_and_committing_procedure(&gateway).await;
    let tricks = [
        "/*!999999 SELECT 1 */ COMMIT",
        "/*M!999999 SELECT 1 */ COMMIT",
        "/*!999999 SELECT 1 */ ROLLBACK",
        "--\x0bSELECT 1\nCOMMIT",
        "--\x0cx\nROLLBACK",
        "SET `autocommit` = 0",
        "SET @@`session`.`autocommit` = 0",
        "/*!999999 SELECT 1 */ LOCK TABLES t WRITE",
        "/*!999999 SELECT 1 */ SAVEPOINT s",
        "/*!999999 SELECT 1 */ BEGIN",
        "CREATE TABLE u (id INT)",
        "TRUNCATE t",
        "RENAME TABLE t TO t2",
        "DROP PROCEDURE sneaky_commit",
        "CREATE INDEX i ON t (id)",
        "GRANT SELECT ON t TO CURRENT_USER",
        "ANALYZE TABLE t",
    ];
    for (n, trick) in tricks.iter().enumerate() {
        let first = 100 + 2 * n as i64;
        let tx = begin(&gateway, None).await;
        execute_in(
            &gateway,
            &tx,
            &format!("INSERT INTO t VALUES ({first})"),
            vec![],
        )
        .await
        .unwrap();
        let outcome = execute_in(&gateway, &tx, trick, vec![]).await;
        assert!(
            outcome.is_err(),
            "{trick:?} was accepted inside a transaction"
        );
        // Whatever became of the transaction, its first insert must not be
        // committed and the second must not run in autocommit.
        let _ = execute_in(
            &gateway,
            &tx,
            &format!("INSERT INTO t VALUES ({})", first + 1),
            vec![],
        )
        .await;
        let _ = try_rollback(&gateway, &tx).await;
        assert_eq!(
            gateway.direct_ids().await,
            Vec::<i64>::new(),
            "after {trick:?}"
        );
    }
}

#[tokio::test]
async fn use_and_set_role_never_reach_other_clients() {
    let gateway = TestGateway::start().await;
    let db = gateway.database.clone();
    let other = format!("{db}_other");
    let secret = format!("{db}_secret");
    let role = format!("{db}_boss");
    gateway
        .direct_exec(&format!(
            "CREATE DATABASE {other}; CREATE DATABASE {secret}; CREATE TABLE {secret}.s (x INT); \
             CREATE ROLE {role}; GRANT SELECT ON {secret}.* TO {role}"
        ))
        .await;
    gateway
        .direct_exec(&format!(
            "CREATE PROCEDURE become_boss() SQL SECURITY INVOKER SET ROLE {role}"
        ))
        .await;
    // The gateway connects as an ordinary account that holds the role.
    let account = format!("{db}_app");
    let url = create_account(
        &account,
        "app-password-1",
        &db,
        &[
            &format!("GRANT ALL ON {db}.* TO {{user}}"),
            &format!("GRANT SELECT ON {other}.* TO {{user}}"),
            &format!("GRANT {role} TO {{user}}"),
        ],
    )
    .await;
    let app = TestGatewayWithUrl::start(&url).await;
    let mut client = app.client.clone();
    // The procedure really sets the role (inside one call).
    let changed = execute(&mut client, "CALL become_boss()", vec![]).await;
    assert!(changed.is_ok(), "{changed:?}");
    let attempts = [
        format!("/*!999999 SELECT 1 */ USE {other}"),
        format!("USE {other}"),
        format!("--\x0bx\nUSE {other}"),
        format!("SET ROLE {role}"),
        format!("/*!999999 SELECT 1 */ SET ROLE {role}"),
        "CALL become_boss()".to_string(),
    ];
    for attempt in &attempts {
        let _ = execute(&mut client, attempt, vec![]).await;
        // A pool of one connection: every later call lands on the same one.
        for _ in 0..20 {
            let seen = execute(&mut client, "SELECT DATABASE(), CURRENT_ROLE()", vec![])
                .await
                .unwrap();
            let row = &seen.rows[0].values;
            assert_eq!(row[0], text(&db), "after {attempt:?}");
            assert_eq!(row[1], null(), "after {attempt:?}");
        }
        let denied = execute(&mut client, &format!("SELECT * FROM {secret}.s"), vec![])
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "after {attempt:?}");
    }
    // Inside a transaction the role lasts until the transaction ends, then goes.
    let tx = client
        .begin(BeginRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    let call = |sql: &str| ExecuteRequest {
        sql: sql.into(),
        transaction_id: tx.clone(),
        ..Default::default()
    };
    client.execute(call("CALL become_boss()")).await.unwrap();
    client
        .commit(CommitRequest {
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    for _ in 0..20 {
        let seen = execute(&mut client, "SELECT CURRENT_ROLE()", vec![])
            .await
            .unwrap();
        assert_eq!(seen.rows[0].values[0], null());
    }
    app.shut_down().await;
}

/// A gateway with a pool of one connection, serving `url`.
struct TestGatewayWithUrl {
    client: DatabaseClient<Channel>,
    gateway: sqlgate::server::Gateway,
}

impl TestGatewayWithUrl {
    async fn start(url: &str) -> TestGatewayWithUrl {
        let mut config = sqlgate::config::Config::for_database_url(url);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.pool.allow_admin_account = true; // the test server's root
        config.pool.min = 0;
        config.pool.max = 1;
        config.transactions.max_open = 1;
        let gateway = sqlgate::server::Gateway::start(config).await.unwrap();
        let client = DatabaseClient::connect(format!("http://{}", gateway.local_addr()))
            .await
            .unwrap();
        TestGatewayWithUrl { client, gateway }
    }

    async fn shut_down(self) {
        self.gateway.shut_down().await;
    }
}

#[tokio::test]
async fn the_per_principal_limit_cannot_be_raced() {
    const TOKEN: &str = "racer-token-0123456789abcdef";
    let file = token_file("race", &format!("{TOKEN},racer,read-write\n"));
    let gateway = TestGateway::start_with(move |config| {
        config.auth_tokens_file = Some(file);
        config.transactions.max_per_principal = 2;
        config.transactions.max_open = 40;
        config.pool.max = 48;
    })
    .await;
    let begins = (0..30).map(|_| {
        let mut client = gateway.client.clone();
        tokio::spawn(async move {
            client
                .begin(as_caller(TOKEN, BeginRequest::default()))
                .await
        })
    });
    let mut succeeded = 0;
    for begin in begins {
        match begin.await.unwrap() {
            Ok(_) => succeeded += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                assert_eq!(reason(&status), "TOO_MANY_TRANSACTIONS");
            }
        }
    }
    assert_eq!(succeeded, 2);
}

#[tokio::test]
async fn rollback_interrupts_a_running_statement() {
    let gateway = TestGateway::start().await;
    let tx = begin(&gateway, None).await;
    let sleeper = {
        let mut client = gateway.client.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            client
                .execute(ExecuteRequest {
                    sql: "SELECT SLEEP(60)".into(),
                    transaction_id: tx,
                    ..Default::default()
                })
                .await
        })
    };
    let running = || async { running(&gateway, "SELECT SLEEP(60)").await == 1 };
    assert!(eventually(Duration::from_secs(10), running).await);
    let started = std::time::Instant::now();
    let rolled_back = tokio::time::timeout(Duration::from_secs(10), rollback(&gateway, &tx))
        .await
        .expect("Rollback does not wait for the statement to finish");
    assert!(rolled_back);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(sleeper.await.unwrap().is_err() || !running().await);
}

/// Resumes a stopped process when dropped, so a failing test never leaves
/// a database server frozen.
struct Frozen(u32);

impl Frozen {
    /// Stops `pid` and waits until every one of its threads has stopped
    /// (kill returns before a busy process is actually stopped).
    async fn freeze(pid: u32) -> Frozen {
        signal(pid, "-STOP");
        let frozen = Frozen(pid);
        let stopped = || async { all_threads_stopped(pid) };
        assert!(eventually(Duration::from_secs(10), stopped).await);
        frozen
    }
}

/// True when every thread of `pid` is in the stopped state.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    threads.flatten().all(|thread| {
        std::fs::read_to_string(thread.path().join("stat")).is_ok_and(|stat| {
            // The state follows the command name in parentheses.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T') || rest.starts_with('t'))
        })
    })
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

fn signal(pid: u32, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([name, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_client_gave_up_still_reports_the_truth() {
    use mysql_async::prelude::Queryable;
    let server = private_server("frozen");
    let url = server.url("sqlgate");
    let mut config = sqlgate::config::Config::for_database_url(url.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.pool.allow_admin_account = true; // the test server's root
    let gateway = sqlgate::server::Gateway::start(config).await.unwrap();
    let mut client = DatabaseClient::connect(format!("http://{}", gateway.local_addr()))
        .await
        .unwrap();
    let mut direct = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    direct
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    for id in 1..=3 {
        let tx = client
            .begin(BeginRequest::default())
            .await
            .unwrap()
            .into_inner()
            .transaction_id;
        client
            .execute(ExecuteRequest {
                sql: format!("INSERT INTO t VALUES ({id})"),
                transaction_id: tx.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let frozen = Frozen::freeze(server.pid()).await;
        let mut impatient = tonic::Request::new(CommitRequest {
            transaction_id: tx.clone(),
            ..Default::default()
        });
        impatient.set_timeout(Duration::from_secs(1));
        let gave_up = client.commit(impatient).await.unwrap_err();
        // The gateway says it cannot know yet (UNKNOWN), unless the client's
        // own timer gives up first.
        assert!(
            matches!(gave_up.code(), Code::DeadlineExceeded | Code::Cancelled)
                || (gave_up.code() == Code::Unknown
                    && reason(&gave_up) == "COMMIT_OUTCOME_UNKNOWN"),
            "{gave_up:?}"
        );
        drop(frozen);
        // Asked again, the gateway tells the truth: it committed.
        client
            .commit(CommitRequest {
                transaction_id: tx.clone(),
                ..Default::default()
            })
            .await
            .expect("the first COMMIT went through");
        let later = client
            .execute(ExecuteRequest {
                sql: "SELECT 1".into(),
                transaction_id: tx,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(later.code(), Code::NotFound, "{later:?}");
        assert!(later.message().contains("committed"), "{}", later.message());
        let count: Option<i64> = direct
            .query_first(format!("SELECT COUNT(*) FROM t WHERE id = {id}"))
            .await
            .unwrap();
        assert_eq!(count, Some(1));
    }
    direct.disconnect().await.unwrap();
    gateway.shut_down().await;
    server.stop().unwrap();
}
