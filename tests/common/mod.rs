//! The integration-test harness: one private MariaDB per test binary, a fresh
//! database per test, and a gateway started in-process on 127.0.0.1:0 that
//! tests reach through the generated gRPC client only.
#![allow(dead_code)]

mod calls;
mod failover;
mod holding;
mod process;
mod streams;
mod transfers;
#[allow(unused_imports)] // not every test binary uses all of them
pub use calls::*;
#[allow(unused_imports)] // only the failover tests run a replicated pair
pub use failover::*;
#[allow(unused_imports)] // only the deadline tests hold packets back
pub use holding::*;
#[allow(unused_imports)] // not every test binary starts gateway processes
pub use process::GatewayProcess;
#[allow(unused_imports)] // only the memory tests hold raw streams
pub use streams::*;
#[allow(unused_imports)] // only the fleet tests run transfers
pub use transfers::*;

use std::{
    path::PathBuf,
    sync::{
        OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use mysql_async::prelude::Queryable;
use sqlgate::{
    api::{self, database_client::DatabaseClient, value::Kind},
    config::Config,
    embedded::{EmbeddedDatabase, EmbeddedOptions},
    server::Gateway,
};
use tonic::transport::Channel;

/// The private server shared by the tests of one binary. It stops when the
/// test process exits (its watchdog notices) and its directory is removed.
fn server() -> &'static EmbeddedDatabase {
    static SERVER: OnceLock<EmbeddedDatabase> = OnceLock::new();
    SERVER.get_or_init(|| {
        let data_dir: PathBuf =
            std::env::temp_dir().join(format!("sqlgate-test-{}", std::process::id()));
        EmbeddedDatabase::start(&EmbeddedOptions {
            data_dir,
            remove_on_stop: true,
            ..Default::default()
        })
        .expect("the private MariaDB starts (scripts/install-mariadb installs it)")
    })
}

/// A private server of the test's own (for tests that stop, pause or kill
/// it, or read its global counters); it stops when dropped.
pub fn private_server(name: &str) -> EmbeddedDatabase {
    EmbeddedDatabase::start(&EmbeddedOptions {
        data_dir: std::env::temp_dir().join(format!("sqlgate-{name}-{}", std::process::id())),
        remove_on_stop: true,
        ..Default::default()
    })
    .expect("a private MariaDB starts")
}

/// Creates a fresh database on the shared server; returns its name and URL.
pub async fn fresh_database() -> (String, String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let server = server();
    // Named after the test (the harness names each test's thread after it),
    // so that a leftover or a slow query points at its test.
    let test: String = std::thread::current()
        .name()
        .unwrap_or("test")
        .rsplit("::")
        .next()
        .unwrap_or("test")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    let database = format!("t{}_{test}", NEXT.fetch_add(1, Ordering::SeqCst));
    let mut admin = mysql_async::Conn::from_url(server.url("mysql"))
        .await
        .unwrap();
    admin
        .query_drop(format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    admin.disconnect().await.unwrap();
    let url = server.url(&database);
    (database, url)
}

/// Creates a database account on the shared server (as root), runs the
/// `grants` statements for it (`{user}` stands for `'name'@'localhost'`), and
/// returns a URL of `database` as that account.
pub async fn create_account(name: &str, password: &str, database: &str, grants: &[&str]) -> String {
    let server = server();
    let mut admin = mysql_async::Conn::from_url(server.url("mysql"))
        .await
        .unwrap();
    let user = format!("'{name}'@'localhost'");
    admin
        .query_drop(format!("CREATE USER {user} IDENTIFIED BY '{password}'"))
        .await
        .unwrap();
    for grant in grants {
        admin
            .query_drop(grant.replace("{user}", &user))
            .await
            .unwrap();
    }
    admin.disconnect().await.unwrap();
    server
        .url(database)
        .replacen("root@", &format!("{name}:{password}@"), 1)
}

/// A gateway serving a fresh database of its own.
pub struct TestGateway {
    /// A gRPC client connected to the gateway.
    pub client: DatabaseClient<Channel>,
    /// The gateway's address.
    pub address: std::net::SocketAddr,
    /// The test's database name.
    pub database: String,
    /// A direct (not through the gateway) URL of the test's database.
    pub url: String,
    gateway: Option<Gateway>,
}

impl TestGateway {
    /// Starts a gateway with default settings on a fresh database.
    pub async fn start() -> TestGateway {
        Self::start_with(|_| {}).await
    }

    /// Starts a gateway on a fresh database, with settings adjusted by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestGateway {
        let (database, url) = fresh_database().await;
        Self::start_on(database, url, adjust).await
    }

    /// Starts a gateway on `database` (made by [`fresh_database`]), reached
    /// at `url`, with settings adjusted by `adjust`.
    pub async fn start_on(
        database: String,
        url: String,
        adjust: impl FnOnce(&mut Config),
    ) -> TestGateway {
        if std::env::var_os("SQLGATE_TEST_LOG").is_some() {
            // Logs until the test process ends.
            std::mem::forget(sqlgate::telemetry::init(sqlgate::config::LogFormat::Text));
        }
        let mut config = Config::for_database_url(url.clone());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.pool.min = 0;
        // The shared test server is reached as root: tests that need a
        // least-privilege account create one (`create_account`), and
        // tests/admin_accounts.rs checks the refusal without this flag.
        config.pool.allow_admin_account = true;
        adjust(&mut config);
        let gateway = Gateway::start(config).await.expect("the gateway starts");
        let address = gateway.local_addr();
        // Lazy: connects on first use (a TLS gateway needs its own client).
        let client = DatabaseClient::new(
            tonic::transport::Channel::from_shared(format!("http://{address}"))
                .unwrap()
                .connect_lazy(),
        );
        TestGateway {
            client,
            address,
            database,
            url,
            gateway: Some(gateway),
        }
    }

    /// A new gRPC channel to the gateway (a second client).
    pub async fn new_client(&self) -> DatabaseClient<Channel> {
        DatabaseClient::connect(format!("http://{}", self.address))
            .await
            .unwrap()
    }

    /// A direct connection to the test's database, bypassing the gateway.
    pub async fn direct(&self) -> mysql_async::Conn {
        mysql_async::Conn::from_url(self.url.as_str())
            .await
            .unwrap()
    }

    /// Runs SQL directly (setup and checks from "another connection").
    pub async fn direct_exec(&self, sql: &str) {
        let mut conn = self.direct().await;
        conn.query_drop(sql).await.unwrap();
        conn.disconnect().await.unwrap();
    }

    /// The ids in table `t`, in order, read directly (what is really there,
    /// whatever the gateway answered).
    pub async fn direct_ids(&self) -> Vec<i64> {
        let mut conn = self.direct().await;
        let ids = conn.query("SELECT id FROM t ORDER BY id").await.unwrap();
        conn.disconnect().await.unwrap();
        ids
    }

    /// Reads one integer directly.
    pub async fn direct_i64(&self, sql: &str) -> Option<i64> {
        query_i64(&self.url, sql).await
    }

    /// Stops the gateway gracefully.
    pub async fn shut_down(mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shut_down().await;
        }
    }
}

/// Runs `sql` as root on `server` (a test's own server, e.g. of a
/// replicated pair).
pub async fn on(server: &EmbeddedDatabase, sql: &str) {
    let mut conn = mysql_async::Conn::from_url(server.url("mysql"))
        .await
        .unwrap();
    conn.query_drop(sql).await.unwrap();
    conn.disconnect().await.unwrap();
}

/// Reads one integer over a direct connection to `url`.
pub async fn query_i64(url: &str, sql: &str) -> Option<i64> {
    let mut conn = mysql_async::Conn::from_url(url).await.unwrap();
    let value: Option<Option<i64>> = conn.query_first(sql).await.unwrap();
    conn.disconnect().await.unwrap();
    value.flatten()
}

/// Runs one statement through the gateway in autocommit mode.
pub async fn execute(
    client: &mut DatabaseClient<Channel>,
    sql: &str,
    params: Vec<api::Value>,
) -> Result<api::ExecuteResponse, tonic::Status> {
    client
        .execute(api::ExecuteRequest {
            sql: sql.into(),
            params,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// Shorthands for building values.
pub fn int(v: i64) -> api::Value {
    api::Value {
        kind: Some(Kind::Int64Value(v)),
    }
}
/// A string value.
pub fn text(v: &str) -> api::Value {
    api::Value {
        kind: Some(Kind::StringValue(v.into())),
    }
}
/// NULL.
pub fn null() -> api::Value {
    api::Value {
        kind: Some(Kind::NullValue(0)),
    }
}

/// A value as text; `None` for NULL.
pub fn text_of(value: &api::Value) -> Option<String> {
    match value.kind.as_ref().expect("a value") {
        Kind::NullValue(_) => None,
        Kind::Int64Value(v) => Some(v.to_string()),
        Kind::Uint64Value(v) => Some(v.to_string()),
        Kind::StringValue(s) | Kind::DecimalValue(s) => Some(s.clone()),
        Kind::BytesValue(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => Some(format!("{other:?}")),
    }
}

/// The server's `Com_admin_commands` (MariaDB counts COM_RESET_CONNECTION
/// there, with COM_PING; it has no `Com_reset_connection`) and
/// `Com_stmt_prepare` counters, read at `url`.
pub async fn reset_and_prepare_counters(url: &str) -> (u64, u64) {
    let mut conn = mysql_async::Conn::from_url(url).await.unwrap();
    let rows: Vec<(String, String)> = conn.query("SHOW GLOBAL STATUS LIKE 'Com%'").await.unwrap();
    conn.disconnect().await.unwrap();
    let get = |name: &str| {
        rows.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or_else(|| panic!("no {name} in {rows:?}"))
    };
    (get("Com_admin_commands"), get("Com_stmt_prepare"))
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &tonic::Status) -> String {
    error_info(status).0
}

/// The ErrorInfo reason and metadata of a status.
pub fn error_info(status: &tonic::Status) -> (String, std::collections::HashMap<String, String>) {
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    let info = details.error_info().expect("every error carries ErrorInfo");
    assert_eq!(info.domain, "sqlgate");
    (info.reason.clone(), info.metadata.clone())
}
