//! A read-only principal can neither write nor administer, and the private
//! server is never used as root.

use super::*;

#[tokio::test]
async fn read_only_principals_can_neither_write_nor_administer() {
    const READER: &str = "reader-token-0123456789abcdef";
    const WRITER: &str = "writer-token-0123456789abcdef";
    let (db, url) = fresh_database().await;
    let reader_url = create_account(
        &format!("{db}_reader"),
        "reader-password-1",
        &db,
        &["GRANT SELECT ON {db}.* TO {user}"
            .replace("{db}", &db)
            .as_str()],
    )
    .await;
    let file = token_file(
        "read-only-admin",
        &format!("{READER},alice,read-only\n{WRITER},bob,read-write\n"),
    );
    let gateway = TestGateway::start_on(db.clone(), url, move |config| {
        config.auth_tokens_file = Some(file);
        config.database.read_only_url = Some(reader_url);
    })
    .await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
        .await;
    let mut client = gateway.client.clone();
    let run = |token: &'static str, sql: String| {
        let mut client = client.clone();
        async move {
            client
                .execute(as_caller(
                    token,
                    ExecuteRequest {
                        sql,
                        ..Default::default()
                    },
                ))
                .await
                .map(|r| r.into_inner())
        }
    };
    // Read-only principals run as their own account.
    let who = run(READER, "SELECT CURRENT_USER()".into()).await.unwrap();
    assert_eq!(
        who.rows[0].values[0],
        text(&format!("{db}_reader@localhost"))
    );
    let writer_connection = run(WRITER, "SELECT CONNECTION_ID()".into())
        .await
        .unwrap()
        .rows[0]
        .values[0]
        .clone();
    let Some(sqlgate::api::value::Kind::Int64Value(writer_connection)) = writer_connection.kind
    else {
        panic!("CONNECTION_ID() is an integer");
    };
    let outfile = std::env::temp_dir().join(format!("sqlgate-outfile-{db}"));
    let max_connections = gateway.direct_i64("SELECT @@global.max_connections").await;
    let attempts = [
        "DROP TABLE t".to_string(),
        "TRUNCATE t".into(),
        "RENAME TABLE t TO u".into(),
        "INSERT INTO t VALUES (9)".into(),
        "/*!999999 SELECT 1 */ INSERT INTO t VALUES (9)".into(),
        "UPDATE t SET id = id + 10".into(),
        "DELETE FROM t".into(),
        format!("CREATE USER '{db}_x'@'%'"),
        "GRANT ALL ON *.* TO CURRENT_USER".into(),
        format!("CREATE DATABASE {db}_z"),
        "SHUTDOWN".into(),
        format!("KILL {writer_connection}"),
        "SET GLOBAL max_connections = 10".into(),
        format!("SELECT * FROM t INTO OUTFILE '{}'", outfile.display()),
        "SELECT LOAD_FILE('/etc/passwd')".into(),
        "LOAD DATA INFILE '/etc/passwd' INTO TABLE t".into(),
    ];
    for attempt in &attempts {
        let refused = run(READER, attempt.clone()).await.unwrap_err();
        assert!(
            matches!(
                refused.code(),
                Code::PermissionDenied | Code::InvalidArgument
            ),
            "{attempt}: {refused:?}"
        );
    }
    // Administration and file access are refused for read-write principals
    // too, even though this gateway's own account is the server's root.
    // (CREATE DATABASE is DDL, which read-write principals may run.)
    for attempt in attempts[7..]
        .iter()
        .filter(|a| !a.starts_with("CREATE DATABASE"))
    {
        let refused = run(WRITER, attempt.clone()).await.unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{attempt}");
        assert_eq!(error_info(&refused).0, "STATEMENT_NOT_ALLOWED", "{attempt}");
    }
    // Nothing changed.
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(2));
    assert_eq!(gateway.direct_i64("SELECT SUM(id) FROM t").await, Some(3));
    assert_eq!(
        gateway
            .direct_i64(&format!(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{db}_z'"
            ))
            .await,
        Some(0)
    );
    assert_eq!(
        gateway
            .direct_i64(&format!(
                "SELECT COUNT(*) FROM mysql.user WHERE User = '{db}_x'"
            ))
            .await,
        Some(0)
    );
    assert_eq!(
        gateway.direct_i64("SELECT @@global.max_connections").await,
        max_connections
    );
    assert_eq!(
        gateway
            .direct_i64(&format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {writer_connection}"
            ))
            .await,
        Some(1),
        "the writer's connection was not killed"
    );
    assert!(!outfile.exists());
    // A read-only transaction refuses writes as well.
    let tx = client
        .begin(as_caller(READER, BeginRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    let write = client
        .execute(as_caller(
            READER,
            ExecuteRequest {
                sql: "INSERT INTO t VALUES (7)".into(),
                transaction_id: tx,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(write.code(), Code::PermissionDenied);
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(2));
}

#[tokio::test]
async fn the_private_server_is_never_used_as_root() {
    const READER: &str = "reader-token-0123456789abcdef";
    const WRITER: &str = "writer-token-0123456789abcdef";
    let data_dir =
        std::env::temp_dir().join(format!("sqlgate-private-accounts-{}", std::process::id()));
    let file = token_file(
        "private-accounts",
        &format!("{READER},alice,read-only\n{WRITER},bob,read-write\n"),
    );
    let gateway = GatewayProcess::start(
        [
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--auth-tokens-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    let client = DatabaseClient::connect(format!("http://{}", gateway.address))
        .await
        .unwrap();
    let run = |token: &'static str, sql: &str| {
        let request = as_caller(
            token,
            ExecuteRequest {
                sql: sql.into(),
                ..Default::default()
            },
        );
        let mut client = client.clone();
        async move { client.execute(request).await.map(|r| r.into_inner()) }
    };
    // The private server may take a moment to answer.
    let mut who = None;
    for _ in 0..200 {
        match run(WRITER, "SELECT CURRENT_USER()").await {
            Ok(response) => {
                who = Some(response);
                break;
            }
            Err(status) if status.code() == Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    // Each principal of the token file has a least-privilege account of
    // its own on the private server (sqlgate_ and a digest of its name).
    let account = |value: &sqlgate::api::Value| match &value.kind {
        Some(sqlgate::api::value::Kind::StringValue(user)) => user.clone(),
        other => panic!("CURRENT_USER() is text: {other:?}"),
    };
    let writer_account = account(&who.unwrap().rows[0].values[0]);
    let reader = run(READER, "SELECT CURRENT_USER()").await.unwrap();
    let reader_account = account(&reader.rows[0].values[0]);
    for user in [&writer_account, &reader_account] {
        assert!(
            user.starts_with("sqlgate_") && user.ends_with("@localhost"),
            "{user}"
        );
    }
    assert_ne!(writer_account, reader_account);
    let grants = run(WRITER, "SHOW GRANTS").await.unwrap();
    for row in &grants.rows {
        let Some(sqlgate::api::value::Kind::StringValue(grant)) = &row.values[0].kind else {
            panic!("grants are text");
        };
        assert!(
            !grant.contains("ON *.*") || grant.starts_with("GRANT USAGE ON *.*"),
            "{grant}"
        );
    }
    run(WRITER, "CREATE TABLE t (id INT)").await.unwrap();
    let write = run(READER, "INSERT INTO t VALUES (1)").await.unwrap_err();
    assert_eq!(write.code(), Code::PermissionDenied);
    assert_eq!(gateway.stop().await, Some(0));
    let _ = std::fs::remove_dir_all(&data_dir);
}
