//! A private MariaDB/MySQL server, started when no `--database-url` is given
//! and by the test harness.
//!
//! The server runs on a unix socket only. It is started through a small
//! `sh` watchdog whose standard input is a pipe held by this process: when
//! the pipe closes — on [`EmbeddedDatabase::stop`], on drop, or because this
//! process died, even by SIGKILL — the watchdog stops the server. So the
//! server never outlives its owner, and no unsafe code is needed for it.
use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// While this file exists in the data directory, the watchdog leaves the
/// directories in place when its server ends (a restart follows).
const RESTART_MARKER: &str = "sqlgate-restarting";

/// Directories searched besides PATH: Debian keeps mariadbd in /usr/sbin,
/// which is not on every user's PATH.
const EXTRA_DIRS: &[&str] = &["/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"];

/// Why the private server could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// Neither mariadbd nor mysqld was found.
    #[error(
        "neither mariadbd nor mysqld was found on PATH or in /usr/sbin; install a server (Debian/Ubuntu: apt-get install mariadb-server) or pass --database-url"
    )]
    ServerNotFound,
    /// A file or process operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Initialising the data directory failed.
    #[error("initialising the data directory {dir} failed:\n{output}")]
    Init {
        /// The data directory.
        dir: PathBuf,
        /// The tail of the initialiser's output.
        output: String,
    },
    /// Another server already runs on this data directory.
    #[error(
        "another server (pid {pid}) already uses the data directory {dir}; stop it or choose another --data-dir"
    )]
    InUse {
        /// Its process id.
        pid: u32,
        /// The data directory.
        dir: PathBuf,
    },
    /// The server exited or did not become ready.
    #[error("the database server did not start: {reason}; its error log ends with:\n{log}")]
    Start {
        /// What happened.
        reason: String,
        /// The tail of the server's error log.
        log: String,
    },
}

fn io_error(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let action = action.into();
    move |source| EmbeddedError::Io { action, source }
}

/// Where the private server keeps its data.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// The data directory, created and initialised on first use.
    pub data_dir: PathBuf,
    /// Remove the data directory when the server stops (tests).
    pub remove_on_stop: bool,
}

/// A running private server.
pub struct EmbeddedDatabase {
    options: EmbeddedOptions,
    server_binary: PathBuf,
    socket_path: PathBuf,
    /// Holds the socket; removed with the server when it is temporary.
    run_dir: PathBuf,
    watchdog: Option<(Child, ChildStdin)>,
    pid: u32,
}

impl EmbeddedDatabase {
    /// Initialises the data directory if needed, starts the server and waits
    /// until it accepts connections; creates database `sqlgate` if missing.
    pub fn start(options: &EmbeddedOptions) -> Result<EmbeddedDatabase, EmbeddedError> {
        let server_binary =
            find_binary(&["mariadbd", "mysqld"]).ok_or(EmbeddedError::ServerNotFound)?;
        std::fs::create_dir_all(&options.data_dir)
            .map_err(io_error(format!("creating {}", options.data_dir.display())))?;
        let data_dir = options
            .data_dir
            .canonicalize()
            .map_err(io_error("resolving the data directory"))?;
        let options = EmbeddedOptions {
            data_dir,
            remove_on_stop: options.remove_on_stop,
        };
        check_not_in_use(&options.data_dir)?;
        if !options.data_dir.join("mysql").is_dir() {
            initialise(&server_binary, &options.data_dir)?;
        }
        // Unix socket paths are limited to about 100 bytes: keep it short.
        let run_dir =
            std::env::temp_dir().join(format!("sqlgate-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&run_dir).map_err(io_error("creating the socket directory"))?;
        let mut database = EmbeddedDatabase {
            socket_path: run_dir.join("mysqld.sock"),
            run_dir,
            options,
            server_binary,
            watchdog: None,
            pid: 0,
        };
        database.launch()?;
        database.run_sql("CREATE DATABASE IF NOT EXISTS sqlgate")?;
        Ok(database)
    }

    /// The unix socket the server listens on.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// A mysql_async URL for `database` as root over the socket.
    pub fn url(&self, database: &str) -> String {
        format!(
            "mysql://root@localhost/{database}?socket={}",
            self.socket_path.display()
        )
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the server with SIGKILL (fault tests); [`Self::restart`] brings it back.
    pub fn kill(&mut self) {
        // The marker keeps the watchdog from removing the directories.
        let marker = self.options.data_dir.join(RESTART_MARKER);
        let _ = std::fs::write(&marker, b"");
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
        if let Some((mut watchdog, stdin)) = self.watchdog.take() {
            drop(stdin);
            let _ = watchdog.wait();
        }
        let _ = std::fs::remove_file(marker);
    }

    /// Starts the server again on the same data directory and socket.
    pub fn restart(&mut self) -> Result<(), EmbeddedError> {
        self.kill();
        self.launch()
    }

    /// Stops the server and waits for it; removes the data when temporary.
    pub fn stop(mut self) -> Result<(), EmbeddedError> {
        self.stop_and_wait()
    }

    fn stop_and_wait(&mut self) -> Result<(), EmbeddedError> {
        let Some((mut watchdog, stdin)) = self.watchdog.take() else {
            return Ok(());
        };
        drop(stdin);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match watchdog
                .try_wait()
                .map_err(io_error("waiting for the server"))?
            {
                Some(_) => break,
                None if Instant::now() >= deadline => {
                    let _ = Command::new("kill")
                        .args(["-KILL", &self.pid.to_string()])
                        .status();
                    let _ = watchdog.wait();
                    break;
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        tracing::info!("private database server stopped");
        Ok(())
    }

    /// Starts mariadbd under the watchdog and waits until it answers.
    fn launch(&mut self) -> Result<(), EmbeddedError> {
        let _ = std::fs::remove_file(&self.socket_path);
        let log_path = self.options.data_dir.join("sqlgate-server.log");
        let pid_path = self.options.data_dir.join("sqlgate-server.pid");
        let mut server = Command::new("sh");
        // The watchdog: start the server, wait until stdin closes, stop it.
        let cleanup = if self.options.remove_on_stop {
            format!(r#"[ -e "$DATA_DIR/{RESTART_MARKER}" ] || rm -rf "$DATA_DIR" "$RUN_DIR""#)
        } else {
            format!(r#"[ -e "$DATA_DIR/{RESTART_MARKER}" ] || rm -rf "$RUN_DIR""#)
        };
        server
            .arg("-c")
            .arg(format!(
                r#""$@" & child=$!; echo $child; cat >/dev/null; kill -TERM $child 2>/dev/null; wait $child; {cleanup}"#
            ))
            .arg("sqlgate-watchdog")
            .arg(&self.server_binary)
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", self.options.data_dir.display()))
            .arg(format!("--socket={}", self.socket_path.display()))
            .arg("--skip-networking")
            .arg(format!("--log-error={}", log_path.display()))
            .arg(format!("--pid-file={}", pid_path.display()))
            .arg("--character-set-server=utf8mb4")
            .arg("--collation-server=utf8mb4_general_ci")
            .arg("--max-connections=500")
            .env("DATA_DIR", &self.options.data_dir)
            .env("RUN_DIR", &self.run_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        tracing::info!(
            server = %self.server_binary.display(),
            data_dir = %self.options.data_dir.display(),
            socket = %self.socket_path.display(),
            "starting private database server"
        );
        let mut watchdog = server
            .spawn()
            .map_err(io_error("starting the database server"))?;
        let stdin = watchdog.stdin.take().expect("stdin is piped");
        let mut stdout = watchdog.stdout.take().expect("stdout is piped");
        let mut pid_line = String::new();
        let mut byte = [0u8; 1];
        while stdout
            .read(&mut byte)
            .map_err(io_error("reading the server's pid"))?
            == 1
            && byte[0] != b'\n'
        {
            pid_line.push(byte[0] as char);
        }
        self.pid = pid_line.trim().parse().unwrap_or(0);
        self.watchdog = Some((watchdog, stdin));
        self.wait_until_ready(&log_path)
    }

    fn wait_until_ready(&mut self, log_path: &Path) -> Result<(), EmbeddedError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if server_answers(&self.socket_path) {
                tracing::info!(pid = self.pid, "private database server is ready");
                return Ok(());
            }
            let exited = match &mut self.watchdog {
                Some((watchdog, _)) => watchdog.try_wait().ok().flatten().is_some(),
                None => true,
            } || !process_alive(self.pid);
            if exited || Instant::now() >= deadline {
                let reason = if exited {
                    "it exited"
                } else {
                    "it did not accept connections within 60 s"
                };
                let _ = self.stop_and_wait();
                return Err(EmbeddedError::Start {
                    reason: reason.into(),
                    log: tail(log_path),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs SQL as root through the command-line client.
    fn run_sql(&self, sql: &str) -> Result<(), EmbeddedError> {
        let client = find_binary(&["mariadb", "mysql"]).ok_or(EmbeddedError::ServerNotFound)?;
        let output = Command::new(client)
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket_path.display()))
            .args(["-uroot", "-e", sql])
            .output()
            .map_err(io_error("running the mariadb client"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(EmbeddedError::Start {
                reason: format!(
                    "`{sql}` failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
                log: String::new(),
            })
        }
    }
}

impl Drop for EmbeddedDatabase {
    fn drop(&mut self) {
        // Closing the watchdog's stdin stops the server; do not wait for it.
        if let Some((watchdog, stdin)) = self.watchdog.take() {
            drop(stdin);
            drop(watchdog);
        }
    }
}

/// Creates the system tables of a new data directory.
fn initialise(server_binary: &Path, data_dir: &Path) -> Result<(), EmbeddedError> {
    tracing::info!(data_dir = %data_dir.display(), "initialising a new data directory");
    let is_mariadb = server_binary.file_name().is_some_and(|n| n == "mariadbd");
    let output = if is_mariadb {
        let installer = find_binary(&["mariadb-install-db", "mysql_install_db"])
            .ok_or(EmbeddedError::ServerNotFound)?;
        Command::new(installer)
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", data_dir.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .output()
    } else {
        Command::new(server_binary)
            .arg("--no-defaults")
            .arg("--initialize-insecure")
            .arg("--user=root")
            .arg(format!("--datadir={}", data_dir.display()))
            .output()
    }
    .map_err(io_error("running the data directory initialiser"))?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Err(EmbeddedError::Init {
        dir: data_dir.to_path_buf(),
        output: last_lines(&text, 20),
    })
}

/// Refuses a data directory whose pid file names a live server.
fn check_not_in_use(data_dir: &Path) -> Result<(), EmbeddedError> {
    let pid_file = data_dir.join("sqlgate-server.pid");
    let Ok(text) = std::fs::read_to_string(&pid_file) else {
        return Ok(());
    };
    match text.trim().parse::<u32>() {
        Ok(pid) if process_alive(pid) => Err(EmbeddedError::InUse {
            pid,
            dir: data_dir.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// True when the server on `socket` sends its greeting.
fn server_answers(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut header = [0u8; 5];
    // A packet header (4 bytes) then protocol version 10 means a greeting.
    let ready = stream.read_exact(&mut header).is_ok() && header[4] == 10;
    let _ = stream.write_all(&[]);
    ready
}

fn process_alive(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists()
        || pid != 0
            && !Path::new("/proc/self").exists()
            && Command::new("kill")
                .args(["-0", &pid.to_string()])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
}

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

fn tail(path: &Path) -> String {
    last_lines(&std::fs::read_to_string(path).unwrap_or_default(), 20)
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_until_gone(pid: u32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while process_alive(pid) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn temp_options(name: &str) -> EmbeddedOptions {
        EmbeddedOptions {
            data_dir: std::env::temp_dir()
                .join(format!("sqlgate-embedded-{name}-{}", std::process::id())),
            remove_on_stop: true,
        }
    }

    #[test]
    fn starts_answers_and_stops_cleanly() {
        let options = temp_options("stop");
        let database = EmbeddedDatabase::start(&options).expect("server starts");
        assert!(server_answers(database.socket_path()));
        assert!(database.url("x").contains("socket="));
        let pid = database.pid();
        assert!(process_alive(pid));
        database.run_sql("SELECT 1").unwrap();
        database.stop().unwrap();
        assert!(wait_until_gone(pid), "server process still alive");
        assert!(!options.data_dir.exists(), "temporary data dir removed");
    }

    #[test]
    fn dropping_the_handle_stops_the_server() {
        let database = EmbeddedDatabase::start(&temp_options("drop")).expect("server starts");
        let pid = database.pid();
        drop(database);
        assert!(wait_until_gone(pid), "server outlived its handle");
    }
}
