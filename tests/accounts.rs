//! Principals kept apart by the database itself (issue 19, items 2 and 3):
//! principals mapped to database accounts of their own
//! (`--database-accounts-file`) cannot KILL or see in PROCESSLIST each
//! other's threads, and read-only principals cannot write through a
//! definer's view or function, nor advance a sequence, because their
//! sessions are READ ONLY on their own (SELECT-only) accounts too.
//!
//! The setup: a non-root writer account (the main one), a SELECT-only
//! reader account (`--read-only-database-url`), read-write principals alice
//! and bob, read-only principals rita (on the reader account) and rob
//! (mapped to a SELECT-only account of his own), alice and bob mapped to
//! accounts of their own.
mod common;

use std::{os::unix::fs::PermissionsExt, time::Duration};

use common::*;
use mysql_async::prelude::Queryable;
use sqlgate::api::{self, BeginRequest, CommitRequest, value::Kind};

const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-0123456789abcdef";
const RITA: &str = "rita-token-0123456789abcdef";
const ROB: &str = "rob-token-0123456789abcdef";

const TOKENS: &str = "alice-token-0123456789abcdef,alice,read-write\n\
                      bob-token-0123456789abcdef,bob,read-write\n\
                      rita-token-0123456789abcdef,rita,read-only\n\
                      rob-token-0123456789abcdef,rob,read-only\n";

struct Setup {
    gateway: TestGateway,
    /// Root's URL of the test's database (checks from outside).
    root_url: String,
    /// Bob's own account's URL.
    bob_url: String,
    /// The writer account's URL.
    writer_url: String,
    /// The reader account's URL.
    reader_url: String,
}

impl Setup {
    async fn start(name: &str, setup: &[&str]) -> Setup {
        let (database, root_url) = fresh_database().await;
        let all = format!("GRANT ALL PRIVILEGES ON `{database}`.* TO {{user}}");
        let select = format!("GRANT SELECT ON `{database}`.* TO {{user}}");
        let account = |role: &str| {
            format!("{role}_{database}")
                .chars()
                .take(64)
                .collect::<String>()
        };
        let writer_url = create_account(&account("w"), "writer-pw", &database, &[&all]).await;
        let reader_url = create_account(&account("r"), "reader-pw", &database, &[&select]).await;
        create_account(&account("a"), "alice-pw", &database, &[&all]).await;
        let bob_url = create_account(&account("b"), "bob-pw", &database, &[&all]).await;
        create_account(&account("o"), "rob-pw", &database, &[&select]).await;
        let mut conn = mysql_async::Conn::from_url(writer_url.as_str())
            .await
            .unwrap();
        for sql in setup {
            conn.query_drop(*sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        conn.disconnect().await.unwrap();
        let tokens = token_file(name, TOKENS);
        let accounts = private_file(
            name,
            &format!(
                "# user password principal\n{} alice-pw alice\n{} bob-pw bob\n{} rob-pw rob\n",
                account("a"),
                account("b"),
                account("o")
            ),
        );
        let gateway_reader_url = reader_url.clone();
        let gateway = TestGateway::start_on(database, writer_url.clone(), move |config| {
            config.auth_tokens_file = Some(tokens);
            config.database.read_only_url = Some(gateway_reader_url);
            config.database.accounts_file = Some(accounts);
        })
        .await;
        Setup {
            gateway,
            root_url,
            bob_url,
            writer_url,
            reader_url,
        }
    }

    async fn call(
        &self,
        token: &str,
        sql: &str,
        params: Vec<api::Value>,
        transaction_id: &str,
    ) -> Result<api::ExecuteResponse, tonic::Status> {
        let request = api::ExecuteRequest {
            sql: sql.into(),
            params,
            transaction_id: transaction_id.into(),
            ..Default::default()
        };
        self.gateway
            .client
            .clone()
            .execute(as_caller(token, request))
            .await
            .map(|r| r.into_inner())
    }

    async fn int(&self, token: &str, sql: &str, transaction_id: &str) -> i64 {
        let response = self
            .call(token, sql, vec![], transaction_id)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        match response.rows[0].values[0].kind {
            Some(Kind::Int64Value(v)) => v,
            Some(Kind::Uint64Value(v)) => v as i64,
            ref other => panic!("{sql}: {other:?}"),
        }
    }

    async fn begin(&self, token: &str) -> String {
        self.gateway
            .client
            .clone()
            .begin(as_caller(token, BeginRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .transaction_id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_with_their_own_accounts_cannot_kill_or_watch_each_other() {
    let setup = Setup::start("kill", &["CREATE TABLE t (id INT PRIMARY KEY)"]).await;
    // Bob's procedure, made with his own account.
    let mut bob = mysql_async::Conn::from_url(setup.bob_url.as_str())
        .await
        .unwrap();
    bob.query_drop("CREATE PROCEDURE k(id BIGINT) KILL id")
        .await
        .unwrap();
    bob.disconnect().await.unwrap();

    // Alice's transaction, with a row in it.
    let tx = setup.begin(ALICE).await;
    setup
        .call(ALICE, "INSERT INTO t VALUES (1)", vec![], &tx)
        .await
        .unwrap();
    let alice_thread = setup.int(ALICE, "SELECT CONNECTION_ID()", &tx).await;

    // Bob cannot see her thread, nor any thread but his account's.
    let seen =
        format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {alice_thread}");
    assert_eq!(
        setup.int(BOB, &seen, "").await,
        0,
        "bob sees alice's thread"
    );
    assert_eq!(
        setup
            .int(
                BOB,
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE USER <> SUBSTRING_INDEX(CURRENT_USER(), '@', 1)",
                ""
            )
            .await,
        0
    );
    assert_eq!(
        setup
            .int(
                BOB,
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()",
                ""
            )
            .await,
        1,
        "bob sees his own thread"
    );
    assert!(
        query_i64(&setup.root_url, &seen).await == Some(1),
        "the thread exists"
    );

    // Nor kill it.
    let killed = setup
        .call(BOB, "CALL k(?)", vec![int(alice_thread)], "")
        .await;
    assert!(killed.is_err(), "bob killed alice's connection: {killed:?}");

    // Alice's transaction carries on and commits.
    setup
        .call(ALICE, "INSERT INTO t VALUES (2)", vec![], &tx)
        .await
        .unwrap();
    setup
        .gateway
        .client
        .clone()
        .commit(as_caller(
            ALICE,
            CommitRequest {
                transaction_id: tx,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        query_i64(&setup.writer_url, "SELECT COUNT(*) FROM t").await,
        Some(2)
    );

    // A running statement's text is not shown to bob either.
    let gateway_client = setup.gateway.client.clone();
    let running = tokio::spawn(async move {
        let mut client = gateway_client;
        client
            .execute(as_caller(
                ALICE,
                api::ExecuteRequest {
                    sql: "SELECT SLEEP(3) AS alice_private_text".into(),
                    ..Default::default()
                },
            ))
            .await
    });
    let visible = "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                   WHERE INFO LIKE '%alice_private_text%' AND ID <> CONNECTION_ID()";
    assert!(
        eventually(Duration::from_secs(5), || async {
            query_i64(&setup.root_url, visible).await == Some(1)
        })
        .await,
        "alice's statement runs"
    );
    assert_eq!(
        setup.int(BOB, visible, "").await,
        0,
        "bob reads alice's statement"
    );
    running.await.unwrap().unwrap();
    setup.gateway.shut_down().await;
}

/// Writes that definer views, definer functions and sequences would make
/// for a read-only principal.
const WRITES_BEHIND_VIEWS: &[&str] = &[
    "CREATE TABLE log (x INT)",
    "CREATE SEQUENCE s",
    "CREATE VIEW vseq AS SELECT NEXTVAL(s) AS n",
    "CREATE FUNCTION w() RETURNS INT MODIFIES SQL DATA SQL SECURITY DEFINER \
     BEGIN INSERT INTO log VALUES (1); RETURN 1; END",
    "CREATE VIEW vw AS SELECT w() AS x",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_principals_cannot_write_through_definer_views() {
    let setup = Setup::start("definer", WRITES_BEHIND_VIEWS).await;
    // rita: the reader account; rob: a SELECT-only account of his own.
    for reader in [RITA, ROB] {
        for sql in ["SELECT n FROM vseq", "SELECT x FROM vw"] {
            let autocommit = setup.call(reader, sql, vec![], "").await;
            assert!(autocommit.is_err(), "{sql}: {autocommit:?}");
            let tx = setup.begin(reader).await;
            let in_transaction = setup.call(reader, sql, vec![], &tx).await;
            assert!(
                in_transaction.is_err(),
                "{sql} in a transaction: {in_transaction:?}"
            );
        }
        assert_eq!(
            setup.int(reader, "SELECT @@session.tx_read_only", "").await,
            1,
            "the session is READ ONLY"
        );
    }
    assert_eq!(
        query_i64(&setup.writer_url, "SELECT COUNT(*) FROM log").await,
        Some(0),
        "nothing was inserted"
    );
    assert_eq!(
        query_i64(&setup.writer_url, "SELECT NEXTVAL(s)").await,
        Some(1),
        "the sequence did not advance"
    );
    // What stops them is the READ ONLY session: the same SELECT-only
    // account, outside one, writes through the definer's view.
    let mut reader = mysql_async::Conn::from_url(setup.reader_url.as_str())
        .await
        .unwrap();
    reader.query_drop("SELECT x FROM vw").await.unwrap();
    reader.disconnect().await.unwrap();
    assert_eq!(
        query_i64(&setup.writer_url, "SELECT COUNT(*) FROM log").await,
        Some(1),
        "a SELECT-only account writes through a definer's view"
    );
    // The writers still can, as their own accounts.
    assert_eq!(setup.int(ALICE, "SELECT x FROM vw", "").await, 1);
    assert_eq!(
        setup
            .int(BOB, "SELECT CURRENT_USER() LIKE 'b\\_%'", "")
            .await,
        1,
        "bob runs as his own account"
    );
    setup.gateway.shut_down().await;
}

/// The private server (no --database-url) makes an account of its own for
/// every principal of the token file, least privilege: the principals are
/// apart without any mapping to write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_server_gives_every_principal_an_account() {
    let data_dir =
        std::env::temp_dir().join(format!("sqlgate-own-accounts-{}", std::process::id()));
    let tokens = token_file("private-server", TOKENS);
    let mut config = sqlgate::config::Config::for_database_url("mysql://unused@localhost/x");
    config.database.target = sqlgate::config::DatabaseTarget::Embedded {
        data_dir: data_dir.clone(),
    };
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.pool.min = 0;
    config.auth_tokens_file = Some(tokens);
    // As the command line gives it without --database-url.
    config.request_ids.schema = "sqlgate_outcomes".into();
    let gateway = sqlgate::server::Gateway::start(config).await.unwrap();
    let client = api::database_client::DatabaseClient::new(
        tonic::transport::Channel::from_shared(format!("http://{}", gateway.local_addr()))
            .unwrap()
            .connect_lazy(),
    );
    let text = |token: &'static str, sql: &'static str| {
        let client = client.clone();
        async move {
            text_as(&client, token, sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        }
    };
    let mut users = Vec::new();
    for token in [ALICE, BOB, RITA, ROB] {
        let user = text(token, "SELECT CURRENT_USER()").await;
        assert!(user.starts_with("sqlgate_"), "{user}");
        assert!(!users.contains(&user), "{user} twice");
        users.push(user);
    }
    assert!(!users.iter().any(|u| u.starts_with("sqlgate@")));
    // Least privilege: the database's privileges only, SELECT for readers.
    let rita_grants = text(RITA, "SHOW GRANTS").await;
    assert!(
        rita_grants.contains("GRANT SELECT, SHOW VIEW ON `sqlgate`.*"),
        "{rita_grants}"
    );
    let alice_grants = text(ALICE, "SHOW GRANTS").await;
    assert!(
        alice_grants.contains("GRANT ALL PRIVILEGES ON `sqlgate`.*"),
        "{alice_grants}"
    );
    assert!(
        !alice_grants.contains("ALL PRIVILEGES ON *.*"),
        "{alice_grants}"
    );
    // Apart: bob sees only his own account's threads.
    assert_eq!(
        text(
            BOB,
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE USER <> SUBSTRING_INDEX(CURRENT_USER(), '@', 1)"
        )
        .await,
        "0"
    );
    // Request ids on the principals' own accounts: each writes and reads
    // its records through the view only, never another account's.
    text(ALICE, "CREATE TABLE ids (v INT)").await;
    for (token, replayed) in [(ALICE, false), (ALICE, true), (BOB, false)] {
        let insert = api::ExecuteRequest {
            sql: "INSERT INTO ids VALUES (1)".into(),
            request_id: "same-id".into(),
            ..Default::default()
        };
        let mut client = client.clone();
        let answer = client.execute(as_caller(token, insert)).await.unwrap();
        assert_eq!(answer.into_inner().replayed, replayed);
    }
    assert_eq!(text(BOB, "SELECT COUNT(*) FROM ids").await, "2");
    let mine = "SELECT COUNT(*) FROM sqlgate_outcomes.sqlgate_outcomes_mine";
    assert_eq!(text(BOB, mine).await, "1");
    let mut bob = client.clone();
    let table = api::ExecuteRequest {
        sql: "SELECT COUNT(*) FROM sqlgate_outcomes.sqlgate_outcomes".into(),
        ..Default::default()
    };
    let denied = bob.execute(as_caller(BOB, table)).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    let forged = api::ExecuteRequest {
        sql: "INSERT INTO sqlgate_outcomes.sqlgate_outcomes_mine \
              (account, principal, request_id, fingerprint, rows_affected, last_insert_id) \
              VALUES ('sqlgate', 'alice', 'forged', REPEAT('x', 32), 0, 0)"
            .into(),
        ..Default::default()
    };
    let refused = bob.execute(as_caller(BOB, forged)).await.unwrap_err();
    assert!(refused.message().contains("CHECK OPTION"), "{refused:?}");
    drop(client);
    drop(bob);
    gateway.shut_down().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// SIGHUP reloads the accounts file with the token file: a principal mapped
/// after the start logs in as its own account from then on; a file others
/// may read is refused and the previous mapping stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_private_file() {
    let (database, _) = fresh_database().await;
    let all = format!("GRANT ALL PRIVILEGES ON `{database}`.* TO {{user}}");
    let writer = format!("w_{database}").chars().take(64).collect::<String>();
    let own = format!("a_{database}").chars().take(64).collect::<String>();
    let writer_url = create_account(&writer, "writer-pw", &database, &[&all]).await;
    create_account(&own, "alice-pw", &database, &[&all]).await;
    let tokens = token_file("reload-accounts", TOKENS);
    let accounts = private_file("reload-accounts", "# nobody yet\n");
    let process = GatewayProcess::start(
        [
            "--database-url",
            &writer_url,
            "--auth-tokens-file",
            tokens.to_str().unwrap(),
            "--database-accounts-file",
            accounts.to_str().unwrap(),
        ],
        &[],
    );
    let client = process.client().await;
    let user_of_alice = || async {
        text_as(
            &client,
            ALICE,
            "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)",
        )
        .await
        .unwrap()
    };
    assert_eq!(user_of_alice().await, writer);
    std::fs::write(&accounts, format!("{own} alice-pw alice\n")).unwrap();
    process.signal("-HUP");
    assert!(
        eventually(Duration::from_secs(5), || async {
            user_of_alice().await == own
        })
        .await,
        "alice logs in as her own account after SIGHUP"
    );
    // Readable by others: refused, the mapping stays.
    std::fs::write(&accounts, "# nobody\n").unwrap();
    std::fs::set_permissions(&accounts, std::fs::Permissions::from_mode(0o644)).unwrap();
    process.signal("-HUP");
    assert!(
        eventually(Duration::from_secs(5), || async {
            process.log().contains("chmod 600")
        })
        .await,
        "{}",
        process.log()
    );
    assert_eq!(user_of_alice().await, own);
    assert!(!process.log().contains("alice-pw"), "no password is logged");
    assert_eq!(process.stop().await, Some(0));
}

/// With the private server, a principal added to the token file gets its
/// own account there at the SIGHUP that adds it, not at the next start: its
/// first call already runs on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_added_by_sighup_gets_its_private_server_account_at_once() {
    let data_dir =
        std::env::temp_dir().join(format!("sqlgate-sighup-accounts-{}", std::process::id()));
    let tokens = token_file(
        "sighup-private",
        "alice-token-0123456789abcdef,alice,read-write\n",
    );
    let process = GatewayProcess::start(
        [
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--auth-tokens-file",
            tokens.to_str().unwrap(),
        ],
        &[],
    );
    let client = process.client().await;
    let text = |token: &'static str, sql: &'static str| text_as(&client, token, sql);
    const WHO: &str = "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)";
    let alice = text(ALICE, WHO).await.unwrap();
    assert!(alice.starts_with("sqlgate_"), "{alice}");
    const CAROL: &str = "carol-token-0123456789abcdef";
    const RONALD: &str = "ronald-token-0123456789abcdef";
    let unknown = text(CAROL, WHO).await.expect_err("not in the file yet");
    assert_eq!(unknown.code(), tonic::Code::Unauthenticated);
    std::fs::write(
        &tokens,
        "alice-token-0123456789abcdef,alice,read-write\n\
         carol-token-0123456789abcdef,carol,read-write\n\
         ronald-token-0123456789abcdef,ronald,read-only\n",
    )
    .unwrap();
    process.signal("-HUP");
    // The new tokens are in force only once the accounts are made.
    assert!(
        eventually(Duration::from_secs(10), || async {
            text(CAROL, WHO).await.is_ok()
        })
        .await,
        "{}",
        process.log()
    );
    let carol = text(CAROL, WHO).await.unwrap();
    let ronald = text(RONALD, WHO).await.unwrap();
    for user in [&carol, &ronald] {
        assert!(user.starts_with("sqlgate_") && user.len() == 24, "{user}");
        assert_ne!(user, &alice);
    }
    assert_ne!(carol, ronald);
    let grants = text(RONALD, "SHOW GRANTS").await.unwrap();
    assert!(
        grants.contains("GRANT SELECT, SHOW VIEW ON `sqlgate`.*"),
        "{grants}"
    );
    let grants = text(CAROL, "SHOW GRANTS").await.unwrap();
    assert!(
        grants.contains("GRANT ALL PRIVILEGES ON `sqlgate`.*"),
        "{grants}"
    );
    assert!(
        grants
            .lines()
            .filter(|line| line.contains("ON *.*"))
            .all(|line| line.starts_with("GRANT USAGE ON *.*")),
        "no global privilege: {grants}"
    );
    assert_eq!(process.stop().await, Some(0));
    let _ = std::fs::remove_dir_all(&data_dir);
}
