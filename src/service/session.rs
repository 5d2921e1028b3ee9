//! Where a call's statement runs: a pooled connection in autocommit mode, or
//! an open transaction (possibly begun by this very call).
use mysql_async::{Conn, prelude::Queryable};

use crate::{
    api::TransactionOptions,
    auth::{Principal, Role},
    database::{Database, PooledConn},
    errors::GatewayError,
    transactions::{Lease, Transactions},
};

/// The connection a call runs on, and how to let go of it afterwards.
pub enum Session {
    /// A pooled connection, autocommit.
    Autocommit(PooledConn),
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
    /// for. A read-only principal's autocommit connection is put in READ ONLY
    /// mode (the reset on its return to the pool undoes that).
    pub async fn open(
        database: &Database,
        transactions: &Transactions,
        transaction_id: &str,
        begin: Option<&TransactionOptions>,
        principal: &Principal,
    ) -> Result<Session, GatewayError> {
        match (transaction_id.is_empty(), begin) {
            (false, Some(_)) => Err(GatewayError::InvalidRequest(
                "set either transaction_id or begin, not both".into(),
            )),
            (false, None) => Ok(Session::Transaction {
                lease: transactions.checkout(transaction_id, principal).await?,
                begun_here: false,
            }),
            (true, Some(options)) => Ok(Session::Transaction {
                lease: transactions.begin(Some(options), principal).await?,
                begun_here: true,
            }),
            (true, None) => {
                let mut pooled = PooledConn::acquire(database).await?;
                if principal.role == Role::ReadOnly {
                    pooled
                        .conn()
                        .query_drop("SET SESSION TRANSACTION READ ONLY")
                        .await?;
                }
                Ok(Session::Autocommit(pooled))
            }
        }
    }

    /// The connection to run on.
    pub fn conn(&mut self) -> &mut Conn {
        match self {
            Session::Autocommit(pooled) => pooled.conn(),
            Session::Transaction { lease, .. } => lease.conn(),
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

    /// Lets go after the call. A transaction begun by a call that failed is
    /// rolled back: its client never learned its id. A call stopped by its
    /// time limit, or a stream whose client stalled, is abandoned.
    pub async fn close<T>(self, outcome: &Result<T, GatewayError>) {
        if matches!(
            outcome,
            Err(GatewayError::DeadlineExceeded(_) | GatewayError::StreamStalled(_))
        ) {
            // Stopped half-way: dropping kills the statement and, in a
            // transaction, ends it as interrupted.
            drop(self);
            return;
        }
        match self {
            Session::Autocommit(pooled) => pooled.release(),
            Session::Transaction {
                lease,
                begun_here: true,
            } if outcome.is_err() => lease.rollback().await,
            Session::Transaction { lease, .. } => lease.release(outcome),
        }
    }
}
