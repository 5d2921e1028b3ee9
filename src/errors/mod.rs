//! The gateway's error type. Every layer reports failures as a [`GatewayError`];
//! [`status`] is the one place that turns them into gRPC statuses, including
//! the ones tonic produces itself (`service::respond` hands those to it).
use std::fmt;

use crate::values::ValueError;

pub mod mysql_codes;
pub mod status;

/// Why a transaction was ended by the gateway rather than by its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Committed by the client.
    Committed,
    /// Rolled back by the client.
    RolledBack,
    /// Rolled back because no call used it for longer than its idle timeout.
    IdleTimeout,
    /// Rolled back because it lived longer than the maximum lifetime.
    MaxLifetime,
    /// Rolled back because a call on it was cancelled or its client went away mid-call.
    CallInterrupted,
    /// Ended by the database: a deadlock, a lost connection, or a statement
    /// error after which the server had no transaction any more (a lock wait
    /// timeout with `innodb_rollback_on_timeout`).
    DatabaseAborted,
    /// Rolled back because the gateway is shutting down.
    Shutdown,
    /// Its server stopped being the writable primary (a failover): what it
    /// had done was not committed by the gateway.
    PrimaryChanged,
    /// A statement ended it on the server (an implicit commit, a stored
    /// procedure's COMMIT...): what ran before was committed, not rolled back.
    EndedByStatement,
    /// The connection broke while COMMIT was in flight: it may or may not
    /// have committed.
    CommitOutcomeUnknown,
}

impl EndReason {
    /// The metric label of this end (`sqlgate_transactions_ended_total`).
    pub fn label(self) -> &'static str {
        match self {
            EndReason::Committed => "committed",
            EndReason::RolledBack => "rolled_back",
            EndReason::IdleTimeout => "expired_idle",
            EndReason::MaxLifetime => "expired_lifetime",
            EndReason::CallInterrupted => "aborted_interrupted",
            EndReason::DatabaseAborted => "aborted_database",
            EndReason::Shutdown => "aborted_shutdown",
            EndReason::PrimaryChanged => "aborted_primary_changed",
            EndReason::EndedByStatement => "ended_by_statement",
            EndReason::CommitOutcomeUnknown => "commit_outcome_unknown",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndReason::Committed => "it was already committed",
            EndReason::RolledBack => "it was already rolled back",
            EndReason::IdleTimeout => {
                "it expired: it was idle longer than its idle timeout and was rolled back"
            }
            EndReason::MaxLifetime => {
                "it expired: it lived longer than the maximum transaction lifetime and was rolled back"
            }
            EndReason::CallInterrupted => {
                "a call on it was cancelled, ran past its time limit or lost its client mid-statement, so it was rolled back"
            }
            EndReason::DatabaseAborted => {
                "the database rolled it back (a deadlock, a lost connection, or an error after which the server had no transaction)"
            }
            EndReason::Shutdown => "the gateway is shutting down and rolled it back",
            EndReason::PrimaryChanged => {
                "its database server stopped being the writable primary (a failover): it was not committed; rerun it, it goes to the new primary"
            }
            EndReason::EndedByStatement => {
                "a statement ended it on the database (an implicit commit, or a COMMIT inside a stored procedure): what it had done before was committed"
            }
            EndReason::CommitOutcomeUnknown => {
                "the connection to the database failed during its COMMIT: it may or may not have committed"
            }
        })
    }
}

/// Everything that can make a call fail.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The request itself is malformed or not allowed.
    #[error("{0}")]
    InvalidRequest(String),

    /// A parameter could not be converted, or a result cell could not be.
    #[error(transparent)]
    Value(#[from] ValueError),

    /// The database reported an error (or the connection to it failed).
    #[error("{}", describe_mysql_error(.0))]
    Database(#[from] mysql_async::Error),

    /// The connection failed while COMMIT was in flight: it may or may not have
    /// committed. Holds what went wrong, in words.
    #[error(
        "the connection to the database failed during COMMIT; the transaction may or may not have committed: {0}"
    )]
    CommitOutcomeUnknown(String),

    /// The connection failed (or the server ended it) while a statement
    /// ran in autocommit mode, where it commits by itself: it may or may not
    /// have been applied. Holds what went wrong, in words.
    #[error(
        "the connection to the database failed while the statement ran in autocommit mode, where it commits by itself; it may or may not have been applied: {0}"
    )]
    StatementOutcomeUnknown(String),

    /// The call's time limit passed and the gateway could not learn that
    /// its autocommit statement (or its COMMIT) was stopped before it
    /// committed: it may or may not have been applied. Holds what happened,
    /// in words.
    #[error(
        "{0}; it may or may not have been applied: check before retrying, or retry with the same request_id"
    )]
    OutcomeUnknownAfterDeadline(String),

    /// An ExecuteStream's rows were cut (by the client's deadline, or a
    /// client that stopped reading: what, in words) after the server had
    /// completed its autocommit statement: whatever it wrote is committed,
    /// but the client has only part of its result (UNKNOWN /
    /// COMMIT_OUTCOME_UNKNOWN: no answer says "done" without the rows).
    #[error(
        "the server completed the statement, and committed whatever it wrote, but {0} before all its rows were sent: check what it did before retrying"
    )]
    CompletedButCut(&'static str),

    /// A statement the gateway never runs, for any caller: server
    /// administration, account management, file access (PERMISSION_DENIED).
    #[error("{0}")]
    StatementNotAllowed(String),

    /// A read-only principal sent a statement that is not a read.
    #[error("{0}")]
    ReadOnlyStatement(String),

    /// A statement that would commit the open transaction implicitly (DDL,
    /// account management...) was refused inside a transaction.
    #[error("{0}")]
    ImplicitCommit(String),

    /// A statement ended the transaction on the server (an implicit commit, a
    /// procedure's COMMIT): the transaction is over, and what it did before
    /// was committed. Holds the details.
    #[error("{0}")]
    TransactionEndedByStatement(String),

    /// No transaction with this id is open (never existed, or committed/rolled back).
    #[error("transaction not found{}", .0.map(|r| format!(": {r}")).unwrap_or_default())]
    TransactionNotFound(Option<EndReason>),

    /// The transaction was rolled back by the gateway because a timer ran out.
    #[error("transaction {0}")]
    TransactionExpired(EndReason),

    /// The transaction was ended by a failure; retry the whole transaction.
    #[error("transaction aborted: {0}; retry the whole transaction")]
    TransactionAborted(EndReason),

    /// A unary result exceeded the server's caps.
    #[error(
        "result too large: more than {limit}; use ExecuteStream for large results, or set max_rows"
    )]
    ResultTooLarge {
        /// Which limit, in words.
        limit: String,
    },

    /// Every transaction slot stayed taken for the whole acquire timeout.
    #[error(
        "too many open transactions (limit {limit}); commit or roll back open ones, or retry later"
    )]
    TooManyTransactions {
        /// The --max-transactions value.
        limit: usize,
    },

    /// The principal already has its --max-transactions-per-principal open.
    #[error(
        "too many open transactions for this principal (limit {limit}); commit or roll back open ones"
    )]
    TooManyTransactionsForPrincipal {
        /// The --max-transactions-per-principal value.
        limit: usize,
    },

    /// A read-only principal tried to write.
    #[error("principal {principal} is read-only: {source}")]
    ReadOnlyPrincipal {
        /// The principal's name.
        principal: String,
        /// The database's refusal.
        source: Box<GatewayError>,
    },

    /// The database account holds global administrative privileges and
    /// --allow-admin-account is not given: no call is served on it.
    #[error("{0}")]
    AdminAccount(String),

    /// None of the servers of --database-url is a writable primary now.
    #[error("{0}")]
    NoWritablePrimary(String),

    /// No pooled connection became free within the acquire timeout.
    #[error("no database connection became free within {0:?}; the pool is exhausted, retry later")]
    PoolExhausted(std::time::Duration),

    /// The call's time limit (client deadline or --statement-timeout) passed;
    /// its statement was stopped.
    #[error(
        "the call ran longer than its time limit of {0:?} (the client's deadline or --statement-timeout); its statement was stopped"
    )]
    DeadlineExceeded(std::time::Duration),

    /// An ExecuteStream client took no message for --stream-stall-timeout:
    /// the stream was ended and its statement stopped.
    #[error(
        "the client took no message of the stream for {0:?} (--stream-stall-timeout); the stream was ended and its statement stopped"
    )]
    StreamStalled(std::time::Duration),

    /// A Transaction stream's client took no response for
    /// --stream-stall-timeout before the transaction ended: the stream was
    /// ended and the transaction rolled back.
    #[error(
        "the client took no response of the Transaction stream for {0:?} (--stream-stall-timeout); the stream was ended and its transaction rolled back"
    )]
    TransactionStreamStalled(std::time::Duration),

    /// Requests were being received up to a limit (all of them, those of
    /// the caller's connection, or of its principal) for the whole acquire
    /// timeout.
    #[error("too many requests being received at once ({flag} {limit}); retry with backoff")]
    TooManyRequests {
        /// The flag of the limit that was reached, e.g. --max-concurrent-requests.
        flag: &'static str,
        /// Its value.
        limit: usize,
    },

    /// A request being received did not arrive whole within
    /// --request-read-timeout: its client sent part of it and stalled.
    #[error(
        "the request did not arrive whole within {0:?} (--request-read-timeout); send each message without pausing"
    )]
    RequestReadTimeout(std::time::Duration),

    /// The gateway instance that owns the transaction cannot be reached, or
    /// left the fleet: its transactions were rolled back by the database when
    /// its connections closed (ABORTED: rerun the transaction).
    #[error(
        "the gateway instance that owns this transaction ({owner}) is unavailable ({detail}); its transactions are rolled back when its connections close: rerun the transaction"
    )]
    TransactionOwnerUnavailable {
        /// The owner's address.
        owner: std::net::SocketAddr,
        /// What went wrong, in words.
        detail: String,
    },

    /// The client's deadline passed before the instance a call was forwarded
    /// to answered. The owner goes on as with any call cut by its deadline:
    /// a Commit once sent runs to its end, a Rollback still rolls back.
    #[error(
        "the call's deadline ({limit:?}) passed before the gateway instance that owns the transaction ({owner}) answered; {}",
        if *.commit {
            "its COMMIT may still complete there: call Commit again to learn the outcome"
        } else {
            "the call goes on there as a call cut by its deadline does (a Rollback still rolls back)"
        }
    )]
    ForwardedDeadlineExceeded {
        /// The owner's address.
        owner: std::net::SocketAddr,
        /// The client's deadline.
        limit: std::time::Duration,
        /// True when the call may commit.
        commit: bool,
    },

    /// A forwarded call's metadata would be larger than instances accept.
    #[error(
        "request metadata too large to forward to the instance that owns the transaction: {}at most {limit} bytes with the gateway's own headers (HTTP/2 header list size: names, values and 32 bytes per entry)",
        if *.size > 0 { format!("{} bytes, ", .size) } else { String::new() }
    )]
    MetadataTooLarge {
        /// The metadata's size (0 when the owner refused it, unmeasured).
        size: usize,
        /// The most a forwarded call may carry.
        limit: usize,
    },

    /// The gateway is draining for shutdown and takes no new work.
    #[error("the gateway is shutting down; retry on another instance")]
    ShuttingDown,

    /// The call has no valid credentials (bearer token or client certificate).
    #[error("{0}")]
    Unauthenticated(String),

    /// The request could not be decoded: bad gRPC framing (compression flag,
    /// truncated message) or bytes that are not protobuf of the call's type.
    #[error("malformed request: {0}")]
    MalformedRequest(String),

    /// A request message is larger than --max-request-bytes.
    #[error(
        "request too large: {detail}the gateway accepts request messages of at most {limit} bytes (--max-request-bytes)"
    )]
    RequestTooLarge {
        /// The --max-request-bytes value.
        limit: usize,
        /// The request's size in words ("the message is 2000 bytes; "), or empty.
        detail: String,
    },

    /// A status the gRPC layer (tonic) answered before the call reached the
    /// gateway's code, other than the ones above: an unknown method, an
    /// unsupported `grpc-encoding`... Keeps its code.
    #[error("{1}")]
    Transport(tonic::Code, String),

    /// A statement failed inside a transaction; the server, asked after the
    /// error, said whether the transaction is still open (a lock wait
    /// timeout, a duplicate key... undo only the statement, as in MySQL) or
    /// is gone (a deadlock: rolled back). ErrorInfo metadata
    /// `transaction_open` says which.
    #[error("{source}; {}", if *.open {
        "the transaction is still open (only this statement was undone): continue it or roll it back"
    } else {
        "the database rolled the whole transaction back: rerun it"
    })]
    InTransaction {
        /// True when the transaction is still open.
        open: bool,
        /// What went wrong.
        source: Box<GatewayError>,
    },

    /// A request_id already recorded for another call (another statement,
    /// other parameters, another kind of call): nothing ran.
    #[error("{0}")]
    RequestIdReused(String),

    /// The outcomes table of request ids cannot be used (it is missing and
    /// cannot be created, or the account may not write it): nothing ran or
    /// was committed.
    #[error("{0}")]
    OutcomesUnavailable(String),

    /// A statement of an ExecuteBatch failed.
    #[error("statement {statement_index} of the batch failed: {source}")]
    InBatch {
        /// 0-based index of the failing statement.
        statement_index: usize,
        /// What went wrong.
        source: Box<GatewayError>,
    },
}

/// A database error in words: the server's own message with its numbers, or
/// what went wrong with the connection.
fn describe_mysql_error(error: &mysql_async::Error) -> String {
    match error {
        mysql_async::Error::Server(e) => {
            format!(
                "{} (MySQL error {}, SQLSTATE {})",
                e.message, e.code, e.state
            )
        }
        mysql_async::Error::Io(e) => {
            format!("lost or could not open the connection to the database: {e}")
        }
        mysql_async::Error::Driver(mysql_async::DriverError::StmtParamsMismatch {
            required,
            supplied,
        }) => placeholder_mismatch(usize::from(*required), *supplied),
        other => other.to_string(),
    }
}

/// The message for parameters that do not match a statement's placeholders.
pub fn placeholder_mismatch(placeholders: usize, params: usize) -> String {
    format!(
        "the statement has {placeholders} placeholder{} but {params} parameter{} {} sent",
        if placeholders == 1 { "" } else { "s" },
        if params == 1 { "" } else { "s" },
        if params == 1 { "was" } else { "were" },
    )
}

impl GatewayError {
    /// The server error number, when the database reported one.
    pub fn mysql_errno(&self) -> Option<u16> {
        match self {
            GatewayError::Database(mysql_async::Error::Server(e)) => Some(e.code),
            GatewayError::InBatch { source, .. } => source.mysql_errno(),
            GatewayError::InTransaction { source, .. } => source.mysql_errno(),
            GatewayError::ReadOnlyPrincipal { source, .. } => source.mysql_errno(),
            _ => None,
        }
    }

    /// True when a statement ended the transaction on the server (see
    /// [`GatewayError::TransactionEndedByStatement`]).
    pub fn ended_by_statement(&self) -> bool {
        match self {
            GatewayError::TransactionEndedByStatement(_) => true,
            GatewayError::InBatch { source, .. } => source.ended_by_statement(),
            GatewayError::InTransaction { source, .. } => source.ended_by_statement(),
            _ => false,
        }
    }

    /// True when the call's work was stopped half-way: its time limit
    /// passed, or its stream's client stopped reading.
    pub fn is_deadline(&self) -> bool {
        match self {
            GatewayError::DeadlineExceeded(_)
            | GatewayError::StreamStalled(_)
            | GatewayError::TransactionStreamStalled(_) => true,
            GatewayError::InBatch { source, .. } => source.is_deadline(),
            GatewayError::InTransaction { source, .. } => source.is_deadline(),
            _ => false,
        }
    }

    /// True when the error means the transaction it happened in is gone and
    /// must be retried whole: the transaction is ended by the gateway. The
    /// server's answer when it was asked ([`GatewayError::InTransaction`]);
    /// otherwise judged from the error alone, erring on the side of ending.
    pub fn ends_transaction(&self) -> bool {
        match self {
            GatewayError::Database(e) => mysql_codes::ends_transaction(e),
            GatewayError::InBatch { source, .. } => source.ends_transaction(),
            GatewayError::InTransaction { open, .. } => !open,
            _ => false,
        }
    }

    /// True when the server says the statement was interrupted: killed
    /// (1317, `KILL QUERY`) or stopped by the server's own time limit
    /// (1969, 3024).
    pub fn interrupted(&self) -> bool {
        matches!(self.mysql_errno(), Some(1317 | 1969 | 3024))
    }

    /// True when the connection to the database is lost (or unusable): the
    /// transaction on it is gone, and there is no point asking the server.
    pub fn connection_lost(&self) -> bool {
        match self {
            GatewayError::Database(e) => mysql_codes::connection_lost(e),
            GatewayError::InBatch { source, .. } | GatewayError::InTransaction { source, .. } => {
                source.connection_lost()
            }
            _ => false,
        }
    }

    /// True for a database error that rolls back the whole transaction when
    /// the server has none after it (deadlock, lock wait timeout with
    /// `innodb_rollback_on_timeout`, SQLSTATE class 40), as opposed to a
    /// statement that committed it implicitly before failing.
    pub fn rolls_back(&self) -> bool {
        match self {
            GatewayError::Database(e) => mysql_codes::rolls_back(e),
            GatewayError::InBatch { source, .. } | GatewayError::InTransaction { source, .. } => {
                source.rolls_back()
            }
            _ => false,
        }
    }

    /// The same error, saying that its transaction was rolled back since
    /// (the gateway rolls back a transaction that a failed call began).
    pub fn transaction_rolled_back(self) -> GatewayError {
        match self {
            GatewayError::InTransaction { source, .. } => GatewayError::InTransaction {
                open: false,
                source,
            },
            GatewayError::InBatch {
                statement_index,
                source,
            } => GatewayError::InBatch {
                statement_index,
                source: Box::new(source.transaction_rolled_back()),
            },
            other => other,
        }
    }
}
