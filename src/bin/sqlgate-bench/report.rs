//! Measurements and the printed tables.
use std::time::Duration;

use crate::cpu::CpuUse;

/// A way of running a workload: through the gateway, or one of the direct
/// references it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// tonic client → `sqlgate serve` → MariaDB.
    Gateway,
    /// Through the gateway, a transaction in two calls: its first statement
    /// begins it (`begin`), its last commits it (`commit`).
    GatewayInline,
    /// Through the gateway, a transaction as one `Transaction` stream, its
    /// requests (begin, the statements, commit) sent without waiting for the
    /// answers.
    GatewayStream,
    /// Through the gateway, the Commit carrying a `request_id` (a new one
    /// per transaction): the cost of exactly-once writes (a record INSERT in
    /// the transaction, before COMMIT).
    GatewayRequestId,
    /// Through a fleet of two gateways, each call of a transaction sent to
    /// the other instance than the previous one: every other call is
    /// forwarded to the transaction's owner.
    GatewayForwarded,
    /// mysql_async, each client task owning one connection for the whole
    /// workload: statement cache warm, no reset between calls. What a
    /// program that talks to MySQL directly does; the reference.
    DirectOwned,
    /// Direct (owned), each client paced so that all together they run at
    /// the gateway's throughput of the same workload: the database's CPU per
    /// query depends on how busy it is (a busier server sleeps and wakes
    /// less per query), so this compares the two at the same load.
    DirectOwnedPaced,
    /// `mariadb-slap`: the C client, text protocol, one connection per
    /// client thread.
    Slap,
    /// mysql_async through a `Pool` with its default `reset_connection(true)`:
    /// every call pays a COM_RESET_CONNECTION and prepares its statement
    /// again. The handicapped reference of earlier runs, kept for comparison.
    DirectPoolReset,
}

impl Path {
    /// The label printed in the tables.
    pub fn label(self) -> &'static str {
        match self {
            Path::Gateway => "gateway",
            Path::GatewayInline => "gateway (inline begin + commit)",
            Path::GatewayStream => "gateway (Transaction stream)",
            Path::GatewayRequestId => "gateway (Commit with a request_id)",
            Path::GatewayForwarded => "gateway, calls alternating between two instances",
            Path::DirectOwned => "direct (owned)",
            Path::DirectOwnedPaced => "direct (owned, at the gateway's rate)",
            Path::Slap => "mariadb-slap",
            Path::DirectPoolReset => "direct (pool + reset)",
        }
    }

    /// Through the gateway (either way of calling it).
    pub fn is_gateway(self) -> bool {
        matches!(
            self,
            Path::Gateway
                | Path::GatewayInline
                | Path::GatewayStream
                | Path::GatewayRequestId
                | Path::GatewayForwarded
        )
    }
}

/// What one path of one workload measured.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    /// Operations (or rows, for streams) per second.
    pub throughput: f64,
    /// Median and 99th percentile latency of one operation, when measured.
    pub latency: Option<(Duration, Duration)>,
    /// Operations (or rows) done.
    pub operations: u64,
    /// CPU time each process spent on them.
    pub cpu: CpuUse,
    /// The commands the database counted per operation (its `Com_*`
    /// counters and `Questions`), biggest first.
    pub commands: Vec<(String, f64)>,
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
            latency: Some((at(0.5), at(0.99))),
            operations: latencies.len() as u64,
            cpu: CpuUse::default(),
            commands: Vec::new(),
        }
    }

    /// CPU time per operation of one process, in µs.
    fn per_operation(&self, cpu: Option<Duration>) -> Option<f64> {
        match cpu {
            Some(cpu) if self.operations > 0 => {
                Some(cpu.as_secs_f64() * 1e6 / self.operations as f64)
            }
            _ => None,
        }
    }
}

/// One workload: what each path measured, the gateway first.
pub struct Row {
    /// Workload name.
    pub name: String,
    /// Unit of throughput.
    pub unit: &'static str,
    /// Each path's measurement, in the order they ran.
    pub paths: Vec<(Path, Measurement)>,
    /// The gateway's peak RSS during the workload, KiB.
    pub gateway_peak_kib: u64,
    /// Whether the gateway path reaches the database (not so for the
    /// health Check), so that the database's CPU time compares.
    pub reaches_database: bool,
}

impl Row {
    fn get(&self, path: Path) -> Option<&Measurement> {
        self.paths.iter().find(|(p, _)| *p == path).map(|(_, m)| m)
    }
}

fn micros(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

/// A CPU figure in µs, with more digits when it is small ("–" if unknown).
fn cpu_micros(value: Option<f64>) -> String {
    match value {
        Some(micros) if micros < 10.0 => format!("{micros:.2}"),
        Some(micros) => format!("{micros:.0}"),
        None => "–".into(),
    }
}

/// Prints the tables as Markdown, so they can go into BENCHMARKS.md as is.
pub fn print(rows: &[Row], rest_kib: u64) {
    println!();
    println!(
        "Throughput, latency and CPU time per operation (per row for streams; per \
         transaction for transactions), µs, from /proc. \"gateway ÷ path\" is the \
         gateway's throughput over that path's, from the same run."
    );
    println!();
    println!(
        "| workload | path | throughput | gateway ÷ path | p50 / p99 (µs) | CPU/op: client | gateway | MariaDB | gateway peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let gateway = row.get(Path::Gateway);
        for (index, (path, m)) in row.paths.iter().enumerate() {
            let ratio = match (path, gateway) {
                (path, _) if path.is_gateway() => "–".to_string(),
                (_, None) => "–".to_string(),
                (_, Some(g)) => {
                    format!("{:.2}", g.throughput / m.throughput.max(f64::MIN_POSITIVE))
                }
            };
            let latency = m
                .latency
                .map(|(p50, p99)| format!("{} / {}", micros(p50), micros(p99)))
                .unwrap_or_default();
            let rss = if path.is_gateway() {
                format!("{:.1} MiB", row.gateway_peak_kib as f64 / 1024.0)
            } else {
                String::new()
            };
            println!(
                "| {} | {} | {:.0} {} | {} | {} | {} | {} | {} | {} |",
                if index == 0 { row.name.as_str() } else { "" },
                path.label(),
                m.throughput,
                row.unit,
                ratio,
                latency,
                cpu_micros(m.per_operation(m.cpu.client)),
                cpu_micros(m.per_operation(m.cpu.gateway)),
                cpu_micros(m.per_operation(m.cpu.database)),
                rss,
            );
        }
    }
    println!();
    println!("gateway RSS at rest: {:.1} MiB", rest_kib as f64 / 1024.0);
    println!();
    println!("The gateway's best way of calling against direct (owned), in throughput:");
    println!();
    for row in rows {
        let best = row
            .paths
            .iter()
            .filter(|(path, _)| path.is_gateway())
            .max_by(|a, b| a.1.throughput.total_cmp(&b.1.throughput));
        if let (Some((path, best)), Some(owned)) = (best, row.get(Path::DirectOwned)) {
            println!(
                "- {}: {} {:.0} {} = {:.2}× direct (owned)",
                row.name,
                path.label(),
                best.throughput,
                row.unit,
                best.throughput / owned.throughput.max(f64::MIN_POSITIVE)
            );
        }
    }
    for row in rows {
        if let (Some(local), Some(forwarded)) =
            (row.get(Path::Gateway), row.get(Path::GatewayForwarded))
        {
            println!(
                "- {}: calls alternating between two instances {:.0} {} = {:.2}× all calls to the owner; gateways' CPU per op {} µs vs {} µs",
                row.name,
                forwarded.throughput,
                row.unit,
                forwarded.throughput / local.throughput.max(f64::MIN_POSITIVE),
                cpu_micros(forwarded.per_operation(forwarded.cpu.gateway)),
                cpu_micros(local.per_operation(local.cpu.gateway)),
            );
        }
    }
    println!();
    println!("The database's CPU time per operation, through the gateway and direct (owned):");
    println!();
    for row in rows {
        let database = |path| row.get(path).and_then(|m| m.per_operation(m.cpu.database));
        if let (Some(gateway), Some(paced)) =
            (database(Path::Gateway), database(Path::DirectOwnedPaced))
        {
            println!(
                "- {}: MariaDB CPU per op at the same rate: gateway {} µs vs direct-owned paced {} µs = {:.1}×",
                row.name,
                cpu_micros(Some(gateway)),
                cpu_micros(Some(paced)),
                gateway / paced.max(f64::MIN_POSITIVE)
            );
        }
        let line = match (database(Path::Gateway), database(Path::DirectOwned)) {
            _ if !row.reaches_database => {
                "MariaDB CPU per op: – (the gateway's health Check does not reach the database)"
                    .into()
            }
            (Some(gateway), Some(owned)) => format!(
                "MariaDB CPU per op: gateway {} µs vs direct-owned {} µs = {}",
                cpu_micros(Some(gateway)),
                cpu_micros(Some(owned)),
                if owned > 0.0 {
                    format!("{:.1}×", gateway / owned)
                } else {
                    "–".into()
                }
            ),
            _ => "MariaDB CPU per op: – (not measured: the database is not a local process the bench started)".into(),
        };
        println!("- {}: {line}", row.name);
    }
    println!();
    println!(
        "What the database counted per operation (its Com_* counters and Questions; \
         only those of at least 0.01 per operation):"
    );
    println!();
    for row in rows {
        for (path, m) in &row.paths {
            if m.commands.is_empty() {
                continue;
            }
            let commands: Vec<String> = m
                .commands
                .iter()
                .map(|(name, per_op)| format!("{name} {per_op:.2}"))
                .collect();
            println!("- {}, {}: {}", row.name, path.label(), commands.join(", "));
        }
    }
}
