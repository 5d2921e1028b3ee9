//! Calls through the gateway that many tests make: a transaction's Begin,
//! Execute, Commit and Rollback, and waiting for a condition.
use std::time::{Duration, Instant};

use sqlgate::api::{
    self, BeginRequest, CommitRequest, ExecuteRequest, RollbackRequest, TransactionOptions,
};

use sqlgate::api::database_client::DatabaseClient;
use tonic::transport::Channel;

use super::TestGateway;

/// A statement inside transaction `transaction_id` (autocommit when empty).
pub fn statement_in(sql: &str, transaction_id: &str) -> ExecuteRequest {
    ExecuteRequest {
        sql: sql.into(),
        transaction_id: transaction_id.into(),
        ..Default::default()
    }
}

/// Writes a file only its owner may read (mode 0600), e.g. an accounts file.
pub fn private_file(name: &str, contents: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!("sqlgate-private-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Runs `sql` through `client` as the principal of `token`; its rows' first
/// column as text, one line per row.
pub async fn text_as(
    client: &DatabaseClient<Channel>,
    token: &str,
    sql: &str,
) -> Result<String, tonic::Status> {
    let request = ExecuteRequest {
        sql: sql.into(),
        ..Default::default()
    };
    let response = client.clone().execute(as_caller(token, request)).await?;
    let lines: Vec<String> = response
        .into_inner()
        .rows
        .iter()
        .map(|row| super::text_of(&row.values[0]).unwrap_or_else(|| "NULL".into()))
        .collect();
    Ok(lines.join("\n"))
}

/// Asserts that `id` has the form of a transaction id of the gateway at
/// `address`: 128 random bits (32 hex digits), `-`, its instance epoch (8
/// hex digits), `-`, its address.
pub fn assert_id_of(id: &str, address: &str) {
    let hex = |part: &str, digits: usize| {
        part.len() == digits
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut parts = id.splitn(3, '-');
    let (random, epoch, owner) = (parts.next(), parts.next(), parts.next());
    assert!(random.is_some_and(|r| hex(r, 32)), "{id}");
    assert!(epoch.is_some_and(|e| hex(e, 8)), "{id}");
    assert_eq!(owner, Some(address), "{id}");
}

/// Begins a transaction through `client`; panics if Begin fails.
pub async fn begin_on(client: &mut DatabaseClient<Channel>) -> String {
    client
        .begin(BeginRequest::default())
        .await
        .expect("Begin succeeds")
        .into_inner()
        .transaction_id
}

/// Begins a transaction; panics if Begin fails.
pub async fn begin(gateway: &TestGateway, options: Option<TransactionOptions>) -> String {
    let mut client = gateway.client.clone();
    let response = client
        .begin(BeginRequest { options })
        .await
        .expect("Begin succeeds")
        .into_inner();
    response.transaction_id
}

/// Runs one statement inside a transaction.
pub async fn execute_in(
    gateway: &TestGateway,
    transaction_id: &str,
    sql: &str,
    params: Vec<api::Value>,
) -> Result<api::ExecuteResponse, tonic::Status> {
    let mut client = gateway.client.clone();
    client
        .execute(ExecuteRequest {
            sql: sql.into(),
            params,
            transaction_id: transaction_id.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// Commits a transaction.
pub async fn commit(gateway: &TestGateway, transaction_id: &str) -> Result<(), tonic::Status> {
    let mut client = gateway.client.clone();
    client
        .commit(CommitRequest {
            transaction_id: transaction_id.into(),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

/// Rolls a transaction back; true when it was open.
pub async fn try_rollback(
    gateway: &TestGateway,
    transaction_id: &str,
) -> Result<bool, tonic::Status> {
    let mut client = gateway.client.clone();
    client
        .rollback(RollbackRequest {
            transaction_id: transaction_id.into(),
        })
        .await
        .map(|r| r.into_inner().rolled_back)
}

/// Rolls a transaction back, which must succeed; true when it was open.
pub async fn rollback(gateway: &TestGateway, transaction_id: &str) -> bool {
    try_rollback(gateway, transaction_id)
        .await
        .expect("Rollback is OK for an open, unknown, expired or rolled-back transaction")
}

/// Polls `condition` until it holds, for at most `within`.
pub async fn eventually<F, Fut>(within: Duration, condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_every(Duration::from_millis(25), within, condition).await
}

/// Polls `condition` every `interval` until it holds, for at most `within`.
pub async fn eventually_every<F, Fut>(
    interval: Duration,
    within: Duration,
    mut condition: F,
) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(interval).await;
    }
}

/// Writes a bearer-token file (`token,principal,role` lines) for this test process.
pub fn token_file(name: &str, contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("sqlgate-tokens-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

/// A request carrying `token` as its bearer token.
pub fn as_caller<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A port that was free a moment ago (the metrics exporter cannot report the
/// one it got, so tests pick one this way).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET /metrics on `port` (with curl, which every Debian machine has).
pub fn scrape(port: u16) -> Option<String> {
    let output = std::process::Command::new("curl")
        .args([
            "-sf",
            "-m",
            "5",
            &format!("http://127.0.0.1:{port}/metrics"),
        ])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The value of the first sample line starting with `prefix`.
pub fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// How many server threads are running a statement starting with `prefix`.
pub async fn running(gateway: &TestGateway, prefix: &str) -> i64 {
    gateway
        .direct_i64(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '{prefix}%'"
        ))
        .await
        .unwrap_or(0)
}

/// A unix-socket proxy's place in front of the test server of `direct_url`
/// (reached on a unix socket): the server's socket, a listener on a fresh
/// socket named after `name`, and the URL of `database` through it.
pub fn proxy_listener(
    name: &str,
    database: &str,
    direct_url: &str,
) -> (std::path::PathBuf, tokio::net::UnixListener, String) {
    let server = direct_url
        .split("socket=")
        .nth(1)
        .expect("the test server is reached on a unix socket")
        .replace("%2F", "/")
        .into();
    let path = std::env::temp_dir().join(format!("sqlgate-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let url = format!(
        "mysql://root@localhost/{database}?socket={}",
        path.display()
    );
    (server, listener, url)
}

/// What a [`judging_proxy`] does with a packet from the gateway.
pub enum Verdict {
    /// Passes it on.
    Forward,
    /// Passes it on, then closes the connection (the server runs it, the
    /// gateway gets no answer).
    ForwardAndClose,
    /// Closes the connection instead (the server never gets it).
    Close,
    /// Passes these bytes on instead.
    Send(Vec<u8>),
}

/// Starts a unix-socket proxy in front of the test server of `direct_url`
/// (see [`proxy_listener`]): each packet from the gateway waits for the
/// verdict of `judge` (whose future may wait) before it goes on. Returns the
/// URL of `database` through the proxy.
pub fn judging_proxy<J, F>(name: &str, database: &str, direct_url: &str, judge: J) -> String
where
    J: Fn(&[u8]) -> F + Clone + Send + 'static,
    F: Future<Output = Verdict> + Send,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server, listener, url) = proxy_listener(name, database, direct_url);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::UnixStream::connect(&server).await else {
                continue;
            };
            let judge = judge.clone();
            tokio::spawn(async move {
                let (mut client_in, mut client_out) = client.into_split();
                let (mut server_in, mut server_out) = server.into_split();
                let (mut up, mut down) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
                loop {
                    tokio::select! {
                        n = client_in.read(&mut up) => {
                            let Ok(n @ 1..) = n else { return };
                            let mut write = up[..n].to_vec();
                            let close = match judge(&write).await {
                                Verdict::Forward => false,
                                Verdict::ForwardAndClose => true,
                                Verdict::Close => return,
                                Verdict::Send(instead) => {
                                    write = instead;
                                    false
                                }
                            };
                            if server_out.write_all(&write).await.is_err() || close {
                                return;
                            }
                        }
                        n = server_in.read(&mut down) => {
                            let Ok(n @ 1..) = n else { return };
                            if client_out.write_all(&down[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    url
}
