//! Logging: text or JSON lines, filtered by `RUST_LOG` (default `info`), and
//! one span per RPC that ends with a line saying how it went; the span is
//! also exported with OpenTelemetry when `--otlp-endpoint` is set (see
//! [`spans`]).
//!
//! Parameter values and passwords are never logged; SQL text only at debug.
use std::{sync::OnceLock, time::Instant};

use opentelemetry::trace::Span as _;
use tracing::{Span, field};
use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

mod access_line;
mod log_writer;
mod spans;
pub use spans::{SpanExport, install as export_spans};

/// Keeps the log writer thread running; dropping it writes out what is
/// buffered. Hold it until the process ends.
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard {
    _writer: Option<log_writer::LogWriterGuard>,
}

/// Installs the global logger. Safe to call more than once (later calls do
/// nothing and return an empty guard).
///
/// Lines are buffered in memory and written to stderr by a thread of its own
/// in batches, every [`log_writer::FLUSH_INTERVAL`] at most (warnings and
/// errors at once, everything at shutdown): a write to stderr per RPC on a
/// tokio worker, or a wake-up of the writer thread per line, cost a large
/// share of the gateway's CPU per call. When the buffer is full (the log
/// reader is slower than the gateway, or stalled: a pipe nobody reads), new
/// lines are dropped rather than waited for, so a stalled reader never
/// stalls calls or health checks. Dropped lines are counted in
/// `sqlgate_log_lines_dropped_total` (see [`dropped_lines`]); no warning can
/// be logged about it, since the log is what is stalled.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let Ok((writer, guard)) = log_writer::BatchWriter::start(
        std::io::stderr(),
        log_writer::MAX_BUFFERED,
        log_writer::FLUSH_INTERVAL,
    ) else {
        return LogGuard { _writer: None };
    };
    // Colours only for a person at a terminal, not for log files and collectors.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(colours)
        .with_writer(writer.clone());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if installed.is_ok() {
        let _ = WRITER.set(writer);
        if format == LogFormat::Text && !colours {
            access_line::enable();
        }
    }
    LogGuard {
        _writer: installed.is_ok().then_some(guard),
    }
}

/// The installed writer, once [`init`] has run: it counts dropped lines.
static WRITER: OnceLock<log_writer::BatchWriter> = OnceLock::new();

/// Log lines dropped so far because the log reader did not keep up.
pub fn dropped_lines() -> u64 {
    WRITER
        .get()
        .map_or(0, log_writer::BatchWriter::dropped_lines)
}

/// The span and timer of one RPC.
pub(crate) struct RpcLog {
    method: &'static str,
    span: Span,
    /// The span exported over OTLP, when `--otlp-endpoint` is set. Dropped
    /// unfinished (a cancelled call), it still ends and is exported.
    exported: Option<spans::ExportedSpan>,
    started: Instant,
}

impl RpcLog {
    /// Starts the span of an RPC; `transaction_id` may be empty. The call's
    /// W3C `traceparent` (in `metadata`), when valid, makes it part of the
    /// caller's trace: every log line of the call carries the trace id and
    /// the caller's span id (and, with spans exported, this call's own).
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
            span_id = field::Empty,
            parent_span_id = field::Empty,
        );
        if !transaction_id.is_empty() {
            span.record("transaction_id", transaction_id);
        }
        let caller = spans::caller(metadata);
        let exported = spans::start(method, transaction_id, caller.as_ref());
        // The exported span continues the caller's trace, or starts one.
        let own = exported.as_ref().map(|exported| exported.span_context());
        if let Some(trace) = own.or(caller.as_ref()) {
            span.record("trace_id", format!("{:032x}", trace.trace_id()));
        }
        if let Some(caller) = &caller {
            span.record("parent_span_id", format!("{:016x}", caller.span_id()));
        }
        if let Some(own) = own {
            span.record("span_id", format!("{:016x}", own.span_id()));
        }
        RpcLog {
            method,
            span,
            exported,
            started: Instant::now(),
        }
    }

    /// The RPC's span, to run its work in.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Records that the call was forwarded to `owner`, and puts the trace
    /// context the owner's span continues in its `metadata`: this call's
    /// exported span, else the caller's own `traceparent`, passed on as is.
    pub fn forwarded(
        &mut self,
        owner: std::net::SocketAddr,
        metadata: &mut tonic::metadata::MetadataMap,
    ) {
        self.span.record("forwarded_to", owner.to_string());
        if let Some(exported) = &mut self.exported {
            exported.set_attribute(opentelemetry::KeyValue::new(
                "sqlgate.forwarded_to",
                owner.to_string(),
            ));
            spans::inject(exported.span_context(), metadata);
        }
    }

    /// Logs the end of the RPC: its outcome, rows and duration.
    pub fn finish(mut self, rows: u64, error: Option<&tonic::Status>) {
        let _entered = self.span.enter();
        let elapsed = self.started.elapsed();
        let code = error.map_or(tonic::Code::Ok, |status| status.code());
        crate::stats::record_rpc(self.method, code, elapsed);
        if let Some(exported) = self.exported.take() {
            spans::end(exported, rows, error);
        }
        // The text format's line, written straight into the log buffer
        // (the same bytes tracing would write, for less CPU per call).
        if access_line::enabled()
            && tracing::enabled!(target: access_line::TARGET, tracing::Level::INFO)
            && let Some(writer) = WRITER.get()
            && let Some(line) = access_line::format(
                &self.span,
                rows,
                elapsed,
                error,
                std::time::SystemTime::now(),
            )
        {
            writer.append(line.as_bytes(), false);
            return;
        }
        log_through_tracing(&self.span, rows, elapsed, error);
    }
}

/// The access line as a tracing event in `span` (entered), for the JSON
/// format, coloured text, and loggers [`access_line::format`] cannot read.
fn log_through_tracing(
    span: &Span,
    rows: u64,
    elapsed: std::time::Duration,
    error: Option<&tonic::Status>,
) {
    span.record("rows", rows);
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

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataMap;

    use super::spans;

    fn caller(traceparent: &str) -> Option<(String, String)> {
        let mut metadata = MetadataMap::new();
        metadata.insert("traceparent", traceparent.parse().unwrap());
        spans::caller(&metadata).map(|caller| {
            (
                format!("{:032x}", caller.trace_id()),
                format!("{:016x}", caller.span_id()),
            )
        })
    }

    #[test]
    fn traceparent_headers_are_read_as_w3c_defines_them() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            caller(header),
            Some((
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into()
            ))
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba9-01",
            "00-not-a-trace-01",
        ] {
            assert_eq!(caller(bad), None, "{bad:?}");
        }
        assert_eq!(spans::caller(&MetadataMap::new()), None);
    }
}
