//! sqlgate behind nginx, as behind a service-mesh sidecar: a transaction and a
//! large stream through the proxy; two gateways behind round-robin, where a
//! transaction whose calls land on different instances fails clearly and
//! never runs on the wrong connection; and header affinity, which keeps a
//! client's calls on one instance; and a fleet (`--peers`) behind
//! round-robin, where every call of a transaction succeeds at load. nginx
//! comes from Debian (`nginx`), which scripts/test installs; these tests
//! fail if it is missing.
mod common;

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::*;
use sqlgate::{
    api::{
        BeginRequest, CommitRequest, ExecuteRequest, database_client::DatabaseClient,
        execute_stream_response::Part,
    },
    config::Config,
    server::Gateway,
};
use tokio_stream::StreamExt;
use tonic::{Code, transport::Channel};

/// An nginx in front of some gateways, in a directory of its own.
struct Nginx {
    child: Child,
    address: SocketAddr,
    dir: PathBuf,
}

impl Nginx {
    /// Starts nginx proxying gRPC to `upstreams`, load-balanced by `balance`
    /// (an nginx upstream directive such as `hash $http_x_session consistent;`,
    /// or empty for round-robin).
    /// Fails the test when nginx is missing: scripts/install-test-tools
    /// installs it, and a test that skips proves nothing.
    async fn start(upstreams: &[SocketAddr], balance: &str) -> Nginx {
        let binary = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nginx is installed (scripts/install-test-tools installs it)");
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sqlgate-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let servers: String = upstreams
            .iter()
            .map(|a| format!("        server {a};\n"))
            .collect();
        let config = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream sqlgate {{
        {balance}
{servers}    }}
    server {{
        listen 127.0.0.1:{port} http2;
        # nginx closes a client connection after 1000 requests by default,
        # and calls queued on it then fail in the client (CANCELLED).
        keepalive_requests 1000000;
        location / {{
            grpc_pass grpc://sqlgate;
            grpc_read_timeout 60s;
        }}
    }}
}}
"#,
            dir = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), config).unwrap();
        let child = Command::new(binary)
            .args([
                "-p",
                &dir.display().to_string(),
                "-c",
                &dir.join("nginx.conf").display().to_string(),
            ])
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts");
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        // From here on, Drop stops it whatever happens.
        let nginx = Nginx {
            child,
            address,
            dir,
        };
        // Ready when it accepts connections.
        for _ in 0..250 {
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                return nginx;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("nginx did not start; see {}/error.log", nginx.dir.display());
    }

    async fn client(&self) -> DatabaseClient<Channel> {
        DatabaseClient::connect(format!("http://{}", self.address))
            .await
            .unwrap()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A request carrying the session header that nginx hashes on.
fn with_session<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-sqlgate-session", "client-42".parse().unwrap());
    request
}

/// A second gateway on the same database as `gateway`.
async fn second_gateway(gateway: &TestGateway) -> Gateway {
    let mut config = Config::for_database_url(gateway.url.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.pool.allow_admin_account = true; // the test server's root
    config.pool.min = 0;
    Gateway::start(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_and_a_large_stream_through_nginx() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY)")
        .await;
    let nginx = Nginx::start(&[gateway.address], "").await;
    let mut client = nginx.client().await;
    let tx = client
        .begin(BeginRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    for id in [1, 2] {
        client
            .execute(ExecuteRequest {
                sql: "INSERT INTO t VALUES (?)".into(),
                params: vec![int(id)],
                transaction_id: tx.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    client
        .commit(CommitRequest {
            transaction_id: tx,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(2));

    let mut stream = client
        .execute_stream(ExecuteRequest {
            sql: "SELECT seq, REPEAT('x', 40) FROM seq_1_to_500000".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut rows = 0u64;
    let mut summary = None;
    while let Some(message) = stream.next().await {
        match message.unwrap().part.unwrap() {
            Part::Rows(batch) => rows += batch.rows.len() as u64,
            Part::Summary(s) => summary = Some(s),
            Part::Header(_) => {}
        }
    }
    assert_eq!(rows, 500_000);
    assert_eq!(summary.unwrap().row_count, 500_000);
    // Errors keep their details through the proxy.
    let status = execute(&mut client, "SELECT * FROM missing", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(error_info(&status).1["errno"], "1146");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_splits_a_transaction_and_it_fails_clearly() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY)")
        .await;
    let other = second_gateway(&gateway).await;
    let nginx = Nginx::start(&[gateway.address, other.local_addr()], "").await;
    let mut client = nginx.client().await;
    // Begin lands on one instance; with round-robin, one of the next two
    // calls lands on the other, which has never heard of the transaction.
    let tx = client
        .begin(BeginRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    let mut outcomes = Vec::new();
    for id in [1, 2] {
        outcomes.push(
            client
                .execute(ExecuteRequest {
                    sql: "INSERT INTO t VALUES (?)".into(),
                    params: vec![int(id)],
                    transaction_id: tx.clone(),
                    ..Default::default()
                })
                .await,
        );
    }
    let failures: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(failures.len(), 1, "{outcomes:?}");
    assert_eq!(failures[0].code(), Code::NotFound);
    assert_eq!(error_info(failures[0]).0, "TRANSACTION_NOT_FOUND");
    // Nothing ran outside the transaction: until it commits, nothing is visible.
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(0));
    other.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_affinity_keeps_a_transaction_on_one_instance() {
    let gateway = TestGateway::start().await;
    gateway
        .direct_exec("CREATE TABLE t (id INT PRIMARY KEY)")
        .await;
    let other = second_gateway(&gateway).await;
    let balance = "hash $http_x_sqlgate_session consistent;";
    let nginx = Nginx::start(&[gateway.address, other.local_addr()], balance).await;
    let mut client = nginx.client().await;
    let tx = client
        .begin(with_session(BeginRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    for id in 1..=6 {
        client
            .execute(with_session(ExecuteRequest {
                sql: "INSERT INTO t VALUES (?)".into(),
                params: vec![int(id)],
                transaction_id: tx.clone(),
                ..Default::default()
            }))
            .await
            .expect("every call reaches the transaction's instance");
    }
    client
        .commit(with_session(CommitRequest {
            transaction_id: tx,
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(gateway.direct_i64("SELECT COUNT(*) FROM t").await, Some(6));
    other.shut_down().await;
}

/// The fleet test's load through nginx round-robin: 32 clients × 40
/// transfers in interactive transactions, each call wherever nginx sends it;
/// the total is kept, nothing fails but rerun deadlock victims, and calls
/// really reached instances that did not own their transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_serves_a_fleets_transactions() {
    const ACCOUNTS: i64 = 10;
    const CLIENTS: usize = 32;
    const TRANSFERS: usize = 40;
    let (_, url) = fresh_database().await;
    let instances = GatewayProcess::fleet(3, &[], |listen, peers| {
        let args = ["--database-url", &url, "--listen", listen, "--peers", peers];
        args.into_iter().map(String::from).collect()
    });
    let addresses: Vec<SocketAddr> = instances
        .iter()
        .map(|instance| instance.address.parse().unwrap())
        .collect();
    let nginx = Nginx::start(&addresses, "").await;
    // A few connections to the proxy, as several client processes would have.
    let mut route = Vec::new();
    for _ in 0..4 {
        route.push(nginx.client().await);
    }
    create_accounts(&mut route[0].clone(), ACCOUNTS).await;
    let reruns = run_transfers(&route, CLIENTS, TRANSFERS, ACCOUNTS).await;
    assert_eq!(
        query_i64(&url, "SELECT SUM(balance) FROM accounts").await,
        Some(ACCOUNTS * 1000),
        "the total is kept ({reruns} reruns)"
    );
    // Round-robin did split the transactions: calls were forwarded.
    let forwarded: usize = instances
        .iter()
        .map(|instance| instance.log().matches("forwarded_to").count())
        .sum();
    assert!(
        forwarded >= CLIENTS * TRANSFERS,
        "calls of a transaction reached instances that do not own it: {forwarded}"
    );
}
