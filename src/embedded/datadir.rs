//! The private server's directories: the data directory — created on first
//! use, initialised with the system tables, and refused while another server
//! still uses it — and the fresh socket directory of each server.
use std::{
    fs::DirBuilder,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use super::{
    EmbeddedError, EmbeddedOptions, find_binary, io_error, is_root, last_lines,
    supervisor::{RESTART_MARKER, is_server, wait_until_gone},
};

/// How long a previous server on the same data directory may take to exit.
const STALE_TIMEOUT: Duration = Duration::from_secs(10);
/// The server's pid file, in the data directory.
pub(super) const PID_FILE: &str = "sqlgate-server.pid";

/// Creates the data directory (this user only) if need be, checks that no
/// other server uses it, makes a socket directory, and initialises the data
/// directory if it holds no database yet. Returns the data directory, made
/// absolute, and the socket directory.
pub(super) fn prepare(
    options: &EmbeddedOptions,
    binary: &Path,
    mariadb: bool,
) -> Result<(PathBuf, PathBuf), EmbeddedError> {
    let dir = &options.data_dir;
    let mut builder = DirBuilder::new();
    builder
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error(format!(
            "creating the data directory {}",
            dir.display()
        )))?;
    let data_dir = dir
        .canonicalize()
        .map_err(io_error("resolving the data directory"))?;
    check_not_in_use(&data_dir, STALE_TIMEOUT)?;
    let _ = std::fs::remove_file(data_dir.join(RESTART_MARKER));
    let run_dir = create_run_dir()?;
    if !data_dir.join("mysql").is_dir() {
        let fresh = std::fs::read_dir(&data_dir).is_ok_and(|mut d| d.next().is_none());
        let initialised = initialise(binary, mariadb, &data_dir, &run_dir);
        if initialised.is_err() {
            // Half-initialised data would fail the next start too.
            let _ = std::fs::remove_dir_all(&run_dir);
            if fresh || options.remove_on_stop {
                let _ = std::fs::remove_dir_all(&data_dir);
            }
        }
        initialised?;
    }
    Ok((data_dir, run_dir))
}

/// Creates the system tables of a new data directory.
fn initialise(
    binary: &Path,
    mariadb: bool,
    data_dir: &Path,
    tmp_dir: &Path,
) -> Result<(), EmbeddedError> {
    tracing::info!(data_dir = %data_dir.display(), "initialising a new data directory");
    let datadir = format!("--datadir={}", data_dir.display());
    let tmpdir = format!("--tmpdir={}", tmp_dir.display());
    let mut command = if mariadb {
        let installer = find_binary(&["mariadb-install-db", "mysql_install_db"])
            .ok_or(EmbeddedError::NotFound("mariadb-install-db"))?;
        let mut command = Command::new(installer);
        let auth = "--auth-root-authentication-method=normal";
        command.args(["--no-defaults", &datadir, auth, "--skip-test-db", &tmpdir]);
        command
    } else {
        let mut command = Command::new(binary);
        command.args(["--no-defaults", "--initialize-insecure", &datadir, &tmpdir]);
        command
    };
    command.args(is_root().then_some("--user=root"));
    let output = command.stdin(Stdio::null()).output();
    let output = output.map_err(io_error("running the data directory initialiser"))?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text += &String::from_utf8_lossy(&output.stderr);
    Err(EmbeddedError::Init(data_dir.into(), last_lines(&text)))
}

/// Refuses a data directory whose pid file names a live server, after
/// giving it `patience` to finish a shutdown (its owner may just have died).
pub(super) fn check_not_in_use(data_dir: &Path, patience: Duration) -> Result<(), EmbeddedError> {
    let pid_file = std::fs::read_to_string(data_dir.join(PID_FILE)).unwrap_or_default();
    let pid = pid_file.trim().parse().unwrap_or(0);
    if !is_server(pid) {
        return Ok(());
    }
    tracing::info!(
        pid,
        "waiting for the previous server on this data directory to exit"
    );
    if wait_until_gone(pid, patience) {
        return Ok(());
    }
    Err(EmbeddedError::InUse(pid, data_dir.into()))
}

/// A fresh directory for the socket and temporary files that only this user
/// may enter, short enough for the socket's path (limited to ~100 bytes).
fn create_run_dir() -> Result<PathBuf, EmbeddedError> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let temp = std::env::temp_dir();
    let short = temp.as_os_str().len() <= 60 && !temp.to_string_lossy().contains(' ');
    let base = if short { temp } else { PathBuf::from("/tmp") };
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("sqlgate-{}-{n}", std::process::id()));
        match DirBuilder::new().mode(0o700).create(&dir) {
            // Left over by an earlier process with the same pid.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 10_000 => {}
            result => {
                let error = io_error(format!("creating {}", dir.display()));
                return result.map(|()| dir).map_err(error);
            }
        }
    }
}
