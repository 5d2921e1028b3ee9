//! The gateway refuses to start on a database account with global
//! administrative privileges (issue 19, item 5) unless
//! --allow-admin-account: with one, a statement that gets past the guard
//! could shut the server down, read its files or grant itself more.
mod common;

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
