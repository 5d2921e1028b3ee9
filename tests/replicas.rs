//! Reads on MariaDB replicas with read-your-writes: a primary and a replica
//! of it, with real GTID replication between two private servers.
mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;
use sqlgate::{
    api::{self, ReadConsistency, read_consistency::Bound, value::Kind},
    embedded::{EmbeddedDatabase, ReplicatedPair},
};
use tonic::Code;

/// A primary (binary log on, TCP for its replica) and a replica of it that
/// replicates everything from now on; both as root URLs of database `app`.
struct Replication {
    primary: EmbeddedDatabase,
    replica: EmbeddedDatabase,
}

impl Replication {
    async fn start(name: &str) -> Replication {
        let dir = std::env::temp_dir().join(format!("sqlgate-{name}-{}", std::process::id()));
        let ReplicatedPair { primary, replica } = ReplicatedPair::start(&dir)
            .await
            .expect("a primary and a replica start");
        let mut on_primary = mysql_async::Conn::from_url(primary.url("mysql"))
            .await
            .unwrap();
        on_primary.query_drop("CREATE DATABASE app").await.unwrap();
        on_primary
            .query_drop("CREATE TABLE app.t (id INT PRIMARY KEY, v INT NOT NULL)")
            .await
            .unwrap();
        on_primary.disconnect().await.unwrap();
        // Until the replica has the table.
        let replica_url = replica.url("mysql");
        assert!(
            eventually(Duration::from_secs(20), || async {
                let sql = "SELECT COUNT(*) FROM information_schema.tables \
                           WHERE table_schema = 'app' AND table_name = 't'";
                query_i64(&replica_url, sql).await == Some(1)
            })
            .await,
            "replication works"
        );
        Replication { primary, replica }
    }

    /// Runs `sql` on the replica directly.
    async fn on_replica(&self, sql: &str) {
        let mut conn = mysql_async::Conn::from_url(self.replica.url("app"))
            .await
            .unwrap();
        conn.query_drop(sql).await.unwrap();
        conn.disconnect().await.unwrap();
    }

    /// A gateway on the primary that reads from the replica.
    async fn gateway(&self) -> TestGateway {
        let replica = self.replica.url("app");
        TestGateway::start_on("app".into(), self.primary.url("app"), move |config| {
            config.database.replica_urls = vec![replica];
            config.database.replicas.check_interval = Duration::from_millis(100);
            config.database.replicas.wait = Duration::from_millis(300);
            config.database.replicas.max_lag = Duration::from_secs(30);
        })
        .await
    }
}

fn read(sql: &str, bound: Bound) -> api::ExecuteRequest {
    api::ExecuteRequest {
        sql: sql.into(),
        read_consistency: Some(ReadConsistency { bound: Some(bound) }),
        ..Default::default()
    }
}

fn max_staleness(seconds: i64) -> Bound {
    Bound::MaxStaleness(prost_types::Duration { seconds, nanos: 0 })
}

/// (v, the server id that answered) of row `id`.
async fn v_and_server(
    client: &mut api::database_client::DatabaseClient<tonic::transport::Channel>,
    id: i64,
    bound: Bound,
) -> (Option<i64>, i64) {
    let sql = format!("SELECT (SELECT v FROM t WHERE id = {id}), @@server_id");
    let response = client
        .execute(read(&sql, bound))
        .await
        .unwrap()
        .into_inner();
    let int = |value: &api::Value| match &value.kind {
        Some(Kind::Int64Value(v)) => Some(*v),
        Some(Kind::Uint64Value(v)) => Some(*v as i64),
        _ => None,
    };
    let row = &response.rows[0].values;
    (int(&row[0]), int(&row[1]).expect("a server id"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_with_a_commit_token_see_the_write_on_a_replica_or_the_primary() {
    let replication = Replication::start("ryw").await;
    let gateway = replication.gateway().await;
    let mut client = gateway.client.clone();
    // The replica comes into rotation once checked.
    assert!(
        eventually(Duration::from_secs(20), || {
            let mut client = client.clone();
            async move { v_and_server(&mut client, 0, max_staleness(60)).await.1 == 2 }
        })
        .await,
        "reads with max_staleness go to the replica"
    );
    // ExecuteStream reads and read-only transactions go to the replica too.
    let mut stream = client
        .execute_stream(read("SELECT @@server_id", max_staleness(60)))
        .await
        .unwrap()
        .into_inner();
    let mut servers = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        if let Some(api::execute_stream_response::Part::Rows(batch)) = message.part {
            servers.extend(batch.rows.into_iter().map(|row| row.values[0].clone()));
        }
    }
    assert_eq!(servers.len(), 1);
    assert!(
        matches!(
            servers[0].kind,
            Some(Kind::Int64Value(2) | Kind::Uint64Value(2))
        ),
        "{servers:?}"
    );
    let read_only_replica = api::TransactionOptions {
        read_only: true,
        read_consistency: Some(ReadConsistency {
            bound: Some(max_staleness(60)),
        }),
        ..Default::default()
    };
    let tx = begin(&gateway, Some(read_only_replica)).await;
    let server = execute_in(&gateway, &tx, "SELECT @@server_id", vec![])
        .await
        .unwrap();
    assert!(matches!(
        server.rows[0].values[0].kind,
        Some(Kind::Int64Value(2) | Kind::Uint64Value(2))
    ));
    let refused = execute_in(&gateway, &tx, "INSERT INTO t VALUES (7, 7)", vec![])
        .await
        .expect_err("read-only");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    commit(&gateway, &tx).await.unwrap();

    // An autocommit write carries its commit token; a read with it sees the
    // write, on the replica.
    let written = client
        .execute(api::ExecuteRequest {
            sql: "INSERT INTO t VALUES (1, 10)".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let token = written.commit_token;
    assert!(!token.is_empty(), "a write has a commit token");
    for _ in 0..5 {
        let (v, server) = v_and_server(&mut client, 1, Bound::MinCommitToken(token.clone())).await;
        assert_eq!(v, Some(10), "read-your-writes");
        assert_eq!(server, 2, "served by the caught-up replica");
    }
    // So does an autocommit write on ExecuteStream, in its summary.
    let mut stream = client
        .execute_stream(api::ExecuteRequest {
            sql: "INSERT INTO t VALUES (4, 40)".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut summary_token = None;
    while let Some(message) = stream.message().await.unwrap() {
        if let Some(api::execute_stream_response::Part::Summary(summary)) = message.part {
            summary_token = Some(summary.commit_token);
        }
    }
    let summary_token = summary_token.expect("a summary");
    assert!(!summary_token.is_empty());
    let (v, _) = v_and_server(&mut client, 4, Bound::MinCommitToken(summary_token)).await;
    assert_eq!(v, Some(40));
    // Transactions and batches carry tokens too.
    let tx = begin(&gateway, None).await;
    execute_in(&gateway, &tx, "INSERT INTO t VALUES (2, 20)", vec![])
        .await
        .unwrap();
    let committed = gateway
        .client
        .clone()
        .commit(api::CommitRequest {
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!committed.commit_token.is_empty());
    // A repeated Commit (a client that lost the answer) gets the same token.
    let again = gateway
        .client
        .clone()
        .commit(api::CommitRequest {
            transaction_id: tx,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.commit_token, committed.commit_token);
    let (v, _) = v_and_server(
        &mut client,
        2,
        Bound::MinCommitToken(committed.commit_token),
    )
    .await;
    assert_eq!(v, Some(20));
    let batch = client
        .execute_batch(api::ExecuteBatchRequest {
            statements: vec![api::Statement {
                sql: "UPDATE t SET v = 21 WHERE id = 2".into(),
                params: vec![],
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (v, _) = v_and_server(&mut client, 2, Bound::MinCommitToken(batch.commit_token)).await;
    assert_eq!(v, Some(21));

    // The replica stops applying: a read with a newer token waits
    // --replica-wait, then goes to the primary — never older data.
    replication.on_replica("STOP SLAVE SQL_THREAD").await;
    let written = client
        .execute(api::ExecuteRequest {
            sql: "INSERT INTO t VALUES (3, 30)".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (v, server) =
        v_and_server(&mut client, 3, Bound::MinCommitToken(written.commit_token)).await;
    assert_eq!(v, Some(30), "never older than the token");
    assert_eq!(server, 1, "the primary served it");
    // With replication stopped, the replica leaves rotation: bounded-staleness
    // reads go to the primary; back in rotation once it runs again.
    assert!(
        eventually(Duration::from_secs(20), || {
            let mut client = client.clone();
            async move { v_and_server(&mut client, 3, max_staleness(60)).await == (Some(30), 1) }
        })
        .await
    );
    replication.on_replica("START SLAVE SQL_THREAD").await;
    assert!(
        eventually(Duration::from_secs(20), || {
            let mut client = client.clone();
            async move { v_and_server(&mut client, 3, max_staleness(60)).await == (Some(30), 2) }
        })
        .await
    );
    gateway.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_autocommit_reads_may_go_to_a_replica() {
    let replication = Replication::start("replica-writes").await;
    let gateway = replication.gateway().await;
    let mut client = gateway.client.clone();
    for sql in ["INSERT INTO t VALUES (9, 9)", "CREATE TABLE u (x INT)"] {
        let refused = client
            .execute(read(sql, max_staleness(60)))
            .await
            .expect_err(sql);
        assert_eq!(refused.code(), Code::InvalidArgument, "{sql}: {refused:?}");
    }
    // What the guard lets through as a read still runs in a READ ONLY
    // session on the replica: a locking read is refused there.
    assert!(
        eventually(Duration::from_secs(20), || {
            let mut client = client.clone();
            async move { v_and_server(&mut client, 0, max_staleness(60)).await.1 == 2 }
        })
        .await
    );
    let locking = client
        .execute(read("SELECT v FROM t FOR UPDATE", max_staleness(60)))
        .await
        .expect_err("READ ONLY on the replica");
    assert_eq!(locking.code(), Code::FailedPrecondition, "{locking:?}");
    assert_eq!(
        error_info(&locking).1.get("errno").map(String::as_str),
        Some("1792")
    );
    let tx = begin(&gateway, None).await;
    let refused = client
        .execute(api::ExecuteRequest {
            transaction_id: tx.clone(),
            ..read("SELECT 1", max_staleness(60))
        })
        .await
        .expect_err("in a transaction");
    assert_eq!(refused.code(), Code::InvalidArgument);
    rollback(&gateway, &tx).await;
    let malformed = client
        .execute(read(
            "SELECT 1",
            Bound::MinCommitToken("0-1-2; DROP".into()),
        ))
        .await
        .expect_err("not a token");
    assert_eq!(malformed.code(), Code::InvalidArgument, "{malformed:?}");
    let streamed = client
        .execute_stream(read("DELETE FROM t", max_staleness(60)))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .expect_err("a write on ExecuteStream");
    assert_eq!(streamed.code(), Code::InvalidArgument, "{streamed:?}");
    let not_read_only = client
        .begin(api::BeginRequest {
            options: Some(api::TransactionOptions {
                read_consistency: Some(ReadConsistency {
                    bound: Some(max_staleness(60)),
                }),
                ..Default::default()
            }),
        })
        .await
        .expect_err("a replica transaction must be read-only");
    assert_eq!(not_read_only.code(), Code::InvalidArgument);
    assert_eq!(
        query_i64(&replication.primary.url("app"), "SELECT COUNT(*) FROM t").await,
        Some(0),
        "nothing was written"
    );
    gateway.shut_down().await;
}

/// Writes through one gateway process, reads with each write's commit token
/// through another: every read sees its write, while the replica is well,
/// while its replication is stopped (reads fall back to the primary after
/// --replica-wait) and while it is down and restarting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_your_writes_through_another_gateway_while_the_replica_lags_or_dies() {
    let mut replication = Replication::start("ryw-fleet").await;
    let (primary, replica) = (
        replication.primary.url("app"),
        replication.replica.url("app"),
    );
    let metrics_port = free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let gateway = |extra: &[&str]| {
        let mut args = vec![
            "--database-url",
            &primary,
            "--replica-url",
            &replica,
            "--replica-wait",
            "20ms",
            "--replica-check-interval",
            "100ms",
        ];
        args.extend_from_slice(extra);
        GatewayProcess::start(args, &[])
    };
    let writer = gateway(&[]);
    let reader = gateway(&["--metrics-listen", &metrics]);
    let (mut writes, mut reads) = (writer.client().await, reader.client().await);
    assert!(
        eventually(Duration::from_secs(20), || {
            let mut reads = reads.clone();
            async move { v_and_server(&mut reads, 0, max_staleness(60)).await.1 == 2 }
        })
        .await,
        "the replica comes into rotation"
    );
    for i in 1..=1000i64 {
        match i {
            300 => replication.on_replica("STOP SLAVE SQL_THREAD").await,
            450 => replication.on_replica("START SLAVE SQL_THREAD").await,
            700 => replication.replica.kill(),
            800 => replication.replica.restart().expect("the replica restarts"),
            _ => {}
        }
        let token = writes
            .execute(api::ExecuteRequest {
                sql: format!("INSERT INTO t VALUES ({i}, {i})"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .commit_token;
        let (v, _) = v_and_server(&mut reads, i, Bound::MinCommitToken(token)).await;
        assert_eq!(v, Some(i), "iteration {i}: the read sees its write");
    }
    // The replica served reads, and the primary stood in while it could not.
    let scraped = scrape(metrics_port).expect("metrics");
    let replica_reads = sample(&scraped, r#"sqlgate_replica_reads_total{target="replica"}"#);
    let fallbacks = sample(&scraped, r#"sqlgate_replica_reads_total{target="primary"}"#);
    assert!(replica_reads.is_some_and(|n| n > 100.0), "{scraped}");
    assert!(fallbacks.is_some_and(|n| n > 10.0), "{scraped}");
    assert!(scraped.contains("sqlgate_replica_lag_seconds"), "{scraped}");
    // Back in rotation after its restart.
    assert!(
        eventually(Duration::from_secs(30), || {
            let mut reads = reads.clone();
            async move { v_and_server(&mut reads, 1, max_staleness(60)).await == (Some(1), 2) }
        })
        .await,
        "the restarted replica comes back"
    );
}

/// Issue 19, item 3: on a replica, read-only principals run as the
/// SELECT-only read-only account (not the main one), in a READ ONLY session,
/// in pools of their own: they cannot EXECUTE a routine that account may not,
/// there as on the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_principals_read_replicas_as_the_read_only_account() {
    let replication = Replication::start("replica-reader").await;
    let mut on_primary = mysql_async::Conn::from_url(replication.primary.url("app"))
        .await
        .unwrap();
    for sql in [
        "CREATE USER 'sg_writer'@'localhost' IDENTIFIED BY 'writer-pw'",
        "GRANT ALL PRIVILEGES ON app.* TO 'sg_writer'@'localhost'",
        // The gateway checks the replica with SHOW SLAVE STATUS.
        "GRANT SLAVE MONITOR ON *.* TO 'sg_writer'@'localhost'",
        "CREATE USER 'sg_reader'@'localhost' IDENTIFIED BY 'reader-pw'",
        "GRANT SELECT ON app.* TO 'sg_reader'@'localhost'",
        "CREATE FUNCTION app.f_secret() RETURNS INT DETERMINISTIC RETURN 42",
    ] {
        on_primary.query_drop(sql).await.unwrap();
    }
    on_primary.disconnect().await.unwrap();
    let replica_root = replication.replica.url("mysql");
    assert!(
        eventually(Duration::from_secs(20), || async {
            query_i64(
                &replica_root,
                "SELECT COUNT(*) FROM mysql.proc WHERE db = 'app' AND name = 'f_secret'",
            )
            .await
                == Some(1)
        })
        .await,
        "the accounts and the function replicate"
    );
    let as_account = |url: String, user: &str| url.replacen("root@", user, 1);
    let writer = as_account(replication.primary.url("app"), "sg_writer:writer-pw@");
    let reader = as_account(replication.primary.url("app"), "sg_reader:reader-pw@");
    let replica = as_account(replication.replica.url("app"), "sg_writer:writer-pw@");
    let tokens = token_file(
        "replica-reader",
        "alice-token-0123456789abcdef,alice,read-write\nrita-token-0123456789abcdef,rita,read-only\n",
    );
    let gateway = TestGateway::start_on("app".into(), writer, move |config| {
        config.auth_tokens_file = Some(tokens);
        config.database.read_only_url = Some(reader);
        config.database.replica_urls = vec![replica];
        config.database.replicas.check_interval = Duration::from_millis(100);
        config.database.replicas.max_lag = Duration::from_secs(30);
    })
    .await;
    let client = gateway.client.clone();
    let who = "SELECT CONCAT_WS(' ', CURRENT_USER(), @@server_id, @@session.tx_read_only)";
    let text_on_replica = |token: &'static str, sql: &'static str| {
        let mut client = client.clone();
        async move {
            let response = client
                .execute(as_caller(token, read(sql, max_staleness(60))))
                .await?
                .into_inner();
            Ok::<_, tonic::Status>(match &response.rows[0].values[0].kind {
                Some(Kind::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            })
        }
    };
    const RITA: &str = "rita-token-0123456789abcdef";
    const ALICE: &str = "alice-token-0123456789abcdef";
    assert!(
        eventually(Duration::from_secs(20), || async {
            text_on_replica(RITA, who)
                .await
                .is_ok_and(|s| s.ends_with(" 2 ON"))
        })
        .await,
        "the replica serves rita's reads"
    );
    assert_eq!(
        text_on_replica(RITA, who).await.unwrap(),
        "sg_reader@localhost 2 ON"
    );
    assert_eq!(
        text_on_replica(ALICE, who).await.unwrap(),
        "sg_writer@localhost 2 ON"
    );
    let denied = text_on_replica(RITA, "SELECT CONCAT(f_secret(), @@server_id)").await;
    assert!(denied.is_err(), "rita executed f_secret: {denied:?}");
    assert_eq!(
        text_on_replica(ALICE, "SELECT CONCAT(f_secret(), @@server_id)")
            .await
            .unwrap(),
        "422"
    );
    gateway.shut_down().await;
}
