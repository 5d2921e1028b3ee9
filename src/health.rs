//! The standard gRPC health service, fed by a periodic database ping.
//!
//! Both the overall status (`""`) and `sqlgate.v1.Database` are NOT_SERVING
//! until the database answers, while it does not, and from the start of a
//! shutdown on.
use std::time::Duration;

use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{api::SERVICE_NAME, database::Database};

/// How often the database is pinged.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// How long a ping may take before the database counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// Sets both health entries.
pub async fn set_status(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status(SERVICE_NAME, status).await;
}

/// Pings the database forever, keeping health up to date and logging each
/// change of reachability once, naming `target` (the database's host:port
/// or socket, see [`describe_target`]). Shutdown aborts this task before it
/// sets NOT_SERVING for good.
pub async fn monitor(database: Database, reporter: HealthReporter, target: String) {
    let mut reachable: Option<bool> = None;
    loop {
        let outcome = tokio::time::timeout(PING_TIMEOUT, database.ping()).await;
        let now_reachable = matches!(outcome, Ok(Ok(())));
        if reachable != Some(now_reachable) {
            match &outcome {
                Ok(Ok(())) => tracing::info!("database is reachable; serving"),
                Ok(Err(e)) => tracing::error!("{}", ping_failure(e, &target)),
                Err(_) => tracing::error!(
                    "the database at {target} did not answer a ping within {PING_TIMEOUT:?}; not serving until it does"
                ),
            }
            let status = if now_reachable {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            set_status(&reporter, status).await;
            reachable = Some(now_reachable);
        }
        tokio::time::sleep(PING_INTERVAL).await;
    }
}

/// Where a database URL points, for operators: `host:port`, or the unix
/// socket's path, and the database's name.
pub fn describe_target(url: &str) -> String {
    match mysql_async::Opts::from_url(url) {
        Ok(opts) => {
            let place = match opts.socket() {
                Some(socket) => format!("unix socket {socket}"),
                None => format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()),
            };
            match opts.db_name() {
                Some(db) => format!("{place} (database `{db}`)"),
                None => place,
            }
        }
        Err(_) => crate::config::redact_url(url),
    }
}

/// What a failed ping means and what to do, naming the database's `target`.
fn ping_failure(error: &mysql_async::Error, target: &str) -> String {
    use mysql_async::{Error, IoError};
    const NOT_SERVING: &str = "not serving until it answers";
    match error {
        Error::Server(e) => {
            let what = format!("{} (MySQL error {})", e.message, e.code);
            let hint = match e.code {
                1045 => {
                    "the database refused the credentials: check the user and password in --database-url (or --database-password-file)"
                }
                1044 => {
                    "the account may not use this database: grant it privileges on the database (GRANT ... ON db.* TO ...), or name a database it may use in --database-url"
                }
                1049 => {
                    "the database does not exist: create it (CREATE DATABASE ...), or name an existing one in --database-url"
                }
                _ => "the database server refused the connection",
            };
            format!("{hint}; at {target}: {what}; {NOT_SERVING}")
        }
        Error::Io(IoError::Io(e)) => {
            format!("cannot reach the database at {target}: {e}; {NOT_SERVING}")
        }
        Error::Io(IoError::Tls(e)) => {
            format!("TLS with the database at {target} failed: {e}; {NOT_SERVING}")
        }
        other => format!("cannot use the database at {target}: {other}; {NOT_SERVING}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(code: u16, message: &str) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: message.into(),
            state: "42000".into(),
        })
    }

    #[test]
    fn targets_name_host_and_port_or_socket() {
        assert_eq!(
            describe_target("mysql://app:pw@db.example:3307/shop"),
            "db.example:3307 (database `shop`)"
        );
        assert_eq!(
            describe_target("mysql://app@localhost/shop?socket=/run/mysqld.sock"),
            "unix socket /run/mysqld.sock (database `shop`)"
        );
    }

    #[test]
    fn ping_failures_say_what_failed_and_what_to_do() {
        let target = "127.0.0.1:1 (database `shop`)";
        let refused = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        let message = ping_failure(&refused, target);
        assert!(
            message.starts_with("cannot reach the database at 127.0.0.1:1"),
            "{message}"
        );
        assert!(!message.contains("Input/output error"), "{message}");
        let unknown = ping_failure(&server_error(1049, "Unknown database 'nope'"), target);
        assert!(unknown.contains("does not exist"), "{unknown}");
        assert!(
            unknown.contains("Unknown database 'nope' (MySQL error 1049)"),
            "{unknown}"
        );
        assert!(!unknown.contains("''"), "{unknown}");
        let denied = ping_failure(
            &server_error(1044, "Access denied for user 'a'@'%' to database 'shop'"),
            target,
        );
        assert!(!denied.contains("password"), "{denied}");
        assert!(denied.contains("GRANT"), "{denied}");
        let credentials = ping_failure(
            &server_error(1045, "Access denied for user 'a'@'%'"),
            target,
        );
        assert!(
            credentials.contains("check the user and password"),
            "{credentials}"
        );
    }
}
