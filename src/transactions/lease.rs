//! A call's hold on a transaction's connection.
use std::{
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use mysql_async::{Conn, consts::StatusFlags, prelude::Queryable};
use tokio::sync::OwnedMutexGuard;

use super::{Transaction, Transactions, TxState};
use crate::{
    database::{Backend, GiveBack},
    errors::{EndReason, GatewayError},
    statement::SessionSqlMode,
};

/// Holds a transaction's connection for the length of one call.
///
/// Every normal path ends with [`Lease::release`], [`Lease::commit`] or
/// [`Lease::rollback`]. A lease dropped without one of them belongs to a call
/// that was cancelled half-way: its statement is killed and the transaction
/// ends as interrupted (later calls get ABORTED).
pub struct Lease {
    transactions: Transactions,
    transaction: Arc<Transaction>,
    guard: Option<OwnedMutexGuard<TxState>>,
    conn: Option<Conn>,
    /// The savepoint set before a CALL (see [`Lease::before_statement`]),
    /// until [`Lease::check_still_open`] looks for it.
    call_marker: Option<String>,
}

impl Lease {
    pub(super) fn new(
        transactions: Transactions,
        transaction: Arc<Transaction>,
        guard: OwnedMutexGuard<TxState>,
        conn: Conn,
    ) -> Lease {
        Lease {
            transactions,
            transaction,
            guard: Some(guard),
            conn: Some(conn),
            call_marker: None,
        }
    }

    /// The transaction this lease is on.
    pub fn transaction(&self) -> &Transaction {
        &self.transaction
    }

    /// The backend (account) the transaction's connection belongs to.
    pub fn backend(&self) -> &Backend {
        &self.transaction.backend
    }

    /// The transaction's connection.
    pub fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("the connection is present until the lease ends")
    }

    /// The transaction's connection, with what is known of its session's
    /// `sql_mode` (kept for the transaction's life: no reset happens in it).
    pub fn conn_and_sql_mode(&mut self) -> (&mut Conn, &SessionSqlMode) {
        let conn = self
            .conn
            .as_mut()
            .expect("the connection is present until the lease ends");
        (conn, &self.transaction.sql_mode)
    }

    /// True while the transaction's START TRANSACTION, deferred to leave
    /// with its first command (see [`Transactions::begin`]), has not been
    /// confirmed by the database: not sent yet, its answer not read yet, or
    /// it failed. A statement sent meanwhile runs in autocommit mode if it
    /// failed, so it may commit by itself: a call stopped by its time limit
    /// must learn its answer (see `Session::commits_by_itself`), and
    /// [`Lease::check_still_open`] judges the outcome.
    ///
    /// [`Transactions::begin`]: super::Transactions::begin
    pub fn start_unconfirmed(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|conn| conn.deferred_query_unconfirmed())
    }

    /// Before a statement runs in the transaction.
    ///
    /// A statement that reads what the session's previous statement left
    /// (`FOUND_ROWS()`, `ROW_COUNT()`, `reads_leftovers`): if it is the
    /// transaction's first, the previous statement was another client's —
    /// neither COM_RESET_CONNECTION nor START TRANSACTION clears those — so
    /// an empty SELECT sets them as a fresh session has them (0 and -1).
    ///
    /// A CALL (`calls`): a procedure may end the transaction and begin
    /// another (`COMMIT; START TRANSACTION`, DDL, `COMMIT AND CHAIN`,
    /// `ROLLBACK AND CHAIN`, `SET autocommit=1` then START, in nested
    /// calls too), which leaves the server "in a transaction": the status
    /// flag cannot tell. A savepoint with a random name can: every end of a
    /// transaction drops its savepoints, and the procedure cannot name this
    /// one. [`Lease::check_still_open`] releases it after the CALL; when it
    /// is gone, the transaction the gateway began is over.
    pub async fn before_statement(
        &mut self,
        reads_leftovers: bool,
        calls: bool,
    ) -> Result<(), GatewayError> {
        let first = !self
            .transaction
            .has_run_statement
            .swap(true, Ordering::SeqCst);
        if self.start_unconfirmed() {
            // From here on, a command written whole is this call's (see
            // `check_still_open`).
            self.conn().forget_statements_sent();
        }
        if reads_leftovers && first {
            self.conn().query_drop(CLEAR_LEFTOVERS).await?;
        }
        self.call_marker = None;
        if calls {
            let marker = call_marker_name();
            self.conn()
                .query_drop(format!("SAVEPOINT {marker}"))
                .await?;
            self.call_marker = Some(marker);
        }
        Ok(())
    }

    /// Asks the server whether the transaction is still open after a
    /// statement ran in it, and says so in `outcome`:
    ///
    /// - after a success, a transaction that is gone was ended by the
    ///   statement (an implicit commit, a COMMIT inside a stored procedure):
    ///   [`GatewayError::TransactionEndedByStatement`];
    /// - after a database error, [`GatewayError::InTransaction`] says whether
    ///   the transaction is still open (a lock wait timeout, a duplicate
    ///   key... undo only the statement, as in MySQL) or was rolled back (a
    ///   deadlock; a lock wait timeout with `innodb_rollback_on_timeout`); a
    ///   failed statement after which the transaction is gone otherwise (DDL
    ///   commits before it runs, even when it then fails) ended it:
    ///   `TransactionEndedByStatement`.
    ///
    /// The server is the judge, whatever the SQL guard let through or the
    /// error code suggests. Costs nothing after a success (the status comes
    /// with the result's final OK packet); after a failure it costs a
    /// COM_PING, whose OK packet carries the server's status flags. A lost
    /// connection, or a call stopped by its time limit, is not asked about:
    /// the transaction ends with it.
    ///
    /// After a CALL, the savepoint [`Lease::before_statement`] set is
    /// released (a round trip): when it is gone, the procedure ended the
    /// transaction, whatever the status flag says.
    ///
    /// A transaction whose START TRANSACTION left with this call's first
    /// command (see [`Lease::start_unconfirmed`]) is judged the same way: if
    /// it failed, the statement ran on its own in autocommit mode, which the
    /// status flags show (no transaction open): a success was committed
    /// (`TransactionEndedByStatement`, saying so). A connection lost after
    /// the statement was written whole and before START's answer was read
    /// leaves the statement's outcome unknown.
    pub async fn check_still_open<T>(
        &mut self,
        outcome: Result<T, GatewayError>,
    ) -> Result<T, GatewayError> {
        let marker = self.call_marker.take();
        let known = match &outcome {
            // Sent whole (see `before_statement`): it may have run.
            Err(e)
                if e.connection_lost()
                    && self.start_unconfirmed()
                    && self.conn().statement_sent() =>
            {
                return Err(GatewayError::StatementOutcomeUnknown(format!(
                    "{e}; the connection was lost before the database confirmed that the transaction began, so the statement may have run (and committed) on its own"
                )));
            }
            Err(e) if e.connection_lost() || e.is_deadline() || e.ended_by_statement() => {
                return outcome;
            }
            // Asked already (a batch's statement).
            Err(GatewayError::InTransaction { .. }) => return outcome,
            _ if marker.is_some() => {
                let marker = marker.expect("checked");
                return match self.release_call_marker(&marker).await {
                    Ok(true) => outcome.map_err(|e| GatewayError::InTransaction {
                        open: true,
                        source: Box::new(e),
                    }),
                    Ok(false) => Err(self.ended_by_call(outcome)),
                    Err(e) => Err(e),
                };
            }
            Ok(_) => transaction_open(self.conn()),
            Err(_) => None,
        };
        let open = match known {
            Some(open) => open,
            None => match self.conn().ping().await {
                Ok(()) => transaction_open(self.conn()).unwrap_or(false),
                // The connection broke: the transaction ends with it (see
                // `release`).
                Err(e) => return Err(GatewayError::Database(e)),
            },
        };
        let error = match outcome {
            Ok(_) if open => return outcome,
            Err(e) if open => {
                return Err(GatewayError::InTransaction {
                    open: true,
                    source: Box::new(e),
                });
            }
            Err(e) if e.rolls_back() => {
                tracing::info!(transaction_id = %self.transaction.id, error = %e, "the database rolled the transaction back");
                return Err(GatewayError::InTransaction {
                    open: false,
                    source: Box::new(e),
                });
            }
            Ok(_) => None,
            Err(e) => Some(e),
        };
        if let Some(start) = self.conn().deferred_query_error() {
            let start = start.to_string();
            tracing::warn!(transaction_id = %self.transaction.id, error = %start, "the transaction did not begin on the database");
            return Err(GatewayError::TransactionEndedByStatement(match error {
                None => format!(
                    "the transaction did not begin on the database (START TRANSACTION failed: {start}): this statement ran on its own in autocommit mode and was committed, and the transaction is over"
                ),
                Some(e) => format!(
                    "the transaction did not begin on the database (START TRANSACTION failed: {start}): this statement ran on its own in autocommit mode and failed ({e}), so nothing was committed; the transaction is over"
                ),
            }));
        }
        tracing::warn!(transaction_id = %self.transaction.id, "a statement ended the transaction on the database");
        Err(GatewayError::TransactionEndedByStatement(match error {
            None => "this statement ended the transaction on the database (it commits implicitly, or ran COMMIT inside a stored procedure): the transaction's earlier statements and this one were committed, and the transaction is over".to_string(),
            Some(e) => format!(
                "this statement failed ({e}) after ending the transaction on the database (it commits implicitly before it runs): the transaction's earlier statements were committed, and the transaction is over"
            ),
        }))
    }

    /// Releases the savepoint set before a CALL: true when it was still
    /// there (the transaction is the one the gateway began), false when the
    /// server no longer knows it (the transaction ended in the CALL).
    async fn release_call_marker(&mut self, marker: &str) -> Result<bool, GatewayError> {
        match self
            .conn()
            .query_drop(format!("RELEASE SAVEPOINT {marker}"))
            .await
        {
            // The status flag too: a transaction that ended without a new
            // one has no savepoints, but say so for both.
            Ok(()) => Ok(transaction_open(self.conn()).unwrap_or(false)),
            // 1305: "SAVEPOINT … does not exist".
            Err(mysql_async::Error::Server(e)) => {
                if e.code != 1305 {
                    tracing::warn!(transaction_id = %self.transaction.id, error = %e, "cannot release the savepoint set before a CALL: taking the transaction as ended");
                }
                Ok(false)
            }
            Err(e) => Err(GatewayError::Database(e)),
        }
    }

    /// The error for a CALL after which the transaction the gateway began
    /// is gone.
    fn ended_by_call<T>(&self, outcome: Result<T, GatewayError>) -> GatewayError {
        tracing::warn!(transaction_id = %self.transaction.id, "a CALL ended the transaction on the database");
        let what = "the procedure ended the transaction on the database (COMMIT, ROLLBACK, COMMIT or ROLLBACK AND CHAIN, START TRANSACTION, SET autocommit = 1, or a statement that commits implicitly, in it or in a procedure it called): the transaction's earlier statements were committed or rolled back as the procedure did, whatever it ran after that is rolled back, and the transaction is over";
        GatewayError::TransactionEndedByStatement(match outcome {
            Ok(_) => format!("this CALL ended the transaction: {what}"),
            Err(e) => format!("this CALL failed ({e}) after it ended the transaction: {what}"),
        })
    }

    /// Ends the call: the transaction stays open for the next call, unless
    /// `outcome` is an error that ends it (a deadlock, a lost connection, a
    /// statement that ended it: see `check_still_open`) or its maximum
    /// lifetime has passed meanwhile.
    pub fn release<T>(mut self, outcome: &Result<T, GatewayError>) {
        match outcome {
            Err(GatewayError::StatementOutcomeUnknown(_)) => {
                // Its connection is gone, and what it did is not known.
                self.mark_ended(EndReason::CommitOutcomeUnknown);
                self.let_go(false, GiveBack::Discard);
            }
            Err(e) if e.ended_by_statement() => {
                // Committed, not rolled back; the session may hold anything
                // (a procedure may even have turned autocommit off): close it.
                self.mark_ended(EndReason::EndedByStatement);
                self.let_go(false, GiveBack::Discard);
            }
            Err(e) if e.ends_transaction() => self.end(EndReason::DatabaseAborted),
            _ if Instant::now() >= self.transaction.expires_at => self.end(EndReason::MaxLifetime),
            _ => {
                let conn = self.conn.take().expect("present until the lease ends");
                let mut guard = self.guard.take().expect("present until the lease ends");
                *guard = TxState::Open(conn);
                self.transaction.touch();
                drop(guard);
                self.transactions.note_change();
            }
        }
    }

    /// Gives up on a call stopped half-way (time limit): the statement that
    /// may still run is killed and the transaction ends as interrupted.
    pub fn abandon(self) {
        drop(self);
    }

    /// Where to record how the transaction ended once a COMMIT whose
    /// outcome was unknown is settled ([`Transactions::settled`]).
    pub fn settlement(&self) -> (Transactions, Arc<Transaction>) {
        (self.transactions.clone(), self.transaction.clone())
    }

    /// Commits and ends the transaction.
    ///
    /// Once COMMIT is sent, its outcome is recorded whatever happens to the
    /// call: run this in a task of its own (see the Commit RPC), so that a
    /// client leaving mid-COMMIT does not drop it, and a later call on the id
    /// learns whether it committed.
    ///
    /// Returns the replication position that contains the transaction's
    /// writes when the database has replicas (see `Backend::commit_tokens`).
    pub async fn commit(mut self) -> Result<Option<String>, GatewayError> {
        self.transaction.committing.store(true, Ordering::SeqCst);
        if self.conn().cancel_deferred_query() {
            // Nothing ran in it: its START TRANSACTION was never sent.
            self.mark_ended(EndReason::Committed);
            self.let_go(false, GiveBack::Clean);
            return Ok(None);
        }
        let result = self.conn().query_drop("COMMIT").await;
        self.committed(result).await
    }

    /// Commits and ends the transaction as [`Lease::commit`] does, with
    /// `statement` (one statement without a result set: the outcomes
    /// table's INSERT) sent in the same query, before the COMMIT. The server
    /// runs the COMMIT only if `statement` succeeded (a multi-statement
    /// query stops at its first error): when it failed, nothing was
    /// committed, the transaction is still open, and the lease comes back
    /// with the error. Once the query is sent, a lost connection leaves the
    /// COMMIT's outcome unknown.
    pub async fn commit_after(
        mut self,
        statement: &str,
    ) -> Result<Result<Option<String>, GatewayError>, (Lease, mysql_async::Error)> {
        self.transaction.committing.store(true, Ordering::SeqCst);
        let query = format!("{statement};COMMIT");
        let result = match self.conn().query_iter(query).await {
            // The statement's result: the COMMIT's comes next.
            Ok(result) => result.drop_result().await,
            Err(e) if !crate::errors::mysql_codes::connection_lost(&e) => {
                self.transaction.committing.store(false, Ordering::SeqCst);
                return Err((self, e));
            }
            Err(e) => Err(e),
        };
        Ok(self.committed(result).await)
    }

    /// Ends the transaction after its COMMIT answered `result`.
    async fn committed(
        mut self,
        result: Result<(), mysql_async::Error>,
    ) -> Result<Option<String>, GatewayError> {
        match result {
            Ok(()) => {
                let token = if self.transaction.backend.commit_tokens() {
                    Backend::last_write_position(self.conn()).await
                } else {
                    None
                };
                self.mark_ended_with(EndReason::Committed, token.as_deref());
                self.let_go(false, GiveBack::Clean);
                Ok(token)
            }
            // The connection lost, or ended by the server (killed, shutting
            // down): COMMIT may have completed before the error.
            Err(e) if crate::errors::mysql_codes::connection_lost(&e) => {
                let detail = e.to_string();
                // The primary may be gone: checked now (see `note_failure`).
                self.transaction
                    .backend
                    .note_failure(&GatewayError::Database(e));
                self.mark_ended(EndReason::CommitOutcomeUnknown);
                self.let_go(false, GiveBack::Discard);
                Err(GatewayError::CommitOutcomeUnknown(detail))
            }
            Err(e) => {
                let error = GatewayError::Database(e);
                // 1290: the primary was demoted under the transaction.
                self.transaction.backend.note_failure(&error);
                // A failed COMMIT leaves nothing committed: roll back what is left.
                self.end(EndReason::DatabaseAborted);
                Err(error)
            }
        }
    }

    /// Rolls back and ends the transaction. A connection that fails to roll
    /// back is closed, which rolls back on the server's side.
    pub async fn rollback(mut self) {
        if self.conn().cancel_deferred_query() {
            // Nothing ran in it: its START TRANSACTION was never sent.
            self.mark_ended(EndReason::RolledBack);
            self.let_go(false, GiveBack::Clean);
            return;
        }
        match self.conn().query_drop("ROLLBACK").await {
            Ok(()) => {
                self.mark_ended(EndReason::RolledBack);
                self.let_go(false, GiveBack::Clean);
            }
            Err(e) => {
                tracing::warn!(transaction_id = %self.transaction.id, error = %e, "rollback failed; closing the connection");
                self.mark_ended(EndReason::RolledBack);
                self.let_go(false, GiveBack::Discard);
            }
        }
    }

    /// Ends the transaction with work possibly pending: roll back, then give back.
    fn end(&mut self, reason: EndReason) {
        self.mark_ended(reason);
        self.let_go(true, GiveBack::Clean);
    }

    fn let_go(&mut self, roll_back_first: bool, how: GiveBack) {
        if let Some(conn) = self.conn.take() {
            self.transaction.let_go(conn, roll_back_first, how);
        }
    }

    fn mark_ended(&mut self, reason: EndReason) {
        self.mark_ended_with(reason, None);
    }

    /// Like `mark_ended`, remembering the commit token of a commit.
    fn mark_ended_with(&mut self, reason: EndReason, commit_token: Option<&str>) {
        if let Some(mut guard) = self.guard.take() {
            *guard = TxState::Ended(reason);
        }
        self.transactions
            .forget(&self.transaction, reason, commit_token);
        tracing::debug!(transaction_id = %self.transaction.id, %reason, "transaction ended");
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.conn.is_none() {
            return;
        }
        // The call was dropped mid-way: the transaction ends as interrupted,
        // the statement that may still run is killed, and the pool's reset
        // rolls back whatever it did.
        self.mark_ended(EndReason::CallInterrupted);
        self.let_go(false, GiveBack::Running);
    }
}

/// A savepoint name nobody else can guess (see [`Lease::before_statement`]);
/// clients' SAVEPOINT names cannot start with `sqlgate_` (see the guard).
fn call_marker_name() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sqlgate_call_{hex}")
}

/// A read that returns nothing: afterwards `FOUND_ROWS()` is 0 and
/// `ROW_COUNT()` is -1, as in a fresh session.
pub const CLEAR_LEFTOVERS: &str = "SELECT 1 FROM DUAL WHERE FALSE";

/// Whether the connection's last OK packet says a transaction is open; None
/// when there is no OK packet to tell (the last reply was an error).
pub(crate) fn transaction_open(conn: &Conn) -> Option<bool> {
    conn.last_ok_packet().map(|ok| {
        ok.status_flags()
            .contains(StatusFlags::SERVER_STATUS_IN_TRANS)
    })
}
