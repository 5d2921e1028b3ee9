//! The gateway's own CPU per call, measured with `h2load` (Debian's
//! nghttp2-client): a C HTTP/2 load client in a process of its own, so that
//! nothing of the client's work counts as the gateway's. It sends the same
//! framed gRPC request over and over (4 connections × 8 streams, as in
//! issue 21) to `grpc.health.v1.Health/Check` — the floor: the gRPC work
//! every call pays, no database — and to `sqlgate.v1.Database/Execute` with
//! the point select, on gateways of their own: one with the gateway's
//! default logging (text at `info`, a line per RPC), one with
//! the per-RPC lines off (`RUST_LOG=warn,sqlgate::server=info`). The gateway's CPU time over each run, from /proc,
//! divided by the calls h2load completed, is the figure; the paths of a
//! round run back to back, and rounds repeat, because the machine is shared.
use std::{
    io::Write,
    path::{Path as FsPath, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use prost::Message;
use sqlgate::api::{ExecuteRequest, ExecuteResponse, database_client::DatabaseClient};
use tonic_health::pb::HealthCheckRequest;

use crate::{
    cpu::{Processes, process_cpu, waited_children_cpu},
    gateway_process::{GatewayProcess, Logging},
    harness::find_program,
    workloads::{Bench, CONCURRENCY, POINT_SELECT, int},
};

/// The workload's name (for `--only`).
pub const H2LOAD_WORKLOAD: &str = "gateway CPU per call (h2load, 4 connections × 8 streams)";

/// HTTP/2 connections h2load opens, and streams it keeps open on each.
const CONNECTIONS: usize = 4;
const STREAMS: usize = 8;

/// The row the point select reads (the same every call: h2load sends one body).
const POINT_ID: i64 = 42;

/// A gateway the workload measures.
struct Subject {
    /// Which build it runs, as printed.
    binary: String,
    /// Its logging, as printed.
    logging: &'static str,
    gateway: GatewayProcess,
    /// Whether the floor (health Check) is measured on it too.
    with_floor: bool,
}

/// One h2load run against one gateway.
#[derive(Debug, Clone)]
struct Run {
    /// The build, as printed.
    binary: String,
    /// What was called, as printed.
    what: &'static str,
    /// The gateway's logging, as printed.
    logging: &'static str,
    calls: u64,
    elapsed: Duration,
    gateway: Duration,
    client: Option<Duration>,
    database: Option<Duration>,
    /// Calls whose response did not carry the expected body (gRPC errors
    /// come with HTTP 200 and no body), estimated from h2load's byte count.
    short_calls: u64,
}

impl Run {
    fn per_call(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.calls.max(1) as f64
    }
}

/// What a call sends and should get back.
struct Target {
    what: &'static str,
    path: &'static str,
    /// The framed request (h2load's `--data` file).
    body: PathBuf,
    /// Bytes of the framed response of a successful call.
    response_bytes: u64,
}

impl Bench {
    /// Runs the h2load workload and prints its table; says why instead when
    /// there is no h2load.
    pub async fn h2load_table(&self) -> std::io::Result<()> {
        let Some(h2load) = self
            .args
            .h2load
            .clone()
            .or_else(|| find_program("h2load"))
            .filter(|path| path.is_file())
        else {
            eprintln!(
                "warning: h2load not found (--h2load, on PATH or /usr/bin; Debian: apt-get install nghttp2-client): the \"{H2LOAD_WORKLOAD}\" rows are left out"
            );
            println!(
                "\n{H2LOAD_WORKLOAD}: not measured: h2load not found (Debian: apt-get install nghttp2-client)"
            );
            return Ok(());
        };
        let health = Target {
            what: "health Check (floor)",
            path: "/grpc.health.v1.Health/Check",
            body: write_body("health", &HealthCheckRequest::default())?,
            response_bytes: 5 + 2, // status SERVING: one field of one byte
        };
        let request = ExecuteRequest {
            sql: POINT_SELECT.into(),
            params: vec![int(POINT_ID)],
            ..Default::default()
        };
        let execute = Target {
            what: "Execute point select",
            path: "/sqlgate.v1.Database/Execute",
            body: write_body("execute", &request)?,
            response_bytes: 0,
        };
        // Each binary (this build, and a baseline if given) with the
        // gateway's default logging (floor and point select) and with the
        // per-RPC lines off (point select).
        let mut binaries = vec![("this build".to_string(), None)];
        if let Some(baseline) = &self.args.h2load_baseline {
            binaries.push((format!("baseline ({})", baseline.display()), Some(baseline)));
        }
        let mut subjects = Vec::new();
        for (binary, path) in &binaries {
            for (logging, label, with_floor) in [
                (Logging::Default, "default (info, text)", true),
                // The start-up lines stay on: the bench reads the address.
                (
                    Logging::Filter("warn,sqlgate::server=info"),
                    "per-RPC lines off",
                    false,
                ),
            ] {
                let gateway = GatewayProcess::start_logging(
                    &self.url,
                    CONCURRENCY,
                    "127.0.0.1:0",
                    &[],
                    logging,
                    path.map(PathBuf::as_path),
                )?;
                subjects.push(Subject {
                    binary: binary.clone(),
                    logging: label,
                    gateway,
                    with_floor,
                });
            }
        }
        // The answer of a successful point select, to tell failed calls.
        let mut execute = execute;
        execute.response_bytes = expected_response(&subjects[0].gateway.address, request).await?;
        let duration = self.args.duration;
        let mut runs = Vec::new();
        for round in 1..=self.args.h2load_rounds {
            for subject in &subjects {
                let targets: &[&Target] = if subject.with_floor {
                    &[&health, &execute]
                } else {
                    &[&execute]
                };
                for target in targets {
                    eprintln!(
                        "{H2LOAD_WORKLOAD}, round {round}: {}, {}, logging {}...",
                        subject.binary, target.what, subject.logging
                    );
                    // Warm up (connections, statement caches), not measured.
                    let warm = Duration::from_secs(1).min(duration);
                    h2load_run(&h2load, subject, target, warm, self.processes)?;
                    let run = h2load_run(&h2load, subject, target, duration, self.processes)?;
                    runs.push((round, run));
                }
            }
        }
        for target in [&health, &execute] {
            let _ = std::fs::remove_file(&target.body);
        }
        print(&runs);
        Ok(())
    }
}

/// The gRPC frame of `message` (uncompressed), written to a temp file.
fn write_body(name: &str, message: &impl Message) -> std::io::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!(
        "sqlgate-bench-h2load-{name}-{}.bin",
        std::process::id()
    ));
    let mut file = std::fs::File::create(&path)?;
    file.write_all(&frame(&message.encode_to_vec()))?;
    Ok(path)
}

/// A gRPC length-prefixed message: flag 0 (not compressed), length, bytes.
fn frame(encoded: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(5 + encoded.len());
    framed.push(0);
    framed.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    framed.extend_from_slice(encoded);
    framed
}

/// Bytes of the framed answer to `request`, asked once with tonic.
async fn expected_response(address: &str, request: ExecuteRequest) -> std::io::Result<u64> {
    let mut client = DatabaseClient::connect(format!("http://{address}"))
        .await
        .map_err(std::io::Error::other)?;
    let response: ExecuteResponse = client
        .execute(request)
        .await
        .map_err(std::io::Error::other)?
        .into_inner();
    if response.rows.len() != 1 {
        return Err(std::io::Error::other(format!(
            "the point select of id {POINT_ID} returned {} rows",
            response.rows.len()
        )));
    }
    Ok(5 + response.encoded_len() as u64)
}

/// One h2load run of `duration` against `gateway`, measured.
fn h2load_run(
    h2load: &FsPath,
    subject: &Subject,
    target: &Target,
    duration: Duration,
    processes: Processes,
) -> std::io::Result<Run> {
    let gateway = &subject.gateway;
    let mut command = Command::new(h2load);
    command
        .arg(format!("--clients={CONNECTIONS}"))
        .arg(format!("--max-concurrent-streams={STREAMS}"))
        .arg(format!("--duration={}", duration.as_secs().max(1)))
        .arg(format!("--data={}", target.body.display()))
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .arg(format!("http://{}{}", gateway.address, target.path));
    let profile = profile(subject, target, duration)?;
    let children_before = waited_children_cpu();
    let gateway_before = process_cpu(gateway.pid());
    let database_before = processes.database.and_then(process_cpu);
    let started = Instant::now();
    let output = command.output()?;
    let elapsed = started.elapsed();
    if let Some(mut perf) = profile {
        // perf writes its file out on SIGINT.
        let _ = Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status();
        let _ = perf.wait();
    }
    let gateway_cpu = process_cpu(gateway.pid())
        .zip(gateway_before)
        .map(|(after, before)| after.saturating_sub(before))
        .ok_or_else(|| std::io::Error::other("the gateway's CPU time cannot be read"))?;
    let database = processes
        .database
        .and_then(process_cpu)
        .zip(database_before)
        .map(|(after, before)| after.saturating_sub(before));
    let client = waited_children_cpu()
        .zip(children_before)
        .map(|(after, before)| after.saturating_sub(before));
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "h2load failed ({}): {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let Some(summary) = Summary::parse(&stdout) else {
        return Err(std::io::Error::other(format!(
            "h2load's output was not understood: {stdout}"
        )));
    };
    let expected = summary.succeeded * target.response_bytes;
    let short_calls = expected.saturating_sub(summary.data_bytes) / target.response_bytes.max(1);
    Ok(Run {
        binary: subject.binary.clone(),
        what: target.what,
        logging: subject.logging,
        calls: summary.succeeded,
        // h2load's own clock for the calls (-D), not its start-up.
        elapsed: summary.elapsed.unwrap_or(elapsed),
        gateway: gateway_cpu,
        client,
        database,
        short_calls,
    })
}

/// With `SQLGATE_BENCH_PERF_DIR` set, a `perf record` of the gateway for
/// the measured runs (not the warm-ups), to a file named after the run in
/// that directory. Its sampling adds to the gateway's CPU time a little.
fn profile(
    subject: &Subject,
    target: &Target,
    duration: Duration,
) -> std::io::Result<Option<std::process::Child>> {
    let Some(dir) = std::env::var_os("SQLGATE_BENCH_PERF_DIR") else {
        return Ok(None);
    };
    if duration < Duration::from_secs(2) {
        return Ok(None);
    }
    let name: String = format!("{}-{}-{}", subject.binary, target.what, subject.logging)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let file = FsPath::new(&dir).join(format!("{name}.data"));
    let perf = Command::new("perf")
        .args(["record", "-F", "499", "--call-graph", "dwarf,16384", "-o"])
        .arg(&file)
        .args(["-p", &subject.gateway.pid().to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    eprintln!("  profiling the gateway into {}", file.display());
    Ok(Some(perf))
}

/// What h2load printed, the parts the bench reads.
#[derive(Debug, PartialEq)]
struct Summary {
    /// Requests that got a 2xx answer.
    succeeded: u64,
    /// Bytes of response bodies (DATA frames), all calls together.
    data_bytes: u64,
    /// The time h2load measured over.
    elapsed: Option<Duration>,
}

impl Summary {
    /// From lines such as `finished in 5.00s, 8123.40 req/s, 1.2MB/s`,
    /// `requests: 40617 total, 40649 started, 40617 done, 40617 succeeded, …`
    /// and `traffic: 1.52MB (1590219) total, 39.67KB (40617) headers (space
    /// savings 96.13%), 1.20MB (1259127) data`.
    fn parse(stdout: &str) -> Option<Summary> {
        let line = |prefix: &str| stdout.lines().find_map(|l| l.trim().strip_prefix(prefix));
        let requests = line("requests:")?;
        let succeeded = requests
            .split(',')
            .find_map(|part| part.trim().strip_suffix(" succeeded"))?
            .trim()
            .parse()
            .ok()?;
        let traffic = line("traffic:")?;
        let data_bytes = traffic
            .split(',')
            .find(|part| part.trim_end().ends_with(" data"))
            .and_then(|part| part.split(['(', ')']).nth(1))?
            .parse()
            .ok()?;
        let elapsed = line("finished in ")
            .and_then(|rest| rest.split(',').next())
            .and_then(|time| parse_seconds(time.trim()));
        Some(Summary {
            succeeded,
            data_bytes,
            elapsed,
        })
    }
}

/// h2load's way of printing a duration: `5.00s`, `812.34ms`, `95.12us`.
fn parse_seconds(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(us) = text.strip_suffix("us") {
        (us, 1e-6)
    } else {
        (text.strip_suffix('s')?, 1.0)
    };
    let seconds = number.parse::<f64>().ok()? * scale;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// Prints a row per run and, per round, the point select's gateway CPU
/// over the floor's.
fn print(runs: &[(usize, Run)]) {
    let micros = |value: Option<f64>| value.map_or("–".into(), |v| format!("{v:.1}"));
    println!();
    println!(
        "{H2LOAD_WORKLOAD}: CPU time per call, µs, from /proc (h2load's own CPU is not the gateway's); each run {} connections × {} streams, the same request every call.",
        CONNECTIONS, STREAMS
    );
    println!();
    println!(
        "| round | build | call | gateway logging | calls/s | gateway CPU/call | × floor | h2load CPU/call | MariaDB CPU/call | failed calls |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (round, run) in runs {
        // The floor of the same build in the same round.
        let floor = runs
            .iter()
            .find(|(r, floor)| {
                r == round && floor.binary == run.binary && floor.what.contains("floor")
            })
            .map(|(_, floor)| floor.per_call(floor.gateway));
        let gateway = run.per_call(run.gateway);
        println!(
            "| {round} | {} | {} | {} | {:.0} | {:.1} | {} | {} | {} | {} |",
            run.binary,
            run.what,
            run.logging,
            run.calls as f64 / run.elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
            gateway,
            floor.map_or("–".into(), |floor| format!(
                "{:.2}",
                gateway / floor.max(f64::MIN_POSITIVE)
            )),
            micros(run.client.map(|cpu| run.per_call(cpu))),
            micros(run.database.map(|cpu| run.per_call(cpu))),
            run.short_calls,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h2load_summaries_are_read() {
        let output = "\
finished in 5.00s, 8123.40 req/s, 310.35KB/s
requests: 40617 total, 40649 started, 40617 done, 40600 succeeded, 17 failed, 0 errored, 0 timeout
status codes: 40617 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 1.52MB (1590219) total, 39.67KB (40617) headers (space savings 96.13%), 1.20MB (1259127) data
";
        assert_eq!(
            Summary::parse(output),
            Some(Summary {
                succeeded: 40600,
                data_bytes: 1259127,
                elapsed: Some(Duration::from_secs(5)),
            })
        );
        assert_eq!(Summary::parse("h2load: nothing"), None);
        assert_eq!(
            parse_seconds("812.5ms"),
            Some(Duration::from_micros(812_500))
        );
        assert_eq!(parse_seconds("95us"), Some(Duration::from_micros(95)));
        assert_eq!(parse_seconds("5"), None);
    }

    #[test]
    fn grpc_frames_carry_their_length() {
        assert_eq!(frame(&[]), vec![0, 0, 0, 0, 0]);
        assert_eq!(frame(&[7, 8]), vec![0, 0, 0, 0, 2, 7, 8]);
    }
}
