//! Measurements and the printed table.
use std::time::Duration;

use crate::cpu::CpuUse;

/// What one side of one workload measured.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    /// Operations (or rows, for streams) per second.
    pub throughput: f64,
    /// Median latency of one operation.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Operations (or rows) done.
    pub operations: u64,
    /// CPU time each process spent on them.
    pub cpu: CpuUse,
}

impl Measurement {
    /// From the latencies of operations done in `elapsed`.
    pub fn from_latencies(mut latencies: Vec<Duration>, elapsed: Duration) -> Measurement {
        latencies.sort_unstable();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Measurement {
            throughput: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: at(0.5),
            p99: at(0.99),
            operations: latencies.len() as u64,
            cpu: CpuUse::default(),
        }
    }
}

/// One row of the table.
pub struct Row {
    /// Workload name.
    pub name: String,
    /// Unit of throughput.
    pub unit: &'static str,
    /// Through the gateway.
    pub gateway: Measurement,
    /// Directly with mysql_async.
    pub direct: Measurement,
    /// The gateway's peak RSS during the workload, KiB.
    pub gateway_peak_kib: u64,
}

fn micros(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

/// CPU time per operation, in µs (or "–" when the process was not watched).
fn per_operation(cpu: Option<Duration>, operations: u64) -> String {
    match cpu {
        Some(cpu) if operations > 0 => {
            let micros = cpu.as_secs_f64() * 1e6 / operations as f64;
            if micros < 10.0 {
                format!("{micros:.2}")
            } else {
                format!("{micros:.0}")
            }
        }
        _ => "–".into(),
    }
}

/// Prints the table as Markdown, so it can go into BENCHMARKS.md as is.
pub fn print(rows: &[Row], rest_kib: u64) {
    println!();
    println!(
        "| workload | gateway | direct | ratio | gateway p50 / p99 (µs) | direct p50 / p99 (µs) | p50 diff (µs) | gateway peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for row in rows {
        let ratio = row.gateway.throughput / row.direct.throughput.max(f64::MIN_POSITIVE);
        let diff = row.gateway.p50.as_secs_f64() * 1e6 - row.direct.p50.as_secs_f64() * 1e6;
        println!(
            "| {} | {:.0} {} | {:.0} {} | {:.2} | {} / {} | {} / {} | {:+.0} | {:.1} MiB |",
            row.name,
            row.gateway.throughput,
            row.unit,
            row.direct.throughput,
            row.unit,
            ratio,
            micros(row.gateway.p50),
            micros(row.gateway.p99),
            micros(row.direct.p50),
            micros(row.direct.p99),
            diff,
            row.gateway_peak_kib as f64 / 1024.0,
        );
    }
    println!();
    println!("gateway RSS at rest: {:.1} MiB", rest_kib as f64 / 1024.0);
    println!();
    println!(
        "CPU time per operation (per row for streams), µs, from /proc: what each process spent"
    );
    println!();
    println!(
        "| workload | gateway path: client | gateway | database | direct path: client | database |"
    );
    println!("|---|---|---|---|---|---|");
    for row in rows {
        let (g, d) = (&row.gateway, &row.direct);
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            row.name,
            per_operation(g.cpu.client, g.operations),
            per_operation(g.cpu.gateway, g.operations),
            per_operation(g.cpu.database, g.operations),
            per_operation(d.cpu.client, d.operations),
            per_operation(d.cpu.database, d.operations),
        );
    }
}
