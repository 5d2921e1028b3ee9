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
//! A call that finds the primary gone does not wait for the next interval:
//! a connection error on the primary's connection, error 1290 (the server
//! runs read-only: it was demoted), or no writable primary known, asks the
//! task for a check now ([`Recheck`]). Such re-checks are coalesced (one
//! runs at a time, and requests made while one runs lead to one more) and
//! rate-limited (at most one per [`RECHECK_GAP`], or per interval when that
//! is shorter), so that an error storm does not hammer the servers.
//!
//! With one server (the usual URL) nothing is checked: no task, no query.
use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::{Notify, watch};

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

/// The shortest time between two checks that calls asked for.
pub const RECHECK_GAP: Duration = Duration::from_millis(100);

/// Asks the checking task for a check now, and waits for one; cheap to
/// clone. The backends of the primary hold one (see `Backend::note_failure`).
#[derive(Clone)]
pub struct Recheck {
    inner: Arc<RecheckInner>,
}

struct RecheckInner {
    /// Wakes the checking task; a request made while a check runs is kept
    /// (one permit), so that requests coalesce into one more check.
    wake: Notify,
    /// How many checks have started.
    started: AtomicU64,
    /// How many checks have finished.
    finished: watch::Sender<u64>,
}

impl Recheck {
    fn new() -> Recheck {
        Recheck {
            inner: Arc::new(RecheckInner {
                wake: Notify::new(),
                started: AtomicU64::new(0),
                finished: watch::Sender::new(0),
            }),
        }
    }

    /// Asks for a check soon; never waits.
    pub fn request(&self) {
        self.inner.wake.notify_one();
    }

    /// Asks for a check and waits, at most `patience`, until one that
    /// started after this call has finished. False when none finished in
    /// time.
    pub async fn after_now(&self, patience: Duration) -> bool {
        let wanted = self.inner.started.load(Ordering::SeqCst) + 1;
        let mut finished = self.inner.finished.subscribe();
        self.request();
        tokio::time::timeout(patience, finished.wait_for(|done| *done >= wanted))
            .await
            .is_ok_and(|done| done.is_ok())
    }

    /// Runs `check` as one counted check.
    async fn run(&self, check: impl Future<Output = ()>) {
        self.inner.started.fetch_add(1, Ordering::SeqCst);
        crate::stats::record_primary_check();
        check.await;
        self.inner.finished.send_modify(|done| *done += 1);
    }

    /// Waits for the next check's time: `interval`, or sooner when a call
    /// asks (but not before `gap` since the last check ended).
    async fn next(&self, interval: Duration, gap: Duration) {
        let last = tokio::time::Instant::now();
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = self.inner.wake.notified() => tokio::time::sleep_until(last + gap).await,
        }
    }
}

/// The primary's backends; cheap to clone.
#[derive(Clone)]
pub(super) struct Primary {
    servers: Arc<Vec<Server>>,
    current: Arc<RwLock<Current>>,
    settings: PoolConfig,
    tasks: Tasks,
    commit_tokens: bool,
    /// With several servers: asks the checking task for a check now.
    recheck: Option<Recheck>,
    /// Told when the primary changes (a promoted replica leaves rotation).
    replicas: super::replicas::Replicas,
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
        replicas: super::replicas::Replicas,
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
        let recheck = several.then(Recheck::new);
        let logins = Logins::new(
            servers[0].connect.clone(),
            settings,
            tasks.clone(),
            false,
            commit_tokens,
        )
        .watched_by(recheck.clone());
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
            recheck,
            replicas,
        };
        if let Some(recheck) = primary.recheck.clone() {
            let watcher = primary.clone();
            let gap = RECHECK_GAP.min(interval);
            primary.tasks.spawn_loop(async move {
                loop {
                    recheck.run(watcher.check()).await;
                    recheck.next(interval, gap).await;
                }
            });
        }
        Ok(primary)
    }

    /// The current primary's backend of `login`.
    pub(super) fn backend(&self, login: &Login) -> Result<Backend, GatewayError> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        if current.index.is_none() {
            // Perhaps one was promoted since the last check.
            if let Some(recheck) = &self.recheck {
                recheck.request();
            }
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
        if let Some(recheck) = &self.recheck {
            recheck.run(self.check()).await;
        }
    }

    /// After the primary's backend `backend` refused a write because its
    /// server is read-only: waits for a check that started after the
    /// refusal, and says whether it found another server writable, whose
    /// backends calls get now (the refused call may run there).
    pub(super) async fn moved_after_refusal(&self, backend: &super::Backend) -> bool {
        let Some(recheck) = &self.recheck else {
            return false;
        };
        // A check asks each server, each within the acquire timeout.
        let patience = self.settings.acquire_timeout * (self.servers.len() as u32 + 1);
        recheck.after_now(patience).await
            && backend.retired()
            && self
                .current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .index
                .is_some()
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
        )
        .watched_by(self.recheck.clone());
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
        if from.is_some() {
            self.replicas.primary_changed();
        }
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
