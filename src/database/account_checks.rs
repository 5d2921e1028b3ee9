//! The start-up checks of the gateway's database accounts: what they may
//! do, and whether the server has room for the prepared statements the
//! pool keeps.
//!
//! A client can only do through the gateway what its database account
//! allows, whatever the SQL guard misses. An account with global
//! administrative privileges (root, typically) lets a clever statement shut
//! the server down, read its files or grant itself more: the gateway refuses
//! to start on one unless --allow-admin-account — whichever account it is:
//! the main or the read-only one, a principal's own, on the primary or a
//! replica — and to reload an accounts file onto one; and a pool whose account
//! could not be checked at start-up (the database was unreachable) checks it
//! before it hands out its first connection ([`PrivilegeGate`]).
//!
//! Every pooled connection keeps up to `--statement-cache-size` statements
//! prepared on the server, which counts them against its global
//! `max_prepared_stmt_count` (shared with every other client and gateway):
//! past it, PREPARE fails (error 1461) for everyone.
use std::time::Duration;

use mysql_async::{Pool, prelude::Queryable};

use crate::errors::GatewayError;

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

/// What stands for access to the `mysql` schema (the server's accounts and
/// grants) among the privileges found.
const MYSQL_SCHEMA: &str = "access to the mysql schema";

/// Refuses connections of an account with global administrative privileges
/// unless they are allowed: the verdict is reached once, on the first
/// connection asked for once the database answers.
pub(crate) struct PrivilegeGate {
    allowed: bool,
    verdict: tokio::sync::OnceCell<Option<String>>,
}

impl PrivilegeGate {
    /// A gate; `allowed` is --allow-admin-account.
    pub(crate) fn new(allowed: bool) -> PrivilegeGate {
        PrivilegeGate {
            allowed,
            verdict: tokio::sync::OnceCell::new(),
        }
    }

    /// True when --allow-admin-account allows any account.
    pub(crate) fn allowed(&self) -> bool {
        self.allowed
    }

    /// Ok when the account may serve clients; the refusal otherwise. An
    /// error reaching the database leaves the verdict open.
    pub(crate) async fn check(&self, control: &Pool) -> Result<(), GatewayError> {
        if self.allowed {
            return Ok(());
        }
        let verdict = self
            .verdict
            .get_or_try_init(|| async {
                let mut conn = control.get_conn().await?;
                let grants: Vec<String> = conn.query("SHOW GRANTS").await?;
                Ok::<_, mysql_async::Error>(refusal(&administrative_privileges(&grants)))
            })
            .await?;
        match verdict {
            None => Ok(()),
            Some(message) => Err(GatewayError::AdminAccount(message.clone())),
        }
    }
}

/// The refusal's message for an account holding `held`, if any.
fn refusal(held: &[&str]) -> Option<String> {
    (!held.is_empty()).then(|| {
        format!(
            "the gateway's database account holds global administrative privileges ({}): a client that gets a statement past the gateway's guard could use them; connect as an account limited to its own database, or start the gateway with --allow-admin-account",
            held.join(", ")
        )
    })
}

/// Longest wait between two attempts to reach the database.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Waits until the database answers, then says if `account` holds global
/// administrative privileges (a warning when they are `allowed`, an error
/// otherwise: its pool refuses to serve, see [`PrivilegeGate`]), or if
/// `cached_statements` (what this pool may keep prepared at most) exceed
/// the server's `max_prepared_stmt_count`.
async fn check_account(
    account: &'static str,
    control: Pool,
    cached_statements: usize,
    allowed: bool,
) {
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
    } else if allowed {
        tracing::warn!(
            account,
            privileges = held.join(", "),
            "the gateway's database account holds global administrative privileges (allowed by --allow-admin-account): a client that gets a statement past the gateway's guard could use them; connect as an account limited to its own database"
        );
    } else {
        tracing::error!(
            account,
            "{}; no client call is served on it",
            refusal(&held).unwrap_or_default()
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

/// What a login is, for the refusal's message.
type Named = (String, super::Backend);

impl super::Database {
    /// Warns, once the database answers, when an account holds global
    /// administrative privileges that clients could abuse through it.
    pub fn warn_about_privileges(&self) {
        let reader = self
            .reader
            .as_ref()
            .and_then(|r| self.primary.logins().backend(r).ok());
        let accounts = std::iter::once(("read-write", self.main_backend()))
            .chain(reader.map(|b| ("read-only", b)));
        for (name, backend) in accounts {
            self.tasks.spawn_loop(check_account(
                name,
                backend.control.clone(),
                backend.cached_statements,
                backend.privileges.allowed(),
            ));
        }
    }

    /// Refuses an account with global administrative privileges unless
    /// --allow-admin-account: the start-up check of every account the
    /// gateway logs in with — the main and the read-only accounts, the
    /// accounts of principals mapped to their own (--database-accounts-file),
    /// on the primary and on every replica. An account that cannot be asked
    /// yet (its server is unreachable) is checked before it serves anything
    /// (see [`PrivilegeGate`]).
    pub async fn refuse_admin_accounts(&self) -> Result<(), String> {
        let mut logins = vec![("the main account".to_string(), super::Login::MAIN)];
        if let Some(reader) = &self.reader {
            logins.push(("the read-only account".to_string(), reader.clone()));
        }
        let mapped = self
            .accounts
            .as_ref()
            .filter(|accounts| accounts.is_file())
            .map(|accounts| accounts.entries())
            .unwrap_or_default();
        logins.extend(mapped_logins(&mapped));
        refuse_any(self.backends_of(&logins)).await
    }

    /// Refuses a mapping of principals to accounts (a reloaded
    /// --database-accounts-file) when one of its accounts holds global
    /// administrative privileges on the primary or a replica, unless
    /// --allow-admin-account.
    pub async fn refuse_admin_mapping(
        &self,
        mapped: &[(String, super::Credentials)],
    ) -> Result<(), String> {
        refuse_any(self.backends_of(&mapped_logins(mapped))).await
    }

    /// The backends of `logins` on the primary and on every replica.
    fn backends_of(&self, logins: &[(String, super::Login)]) -> Vec<Named> {
        let mut backends = Vec::new();
        for (what, login) in logins {
            match self.primary.logins().backend(login) {
                Ok(backend) => backends.push((what.clone(), backend)),
                Err(e) => tracing::warn!(error = %e, "{what}: no pool for it"),
            }
            for (replica, backend) in self.replicas.backends_of(login) {
                backends.push((format!("{what} on replica {replica}"), backend));
            }
        }
        backends
    }
}

/// The logins of principals mapped to accounts, named for messages.
fn mapped_logins(mapped: &[(String, super::Credentials)]) -> Vec<(String, super::Login)> {
    mapped
        .iter()
        .map(|(principal, credentials)| {
            let what = format!(
                "the account `{}` of principal {principal:?} (--database-accounts-file)",
                credentials.user
            );
            let login = super::Login {
                credentials: Some(credentials.clone()),
                read_only: false,
            };
            (what, login)
        })
        .collect()
}

/// Asks every backend at once; the first refusal (in `backends`' order),
/// naming its login.
async fn refuse_any(backends: Vec<Named>) -> Result<(), String> {
    let mut checks = tokio::task::JoinSet::new();
    for (index, (what, backend)) in backends.into_iter().enumerate() {
        checks.spawn(async move { (index, what, backend.refuse_if_admin().await) });
    }
    let mut refusals = Vec::new();
    while let Some(done) = checks.join_next().await {
        if let Ok((index, what, Err(message))) = done {
            refusals.push((index, format!("{what}: {message}")));
        }
    }
    refusals.sort();
    match refusals.into_iter().next() {
        Some((_, message)) => Err(message),
        None => Ok(()),
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
        let target = target.trim_start();
        let on_mysql = target.starts_with("`MYSQL`.") || target.starts_with("MYSQL.");
        let usage_only = privileges.trim() == "USAGE";
        if on_mysql && !usage_only && !held.contains(&MYSQL_SCHEMA) {
            held.push(MYSQL_SCHEMA);
        }
        if !target.starts_with("*.*") {
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
    fn the_mysql_schema_is_administration() {
        assert_eq!(
            held(&["GRANT SELECT ON `mysql`.* TO `app`@`%`"]),
            vec!["access to the mysql schema"]
        );
        assert_eq!(
            held(&["GRANT SELECT ON `mysql`.`user` TO `app`@`%`"]),
            vec!["access to the mysql schema"]
        );
        assert!(
            super::refusal(&held(&[
                "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost`"
            ]))
            .unwrap()
            .contains("--allow-admin-account")
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
