//! Time limits of calls: the client's `grpc-timeout` and `--statement-timeout`.
//!
//! tonic does not enforce `grpc-timeout` on its own for stream bodies and
//! reports expiry as CANCELLED, so the gateway reads the header itself. When a
//! limit passes, the call's work is dropped: its statement is killed on the
//! server (see `PooledConn` and `Lease`) and the client gets DEADLINE_EXCEEDED.
use std::time::Duration;

use tonic::metadata::MetadataMap;

use crate::errors::GatewayError;

/// The client's deadline, from the `grpc-timeout` header, if it sent one,
/// less a small margin: tonic's own timer for the same header answers
/// CANCELLED, so the gateway's must fire first for the client to get
/// DEADLINE_EXCEEDED (and the statement must be stopped by then anyway).
pub fn client_timeout(metadata: &MetadataMap) -> Option<Duration> {
    client_timeout_in(metadata.as_ref())
}

/// [`client_timeout`] from the request's HTTP headers.
pub fn client_timeout_in(headers: &tonic::codegen::http::HeaderMap) -> Option<Duration> {
    let timeout = parse_grpc_timeout(headers.get("grpc-timeout")?.to_str().ok()?)?;
    let margin = (timeout / 10).min(Duration::from_millis(20));
    Some(timeout - margin)
}

/// True when a time limit is over before anything started: zero, or below
/// the timer's resolution (a millisecond), which no call can meet. Such a
/// call is answered DEADLINE_EXCEEDED at once, without touching the database
/// (and before tonic's own timer for `grpc-timeout` answers CANCELLED).
pub fn already_expired(limit: Duration) -> bool {
    limit < Duration::from_millis(1)
}

/// Parses the gRPC wire format: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(text: &str) -> Option<Duration> {
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value * 3600),
        "M" => Duration::from_secs(value * 60),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

/// Runs `work` within `limit`; past it, `work` is dropped (which stops its
/// statement) and the call fails with DEADLINE_EXCEEDED. A limit that is
/// [`already_expired`] fails at once: `work` is never polled.
pub async fn within<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, GatewayError>>,
) -> Result<T, GatewayError> {
    if already_expired(limit) {
        return Err(GatewayError::DeadlineExceeded(limit));
    }
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or(Err(GatewayError::DeadlineExceeded(limit)))
}

/// Runs `work` until `deadline`, a point in time shared by the steps of one
/// call (so that two steps cannot each take the whole `limit`); past it, as
/// [`within`].
pub async fn until<T>(
    deadline: tokio::time::Instant,
    limit: Duration,
    work: impl Future<Output = Result<T, GatewayError>>,
) -> Result<T, GatewayError> {
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or(Err(GatewayError::DeadlineExceeded(limit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_expired_limit_never_polls_the_work() {
        for limit in [Duration::ZERO, Duration::from_micros(999)] {
            let outcome: Result<(), _> =
                within(limit, async { panic!("the work must not run") }).await;
            assert!(matches!(outcome, Err(GatewayError::DeadlineExceeded(_))));
        }
        assert_eq!(
            within(Duration::from_secs(1), async { Ok(7) })
                .await
                .unwrap(),
            7
        );
    }

    #[test]
    fn zero_timeouts_are_already_expired() {
        let mut metadata = MetadataMap::new();
        metadata.insert("grpc-timeout", "0m".parse().unwrap());
        assert!(already_expired(client_timeout(&metadata).unwrap()));
        metadata.insert("grpc-timeout", "500u".parse().unwrap());
        assert!(already_expired(client_timeout(&metadata).unwrap()));
        metadata.insert("grpc-timeout", "100m".parse().unwrap());
        assert!(!already_expired(client_timeout(&metadata).unwrap()));
    }

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("200m"), Some(Duration::from_millis(200)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "5", "5s", "123456789S", "-1S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
