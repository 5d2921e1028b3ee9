//! A private MariaDB/MySQL server, started by `sqlgate serve` when no
//! `--database-url` is given, and by the tests.
//!
//! The server listens only on a unix socket, in a fresh directory that only
//! this user may enter. It runs under a small `sh` watchdog whose stdin is a
//! pipe held by this process: when the pipe closes — on
//! [`EmbeddedDatabase::stop`], on drop, or because this process died, even by
//! SIGKILL — the watchdog stops the server with SIGTERM, waits for it and
//! removes what should not outlive it. So the server never outlives its
//! owner, without unsafe code. The watchdog runs in a process group of its
//! own, so a Ctrl-C meant for the gateway does not reach it.
//!
//! The module is laid out by concern:
//! - `supervisor` — [`EmbeddedDatabase`]: the watchdog, start, stop,
//!   launch and readiness, and the process checks they rely on;
//! - `datadir` — the data directory: creating and initialising it, refusing
//!   one another server still uses, and the socket directory;
//! - `accounts` — the gateway's least-privilege accounts on the server;
//! - `faults` — killing and restarting the server, for the tests only
//!   (feature `test-support`, which the tests turn on);
//! - `replication` — a primary and a replica of it with real GTID
//!   replication, for the tests and the benchmark of reads on replicas.
use std::path::PathBuf;

mod accounts;
mod datadir;
#[cfg(any(test, feature = "test-support"))]
mod faults;
mod replication;
mod supervisor;

pub use accounts::{AccountMaker, PrincipalAccount};
pub use replication::{ReplicatedPair, ReplicationError};
pub use supervisor::EmbeddedDatabase;

/// Searched after PATH: Debian keeps mariadbd in /usr/sbin.
const EXTRA_DIRS: &[&str] = &["/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"];

/// Why the private server could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// A program the private server needs (named here) is not installed.
    #[error(
        "{0} was not found on PATH, in /usr/sbin or in /usr/local/sbin; install mariadb-server (e.g. apt-get install mariadb-server, or run scripts/install-mariadb) or pass --database-url"
    )]
    NotFound(&'static str),
    /// A file or process operation failed: what was being done, and why.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// Initialising the data directory failed: the directory, and the tail
    /// of the initialiser's output.
    #[error("initialising the data directory {0} failed; its output ends with:\n{1}")]
    Init(PathBuf, String),
    /// Another server (this pid) still uses the data directory.
    #[error(
        "another database server (pid {0}) still uses the data directory {1}; stop it or choose another --data-dir"
    )]
    InUse(u32, PathBuf),
    /// The server exited while starting; the tail of its error log.
    #[error("the database server exited while starting; its error log ends with:\n{0}")]
    Start(String),
    /// Making a principal's account on the running server failed.
    #[error("could not make a principal's account on the private server: {0}")]
    Account(#[from] mysql_async::Error),
    /// The server did not accept connections within 60 s; the tail of its error log.
    #[error("the database server did not accept connections within 60 s; its log ends with:\n{0}")]
    Timeout(String),
}

fn io_error(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let action = action.into();
    move |source| EmbeddedError::Io(action, source)
}

/// Where the private server keeps its data.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedOptions {
    /// The data directory, created and initialised on first use.
    pub data_dir: PathBuf,
    /// Remove the data directory when the server stops (tests).
    pub remove_on_stop: bool,
    /// Also listen on 127.0.0.1 at this TCP port (a replica connects to
    /// its primary over TCP); unix socket only when `None`.
    pub tcp_port: Option<u16>,
    /// More server options, e.g. `--log-bin` and `--server-id=1` for a
    /// replication primary.
    pub extra_args: Vec<String>,
    /// Principals (name, read-only) that get database accounts of their own.
    pub principals: Vec<(String, bool)>,
    /// The schema of the request ids' outcomes table (--request-id-schema):
    /// created with the table and its view at every start, the main account
    /// granted every privilege on it and each read-write principal's account
    /// SELECT and INSERT on the view only. Empty: none.
    pub outcomes_schema: String,
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .collect();
    let mut candidates = names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)));
    candidates.find(|candidate| candidate.is_file())
}

/// The last 20 lines of `text`.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Options for a test's own server, in a data directory removed when it stops.
#[cfg(test)]
fn temp_options(name: &str) -> EmbeddedOptions {
    let dir = format!("sqlgate-embedded-{name}-{}", std::process::id());
    EmbeddedOptions {
        data_dir: std::env::temp_dir().join(dir),
        remove_on_stop: true,
        ..Default::default()
    }
}
