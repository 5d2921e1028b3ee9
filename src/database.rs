//! The connection pools, and the side connections that control them: killing
//! a running statement and checking that the database answers.
//!
//! The gateway talks to the database as several accounts, each a [`Login`]:
//! the main (read-write) account, the read-only principals' account (when
//! configured), and the accounts of principals mapped to their own
//! (`--database-accounts-file`, see `crate::accounts`), so that the database
//! itself refuses what a principal may not do and keeps principals apart.
//! Each login is a [`Backend`]: its own pool and its own control connections
//! (a KILL QUERY must come from an account allowed to kill that connection).
//! Read-only principals' sessions are READ ONLY on their own accounts too.
//!
//! Every connection leaves a call or a transaction through [`Backend::give_back`]:
//! the one place that decides whether it is reused, restored, killed first or
//! closed.
use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use mysql_async::{
    ChangeUserOpts, Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, SslOpts,
    prelude::Queryable,
};

use crate::{
    auth::{Principal, Role},
    config::{PoolConfig, ReplicaConfig, SessionReuse},
    errors::GatewayError,
    tasks::Tasks,
};

mod account_checks;
mod login;
mod pooled;
mod primary;
pub mod replicas;

pub use login::{Credentials, Login};
pub use pooled::{GiveBack, PooledConn, stronger};

/// How to connect: the URL, an optional user and password that override the
/// URL's, and TLS.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// A mysql_async URL.
    pub url: String,
    /// A user that replaces the URL's, with `password` (another account).
    pub user: Option<String>,
    /// A password that replaces the URL's (from a password file).
    pub password: Option<String>,
    /// Verify the server's TLS certificate against this CA (PEM); TLS when set.
    pub ssl_ca: Option<std::path::PathBuf>,
}

/// The setup commands of every pooled connection: they turn on the server's
/// session state tracking, so that a reply's OK packets carry
/// `SERVER_SESSION_STATE_CHANGED` when a statement changed the session, which
/// the patched driver keeps as `Conn::session_state_changed` (see
/// vendor/README.md). The gateway runs it on a connection about to serve a
/// read that may be reused, when nothing has since the connection was opened
/// or reset (COM_RESET_CONNECTION turns tracking off again), then clears the
/// bit; connections that serve transactions and writes never need it.
///
/// One statement, one round trip. All three variables exist in MariaDB
/// ≥ 10.3.1 and MySQL ≥ 5.7.6 (both accept `'*'` and `CHARACTERISTICS`);
/// on an older server the statement fails and no connection can be opened.
/// - `session_track_state_change`: any change of session state (user
///   variables, temporary tables, prepared statements, …);
/// - `session_track_system_variables = '*'`: any session variable, including
///   those a procedure sets;
/// - `session_track_transaction_info = 'CHARACTERISTICS'`: `START
///   TRANSACTION`, `SET TRANSACTION` and table locks.
pub fn session_tracking_setup() -> Vec<String> {
    vec![
        "SET SESSION session_track_state_change = ON, \
         session_track_system_variables = '*', \
         session_track_transaction_info = 'CHARACTERISTICS'"
            .to_string(),
    ]
}

/// The server's refusal of a statement that writes while it runs read-only
/// (`ER_OPTION_PREVENTS_STATEMENT`, "running with the --read-only option").
const READ_ONLY_REFUSAL: u16 = 1290;

/// One database account: its pool and its control connections. Cloned
/// per call: one shared allocation, so a clone is one reference count.
#[derive(Clone)]
pub struct Backend(Arc<BackendParts>);

impl std::ops::Deref for Backend {
    type Target = BackendParts;

    fn deref(&self) -> &BackendParts {
        &self.0
    }
}

impl std::ops::DerefMut for Backend {
    /// While it is being set up (see `login`); a backend in use is shared.
    fn deref_mut(&mut self) -> &mut BackendParts {
        Arc::make_mut(&mut self.0)
    }
}

/// What a [`Backend`] is made of.
#[derive(Clone)]
pub struct BackendParts {
    pool: Pool,
    /// Separate connections for KILL QUERY and health pings, so that they work
    /// even when every pooled connection is busy.
    control: Pool,
    acquire_timeout: Duration,
    /// Plain reads may give their connection back without a reset.
    session_reuse: bool,
    /// Autocommit reads after a reset may go as text (--text-protocol).
    text_protocol: bool,
    /// Its sessions are READ ONLY from the start (setup commands).
    read_only_sessions: bool,
    /// Most statements the pool keeps prepared on the server
    /// (--pool-max × --statement-cache-size).
    cached_statements: usize,
    /// The account's default role, once known (see `default_role`).
    default_role: Arc<OnceLock<Option<String>>>,
    /// Where connections are given back in the background.
    tasks: Tasks,
    /// Writes report the replication position that contains them (the
    /// database has replicas the gateway reads from).
    commit_tokens: bool,
    /// Refuses to hand out connections of an administrative account
    /// (unless --allow-admin-account).
    privileges: Arc<account_checks::PrivilegeGate>,
    /// Set when its server stopped being the primary (see [`primary`]).
    retired: Arc<std::sync::atomic::AtomicBool>,
    /// With several servers, a primary's backend asks for a check of the
    /// primary when a call on it fails as if the server went away.
    recheck: Option<primary::Recheck>,
}

impl Backend {
    /// Creates the pools. Connections are opened lazily, so this succeeds
    /// even while the database is unreachable.
    ///
    /// With `read_only`, sessions are READ ONLY and have session tracking on
    /// from the start (setup commands, run again after every reset), so that
    /// nothing a read does can write, even through a definer's view or
    /// function, and reads can still be reused: replicas, and the accounts
    /// of read-only principals.
    fn new(
        connect: &ConnectOptions,
        settings: PoolConfig,
        tasks: Tasks,
        read_only: bool,
    ) -> Result<Backend, mysql_async::Error> {
        // --found-rows: rows matched for UPDATE (CLIENT_FOUND_ROWS).
        // --database-tcp-keepalive: on every TCP connection these options
        // open (pool, control, probes, replicas), so that a partitioned
        // server cannot hold a read for ever (driver patch 7).
        let mut opts: Opts = OptsBuilder::from_opts(Opts::from_url(&connect.url)?)
            .client_found_rows(settings.found_rows)
            .tcp_keepalive(Some(settings.tcp_keepalive).filter(|d| !d.is_zero()))
            .into();
        if let Some(user) = &connect.user {
            opts = OptsBuilder::from_opts(opts)
                .user(Some(user.clone()))
                .pass(connect.password.clone())
                .into();
        } else if connect.password.is_some() {
            opts = OptsBuilder::from_opts(opts)
                .pass(connect.password.clone())
                .into();
        }
        if let Some(ca) = &connect.ssl_ca {
            // Verify the server against this CA only; and stay on TCP (by
            // default the driver may switch to a local unix socket, without TLS).
            let ssl = SslOpts::default()
                .with_root_certs(vec![ca.clone().into()])
                .with_disable_built_in_roots(true);
            opts = OptsBuilder::from_opts(opts)
                .ssl_opts(ssl)
                .prefer_socket(false)
                .into();
        }
        let constraints = PoolConstraints::new(settings.min, settings.max)
            .expect("validated in config: pool_min <= pool_max");
        let pool_opts = PoolOpts::default()
            .with_constraints(constraints)
            // Keep idle connections above the minimum for a while instead of
            // closing them as they return, which churns connections in bursts.
            .with_inactive_connection_ttl(Duration::from_secs(60))
            // Reset every connection before another client gets it: nothing a
            // client sets (variables, temporary tables) leaks to the next one.
            .with_reset_connection(true)
            // Sent with the connection's next command, saving a round trip,
            // or in the background once idle for --reset-delay (driver patch,
            // vendor/README.md). Connections with setup commands (read-only
            // sessions) are reset on return.
            .with_deferred_reset(Some(settings.reset_delay).filter(|d| !d.is_zero()));
        let session_reuse = settings.session_reuse == SessionReuse::Reads;
        // No setup commands on read-write sessions: session tracking is
        // turned on only where a read may be reused (see `Session::open`).
        let setup = if read_only {
            let mut setup = session_tracking_setup();
            setup.push("SET SESSION TRANSACTION READ ONLY".into());
            setup
        } else {
            Vec::new()
        };
        let main = OptsBuilder::from_opts(opts.clone())
            .pool_opts(pool_opts)
            .stmt_cache_size(settings.statement_cache_size)
            .setup(setup);
        // One idle connection is kept once made (the start-up checks make
        // it), a second for a minute (not closed as they come back): a KILL
        // then costs one round trip, not a new login, and its answer
        // reaches a client whose deadline passes (see
        // `CallDeadline::stop_or_learn`).
        let control = OptsBuilder::from_opts(opts).pool_opts(
            PoolOpts::default()
                .with_constraints(PoolConstraints::new(1, 2).expect("1 <= 2"))
                .with_inactive_connection_ttl(Duration::from_secs(60)),
        );
        Ok(Backend(Arc::new(BackendParts {
            pool: Pool::new(main),
            control: Pool::new(control),
            acquire_timeout: settings.acquire_timeout,
            session_reuse,
            text_protocol: settings.text_protocol == crate::config::TextProtocol::Auto,
            read_only_sessions: read_only,
            cached_statements: settings.max.saturating_mul(settings.statement_cache_size),
            default_role: Default::default(),
            tasks,
            commit_tokens: false,
            privileges: Arc::new(account_checks::PrivilegeGate::new(
                settings.allow_admin_account,
            )),
            retired: Default::default(),
            recheck: None,
        })))
    }

    /// Notes the failure of a call on this backend: when it says the server
    /// may be gone or demoted (the connection broke, or error 1290: the
    /// server runs read-only) and this is the primary's backend, the primary
    /// is checked now rather than at the next interval (see [`primary`]).
    pub fn note_failure(&self, error: &GatewayError) {
        if let Some(recheck) = &self.recheck
            && !self.retired()
            && (error.connection_lost() || error.mysql_errno() == Some(READ_ONLY_REFUSAL))
        {
            recheck.request();
        }
    }

    /// True when writes report the replication position that contains them.
    pub fn commit_tokens(&self) -> bool {
        self.commit_tokens
    }

    /// True once its server stopped being the primary the gateway writes to
    /// (a failover, see [`primary`]): a transaction on it must end.
    pub fn retired(&self) -> bool {
        self.retired.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The longest wait for a pooled connection (--acquire-timeout).
    pub fn acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }

    /// True when autocommit reads after a reset may go as text
    /// (--text-protocol auto).
    pub fn text_protocol(&self) -> bool {
        self.text_protocol
    }

    /// True when its sessions are READ ONLY from the start.
    pub fn read_only_sessions(&self) -> bool {
        self.read_only_sessions
    }

    /// The replication position of this session's last write (MariaDB's
    /// `@@last_gtid`), read on `conn` right after it; `None` when it cannot
    /// be read or the server has none (no binary log).
    pub async fn last_write_position(conn: &mut Conn) -> Option<String> {
        match conn.query_first::<String, _>("SELECT @@last_gtid").await {
            Ok(Some(position)) if !position.is_empty() => Some(position),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the replication position of a write");
                None
            }
        }
    }

    /// Takes a connection from the pool for `principal`, waiting at most the
    /// acquire timeout.
    ///
    /// A connection never passes from one principal to another without a
    /// reset, whatever `--session-reuse` says: one given back without a reset
    /// carries the name of the principal that used it (its reuse tag, which
    /// every reset clears), and is reset here (COM_RESET_CONNECTION) when
    /// another principal takes it.
    pub async fn acquire(&self, principal: &str) -> Result<Conn, GatewayError> {
        // A no-op once the account's privileges are known to be fine.
        match tokio::time::timeout(self.acquire_timeout, self.privileges.check(&self.control)).await
        {
            Ok(checked) => checked?,
            Err(_) => return Err(GatewayError::PoolExhausted(self.acquire_timeout)),
        }
        let taken = async {
            let mut conn = self.pool.get_conn().await?;
            if conn
                .reuse_tag()
                .is_some_and(|previous| **previous != *principal)
            {
                conn.reset().await?;
            }
            conn.set_reuse_tag(None);
            Ok::<_, mysql_async::Error>(conn)
        };
        match tokio::time::timeout(self.acquire_timeout, taken).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => {
                let error = GatewayError::from(e);
                self.note_failure(&error);
                Err(error)
            }
            Err(_) => Err(GatewayError::PoolExhausted(self.acquire_timeout)),
        }
    }

    /// Reaches the verdict on the account's privileges within
    /// --acquire-timeout: the refusal when it holds global administrative
    /// privileges (and they are not allowed); Ok when it does not, or when
    /// the database cannot be asked yet (the first connection asks then).
    async fn refuse_if_admin(&self) -> Result<(), String> {
        match tokio::time::timeout(self.acquire_timeout, self.privileges.check(&self.control)).await
        {
            Ok(Err(GatewayError::AdminAccount(message))) => Err(message),
            _ => Ok(()),
        }
    }

    /// Stops the statement running on connection `connection_id`, if any.
    ///
    /// Only call this while that connection cannot go to another user (its
    /// holder has not given it back), so that the kill cannot hit a statement
    /// of the connection's next user.
    pub async fn kill_query(&self, connection_id: u32) {
        let result = async {
            let mut conn = self.control.get_conn().await?;
            conn.query_drop(format!("KILL QUERY {connection_id}")).await
        };
        match tokio::time::timeout(self.acquire_timeout, result).await {
            Ok(Ok(())) => tracing::debug!(connection_id, "killed running statement"),
            // 1094: unknown thread id, the connection is already gone.
            Ok(Err(mysql_async::Error::Server(e))) if e.code == 1094 => {}
            Ok(Err(e)) => tracing::warn!(connection_id, error = %e, "could not kill statement"),
            Err(_) => tracing::warn!(connection_id, "timed out killing statement"),
        }
    }

    /// Lets go of a connection as `how` says. Never blocks: anything that
    /// needs the database runs in a task of its own.
    pub fn give_back(&self, conn: Conn, how: GiveBack) {
        if let GiveBack::Reuse = how {
            // Reuse needs the principal's name: see `give_back_unreset`.
            drop(conn);
            return;
        }
        if how == GiveBack::Clean {
            // The pool resets it in the background.
            drop(conn);
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            // No runtime (process exit): dropping closes or returns it.
            drop(conn);
            return;
        }
        let backend = self.clone();
        self.tasks
            .spawn(async move { backend.give_back_now(conn, how).await });
    }

    /// Gives `conn` back without a reset, tagged with the `principal` that
    /// used it: only that principal gets it again as it is (see `acquire`).
    fn give_back_unreset(&self, mut conn: Conn, principal: Arc<str>) {
        conn.set_reuse_tag(Some(principal));
        // For this connection only: every checkout sets the pool's default
        // (reset) again.
        conn.reset_connection(false);
        drop(conn);
    }

    /// Does what `give_back` decided, waiting for the database.
    pub(crate) async fn give_back_now(&self, mut conn: Conn, how: GiveBack) {
        match how {
            // Without a principal to tag it with: reset by the pool.
            GiveBack::Reuse => drop(conn),
            GiveBack::Clean => drop(conn),
            GiveBack::Running => {
                self.kill_query(conn.id()).await;
                drop(conn);
            }
            GiveBack::RestoreIdentity => {
                tracing::debug!(
                    connection_id = conn.id(),
                    "restoring the connection's default database and role"
                );
                if let Err(e) = self.restore_identity(&mut conn).await {
                    tracing::warn!(error = %e, "could not restore the connection's database and role; closing it");
                    let _ = conn.disconnect().await;
                }
            }
            GiveBack::Discard => {
                tracing::debug!(
                    connection_id = conn.id(),
                    "closing a connection whose session state is in doubt"
                );
                let _ = conn.disconnect().await;
            }
        }
    }

    /// Puts back the default database (COM_CHANGE_USER) and the account's
    /// default role: MariaDB 10.11 keeps a `SET ROLE` across both
    /// COM_RESET_CONNECTION and COM_CHANGE_USER, so the role is set explicitly.
    async fn restore_identity(&self, conn: &mut Conn) -> Result<(), mysql_async::Error> {
        conn.change_user(ChangeUserOpts::default()).await?;
        let role = self.default_role().await?;
        let set_role = match role.as_deref() {
            None => "SET ROLE NONE".to_string(),
            Some(role) => format!("SET ROLE `{}`", role.replace('`', "``")),
        };
        conn.query_drop(set_role).await
    }

    /// The role a fresh session of this account starts with (its default
    /// role), learned once from a control connection: those never run
    /// clients' statements.
    async fn default_role(&self) -> Result<Option<String>, mysql_async::Error> {
        if let Some(role) = self.default_role.get() {
            return Ok(role.clone());
        }
        let mut conn = self.control.get_conn().await?;
        let role: Option<Option<String>> = conn.query_first("SELECT CURRENT_ROLE()").await?;
        let role = role.flatten();
        let _ = self.default_role.set(role.clone());
        Ok(role)
    }

    /// The background tasks that shutdown waits for.
    pub fn tasks(&self) -> &Tasks {
        &self.tasks
    }

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), mysql_async::Error> {
        let mut conn = self.control.get_conn().await?;
        conn.ping().await
    }

    async fn disconnect(self) {
        for pool in [self.pool.clone(), self.control.clone()] {
            if let Err(e) = pool.disconnect().await {
                tracing::warn!(error = %e, "error while closing the connection pool");
            }
        }
    }
}

/// The gateway's view of the database: a backend per login.
#[derive(Clone)]
pub struct Database {
    /// The primary's backends, one per login; with several servers in
    /// --database-url, of the one that is writable (see [`primary`]).
    primary: primary::Primary,
    /// The read-only principals' login, if they have an account of their own.
    reader: Option<Login>,
    /// Principals mapped to database accounts of their own.
    accounts: Option<crate::accounts::AccountMap>,
    /// Replicas of the database that reads may go to (--replica-url).
    replicas: replicas::Replicas,
    tasks: Tasks,
}

impl Database {
    /// Creates the backends: the main account's, and the read-only
    /// principals' account's when `read_only` is given; the backends of
    /// principals mapped by `accounts` to their own are made on first use.
    ///
    /// With `replicas`, writes report their replication position and reads
    /// may go to a replica (see [`replicas`]), as the same account.
    pub fn new(
        read_write: &ConnectOptions,
        read_only: Option<&ConnectOptions>,
        accounts: Option<crate::accounts::AccountMap>,
        replicas: &[ConnectOptions],
        replica_settings: ReplicaConfig,
        settings: PoolConfig,
        tasks: Tasks,
    ) -> Result<Database, mysql_async::Error> {
        let commit_tokens = !replicas.is_empty();
        let servers = crate::config::server_urls(&read_write.url)
            .into_iter()
            .map(|url| ConnectOptions {
                url,
                ..read_write.clone()
            })
            .collect();
        let replicas = replicas
            .iter()
            .map(|options| {
                let replica_logins =
                    login::Logins::new(options.clone(), settings, tasks.clone(), true, false);
                replica_logins.backend(&Login::MAIN)?;
                Ok((crate::config::redact_url(&options.url), replica_logins))
            })
            .collect::<Result<Vec<_>, mysql_async::Error>>()?;
        let replicas = replicas::Replicas::start(replicas, replica_settings, &tasks);
        let primary = primary::Primary::new(
            servers,
            settings,
            tasks.clone(),
            commit_tokens,
            replica_settings.primary_check_interval,
            replicas.clone(),
        )?;
        let logins = primary.logins();
        // Made now, so that a bad URL fails at start.
        logins.backend(&Login::MAIN)?;
        let reader = read_only
            .map(|options| -> Result<Login, mysql_async::Error> {
                let opts = Opts::from_url(&options.url)?;
                let login = Login {
                    credentials: Some(Credentials {
                        user: options
                            .user
                            .clone()
                            .or_else(|| opts.user().map(str::to_string))
                            .unwrap_or_default(),
                        password: options
                            .password
                            .clone()
                            .or_else(|| opts.pass().map(str::to_string)),
                    }),
                    read_only: true,
                };
                // Made now, so that a bad URL fails at start.
                logins.backend(&login)?;
                Ok(login)
            })
            .transpose()?;
        Ok(Database {
            primary,
            reader,
            accounts,
            replicas,
            tasks,
        })
    }

    /// The main account's backend on the primary (on the first server while
    /// none is known writable).
    fn main_backend(&self) -> Backend {
        self.primary
            .logins()
            .backend(&Login::MAIN)
            .expect("made when the database was: its URL is valid")
    }

    /// With several servers in --database-url: finds the writable one now
    /// (at start), rather than at the first check of the watching task.
    pub async fn find_primary(&self) {
        self.primary.find_now().await;
    }

    /// The replicas reads may go to.
    pub fn replicas(&self) -> &replicas::Replicas {
        &self.replicas
    }

    /// The background tasks that shutdown waits for.
    pub fn tasks(&self) -> &Tasks {
        &self.tasks
    }

    /// Who `principal`'s work logs in as: its own account when the accounts
    /// file maps it to one; else, for a read-only principal, the read-only
    /// account when there is one; else the main account.
    pub fn login_of(&self, principal: &Principal) -> Login {
        let read_only = principal.role == Role::ReadOnly;
        if let Some(credentials) = self
            .accounts
            .as_ref()
            .and_then(|accounts| accounts.credentials_of(&principal.name))
        {
            return Login {
                credentials: Some(credentials),
                read_only,
            };
        }
        match &self.reader {
            Some(reader) if read_only => reader.clone(),
            _ => Login::MAIN,
        }
    }

    /// After an autocommit statement on the primary's `backend` failed with
    /// `error`: true when the server refused the statement itself because
    /// it runs read-only (error 1290, which the server answers before the
    /// statement changes anything) and a check of the primary made after
    /// the refusal found another server writable. The statement ran nothing
    /// and may run once more, on the new primary.
    pub async fn primary_moved_after_refusal(
        &self,
        backend: &Backend,
        error: &GatewayError,
    ) -> bool {
        matches!(error, GatewayError::Database(mysql_async::Error::Server(e)) if e.code == READ_ONLY_REFUSAL)
            && self.primary.moved_after_refusal(backend).await
    }

    /// The primary's backend serving `principal` (see [`Database::login_of`]).
    pub fn backend_for(&self, principal: &Principal) -> Result<Backend, GatewayError> {
        self.primary.backend(&self.login_of(principal))
    }

    /// True when read-only principals have a database account of their own.
    pub fn has_read_only_account(&self) -> bool {
        self.reader.is_some()
    }

    /// The main pool's counters (connections in use, idle, waiting).
    pub fn pool_metrics(&self) -> std::sync::Arc<mysql_async::Metrics> {
        self.main_backend().pool.metrics()
    }

    /// Checks that the database answers (as the main and the read-only
    /// accounts).
    pub async fn ping(&self) -> Result<(), mysql_async::Error> {
        self.main_backend().ping().await?;
        if let Some(reader) = &self.reader {
            self.primary.logins().backend(reader)?.ping().await?;
        }
        Ok(())
    }

    /// Closes every pool once every connection is back.
    pub async fn disconnect(self) {
        self.replicas.disconnect().await;
        for backend in self.primary.all() {
            backend.disconnect().await;
        }
    }
}
