//! Measurements and the printed table.
use std::time::Duration;

/// What one side of one workload measured.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    /// Operations (or rows, for streams) per second.
    pub throughput: f64,
    /// Median latency of one operation.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
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
}
