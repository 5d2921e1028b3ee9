//! A call's hold on a transaction's connection.
use std::{sync::Arc, time::Instant};

use mysql_async::{Conn, prelude::Queryable};
use tokio::sync::OwnedMutexGuard;

use super::{Transaction, Transactions, TxState, roll_back_and_release};
use crate::{
    database::Database,
    errors::{EndReason, GatewayError},
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
        }
    }

    /// The transaction this lease is on.
    pub fn transaction(&self) -> &Transaction {
        &self.transaction
    }

    /// The database the transaction runs on.
    pub fn database(&self) -> &Database {
        self.transactions.database()
    }

    /// The transaction's connection.
    pub fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("the connection is present until the lease ends")
    }

    /// Ends the call: the transaction stays open for the next call, unless
    /// `outcome` is an error that ends it (deadlock, lost connection...) or
    /// its maximum lifetime has passed meanwhile.
    pub fn release<T>(mut self, outcome: &Result<T, GatewayError>) {
        if matches!(outcome, Err(e) if e.ends_transaction()) {
            self.end(EndReason::DatabaseAborted);
        } else if Instant::now() >= self.transaction.expires_at {
            self.end(EndReason::MaxLifetime);
        } else {
            let conn = self.conn.take().expect("present until the lease ends");
            let mut guard = self.guard.take().expect("present until the lease ends");
            *guard = TxState::Open(conn);
            self.transaction.touch();
        }
    }

    /// Gives up on a call stopped half-way (time limit): the statement that
    /// may still run is killed and the transaction ends as interrupted.
    pub fn abandon(self) {
        drop(self);
    }

    /// Commits and ends the transaction.
    pub async fn commit(mut self) -> Result<(), GatewayError> {
        let result = self.conn().query_drop("COMMIT").await;
        match result {
            Ok(()) => {
                self.finish(EndReason::Committed);
                Ok(())
            }
            Err(e) if e.is_fatal() => {
                self.end(EndReason::CommitOutcomeUnknown);
                Err(GatewayError::CommitOutcomeUnknown(e.to_string()))
            }
            Err(e) => {
                // A failed COMMIT leaves nothing committed: roll back what is left.
                self.end(EndReason::DatabaseAborted);
                Err(GatewayError::Database(e))
            }
        }
    }

    /// Rolls back and ends the transaction. A connection that fails to roll
    /// back is closed, which rolls back on the server's side.
    pub async fn rollback(mut self) {
        match self.conn().query_drop("ROLLBACK").await {
            Ok(()) => self.finish(EndReason::RolledBack),
            Err(e) => {
                tracing::warn!(transaction_id = %self.transaction.id, error = %e, "rollback failed; closing the connection");
                self.end(EndReason::RolledBack);
            }
        }
    }

    /// Ends the transaction with its connection clean: back to the pool.
    fn finish(&mut self, reason: EndReason) {
        self.mark_ended(reason);
        drop(self.conn.take());
    }

    /// Ends the transaction with work possibly pending: roll back, then release.
    fn end(&mut self, reason: EndReason) {
        self.mark_ended(reason);
        if let Some(conn) = self.conn.take() {
            tokio::spawn(roll_back_and_release(conn));
        }
    }

    fn mark_ended(&mut self, reason: EndReason) {
        if let Some(mut guard) = self.guard.take() {
            *guard = TxState::Ended(reason);
        }
        self.transactions.forget(&self.transaction, reason);
        tracing::debug!(transaction_id = %self.transaction.id, %reason, "transaction ended");
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // The call was dropped mid-way: the transaction ends as interrupted,
        // and the pool's reset rolls back whatever it did.
        self.mark_ended(EndReason::CallInterrupted);
        self.transactions.database().abandon(conn);
    }
}
