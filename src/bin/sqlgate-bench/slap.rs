//! `mariadb-slap`, MariaDB's C load client, as a second direct reference for
//! the point select: text protocol, one connection per client thread, no
//! Rust in the way.
//!
//! It reports no latencies, so the bench times the whole child process
//! (start, connections and queries: a few milliseconds beside a run of
//! seconds), takes the client's CPU time from the child's own accounting
//! (`cutime` + `cstime` of this process once the child is waited for) and
//! the database's from /proc, like the other paths.
use std::{
    io::Write,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use crate::{
    cpu::{Processes, waited_children_cpu},
    harness::{find_program, random_id},
    report::Measurement,
};

/// Different queries in the file each client thread runs through (and
/// starts over); different rows, like the other paths' random ids.
const DISTINCT_QUERIES: usize = 10_000;

/// A way to run `mariadb-slap` against the bench's database.
pub struct Slap {
    binary: PathBuf,
    /// Connection options (socket or host/port, user, database).
    connection: Vec<String>,
    /// The password, passed in the environment (MYSQL_PWD), not on the
    /// command line.
    password: Option<String>,
    /// The query file.
    queries: PathBuf,
}

impl Slap {
    /// Finds `mariadb-slap` (the given path, else on PATH, else /usr/bin)
    /// and writes its query file: `None`, with a warning, when there is no
    /// binary.
    pub fn new(
        explicit: Option<PathBuf>,
        opts: &mysql_async::Opts,
        sql_for_id: impl Fn(i64) -> String,
        point_rows: u64,
    ) -> std::io::Result<Option<Slap>> {
        let Some(binary) = explicit.or_else(|| find_program("mariadb-slap")) else {
            eprintln!(
                "warning: mariadb-slap not found (on PATH or /usr/bin): its rows are left out"
            );
            return Ok(None);
        };
        let mut connection = vec!["--no-defaults".to_string(), "--skip-ssl".to_string()];
        match opts.socket() {
            Some(socket) => connection.push(format!("--socket={socket}")),
            None => {
                connection.push(format!("--host={}", opts.ip_or_hostname()));
                connection.push(format!("--port={}", opts.tcp_port()));
                connection.push("--protocol=tcp".into());
            }
        }
        connection.push(format!("--user={}", opts.user().unwrap_or("root")));
        connection.push(format!(
            "--create-schema={}",
            opts.db_name().unwrap_or("sqlgate")
        ));
        let queries =
            std::env::temp_dir().join(format!("sqlgate-bench-slap-{}.sql", std::process::id()));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&queries)?);
        for iteration in 0..DISTINCT_QUERIES {
            writeln!(file, "{};", sql_for_id(random_id(point_rows, 0, iteration)))?;
        }
        file.flush()?;
        Ok(Some(Slap {
            binary,
            connection,
            password: opts.pass().map(str::to_string),
            queries,
        }))
    }

    /// Runs `queries` point selects over `clients` connections (one thread
    /// each) and measures them. Blocks: call it from a blocking thread.
    pub fn run(&self, processes: Processes, clients: usize, queries: u64) -> Option<Measurement> {
        // Each client runs queries / clients of them.
        let queries = (queries / clients as u64).max(1) * clients as u64;
        let mut command = Command::new(&self.binary);
        command
            .args(&self.connection)
            .arg(format!("--query={}", self.queries.display()))
            .arg("--delimiter=;")
            .arg(format!("--concurrency={clients}"))
            .arg("--iterations=1")
            .arg(format!("--number-of-queries={queries}"))
            .arg("--no-drop");
        if let Some(password) = &self.password {
            command.env("MYSQL_PWD", password);
        }
        let children_before = waited_children_cpu();
        let before = processes.snapshot();
        let started = Instant::now();
        let output = match command.output() {
            Ok(output) => output,
            Err(error) => {
                eprintln!("warning: running {}: {error}", self.binary.display());
                return None;
            }
        };
        let elapsed = started.elapsed();
        let mut cpu = before.until(&processes.snapshot());
        if !output.status.success() {
            eprintln!(
                "warning: mariadb-slap failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return None;
        }
        // Its own figure, for a look: it leaves out process start-up.
        let stdout = String::from_utf8_lossy(&output.stdout);
        if let Some(line) = stdout
            .lines()
            .find(|l| l.contains("Average number of seconds"))
        {
            eprintln!("  mariadb-slap says: {}", line.trim());
        }
        cpu.client = match (children_before, waited_children_cpu()) {
            (Some(before), Some(after)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        cpu.gateway = None;
        Some(Measurement {
            throughput: queries as f64 / elapsed.as_secs_f64(),
            latency: None,
            operations: queries,
            cpu,
            commands: Vec::new(),
        })
    }
}

impl Drop for Slap {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.queries);
    }
}

/// How many queries make a `mariadb-slap` run last about `duration` at
/// `throughput` (that of the direct path just measured), at least 1000.
pub fn queries_for(throughput: f64, duration: Duration) -> u64 {
    ((throughput * duration.as_secs_f64()) as u64).max(1000)
}
