//! Process supervision: [`EmbeddedDatabase`] starts the server under its
//! watchdog, waits until it answers, and stops it — on
//! [`EmbeddedDatabase::stop`], on drop, or through the watchdog when this
//! process dies. Also the checks on processes (from /proc) and signals (with
//! kill(1)) this relies on, so no unsafe code.
use std::{
    fs::DirBuilder,
    io::Read,
    os::unix::{fs::DirBuilderExt, net::UnixStream, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

use super::{
    EmbeddedError, EmbeddedOptions, accounts, datadir, find_binary, io_error, is_root, last_lines,
};

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to stop before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// The pause between polls.
const POLL: Duration = Duration::from_millis(20);
const LOG_FILE: &str = "sqlgate-server.log";
/// In the socket directory: SQL the server runs each time it starts.
const INIT_FILE: &str = "init.sql";
/// While this file is in the data directory, the watchdog removes nothing
/// when its server ends: a restart follows.
pub(super) const RESTART_MARKER: &str = "sqlgate-restarting";

/// The watchdog: its arguments are the server's command line; LOG, DATA_DIR,
/// RUN_DIR and REMOVE_DATA come from the environment. It prints the server's
/// pid, then waits for EOF on stdin. The server's stdin is /dev/null, so only
/// our process holds the pipe's write end.
const WATCHDOG: &str = r#""$@" </dev/null >>"$LOG" 2>&1 & child=$!
trap '' INT HUP
echo "$child"
exec >/dev/null
cat >/dev/null
kill -TERM "$child" 2>/dev/null
wait "$child"
[ -e "$DATA_DIR/sqlgate-restarting" ] && exit 0
rm -rf "$RUN_DIR"
[ "$REMOVE_DATA" = 1 ] && rm -rf "$DATA_DIR"
exit 0"#;

/// A running private server. It stops when this handle is stopped or
/// dropped, or when this process exits.
#[derive(Debug)]
pub struct EmbeddedDatabase {
    /// The options, with the data directory made absolute.
    pub(super) options: EmbeddedOptions,
    /// The server binary and its arguments.
    pub(super) command: Vec<String>,
    /// Holds the socket (and the init file); removed when the server stops.
    run_dir: PathBuf,
    socket_path: PathBuf,
    /// The watchdog and the write end of its stdin; `None` once stopped or killed.
    pub(super) watchdog: Option<(Child, ChildStdin)>,
    pub(super) pid: u32,
    /// The gateway's least-privilege accounts.
    accounts: accounts::Accounts,
}

impl EmbeddedDatabase {
    /// Finds mariadbd (or mysqld), initialises the data directory if it
    /// holds no database yet, starts the server on a unix socket, and waits
    /// until it accepts connections. Database `sqlgate` then exists.
    pub fn start(options: &EmbeddedOptions) -> Result<EmbeddedDatabase, EmbeddedError> {
        let binary = find_binary(&["mariadbd", "mysqld"]).ok_or(EmbeddedError::NotFound(
            "the database server (mariadbd or mysqld)",
        ))?;
        let mariadb = binary.ends_with("mariadbd")
            || Command::new(&binary)
                .arg("--version")
                .output()
                .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("MariaDB"));
        let (data_dir, run_dir) = datadir::prepare(options, &binary, mariadb)?;
        let socket_path = run_dir.join("mysqld.sock");
        let mut command = vec![binary.display().to_string(), "--no-defaults".into()];
        command.extend(is_root().then(|| "--user=root".into()));
        command.extend([
            format!("--datadir={}", data_dir.display()),
            format!("--socket={}", socket_path.display()),
            // Not the shared /tmp: a starting server deletes the #sql* files there.
            format!("--tmpdir={}", run_dir.display()),
            format!("--log-error={}", data_dir.join(LOG_FILE).display()),
            format!("--pid-file={}", data_dir.join(datadir::PID_FILE).display()),
            format!("--init-file={}", run_dir.join(INIT_FILE).display()),
            "--character-set-server=utf8mb4".into(),
            "--collation-server=utf8mb4_general_ci".into(),
            "--max-connections=500".into(),
        ]);
        command.extend((!mariadb).then(|| "--mysqlx=OFF".into()));
        // MariaDB parses a session's tracked-variable list again at the first
        // variable change after every reset (the text path's SET STATEMENT):
        // ~7 µs per call with the default list (BENCHMARKS.md, "MariaDB's CPU
        // per point select, phase by phase"). The gateway tracks nothing by
        // default and turns on what it tracks per session ('*').
        command.extend(mariadb.then(|| "--session-track-system-variables=".into()));
        match options.tcp_port {
            Some(port) => {
                command.extend([format!("--port={port}"), "--bind-address=127.0.0.1".into()])
            }
            None => command.push("--skip-networking".into()),
        }
        command.extend(options.extra_args.iter().cloned());
        tracing::info!(
            server = %binary.display(),
            data_dir = %data_dir.display(),
            socket = %socket_path.display(),
            "starting private {} server",
            if mariadb { "MariaDB" } else { "MySQL" }
        );
        let accounts = accounts::Accounts::load_or_create(&data_dir, &options.principals)
            .map_err(io_error("reading or creating the accounts file"))?;
        let options = EmbeddedOptions {
            data_dir,
            ..options.clone()
        };
        let (watchdog, pid) = (None, 0);
        let mut database = EmbeddedDatabase {
            options,
            command,
            run_dir,
            socket_path,
            watchdog,
            pid,
            accounts,
        };
        database.launch()?;
        Ok(database)
    }

    /// The TCP port it listens on (127.0.0.1), if any.
    pub fn tcp_port(&self) -> Option<u16> {
        self.options.tcp_port
    }

    /// The unix socket the server listens on.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// A mysql_async URL for `database` as root over the unix socket, like
    /// `mysql://root@localhost/sqlgate?socket=/tmp/sqlgate-1-0/mysqld.sock`.
    pub fn url(&self, database: &str) -> String {
        let socket = url_encode(&self.socket_path.to_string_lossy(), true);
        format!(
            "mysql://root@localhost/{}?socket={socket}",
            url_encode(database, false)
        )
    }

    /// A mysql_async URL of the gateway's own database (`sqlgate`) as its
    /// least-privilege account: the read-only principals' one when
    /// `read_only`, else the main one.
    pub fn account_url(&self, read_only: bool) -> String {
        let socket = url_encode(&self.socket_path.to_string_lossy(), true);
        let (user, password) = self.accounts.credentials(read_only);
        format!(
            "mysql://{user}:{password}@localhost/{}?socket={socket}",
            accounts::DATABASE
        )
    }

    /// The accounts of the principals of [`EmbeddedOptions::principals`]
    /// (user names and passwords of the gateway's own database).
    pub fn principal_accounts(&self) -> &[accounts::PrincipalAccount] {
        self.accounts.principals()
    }

    /// What makes accounts for principals added while the server runs.
    pub fn account_maker(&self) -> accounts::AccountMaker {
        accounts::AccountMaker {
            data_dir: self.options.data_dir.clone(),
            root_url: self.url("mysql"),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops the server (SIGTERM; SIGKILL after 30 s), waits until it has
    /// exited, and removes the data directory when `remove_on_stop`.
    pub fn stop(mut self) -> Result<(), EmbeddedError> {
        self.stop_and_wait();
        tracing::info!("private database server stopped");
        self.remove_dirs()
    }

    /// Removes what the watchdog removes, for when it is gone (killed).
    fn remove_dirs(&self) -> Result<(), EmbeddedError> {
        let _ = std::fs::remove_dir_all(&self.run_dir);
        if self.options.remove_on_stop && self.options.data_dir.exists() {
            std::fs::remove_dir_all(&self.options.data_dir)
                .map_err(io_error("removing the data directory"))?;
        }
        Ok(())
    }

    fn stop_and_wait(&mut self) {
        if let Some((mut watchdog, stdin)) = self.watchdog.take() {
            drop(stdin);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(watchdog.try_wait(), Ok(None)) {
                if Instant::now() >= deadline {
                    tracing::warn!(
                        pid = self.pid,
                        "the database server did not stop; killing it"
                    );
                    signal(self.pid, "KILL");
                    let _ = watchdog.wait();
                    break;
                }
                std::thread::sleep(POLL);
            }
        }
        // Only if the watchdog itself was killed can the server still run.
        if running(self.pid) && signal(self.pid, "TERM") {
            wait_until_gone(self.pid, STOP_TIMEOUT);
        }
    }

    /// Starts the server under the watchdog and waits until it answers.
    pub(super) fn launch(&mut self) -> Result<(), EmbeddedError> {
        // (Re)create the socket directory: a failed restart has removed it.
        let mut builder = DirBuilder::new();
        builder
            .recursive(true)
            .mode(0o700)
            .create(&self.run_dir)
            .map_err(io_error("creating the socket directory"))?;
        let _ = std::fs::remove_file(&self.socket_path);
        let init =
            self.accounts.init_sql() + &self.accounts.outcomes_sql(&self.options.outcomes_schema);
        std::fs::write(self.run_dir.join(INIT_FILE), init)
            .map_err(io_error("writing the server's init file"))?;
        let log_path = self.options.data_dir.join(LOG_FILE);
        let remove_data = if self.options.remove_on_stop {
            "1"
        } else {
            "0"
        };
        let mut watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "sqlgate-watchdog"])
            .args(&self.command)
            .env("LOG", &log_path)
            .env("DATA_DIR", &self.options.data_dir)
            .env("RUN_DIR", &self.run_dir)
            .env("REMOVE_DATA", remove_data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(io_error("starting the database server's watchdog (sh)"))?;
        let stdin = watchdog.stdin.take().expect("stdin is piped");
        // The watchdog prints the server's pid, then closes its stdout.
        let mut pid = String::new();
        let stdout = watchdog.stdout.take().expect("stdout is piped");
        let read = { stdout }.read_to_string(&mut pid);
        self.pid = pid.trim().parse().unwrap_or(0);
        self.watchdog = Some((watchdog, stdin));
        read.map_err(io_error("reading the server's pid"))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if server_answers(&self.socket_path) {
                tracing::info!(pid = self.pid, "private database server is ready");
                return Ok(());
            }
            let exited = !running(self.pid);
            if exited || Instant::now() >= deadline {
                self.stop_and_wait();
                let log = last_lines(&std::fs::read_to_string(&log_path).unwrap_or_default());
                return Err(if exited {
                    EmbeddedError::Start(log)
                } else {
                    EmbeddedError::Timeout(log)
                });
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for EmbeddedDatabase {
    fn drop(&mut self) {
        // Closing the watchdog's stdin stops the server; reap it off-thread.
        if let Some((mut watchdog, stdin)) = self.watchdog.take() {
            drop(stdin);
            let _ = std::thread::Builder::new()
                .name("sqlgate-embedded-reaper".into())
                .spawn(move || watchdog.wait());
        } else {
            // Killed (or stopped) already: no watchdog will clean up.
            let _ = self.remove_dirs();
        }
    }
}

/// True when the server on `socket` sends its greeting (protocol 10).
pub(super) fn server_answers(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).is_ok() && header[4] == 10
}

/// A process's state letter and command name, from /proc/PID/stat.
fn proc_stat(pid: u32) -> Option<(char, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.split_once(" (")?;
    let (comm, rest) = rest.rsplit_once(") ")?;
    Some((rest.chars().next()?, comm.to_string()))
}

/// True while the process exists and has not exited (zombies have).
pub(super) fn running(pid: u32) -> bool {
    pid != 0 && proc_stat(pid).is_some_and(|(state, _)| state != 'Z')
}

/// True when `pid` is a running MariaDB/MySQL server (not a reused pid).
pub(super) fn is_server(pid: u32) -> bool {
    running(pid)
        && proc_stat(pid)
            .is_some_and(|(_, comm)| comm.contains("mariadbd") || comm.contains("mysqld"))
}

/// Waits until `pid` has exited; false if it still runs after `within`.
pub(super) fn wait_until_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while running(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
    true
}

/// Sends a signal with kill(1), so no unsafe code; true if it was delivered.
pub(super) fn signal(pid: u32, name: &str) -> bool {
    let mut kill = Command::new("kill");
    kill.args([format!("-{name}"), pid.to_string()])
        .stderr(Stdio::null());
    pid != 0 && kill.status().is_ok_and(|status| status.success())
}

/// Percent-encodes `text` for a URL path segment or query value.
fn url_encode(text: &str, keep_slash: bool) -> String {
    let keep = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep_slash && b == b'/';
    let encode = |b: u8| {
        if keep(b) {
            char::from(b).to_string()
        } else {
            format!("%{b:02X}")
        }
    };
    text.bytes().map(encode).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::temp_options;

    /// Waits (up to 30 s) until the watchdog has removed `dir`.
    fn removed_soon(dir: &Path) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while dir.exists() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        !dir.exists()
    }

    #[test]
    fn dropping_the_handle_stops_the_server() {
        let options = temp_options("drop");
        let database = EmbeddedDatabase::start(&options).expect("server starts");
        let pid = database.pid();
        assert!(is_server(pid));
        drop(database);
        let gone = wait_until_gone(pid, Duration::from_secs(30));
        assert!(gone, "server outlived its handle");
        // The watchdog removes the directory right after the server exits.
        assert!(
            removed_soon(&options.data_dir),
            "temporary data dir removed"
        );
    }

    /// Run by `the_server_dies_with_its_owner` in a child process.
    #[test]
    #[ignore = "a helper: runs only as a child of another test"]
    fn owner_process() {
        let Some(dir) = std::env::var_os("SQLGATE_TEST_OWNER_DIR") else {
            return;
        };
        let options = EmbeddedOptions {
            data_dir: dir.into(),
            remove_on_stop: true,
            ..Default::default()
        };
        let database = EmbeddedDatabase::start(&options).expect("server starts");
        println!("pid={}", database.pid());
        // Hold the server until the parent kills us (or closes our stdin).
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    }

    #[test]
    fn the_server_dies_with_its_owner() {
        use std::io::BufRead;
        let options = temp_options("owner");
        let mut owner = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "embedded::supervisor::tests::owner_process",
                "--ignored",
                "--nocapture",
            ])
            .env("SQLGATE_TEST_OWNER_DIR", &options.data_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(owner.stdout.take().unwrap()).lines();
        let pid: u32 = lines
            .find_map(|line| line.ok()?.strip_prefix("pid=")?.parse().ok())
            .expect("the owner reports its server's pid");
        assert!(is_server(pid));
        owner.kill().unwrap(); // SIGKILL: no destructor runs
        owner.wait().unwrap();
        assert!(
            wait_until_gone(pid, Duration::from_secs(30)),
            "server outlived its owner"
        );
        assert!(
            removed_soon(&options.data_dir),
            "temporary data dir removed"
        );
    }
}
