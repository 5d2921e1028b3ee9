//! The one place where gateway errors become gRPC statuses.
//!
//! Every status carries a `google.rpc.ErrorInfo` detail with domain `sqlgate`,
//! a machine-readable reason, and metadata (`errno`, `sqlstate` for database
//! errors; `statement_index` for ExecuteBatch failures).
use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::{GatewayError, mysql_codes};

/// ErrorInfo domain of every sqlgate error.
pub const ERROR_DOMAIN: &str = "sqlgate";

impl From<GatewayError> for Status {
    fn from(error: GatewayError) -> Status {
        let mut metadata = HashMap::new();
        let (code, reason) = classify(&error, &mut metadata);
        Status::with_error_details(
            code,
            error.to_string(),
            ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
        )
    }
}

/// The code and ErrorInfo reason of an error; fills in its metadata.
fn classify(error: &GatewayError, metadata: &mut HashMap<String, String>) -> (Code, &'static str) {
    match error {
        GatewayError::InvalidRequest(_) => (Code::InvalidArgument, "INVALID_REQUEST"),
        GatewayError::Value(e) if e.is_client_error() => (Code::InvalidArgument, "INVALID_VALUE"),
        GatewayError::Value(_) => (Code::Internal, "UNSUPPORTED_VALUE"),
        GatewayError::Database(e) => {
            let code = mysql_codes::code_for(e);
            match e {
                mysql_async::Error::Server(server) => {
                    crate::stats::record_database_error(server.code);
                    metadata.insert("errno".into(), server.code.to_string());
                    metadata.insert("sqlstate".into(), server.state.clone());
                    (code, "MYSQL_ERROR")
                }
                _ if code == Code::Unavailable => (code, "DATABASE_UNAVAILABLE"),
                _ => (code, "DRIVER_ERROR"),
            }
        }
        GatewayError::CommitOutcomeUnknown(_) => (Code::Unknown, "COMMIT_OUTCOME_UNKNOWN"),
        GatewayError::StatementNotAllowed(_) => (Code::PermissionDenied, "STATEMENT_NOT_ALLOWED"),
        GatewayError::ReadOnlyStatement(_) => (Code::PermissionDenied, "READ_ONLY_PRINCIPAL"),
        GatewayError::ImplicitCommit(_) => {
            (Code::FailedPrecondition, "IMPLICIT_COMMIT_IN_TRANSACTION")
        }
        GatewayError::TransactionEndedByStatement(_) => {
            (Code::FailedPrecondition, "TRANSACTION_ENDED_BY_STATEMENT")
        }
        GatewayError::TransactionNotFound(_) => (Code::NotFound, "TRANSACTION_NOT_FOUND"),
        GatewayError::TransactionExpired(_) => (Code::Aborted, "TRANSACTION_EXPIRED"),
        GatewayError::TransactionAborted(_) => (Code::Aborted, "TRANSACTION_ABORTED"),
        GatewayError::ResultTooLarge { .. } => (Code::ResourceExhausted, "RESULT_TOO_LARGE"),
        GatewayError::TooManyTransactions { .. } => {
            (Code::ResourceExhausted, "TOO_MANY_TRANSACTIONS")
        }
        GatewayError::PoolExhausted(_) => (Code::ResourceExhausted, "POOL_EXHAUSTED"),
        GatewayError::TooManyTransactionsForPrincipal { .. } => {
            (Code::ResourceExhausted, "TOO_MANY_TRANSACTIONS")
        }
        GatewayError::ReadOnlyPrincipal { source, .. } => {
            classify(source, metadata);
            (Code::PermissionDenied, "READ_ONLY_PRINCIPAL")
        }
        GatewayError::ShuttingDown => (Code::Unavailable, "SHUTTING_DOWN"),
        GatewayError::DeadlineExceeded(_) => (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
        GatewayError::StreamStalled(_) => (Code::DeadlineExceeded, "STREAM_STALLED"),
        GatewayError::TooManyRequests { .. } => (Code::ResourceExhausted, "TOO_MANY_REQUESTS"),
        GatewayError::InBatch {
            statement_index,
            source,
        } => {
            metadata.insert("statement_index".into(), statement_index.to_string());
            classify(source, metadata)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::EndReason;

    fn info(error: GatewayError) -> (Code, String, HashMap<String, String>) {
        let status = Status::from(error);
        let details = status.get_error_details();
        let info = details.error_info().expect("every status has ErrorInfo");
        assert_eq!(info.domain, ERROR_DOMAIN);
        (status.code(), info.reason.clone(), info.metadata.clone())
    }

    #[test]
    fn server_errors_carry_errno_and_sqlstate() {
        let (code, reason, metadata) = info(GatewayError::Database(mysql_async::Error::Server(
            mysql_async::ServerError {
                code: 1062,
                message: "Duplicate entry '1' for key 'PRIMARY'".into(),
                state: "23000".into(),
            },
        )));
        assert_eq!(code, Code::AlreadyExists);
        assert_eq!(reason, "MYSQL_ERROR");
        assert_eq!(metadata["errno"], "1062");
        assert_eq!(metadata["sqlstate"], "23000");
    }

    #[test]
    fn gateway_errors_have_their_reasons() {
        let table = [
            (
                GatewayError::TransactionNotFound(None),
                Code::NotFound,
                "TRANSACTION_NOT_FOUND",
            ),
            (
                GatewayError::TransactionExpired(EndReason::IdleTimeout),
                Code::Aborted,
                "TRANSACTION_EXPIRED",
            ),
            (
                GatewayError::TransactionAborted(EndReason::CallInterrupted),
                Code::Aborted,
                "TRANSACTION_ABORTED",
            ),
            (
                GatewayError::ResultTooLarge {
                    limit: "10 rows".into(),
                },
                Code::ResourceExhausted,
                "RESULT_TOO_LARGE",
            ),
            (
                GatewayError::CommitOutcomeUnknown("connection closed".into()),
                Code::Unknown,
                "COMMIT_OUTCOME_UNKNOWN",
            ),
            (
                GatewayError::StreamStalled(std::time::Duration::from_secs(30)),
                Code::DeadlineExceeded,
                "STREAM_STALLED",
            ),
            (
                GatewayError::TooManyRequests { limit: 32 },
                Code::ResourceExhausted,
                "TOO_MANY_REQUESTS",
            ),
            (
                GatewayError::ShuttingDown,
                Code::Unavailable,
                "SHUTTING_DOWN",
            ),
            (
                GatewayError::InvalidRequest("no".into()),
                Code::InvalidArgument,
                "INVALID_REQUEST",
            ),
        ];
        for (error, expected_code, expected_reason) in table {
            let (code, reason, _) = info(error);
            assert_eq!((code, reason.as_str()), (expected_code, expected_reason));
        }
    }

    #[test]
    fn batch_failures_name_the_statement() {
        let (code, reason, metadata) = info(GatewayError::InBatch {
            statement_index: 2,
            source: Box::new(GatewayError::InvalidRequest("bad".into())),
        });
        assert_eq!(code, Code::InvalidArgument);
        assert_eq!(reason, "INVALID_REQUEST");
        assert_eq!(metadata["statement_index"], "2");
    }
}
