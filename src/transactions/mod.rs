//! Transactions pinned to pooled connections.
//!
//! Each open transaction owns exactly one connection, kept in a
//! [`tokio::sync::Mutex`]: concurrent calls on the same transaction take turns
//! on it, never interleaving on the wire. A call takes the connection out for
//! its duration through a [`Lease`]; the state left behind while it is out
//! says "interrupted", so a call whose future is dropped half-way (client
//! cancel, deadline) leaves an ended transaction rather than a connection in
//! an unknown state.
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use mysql_async::{Conn, prelude::Queryable};
use principals::{PrincipalCounts, PrincipalPermit};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::{
    api::TransactionOptions,
    auth::{Principal, Role},
    config::TransactionConfig,
    database::{Backend, Database, GiveBack, replicas::ReplicaRead, stronger},
    errors::{EndReason, GatewayError},
    tasks::Tasks,
};

mod id;
mod lease;
mod options;
mod principals;
mod reaper;
mod tombstones;

pub use id::{Epoch, TransactionId};
pub use lease::{CLEAR_LEFTOVERS, Lease};
pub use options::read_bound;
use options::{requested_idle_timeout, start_statements};

/// Limits and timers of transactions: --max-transactions and the other
/// transaction flags, and the wait for a slot (--acquire-timeout).
#[derive(Debug, Clone, Copy)]
pub struct TransactionSettings {
    /// Default idle timeout, and the largest a client may ask for.
    pub idle_timeout: Duration,
    /// Maximum lifetime of any transaction.
    pub max_lifetime: Duration,
    /// Most open transactions.
    pub max_open: usize,
    /// Most open transactions of one principal.
    pub max_per_principal: usize,
    /// Longest wait for a transaction slot.
    pub acquire_timeout: Duration,
}

/// The registry of open transactions. Cheap to clone.
#[derive(Clone)]
pub struct Transactions {
    inner: Arc<Registry>,
}

struct Registry {
    database: Database,
    settings: TransactionSettings,
    open: Mutex<HashMap<TransactionId, Arc<Transaction>>>,
    /// Bumped whenever a transaction begins, ends or comes back from a
    /// call: what shutdown waits on, instead of polling.
    changes: tokio::sync::watch::Sender<u64>,
    ended: Mutex<tombstones::Tombstones>,
    slots: Arc<Semaphore>,
    /// Open transactions per principal, reserved before a Begin awaits anything.
    principals: PrincipalCounts,
    /// Wakes the reaper when a transaction begins whose timer runs out
    /// before the reaper's next look (see `reaper_next`).
    reaper_wakeup: Arc<Notify>,
    /// When the reaper looks next, in nanoseconds since `created`; 0 while
    /// it looks (a transaction begun meanwhile may be missed: it wakes it).
    reaper_next: std::sync::atomic::AtomicU64,
    /// What `reaper_next` counts from.
    created: Instant,
    draining: std::sync::atomic::AtomicBool,
    /// This gateway's address (in a fleet, as its peers reach it), named by
    /// every id.
    instance: Option<std::net::SocketAddr>,
    /// This life of the instance, named by every id.
    epoch: Epoch,
}

/// One open transaction.
pub struct Transaction {
    id: TransactionId,
    /// The principal that began it: nobody else can use it.
    owner: Arc<str>,
    idle_timeout: Duration,
    expires_at: Instant,
    connection_id: u32,
    /// The account (pool and control connections) its connection belongs to.
    backend: Backend,
    last_used: Mutex<Instant>,
    state: Arc<tokio::sync::Mutex<TxState>>,
    /// Held while a KILL QUERY for its connection is in flight; the
    /// connection is given back only once no kill is (see `kill_running_statement`).
    kill_gate: Arc<tokio::sync::Mutex<()>>,
    /// Set when it ends, before its connection is given back.
    ended: AtomicBool,
    /// Set while its COMMIT runs: a COMMIT is never killed.
    committing: AtomicBool,
    /// Set once a statement that may have changed the connection's default
    /// database or active role ran on it: the connection is restored before reuse.
    identity_in_doubt: AtomicBool,
    /// Set once a client statement ran in it (see `Lease::before_statement`).
    has_run_statement: AtomicBool,
    /// Set when its id is never shown to the client (ExecuteBatch's own
    /// transaction): nobody can ask how it ended, so its end is not
    /// remembered and never counts against --tx-outcomes-per-principal.
    id_unseen: AtomicBool,
    /// What is known of its session's `sql_mode` (see `Lease::conn_and_sql_mode`).
    sql_mode: crate::statement::SessionSqlMode,
    /// Began READ ONLY: it has no writes (nor request ids) to commit.
    read_only: bool,
    _slot: OwnedSemaphorePermit,
    _principal: Option<PrincipalPermit>,
}

/// What the transaction's mutex guards.
enum TxState {
    /// Open, with its connection at rest.
    Open(Conn),
    /// Ended; the connection is gone.
    Ended(EndReason),
}

impl Transaction {
    /// The transaction's id.
    pub fn id(&self) -> &TransactionId {
        &self.id
    }

    /// The name of the principal it belongs to.
    pub fn owner(&self) -> &Arc<str> {
        &self.owner
    }

    /// The idle timeout that applies to it.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// True when it began READ ONLY.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    /// Notes that the transaction's id is never shown to the client (a
    /// call's own transaction, as ExecuteBatch's): its end is not remembered,
    /// so it cannot push out the remembered outcome of a transaction the
    /// client does hold an id of.
    pub fn note_id_unseen(&self) {
        self.id_unseen.store(true, Ordering::SeqCst);
    }

    /// Notes that a statement which may have changed the connection's default
    /// database or active role ran in this transaction.
    pub fn note_identity_in_doubt(&self) {
        self.identity_in_doubt.store(true, Ordering::SeqCst);
    }

    /// Stops the statement running on the transaction's connection, if the
    /// transaction is still open and not committing. Holding the kill gate
    /// keeps the connection from going to another user while the kill is in
    /// flight, so the kill can only hit this transaction's statement.
    async fn kill_running_statement(&self) {
        let _gate = self.kill_gate.lock().await;
        if self.ended.load(Ordering::SeqCst) || self.committing.load(Ordering::SeqCst) {
            return;
        }
        self.backend.kill_query(self.connection_id).await;
    }

    /// Lets go of the transaction's connection (it has ended): optionally
    /// rolls back first, then gives it back as `how` says — once no kill of
    /// its statement is in flight.
    fn let_go(&self, mut conn: Conn, roll_back_first: bool, how: GiveBack) {
        debug_assert!(self.ended.load(Ordering::SeqCst));
        // A deferred START TRANSACTION never sent: nothing began, nothing
        // to roll back, and it must not leave with another user's command.
        let roll_back_first = !conn.cancel_deferred_query() && roll_back_first;
        let how = if self.identity_in_doubt.load(Ordering::SeqCst) {
            stronger(how, GiveBack::RestoreIdentity)
        } else {
            how
        };
        let gate = self.kill_gate.clone();
        let backend = self.backend.clone();
        match gate.clone().try_lock_owned() {
            Ok(_gate) if !roll_back_first => backend.give_back(conn, how),
            held => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return;
                }
                self.backend.tasks().spawn(async move {
                    let _gate = match held {
                        Ok(gate) => gate,
                        Err(_) => gate.lock_owned().await,
                    };
                    let mut how = how;
                    if roll_back_first && let Err(e) = conn.query_drop("ROLLBACK").await {
                        tracing::warn!(error = %e, "rollback failed; closing the connection");
                        how = GiveBack::Discard;
                    }
                    backend.give_back_now(conn, how).await;
                });
            }
        }
    }

    /// When a timer will end it, and with which reason.
    fn deadline(&self) -> (Instant, EndReason) {
        let idle_deadline = *lock(&self.last_used) + self.idle_timeout;
        if idle_deadline < self.expires_at {
            (idle_deadline, EndReason::IdleTimeout)
        } else {
            (self.expires_at, EndReason::MaxLifetime)
        }
    }
}

impl Transactions {
    /// Creates the registry and starts its reaper on the current runtime.
    ///
    /// `instance` is this gateway's address (in a fleet, as its peers reach
    /// it): every transaction id names it and this life's epoch (see
    /// [`TransactionId`]), so that a gateway restarted on the same address
    /// knows the ids of its previous life.
    pub fn new(
        database: Database,
        config: TransactionConfig,
        slot_timeout: Duration,
        instance: Option<std::net::SocketAddr>,
        tasks: &Tasks,
    ) -> Transactions {
        let settings = TransactionSettings {
            idle_timeout: config.idle_timeout,
            max_lifetime: config.max_lifetime,
            max_open: config.max_open,
            max_per_principal: config.max_per_principal,
            acquire_timeout: slot_timeout,
        };
        let transactions = Transactions {
            inner: Arc::new(Registry {
                database,
                settings,
                open: Mutex::new(HashMap::new()),
                changes: tokio::sync::watch::Sender::new(0),
                ended: Mutex::new(tombstones::Tombstones::new(config.outcomes_per_principal)),
                slots: Arc::new(Semaphore::new(settings.max_open)),
                principals: PrincipalCounts::default(),
                reaper_wakeup: Arc::new(Notify::new()),
                reaper_next: Default::default(),
                created: Instant::now(),
                draining: Default::default(),
                instance,
                epoch: Epoch::new(),
            }),
        };
        tasks.spawn_loop(reaper::run(Arc::downgrade(&transactions.inner)));
        transactions
    }

    /// The settings in force.
    pub fn settings(&self) -> &TransactionSettings {
        &self.inner.settings
    }

    /// Number of open transactions.
    pub fn open_count(&self) -> usize {
        lock(&self.inner.open).len()
    }

    /// Begins a transaction of `principal` on its own connection and returns
    /// a lease on it, so that a first statement can run before anyone else
    /// can use it. A read-only principal's transactions are READ ONLY.
    ///
    /// `defer_start`: a plain `START TRANSACTION` (default options: not READ
    /// ONLY, so never on a replica; no isolation level) is not sent now but in the same write as the transaction's
    /// first command (see [`Lease::start_unconfirmed`] for what the callers
    /// that ask for it must then check); the others are sent now.
    pub async fn begin(
        &self,
        options: Option<&TransactionOptions>,
        principal: &Principal,
        defer_start: bool,
    ) -> Result<Lease, GatewayError> {
        let registry = &self.inner;
        if self.is_draining() {
            return Err(GatewayError::ShuttingDown);
        }
        let settings = registry.settings;
        // Reserved before anything is awaited, so that concurrent Begins of
        // one principal cannot all pass the check. Without authentication
        // every caller is the same anonymous principal: only the global limit
        // (below) applies then.
        let principal_permit = if principal.is_anonymous() {
            None
        } else {
            Some(
                registry
                    .principals
                    .reserve(&principal.name, settings.max_per_principal)
                    .ok_or(GatewayError::TooManyTransactionsForPrincipal {
                        limit: settings.max_per_principal,
                    })?,
            )
        };
        let slot = tokio::time::timeout(
            settings.acquire_timeout,
            registry.slots.clone().acquire_owned(),
        )
        .await
        .map_err(|_| GatewayError::TooManyTransactions {
            limit: settings.max_open,
        })?
        .expect("the semaphore is never closed");
        let idle_timeout = requested_idle_timeout(options, settings.idle_timeout)?;
        let read_only = principal.role == Role::ReadOnly;
        let start = start_statements(options, read_only)?;
        let login = registry.database.login_of(principal);
        // A read-only transaction may run on a replica that honours its
        // read_consistency.
        let bound = read_bound(options.and_then(|o| o.read_consistency.as_ref()))?;
        if bound.is_some() && !options.is_some_and(|o| o.read_only) {
            return Err(GatewayError::InvalidRequest(
                "read_consistency other than strong needs a read-only transaction (read_only: true)".into(),
            ));
        }
        let replica = match &bound {
            Some(bound) => {
                registry
                    .database
                    .replicas()
                    .for_read(bound, &login, &principal.name)
                    .await?
            }
            None => None,
        };
        let (backend, mut conn) = match replica {
            Some(ReplicaRead { backend, conn }) => (backend, conn),
            None => {
                let backend = registry.database.backend_for(principal)?;
                let conn = backend.acquire(&principal.name).await?;
                (backend, conn)
            }
        };
        let deferred = defer_start && start == [options::START] && conn.defer_query(options::START);
        if !deferred {
            for sql in start {
                conn.query_drop(sql).await?;
            }
        }
        let now = Instant::now();
        let transaction = Arc::new(Transaction {
            id: TransactionId::new_random(registry.instance.map(|me| (me, registry.epoch))),
            owner: principal.name.clone(),
            idle_timeout,
            expires_at: now + settings.max_lifetime,
            connection_id: conn.id(),
            backend,
            last_used: Mutex::new(now),
            state: Arc::new(tokio::sync::Mutex::new(TxState::Ended(
                EndReason::CallInterrupted,
            ))),
            kill_gate: Default::default(),
            ended: AtomicBool::new(false),
            committing: AtomicBool::new(false),
            identity_in_doubt: AtomicBool::new(false),
            has_run_statement: AtomicBool::new(false),
            id_unseen: AtomicBool::new(false),
            sql_mode: Default::default(),
            read_only: read_only || options.is_some_and(|o| o.read_only),
            _slot: slot,
            _principal: principal_permit,
        });
        let guard = transaction
            .state
            .clone()
            .try_lock_owned()
            .expect("nobody else knows this transaction yet");
        lock(&registry.open).insert(transaction.id.clone(), transaction.clone());
        self.note_change();
        // The reaper looks at least every second: woken only when this
        // transaction's timer runs out before its next look (a short idle
        // timeout), not on every Begin.
        let runs_out = transaction.deadline().0;
        let next = registry.reaper_next.load(Ordering::SeqCst);
        if next == 0 || runs_out < registry.created + Duration::from_nanos(next) {
            registry.reaper_wakeup.notify_one();
        }
        tracing::debug!(transaction_id = %transaction.id, "transaction begun");
        Ok(Lease::new(self.clone(), transaction, guard, conn))
    }

    /// Takes the connection of `principal`'s open transaction for one call,
    /// waiting for calls already running on it to finish.
    /// The commit token `principal`'s transaction `id` committed with, if it
    /// committed recently (see `tombstones`) and the database has replicas.
    pub fn commit_token_of(&self, id: &str, principal: &Principal) -> Option<String> {
        let id = TransactionId::parse(id)?;
        lock(&self.inner.ended).commit_token(id.as_str(), &principal.name)
    }

    pub async fn checkout(&self, id: &str, principal: &Principal) -> Result<Lease, GatewayError> {
        let transaction = self.find(id, &principal.name)?;
        let mut guard = transaction.state.clone().lock_owned().await;
        let state = std::mem::replace(&mut *guard, TxState::Ended(EndReason::CallInterrupted));
        match state {
            // Its server is no longer the primary (a failover): it ends
            // here, rolled back, never committed there.
            TxState::Open(conn) if transaction.backend.retired() => {
                *guard = TxState::Open(conn);
                self.end_idle(&transaction, guard, EndReason::PrimaryChanged);
                Err(ended_error(EndReason::PrimaryChanged))
            }
            TxState::Open(conn) => {
                transaction.touch();
                Ok(Lease::new(self.clone(), transaction, guard, conn))
            }
            TxState::Ended(reason) => {
                *guard = TxState::Ended(reason);
                Err(ended_error(reason))
            }
        }
    }

    /// Rolls back `principal`'s transaction if it is open; true when it was.
    /// A statement running on it is killed rather than waited for. A
    /// transaction that did not end by rollback (a statement ended it, or
    /// its COMMIT's outcome is unknown) is an error: nothing can undo it.
    pub async fn rollback(&self, id: &str, principal: &Principal) -> Result<bool, GatewayError> {
        if let Ok(transaction) = self.find(id, &principal.name)
            && transaction.state.try_lock().is_err()
        {
            transaction.kill_running_statement().await;
        }
        let lease = match self.checkout(id, principal).await {
            Ok(lease) => lease,
            Err(GatewayError::TransactionNotFound(_))
            | Err(GatewayError::TransactionExpired(_))
            | Err(GatewayError::TransactionAborted(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        lease.rollback().await;
        Ok(true)
    }

    /// True while `principal`'s transaction `id` is open.
    pub fn is_open(&self, id: &str, principal: &Principal) -> bool {
        self.find(id, &principal.name).is_ok()
    }

    /// Stops new transactions from beginning (shutdown).
    pub fn start_draining(&self) {
        self.inner
            .draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// True once draining has started.
    pub fn is_draining(&self) -> bool {
        self.inner
            .draining
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Rolls back every open transaction, killing statements still running
    /// on them; returns when none is left or `timeout` has passed.
    pub async fn abort_all(&self, reason: EndReason, timeout: Duration) {
        let give_up = tokio::time::Instant::now() + timeout;
        let mut changes = self.inner.changes.subscribe();
        loop {
            changes.mark_unchanged();
            let open: Vec<_> = lock(&self.inner.open).values().cloned().collect();
            if open.is_empty() || tokio::time::Instant::now() >= give_up {
                return;
            }
            for transaction in open {
                match transaction.state.clone().try_lock_owned() {
                    Ok(guard) => self.end_idle(&transaction, guard, reason),
                    // A call is running on it: stop its statement; the
                    // transaction is ended as soon as the call lets go.
                    Err(_) => transaction.kill_running_statement().await,
                }
            }
            // Until a call lets go of a transaction, or one ends.
            let _ = tokio::time::timeout_at(give_up, changes.changed()).await;
        }
    }

    /// Waits until no transaction is open, or until `deadline`.
    pub async fn wait_until_none_open(&self, deadline: tokio::time::Instant) {
        let mut changes = self.inner.changes.subscribe();
        loop {
            changes.mark_unchanged();
            if self.open_count() == 0 {
                return;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => return,
            }
        }
    }

    /// Wakes whoever waits for transactions to begin, end or come back from a call.
    fn note_change(&self) {
        self.inner.changes.send_modify(|count| *count += 1);
    }

    /// An open transaction of `owner`. Another principal's transaction is
    /// "not found", exactly as if the id did not exist.
    fn find(&self, id: &str, owner: &str) -> Result<Arc<Transaction>, GatewayError> {
        // A malformed id names nothing: "not found", like an unknown one.
        let Some(id) = TransactionId::parse(id) else {
            return Err(GatewayError::TransactionNotFound(None));
        };
        if let Some(transaction) = lock(&self.inner.open).get(&id)
            && &*transaction.owner == owner
        {
            return Ok(transaction.clone());
        }
        let ended = lock(&self.inner.ended).get(id.as_str(), owner);
        Err(match ended {
            Some(reason) => ended_error(reason),
            None => self.unknown(&id),
        })
    }

    /// The error for an id that names nothing open or remembered here:
    /// "not found", unless it names this instance's address from an earlier
    /// life (another epoch). Then the transaction was this address's, and
    /// the database rolled it back when that life's connections closed
    /// (ABORTED / TRANSACTION_OWNER_UNAVAILABLE: rerun it) — unless a COMMIT
    /// of it was sent before that life ended, whose outcome died with it
    /// (outcomes are remembered in memory only): the detail says so.
    fn unknown(&self, id: &TransactionId) -> GatewayError {
        match (self.inner.instance, id.owner()) {
            (Some(me), Some(owner)) if me == owner && id.epoch() != Some(self.inner.epoch) => {
                GatewayError::TransactionOwnerUnavailable {
                    owner,
                    detail: "it restarted since it began this transaction, so it does not know the transaction's outcome: what was not committed was rolled back, but if a Commit of this id was sent before and got no answer, that COMMIT may have gone through".into(),
                }
            }
            _ => GatewayError::TransactionNotFound(None),
        }
    }

    /// Ends a transaction whose connection is at rest (no call running).
    fn end_idle(
        &self,
        transaction: &Transaction,
        mut guard: tokio::sync::OwnedMutexGuard<TxState>,
        reason: EndReason,
    ) {
        let state = std::mem::replace(&mut *guard, TxState::Ended(reason));
        drop(guard);
        self.forget(transaction, reason, None);
        if let TxState::Open(conn) = state {
            tracing::info!(transaction_id = %transaction.id, %reason, "transaction rolled back by the gateway");
            transaction.let_go(conn, true, GiveBack::Clean);
        }
    }

    /// Removes an ended transaction from the registry and remembers why it ended.
    /// Remembers how `transaction` ended (unless its id was never shown),
    /// also later for one that ended with its outcome unknown (a COMMIT
    /// whose connection failed) once the database said (see `outcomes`):
    /// later calls on its id are answered with that.
    pub fn settled(
        &self,
        transaction: &Transaction,
        reason: EndReason,
        commit_token: Option<&str>,
    ) {
        if transaction.id_unseen.load(Ordering::SeqCst) {
            return;
        }
        lock(&self.inner.ended).insert(
            transaction.id.as_str(),
            &transaction.owner,
            reason,
            commit_token,
            Instant::now(),
        );
    }

    fn forget(&self, transaction: &Transaction, reason: EndReason, commit_token: Option<&str>) {
        transaction.ended.store(true, Ordering::SeqCst);
        crate::stats::record_transaction_end(reason.label());
        lock(&self.inner.open).remove(&transaction.id);
        self.note_change();
        self.settled(transaction, reason, commit_token);
    }
}

/// The error a call on an ended transaction gets.
fn ended_error(reason: EndReason) -> GatewayError {
    match reason {
        EndReason::IdleTimeout | EndReason::MaxLifetime => GatewayError::TransactionExpired(reason),
        EndReason::Committed | EndReason::RolledBack => {
            GatewayError::TransactionNotFound(Some(reason))
        }
        EndReason::CallInterrupted
        | EndReason::DatabaseAborted
        | EndReason::Shutdown
        | EndReason::PrimaryChanged => GatewayError::TransactionAborted(reason),
        EndReason::EndedByStatement => GatewayError::TransactionEndedByStatement(format!(
            "the transaction is over: {reason}; nothing more can run in it"
        )),
        EndReason::CommitOutcomeUnknown => GatewayError::CommitOutcomeUnknown(reason.to_string()),
    }
}

/// Locks a std mutex, ignoring poisoning: the maps stay consistent because no
/// code path panics while holding them.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
