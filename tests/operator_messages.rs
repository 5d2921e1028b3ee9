//! What the gateway tells its operator when the database or a file is wrong:
//! each message names what failed (host:port, database, file) and what to
//! do, from the real binary's log.
mod common;

use std::{process::Command, time::Duration};

use common::*;

/// Starts a gateway process on `url` and waits until its log contains
/// `expected`; returns the log.
async fn log_of_gateway_on(url: &str, expected: &str) -> String {
    let gateway = GatewayProcess::start(["--database-url", url], &[]);
    let seen = eventually(Duration::from_secs(10), || async {
        gateway.log().contains(expected)
    })
    .await;
    let log = gateway.log();
    gateway.stop().await;
    assert!(seen, "no {expected:?} in the log:\n{log}");
    log
}

#[tokio::test]
async fn an_unreachable_database_is_named_by_host_and_port() {
    let port = free_port();
    let url = format!("mysql://app@127.0.0.1:{port}/shop");
    let log = log_of_gateway_on(&url, "cannot reach the database at").await;
    assert!(log.contains(&format!("127.0.0.1:{port}")), "{log}");
    assert!(!log.contains("Input/output error"), "{log}");
}

#[tokio::test]
async fn an_unknown_database_is_said_not_to_exist() {
    let (database, url) = fresh_database().await;
    let url = url.replacen(&format!("/{database}?"), "/no_such_db?", 1);
    let log = log_of_gateway_on(&url, "does not exist").await;
    assert!(log.contains("no_such_db"), "{log}");
    assert!(!log.contains("unreachable"), "{log}");
    assert!(!log.contains("''"), "a stray quote: {log}");
}

#[tokio::test]
async fn a_database_the_account_may_not_use_gets_no_password_hint() {
    let (database, _) = fresh_database().await;
    let url = create_account("no_rights_here", "pw", &database, &[]).await;
    let log = log_of_gateway_on(&url, "1044").await;
    assert!(log.contains("GRANT"), "{log}");
    assert!(!log.contains("check the user and password"), "{log}");
}

#[tokio::test]
async fn a_tls_file_that_is_not_pem_is_named_before_listening() {
    let (_, url) = fresh_database().await;
    let dir = std::env::temp_dir().join(format!("sqlgate-notpem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.der");
    std::fs::write(&cert, b"\x30\x82\x01\x00 this is not PEM").unwrap();
    let key = dir.join("key.pem");
    std::fs::write(
        &key,
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sqlgate"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
            // The test server's root (see tests/admin_accounts.rs).
            .arg("--allow-admin-account")
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .output()
            .expect("the sqlgate binary runs")
    })
    .await
    .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{log}");
    assert!(
        log.contains("--tls-cert") && log.contains("cert.der"),
        "{log}"
    );
    assert!(log.contains("not a PEM file"), "{log}");
    assert!(!log.contains("listening for gRPC"), "{log}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_command_line_names_allowed_values_and_takes_host_names() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sqlgate"))
            .arg("serve")
            .args(args)
            .output()
            .expect("the sqlgate binary runs")
    };
    let output = run(&["--log-format", "xml"]);
    assert_eq!(output.status.code(), Some(64));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("[possible values: text, json]"),
        "{message}"
    );
    let output = run(&["--database-url", "mysql://app@127.0.0.1:3306"]);
    assert_eq!(output.status.code(), Some(64));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("names no database"), "{message}");
}
