//! The command line (clap) and the validated settings it produces.
//!
//! Every flag can also be given as an environment variable `SQLGATE_<FLAG>`.
//! Parsing and validation happen up front: a bad flag is one clear line and a
//! non-zero exit, never a panic later.
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use bytesize::ByteSize;
use clap::{Args, Parser, Subcommand, ValueEnum};

mod servers;
mod settings;

pub use servers::{resolvable_host, server_urls, with_address};

pub use settings::{
    CallConfig, Config, DatabaseConfig, DatabaseTarget, FleetConfig, PeerTls, PoolConfig,
    ReplicaConfig, RequestConfig, RequestIdConfig, TlsFiles, TransactionConfig,
};

/// sqlgate: a gRPC gateway to MySQL and MariaDB.
#[derive(Debug, Parser)]
#[command(name = "sqlgate", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC API.
    Serve(ServeArgs),
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether an autocommit read on a freshly reset session may run as text
/// (COM_QUERY with its parameters as literals) instead of PREPARE + EXECUTE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextProtocol {
    /// When the statement's text ran binary before and its result converts
    /// exactly (see README, "The text protocol after a reset").
    Auto,
    /// Always the binary protocol.
    Off,
}

/// When a pooled connection may go back without COM_RESET_CONNECTION.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SessionReuse {
    /// After an autocommit plain read that the guard's classification and
    /// the server's session tracking both find clean: the statement cache
    /// stays warm, one round trip per call. Not sound: a view or a stored
    /// function can change session state (named locks, LAST_INSERT_ID(expr),
    /// sequences, user variables set by SELECT … INTO) that neither sees, and
    /// the next call of the same principal inherits it. Connections still
    /// never pass between principals without a reset.
    Reads,
    /// Always reset (the default).
    Off,
}

/// Flags of `sqlgate serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on for gRPC: IP:port, or host:port with a host name
    /// (e.g. localhost:50051), resolved at start-up.
    #[arg(long, env = "SQLGATE_LISTEN", default_value = "127.0.0.1:50051", value_parser = listen_address)]
    pub listen: SocketAddr,

    /// Database to serve: mysql://user:pass@host:port/db, or with a unix socket
    /// mysql://user:pass@localhost/db?socket=/path/to/mysqld.sock. Without it,
    /// sqlgate starts its own private MariaDB/MySQL server in --data-dir.
    #[arg(long, env = "SQLGATE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Data directory of the private server started when no --database-url is given.
    #[arg(long, env = "SQLGATE_DATA_DIR", default_value = "./.sqlgate/mysql")]
    pub data_dir: PathBuf,

    /// Connections the pool keeps open even when idle.
    #[arg(long, env = "SQLGATE_POOL_MIN", default_value_t = 2)]
    pub pool_min: usize,

    /// When a connection may be reused without a reset: `off` (always reset,
    /// the default) or `reads` (autocommit plain reads the guard and the
    /// server's session tracking find clean; unsound against views and
    /// stored functions, which can hide GET_LOCK, LAST_INSERT_ID(expr),
    /// sequences and SELECT … INTO @v). Never between two principals.
    #[arg(long, env = "SQLGATE_SESSION_REUSE", value_enum, default_value_t = SessionReuse::Off)]
    pub session_reuse: SessionReuse,

    /// Report rows *matched* for UPDATE (the CLIENT_FOUND_ROWS capability, as
    /// PyMySQL, mysqlclient and Connector/J set it), not rows changed: an
    /// UPDATE that sets a row to the values it has counts it. ORMs' optimistic
    /// concurrency checks (SQLAlchemy's version_id_col) rely on it.
    /// `--found-rows false` reports rows changed.
    #[arg(long, env = "SQLGATE_FOUND_ROWS", default_value_t = true, action = clap::ArgAction::Set)]
    pub found_rows: bool,

    /// Most connections the pool opens to the database.
    #[arg(long, env = "SQLGATE_POOL_MAX", default_value_t = 32)]
    pub pool_max: usize,

    /// Prepared statements each pooled connection keeps (the least recently
    /// used is closed first). The server counts them against its global
    /// max_prepared_stmt_count.
    #[arg(long, env = "SQLGATE_STATEMENT_CACHE_SIZE", default_value_t = 32)]
    pub statement_cache_size: usize,

    /// How long a connection given back to the pool may wait for its reset
    /// (COM_RESET_CONNECTION): the reset is sent in the same write as the
    /// connection's next command, saving it a round trip, or in the
    /// background once the connection has been idle this long (an idle
    /// session keeps what it holds, named locks included, until then).
    /// `0s`: reset as soon as the connection comes back, in a round trip of
    /// its own.
    #[arg(long, env = "SQLGATE_RESET_DELAY", default_value = "5ms", value_parser = humantime::parse_duration)]
    pub reset_delay: Duration,

    /// `auto`: an autocommit plain read on a freshly reset session, whose
    /// statement text ran on the binary protocol before, goes as one
    /// COM_QUERY with its parameters written as exact literals instead of a
    /// PREPARE and an EXECUTE (cheaper for the database); anything that could
    /// answer differently (column metadata, warnings, errors) runs binary.
    /// `off`: always PREPARE + EXECUTE.
    #[arg(long, env = "SQLGATE_TEXT_PROTOCOL", value_enum, default_value_t = TextProtocol::Auto)]
    pub text_protocol: TextProtocol,

    /// Most transactions open at once; must be below --pool-max so that
    /// autocommit calls always have connections left.
    #[arg(long, env = "SQLGATE_MAX_TRANSACTIONS", default_value_t = 24)]
    pub max_transactions: usize,

    /// Longest wait for a pooled connection or a transaction slot before a call
    /// fails with RESOURCE_EXHAUSTED.
    #[arg(long, env = "SQLGATE_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub acquire_timeout: Duration,

    /// TCP keepalive on the gateway's TCP connections to the database (pool,
    /// control and KILL connections, replicas): probes start after this long
    /// idle, every third of it, and a server that answers none of three (or
    /// leaves data unacknowledged for twice this, TCP_USER_TIMEOUT) is taken
    /// as gone, so that a partitioned server cannot hold a read for ever.
    /// 0s turns it off. Unix-socket connections have no use for it.
    #[arg(long, env = "SQLGATE_DATABASE_TCP_KEEPALIVE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub database_tcp_keepalive: Duration,

    /// Longest a statement may run when the client sets no deadline (a
    /// client's grpc-timeout applies when it is shorter). For ExecuteStream it
    /// bounds the time until the result starts.
    #[arg(long, env = "SQLGATE_STATEMENT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub statement_timeout: Duration,

    /// A transaction idle longer than this between calls is rolled back. Also
    /// the largest idle_timeout a client may ask for.
    #[arg(long, env = "SQLGATE_TX_IDLE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub tx_idle_timeout: Duration,

    /// A transaction alive longer than this is rolled back.
    #[arg(long, env = "SQLGATE_TX_MAX_LIFETIME", default_value = "5m", value_parser = humantime::parse_duration)]
    pub tx_max_lifetime: Duration,

    /// Most rows an Execute result may have (unless the client sets max_rows).
    #[arg(long, env = "SQLGATE_MAX_RESULT_ROWS", default_value_t = 10_000)]
    pub max_result_rows: u64,

    /// Most bytes an Execute result may have, e.g. 4MiB.
    #[arg(long, env = "SQLGATE_MAX_RESULT_BYTES", default_value = "4MiB")]
    pub max_result_bytes: ByteSize,

    /// Approximate size of one ExecuteStream batch of rows, e.g. 64KiB.
    #[arg(long, env = "SQLGATE_STREAM_BATCH_BYTES", default_value = "64KiB")]
    pub stream_batch_bytes: ByteSize,

    /// An ExecuteStream whose client takes no message for this long is ended
    /// (DEADLINE_EXCEEDED, reason STREAM_STALLED): its statement is stopped
    /// and its connection returned to the pool.
    #[arg(long, env = "SQLGATE_STREAM_STALL_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub stream_stall_timeout: Duration,

    /// Time given to open transactions and calls in flight to finish on SIGTERM.
    #[arg(long, env = "SQLGATE_SHUTDOWN_GRACE", default_value = "15s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Log format.
    #[arg(long, env = "SQLGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Static bearer-token file: one `token,principal,role` per line (roles
    /// read-only, read-write, schema), reloaded on SIGHUP. Without it there is no
    /// authentication.
    #[arg(long, env = "SQLGATE_AUTH_TOKENS_FILE")]
    pub auth_tokens_file: Option<PathBuf>,

    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "SQLGATE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "SQLGATE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, env = "SQLGATE_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Allow database accounts with global administrative privileges (SUPER,
    /// FILE, PROCESS, SHUTDOWN, GRANT OPTION… on *.*, or access to the mysql
    /// schema): without it the gateway refuses to start on one (main,
    /// read-only, principals' or replica accounts) and a SIGHUP that maps a
    /// principal to one is refused.
    #[arg(long, env = "SQLGATE_ALLOW_ADMIN_ACCOUNT")]
    pub allow_admin_account: bool,

    /// Allow listening on a non-loopback address without --auth-tokens-file.
    #[arg(long, env = "SQLGATE_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,

    /// Read the database password from this file (its trailing newline is
    /// ignored) instead of putting it in --database-url.
    #[arg(long, env = "SQLGATE_DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<PathBuf>,

    /// The database account of read-only principals, as a URL like
    /// --database-url (same server and database, an account granted only
    /// SELECT): the database itself then refuses their writes. Without it
    /// they share the main account, held to reads by the gateway alone.
    #[arg(
        long,
        env = "SQLGATE_READ_ONLY_DATABASE_URL",
        hide_env_values = true,
        requires = "database_url"
    )]
    pub read_only_database_url: Option<String>,

    /// Read the password of --read-only-database-url from this file.
    #[arg(
        long,
        env = "SQLGATE_READ_ONLY_DATABASE_PASSWORD_FILE",
        requires = "read_only_database_url"
    )]
    pub read_only_database_password_file: Option<PathBuf>,

    /// Principals mapped to database accounts of their own: one `user
    /// password principal` per line (mode 0600), reloaded on SIGHUP. The
    /// accounts are on --database-url's server (and replicas) and database.
    #[arg(long, env = "SQLGATE_DATABASE_ACCOUNTS_FILE")]
    pub database_accounts_file: Option<PathBuf>,

    /// Serve Prometheus metrics on http://ADDRESS/metrics (off by default).
    #[arg(long, env = "SQLGATE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Export a span per RPC with OpenTelemetry to this OTLP/gRPC collector,
    /// e.g. http://localhost:4317 (plaintext gRPC, as to a collector beside
    /// the gateway; off by default). Spans continue the caller's W3C
    /// `traceparent`.
    #[arg(long, env = "SQLGATE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Connect to the database over TLS, verifying its certificate against
    /// this CA (PEM). Use a TCP --database-url (TLS does not apply to unix
    /// sockets).
    #[arg(long, env = "SQLGATE_DATABASE_SSL_CA")]
    pub database_ssl_ca: Option<PathBuf>,

    /// Largest request message accepted, e.g. 4MiB.
    #[arg(long, env = "SQLGATE_MAX_REQUEST_BYTES", default_value = "4MiB")]
    pub max_request_bytes: ByteSize,

    /// Most parameters one statement may have.
    #[arg(long, env = "SQLGATE_MAX_PARAMS", default_value_t = 4096)]
    pub max_params: usize,

    /// Bytes of statement texts whose guard verdicts are kept, so that a
    /// text sent again is not lexed again (0 turns the cache off), e.g. 1MiB.
    #[arg(long, env = "SQLGATE_GUARD_CACHE_SIZE", default_value = "1MiB")]
    pub guard_cache_size: ByteSize,

    /// Most statements one ExecuteBatch may have.
    #[arg(long, env = "SQLGATE_MAX_BATCH_STATEMENTS", default_value_t = 1000)]
    pub max_batch_statements: usize,

    /// Most client connections open at once; past it, new ones wait to be
    /// accepted until one closes.
    #[arg(long, env = "SQLGATE_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,

    /// Most requests being received at once (a request message is buffered
    /// whole before it is decoded); others wait up to --acquire-timeout, then
    /// fail with RESOURCE_EXHAUSTED.
    #[arg(long, env = "SQLGATE_MAX_CONCURRENT_REQUESTS", default_value_t = 32)]
    pub max_concurrent_requests: usize,

    /// Longest a request may take to arrive once it is being received: a
    /// client that sends part of a message and stalls loses its place
    /// (DEADLINE_EXCEEDED) instead of keeping it.
    #[arg(long, env = "SQLGATE_REQUEST_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_read_timeout: Duration,

    /// Most of the --max-concurrent-requests places one client connection
    /// may hold at once (default: a quarter of them, at least 1); its other
    /// requests wait while others get through.
    #[arg(long, env = "SQLGATE_MAX_REQUESTS_PER_CONNECTION")]
    pub max_requests_per_connection: Option<usize>,

    /// Most of the --max-concurrent-requests places one principal may hold
    /// at once, over all its connections (default: half of them, at least
    /// 1). Applies to authenticated principals (tokens or client certificates).
    #[arg(long, env = "SQLGATE_MAX_REQUESTS_PER_PRINCIPAL")]
    pub max_requests_per_principal: Option<usize>,

    /// A new client connection that has not completed its TLS handshake (with
    /// --tls-cert) and sent the first bytes of the HTTP/2 preface within this
    /// long of being accepted is closed (plaintext and TLS alike).
    #[arg(long, env = "SQLGATE_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,

    /// Most concurrent calls (HTTP/2 streams) on one client connection.
    #[arg(
        long,
        env = "SQLGATE_MAX_STREAMS_PER_CONNECTION",
        default_value_t = 200
    )]
    pub max_streams_per_connection: u32,

    /// Most transactions one principal may have open at once (with
    /// --auth-tokens-file; without it, --max-transactions applies to all).
    #[arg(
        long,
        env = "SQLGATE_MAX_TRANSACTIONS_PER_PRINCIPAL",
        default_value_t = 16
    )]
    pub max_transactions_per_principal: usize,

    /// Most ended transactions whose outcome (committed, rolled back,
    /// expired...) is remembered for 15 minutes, per principal: past it,
    /// that principal's oldest are forgotten (a later call on one gets
    /// NOT_FOUND). 0 remembers none.
    #[arg(
        long,
        env = "SQLGATE_TX_OUTCOMES_PER_PRINCIPAL",
        default_value_t = 100_000
    )]
    pub tx_outcomes_per_principal: usize,

    /// How long the outcome of a write with a request_id is kept in the
    /// outcomes table: a retry with the same id within it is answered from
    /// the record (a replay) instead of running again. Records are purged
    /// in small batches every tenth of it (1 s to 5 min).
    #[arg(long, env = "SQLGATE_REQUEST_ID_RETENTION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub request_id_retention: Duration,

    /// The schema (database) of the outcomes table of request ids
    /// (`sqlgate_outcomes` and its view `sqlgate_outcomes_mine`). Default:
    /// the database of --database-url; with the private server,
    /// `sqlgate_outcomes`, created at start.
    #[arg(long, env = "SQLGATE_REQUEST_ID_SCHEMA")]
    pub request_id_schema: Option<String>,

    /// The other gateway instances of this fleet, as comma-separated
    /// host:port entries, or one DNS name that resolves to every instance
    /// (a Kubernetes headless Service), re-resolved every --peer-refresh. A
    /// call for a transaction another instance owns is forwarded to it.
    #[arg(long, env = "SQLGATE_PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,

    /// How peers reach this instance (IP:port), named in every transaction
    /// id. Default: --listen, once bound (required when --listen is a
    /// wildcard address such as 0.0.0.0).
    #[arg(long, env = "SQLGATE_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<SocketAddr>,

    /// How often --peers is resolved again.
    #[arg(long, env = "SQLGATE_PEER_REFRESH", default_value = "10s", value_parser = humantime::parse_duration)]
    pub peer_refresh: Duration,

    /// Longest wait to connect to a peer before a forwarded call fails
    /// (ABORTED / TRANSACTION_OWNER_UNAVAILABLE).
    #[arg(long, env = "SQLGATE_PEER_CONNECT_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub peer_connect_timeout: Duration,

    /// A replica of --database-url that reads may go to (repeat the flag, or
    /// separate URLs with commas). Its account needs the same grants; without
    /// a password in the URL, --database-password-file's is used.
    #[arg(
        long = "replica-url",
        env = "SQLGATE_REPLICA_URLS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub replica_urls: Vec<String>,

    /// Longest a read with a min_commit_token waits for a replica to apply
    /// it before it goes to the primary.
    #[arg(long, env = "SQLGATE_REPLICA_WAIT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub replica_wait: Duration,

    /// A replica further behind than this is out of rotation.
    #[arg(long, env = "SQLGATE_REPLICA_MAX_LAG", default_value = "30s", value_parser = humantime::parse_duration)]
    pub replica_max_lag: Duration,

    /// How often each replica's replication status is checked.
    #[arg(long, env = "SQLGATE_REPLICA_CHECK_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub replica_check_interval: Duration,

    /// With several servers in --database-url: how often each is checked
    /// for which one is the writable primary (`@@read_only = 0`, not
    /// replicating); a failover is followed within about this long.
    #[arg(long, env = "SQLGATE_PRIMARY_CHECK_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub primary_check_interval: Duration,

    /// With --tls-cert and --peers: the CA (PEM) that peers' certificates
    /// are verified against. Default: --tls-client-ca.
    #[arg(long, env = "SQLGATE_PEER_TLS_CA")]
    pub peer_tls_ca: Option<PathBuf>,

    /// With --tls-cert and --peers: the name peers' certificates are
    /// verified for (e.g. the headless Service's DNS name). Default: the
    /// peer's IP address.
    #[arg(long, env = "SQLGATE_PEER_TLS_NAME")]
    pub peer_tls_name: Option<String>,
}

impl Config {
    /// Settings for a gateway serving `database_url`, with every other value
    /// at its command-line default. Used by tests and embedders.
    pub fn for_database_url(database_url: impl Into<String>) -> Config {
        let args = Cli::parse_from(["sqlgate", "serve", "--database-url", &database_url.into()]);
        let Command::Serve(serve) = args.command;
        serve
            .validate()
            .expect("default settings with a valid URL are valid")
    }
}

/// A listen address: `IP:port`, or `host:port` with the host name resolved
/// (its first IPv4 address, else its first address).
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    let resolved: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("{e}: give IP:port or host:port, e.g. 127.0.0.1:50051"))?
        .collect();
    resolved
        .iter()
        .find(|address| address.is_ipv4())
        .or(resolved.first())
        .copied()
        .ok_or_else(|| format!("{text} resolves to no address"))
}

/// The one line a command-line error is reported with: clap's message
/// without its usage hints, but with the allowed values of an enum flag
/// (`[possible values: text, json]`).
pub fn usage_error_line(error: &clap::Error) -> String {
    let rendered = error.to_string();
    let mut lines = rendered.lines().map(str::trim);
    let mut line = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    if let Some(values) = lines.find(|l| l.starts_with("[possible values:")) {
        line.push(' ');
        line.push_str(values);
    }
    line
}

/// Hides the password of a database URL, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests;
