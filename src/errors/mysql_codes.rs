//! Which gRPC code each MySQL/MariaDB error becomes, after Vitess's table.
//!
//! The table is the contract clients retry by: ABORTED means "retry the whole
//! transaction", UNAVAILABLE means "the database could not be reached". It
//! never answers UNKNOWN: the README reserves that code for a COMMIT whose
//! outcome is unknown.
use mysql_async::{DriverError, Error};
use tonic::Code;

/// The gRPC code for a server error number, falling back on the SQLSTATE class.
pub fn code_for_server_error(errno: u16, sqlstate: &str) -> Code {
    match errno {
        // Deadlock (the transaction is rolled back), lock wait timeout (only
        // the statement is, unless innodb_rollback_on_timeout): retry the
        // whole transaction. Whether it is still open, the server says (see
        // `GatewayError::InTransaction`).
        1213 | 1205 => Code::Aborted,
        // Duplicate key, table exists, database exists.
        1062 | 1050 | 1007 | 1586 => Code::AlreadyExists,
        // Syntax and data errors: the statement or its values are wrong.
        1064 | 1149 | 1048 | 1406 | 1264 | 1366 | 1292 | 1365 | 1364 | 1210 | 1241 | 1222
        | 1367 | 1411 | 1690 | 3140 | 4025 | 4038 => Code::InvalidArgument,
        // Unknown table, column, database, function, procedure.
        1146 | 1054 | 1109 | 1049 | 1051 | 1305 | 1630 => Code::NotFound,
        // Access denied.
        1044 | 1045 | 1142 | 1143 | 1227 | 1370 => Code::PermissionDenied,
        // Foreign keys, no database selected, read-only transaction, check constraints.
        1451 | 1452 | 1216 | 1217 | 1046 | 1792 | 1290 | 1836 => Code::FailedPrecondition,
        // Server-side resource limits.
        1040 | 1203 | 1153 | 1206 | 1114 | 1041 | 1135 => Code::ResourceExhausted,
        // Statement time limits (MySQL MAX_EXECUTION_TIME, MariaDB max_statement_time).
        3024 | 1969 => Code::DeadlineExceeded,
        // Query interrupted (KILL QUERY).
        1317 => Code::Cancelled,
        // Server going away, connection killed, too many connections for the host.
        1053 | 1927 | 2002 | 2003 | 2006 | 2013 | 1129 | 1130 => Code::Unavailable,
        _ => match sqlstate.get(..2) {
            Some("22") | Some("42") => Code::InvalidArgument,
            Some("23") => Code::FailedPrecondition,
            Some("40") => Code::Aborted,
            Some("08") => Code::Unavailable,
            Some("28") => Code::PermissionDenied,
            // Everything else, mostly HY000 "general error" (1193 unknown
            // system variable, 1300 invalid character string, 1400 XA work
            // outside the global transaction...): FAILED_PRECONDITION. An
            // error the table does not know may depend on the server's or the
            // session's state as much as on the statement, so claiming
            // INVALID_ARGUMENT ("wrong whatever the state") would say more than
            // we know; FAILED_PRECONDITION says the same to a client ("do not
            // retry as is") without that claim. Never UNKNOWN: that is
            // reserved for a COMMIT whose outcome is unknown.
            _ => Code::FailedPrecondition,
        },
    }
}

/// The gRPC code for any error of the MySQL driver: the server's errors by
/// the table above; lost connections UNAVAILABLE; parameters that do not fit
/// the statement INVALID_ARGUMENT (see [`is_parameter_error`]); anything else
/// the driver reports is the gateway's problem, INTERNAL.
pub fn code_for(error: &Error) -> Code {
    match error {
        Error::Server(e) => code_for_server_error(e.code, &e.state),
        Error::Io(_) => Code::Unavailable,
        Error::Driver(DriverError::ConnectionClosed | DriverError::PoolDisconnected) => {
            Code::Unavailable
        }
        _ if is_parameter_error(error) => Code::InvalidArgument,
        Error::Driver(_) | Error::Url(_) | Error::Other(_) => Code::Internal,
    }
}

/// True when the driver refused the call's parameters before sending the
/// statement: their number does not match the placeholders, or is over the
/// protocol's limit. The client's mistake.
pub fn is_parameter_error(error: &Error) -> bool {
    matches!(
        error,
        Error::Driver(
            DriverError::StmtParamsMismatch { .. }
                | DriverError::StmtParamsNumberExceedsLimit { .. }
                | DriverError::MixedParams
                | DriverError::Params(_)
        )
    )
}

/// True when the error leaves the transaction it happened in unusable, judged
/// from the error alone (when the server was not asked): the gateway rolls
/// it back and later calls on it get ABORTED.
pub fn ends_transaction(error: &Error) -> bool {
    connection_lost(error) || rolls_back(error)
}

/// True when the connection is lost or unusable after the error.
pub fn connection_lost(error: &Error) -> bool {
    error.is_fatal() || code_for(error) == Code::Unavailable
}

/// True for a server error that may roll back the whole transaction:
/// deadlock (1213), lock wait timeout (1205, with
/// `innodb_rollback_on_timeout`), SQLSTATE class 40.
pub fn rolls_back(error: &Error) -> bool {
    matches!(error, Error::Server(_)) && code_for(error) == Code::Aborted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_map_as_documented() {
        let table = [
            (1213, "40001", Code::Aborted),
            (1205, "HY000", Code::Aborted),
            (1062, "23000", Code::AlreadyExists),
            (1064, "42000", Code::InvalidArgument),
            (1048, "23000", Code::InvalidArgument),
            (1406, "22001", Code::InvalidArgument),
            (1264, "22003", Code::InvalidArgument),
            (1366, "22007", Code::InvalidArgument),
            (1146, "42S02", Code::NotFound),
            (1054, "42S22", Code::NotFound),
            (1045, "28000", Code::PermissionDenied),
            (1044, "42000", Code::PermissionDenied),
            (1142, "42000", Code::PermissionDenied),
            (1451, "23000", Code::FailedPrecondition),
            (1452, "23000", Code::FailedPrecondition),
            (1792, "25006", Code::FailedPrecondition),
            (1969, "70100", Code::DeadlineExceeded),
            (1317, "70100", Code::Cancelled),
            (2006, "HY000", Code::Unavailable),
            (2013, "HY000", Code::Unavailable),
            (1927, "08S01", Code::Unavailable),
            (9999, "22012", Code::InvalidArgument),
            (9999, "08004", Code::Unavailable),
            // Errors the table does not know: never UNKNOWN.
            (9999, "HY000", Code::FailedPrecondition),
            (1193, "HY000", Code::FailedPrecondition),
            (1300, "HY000", Code::FailedPrecondition),
            (1400, "XAE09", Code::FailedPrecondition),
            (9999, "", Code::FailedPrecondition),
        ];
        for (errno, state, expected) in table {
            assert_eq!(
                code_for_server_error(errno, state),
                expected,
                "errno {errno} sqlstate {state}"
            );
        }
    }

    #[test]
    fn no_server_error_is_unknown() {
        for errno in 1000..5000 {
            for state in ["HY000", "XAE09", "", "0", "01000", "99999"] {
                assert_ne!(code_for_server_error(errno, state), Code::Unknown);
            }
        }
    }

    #[test]
    fn driver_errors_map_as_documented() {
        let mismatch = Error::Driver(DriverError::StmtParamsMismatch {
            required: 1,
            supplied: 2,
        });
        assert_eq!(code_for(&mismatch), Code::InvalidArgument);
        assert!(is_parameter_error(&mismatch));
        // The driver closes the connection on its own errors, so the
        // transaction is gone (`Statement::start` checks the count first).
        assert!(ends_transaction(&mismatch));
        let mixed = Error::Driver(DriverError::MixedParams);
        assert_eq!(code_for(&mixed), Code::InvalidArgument);
        let nested = Error::Driver(DriverError::NestedTransaction);
        assert_eq!(code_for(&nested), Code::Internal);
        assert!(!is_parameter_error(&nested));
        let other = Error::Other("bug".into());
        assert_eq!(code_for(&other), Code::Internal);
    }

    #[test]
    fn lost_connections_are_unavailable_and_end_transactions() {
        let io = Error::Io(mysql_async::IoError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(code_for(&io), Code::Unavailable);
        assert!(ends_transaction(&io));
        let closed = Error::Driver(DriverError::ConnectionClosed);
        assert_eq!(code_for(&closed), Code::Unavailable);
        let deadlock = Error::Server(mysql_async::ServerError {
            code: 1213,
            message: "Deadlock found".into(),
            state: "40001".into(),
        });
        assert!(ends_transaction(&deadlock));
        let duplicate = Error::Server(mysql_async::ServerError {
            code: 1062,
            message: "Duplicate entry".into(),
            state: "23000".into(),
        });
        assert!(!ends_transaction(&duplicate));
    }
}
