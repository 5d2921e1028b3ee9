//! The start-up checks of the gateway's database accounts: what they may
//! do, and whether the server has room for the prepared statements the
//! pool keeps.
//!
//! A client can only do through the gateway what its database account
//! allows, whatever the SQL guard misses. An account with global
//! administrative privileges (root, typically) lets a clever statement shut
//! the server down, read its files or grant itself more: say so loudly.
//!
//! Every pooled connection keeps up to `--statement-cache-size` statements
//! prepared on the server, which counts them against its global
//! `max_prepared_stmt_count` (shared with every other client and gateway):
//! past it, PREPARE fails (error 1461) for everyone.
use std::time::Duration;

use mysql_async::{Pool, prelude::Queryable};

/// Global privileges that let a client administer the server, read or write
/// its files, see or kill other sessions, or hand out privileges.
const ADMINISTRATIVE: &[&str] = &[
    "ALL PRIVILEGES",
    "SUPER",
    "SHUTDOWN",
    "FILE",
    "PROCESS",
    "RELOAD",
    "CREATE USER",
    "GRANT OPTION",
    "CONNECTION ADMIN",
    "BINLOG ADMIN",
    "REPLICATION SLAVE ADMIN",
    "READ_ONLY ADMIN",
    "SET USER",
    "FEDERATED ADMIN",
    "SYSTEM_VARIABLES_ADMIN",
];

/// Longest wait between two attempts to reach the database.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Waits until the database answers, then warns if `account` holds global
/// administrative privileges, or if `cached_statements` (what this pool may
/// keep prepared at most) exceed the server's `max_prepared_stmt_count`.
pub(super) async fn check_account(account: &'static str, control: Pool, cached_statements: usize) {
    let mut retry = Duration::from_millis(200);
    let grants: Vec<String> = loop {
        let attempt = async {
            let mut conn = control.get_conn().await?;
            conn.query("SHOW GRANTS").await
        };
        match attempt.await {
            Ok(grants) => break grants,
            Err(e) => {
                tracing::debug!(account, error = %e, "cannot read the account's grants yet");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    };
    let held = administrative_privileges(&grants);
    if held.is_empty() {
        tracing::info!(
            account,
            "the database account holds no global administrative privilege"
        );
    } else {
        tracing::warn!(
            account,
            privileges = held.join(", "),
            "the gateway's database account holds global administrative privileges: a client that gets a statement past the gateway's guard could use them; connect as an account limited to its own database"
        );
    }
    check_statement_budget(account, &control, cached_statements).await;
}

/// Warns when the pool may keep more statements prepared than the server
/// allows in all.
async fn check_statement_budget(account: &'static str, control: &Pool, cached_statements: usize) {
    let limit = async {
        let mut conn = control.get_conn().await?;
        conn.query_first::<u64, _>("SELECT @@global.max_prepared_stmt_count")
            .await
    };
    match limit.await {
        Ok(Some(limit)) if cached_statements as u64 > limit => tracing::warn!(
            account,
            cached_statements,
            max_prepared_stmt_count = limit,
            "--pool-max × --statement-cache-size exceeds the server's max_prepared_stmt_count: once it is reached, statements fail to prepare (error 1461) for every client; lower --statement-cache-size or raise the server's limit"
        ),
        Ok(limit) => tracing::info!(
            account,
            cached_statements,
            max_prepared_stmt_count = limit,
            "the server has room for the statements the pool keeps prepared"
        ),
        Err(e) => {
            tracing::warn!(account, error = %e, "cannot read the server's max_prepared_stmt_count")
        }
    }
}

/// The administrative privileges among `SHOW GRANTS` lines that apply to
/// every database (`ON *.*`).
fn administrative_privileges(grants: &[String]) -> Vec<&'static str> {
    let mut held = Vec::new();
    for grant in grants {
        let upper = grant.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix("GRANT ") else {
            continue;
        };
        let Some((privileges, target)) = rest.split_once(" ON ") else {
            continue;
        };
        if !target.trim_start().starts_with("*.*") {
            continue;
        }
        for &privilege in ADMINISTRATIVE {
            let named = privileges.split(',').any(|p| p.trim() == privilege);
            let granting = privilege == "GRANT OPTION" && target.contains("WITH GRANT OPTION");
            if (named || granting) && !held.contains(&privilege) {
                held.push(privilege);
            }
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use super::administrative_privileges;

    fn held(lines: &[&str]) -> Vec<&'static str> {
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        administrative_privileges(&lines)
    }

    #[test]
    fn global_administration_is_found() {
        assert_eq!(
            held(&["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"]),
            vec!["ALL PRIVILEGES", "GRANT OPTION"]
        );
        assert_eq!(
            held(&["GRANT SELECT, FILE, SHUTDOWN ON *.* TO `app`@`%`"]),
            vec!["SHUTDOWN", "FILE"]
        );
    }

    #[test]
    fn database_level_grants_are_fine() {
        assert!(
            held(&[
                "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*ABC'",
                "GRANT ALL PRIVILEGES ON `shop`.* TO `app`@`%`",
                "GRANT SELECT ON `shop`.* TO `reader`@`%`",
            ])
            .is_empty()
        );
    }
}
