//! The text path (`--text-protocol auto`, the default) with several
//! principals: principals on database accounts of their own
//! (`--database-accounts-file`) that alternate session-changing statements
//! and text-path reads never see each other's session state or rows (the
//! checks of tests/reuse_leaks.rs, on the text path), and a client that
//! opens many Execute calls with large text-path results and never reads
//! them holds no database connection and starves nobody.
//!
//! The server's prepare counter tells which runs went as text: one test of
//! this binary at a time.
mod common;

use std::time::Duration;

use common::*;
use sqlgate::api::{self, ExecuteRequest};
use tonic::Code;

const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-0123456789abcdef";

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// An account name of `role` for `database` (within MariaDB's limit).
fn account(role: &str, database: &str) -> String {
    format!("{role}_{database}").chars().take(64).collect()
}

/// Runs `sql` with `params` as the principal of `token`; the first value
/// (`None` for NULL or no rows).
async fn value(
    gateway: &TestGateway,
    token: &str,
    sql: &str,
    params: Vec<api::Value>,
) -> Result<Option<String>, tonic::Status> {
    let request = ExecuteRequest {
        sql: sql.into(),
        params,
        ..Default::default()
    };
    let response = gateway
        .client
        .clone()
        .execute(as_caller(token, request))
        .await?
        .into_inner();
    Ok(response
        .rows
        .first()
        .and_then(|row| text_of(&row.values[0])))
}

/// What a principal reads on a session that nobody changed (the session
/// reads stay binary; the table reads go as text), and its own row.
fn fresh_reads(me: &str) -> Vec<(String, Vec<api::Value>, Option<String>)> {
    vec![
        ("SELECT @x".into(), vec![], None),
        ("SELECT @v".into(), vec![], None),
        (
            "SELECT @@session.time_zone".into(),
            vec![],
            Some("SYSTEM".into()),
        ),
        ("SELECT LAST_INSERT_ID()".into(), vec![], Some("0".into())),
        (
            format!("SELECT s FROM secret_{me} WHERE id = ?"),
            vec![int(1)],
            Some(format!("{me}-row")),
        ),
        (
            "SELECT v FROM t WHERE id = ?".into(),
            vec![int(2)],
            Some("two".into()),
        ),
    ]
}

/// Runs `sql` as `token`'s principal: its first value, and whether it went
/// as text (the server prepared nothing meanwhile).
async fn value_and_path(
    gateway: &TestGateway,
    root_url: &str,
    token: &str,
    sql: &str,
    params: Vec<api::Value>,
) -> (Option<String>, bool) {
    let (_, before) = reset_and_prepare_counters(root_url).await;
    let got = value(gateway, token, sql, params).await;
    let (_, after) = reset_and_prepare_counters(root_url).await;
    let got = got.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    (got, after == before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_on_their_own_accounts_never_see_each_other_on_the_text_path() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (database, root_url) = fresh_database().await;
    let all = format!("GRANT ALL PRIVILEGES ON `{database}`.* TO {{user}}");
    let writer_url =
        create_account(&account("w", &database), "writer-pw", &database, &[&all]).await;
    let mut conn = mysql_async::Conn::from_url(writer_url.as_str())
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))",
        "INSERT INTO t VALUES (1, 'one'), (2, 'two')",
        "CREATE TABLE secret_alice (id INT PRIMARY KEY, s VARCHAR(30))",
        "INSERT INTO secret_alice VALUES (1, 'alice-row')",
        "CREATE TABLE secret_bob (id INT PRIMARY KEY, s VARCHAR(30))",
        "INSERT INTO secret_bob VALUES (1, 'bob-row')",
        "CREATE FUNCTION keep_secret() RETURNS INT \
         BEGIN SELECT 'the-secret' INTO @v; RETURN 1; END",
        "CREATE VIEW vv AS SELECT keep_secret() AS x",
        "CREATE VIEW vid AS SELECT LAST_INSERT_ID(424242) AS i",
    ] {
        mysql_async::prelude::Queryable::query_drop(&mut conn, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    conn.disconnect().await.unwrap();
    for (role, principal) in [("a", "alice"), ("b", "bob")] {
        let grants = [
            format!("GRANT SELECT, INSERT ON `{database}`.t TO {{user}}"),
            format!("GRANT SELECT ON `{database}`.secret_{principal} TO {{user}}"),
            format!("GRANT SELECT ON `{database}`.vv TO {{user}}"),
            format!("GRANT SELECT ON `{database}`.vid TO {{user}}"),
        ];
        let grants: Vec<&str> = grants.iter().map(String::as_str).collect();
        create_account(&account(role, &database), "pw", &database, &grants).await;
    }
    let tokens = token_file(
        "text-principals",
        &format!("{ALICE},alice,read-write\n{BOB},bob,read-write\n"),
    );
    let accounts = private_file(
        "text-principals",
        &format!(
            "# user password principal\n{} pw alice\n{} pw bob\n",
            account("a", &database),
            account("b", &database)
        ),
    );
    // One connection per account: a principal's consecutive calls run on
    // one server session.
    let gateway = TestGateway::start_on(database, writer_url, move |config| {
        config.auth_tokens_file = Some(tokens);
        config.database.accounts_file = Some(accounts);
        config.pool.max = 1;
        config.transactions.max_open = 0;
    })
    .await;

    // After the first round, these go as text (each ran binary before).
    let (mut text_changes, mut text_reads) = (0, 0);
    for round in 0..3 {
        for (me, my_token, other, other_token) in
            [("alice", ALICE, "bob", BOB), ("bob", BOB, "alice", ALICE)]
        {
            // `me` changes its session: plainly, and behind views whose
            // reads take the text path (a user variable set by a function,
            // LAST_INSERT_ID(expr)).
            for sql in [
                format!("SET @x = '{me}-secret'"),
                "SET SESSION time_zone = '+05:00'".into(),
            ] {
                value(&gateway, my_token, &sql, vec![])
                    .await
                    .unwrap_or_else(|e| panic!("{me}: {sql}: {e:?}"));
            }
            for (sql, returned) in [("SELECT x FROM vv", "1"), ("SELECT i FROM vid", "424242")] {
                let (got, as_text) =
                    value_and_path(&gateway, &root_url, my_token, sql, vec![]).await;
                assert_eq!(got.as_deref(), Some(returned), "{sql}");
                text_changes += usize::from(round > 0 && as_text);
            }
            // The other principal, and `me`'s own next calls, read a fresh
            // session, and only their own rows.
            for (reader, token) in [(other, other_token), (me, my_token)] {
                for (sql, params, expected) in fresh_reads(reader) {
                    let (got, as_text) =
                        value_and_path(&gateway, &root_url, token, &sql, params).await;
                    assert_eq!(got, expected, "round {round}: {reader} after {me}: {sql}");
                    text_reads += usize::from(round > 0 && as_text);
                }
            }
            // Never the other principal's rows, on either path.
            for _ in 0..2 {
                let status = value(
                    &gateway,
                    other_token,
                    &format!("SELECT s FROM secret_{me} WHERE id = ?"),
                    vec![int(1)],
                )
                .await
                .expect_err("another principal's table is not readable");
                assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
            }
        }
    }
    // Rounds 1 and 2, both principals: the views, and the table reads of
    // both readers, went as text.
    assert_eq!(text_changes, 2 * 2 * 2);
    assert_eq!(text_reads, 2 * 2 * 2 * 2);
    gateway.shut_down().await;
}

const GREEDY: &str = "greedy-token-0123456789abcdef";
const VICTIM: &str = "victim-token-0123456789abcdef";

/// About 1 MB of rows per call, under the unary caps.
const BIG: &str = "SELECT id, s FROM big WHERE id <= ?";

/// `count` Execute calls of [`BIG`] as the principal of `token`, each on an
/// HTTP/2 stream of its own over `connections` connections, whose responses
/// are never read; returns once the gateway has taken them all (a health
/// check sent last on each connection is answered). Dropping the result
/// closes the connections.
async fn unread_calls(
    address: &str,
    token: &str,
    connections: usize,
    per_connection: usize,
) -> Vec<(
    h2::client::SendRequest<prost::bytes::Bytes>,
    tokio::task::JoinHandle<()>,
    Vec<h2::client::ResponseFuture>,
)> {
    let frame = grpc_frame(&ExecuteRequest {
        sql: BIG.into(),
        params: vec![int(1000)],
        ..Default::default()
    });
    let mut held = Vec::new();
    for _ in 0..connections {
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut responses = Vec::new();
        for _ in 0..per_connection {
            client = client.ready().await.unwrap();
            let mut request = grpc_request(address, "sqlgate.v1.Database/Execute");
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            let (response, mut body) = client.send_request(request, false).unwrap();
            body.send_data(frame.clone().into(), true).unwrap();
            responses.push(response);
        }
        client = client.ready().await.unwrap();
        let health = grpc_request(address, "grpc.health.v1.Health/Check");
        let (ping, _) = client.send_request(health, true).unwrap();
        tokio::time::timeout(Duration::from_secs(30), ping)
            .await
            .expect("the gateway takes the calls")
            .unwrap();
        held.push((client, driver, responses));
    }
    held
}

/// The gateway's connections to the server (its account's threads).
async fn connections_of(root_url: &str, user: &str) -> i64 {
    query_i64(
        root_url,
        &format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{user}'"),
    )
    .await
    .unwrap_or(0)
}

/// Asserts that the account's connections come down to at most `limit`.
/// Awaited, not read once: a connection the pool discarded (and replaced)
/// leaves the server's process list a moment after its replacement came;
/// one the gateway still held would stay.
async fn assert_connections_within(root_url: &str, user: &str, limit: i64) {
    let within = eventually(Duration::from_secs(5), || async {
        connections_of(root_url, user).await <= limit
    })
    .await;
    let open = connections_of(root_url, user).await;
    assert!(within, "{open} connections, at most {limit} expected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_text_path_results_holds_no_connection_and_starves_nobody() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (database, root_url) = fresh_database().await;
    let all = format!("GRANT ALL PRIVILEGES ON `{database}`.* TO {{user}}");
    let user = account("g", &database);
    let url = create_account(&user, "gateway-pw", &database, &[&all]).await;
    let mut conn = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    for sql in [
        "CREATE TABLE big (id BIGINT PRIMARY KEY, s VARCHAR(1000))",
        "INSERT INTO big SELECT seq, REPEAT('x', 1000) FROM seq_1_to_1000",
    ] {
        mysql_async::prelude::Queryable::query_drop(&mut conn, sql)
            .await
            .unwrap();
    }
    conn.disconnect().await.unwrap();
    let tokens = token_file(
        "text-greedy",
        &format!("{GREEDY},greedy,read-write\n{VICTIM},victim,read-write\n"),
    );
    const POOL_MAX: usize = 4;
    let gateway = TestGateway::start_on(database, url, move |config| {
        config.auth_tokens_file = Some(tokens);
        config.pool.max = POOL_MAX;
        config.transactions.max_open = 2;
    })
    .await;
    // Its first run teaches the text path its columns; later ones go as
    // text.
    let mut as_text = Vec::new();
    for run in 0..4 {
        let (_, before) = reset_and_prepare_counters(&root_url).await;
        let rows = gateway
            .client
            .clone()
            .execute(as_caller(
                GREEDY,
                ExecuteRequest {
                    sql: BIG.into(),
                    params: vec![int(1000)],
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .rows
            .len();
        assert_eq!(rows, 1000);
        let (_, after) = reset_and_prepare_counters(&root_url).await;
        as_text.push((run, after == before));
    }
    println!("runs as text: {as_text:?}");
    assert!(as_text[2..].iter().any(|(_, text)| *text), "{as_text:?}");

    // 48 calls whose ~1 MB answers are never read.
    let held = unread_calls(&gateway.address.to_string(), GREEDY, 3, 16).await;
    // Each answer is ready (the statement ran to its end): nothing of them
    // holds a connection beyond --pool-max (and the two control
    // connections of the account), nor runs on the server.
    assert!(
        eventually(Duration::from_secs(10), || async {
            running(&gateway, "SET STATEMENT tx_read_only=1 FOR SELECT id").await == 0
        })
        .await,
        "the greedy client's statements end though their answers are not read"
    );
    assert_connections_within(&root_url, &user, POOL_MAX as i64 + 2).await;
    // Another principal's calls, text-path and binary, all complete.
    let mut victim = gateway.client.clone();
    for id in 0..20 {
        let request = ExecuteRequest {
            sql: BIG.into(),
            params: vec![int(id % 7 + 1)],
            ..Default::default()
        };
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            victim.execute(as_caller(VICTIM, request)),
        )
        .await
        .expect("the other principal's call completes")
        .expect("and succeeds")
        .into_inner();
        assert_eq!(answer.rows.len() as i64, id % 7 + 1);
    }
    assert_connections_within(&root_url, &user, POOL_MAX as i64 + 2).await;
    drop(held);
    gateway.shut_down().await;
}
