//! Prometheus metrics: what is counted where, and the `/metrics` exporter
//! (`--metrics-listen`). Without the exporter the recording calls do nothing.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `sqlgate_rpc_requests_total` | counter | `method`, `code` |
//! | `sqlgate_rpc_duration_seconds` | histogram | `method`, `code` |
//! | `sqlgate_pool_connections` | gauge | `state` = `in_use`, `idle` |
//! | `sqlgate_pool_waiting` | gauge | |
//! | `sqlgate_open_transactions` | gauge | |
//! | `sqlgate_transactions_ended_total` | counter | `reason` |
//! | `sqlgate_streamed_rows_total`, `sqlgate_streamed_bytes_total` | counter | |
//! | `sqlgate_database_errors_total` | counter | `errno` |
//! | `sqlgate_streams_stalled_total` | counter | |
//! | `sqlgate_log_lines_dropped_total` | counter | |
//! | `sqlgate_forwarded_calls_total` | counter | `method`, `outcome` |
//! | `sqlgate_replica_reads_total` | counter | `target` = `replica`, `primary` (a fallback) |
//! | `sqlgate_replica_lag_seconds` | gauge | `replica` (its URL without password); -1 out of rotation |
//!
//! No label carries SQL text, parameter values, transaction ids or secrets.
//!
//! This module depends on no other module of the gateway: labels come in as
//! values, and the gauges are read through a closure the server hands to
//! [`refresh_gauges`].
use std::{
    net::SocketAddr,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder};

/// How often the gauges are refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);

/// Set once the exporter is installed: without it, [`record_rpc`] returns
/// at once instead of building (and hashing) two metric keys per call for
/// the no-op recorder.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Starts the exporter on `address` (must run inside the tokio runtime).
pub fn install(address: SocketAddr) -> Result<(), BuildError> {
    PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])?
        .install()?;
    INSTALLED.store(true, Ordering::Relaxed);
    Ok(())
}

/// One finished RPC.
pub fn record_rpc(method: &'static str, code: tonic::Code, duration: Duration) {
    if !INSTALLED.load(Ordering::Relaxed) {
        return;
    }
    let code = code_label(code);
    counter!("sqlgate_rpc_requests_total", "method" => method, "code" => code).increment(1);
    histogram!("sqlgate_rpc_duration_seconds", "method" => method, "code" => code)
        .record(duration.as_secs_f64());
}

/// The `code` label of a status code: its name as `Debug` prints it
/// (`Ok`, `InvalidArgument`, …), without formatting a string per call.
fn code_label(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "Ok",
        Cancelled => "Cancelled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// A call forwarded to the instance that owns its transaction, by method and
/// outcome (`ok`, `owner_error`: the owner answered an error, `unavailable`,
/// `outcome_unknown`: a Commit whose forwarding broke after it was sent).
pub fn record_forwarded(method: &'static str, outcome: &'static str) {
    counter!("sqlgate_forwarded_calls_total", "method" => method, "outcome" => outcome)
        .increment(1);
}

/// A read that could go to a replica (a non-strong read_consistency), by
/// where it went: `replica`, or `primary` when no replica could honour it.
pub fn record_replica_read(target: &'static str) {
    counter!("sqlgate_replica_reads_total", "target" => target).increment(1);
}

/// A replica's measured lag after a check; `None` when it is out of rotation.
pub fn record_replica_lag(replica: &str, lag: Option<Duration>) {
    gauge!("sqlgate_replica_lag_seconds", "replica" => replica.to_string())
        .set(lag.map_or(-1.0, |lag| lag.as_secs_f64()));
}

/// The gateway switched the primary it writes to (a failover followed).
pub fn record_primary_switch() {
    counter!("sqlgate_primary_switches_total").increment(1);
}

/// The gateway checked which server is the writable primary (several
/// servers in --database-url): at its interval, or sooner when calls failed.
pub fn record_primary_check() {
    counter!("sqlgate_primary_checks_total").increment(1);
}

/// A transaction ended, for `reason` (a label such as `committed`).
pub fn record_transaction_end(reason: &'static str) {
    counter!("sqlgate_transactions_ended_total", "reason" => reason).increment(1);
}

/// A batch of streamed rows was sent.
pub fn record_streamed(rows: usize, bytes: u64) {
    counter!("sqlgate_streamed_rows_total").increment(rows as u64);
    counter!("sqlgate_streamed_bytes_total").increment(bytes);
}

/// A stream was ended because its client took no message for too long.
pub fn record_stream_stalled() {
    counter!("sqlgate_streams_stalled_total").increment(1);
}

/// The database reported error `errno`.
pub fn record_database_error(errno: u16) {
    counter!("sqlgate_database_errors_total", "errno" => errno.to_string()).increment(1);
}

/// What the gauges show, read afresh every second.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Pooled connections in use.
    pub pool_in_use: usize,
    /// Pooled connections idle.
    pub pool_idle: usize,
    /// Calls waiting for a pooled connection.
    pub pool_waiting: usize,
    /// Open transactions.
    pub open_transactions: usize,
    /// Log lines dropped so far because the log reader was behind.
    pub log_lines_dropped: u64,
}

/// Refreshes the gauges from `read` every second, forever.
pub async fn refresh_gauges(read: impl Fn() -> Gauges) {
    loop {
        let now = read();
        gauge!("sqlgate_pool_connections", "state" => "in_use").set(now.pool_in_use as f64);
        gauge!("sqlgate_pool_connections", "state" => "idle").set(now.pool_idle as f64);
        gauge!("sqlgate_pool_waiting").set(now.pool_waiting as f64);
        gauge!("sqlgate_open_transactions").set(now.open_transactions as f64);
        counter!("sqlgate_log_lines_dropped_total").absolute(now.log_lines_dropped);
        tokio::time::sleep(GAUGE_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn code_labels_are_the_codes_debug_names() {
        for number in 0..=16 {
            let code = tonic::Code::from_i32(number);
            assert_eq!(super::code_label(code), format!("{code:?}"));
        }
    }
}
