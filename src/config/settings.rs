//! The validated settings, one part per subsystem, each handed to its owner
//! by the server: the pool's to the database, the transactions' to the
//! registry, the calls' to the service, and so on.
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use super::{LogFormat, ServeArgs, SessionReuse, TextProtocol};

/// Where the gateway's database is.
#[derive(Debug, Clone)]
pub enum DatabaseTarget {
    /// An existing server at this mysql_async URL.
    Url(String),
    /// A private server started by sqlgate with its data in this directory.
    Embedded { data_dir: PathBuf },
}

/// The database and the accounts the gateway uses on it.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// The server (--database-url, or a private one).
    pub target: DatabaseTarget,
    /// The main account's password, from --database-password-file.
    pub password_file: Option<PathBuf>,
    /// The read-only principals' account (--read-only-database-url).
    pub read_only_url: Option<String>,
    /// Its password (--read-only-database-password-file).
    pub read_only_password_file: Option<PathBuf>,
    /// Principals' own accounts (--database-accounts-file).
    pub accounts_file: Option<PathBuf>,
    /// CA to verify the database's TLS certificate with; TLS when set.
    pub ssl_ca: Option<PathBuf>,
    /// Replicas reads may go to (--replica-url).
    pub replica_urls: Vec<String>,
    /// How reads use the replicas.
    pub replicas: ReplicaConfig,
}

/// How reads use the replicas.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaConfig {
    /// Longest wait for a replica to apply a min_commit_token (--replica-wait).
    pub wait: Duration,
    /// Out of rotation past this lag (--replica-max-lag).
    pub max_lag: Duration,
    /// How often replicas are checked (--replica-check-interval).
    pub check_interval: Duration,
    /// How often the servers of a --database-url naming several are checked
    /// for the writable primary (--primary-check-interval).
    pub primary_check_interval: Duration,
}

/// The connection pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Connections kept open when idle (--pool-min).
    pub min: usize,
    /// Most connections (--pool-max).
    pub max: usize,
    /// Longest wait for a connection or a transaction slot (--acquire-timeout).
    pub acquire_timeout: Duration,
    /// When a connection may go back without a reset (--session-reuse).
    pub session_reuse: SessionReuse,
    /// UPDATE reports rows matched, not rows changed (--found-rows).
    pub found_rows: bool,
    /// Prepared statements each connection keeps (--statement-cache-size).
    pub statement_cache_size: usize,
    /// Longest wait of an idle connection for its deferred reset; zero:
    /// reset on return (--reset-delay).
    pub reset_delay: Duration,
    /// Autocommit reads after a reset may go as text (--text-protocol).
    pub text_protocol: TextProtocol,
    /// TCP keepalive of database connections; zero: off
    /// (--database-tcp-keepalive).
    pub tcp_keepalive: Duration,
    /// The pools' database accounts may hold global administrative
    /// privileges (--allow-admin-account); without it the gateway refuses
    /// to start on, or hand out connections of, such an account.
    pub allow_admin_account: bool,
}

/// Transactions.
#[derive(Debug, Clone, Copy)]
pub struct TransactionConfig {
    /// Most open at once (--max-transactions).
    pub max_open: usize,
    /// Most open at once for one principal (--max-transactions-per-principal).
    pub max_per_principal: usize,
    /// Ended transactions remembered per principal (--tx-outcomes-per-principal).
    pub outcomes_per_principal: usize,
    /// Default and largest idle timeout (--tx-idle-timeout).
    pub idle_timeout: Duration,
    /// Longest lifetime (--tx-max-lifetime).
    pub max_lifetime: Duration,
}

/// Request ids (--request-id-retention, --request-id-schema).
#[derive(Debug, Clone)]
pub struct RequestIdConfig {
    /// The schema of the outcomes table.
    pub schema: String,
    /// How long records are kept.
    pub retention: Duration,
}

/// The schema of the outcomes table on the private server, by default.
pub const EMBEDDED_OUTCOMES_SCHEMA: &str = "sqlgate_outcomes";

/// What one call may do and return.
#[derive(Debug, Clone, Copy)]
pub struct CallConfig {
    /// Time limit of a statement without a client deadline (--statement-timeout).
    pub statement_timeout: Duration,
    /// Unary result cap in rows (--max-result-rows).
    pub max_result_rows: u64,
    /// Unary result cap in bytes (--max-result-bytes).
    pub max_result_bytes: u64,
    /// Target size of one stream batch (--stream-batch-bytes).
    pub stream_batch_bytes: u64,
    /// Longest a stream waits for its client to take a batch (--stream-stall-timeout).
    pub stream_stall_timeout: Duration,
    /// Most parameters per statement (--max-params).
    pub max_params: usize,
    /// Most statements per batch (--max-batch-statements).
    pub max_batch_statements: usize,
    /// Bytes of statement texts whose guard verdicts are kept (--guard-cache-size).
    pub guard_cache_bytes: usize,
}

/// What clients' connections and requests may hold.
#[derive(Debug, Clone, Copy)]
pub struct RequestConfig {
    /// Largest request message, bytes (--max-request-bytes).
    pub max_request_bytes: usize,
    /// Most concurrent streams per client connection (--max-streams-per-connection).
    pub max_streams_per_connection: u32,
    /// Most client connections (--max-connections).
    pub max_connections: usize,
    /// Most requests being received at once (--max-concurrent-requests).
    pub max_concurrent_requests: usize,
    /// Longest a request may take to arrive (--request-read-timeout).
    pub read_timeout: Duration,
    /// Most places one connection holds (--max-requests-per-connection).
    pub max_per_connection: usize,
    /// Most places one principal holds (--max-requests-per-principal).
    pub max_per_principal: usize,
    /// Longest a new connection may take to complete its TLS handshake and
    /// send the HTTP/2 preface, counted from accept (--handshake-timeout).
    pub handshake_timeout: Duration,
}

/// The PEM files of the listener's TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
    /// CA that client certificates must chain to (mutual TLS), if any.
    pub client_ca: Option<PathBuf>,
}

/// Validated gateway settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The database and its accounts.
    pub database: DatabaseConfig,
    /// The connection pool.
    pub pool: PoolConfig,
    /// Transactions.
    pub transactions: TransactionConfig,
    /// Calls.
    pub calls: CallConfig,
    /// Clients' connections and requests.
    pub requests: RequestConfig,
    /// The bearer-token file, if authentication is on.
    pub auth_tokens_file: Option<PathBuf>,
    /// TLS on the listener, if configured.
    pub tls: Option<TlsFiles>,
    /// Log format.
    pub log_format: LogFormat,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// The OTLP/gRPC collector spans are exported to, if any.
    pub otlp_endpoint: Option<String>,
    /// Shutdown grace period.
    pub shutdown_grace: Duration,
    /// The fleet this instance belongs to, if --peers is set.
    pub fleet: Option<FleetConfig>,
    /// Request ids.
    pub request_ids: RequestIdConfig,
}

/// A fleet of gateway instances that forward calls to each other.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// host:port entries or DNS names (--peers).
    pub peers: Vec<String>,
    /// How peers reach this instance (--advertise-address); `None`: the
    /// listen address once bound.
    pub advertise_address: Option<SocketAddr>,
    /// How often the peers are resolved again (--peer-refresh).
    pub refresh: Duration,
    /// Longest wait to connect to a peer (--peer-connect-timeout).
    pub connect_timeout: Duration,
    /// How to reach peers over TLS, when this gateway serves TLS.
    pub tls: Option<PeerTls>,
}

/// TLS between the instances of a fleet.
#[derive(Debug, Clone)]
pub struct PeerTls {
    /// CA that peers' certificates are verified against (--peer-tls-ca, or
    /// --tls-client-ca).
    pub ca: PathBuf,
    /// Name peers' certificates are verified for (--peer-tls-name); `None`:
    /// the peer's IP address.
    pub name: Option<String>,
    /// With mutual TLS, this gateway's own certificate and key (--tls-cert,
    /// --tls-key), presented to peers as a client certificate.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl ServeArgs {
    /// Checks the flags against each other and produces the settings. Every
    /// problem is reported, one line each, not just the first.
    pub fn validate(self) -> Result<Config, String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, problem: String| {
            if !ok {
                problems.push(problem);
            }
        };
        check(self.pool_max > 0, "--pool-max must be at least 1".into());
        if let Some(endpoint) = &self.otlp_endpoint {
            let url = endpoint.parse::<tonic::codegen::http::Uri>();
            check(
                url.as_ref()
                    .is_ok_and(|url| url.scheme_str() == Some("http") && url.authority().is_some()),
                format!(
                    "--otlp-endpoint must be an http://host:port URL (plaintext OTLP/gRPC), not {endpoint:?}"
                ),
            );
        }
        check(
            self.replica_urls.is_empty() || self.database_url.is_some(),
            "--replica-url needs --database-url (replicas of the private server are not supported)"
                .into(),
        );
        check(
            self.statement_cache_size > 0,
            "--statement-cache-size must be at least 1".into(),
        );
        check(
            self.pool_min <= self.pool_max,
            format!(
                "--pool-min ({}) must not exceed --pool-max ({})",
                self.pool_min, self.pool_max
            ),
        );
        check(
            self.pool_max == 0 || self.max_transactions < self.pool_max,
            format!(
                "--max-transactions ({}) must be below --pool-max ({}) so that autocommit calls always have a connection",
                self.max_transactions, self.pool_max
            ),
        );
        for (flag, value) in [
            ("--acquire-timeout", self.acquire_timeout),
            ("--statement-timeout", self.statement_timeout),
            ("--tx-idle-timeout", self.tx_idle_timeout),
            ("--tx-max-lifetime", self.tx_max_lifetime),
            ("--request-read-timeout", self.request_read_timeout),
            ("--handshake-timeout", self.handshake_timeout),
            ("--peer-refresh", self.peer_refresh),
            ("--replica-wait", self.replica_wait),
            ("--replica-max-lag", self.replica_max_lag),
            ("--replica-check-interval", self.replica_check_interval),
            ("--primary-check-interval", self.primary_check_interval),
            ("--peer-connect-timeout", self.peer_connect_timeout),
            ("--stream-stall-timeout", self.stream_stall_timeout),
            ("--request-id-retention", self.request_id_retention),
        ] {
            check(
                !value.is_zero(),
                format!("{flag} must be greater than zero"),
            );
        }
        for (flag, value) in [
            ("--max-result-rows", self.max_result_rows),
            ("--max-result-bytes", self.max_result_bytes.as_u64()),
            ("--stream-batch-bytes", self.stream_batch_bytes.as_u64()),
            ("--max-params", self.max_params as u64),
            ("--max-batch-statements", self.max_batch_statements as u64),
            (
                "--max-streams-per-connection",
                u64::from(self.max_streams_per_connection),
            ),
            ("--max-connections", self.max_connections as u64),
            (
                "--max-concurrent-requests",
                self.max_concurrent_requests as u64,
            ),
            (
                "--max-transactions-per-principal",
                self.max_transactions_per_principal as u64,
            ),
            (
                "--max-requests-per-connection",
                self.max_requests_per_connection.unwrap_or(1) as u64,
            ),
            (
                "--max-requests-per-principal",
                self.max_requests_per_principal.unwrap_or(1) as u64,
            ),
        ] {
            check(value > 0, format!("{flag} must be at least 1"));
        }
        check(
            self.auth_tokens_file.is_some()
                || self.tls_client_ca.is_some()
                || self.insecure_no_auth
                || self.listen.ip().is_loopback(),
            format!(
                "refusing to listen on {} without authentication: give --auth-tokens-file (or --tls-client-ca), or --insecure-no-auth to accept anyone",
                self.listen
            ),
        );
        let max_request_bytes = usize::try_from(self.max_request_bytes.as_u64())
            .ok()
            .filter(|bytes| *bytes >= 1024);
        check(
            max_request_bytes.is_some(),
            "--max-request-bytes must be at least 1KiB".into(),
        );
        if let Some(url) = &self.read_only_database_url
            && let Err(e) = mysql_async::Opts::from_url(url)
        {
            check(
                false,
                format!("--read-only-database-url is not a valid MySQL URL: {e}"),
            );
        }
        let target = match self.database_url {
            Some(url) if url.trim().is_empty() => {
                check(false, "--database-url is empty".into());
                None
            }
            // Several servers (host1,host2): each must be a valid URL.
            Some(url) => match crate::config::server_urls(&url)
                .iter()
                .map(|server| mysql_async::Opts::from_url(server))
                .collect::<Result<Vec<_>, _>>()
                .map(|mut servers| servers.remove(0))
            {
                // Without a default database every CREATE fails with 1046
                // and USE is refused: say so now, not at the first call.
                Ok(opts) if opts.db_name().is_none_or(str::is_empty) => {
                    check(
                        false,
                        format!(
                            "--database-url {} names no database: add its name after the host, e.g. mysql://user:pass@host:3306/shop (the gateway serves one database; create it first with CREATE DATABASE if needed)",
                            crate::config::redact_url(&url)
                        ),
                    );
                    None
                }
                Ok(_) => Some(DatabaseTarget::Url(url)),
                Err(e) => {
                    check(
                        false,
                        format!("--database-url is not a valid MySQL URL: {e}"),
                    );
                    None
                }
            },
            None => Some(DatabaseTarget::Embedded {
                data_dir: self.data_dir,
            }),
        };
        let request_id_schema = match (&self.request_id_schema, &target) {
            (Some(schema), _) => Some(schema.trim().to_string()),
            // The database of the first server (all name the same one).
            (None, Some(DatabaseTarget::Url(url))) => crate::config::server_urls(url)
                .first()
                .and_then(|server| mysql_async::Opts::from_url(server).ok())
                .and_then(|opts| opts.db_name().map(str::to_string)),
            (None, _) => Some(EMBEDDED_OUTCOMES_SCHEMA.to_string()),
        };
        if let Some(schema) = &request_id_schema {
            check(
                !schema.is_empty() && schema.chars().count() <= 64,
                "--request-id-schema must be a schema name of 1 to 64 characters".into(),
            );
        }
        let peers: Vec<String> = self
            .peers
            .iter()
            .map(|peer| peer.trim().to_string())
            .filter(|peer| !peer.is_empty())
            .collect();
        if !peers.is_empty() {
            check(
                self.advertise_address.is_some() || !self.listen.ip().is_unspecified(),
                format!(
                    "--advertise-address is needed with --peers when --listen ({}) is a wildcard address: peers must know how to reach this instance",
                    self.listen
                ),
            );
            check(
                self.advertise_address
                    .is_none_or(|address| !address.ip().is_unspecified() && address.port() != 0),
                "--advertise-address must be a concrete IP:port".into(),
            );
            check(
                self.tls_cert.is_none() || self.peer_tls_ca.is_some() || self.tls_client_ca.is_some(),
                "--peers with --tls-cert needs --peer-tls-ca (or --tls-client-ca): the CA that peers' certificates are verified against".into(),
            );
            for peer in &peers {
                check(
                    peer.rsplit_once(':').is_some_and(|(host, port)| {
                        !host.is_empty() && port.parse::<u16>().is_ok()
                    }),
                    format!("--peers entry {peer:?} is not host:port"),
                );
            }
        }
        for url in &self.replica_urls {
            if let Err(e) = mysql_async::Opts::from_url(url) {
                check(
                    false,
                    format!("--replica-url is not a valid MySQL URL: {e}"),
                );
            }
        }
        let (Some(target), Some(max_request_bytes), true) =
            (target, max_request_bytes, problems.is_empty())
        else {
            return Err(problems.join("\n"));
        };
        let fleet = (!peers.is_empty()).then(|| FleetConfig {
            peers,
            advertise_address: self.advertise_address,
            refresh: self.peer_refresh,
            connect_timeout: self.peer_connect_timeout,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(PeerTls {
                    ca: self
                        .peer_tls_ca
                        .clone()
                        .or_else(|| self.tls_client_ca.clone())
                        .expect("checked above"),
                    name: self.peer_tls_name.clone(),
                    identity: self
                        .tls_client_ca
                        .is_some()
                        .then(|| (cert.clone(), key.clone())),
                }),
                _ => None,
            },
        });
        Ok(Config {
            listen: self.listen,
            database: DatabaseConfig {
                target,
                password_file: self.database_password_file,
                read_only_url: self.read_only_database_url,
                read_only_password_file: self.read_only_database_password_file,
                accounts_file: self.database_accounts_file,
                ssl_ca: self.database_ssl_ca,
                replica_urls: self.replica_urls.clone(),
                replicas: ReplicaConfig {
                    wait: self.replica_wait,
                    max_lag: self.replica_max_lag,
                    check_interval: self.replica_check_interval,
                    primary_check_interval: self.primary_check_interval,
                },
            },
            pool: PoolConfig {
                min: self.pool_min,
                max: self.pool_max,
                acquire_timeout: self.acquire_timeout,
                session_reuse: self.session_reuse,
                found_rows: self.found_rows,
                statement_cache_size: self.statement_cache_size,
                reset_delay: self.reset_delay,
                text_protocol: self.text_protocol,
                tcp_keepalive: self.database_tcp_keepalive,
                allow_admin_account: self.allow_admin_account,
            },
            transactions: TransactionConfig {
                max_open: self.max_transactions,
                max_per_principal: self.max_transactions_per_principal,
                outcomes_per_principal: self.tx_outcomes_per_principal,
                idle_timeout: self.tx_idle_timeout,
                max_lifetime: self.tx_max_lifetime,
            },
            calls: CallConfig {
                statement_timeout: self.statement_timeout,
                max_result_rows: self.max_result_rows,
                max_result_bytes: self.max_result_bytes.as_u64(),
                stream_batch_bytes: self.stream_batch_bytes.as_u64(),
                stream_stall_timeout: self.stream_stall_timeout,
                max_params: self.max_params,
                max_batch_statements: self.max_batch_statements,
                guard_cache_bytes: usize::try_from(self.guard_cache_size.as_u64())
                    .unwrap_or(usize::MAX),
            },
            requests: RequestConfig {
                max_request_bytes,
                max_streams_per_connection: self.max_streams_per_connection,
                max_connections: self.max_connections,
                max_concurrent_requests: self.max_concurrent_requests,
                read_timeout: self.request_read_timeout,
                max_per_connection: self
                    .max_requests_per_connection
                    .unwrap_or((self.max_concurrent_requests / 4).max(1)),
                max_per_principal: self
                    .max_requests_per_principal
                    .unwrap_or((self.max_concurrent_requests / 2).max(1)),
                handshake_timeout: self.handshake_timeout,
            },
            auth_tokens_file: self.auth_tokens_file,
            tls: match (self.tls_cert, self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert,
                    key,
                    client_ca: self.tls_client_ca,
                }),
                _ => None,
            },
            log_format: self.log_format,
            metrics_listen: self.metrics_listen,
            otlp_endpoint: self.otlp_endpoint,
            shutdown_grace: self.shutdown_grace,
            fleet,
            request_ids: RequestIdConfig {
                schema: request_id_schema.unwrap_or_default(),
                retention: self.request_id_retention,
            },
        })
    }
}
