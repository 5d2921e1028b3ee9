//! MariaDB's CPU per point select for the ways sqlgate could send it after a
//! reset (issue 21; BENCHMARKS.md, "No PREPARE after a reset: the options").
//!
//! ```sh
//! cargo run --release --example reset_paths -- URL MARIADB_PID SECONDS CLIENTS RATE ROUNDS
//! ```
//! `RATE` is the total queries per second the clients are paced to (0: as
//! fast as they go). Each mode runs for `SECONDS` per round, one after the
//! other; MariaDB's CPU is read from `/proc/MARIADB_PID/stat` around each.
//! `RESET_PATHS_MODES=ResetQuery,OwnedExecute` runs only the modes named
//! (e.g. to profile the server during one of them).
use mysql_async::{
    Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, Statement, prelude::Queryable,
};
use std::time::{Duration, Instant};

const SQL: &str = "SELECT id, v, name FROM bench_point WHERE id = ?";
const ROWS: u32 = 10_000;

type Row = (i32, i32, String);

/// How one point select is sent.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// (a) EXECUTE of a statement prepared once, on an owned connection.
    OwnedExecute,
    /// (b) what the gateway sends today: a pooled connection whose reset
    /// leaves with the next command, PREPARE + EXECUTE in one write.
    ResetPrepareExecute,
    /// (c) the same reset, then COM_QUERY with the value inlined.
    ResetQuery,
    /// (d) COM_QUERY with the value inlined, on an owned connection.
    OwnedQuery,
    /// (c) as the text path sends it: `SET STATEMENT tx_read_only=1 FOR`
    /// in front of the query.
    ResetQueryReadOnly,
    /// (d) with the same prefix.
    OwnedQueryReadOnly,
    /// The reset's own cost: the reset with a COM_PING.
    ResetPing,
    /// A COM_PING on an owned connection.
    OwnedPing,
}

const MODES: [Mode; 8] = [
    Mode::OwnedExecute,
    Mode::ResetPrepareExecute,
    Mode::ResetQuery,
    Mode::ResetQueryReadOnly,
    Mode::OwnedQuery,
    Mode::OwnedQueryReadOnly,
    Mode::ResetPing,
    Mode::OwnedPing,
];

/// The prefix the text path puts before every text run.
const READ_ONLY: &str = "SET STATEMENT tx_read_only=1 FOR ";

/// User + system CPU of `pid` in milliseconds.
fn cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("readable /proc");
    let after_name = &stat[stat.rfind(')').expect("a name") + 1..];
    let mut fields = after_name.split_whitespace();
    let user: u64 = fields.nth(11).and_then(|f| f.parse().ok()).expect("utime");
    let system: u64 = fields.next().and_then(|f| f.parse().ok()).expect("stime");
    (user + system) * 10
}

fn inlined(id: u32) -> String {
    format!("SELECT id, v, name FROM bench_point WHERE id = {id}")
}

async fn one(
    mode: Mode,
    pool: &Pool,
    owned: &mut Conn,
    stmt: &Statement,
    id: u32,
) -> mysql_async::Result<usize> {
    Ok(match mode {
        Mode::OwnedExecute => owned.exec::<Row, _, _>(stmt, (id,)).await?.len(),
        Mode::OwnedQuery => owned.query::<Row, _>(inlined(id)).await?.len(),
        Mode::ResetPrepareExecute => {
            let mut conn = pool.get_conn().await?;
            assert!(conn.can_prepare_and_execute());
            let mut result = conn.prepare_and_execute(SQL, vec![id.into()]).await?;
            result.collect::<Row>().await?.len()
        }
        Mode::ResetQuery => pool
            .get_conn()
            .await?
            .query::<Row, _>(inlined(id))
            .await?
            .len(),
        Mode::ResetQueryReadOnly => pool
            .get_conn()
            .await?
            .query::<Row, _>(format!("{READ_ONLY}{}", inlined(id)))
            .await?
            .len(),
        Mode::OwnedQueryReadOnly => owned
            .query::<Row, _>(format!("{READ_ONLY}{}", inlined(id)))
            .await?
            .len(),
        Mode::ResetPing => pool.get_conn().await?.ping().await.map(|_| 1)?,
        Mode::OwnedPing => owned.ping().await.map(|_| 1)?,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> mysql_async::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, pid, seconds, clients, rate, rounds] = &args[..] else {
        eprintln!("usage: reset_paths URL MARIADB_PID SECONDS CLIENTS RATE ROUNDS");
        std::process::exit(64);
    };
    let number = |text: &str| text.parse::<u64>().expect("a number");
    let (pid, seconds, clients) = (
        number(pid) as u32,
        number(seconds),
        number(clients) as usize,
    );
    let (rate, rounds) = (number(rate), number(rounds));
    let opts = Opts::from_url(url).expect("a mysql:// URL");
    let mut setup = Conn::new(opts.clone()).await?;
    setup
        .query_drop("CREATE DATABASE IF NOT EXISTS reset_paths")
        .await?;
    setup.query_drop("USE reset_paths").await?;
    setup.query_drop("DROP TABLE IF EXISTS bench_point").await?;
    setup
        .query_drop("CREATE TABLE bench_point (id INT PRIMARY KEY, v INT NOT NULL, name VARCHAR(64) NOT NULL)")
        .await?;
    setup
        .query_drop(format!("INSERT INTO bench_point SELECT seq, seq % 1000, CONCAT('name-', seq) FROM seq_1_to_{ROWS}"))
        .await?;
    setup.disconnect().await?;
    let opts: Opts = OptsBuilder::from_opts(opts)
        .db_name(Some("reset_paths"))
        .into();
    // As the gateway's pool: a reset before every reuse, sent with the next command.
    let pool_opts = PoolOpts::default()
        .with_constraints(PoolConstraints::new(clients, clients + 8).expect("min <= max"))
        .with_inactive_connection_ttl(Duration::from_secs(60))
        .with_reset_connection(true)
        .with_deferred_reset(Some(Duration::from_millis(5)));
    let pool = Pool::new(OptsBuilder::from_opts(opts.clone()).pool_opts(pool_opts));
    let only = std::env::var("RESET_PATHS_MODES").ok();
    let modes: Vec<Mode> = MODES
        .into_iter()
        .filter(|mode| {
            only.as_deref()
                .is_none_or(|only| only.split(',').any(|name| name == format!("{mode:?}")))
        })
        .collect();
    for round in 0..rounds {
        for &mode in &modes {
            let before = cpu_ms(pid);
            let start = Instant::now();
            let deadline = start + Duration::from_secs(seconds);
            let tasks: Vec<_> = (0..clients)
                .map(|client| {
                    let (pool, opts) = (pool.clone(), opts.clone());
                    tokio::spawn(async move {
                        let mut owned = Conn::new(opts).await?;
                        let stmt = owned.prep(SQL).await?;
                        let period = (rate > 0)
                            .then(|| Duration::from_secs_f64(clients as f64 / rate as f64));
                        let mut next = Instant::now();
                        let (mut done, mut id) = (0u64, client as u32 * 997);
                        while Instant::now() < deadline {
                            if let Some(period) = period {
                                next += period;
                                tokio::time::sleep_until(next.into()).await;
                            }
                            id = id % ROWS + 1;
                            assert_eq!(one(mode, &pool, &mut owned, &stmt, id).await?, 1);
                            done += 1;
                        }
                        mysql_async::Result::Ok(done)
                    })
                })
                .collect();
            let mut total = 0;
            for task in tasks {
                total += task.await.expect("no panic")?;
            }
            let wall = start.elapsed().as_secs_f64();
            let used = cpu_ms(pid) - before;
            println!(
                "round {round}, {clients} clients, rate {rate}: {mode:?}: {:.0} q/s, MariaDB {:.1} µs CPU per query",
                total as f64 / wall,
                used as f64 * 1000.0 / total as f64
            );
        }
    }
    pool.disconnect().await
}
