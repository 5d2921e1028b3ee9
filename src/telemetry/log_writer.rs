//! Where log lines go: appended to a buffer in memory by the thread that
//! logs (a tokio worker), written to stderr in batches by a thread of its
//! own.
//!
//! The writer thread is woken when a line lands in an empty buffer and then
//! waits [`FLUSH_INTERVAL`] for more before it writes them all at once, so a
//! busy gateway pays one wake-up and one `write` per interval rather than
//! per line (a channel that woke the writer for every line cost a futex
//! wake-up and a context switch per RPC). Warnings and errors are written at
//! once, as is everything when the [`LogWriterGuard`] is dropped (shutdown).
//!
//! When the buffer holds [`MAX_BUFFERED`] bytes (the log reader is slower
//! than the gateway, or stalled: a pipe nobody reads), new lines are dropped
//! and counted rather than waited for: a stalled reader never stalls calls.
use std::{
    io::Write,
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long the writer thread collects lines before writing them.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// Most bytes of lines waiting to be written; past it, lines are dropped.
/// (About 8k lines of a few hundred bytes.)
pub const MAX_BUFFERED: usize = 2 << 20;

/// A buffer kept between batches is shrunk back to this after a burst, so
/// that the memory a burst took is returned.
const KEPT_CAPACITY: usize = 64 << 10;

/// Buffers log lines for the writer thread; cloned into every logging call
/// (see [`MakeWriter`]).
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when the buffer gets its first line, a line that must go
    /// out at once, or the guard is dropped.
    wake: Condvar,
    /// Lines dropped because the buffer was full.
    dropped: AtomicU64,
    max_buffered: usize,
}

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    /// Write without waiting for the interval to end.
    urgent: bool,
    /// The guard was dropped: write what is left and stop.
    closed: bool,
}

/// Stops the writer thread when dropped, after it wrote every buffered line.
#[must_use = "dropping the guard stops logging"]
pub struct LogWriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchWriter {
    /// Starts the writer thread, writing to `out`.
    pub fn start(
        out: impl Write + Send + 'static,
        max_buffered: usize,
        interval: Duration,
    ) -> std::io::Result<(BatchWriter, LogWriterGuard)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            dropped: AtomicU64::new(0),
            max_buffered,
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("sqlgate-log".into())
                .spawn(move || write_batches(&shared, out, interval))?
        };
        Ok((
            BatchWriter {
                shared: shared.clone(),
            },
            LogWriterGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Lines dropped so far because the buffer was full.
    pub fn dropped_lines(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Buffers one formatted line (or several, as one write).
    pub(super) fn append(&self, line: &[u8], urgent: bool) {
        let mut state = self.shared.lock();
        if state.closed {
            drop(state);
            // After shutdown (a late line of a task still running): straight out.
            let _ = std::io::stderr().write_all(line);
            return;
        }
        if state.lines.len() + line.len() > self.shared.max_buffered {
            drop(state);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let first = state.lines.is_empty();
        state.lines.extend_from_slice(line);
        let wake = first || (urgent && !state.urgent);
        state.urgent |= urgent;
        drop(state);
        if wake {
            self.shared.wake.notify_one();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock left a valid buffer behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The writer thread: waits for a first line, lets more gather for
/// `interval` (unless one is urgent), writes them all, until closed.
fn write_batches(shared: &Shared, mut out: impl Write, interval: Duration) {
    let mut batch = Vec::new();
    loop {
        let mut state = shared.lock();
        while state.lines.is_empty() && !state.closed {
            state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if !state.urgent && !state.closed {
            state = shared
                .wake
                .wait_timeout_while(state, interval, |s| !s.urgent && !s.closed)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        std::mem::swap(&mut state.lines, &mut batch);
        state.urgent = false;
        let closed = state.closed && batch.is_empty();
        drop(state);
        if closed {
            let _ = out.flush();
            return;
        }
        // A failed write (stderr closed) loses this batch, not the next.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        batch.shrink_to(KEPT_CAPACITY);
    }
}

impl Drop for LogWriterGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One logging call's writer: what it writes is appended to the buffer.
pub struct LineWriter<'a> {
    writer: &'a BatchWriter,
    urgent: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.append(buf, self.urgent);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            writer: self,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            writer: self,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// An output that hands every write to the test.
    struct Sink(mpsc::Sender<Vec<u8>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// An output that never returns from a write until told to.
    struct Stalled(mpsc::Receiver<()>, mpsc::Sender<Vec<u8>>);

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            let _ = self.1.send(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn info(writer: &BatchWriter, line: &str) {
        writer.make_writer().write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn lines_logged_together_are_written_in_one_batch() {
        let (tx, rx) = mpsc::channel();
        let (writer, guard) = BatchWriter::start(Sink(tx), 1 << 20, Duration::from_secs(3600))
            .expect("the thread starts");
        for n in 0..100 {
            info(&writer, &format!("line {n}\n"));
        }
        // The interval is an hour: only the guard's drop writes them.
        drop(guard);
        let writes: Vec<Vec<u8>> = rx.iter().collect();
        assert_eq!(writes.len(), 1, "one write for all the lines");
        let expected: String = (0..100).map(|n| format!("line {n}\n")).collect();
        assert_eq!(String::from_utf8(writes.concat()).unwrap(), expected);
        assert_eq!(writer.dropped_lines(), 0);
    }

    #[test]
    fn a_warning_is_written_without_waiting_for_the_interval() {
        let (tx, rx) = mpsc::channel();
        let (writer, _guard) = BatchWriter::start(Sink(tx), 1 << 20, Duration::from_secs(3600))
            .expect("the thread starts");
        info(&writer, "before\n");
        // What make_writer_for gives a WARN or ERROR event.
        writer.append(b"warning\n", true);
        // Written long before the hour is up (the test would hang otherwise).
        let mut written = Vec::new();
        while written != b"before\nwarning\n" {
            written.extend(rx.recv().unwrap());
        }
    }

    #[test]
    fn lines_past_the_bound_are_dropped_and_counted_while_the_reader_is_stalled() {
        let (release, stalled) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        let (writer, guard) = BatchWriter::start(Stalled(stalled, tx), 100, Duration::ZERO)
            .expect("the thread starts");
        // The first line goes to the stalled write; wait until it is there
        // (the buffer is empty again then).
        info(&writer, "first\n");
        while !writer.shared.lock().lines.is_empty() {
            std::thread::yield_now();
        }
        // 10 lines of 10 bytes fill the 100-byte buffer; the rest are dropped.
        for n in 0..25 {
            info(&writer, &format!("line {n:04}\n"));
        }
        assert_eq!(writer.dropped_lines(), 15);
        for _ in 0..2 {
            release.send(()).unwrap();
        }
        drop(guard);
        let written: Vec<u8> = rx.iter().flatten().collect();
        let expected: String = std::iter::once("first\n".to_string())
            .chain((0..10).map(|n| format!("line {n:04}\n")))
            .collect();
        assert_eq!(String::from_utf8(written).unwrap(), expected);
    }
}
