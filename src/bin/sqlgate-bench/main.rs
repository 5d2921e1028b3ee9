//! `sqlgate-bench`: measures sqlgate against talking to MySQL directly.
//!
//! Sets up its data, starts a gateway process (the `sqlgate` binary next to
//! this one) and runs each workload in the same run through the gateway
//! (tonic client) and along the direct references it is compared with, at
//! the same concurrency: mysql_async with one connection owned by each
//! client task (the reference: statement cache warm, no reset),
//! `mariadb-slap` for the point select, and mysql_async through a pool that
//! resets connections (the handicapped reference of earlier runs, kept as
//! an extra row). It prints throughput, p50/p99 latency, the gateway's
//! ratio to each path, the CPU time per operation of the client, the
//! gateway and the database, and the gateway's peak RSS. Build with
//! `--release`.
use std::time::Duration;

use clap::Parser;

mod cpu;
mod fleet;
mod gateway_process;
mod h2load;
mod harness;
mod replica_reads;
mod report;
mod server_counters;
mod slap;
mod span_sink;
mod stream;
mod workloads;

/// Benchmark sqlgate against direct mysql_async access.
#[derive(Debug, Parser)]
#[command(name = "sqlgate-bench")]
pub struct Args {
    /// Database to use; without it, a private MariaDB is started in a temp dir.
    #[arg(long, env = "SQLGATE_DATABASE_URL")]
    database_url: Option<String>,
    /// How long each timed workload runs, per side.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Rows of the streaming table.
    #[arg(long, default_value_t = 1_000_000)]
    stream_rows: u64,
    /// Rows of the point-select table.
    #[arg(long, default_value_t = 100_000)]
    point_rows: u64,
    /// Only run workloads whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// The `mariadb-slap` binary; without it, `mariadb-slap` on PATH, else
    /// in /usr/bin.
    #[arg(long, env = "SQLGATE_BENCH_MARIADB_SLAP")]
    mariadb_slap: Option<std::path::PathBuf>,
    /// Leave `mariadb-slap` out.
    #[arg(long)]
    no_slap: bool,
    /// The `h2load` binary (Debian's nghttp2-client) for the gateway-CPU
    /// workload; without it, `h2load` on PATH, else in /usr/bin.
    #[arg(long, env = "SQLGATE_BENCH_H2LOAD")]
    h2load: Option<std::path::PathBuf>,
    /// Rounds of the h2load workload (each runs every one of its calls once,
    /// back to back).
    #[arg(long, default_value_t = 2)]
    h2load_rounds: usize,
    /// Another `sqlgate` binary (e.g. one built from an earlier commit) that
    /// the h2load workload measures too, in the same rounds, for a
    /// before/after comparison within one run.
    #[arg(long)]
    h2load_baseline: Option<std::path::PathBuf>,
    /// Run the gateway with span export on (`--otlp-endpoint`), to a
    /// collector in this process that counts the spans.
    #[arg(long)]
    gateway_otlp: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build; benchmark with `cargo run --release --bin sqlgate-bench`"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(workloads::run(args))
}
