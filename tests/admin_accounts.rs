//! The gateway refuses to start on a database account with global
//! administrative privileges (issue 19, item 5) unless
//! --allow-admin-account: with one, a statement that gets past the guard
//! could shut the server down, read its files or grant itself more.
mod common;

use std::time::Duration;

use common::*;
use sqlgate::{config::Config, server::Gateway};

fn config(url: &str) -> Config {
    let mut config = Config::for_database_url(url.to_string());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.pool.min = 0;
    config
}

async fn refusal(url: &str) -> String {
    match Gateway::start(config(url)).await {
        Ok(_) => panic!("the gateway started on an administrative account"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn administrative_accounts_are_refused_unless_allowed() {
    let (database, root_url) = fresh_database().await;
    let message = refusal(&root_url).await;
    assert!(
        message.contains("global administrative privileges (ALL PRIVILEGES"),
        "{message}"
    );
    assert!(message.contains("--allow-admin-account"), "{message}");
    for (name, grant) in [
        ("adm_file", "GRANT FILE ON *.* TO {user}"),
        ("adm_process", "GRANT PROCESS ON *.* TO {user}"),
        ("adm_shutdown", "GRANT SHUTDOWN ON *.* TO {user}"),
        ("adm_super", "GRANT SUPER ON *.* TO {user}"),
        (
            "adm_grant",
            "GRANT SELECT ON *.* TO {user} WITH GRANT OPTION",
        ),
        ("adm_mysql", "GRANT SELECT ON mysql.* TO {user}"),
        ("adm_mysql_user", "GRANT SELECT ON mysql.user TO {user}"),
    ] {
        let name = format!("{name}_{}", &database[..database.len().min(8)]);
        let own = format!("GRANT ALL ON `{database}`.* TO {{user}}");
        let url = create_account(&name, "pw-0123456789", &database, &[own.as_str(), grant]).await;
        let message = refusal(&url).await;
        assert!(
            message.contains("global administrative privileges"),
            "{grant}: {message}"
        );
    }
    // Allowed explicitly: it starts (and warns).
    let mut allowed = config(&root_url);
    allowed.pool.allow_admin_account = true;
    let gateway = Gateway::start(allowed).await.expect("allowed by the flag");
    gateway.shut_down().await;
    // A least-privilege account starts without the flag and serves.
    let name = format!("app_{}", &database[..database.len().min(8)]);
    let own = format!("GRANT ALL ON `{database}`.* TO {{user}}");
    let url = create_account(&name, "pw-0123456789", &database, &[own.as_str()]).await;
    let gateway = TestGateway::start_on(database, url, |config| {
        config.pool.allow_admin_account = false;
    })
    .await;
    let mut client = gateway.client.clone();
    execute(&mut client, "SELECT 1", vec![]).await.unwrap();
}

/// Started while the database was unreachable, the gateway serves nothing
/// on an administrative account once it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_checked_late_is_refused_before_any_call() {
    let mut server = private_server("admin_late");
    let url = server.url("mysql");
    server.kill();
    let mut config = config(&url);
    config.pool.acquire_timeout = std::time::Duration::from_secs(2);
    let gateway = Gateway::start(config)
        .await
        .expect("starts while the database is unreachable");
    server.restart().unwrap();
    let mut client = sqlgate::api::database_client::DatabaseClient::connect(format!(
        "http://{}",
        gateway.local_addr()
    ))
    .await
    .unwrap();
    let mut last = None;
    for _ in 0..100 {
        match execute(&mut client, "SELECT 1", vec![]).await {
            Ok(_) => panic!("a call ran on an administrative account"),
            Err(status) if error_info(&status).0 == "ADMIN_ACCOUNT_REFUSED" => {
                last = Some(status);
                break;
            }
            // Still unreachable (or the pool's wait ran out): ask again.
            Err(status) => {
                last = Some(status);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    let status = last.unwrap();
    assert_eq!(error_info(&status).0, "ADMIN_ACCOUNT_REFUSED", "{status:?}");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(status.message().contains("--allow-admin-account"));
    gateway.shut_down().await;
}

/// Accounts on the test's database: a least-privilege main one, two
/// least-privilege principals' ones and one with FILE on `*.*`; their
/// user names and the main one's URL.
struct Accounts {
    main_url: String,
    admin_url: String,
    plain: String,
    other: String,
    admin: String,
}

async fn accounts(database: &str) -> Accounts {
    let name = |role: &str| {
        format!("{role}_{database}")
            .chars()
            .take(64)
            .collect::<String>()
    };
    let own = format!("GRANT ALL ON `{database}`.* TO {{user}}");
    let main_url = create_account(&name("m"), "main-pw", database, &[own.as_str()]).await;
    create_account(&name("p"), "plain-pw", database, &[own.as_str()]).await;
    create_account(&name("q"), "other-pw", database, &[own.as_str()]).await;
    let file = "GRANT FILE ON *.* TO {user}";
    let admin_url = create_account(&name("x"), "admin-pw", database, &[own.as_str(), file]).await;
    Accounts {
        main_url,
        admin_url,
        plain: name("p"),
        other: name("q"),
        admin: name("x"),
    }
}

/// Every account the gateway logs in with is checked at start, not only the
/// main one: a principal's own account (--database-accounts-file), the
/// read-only account and the accounts on a replica (--replica-url).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_account_the_gateway_logs_in_with_is_checked_at_start() {
    let (database, _) = fresh_database().await;
    let accounts = accounts(&database).await;
    let mapping = |user: &str, password: &str| {
        let file = format!("{} plain-pw alice\n{user} {password} bob\n", accounts.plain);
        private_file(&format!("{user}-start"), &file)
    };
    // A principal mapped to an administrative account.
    let mut mapped = config(&accounts.main_url);
    mapped.database.accounts_file = Some(mapping(&accounts.admin, "admin-pw"));
    let message = match Gateway::start(mapped.clone()).await {
        Ok(_) => panic!("started with a principal on an administrative account"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains("principal \"bob\""), "{message}");
    assert!(message.contains(&accounts.admin), "{message}");
    assert!(
        message.contains("global administrative privileges (FILE)"),
        "{message}"
    );
    assert!(message.contains("--allow-admin-account"), "{message}");
    assert!(!message.contains("admin-pw"), "no password: {message}");
    mapped.pool.allow_admin_account = true;
    let gateway = Gateway::start(mapped).await.expect("allowed by the flag");
    gateway.shut_down().await;
    // The read-only principals' account.
    let mut reader = config(&accounts.main_url);
    reader.database.read_only_url = Some(accounts.admin_url.clone());
    let message = refusal_of(reader).await;
    assert!(message.contains("the read-only account"), "{message}");
    // A replica reached as an administrative account.
    let mut replica = config(&accounts.main_url);
    replica.database.replica_urls = vec![accounts.admin_url.clone()];
    let message = refusal_of(replica).await;
    assert!(message.contains("on replica"), "{message}");
    assert!(
        message.contains("global administrative privileges (FILE)"),
        "{message}"
    );
    // Least privilege everywhere: it starts.
    let mut fine = config(&accounts.main_url);
    fine.database.accounts_file = Some(mapping(&accounts.other, "other-pw"));
    fine.database.replica_urls = vec![accounts.main_url.clone()];
    let gateway = Gateway::start(fine).await.expect("least privilege starts");
    gateway.shut_down().await;
}

async fn refusal_of(config: Config) -> String {
    match Gateway::start(config).await {
        Ok(_) => panic!("the gateway started on an administrative account"),
        Err(e) => e.to_string(),
    }
}

/// A SIGHUP that maps a principal to an administrative account is refused
/// with a clear log line, and the previous mapping stays; a later reload
/// without it is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_onto_an_administrative_account_is_refused() {
    let (database, _) = fresh_database().await;
    let accounts = accounts(&database).await;
    let tokens = token_file(
        "admin-reload",
        "alice-token-0123456789,alice,read-write\nbob-token-0123456789,bob,read-write\n",
    );
    let file = private_file("reload", &format!("{} plain-pw alice\n", accounts.plain));
    let process = GatewayProcess::start(
        [
            "--database-url",
            &accounts.main_url,
            "--auth-tokens-file",
            tokens.to_str().unwrap(),
            "--database-accounts-file",
            file.to_str().unwrap(),
        ],
        &[("SQLGATE_ALLOW_ADMIN_ACCOUNT", "false")],
    );
    let client = process.client().await;
    let user_of = |token: &'static str| async {
        text_as(
            &client,
            token,
            "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)",
        )
        .await
        .unwrap()
    };
    let main = format!("m_{database}").chars().take(64).collect::<String>();
    assert_eq!(user_of("bob-token-0123456789").await, main);
    let with_admin = format!(
        "{} plain-pw alice\n{} admin-pw bob\n",
        accounts.plain, accounts.admin
    );
    std::fs::write(&file, with_admin).unwrap();
    process.signal("-HUP");
    assert!(
        eventually(Duration::from_secs(10), || async {
            process.log().contains("accounts file not reloaded")
        })
        .await,
        "{}",
        process.log()
    );
    let log = process.log();
    let line = log
        .lines()
        .find(|line| line.contains("accounts file not reloaded"))
        .unwrap();
    assert!(line.contains("global administrative privileges"), "{line}");
    assert!(line.contains("principal \\\"bob\\\""), "{line}");
    assert!(!log.contains("admin-pw"), "no password is logged");
    // The previous mapping stays in force.
    assert_eq!(user_of("bob-token-0123456789").await, main);
    assert_eq!(user_of("alice-token-0123456789").await, accounts.plain);
    // A reload onto a least-privilege account is taken.
    let fixed = format!(
        "{} plain-pw alice\n{} other-pw bob\n",
        accounts.plain, accounts.other
    );
    std::fs::write(&file, fixed).unwrap();
    process.signal("-HUP");
    assert!(
        eventually(Duration::from_secs(10), || async {
            user_of("bob-token-0123456789").await == accounts.other
        })
        .await,
        "bob logs in as his own account after the second SIGHUP"
    );
    assert_eq!(process.stop().await, Some(0));
}
