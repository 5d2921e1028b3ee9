//! The access line every RPC ends with ("rpc finished" / "rpc failed"),
//! formatted here instead of by tracing-subscriber's generic event
//! formatting (field visitors, `dyn Debug`, a writer per event), which cost
//! several microseconds per call. The line is byte for byte what the text
//! format (`Format<Full>` with `DefaultFields`, no colours) writes for the
//! same event: the span scope's fields are the ones the fmt layer formatted
//! when they were recorded, read back from the registry. Only the text
//! format without colours takes this path; JSON and a terminal's coloured
//! lines go through tracing as before (see `RpcLog::finish`).
use std::{
    fmt::Write as _,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, SystemTime},
};

use tracing::Span;
use tracing_subscriber::{
    fmt::{FormattedFields, format::DefaultFields},
    registry::{LookupSpan, Registry},
};

/// The target of the access line's event (the module that logs it).
pub(super) const TARGET: &str = "sqlgate::telemetry";

/// Set once the installed logger is the text format without colours.
static DIRECT: AtomicBool = AtomicBool::new(false);

/// Lets [`format`] write access lines (the logger is the text format,
/// without colours, into the batch writer).
pub(super) fn enable() {
    DIRECT.store(true, Ordering::Relaxed);
}

/// Whether [`enable`] ran.
pub(super) fn enabled() -> bool {
    DIRECT.load(Ordering::Relaxed)
}

/// The access line of the RPC whose span is `span` (with `rows` recorded
/// on it), as the text format writes the event
/// `info!(duration_ms, code = "OK", "rpc finished")` or
/// `info!(duration_ms, code = ?code, error = message, "rpc failed")` inside
/// that span, at `now`. `None` when the span is disabled or the logger is
/// not tracing-subscriber's registry (then the event goes through tracing).
pub(super) fn format(
    span: &Span,
    rows: u64,
    elapsed: Duration,
    error: Option<&tonic::Status>,
    now: SystemTime,
) -> Option<String> {
    let id = span.id()?;
    tracing::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let leaf = registry.span(&id)?;
        let mut line = String::with_capacity(256);
        let _ = write!(line, "{}  INFO ", humantime::format_rfc3339_micros(now));
        for span in leaf.scope().from_root() {
            line.push_str(span.metadata().name());
            let extensions = span.extensions();
            let fields = extensions
                .get::<FormattedFields<DefaultFields>>()
                .map_or("", |fields| fields.fields.as_str());
            if span.id() == id {
                // `rows`, as `span.record("rows", rows)` would have added it.
                line.push('{');
                line.push_str(fields);
                if !fields.is_empty() {
                    line.push(' ');
                }
                let _ = write!(line, "rows={rows}}}");
            } else if !fields.is_empty() {
                let _ = write!(line, "{{{fields}}}");
            }
            line.push(':');
        }
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        let _ = match error {
            None => writeln!(
                line,
                " {TARGET}: rpc finished duration_ms={duration_ms:?} code=\"OK\""
            ),
            Some(status) => writeln!(
                line,
                " {TARGET}: rpc failed duration_ms={duration_ms:?} code={:?} error={:?}",
                status.code(),
                status.message()
            ),
        };
        Some(line)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tonic::metadata::MetadataMap;
    use tracing_subscriber::{EnvFilter, fmt};

    use super::*;
    use crate::telemetry::{RpcLog, log_through_tracing};

    /// What the logger under test wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
        }
    }

    /// A line without its timestamp (the part up to the first space).
    fn untimed(line: &str) -> &str {
        line.split_once(' ').expect("a timestamp").1
    }

    #[test]
    fn access_lines_are_the_bytes_tracing_writes() {
        let captured = Captured::default();
        let writer = captured.clone();
        // As `init` installs it, for text without colours.
        let logger = fmt()
            .with_env_filter(EnvFilter::new("info"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(logger, || {
            let mut traced = MetadataMap::new();
            let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
            traced.insert("traceparent", header.parse().unwrap());
            let errors = [
                None,
                Some(tonic::Status::not_found(
                    "Unknown column 'x' in \"t\" \\ é\n\ttab (MySQL error 1054)",
                )),
                Some(tonic::Status::deadline_exceeded("")),
            ];
            let outer = tracing::info_span!("outer", stream = 7);
            for (error, metadata, transaction_id, nested) in [
                (&errors[0], MetadataMap::new(), "", false),
                (&errors[0], traced.clone(), "tx-1", false),
                (&errors[1], traced.clone(), "", false),
                (&errors[2], MetadataMap::new(), "t\"x", true),
                (&errors[0], MetadataMap::new(), "", true),
            ] {
                let _outer = nested.then(|| outer.enter());
                let log = RpcLog::start("Execute", transaction_id, &metadata);
                log.span().record("transaction_id", "late\\one");
                let elapsed = Duration::from_nanos(1_234_567);
                let direct = format(log.span(), 3, elapsed, error.as_ref(), SystemTime::now())
                    .expect("a registry with the span");
                {
                    let _entered = log.span().enter();
                    log_through_tracing(log.span(), 3, elapsed, error.as_ref());
                }
                let traced_line = captured.take();
                assert_eq!(untimed(&direct), untimed(&traced_line));
                // The timestamp has the same form (RFC 3339, microseconds, UTC).
                let stamp = |line: &str| line.split_once(' ').unwrap().0.len();
                assert_eq!(stamp(&direct), stamp(&traced_line), "{direct}");
            }
        });
    }

    #[test]
    fn a_disabled_span_has_no_access_line_here() {
        let logger = fmt()
            .with_env_filter(EnvFilter::new("warn"))
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(logger, || {
            let log = RpcLog::start("Execute", "", &MetadataMap::new());
            assert!(format(log.span(), 0, Duration::ZERO, None, SystemTime::now()).is_none());
        });
    }
}
