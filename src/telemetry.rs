//! Logging: text or JSON lines, filtered by `RUST_LOG` (default `info`), and
//! one span per RPC that ends with a line saying how it went.
//!
//! Parameter values and passwords are never logged; SQL text only at debug.
use std::time::Instant;

use tracing::{Span, field};
use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

/// Installs the global logger. Safe to call more than once (later calls do nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The span and timer of one RPC.
pub struct RpcLog {
    method: &'static str,
    span: Span,
    started: Instant,
}

impl RpcLog {
    /// Starts the span of an RPC; `transaction_id` may be empty.
    pub fn start(method: &'static str, transaction_id: &str) -> RpcLog {
        let span = tracing::info_span!(
            "rpc",
            method,
            transaction_id = field::Empty,
            rows = field::Empty,
        );
        if !transaction_id.is_empty() {
            span.record("transaction_id", transaction_id);
        }
        RpcLog {
            method,
            span,
            started: Instant::now(),
        }
    }

    /// The RPC's span, to run its work in.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Records the transaction the RPC began.
    pub fn record_transaction(&self, transaction_id: &str) {
        self.span.record("transaction_id", transaction_id);
    }

    /// Logs the end of the RPC: its outcome, rows and duration.
    pub fn finish(self, rows: u64, error: Option<&tonic::Status>) {
        let _entered = self.span.enter();
        self.span.record("rows", rows);
        let elapsed = self.started.elapsed();
        let code = error.map_or(tonic::Code::Ok, |status| status.code());
        crate::stats::record_rpc(self.method, code, elapsed);
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        match error {
            None => tracing::info!(duration_ms, code = "OK", "rpc finished"),
            Some(status) => tracing::info!(
                duration_ms,
                code = ?status.code(),
                error = status.message(),
                "rpc failed"
            ),
        }
    }
}
