//! TLS to the database: a MariaDB listening on TCP with a certificate from a
//! CA made in the test (rcgen), and a user that requires SSL. With
//! --database-ssl-ca the gateway connects over TLS and verifies the server;
//! with another CA it refuses the server; without TLS the user is refused.
mod common;

use std::{
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use mysql_async::prelude::Queryable;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use sqlgate::{api::value::Kind, config::Config, server::Gateway};
use tonic::Code;

/// A MariaDB on 127.0.0.1 with TLS, stopped on drop.
struct TlsMariaDb {
    child: Child,
    dir: PathBuf,
    port: u16,
    ca: PathBuf,
}

impl Drop for TlsMariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ca() -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    (pem, Issuer::new(params, key))
}

fn sbin(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

async fn start_tls_mariadb() -> TlsMariaDb {
    let dir = std::env::temp_dir().join(format!("sqlgate-dbtls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (ca_pem, issuer) = ca();
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &ca_pem).unwrap();
    std::fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
    std::fs::write(dir.join("server-key.pem"), server_key.serialize_pem()).unwrap();

    let data = dir.join("data");
    let installed = Command::new(sbin("mariadb-install-db"))
        .arg("--no-defaults")
        .arg("--user=root")
        .arg(format!("--datadir={}", data.display()))
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .arg(format!("--tmpdir={}", dir.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(installed.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let socket = dir.join("s.sock");
    let child = Command::new(sbin("mariadbd"))
        .arg("--no-defaults")
        .arg("--user=root")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--tmpdir={}", dir.display()))
        .arg(format!("--log-error={}", dir.join("error.log").display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .arg(format!("--ssl-ca={}", ca.display()))
        .arg(format!("--ssl-cert={}", dir.join("server.pem").display()))
        .arg(format!(
            "--ssl-key={}",
            dir.join("server-key.pem").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = TlsMariaDb {
        child,
        dir,
        port,
        ca,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "MariaDB did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut admin = mysql_async::Conn::from_url(format!(
        "mysql://root@localhost/mysql?socket={}",
        socket.display()
    ))
    .await
    .unwrap();
    for sql in [
        "CREATE DATABASE app",
        "CREATE USER app@'%' IDENTIFIED BY 'app-password' REQUIRE SSL",
        "GRANT ALL ON app.* TO app@'%'",
    ] {
        admin.query_drop(sql).await.unwrap();
    }
    admin.disconnect().await.unwrap();
    server
}

async fn gateway_to(server: &TlsMariaDb, ca: Option<PathBuf>) -> TestGatewayLite {
    let url = format!("mysql://app:app-password@127.0.0.1:{}/app", server.port);
    let mut config = Config::for_database_url(url);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.pool.min = 0;
    config.pool.acquire_timeout = Duration::from_secs(3);
    config.database.ssl_ca = ca;
    let gateway = Gateway::start(config).await.unwrap();
    let client = sqlgate::api::database_client::DatabaseClient::connect(format!(
        "http://{}",
        gateway.local_addr()
    ))
    .await
    .unwrap();
    TestGatewayLite { gateway, client }
}

struct TestGatewayLite {
    gateway: Gateway,
    client: sqlgate::api::database_client::DatabaseClient<tonic::transport::Channel>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_talks_tls_to_the_database_and_verifies_it() {
    let server = start_tls_mariadb().await;

    let mut verified = gateway_to(&server, Some(server.ca.clone())).await;
    let cipher = execute(
        &mut verified.client,
        "SHOW STATUS LIKE 'Ssl_cipher'",
        vec![],
    )
    .await
    .unwrap();
    let Some(Kind::StringValue(cipher)) = cipher.rows[0].values[1].kind.clone() else {
        panic!("a cipher name");
    };
    assert!(!cipher.is_empty(), "the connection is encrypted");
    verified.gateway.shut_down().await;

    // A server whose certificate does not chain to the given CA is refused.
    let other_ca = server.dir.join("other-ca.pem");
    std::fs::write(&other_ca, ca().0).unwrap();
    let mut untrusted = gateway_to(&server, Some(other_ca)).await;
    let status = execute(&mut untrusted.client, "SELECT 1", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    untrusted.gateway.shut_down().await;

    // Without TLS the user (REQUIRE SSL) is refused by the server.
    let mut plain = gateway_to(&server, None).await;
    let status = execute(&mut plain.client, "SELECT 1", vec![])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    plain.gateway.shut_down().await;
}
