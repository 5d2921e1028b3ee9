//! Where a call's statement runs: a pooled connection in autocommit mode, or
//! an open transaction (possibly begun by this very call).
use mysql_async::{Conn, consts::StatusFlags, prelude::Queryable};

use crate::{
    api::{self, TransactionOptions},
    auth::{Principal, Role},
    database::{Backend, Database, GiveBack, PooledConn, replicas::ReadBound},
    errors::GatewayError,
    outcomes::{Committed, Outcomes, Proceed, RequestKey, Summary},
    service::deadline::Stopped,
    statement::{SessionSqlMode, Statement},
    tasks::Tasks,
    transactions::{Lease, Transactions},
};

/// The connection a call runs on, and how to let go of it afterwards.
pub enum Session {
    /// A pooled connection, autocommit, and whether its session may write
    /// (not a READ ONLY session: a replica's, a read-only principal's); see
    /// [`Session::check`].
    Autocommit(PooledConn, bool),
    /// An open transaction.
    Transaction {
        /// The call's hold on the transaction.
        lease: Lease,
        /// True when this call began the transaction (`begin` was set).
        begun_here: bool,
    },
}

impl Session {
    /// Opens the session that `transaction_id` and `begin` of a request ask
    /// for, as the database account the principal logs in as
    /// ([`Database::login_of`]). A read-only principal's session is READ
    /// ONLY: from the start on an account of its own (the pool's setup),
    /// else set on its autocommit connection here (the reset on its return
    /// to the pool undoes that).
    ///
    /// `plain_read`: the call's statement is a plain read, whose autocommit
    /// connection may go back without a reset if the server reports no
    /// change of session state. Its connection gets the server's session
    /// state tracking turned on first, if nothing has done so since the
    /// connection was opened or reset (the driver reports such a session as
    /// changed): before anything else runs on it, so that everything is
    /// seen. Connections serving anything else are reset after the call
    /// anyway and never pay for the setup.
    pub async fn open(
        database: &Database,
        transactions: &Transactions,
        transaction_id: &str,
        begin: Option<&TransactionOptions>,
        principal: &Principal,
        plain_read: bool,
    ) -> Result<Session, GatewayError> {
        match (transaction_id.is_empty(), begin) {
            (false, Some(_)) => Err(GatewayError::InvalidRequest(
                "set either transaction_id or begin, not both".into(),
            )),
            (false, None) => Ok(Session::Transaction {
                lease: Box::pin(transactions.checkout(transaction_id, principal)).await?,
                begun_here: false,
            }),
            (true, Some(options)) => Ok(Session::Transaction {
                // START TRANSACTION leaves with the first statement (see
                // `commits_by_itself` and `check`).
                lease: Box::pin(transactions.begin(Some(options), principal, true)).await?,
                begun_here: true,
            }),
            (true, None) => {
                let read_only = principal.role == Role::ReadOnly;
                let backend = database.backend_for(principal)?;
                let mut pooled = PooledConn::acquire(&backend, &principal.name).await?;
                if plain_read && pooled.session_reuse() && pooled.conn().session_state_changed() {
                    for setup in crate::database::session_tracking_setup() {
                        pooled.conn().query_drop(setup).await?;
                    }
                    pooled.conn().clear_session_state_changed();
                }
                if read_only && !backend.read_only_sessions() {
                    pooled
                        .conn()
                        .query_drop("SET SESSION TRANSACTION READ ONLY")
                        .await?;
                }
                let may_write = !read_only && !backend.read_only_sessions();
                Ok(Session::Autocommit(pooled, may_write))
            }
        }
    }

    /// Opens the session an Execute or ExecuteStream `request` asks for: a
    /// replica that honours `bound` when there is one, else as [`Session::open`].
    pub async fn open_for(
        database: &Database,
        transactions: &Transactions,
        request: &api::ExecuteRequest,
        principal: &Principal,
        plain_read: bool,
        bound: Option<&ReadBound>,
    ) -> Result<Session, GatewayError> {
        // Rare paths are boxed (here and in `open`): their futures would
        // otherwise make every Execute's future larger, and it is moved.
        if let Some(bound) = bound
            && let Some(read) = Box::pin(database.replicas().for_read(
                bound,
                &database.login_of(principal),
                &principal.name,
            ))
            .await?
        {
            let pooled = PooledConn::from_taken(read.conn, &read.backend, &principal.name);
            let may_write = !read.backend.read_only_sessions();
            return Ok(Session::Autocommit(pooled, may_write));
        }
        let (transaction_id, begin) = (&request.transaction_id, request.begin.as_ref());
        Session::open(
            database,
            transactions,
            transaction_id,
            begin,
            principal,
            plain_read,
        )
        .await
    }

    /// True when a statement run on this session may commit by itself: an
    /// autocommit session that may write (see [`Session::check`]), or a
    /// transaction whose START TRANSACTION the database has not confirmed
    /// yet (it leaves with the first statement: see
    /// [`Lease::start_unconfirmed`]).
    pub fn commits_by_itself(&self) -> bool {
        match self {
            Session::Autocommit(_, may_write) => *may_write,
            Session::Transaction { lease, .. } => lease.start_unconfirmed(),
        }
    }

    /// After a statement that ran into its time limit (see
    /// [`super::deadline::CallDeadline::stop_or_learn`]): an autocommit connection that
    /// answered may still get the KILL sent to it, so it is closed rather
    /// than reused; one that did not answer still runs the statement, which
    /// is killed again before the connection goes back.
    pub fn stopped(&mut self, stopped: Stopped) {
        if let Session::Autocommit(pooled, _) = self {
            match stopped {
                Stopped::No => {}
                Stopped::Answered => pooled.needs(GiveBack::Discard),
                Stopped::Unanswered => pooled.needs(GiveBack::Running),
            }
        }
    }

    /// Notes that only a READ ONLY form of the statement reached the
    /// server (a text-path read: see [`crate::statement::run_to_completion`]),
    /// which cannot have written: a connection lost during it leaves
    /// nothing applied (see [`outcome_of_lost_statement`]).
    pub fn sent_read_only(&mut self) {
        if let Session::Autocommit(_, may_write) = self {
            *may_write = false;
        }
    }

    /// The connection to run on.
    pub fn conn(&mut self) -> &mut Conn {
        match self {
            Session::Autocommit(pooled, _) => pooled.conn(),
            Session::Transaction { lease, .. } => lease.conn(),
        }
    }

    /// The connection to run a client's statement on, with what is known of
    /// its session's `sql_mode`: a transaction's, kept between its
    /// statements; none for an autocommit call, whose session lives for one
    /// statement (see `statement::SessionSqlMode`).
    pub fn conn_and_sql_mode(&mut self) -> (&mut Conn, Option<&SessionSqlMode>) {
        match self {
            Session::Autocommit(pooled, _) => (pooled.conn(), None),
            Session::Transaction { lease, .. } => {
                let (conn, sql_mode) = lease.conn_and_sql_mode();
                (conn, Some(sql_mode))
            }
        }
    }

    /// The backend the connection belongs to (to kill its statement).
    pub fn backend(&self) -> &Backend {
        match self {
            Session::Autocommit(pooled, _) => pooled.backend(),
            Session::Transaction { lease, .. } => lease.backend(),
        }
    }

    /// Before `statement` runs. Makes sure a statement reading
    /// `FOUND_ROWS()`/`ROW_COUNT()` cannot see another client's: on an
    /// autocommit connection (every call is the first on it), and in a
    /// transaction's first statement; costs a round trip only for such
    /// statements. In a transaction, a CALL is prepared for the check of
    /// whether it ended the transaction (see `Lease::before_statement`).
    pub async fn before_statement(&mut self, statement: &Statement) -> Result<(), GatewayError> {
        match self {
            Session::Autocommit(pooled, _) => {
                let cleared = match statement.reads_leftovers() {
                    true => {
                        pooled
                            .conn()
                            .query_drop(crate::transactions::CLEAR_LEFTOVERS)
                            .await
                    }
                    false => Ok(()),
                };
                // From here on, a statement sent is the client's (see `check`).
                pooled.conn().forget_statements_sent();
                Ok(cleared?)
            }
            Session::Transaction { lease, .. } => {
                lease
                    .before_statement(statement.reads_leftovers(), statement.calls())
                    .await
            }
        }
    }

    /// The id of a transaction begun by this call, to return to the client.
    pub fn begun_transaction_id(&self) -> Option<String> {
        match self {
            Session::Transaction {
                lease,
                begun_here: true,
            } => Some(lease.transaction().id().to_string()),
            _ => None,
        }
    }

    /// Checks the session after a statement ran, with the server as the
    /// judge: a transaction that the statement ended turns the outcome into
    /// `TransactionEndedByStatement`; an autocommit connection left outside
    /// autocommit mode or inside a transaction is closed instead of reused.
    /// `may_change_identity` says the statement may have changed the default
    /// database or the active role: the connection is restored before reuse.
    ///
    /// `plain_read` says the statement was a plain read by the guard (see
    /// [`crate::statement::guard::Checked::plain_read`]) and its whole result
    /// was read. Then, if the call succeeded, left autocommit on and no
    /// transaction open, with no warning (which the next user could read
    /// with SHOW WARNINGS), and the server reported no change of session
    /// state, the connection goes back without a reset ([`GiveBack::Reuse`]).
    async fn check<T>(
        &mut self,
        may_change_identity: bool,
        plain_read: bool,
        outcome: Result<T, GatewayError>,
    ) -> Result<T, GatewayError> {
        if let Err(e) = &outcome {
            self.backend().note_failure(e);
        }
        match self {
            Session::Autocommit(pooled, may_write) => {
                if may_change_identity {
                    pooled.needs(GiveBack::RestoreIdentity);
                }
                let outcome = outcome.map_err(|e| outcome_of_lost_statement(e, pooled, *may_write));
                let at_rest = autocommit_at_rest(pooled.conn());
                if outcome.is_ok() && !at_rest {
                    tracing::warn!(
                        "an autocommit call left its connection in a transaction or outside autocommit mode; closing it"
                    );
                    pooled.needs(GiveBack::Discard);
                }
                let unchanged = outcome.is_ok()
                    && at_rest
                    && plain_read
                    && pooled.session_reuse()
                    && !pooled.conn().session_state_changed()
                    && pooled.conn().get_warnings() == 0;
                if unchanged {
                    pooled.skip_reset();
                }
                outcome
            }
            Session::Transaction { lease, begun_here } => {
                if may_change_identity {
                    lease.transaction().note_identity_in_doubt();
                }
                let outcome = lease.check_still_open(outcome).await;
                if *begun_here {
                    // A transaction that a failed call began is rolled back
                    // (see `close`): its client never learned its id.
                    outcome.map_err(GatewayError::transaction_rolled_back)
                } else {
                    outcome
                }
            }
        }
    }

    /// [`Session::check`] within `by` (see
    /// [`super::deadline::CallDeadline::after_statement`]). Only a
    /// transaction's check waits for the server (a COM_PING after a failed
    /// statement, the release of a CALL's savepoint); when no answer comes in
    /// time, whether the transaction is still open is unknown, so it ends
    /// (see [`Session::close`]: dropped, its connection's command killed,
    /// the transaction rolled back on the server as interrupted) and the
    /// call answers what that means for the client's data: after a CALL
    /// (`calls`), whose procedure may have committed the transaction's work
    /// before, UNKNOWN / COMMIT_OUTCOME_UNKNOWN; after any other statement,
    /// which cannot end the transaction (the guard refuses those that commit
    /// implicitly), DEADLINE_EXCEEDED: nothing of the transaction committed.
    pub async fn check_by<T>(
        &mut self,
        by: tokio::time::Instant,
        calls: bool,
        may_change_identity: bool,
        plain_read: bool,
        outcome: Result<T, GatewayError>,
    ) -> Result<T, GatewayError> {
        if let Session::Autocommit(..) = self {
            // Nothing to wait for: no timer on the hot path.
            return self.check(may_change_identity, plain_read, outcome).await;
        }
        let checked = self.check(may_change_identity, plain_read, outcome);
        let checked = tokio::time::timeout_at(by, checked).await;
        match checked {
            Ok(outcome) => outcome,
            Err(_) => {
                let waited = self.backend().acquire_timeout();
                tracing::warn!(
                    ?waited,
                    "no answer to the check of the transaction after its statement; ending it"
                );
                Err(match calls {
                    true => GatewayError::OutcomeUnknownAfterDeadline(format!(
                        "the server did not answer within {waited:?} whether the transaction was still open after the CALL (a procedure may commit); the gateway ended the transaction"
                    )),
                    false => GatewayError::DeadlineExceeded(waited),
                })
            }
        }
    }

    /// Before the statement runs: when the call's request id (`key`) is
    /// recorded already, the session's transaction is rolled back and the
    /// recorded outcome is the answer (see [`Outcomes::unless_recorded`]).
    /// An autocommit session never has a key (such a call runs in a
    /// transaction of its own).
    pub async fn unless_recorded(
        self,
        outcomes: &Outcomes,
        key: Option<&RequestKey>,
    ) -> Result<Proceed<Session>, GatewayError> {
        match self {
            Session::Transaction { lease, begun_here } => {
                Ok(match outcomes.unless_recorded(lease, key).await? {
                    Proceed::Run(lease) => Proceed::Run(Session::Transaction { lease, begun_here }),
                    Proceed::Replay(recorded) => Proceed::Replay(recorded),
                })
            }
            autocommit => Ok(Proceed::Run(autocommit)),
        }
    }

    /// Commits the session's transaction after its statement succeeded
    /// (`ExecuteRequest.commit`), recording `summary` under the call's
    /// request id (`key`) first. The COMMIT runs in a task of its own, so
    /// that its outcome is recorded even if this call is dropped meanwhile.
    pub async fn commit(
        self,
        tasks: &Tasks,
        outcomes: &Outcomes,
        key: Option<RequestKey>,
        summary: Summary,
    ) -> Result<Committed, GatewayError> {
        match self {
            Session::Transaction { lease, .. } => tasks
                .spawn(outcomes.clone().commit(lease, key, summary))
                .await
                .expect("committing does not panic"),
            Session::Autocommit(pooled, _) => {
                // Checked before anything ran: commit needs a transaction.
                pooled.release();
                Err(GatewayError::InvalidRequest(
                    "commit needs a transaction".into(),
                ))
            }
        }
    }

    /// After an autocommit statement that may have written, the replication
    /// position that contains the write, when the database has replicas;
    /// asked until `by` (see
    /// [`super::deadline::CallDeadline::after_statement`]). The write has
    /// committed by then: a position not read in time (or at all) is none,
    /// and the call still answers the statement's result; the connection,
    /// its question unanswered, is closed.
    pub async fn autocommit_write_position(&mut self, by: tokio::time::Instant) -> Option<String> {
        match self {
            Session::Autocommit(pooled, _) if pooled.backend().commit_tokens() => {
                let asked = Backend::last_write_position(pooled.conn());
                let asked = tokio::time::timeout_at(by, asked).await;
                match asked {
                    Ok(position) => position,
                    Err(_) => {
                        tracing::warn!(
                            "no answer when reading the replication position of a write; answering without a commit token"
                        );
                        pooled.needs(GiveBack::Discard);
                        None
                    }
                }
            }
            _ => None,
        }
    }

    /// Lets go after the call. A transaction begun by a call that failed is
    /// rolled back: its client never learned its id. A call stopped by its
    /// time limit (or whose outcome it left unknown), or a stream whose
    /// client stalled, is abandoned. Waits for the server until `by` (see
    /// [`super::deadline::CallDeadline::after_statement`]): a ROLLBACK that
    /// does not answer in time is dropped with its transaction, whose
    /// connection is killed and cleaned (the server rolls back).
    pub async fn close<T>(self, by: tokio::time::Instant, outcome: &Result<T, GatewayError>) {
        if matches!(outcome, Err(e) if e.is_deadline() || matches!(e, GatewayError::OutcomeUnknownAfterDeadline(_) | GatewayError::CompletedButCut(_)))
        {
            // Stopped half-way: dropping kills the statement and, in a
            // transaction, ends it as interrupted.
            drop(self);
            return;
        }
        if let Session::Autocommit(pooled, _) = self {
            // Never waits: no timer on the hot path.
            pooled.release();
            return;
        }
        if tokio::time::timeout_at(by, self.let_go(outcome))
            .await
            .is_err()
        {
            tracing::warn!(
                "no answer to the ROLLBACK of a transaction that a failed call began; abandoning it"
            );
        }
    }

    async fn let_go<T>(self, outcome: &Result<T, GatewayError>) {
        match self {
            Session::Autocommit(pooled, _) => pooled.release(),
            Session::Transaction {
                lease,
                begun_here: true,
            } if matches!(outcome, Err(e) if !e.ended_by_statement()) => lease.rollback().await,
            Session::Transaction { lease, .. } => lease.release(outcome),
        }
    }
}

/// The error of an autocommit call: when its connection was lost (or ended
/// by the server) after the client's statement was sent, on a session that
/// may write, the statement may have run and committed by itself (whatever
/// its text says: a SELECT may call a function that writes), so the outcome
/// is unknown. A statement never sent (the connection was found dead before:
/// see [`mysql_async::Conn::statement_sent`]), or sent only in a READ ONLY
/// form (a READ ONLY session, or a text-path read: see
/// [`Session::sent_read_only`]), keeps its error (UNAVAILABLE: nothing was
/// applied).
fn outcome_of_lost_statement(
    error: GatewayError,
    pooled: &mut PooledConn,
    may_write: bool,
) -> GatewayError {
    if may_write && error.connection_lost() && pooled.conn().statement_sent() {
        GatewayError::StatementOutcomeUnknown(error.to_string())
    } else {
        error
    }
}

/// True when the connection's last OK packet says autocommit is on and no
/// transaction is open: the state an autocommit call must leave behind.
fn autocommit_at_rest(conn: &Conn) -> bool {
    conn.last_ok_packet().is_some_and(|ok| {
        let flags = ok.status_flags();
        flags.contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT)
            && !flags.contains(StatusFlags::SERVER_STATUS_IN_TRANS)
    })
}
