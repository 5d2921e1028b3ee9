//! Which gRPC code each MySQL/MariaDB error becomes, after Vitess's table.
//!
//! The table is the contract clients retry by: ABORTED means "retry the whole
//! transaction", UNAVAILABLE means "the database could not be reached".
use mysql_async::{DriverError, Error};
use tonic::Code;

/// The gRPC code for a server error number, falling back on the SQLSTATE class.
pub fn code_for_server_error(errno: u16, sqlstate: &str) -> Code {
    match errno {
        // Deadlock, lock wait timeout: the transaction is rolled back, retry it whole.
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
            _ => Code::Unknown,
        },
    }
}

/// The gRPC code for any error of the MySQL driver.
pub fn code_for(error: &Error) -> Code {
    match error {
        Error::Server(e) => code_for_server_error(e.code, &e.state),
        Error::Io(_) => Code::Unavailable,
        Error::Driver(e) => match e {
            DriverError::ConnectionClosed | DriverError::PoolDisconnected => Code::Unavailable,
            DriverError::StmtParamsMismatch { .. }
            | DriverError::StmtParamsNumberExceedsLimit { .. }
            | DriverError::MixedParams
            | DriverError::Params(_) => Code::InvalidArgument,
            DriverError::LocalInfile(_) => Code::PermissionDenied,
            DriverError::PacketTooLarge => Code::ResourceExhausted,
            _ => Code::Internal,
        },
        Error::Url(_) => Code::InvalidArgument,
        Error::Other(_) => Code::Internal,
    }
}

/// True when the error leaves the transaction it happened in unusable: the
/// gateway rolls it back and later calls on it get ABORTED.
pub fn ends_transaction(error: &Error) -> bool {
    error.is_fatal() || matches!(code_for(error), Code::Aborted | Code::Unavailable)
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
            (9999, "HY000", Code::Unknown),
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
