//! A gateway started as a separate process, the way an orchestrator runs it:
//! for tests of signals, exit codes, flags and logs.
use std::{
    ffi::OsStr,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sqlgate::api::database_client::DatabaseClient;
use tonic::transport::Channel;

/// A running `sqlgate serve` (JSON logs, listening on 127.0.0.1:0).
pub struct GatewayProcess {
    child: Child,
    /// The address it listens on for gRPC.
    pub address: String,
    log: Arc<Mutex<String>>,
    /// The stderr nobody reads (`start_with_stalled_log`), kept open.
    _unread: Option<LogLines>,
}

type LogLines = std::io::Lines<BufReader<std::process::ChildStderr>>;

impl GatewayProcess {
    /// Starts `sqlgate serve --listen 127.0.0.1:0 --log-format json ARGS`
    /// (ARGS may name another `--listen`) with extra environment `env`;
    /// returns once it listens.
    pub fn start<I, S>(args: I, env: &[(&str, &str)]) -> GatewayProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (child, address, log, lines) =
            Self::spawn(args, env).expect("the gateway logs its address");
        Self::collecting(child, address, log, lines)
    }

    /// Keeps reading the log, so the process never blocks on a full pipe.
    fn collecting(child: Child, address: String, log: String, lines: LogLines) -> GatewayProcess {
        let log = Arc::new(Mutex::new(log));
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = collected.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        GatewayProcess {
            child,
            address,
            log,
            _unread: None,
        }
    }

    /// `size` gateway processes as one fleet: each listens on a port of its
    /// own and gets `args(its listen address, the comma-separated peers)`
    /// and extra environment `env`.
    /// The ports are picked free beforehand (peers must know them before
    /// anyone starts), so another test may take one meanwhile: an instance
    /// that exits before it listens makes the whole fleet start again on
    /// other ports.
    pub fn fleet(
        size: usize,
        env: &[(&str, &str)],
        args: impl Fn(&str, &str) -> Vec<String>,
    ) -> Vec<GatewayProcess> {
        for _ in 0..5 {
            let addresses: Vec<String> = (0..size)
                .map(|_| format!("127.0.0.1:{}", super::free_port()))
                .collect();
            let peers = addresses.join(",");
            let started: Vec<GatewayProcess> = addresses
                .iter()
                .map_while(|address| Self::try_start(args(address, &peers), env))
                .collect();
            if started.len() == size {
                return started;
            }
        }
        panic!("a fleet of {size} gateways did not start on free ports in 5 attempts");
    }

    /// The arguments every fleet member needs, `--database-url URL --listen
    /// LISTEN --peers PEERS`, followed by `extra`.
    pub fn fleet_args(url: &str, listen: &str, peers: &str, extra: &[&str]) -> Vec<String> {
        ["--database-url", url, "--listen", listen, "--peers", peers]
            .iter()
            .chain(extra)
            .map(|arg| arg.to_string())
            .collect()
    }

    /// Like `start`, but `None` if the process exits before it listens.
    pub fn try_start<I, S>(args: I, env: &[(&str, &str)]) -> Option<GatewayProcess>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (child, address, log, lines) = Self::spawn(args, env)?;
        Some(Self::collecting(child, address, log, lines))
    }

    /// Like `start`, but nobody reads its stderr once it listens: the pipe
    /// stays open and fills up, like a log collector that stalled.
    pub fn start_with_stalled_log<I, S>(args: I, env: &[(&str, &str)]) -> GatewayProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (child, address, log, lines) =
            Self::spawn(args, env).expect("the gateway logs its address");
        GatewayProcess {
            child,
            address,
            log: Arc::new(Mutex::new(log)),
            _unread: Some(lines),
        }
    }

    /// Spawns the process and reads its log until it listens; `None` (the
    /// process reaped) if it exits first.
    fn spawn<I, S>(args: I, env: &[(&str, &str)]) -> Option<(Child, String, String, LogLines)>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sqlgate"));
        command.args(["serve", "--log-format", "json"]);
        if !args.iter().any(|a| a == "--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = command
            .args(args)
            // The test server's accounts are root's (see TestGateway); a
            // test may say "false" in `env`.
            .env("SQLGATE_ALLOW_ADMIN_ACCOUNT", "true")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sqlgate binary starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut log = String::new();
        let address = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                return None;
            };
            log.push_str(&line);
            log.push('\n');
            if line.contains("listening for gRPC") {
                let start = line.find("\"address\":\"").expect("address field") + 11;
                break line[start..].split('"').next().unwrap().to_string();
            }
        };
        Some((child, address, log, lines))
    }

    /// A gRPC client of it (plaintext).
    pub async fn client(&self) -> DatabaseClient<Channel> {
        DatabaseClient::connect(format!("http://{}", self.address))
            .await
            .expect("the gateway accepts connections")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal, e.g. "-TERM".
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(sent.success());
    }

    /// Everything the process has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// True once the log contains `text`, waiting at most `within` (the
    /// access log is written in batches, so a line may lag the answer).
    pub async fn logs_within(&self, text: &str, within: Duration) -> bool {
        super::eventually(within, || async { self.log().contains(text) }).await
    }

    /// Waits for the process to exit; returns its exit code and how long it took.
    pub async fn exit(mut self, within: Duration) -> (Option<i32>, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), started.elapsed());
            }
            if started.elapsed() > within {
                let _ = self.child.kill();
                panic!("the gateway did not exit within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then the exit code once it has exited.
    pub async fn stop(self) -> Option<i32> {
        self.signal("-TERM");
        self.exit(Duration::from_secs(30)).await.0
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
