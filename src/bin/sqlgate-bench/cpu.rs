//! CPU time used by the processes taking part in a workload, from /proc.
//!
//! On a small machine the client, the gateway and the database share the
//! cores, so the CPU each one spends per operation explains the throughput
//! ratios better than wall-clock time alone.
use std::time::Duration;

/// Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// User + system CPU time of process `pid` (all its threads), if readable.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces: count from its ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Fields 14 (utime) and 15 (stime) are the 12th and 13th after the name.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SECOND,
    ))
}

/// User + system CPU time of this process's children that have exited and
/// been waited for (fields 16 and 17 of /proc/self/stat: cutime, cstime).
///
/// The difference around one waited-for child (such as `mariadb-slap`) is
/// that child's CPU time, all its threads included.
pub fn waited_children_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Fields 16 (cutime) and 17 (cstime) are the 14th and 15th after the name.
    let cutime: u64 = fields.nth(13)?.parse().ok()?;
    let cstime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        (cutime + cstime) * 1000 / TICKS_PER_SECOND,
    ))
}

/// The processes to watch: the benchmark itself, the gateway and (when the
/// benchmark started it) the database server.
#[derive(Debug, Clone, Copy)]
pub struct Processes {
    /// This process: the client side of both paths.
    pub client: u32,
    /// The `sqlgate serve` process.
    pub gateway: u32,
    /// A second gateway process whose CPU counts as the gateway's (the
    /// forwarding workload's fleet of two).
    pub second_gateway: Option<u32>,
    /// The private MariaDB, if the benchmark started one.
    pub database: Option<u32>,
}

/// CPU time of each process at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSnapshot {
    client: Option<Duration>,
    gateway: Option<Duration>,
    database: Option<Duration>,
}

impl Processes {
    /// Reads every process's CPU time now.
    pub fn snapshot(&self) -> CpuSnapshot {
        let second = self.second_gateway.map(process_cpu);
        CpuSnapshot {
            client: process_cpu(self.client),
            gateway: match second {
                None => process_cpu(self.gateway),
                Some(second) => process_cpu(self.gateway).zip(second).map(|(a, b)| a + b),
            },
            database: self.database.and_then(process_cpu),
        }
    }
}

/// CPU time each process spent between two snapshots.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    /// The benchmark process (gRPC or mysql_async client work).
    pub client: Option<Duration>,
    /// The gateway process.
    pub gateway: Option<Duration>,
    /// The database server.
    pub database: Option<Duration>,
}

impl CpuSnapshot {
    /// What was spent from `self` until `later`.
    pub fn until(&self, later: &CpuSnapshot) -> CpuUse {
        let spent = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
        CpuUse {
            client: spent(self.client, later.client),
            gateway: spent(self.gateway, later.gateway),
            database: spent(self.database, later.database),
        }
    }
}
