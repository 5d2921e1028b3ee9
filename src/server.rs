//! Wiring: the database, the gRPC server with its services, and the order in
//! which they start and stop.
//!
//! Shutdown, in order: health goes NOT_SERVING and new transactions are
//! refused; open transactions get the grace period to end, then are rolled
//! back; the server stops taking calls and those in flight get a few seconds
//! to finish; the pool closes; a private database server is stopped.
use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::Notify, task::JoinHandle};
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::ServingStatus;

mod lifecycle;
mod principal_accounts;
mod tls;

use lifecycle::Lifecycle;
use principal_accounts::{add_principal_accounts, mapping};
use tls::tls_acceptor;

use crate::{
    api::{self, database_server::DatabaseServer},
    auth::Authenticator,
    config::{Config, DatabaseTarget, redact_url},
    database::{ConnectOptions, Database},
    embedded::{EmbeddedDatabase, EmbeddedOptions},
    fleet::Fleet,
    health,
    limits::{
        CONNECTION_WINDOW, Connections, LimitedIncoming, PROBE_MAX_MESSAGE_BYTES, PrincipalSlot,
        RequestLimitLayer, STREAM_WINDOW, TlsIncoming, handshake,
    },
    service::{DatabaseService, WithErrorInfo},
    tasks::Tasks,
    transactions::Transactions,
};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The private database server could not be started.
    #[error("could not start the private database server: {0}")]
    Embedded(#[from] crate::embedded::EmbeddedError),
    /// The database URL was refused by the driver.
    #[error("invalid database URL: {0}")]
    DatabaseUrl(mysql_async::Error),
    /// The listen address could not be bound.
    #[error("could not listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The bearer-token file could not be loaded.
    #[error(transparent)]
    Auth(#[from] crate::auth::TokenFileError),
    /// The accounts file could not be loaded.
    #[error(transparent)]
    Accounts(#[from] crate::accounts::AccountsFileError),
    /// The database password file could not be read.
    #[error("cannot read the database password file {path}: {source}")]
    PasswordFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The metrics exporter could not start.
    #[error("cannot serve metrics: {0}")]
    Metrics(String),
    /// Span export (--otlp-endpoint) could not be set up.
    #[error("cannot export spans: {0}")]
    Spans(String),
    /// A TLS file could not be read or used.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A database account holds global administrative privileges and
    /// --allow-admin-account is not given.
    #[error("{0}")]
    AdminAccount(String),
    /// The reflection service could not be built (a bug).
    #[error("could not build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// A running gateway.
pub struct Gateway {
    local_addr: SocketAddr,
    shutdown: Arc<Notify>,
    /// The shutdown sequence, waiting for its signal; taken by `shut_down`.
    task: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Starts the gateway: database (a private one if no URL is given), pool,
    /// services, and the listener. Returns once it is listening; the database
    /// may not be reachable yet (health says so).
    pub async fn start(config: Config) -> Result<Gateway, StartError> {
        // The guard's verdicts are the same for every gateway of the process.
        crate::statement::guard::set_verdict_cache_size(config.calls.guard_cache_bytes);
        // Read first: the private server makes an account per principal.
        let authenticator = config
            .auth_tokens_file
            .as_deref()
            .map(Authenticator::load)
            .transpose()?;
        let (url, read_only_url, embedded) = match &config.database.target {
            DatabaseTarget::Url(url) => (url.clone(), config.database.read_only_url.clone(), None),
            DatabaseTarget::Embedded { data_dir } => {
                tracing::info!(data_dir = %data_dir.display(), "no --database-url given: starting a private database server");
                let options = EmbeddedOptions {
                    data_dir: data_dir.clone(),
                    remove_on_stop: false,
                    principals: authenticator
                        .as_ref()
                        .map(|a| {
                            a.principals()
                                .into_iter()
                                .map(|p| {
                                    (p.name.to_string(), p.role == crate::auth::Role::ReadOnly)
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    outcomes_schema: config.request_ids.schema.clone(),
                    ..Default::default()
                };
                let server = tokio::task::spawn_blocking(move || EmbeddedDatabase::start(&options))
                    .await
                    .expect("the embedded server start does not panic")?;
                // Least-privilege accounts, never root.
                let urls = (server.account_url(false), Some(server.account_url(true)));
                (urls.0, urls.1, Some(server))
            }
        };
        tracing::info!(database = %redact_url(&url), "using database");
        let read_write = ConnectOptions {
            url,
            user: None,
            password: config
                .database
                .password_file
                .as_deref()
                .map(read_password)
                .transpose()?,
            ssl_ca: config.database.ssl_ca.clone(),
        };
        let read_only = match read_only_url {
            Some(url) => {
                tracing::info!(database = %redact_url(&url), "read-only principals use their own database account");
                Some(ConnectOptions {
                    url,
                    user: None,
                    password: config
                        .database
                        .read_only_password_file
                        .as_deref()
                        .map(read_password)
                        .transpose()?,
                    ssl_ca: config.database.ssl_ca.clone(),
                })
            }
            None => None,
        };
        let replicas: Vec<ConnectOptions> = config
            .database
            .replica_urls
            .iter()
            .map(|url| {
                tracing::info!(replica = %redact_url(url), "reads may go to a replica");
                let has_password =
                    mysql_async::Opts::from_url(url).is_ok_and(|o| o.pass().is_some());
                ConnectOptions {
                    url: url.clone(),
                    user: None,
                    // Replicas have the primary's accounts.
                    password: if has_password {
                        None
                    } else {
                        read_write.password.clone()
                    },
                    ssl_ca: config.database.ssl_ca.clone(),
                }
            })
            .collect();
        let spans = match &config.otlp_endpoint {
            Some(endpoint) => {
                let export = crate::telemetry::export_spans(endpoint).map_err(StartError::Spans)?;
                tracing::info!(%endpoint, "exporting spans over OTLP/gRPC");
                Some(export)
            }
            None => None,
        };
        let tasks = Tasks::default();
        let accounts = match &config.database.accounts_file {
            Some(path) => {
                let accounts = crate::accounts::AccountMap::load(path)?;
                tracing::info!(file = %path.display(), "principals named in the accounts file use their own database accounts");
                Some(accounts)
            }
            // The private server's accounts of the principals.
            None => embedded.as_ref().map(|server: &EmbeddedDatabase| {
                crate::accounts::AccountMap::fixed(mapping(server.principal_accounts().to_vec()))
            }),
        };
        let database = Database::new(
            &read_write,
            read_only.as_ref(),
            accounts.clone(),
            &replicas,
            config.database.replicas,
            config.pool,
            tasks.clone(),
        )
        .map_err(StartError::DatabaseUrl)?;
        database.find_primary().await;
        database
            .refuse_admin_accounts()
            .await
            .map_err(StartError::AdminAccount)?;
        database.warn_about_privileges();
        if let Some(accounts) = &accounts {
            // Checked like at start: an administrative account is refused.
            accounts.reload_on_sighup(&tasks, database.clone());
        }
        let authenticator = match (&config.auth_tokens_file, authenticator) {
            (Some(path), Some(authenticator)) => {
                // With the private server, a principal added by SIGHUP gets
                // its own account there before its tokens are in force.
                let maker = match (&embedded, &accounts) {
                    (Some(server), Some(map)) if config.database.accounts_file.is_none() => {
                        Some((server.account_maker(), map.clone()))
                    }
                    _ => None,
                };
                authenticator.reload_on_sighup(&tasks, move |principals| {
                    let maker = maker.clone();
                    async move {
                        if let Some((maker, map)) = maker {
                            add_principal_accounts(&maker, &map, principals).await;
                        }
                    }
                });
                tracing::info!(file = %path.display(), "bearer-token authentication is on");
                if !database.has_read_only_account() {
                    tracing::warn!(
                        "read-only principals share the main database account: only the gateway's guard and READ ONLY transactions hold them to reads; give them an account granted only SELECT with --read-only-database-url"
                    );
                }
                Some(authenticator)
            }
            _ => {
                tracing::warn!("authentication is off: every caller may use the database");
                None
            }
        };
        // Bound before the transaction registry: every transaction id names
        // this instance's address.
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    address: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Listen {
            address: config.listen,
            source,
        })?;
        let fleet = match &config.fleet {
            Some(fleet) => {
                let me = fleet.advertise_address.unwrap_or(local_addr);
                Some(
                    Fleet::start(fleet, me, &tasks)
                        .await
                        .map_err(StartError::Tls)?,
                )
            }
            None => None,
        };
        // With mutual TLS in a fleet, peers are recognised by this gateway's
        // own certificate subject (see `authenticate`).
        let peer_subject = match (&fleet, &config.tls) {
            (Some(_), Some(tls)) if tls.client_ca.is_some() => {
                let pem = std::fs::read(&tls.cert).map_err(|e| {
                    StartError::Tls(format!("cannot read {}: {e}", tls.cert.display()))
                })?;
                let subject = crate::auth::pem_subject(&pem)
                    .map_err(|e| StartError::Tls(format!("{}: {e}", tls.cert.display())))?;
                Some(Arc::<str>::from(subject))
            }
            _ => None,
        };
        // Every id names this instance (its address and epoch), in a fleet
        // or not: restarted on the same address, it knows the ids of its
        // previous life.
        let transactions = Transactions::new(
            database.clone(),
            config.transactions,
            config.pool.acquire_timeout,
            Some(fleet.as_ref().map_or(local_addr, Fleet::me)),
            &tasks,
        );
        let outcomes = crate::outcomes::Outcomes::new(
            database.clone(),
            crate::outcomes::OutcomeSettings {
                schema: config.request_ids.schema.clone(),
                retention: config.request_ids.retention,
            },
            &tasks,
        );
        let (end_streams, streams_end) = tokio::sync::watch::channel(false);
        let service = DatabaseService::new(
            database.clone(),
            transactions.clone(),
            outcomes,
            config.calls,
            streams_end,
            fleet,
        );

        if let Some(address) = config.metrics_listen {
            crate::stats::install(address).map_err(|e| StartError::Metrics(e.to_string()))?;
            let (database, transactions) = (database.clone(), transactions.clone());
            tasks.spawn_loop(crate::stats::refresh_gauges(move || {
                let pool = database.pool_metrics();
                let read = |count: &std::sync::atomic::AtomicUsize| {
                    count.load(std::sync::atomic::Ordering::Relaxed)
                };
                crate::stats::Gauges {
                    pool_in_use: read(&pool.connections_in_use),
                    pool_idle: read(&pool.connections_in_pool),
                    pool_waiting: read(&pool.active_wait_requests),
                    open_transactions: transactions.open_count(),
                    log_lines_dropped: crate::telemetry::dropped_lines(),
                }
            }));
            tracing::info!(%address, "serving Prometheus metrics at /metrics");
        }
        tasks.spawn_loop(crate::heap::give_back_freed_memory());
        let (reporter, health_service) = tonic_health::server::health_reporter();
        health::set_status(&reporter, ServingStatus::NotServing).await;
        let monitor = tokio::spawn(health::monitor(
            database.clone(),
            reporter.clone(),
            health::describe_target(&read_write.url),
        ));

        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(api::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                // google.rpc.ErrorInfo, so that grpcurl can show error details.
                .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let connections = Connections::default();
        let incoming = LimitedIncoming::new(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            config.requests.max_connections,
            connections.clone(),
        );
        let shutdown = Arc::new(Notify::new());
        let stop_serving = Arc::new(Notify::new());
        // Before "listening" is logged: a bad TLS file is a start-up error.
        // The gateway terminates TLS itself, so that --handshake-timeout
        // runs on until the HTTP/2 preface (see `limits::handshake`).
        let tls = match &config.tls {
            Some(files) => {
                let acceptor = tls_acceptor(files)?;
                tracing::info!(mutual = files.client_ca.is_some(), "serving TLS");
                Some(acceptor)
            }
            None => None,
        };
        tracing::info!(address = %local_addr, "listening for gRPC");
        let router = Server::builder()
            // Notice clients that vanished without closing their connection.
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .max_concurrent_streams(Some(config.requests.max_streams_per_connection))
            // Bounds what a connection can have sent that is not read yet
            // (see `limits`).
            .initial_stream_window_size(Some(STREAM_WINDOW))
            .initial_connection_window_size(Some(CONNECTION_WINDOW))
            // Stated, not left to hyper's default: forwarding checks against it.
            .http2_max_header_list_size(Some(crate::fleet::MAX_HEADER_LIST_SIZE))
            .layer(RequestLimitLayer::new(
                &config.requests,
                config.pool.acquire_timeout,
                connections,
            ))
            .add_service(health_service.max_decoding_message_size(PROBE_MAX_MESSAGE_BYTES))
            .add_service(reflection_v1.max_decoding_message_size(PROBE_MAX_MESSAGE_BYTES))
            .add_service(reflection_v1alpha.max_decoding_message_size(PROBE_MAX_MESSAGE_BYTES))
            .add_service(tonic::service::interceptor::InterceptedService::new(
                // tonic's own statuses get the gateway's codes and ErrorInfo.
                WithErrorInfo::new(
                    DatabaseServer::new(service)
                        .max_decoding_message_size(config.requests.max_request_bytes),
                    config.requests.max_request_bytes,
                ),
                authenticate(
                    authenticator,
                    config
                        .tls
                        .as_ref()
                        .is_some_and(|tls| tls.client_ca.is_some()),
                    peer_subject,
                ),
            ));
        let stop_signal = stop_serving.clone();
        let handshake_timeout = config.requests.handshake_timeout;
        let server = tokio::spawn(async move {
            let stopped = stop_signal.notified();
            let result = match tls {
                Some(acceptor) => {
                    let incoming = TlsIncoming::new(incoming, acceptor, handshake_timeout);
                    router.serve_with_incoming_shutdown(incoming, stopped).await
                }
                None => {
                    let incoming = handshake::plaintext(incoming, handshake_timeout);
                    router.serve_with_incoming_shutdown(incoming, stopped).await
                }
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "the gRPC server failed");
            }
        });

        let lifecycle = Lifecycle {
            database,
            transactions,
            reporter,
            monitor,
            server,
            stop_serving,
            end_streams,
            embedded,
            spans,
            grace: config.shutdown_grace,
        };
        let trigger = shutdown.clone();
        let task = tokio::spawn(async move {
            trigger.notified().await;
            lifecycle.shut_down().await;
        });
        Ok(Gateway {
            local_addr,
            shutdown,
            task: Some(task),
        })
    }

    /// The address the gateway listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts a graceful shutdown and waits until it is complete. (Dropping
    /// the gateway starts one too, without waiting.)
    pub async fn shut_down(mut self) {
        self.shutdown.notify_one();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // A gateway that goes away without `shut_down` still shuts down,
        // in the background, as long as its runtime runs.
        self.shutdown.notify_one();
    }
}

/// The interceptor in front of the Database service: with a token file, the
/// caller's principal or UNAUTHENTICATED; else with mutual TLS, the client
/// certificate's subject; else everyone is let in (as the anonymous
/// principal). Health and reflection stay open for probes.
///
/// In a fleet with mutual TLS, `peer_subject` is the subject of the
/// gateway's own certificate: a caller presenting it is a peer, and the
/// principal it vouches for a forwarded call is the call's principal (see
/// [`crate::auth::vouched_principal`]).
fn authenticate(
    authenticator: Option<Authenticator>,
    mutual_tls: bool,
    peer_subject: Option<Arc<str>>,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    let mut check = authenticator.map(|a| a.interceptor());
    let mut named = move |mut request: tonic::Request<()>| match check.as_mut() {
        Some(check) => check(request),
        None if mutual_tls => {
            let caller = crate::auth::certificate_principal(&request)?;
            let principal = peer_subject
                .as_deref()
                .and_then(|own| crate::auth::vouched_principal(&request, &caller, own))
                .unwrap_or(caller);
            request.extensions_mut().insert(principal);
            Ok(request)
        }
        None => Ok(request),
    };
    move |request| {
        let request = named(request)?;
        // The request's places count against its principal's share.
        let principal = crate::auth::Principal::of(&request);
        if let Some(slot) = request.extensions().get::<PrincipalSlot>()
            && !principal.is_anonymous()
        {
            slot.set(principal.name);
        }
        Ok(request)
    }
}

/// Reads a password file; one trailing newline is not part of the password.
fn read_password(path: &std::path::Path) -> Result<String, StartError> {
    let text = std::fs::read_to_string(path).map_err(|source| StartError::PasswordFile {
        path: path.to_path_buf(),
        source,
    })?;
    let password = text.strip_suffix('\n').unwrap_or(&text);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_string())
}
