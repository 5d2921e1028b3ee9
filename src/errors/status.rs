//! The one place where gateway errors become gRPC statuses.
//!
//! Every status carries a `google.rpc.ErrorInfo` detail with domain `sqlgate`,
//! a machine-readable reason, and metadata (`errno`, `sqlstate` for database
//! errors; `statement_index` for ExecuteBatch failures; `transaction_open`
//! for a database error inside a transaction).
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

/// UNAUTHENTICATED with its ErrorInfo, for the authentication interceptor.
pub fn unauthenticated(message: impl Into<String>) -> Status {
    GatewayError::Unauthenticated(message.into()).into()
}

/// INVALID_ARGUMENT / MALFORMED_REQUEST, for a request that cannot be decoded.
pub fn malformed_request(message: impl Into<String>) -> Status {
    GatewayError::MalformedRequest(message.into()).into()
}

/// What a status that tonic produced itself, before or around the gateway's
/// handlers (so without ErrorInfo), means for the client:
///
/// | tonic's code | when | answered as |
/// |---|---|---|
/// | OUT_OF_RANGE | a request message over the decoding limit | RESOURCE_EXHAUSTED / REQUEST_TOO_LARGE |
/// | RESOURCE_EXHAUSTED | a compressed message over the limit once decompressed | RESOURCE_EXHAUSTED / REQUEST_TOO_LARGE |
/// | INTERNAL | bad framing: a compressed flag without `grpc-encoding`, an invalid flag, a truncated message, no message | INVALID_ARGUMENT / MALFORMED_REQUEST |
/// | INVALID_ARGUMENT | a message that is not protobuf (tonic's own decoder) | INVALID_ARGUMENT / MALFORMED_REQUEST |
/// | UNAUTHENTICATED | an interceptor's refusal | UNAUTHENTICATED / UNAUTHENTICATED |
/// | anything else (UNIMPLEMENTED...) | unknown method, unsupported `grpc-encoding` | its code / TRANSPORT_ERROR |
///
/// `max_request_bytes` is the --max-request-bytes the service decodes with.
pub fn from_transport(status: &Status, max_request_bytes: usize) -> GatewayError {
    let message = status.message().to_string();
    match status.code() {
        Code::OutOfRange | Code::ResourceExhausted => GatewayError::RequestTooLarge {
            limit: max_request_bytes,
            detail: request_size(&message)
                .map(|size| format!("the message has {size} bytes; "))
                .unwrap_or_default(),
        },
        Code::Internal | Code::InvalidArgument => GatewayError::MalformedRequest(message),
        Code::Unauthenticated => GatewayError::Unauthenticated(message),
        code => GatewayError::Transport(code, message),
    }
}

/// The size tonic reports in "decoded message length too large: found N bytes...".
fn request_size(message: &str) -> Option<u64> {
    let (_, rest) = message.split_once("found ")?;
    rest.split_once(" bytes")?.0.parse().ok()
}

/// The code and ErrorInfo reason of an error; fills in its metadata.
fn classify(error: &GatewayError, metadata: &mut HashMap<String, String>) -> (Code, &'static str) {
    match error {
        GatewayError::InvalidRequest(_) => (Code::InvalidArgument, "INVALID_REQUEST"),
        GatewayError::Value(e) if e.is_client_error() => (Code::InvalidArgument, "INVALID_VALUE"),
        GatewayError::Value(_) => (Code::Internal, "UNSUPPORTED_VALUE"),
        GatewayError::Database(mysql_async::Error::Server(server)) => {
            metadata.insert("errno".into(), server.code.to_string());
            metadata.insert("sqlstate".into(), server.state.clone());
            (
                mysql_codes::code_for_server_error(server.code, &server.state),
                "MYSQL_ERROR",
            )
        }
        // Parameters the driver refused before sending the statement.
        GatewayError::Database(e) if mysql_codes::is_parameter_error(e) => {
            (Code::InvalidArgument, "INVALID_REQUEST")
        }
        GatewayError::Database(e) => match mysql_codes::code_for(e) {
            Code::Unavailable => (Code::Unavailable, "DATABASE_UNAVAILABLE"),
            // Anything else the driver reports is the gateway's problem.
            _ => (Code::Internal, "DRIVER_ERROR"),
        },
        // An autocommit statement is its own commit.
        GatewayError::CommitOutcomeUnknown(_)
        | GatewayError::StatementOutcomeUnknown(_)
        | GatewayError::OutcomeUnknownAfterDeadline(_)
        | GatewayError::CompletedButCut(_) => (Code::Unknown, "COMMIT_OUTCOME_UNKNOWN"),
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
        GatewayError::AdminAccount(_) => (Code::FailedPrecondition, "ADMIN_ACCOUNT_REFUSED"),
        GatewayError::TooManyTransactionsForPrincipal { .. } => {
            (Code::ResourceExhausted, "TOO_MANY_TRANSACTIONS")
        }
        GatewayError::ReadOnlyPrincipal { source, .. } => {
            classify(source, metadata);
            (Code::PermissionDenied, "READ_ONLY_PRINCIPAL")
        }
        GatewayError::ShuttingDown => (Code::Unavailable, "SHUTTING_DOWN"),
        GatewayError::NoWritablePrimary(_) => (Code::Unavailable, "NO_WRITABLE_PRIMARY"),
        GatewayError::TransactionOwnerUnavailable { owner, .. } => {
            metadata.insert("owner".into(), owner.to_string());
            (Code::Aborted, "TRANSACTION_OWNER_UNAVAILABLE")
        }
        GatewayError::DeadlineExceeded(_) => (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
        GatewayError::ForwardedDeadlineExceeded { owner, .. } => {
            metadata.insert("owner".into(), owner.to_string());
            (Code::DeadlineExceeded, "DEADLINE_EXCEEDED")
        }
        GatewayError::MetadataTooLarge { .. } => (Code::ResourceExhausted, "METADATA_TOO_LARGE"),
        GatewayError::StreamStalled(_) | GatewayError::TransactionStreamStalled(_) => {
            (Code::DeadlineExceeded, "STREAM_STALLED")
        }
        GatewayError::TooManyRequests { .. } => (Code::ResourceExhausted, "TOO_MANY_REQUESTS"),
        GatewayError::RequestIdReused(_) => (Code::FailedPrecondition, "REQUEST_ID_REUSED"),
        GatewayError::OutcomesUnavailable(_) => {
            (Code::FailedPrecondition, "OUTCOMES_TABLE_UNAVAILABLE")
        }
        GatewayError::RequestReadTimeout(_) => (Code::DeadlineExceeded, "REQUEST_READ_TIMEOUT"),
        GatewayError::Unauthenticated(_) => (Code::Unauthenticated, "UNAUTHENTICATED"),
        GatewayError::MalformedRequest(_) => (Code::InvalidArgument, "MALFORMED_REQUEST"),
        GatewayError::RequestTooLarge { .. } => (Code::ResourceExhausted, "REQUEST_TOO_LARGE"),
        GatewayError::Transport(code, _) => (*code, "TRANSPORT_ERROR"),
        GatewayError::InBatch {
            statement_index,
            source,
        } => {
            metadata.insert("statement_index".into(), statement_index.to_string());
            classify(source, metadata)
        }
        GatewayError::InTransaction { open, source } => {
            metadata.insert("transaction_open".into(), open.to_string());
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
                GatewayError::StatementOutcomeUnknown("connection reset".into()),
                Code::Unknown,
                "COMMIT_OUTCOME_UNKNOWN",
            ),
            (
                GatewayError::StreamStalled(std::time::Duration::from_secs(30)),
                Code::DeadlineExceeded,
                "STREAM_STALLED",
            ),
            (
                GatewayError::TooManyRequests {
                    flag: "--max-concurrent-requests",
                    limit: 32,
                },
                Code::ResourceExhausted,
                "TOO_MANY_REQUESTS",
            ),
            (
                GatewayError::ShuttingDown,
                Code::Unavailable,
                "SHUTTING_DOWN",
            ),
            (
                GatewayError::RequestIdReused("used".into()),
                Code::FailedPrecondition,
                "REQUEST_ID_REUSED",
            ),
            (
                GatewayError::OutcomesUnavailable("no table".into()),
                Code::FailedPrecondition,
                "OUTCOMES_TABLE_UNAVAILABLE",
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

    fn server_error(code: u16, state: &str) -> GatewayError {
        GatewayError::Database(mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: "something".into(),
            state: state.into(),
        }))
    }

    #[test]
    fn unrecognised_server_errors_are_never_unknown() {
        for (errno, state) in [
            (1300, "HY000"),
            (1400, "XAE09"),
            (1193, "HY000"),
            (9999, ""),
        ] {
            let (code, reason, metadata) = info(server_error(errno, state));
            assert_eq!(code, Code::FailedPrecondition, "{errno}");
            assert_eq!(reason, "MYSQL_ERROR");
            assert_eq!(metadata["errno"], errno.to_string());
        }
    }

    #[test]
    fn driver_errors_have_documented_reasons() {
        use mysql_async::DriverError;
        let mismatch = GatewayError::Database(mysql_async::Error::Driver(
            DriverError::StmtParamsMismatch {
                required: 1,
                supplied: 2,
            },
        ));
        assert_eq!(
            mismatch.to_string(),
            "the statement has 1 placeholder but 2 parameters were sent"
        );
        let (code, reason, _) = info(mismatch);
        assert_eq!(
            (code, reason.as_str()),
            (Code::InvalidArgument, "INVALID_REQUEST")
        );
        let table = [
            (
                DriverError::MixedParams,
                Code::InvalidArgument,
                "INVALID_REQUEST",
            ),
            (
                DriverError::ConnectionClosed,
                Code::Unavailable,
                "DATABASE_UNAVAILABLE",
            ),
            (
                DriverError::NestedTransaction,
                Code::Internal,
                "DRIVER_ERROR",
            ),
        ];
        for (error, expected_code, expected_reason) in table {
            let (code, reason, _) = info(GatewayError::Database(mysql_async::Error::Driver(error)));
            assert_eq!((code, reason.as_str()), (expected_code, expected_reason));
        }
    }

    #[test]
    fn transport_statuses_map_as_documented() {
        let table = [
            (
                Status::out_of_range(
                    "Error, decoded message length too large: found 2000 bytes, the limit is: 1000 bytes",
                ),
                Code::ResourceExhausted,
                "REQUEST_TOO_LARGE",
            ),
            (
                Status::resource_exhausted("Error decompressing: size limit exceeded"),
                Code::ResourceExhausted,
                "REQUEST_TOO_LARGE",
            ),
            (
                Status::internal(
                    "protocol error: received message with invalid compression flag: 7",
                ),
                Code::InvalidArgument,
                "MALFORMED_REQUEST",
            ),
            (
                Status::internal("Missing request message."),
                Code::InvalidArgument,
                "MALFORMED_REQUEST",
            ),
            (
                Status::invalid_argument("bad protobuf"),
                Code::InvalidArgument,
                "MALFORMED_REQUEST",
            ),
            (
                Status::unauthenticated("no token"),
                Code::Unauthenticated,
                "UNAUTHENTICATED",
            ),
            (
                Status::unimplemented("no such method"),
                Code::Unimplemented,
                "TRANSPORT_ERROR",
            ),
        ];
        for (status, expected_code, expected_reason) in table {
            let (code, reason, _) = info(from_transport(&status, 1000));
            assert_eq!(
                (code, reason.as_str()),
                (expected_code, expected_reason),
                "{status:?}"
            );
        }
        let too_large = Status::from(from_transport(
            &Status::out_of_range("found 2000 bytes, the limit is: 1000 bytes"),
            1000,
        ));
        assert!(too_large.message().contains("2000 bytes"), "{too_large:?}");
        assert!(
            too_large
                .message()
                .contains("1000 bytes (--max-request-bytes)")
        );
    }

    #[test]
    fn constructors_carry_error_info() {
        let status = unauthenticated("unknown bearer token");
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "unknown bearer token");
        assert_eq!(
            status.get_error_details().error_info().unwrap().reason,
            "UNAUTHENTICATED"
        );
        let status = malformed_request("not protobuf");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.get_error_details().error_info().unwrap().reason,
            "MALFORMED_REQUEST"
        );
    }

    #[test]
    fn errors_in_transactions_say_whether_it_is_open() {
        for open in [true, false] {
            let error = GatewayError::InTransaction {
                open,
                source: Box::new(server_error(1205, "HY000")),
            };
            assert_eq!(error.ends_transaction(), !open);
            let (code, reason, metadata) = info(error);
            assert_eq!((code, reason.as_str()), (Code::Aborted, "MYSQL_ERROR"));
            assert_eq!(metadata["errno"], "1205");
            assert_eq!(metadata["transaction_open"], open.to_string());
        }
        let rolled_back = GatewayError::InBatch {
            statement_index: 1,
            source: Box::new(GatewayError::InTransaction {
                open: true,
                source: Box::new(server_error(1062, "23000")),
            }),
        }
        .transaction_rolled_back();
        let (_, _, metadata) = info(rolled_back);
        assert_eq!(metadata["transaction_open"], "false");
        assert_eq!(metadata["statement_index"], "1");
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
