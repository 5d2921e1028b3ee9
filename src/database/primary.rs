//! Following the primary: `--database-url` naming several servers
//! (`mysql://u:p@host1:3306,host2:3307/db`), of which the gateway writes
//! only to the writable one. A server named by a DNS name stands for every
//! address the name resolves to, resolved again at every check (see
//! `config::resolvable_host`): each address is a server of its own.
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
    /// The server; `None` while no server is known writable.
    server: Option<Arc<Server>>,
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
    /// The servers as --database-url names them (names not resolved).
    entries: Arc<Vec<ConnectOptions>>,
    /// The servers found at the last check: each address of a name that
    /// resolves to several counts as a server.
    servers: Arc<RwLock<Vec<Arc<Server>>>>,
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
        // Several servers named, or one name with several addresses.
        let several = servers.len() > 1 || servers.first().is_some_and(has_several_addresses);
        let first = Arc::new(Server::new(servers[0].clone(), settings, &tasks)?);
        let recheck = several.then(Recheck::new);
        let logins = Logins::new(
            first.connect.clone(),
            settings,
            tasks.clone(),
            false,
            commit_tokens,
        )
        .watched_by(recheck.clone());
        let primary = Primary {
            entries: Arc::new(servers),
            current: Arc::new(RwLock::new(Current {
                // With one server, it is the primary: nothing to check.
                server: (!several).then(|| first.clone()),
                logins,
            })),
            servers: Arc::new(RwLock::new(vec![first])),
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
        if current.server.is_none() {
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
        all.extend(self.servers().iter().map(|server| server.probe.clone()));
        all
    }

    /// The servers, for an error saying none is writable.
    fn describe(&self) -> String {
        let servers = self.servers();
        let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
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
        let patience = self.settings.acquire_timeout * (self.servers().len() as u32 + 1);
        recheck.after_now(patience).await
            && backend.retired()
            && self
                .current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .server
                .is_some()
    }

    /// The servers found at the last check.
    fn servers(&self) -> Vec<Arc<Server>> {
        self.servers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves the names of --database-url again: every address is a
    /// server (one already known keeps its probe connection).
    async fn resolve(&self) -> Vec<Arc<Server>> {
        let mut connects = Vec::new();
        for entry in self.entries.iter() {
            connects.extend(addresses_of(entry, self.settings.acquire_timeout).await);
        }
        let known = self.servers();
        let servers: Vec<Arc<Server>> = connects
            .into_iter()
            .filter_map(|connect| {
                if let Some(server) = known.iter().find(|s| s.connect.url == connect.url) {
                    return Some(server.clone());
                }
                match Server::new(connect, self.settings, &self.tasks) {
                    Ok(server) => Some(Arc::new(server)),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot use a resolved address of a database server");
                        None
                    }
                }
            })
            .collect();
        if servers.is_empty() {
            return known;
        }
        *self.servers.write().unwrap_or_else(|e| e.into_inner()) = servers.clone();
        servers
    }

    /// Checks the current primary and, when it is not writable, looks for
    /// the one that is, among the addresses the names resolve to now.
    async fn check(&self) {
        let servers = self.resolve().await;
        let current = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .server
            .clone();
        if let Some(server) = &current {
            match server.role(self.settings.acquire_timeout).await {
                Role::Writable => return,
                other => {
                    tracing::warn!(server = %server.name, role = ?other, "the primary is no longer writable")
                }
            }
        }
        let mut found = None;
        for server in &servers {
            if current
                .as_ref()
                .is_some_and(|c| c.connect.url == server.connect.url)
            {
                continue;
            }
            match server.role(self.settings.acquire_timeout).await {
                Role::Writable => {
                    found = Some(server.clone());
                    break;
                }
                other => tracing::debug!(server = %server.name, role = ?other, "not the primary"),
            }
        }
        self.switch(current, found);
    }

    /// Makes server `to` the primary (`None`: none is), unless it already is.
    fn switch(&self, from: Option<Arc<Server>>, to: Option<Arc<Server>>) {
        let url = |server: &Option<Arc<Server>>| server.as_ref().map(|s| s.connect.url.clone());
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if url(&current.server) != url(&from) || url(&from) == url(&to) {
            return;
        }
        let connect = match (&to, &from) {
            (Some(server), _) | (None, Some(server)) => server.connect.clone(),
            (None, None) => current.logins.server().clone(),
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
                server: to.clone(),
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
            Some(server) => {
                tracing::warn!(primary = %server.name, "writing to a new primary")
            }
            None => tracing::error!("no writable primary: calls that need it fail until one is"),
        }
    }
}

impl Server {
    /// `connect`'s server, with its probe connection (made lazily).
    fn new(
        connect: ConnectOptions,
        settings: PoolConfig,
        tasks: &Tasks,
    ) -> Result<Server, mysql_async::Error> {
        // One connection kept open per server for the checks.
        let probe_settings = PoolConfig {
            min: 1,
            max: 1,
            ..settings
        };
        Ok(Server {
            name: crate::config::redact_url(&connect.url),
            probe: Backend::new(&connect, probe_settings, tasks.clone(), false)?,
            connect,
            warned: Default::default(),
        })
    }

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

/// True when `entry` names its server by a DNS name that resolves to
/// several addresses now (asked once, at start: a single server otherwise
/// costs no check).
fn has_several_addresses(entry: &ConnectOptions) -> bool {
    use std::net::ToSocketAddrs;
    let Some((host, port)) = crate::config::resolvable_host(&entry.url, entry.ssl_ca.is_some())
    else {
        return false;
    };
    (host.as_str(), port)
        .to_socket_addrs()
        .is_ok_and(|addresses| distinct_ips(addresses).len() > 1)
}

/// The servers `entry` stands for: one per address its DNS name resolves to
/// now (the URL naming the address), or `entry` itself when it names an
/// address, a socket, uses TLS (whose certificate names the host), or the
/// name cannot be resolved within `timeout` (the driver tries then).
async fn addresses_of(entry: &ConnectOptions, timeout: Duration) -> Vec<ConnectOptions> {
    let Some((host, port)) = crate::config::resolvable_host(&entry.url, entry.ssl_ca.is_some())
    else {
        return vec![entry.clone()];
    };
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port))).await {
        Ok(Ok(addresses)) => {
            let ips = distinct_ips(addresses);
            if ips.is_empty() {
                return vec![entry.clone()];
            }
            ips.into_iter()
                .map(|ip| ConnectOptions {
                    url: crate::config::with_address(&entry.url, ip),
                    ..entry.clone()
                })
                .collect()
        }
        Ok(Err(e)) => {
            tracing::warn!(host, error = %e, "cannot resolve a database server's name");
            vec![entry.clone()]
        }
        Err(_) => {
            tracing::warn!(host, "no answer resolving a database server's name");
            vec![entry.clone()]
        }
    }
}

/// The distinct IP addresses of `addresses`, in their order.
fn distinct_ips(addresses: impl Iterator<Item = std::net::SocketAddr>) -> Vec<std::net::IpAddr> {
    let mut ips = Vec::new();
    for address in addresses {
        if !ips.contains(&address.ip()) {
            ips.push(address.ip());
        }
    }
    ips
}
