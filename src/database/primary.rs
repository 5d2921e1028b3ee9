//! Following the primary: `--database-url` naming several servers
//! (`mysql://u:p@host1:3306,host2:3307/db`), of which the gateway writes
//! only to the writable one.
//!
//! A server is the primary when `@@global.read_only = 0` and it does not
//! replicate (no row of `SHOW ALL SLAVES STATUS` has a replication thread
//! running). Every `--primary-check-interval` a task checks the current
//! primary; when it is unreachable, read-only or replicating, it checks the
//! others in order and the first writable one becomes the primary. Calls
//! from then on get backends (pools per login) of the new primary, made
//! afresh; the old server's backends are retired: a transaction open on
//! one ends ABORTED at its next call (see `transactions`), and the server
//! gets no new work from this gateway unless a later check finds it the
//! writable one again. While no server is writable, calls that need the
//! primary fail with UNAVAILABLE (`NO_WRITABLE_PRIMARY`).
//!
//! With one server (the usual URL) nothing is checked: no task, no query.
use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use mysql_async::{Row, prelude::Queryable};

use super::{Backend, ConnectOptions, Login, login::Logins};
use crate::{config::PoolConfig, errors::GatewayError, tasks::Tasks};

/// One server of the list.
struct Server {
    /// Its URL without the password, for logs and errors.
    name: String,
    connect: ConnectOptions,
    /// A connection to ask it what it is (the main account, never used by
    /// calls).
    probe: Backend,
    /// Warned already that its replication status cannot be read.
    warned: std::sync::atomic::AtomicBool,
}

/// What a check found a server to be.
#[derive(Debug, Clone, PartialEq)]
enum Role {
    /// `@@read_only = 0` and not replicating.
    Writable,
    /// Reachable, but read-only or replicating.
    NotWritable(&'static str),
    /// Not reachable, or the check failed or timed out.
    Unreachable(String),
}

/// The server written to, and its backends.
struct Current {
    /// Its index in `servers`; `None` while no server is known writable.
    index: Option<usize>,
    logins: Logins,
}

/// The primary's backends; cheap to clone.
#[derive(Clone)]
pub(super) struct Primary {
    servers: Arc<Vec<Server>>,
    current: Arc<RwLock<Current>>,
    settings: PoolConfig,
    tasks: Tasks,
    commit_tokens: bool,
}

impl Primary {
    /// The primary among `servers` (the first is assumed until checked;
    /// with several, a task of `tasks` checks them every `interval`).
    pub(super) fn new(
        servers: Vec<ConnectOptions>,
        settings: PoolConfig,
        tasks: Tasks,
        commit_tokens: bool,
        interval: Duration,
    ) -> Result<Primary, mysql_async::Error> {
        let several = servers.len() > 1;
        // One connection kept open per server for the checks.
        let probe_settings = PoolConfig {
            min: 1,
            max: 1,
            ..settings
        };
        let servers = servers
            .into_iter()
            .map(|connect| {
                Ok(Server {
                    name: crate::config::redact_url(&connect.url),
                    probe: Backend::new(&connect, probe_settings, tasks.clone(), false)?,
                    connect,
                    warned: Default::default(),
                })
            })
            .collect::<Result<Vec<_>, mysql_async::Error>>()?;
        let logins = Logins::new(
            servers[0].connect.clone(),
            settings,
            tasks.clone(),
            false,
            commit_tokens,
        );
        let primary = Primary {
            servers: Arc::new(servers),
            current: Arc::new(RwLock::new(Current {
                // With one server, it is the primary: nothing to check.
                index: (!several).then_some(0),
                logins,
            })),
            settings,
            tasks,
            commit_tokens,
        };
        if several {
            let watcher = primary.clone();
            primary.tasks.spawn_loop(async move {
                loop {
                    watcher.check().await;
                    tokio::time::sleep(interval).await;
                }
            });
        }
        Ok(primary)
    }

    /// The current primary's backend of `login`.
    pub(super) fn backend(&self, login: &Login) -> Result<Backend, GatewayError> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        if current.index.is_none() {
            return Err(GatewayError::NoWritablePrimary(self.describe()));
        }
        Ok(current.logins.backend(login)?)
    }

    /// The logins of the current primary (of the first server while none is
    /// known writable): for start-up checks and health.
    pub(super) fn logins(&self) -> Logins {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.logins.clone()
    }

    /// Every backend of the current primary, for closing.
    pub(super) fn all(&self) -> Vec<Backend> {
        let mut all = self.logins().all();
        all.extend(self.servers.iter().map(|server| server.probe.clone()));
        all
    }

    /// The servers, for an error saying none is writable.
    fn describe(&self) -> String {
        let names: Vec<&str> = self.servers.iter().map(|s| s.name.as_str()).collect();
        format!(
            "none of the database servers ({}) is a writable primary (@@read_only = 0, not replicating) at the moment; the gateway checks again every --primary-check-interval",
            names.join(", ")
        )
    }

    /// Finds the primary now, once, when several servers are named (at
    /// start, so that the first calls need not wait for the task).
    pub(super) async fn find_now(&self) {
        if self.servers.len() > 1 {
            self.check().await;
        }
    }

    /// Checks the current primary and, when it is not writable, looks for
    /// the one that is.
    async fn check(&self) {
        let index = self.current.read().unwrap_or_else(|e| e.into_inner()).index;
        if let Some(index) = index {
            match self.servers[index]
                .role(self.settings.acquire_timeout)
                .await
            {
                Role::Writable => return,
                other => {
                    tracing::warn!(server = %self.servers[index].name, role = ?other, "the primary is no longer writable")
                }
            }
        }
        let mut found = None;
        for (i, server) in self.servers.iter().enumerate() {
            if Some(i) == index {
                continue;
            }
            match server.role(self.settings.acquire_timeout).await {
                Role::Writable => {
                    found = Some(i);
                    break;
                }
                other => tracing::debug!(server = %server.name, role = ?other, "not the primary"),
            }
        }
        self.switch(index, found);
    }

    /// Makes server `to` the primary (`None`: none is), unless it already is.
    fn switch(&self, from: Option<usize>, to: Option<usize>) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.index != from || from == to {
            return;
        }
        let connect = match to {
            Some(i) => self.servers[i].connect.clone(),
            None => self.servers[from.unwrap_or(0)].connect.clone(),
        };
        let fresh = Logins::new(
            connect,
            self.settings,
            self.tasks.clone(),
            false,
            self.commit_tokens,
        );
        let old = std::mem::replace(
            &mut *current,
            Current {
                index: to,
                logins: fresh,
            },
        );
        drop(current);
        // Its transactions end at their next call; its pools close once
        // their connections are dropped.
        old.logins.retire();
        crate::stats::record_primary_switch();
        match to {
            Some(i) => {
                tracing::warn!(primary = %self.servers[i].name, "writing to a new primary")
            }
            None => tracing::error!("no writable primary: calls that need it fail until one is"),
        }
    }
}

impl Server {
    /// Asks the server what it is, within `timeout`.
    async fn role(&self, timeout: Duration) -> Role {
        let asked = async {
            let mut conn = self.probe.pool.get_conn().await?;
            let read_only: Option<i64> = conn.query_first("SELECT @@global.read_only").await?;
            if read_only != Some(0) {
                return Ok(Role::NotWritable("read_only"));
            }
            Ok::<_, mysql_async::Error>(match replicating(&mut conn).await {
                Ok(true) => Role::NotWritable("replicating"),
                Ok(false) => Role::Writable,
                Err(mysql_async::Error::Server(e)) if e.code == 1227 => {
                    // Without SLAVE MONITOR (or SUPER; MySQL: REPLICATION
                    // CLIENT) the replication status cannot be read (1227):
                    // read_only alone decides.
                    if !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!(server = %self.name, error = %e, "cannot read the replication status (grant the account SLAVE MONITOR); judging by @@read_only alone");
                    }
                    Role::Writable
                }
                Err(e) => return Err(e),
            })
        };
        match tokio::time::timeout(timeout, asked).await {
            Ok(Ok(role)) => role,
            Ok(Err(e)) => Role::Unreachable(e.to_string()),
            Err(_) => Role::Unreachable(format!("no answer within {timeout:?}")),
        }
    }
}

/// True when a replication thread runs on the server (MariaDB's `SHOW ALL
/// SLAVES STATUS`, every connection; MySQL's `SHOW SLAVE STATUS`).
async fn replicating(conn: &mut mysql_async::Conn) -> Result<bool, mysql_async::Error> {
    let rows: Vec<Row> = match conn.query("SHOW ALL SLAVES STATUS").await {
        Ok(rows) => rows,
        // 1064: MySQL has no SHOW ALL SLAVES.
        Err(mysql_async::Error::Server(e)) if e.code == 1064 => {
            conn.query("SHOW SLAVE STATUS").await?
        }
        Err(e) => return Err(e),
    };
    let running = |row: &Row, column: &str| {
        row.get_opt::<String, _>(column)
            .and_then(Result::ok)
            .is_some_and(|value| value == "Yes")
    };
    Ok(rows
        .iter()
        .any(|row| running(row, "Slave_IO_Running") || running(row, "Slave_SQL_Running")))
}
