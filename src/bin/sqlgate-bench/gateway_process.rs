//! The gateway under test, as a separate process so that its memory can be
//! measured on its own.
use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

/// The gateway's logging: what the bench runs it with unless told otherwise
/// (per-RPC lines off, JSON), or the gateway's own defaults (text at `info`,
/// one line per RPC), as an operator who sets nothing gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logging {
    /// `RUST_LOG=warn,sqlgate::server=info` (or `SQLGATE_BENCH_GATEWAY_LOG`),
    /// `--log-format json`.
    Bench,
    /// No `RUST_LOG`, no `--log-format`: the gateway's defaults.
    Default,
    /// `RUST_LOG` set to this, the default format.
    Filter(&'static str),
}

/// A running `sqlgate serve`.
pub struct GatewayProcess {
    child: Child,
    /// The address it listens on.
    pub address: String,
}

impl GatewayProcess {
    /// Starts the `sqlgate` binary that sits next to this one, listening on
    /// `listen`, with `extra` flags (e.g. `--peers`).
    pub fn start_with(
        database_url: &str,
        pool_max: usize,
        listen: &str,
        extra: &[String],
    ) -> std::io::Result<GatewayProcess> {
        Self::start_logging(database_url, pool_max, listen, extra, Logging::Bench, None)
    }

    /// [`GatewayProcess::start_with`], logging as `logging` says, running
    /// `binary` (else the `sqlgate` next to this one).
    pub fn start_logging(
        database_url: &str,
        pool_max: usize,
        listen: &str,
        extra: &[String],
        logging: Logging,
        binary: Option<&std::path::Path>,
    ) -> std::io::Result<GatewayProcess> {
        let binary = match binary {
            Some(binary) => binary.to_path_buf(),
            None => sibling_binary("sqlgate")?,
        };
        let mut command = Command::new(&binary);
        // SQLGATE_BENCH_GATEWAY_WORKERS=N runs the gateway with N tokio
        // workers (TOKIO_WORKER_THREADS) without changing the client's.
        if let Ok(workers) = std::env::var("SQLGATE_BENCH_GATEWAY_WORKERS") {
            command.env("TOKIO_WORKER_THREADS", workers);
        }
        command.args(["serve", "--listen", listen]);
        match logging {
            // SQLGATE_BENCH_GATEWAY_LOG=info (with ..._LOG_FILE) keeps the
            // gateway's per-RPC timings for a closer look.
            Logging::Bench => command.args(["--log-format", "json"]).env(
                "RUST_LOG",
                std::env::var("SQLGATE_BENCH_GATEWAY_LOG")
                    .unwrap_or_else(|_| "warn,sqlgate::server=info".into()),
            ),
            Logging::Default => command.env_remove("RUST_LOG"),
            Logging::Filter(filter) => command.env("RUST_LOG", filter),
        };
        let mut child = command
            .env_remove("SQLGATE_LOG_FORMAT")
            .args(["--database-url", database_url])
            // The benchmark's private servers are reached as root.
            .arg("--allow-admin-account")
            .args(extra)
            .args(["--pool-min", &pool_max.to_string()])
            .args(["--pool-max", &(pool_max + 8).to_string()])
            .args(["--max-transactions", &pool_max.to_string()])
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("piped");
        let mut lines = BufReader::new(stderr).lines();
        let address = loop {
            let Some(line) = lines.next() else {
                return Err(std::io::Error::other("the gateway exited before listening"));
            };
            let line = line?;
            if line.contains("listening for gRPC") {
                break listening_address(&line);
            }
        };
        let log_file = std::env::var_os("SQLGATE_BENCH_GATEWAY_LOG_FILE");
        std::thread::spawn(move || {
            let mut file = log_file.and_then(|path| std::fs::File::create(path).ok());
            for line in lines.map_while(Result::ok) {
                if let Some(file) = file.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(file, "{line}");
                }
            }
        });
        Ok(GatewayProcess { child, address })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now and at its peak, in KiB (from /proc).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Resets the peak-RSS counter (Linux: write 5 to clear_refs).
    pub fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The address in the gateway's "listening for gRPC" line, JSON
/// (`"address":"…"`) or text (`address=…`).
fn listening_address(line: &str) -> String {
    let (start, end): (usize, &[char]) = match line.find("\"address\":\"") {
        Some(at) => (at + 11, &['"']),
        None => (line.find("address=").map_or(0, |at| at + 8), &[' ', '"']),
    };
    line[start..]
        .split(end)
        .next()
        .unwrap_or_default()
        .to_string()
}

fn sibling_binary(name: &str) -> std::io::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(std::io::Error::other(format!(
            "{} not found: build it first (cargo build --release)",
            path.display()
        )))
    }
}
