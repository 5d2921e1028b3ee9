//! What a client's transaction options ask for: the statements that start
//! the transaction, its idle timeout, its replica bound.
use std::time::Duration;

use crate::{
    api::{IsolationLevel, TransactionOptions},
    database::replicas::ReadBound,
    errors::GatewayError,
};

/// What starts a transaction with default options.
pub(super) const START: &str = "START TRANSACTION";

/// The statements that start a transaction with these options (READ ONLY
/// also when `force_read_only`).
pub(super) fn start_statements(
    options: Option<&TransactionOptions>,
    force_read_only: bool,
) -> Result<Vec<&'static str>, GatewayError> {
    let mut statements = Vec::with_capacity(2);
    let isolation = match options {
        None => IsolationLevel::Default,
        Some(o) => IsolationLevel::try_from(o.isolation).map_err(|_| {
            GatewayError::InvalidRequest(format!("unknown isolation level {}", o.isolation))
        })?,
    };
    statements.extend(match isolation {
        IsolationLevel::Default => None,
        IsolationLevel::ReadUncommitted => Some("SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED"),
        IsolationLevel::ReadCommitted => Some("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"),
        IsolationLevel::RepeatableRead => Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
        IsolationLevel::Serializable => Some("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
    });
    let read_only = force_read_only || options.is_some_and(|o| o.read_only);
    statements.push(if read_only {
        "START TRANSACTION READ ONLY"
    } else {
        START
    });
    Ok(statements)
}

/// The replica bound a `read_consistency` asks for; `None` for strong (or
/// unset).
pub fn read_bound(
    consistency: Option<&crate::api::ReadConsistency>,
) -> Result<Option<ReadBound>, GatewayError> {
    use crate::api::read_consistency::Bound;
    match consistency.and_then(|c| c.bound.as_ref()) {
        None | Some(Bound::Strong(_)) => Ok(None),
        Some(Bound::MaxStaleness(staleness)) => Duration::try_from(*staleness)
            .map(|staleness| Some(ReadBound::MaxStaleness(staleness)))
            .map_err(|_| {
                GatewayError::InvalidRequest(
                    "read_consistency.max_staleness must be a non-negative duration".into(),
                )
            }),
        Some(Bound::MinCommitToken(token)) => Ok(Some(ReadBound::MinCommitToken(token.clone()))),
    }
}

/// The idle timeout a client asked for, capped by the server's.
pub(super) fn requested_idle_timeout(
    options: Option<&TransactionOptions>,
    server_max: Duration,
) -> Result<Duration, GatewayError> {
    let Some(requested) = options.and_then(|o| o.idle_timeout) else {
        return Ok(server_max);
    };
    let requested = Duration::try_from(requested)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            GatewayError::InvalidRequest("idle_timeout must be a positive duration".into())
        })?;
    Ok(requested.min(server_max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_timeout_is_capped_and_validated() {
        let max = Duration::from_secs(30);
        let ask = |secs: i64, nanos: i32| TransactionOptions {
            idle_timeout: Some(prost_types::Duration {
                seconds: secs,
                nanos,
            }),
            ..Default::default()
        };
        assert_eq!(requested_idle_timeout(None, max).unwrap(), max);
        assert_eq!(
            requested_idle_timeout(Some(&ask(2, 0)), max).unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(
            requested_idle_timeout(Some(&ask(3600, 0)), max).unwrap(),
            max
        );
        assert!(requested_idle_timeout(Some(&ask(-1, 0)), max).is_err());
        assert!(requested_idle_timeout(Some(&ask(0, 0)), max).is_err());
    }

    #[test]
    fn start_statements_follow_options() {
        assert_eq!(
            start_statements(None, false).unwrap(),
            vec!["START TRANSACTION"]
        );
        assert_eq!(
            start_statements(None, true).unwrap(),
            vec!["START TRANSACTION READ ONLY"]
        );
        let options = TransactionOptions {
            isolation: IsolationLevel::ReadCommitted as i32,
            read_only: true,
            idle_timeout: None,
            read_consistency: None,
        };
        assert_eq!(
            start_statements(Some(&options), false).unwrap(),
            vec![
                "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
                "START TRANSACTION READ ONLY"
            ]
        );
        let unknown = TransactionOptions {
            isolation: 42,
            ..Default::default()
        };
        assert!(start_statements(Some(&unknown), false).is_err());
    }
}
