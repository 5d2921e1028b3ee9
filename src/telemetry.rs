//! Logging: text or JSON lines, filtered by `RUST_LOG` (default `info`), and
//! one span per RPC that ends with a line saying how it went.
//!
//! Parameter values and passwords are never logged; SQL text only at debug.
use std::{sync::OnceLock, time::Instant};

use tracing::{Span, field};
use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

/// Most log lines queued for the writer thread; past it, lines are dropped.
/// (The queue is allocated up front: 64k lines cost 2 MiB of RSS at rest.)
const QUEUED_LINES: usize = 8 * 1024;

/// Keeps the log writer thread running; dropping it writes out what is queued.
/// Hold it until the process ends.
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard {
    _writer: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Installs the global logger. Safe to call more than once (later calls do
/// nothing and return an empty guard).
///
/// Lines are written to stderr by a thread of their own, in as few writes as
/// the queue allows: a write to stderr per RPC on a tokio worker cost about
/// 15 % of the gateway's CPU per call in the benchmark. When the queue is
/// full (the log reader is slower than the gateway, or stalled: a pipe nobody
/// reads), new lines are dropped rather than waited for, so a stalled reader
/// never stalls calls or health checks. Dropped lines are counted in
/// `sqlgate_log_lines_dropped_total` (see [`dropped_lines`]); no warning can
/// be logged about it, since the log is what is stalled.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = std::io::BufWriter::new(std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("sqlgate-log")
        .finish(stderr);
    let _ = DROPPED.set(writer.error_counter());
    // Colours only for a person at a terminal, not for log files and collectors.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(colours)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    LogGuard {
        _writer: installed.is_ok().then_some(guard),
    }
}

/// Counts the lines the writer dropped, once [`init`] has run.
static DROPPED: OnceLock<tracing_appender::non_blocking::ErrorCounter> = OnceLock::new();

/// Log lines dropped so far because the log reader did not keep up.
pub fn dropped_lines() -> u64 {
    DROPPED
        .get()
        .map_or(0, |counter| counter.dropped_lines() as u64)
}

/// The trace a call belongs to, from its W3C `traceparent` header
/// (`version-traceid-parentid-flags`, lowercase hex).
#[derive(Debug, PartialEq, Eq)]
struct TraceParent<'a> {
    trace_id: &'a str,
    parent_id: &'a str,
}

impl<'a> TraceParent<'a> {
    /// The header's ids, if it is well formed (W3C Trace Context, level 1:
    /// version `ff` and all-zero ids are invalid; a later version may add
    /// fields after the flags).
    fn parse(header: &'a str) -> Option<TraceParent<'a>> {
        let mut parts = header.trim().split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |text: &str, len: usize| {
            text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let well_formed = hex(version, 2)
            && version != "ff"
            && (version != "00" || parts.next().is_none())
            && hex(trace_id, 32)
            && trace_id.bytes().any(|b| b != b'0')
            && hex(parent_id, 16)
            && parent_id.bytes().any(|b| b != b'0')
            && hex(flags, 2);
        well_formed.then_some(TraceParent {
            trace_id,
            parent_id,
        })
    }
}

/// The span and timer of one RPC.
pub(crate) struct RpcLog {
    method: &'static str,
    span: Span,
    started: Instant,
}

impl RpcLog {
    /// Starts the span of an RPC; `transaction_id` may be empty. The call's
    /// W3C `traceparent` (in `metadata`), when valid, puts its trace id and
    /// the caller's span id on the span, so that every log line of the call
    /// carries them.
    pub fn start(
        method: &'static str,
        transaction_id: &str,
        metadata: &tonic::metadata::MetadataMap,
    ) -> RpcLog {
        let span = tracing::info_span!(
            "rpc",
            method,
            transaction_id = field::Empty,
            rows = field::Empty,
            forwarded_to = field::Empty,
            trace_id = field::Empty,
            parent_span_id = field::Empty,
        );
        if !transaction_id.is_empty() {
            span.record("transaction_id", transaction_id);
        }
        if let Some(parent) = metadata
            .get("traceparent")
            .and_then(|value| value.to_str().ok())
            .and_then(TraceParent::parse)
        {
            span.record("trace_id", parent.trace_id);
            span.record("parent_span_id", parent.parent_id);
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

#[cfg(test)]
mod tests {
    use super::TraceParent;

    #[test]
    fn traceparent_headers_are_read_as_w3c_defines_them() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            TraceParent::parse(header),
            Some(TraceParent {
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
                parent_id: "00f067aa0ba902b7",
            })
        );
        // A later version may carry more fields.
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some()
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }
}
