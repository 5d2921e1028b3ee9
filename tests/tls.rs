//! TLS on the listener, with certificates made in the test (rcgen): a TLS
//! client gets through, a plaintext one does not; with a client CA (mutual
//! TLS) only clients with a certificate from that CA get through.
mod common;

use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use sqlgate::api::{BeginRequest, CommitRequest, ExecuteRequest, database_client::DatabaseClient};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A CA, and certificates it signed.
struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (the first is also its common name),
    /// signed by the CA: (cert PEM, key PEM).
    fn issue(&self, names: &[&str]) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(name: &str, contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("sqlgate-tls-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

async fn tls_client(
    gateway: &TestGateway,
    ca_pem: &str,
    identity: Option<(String, String)>,
) -> Result<DatabaseClient<Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Channel::from_shared(format!("https://localhost:{}", gateway.address.port()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(DatabaseClient::new(channel))
}

async fn gateway_with_tls(name: &str, pki: &Pki, mutual: bool) -> TestGateway {
    tls_gateway(name, pki, mutual, |_| {}).await
}

/// A gateway serving TLS with a certificate for localhost from `pki`
/// (requiring client certificates from it when `mutual`), with settings
/// adjusted by `adjust`.
async fn tls_gateway(
    name: &str,
    pki: &Pki,
    mutual: bool,
    adjust: impl FnOnce(&mut sqlgate::config::Config),
) -> TestGateway {
    let (cert, key) = pki.issue(&["localhost"]);
    let cert = write(&format!("{name}-cert.pem"), &cert);
    let key = write(&format!("{name}-key.pem"), &key);
    let client_ca = mutual.then(|| write(&format!("{name}-ca.pem"), &pki.ca_pem));
    TestGateway::start_with(move |config| {
        config.tls = Some(sqlgate::config::TlsFiles {
            cert,
            key,
            client_ca,
        });
        adjust(config);
    })
    .await
}

#[tokio::test]
async fn tls_clients_get_through_and_plaintext_ones_do_not() {
    let pki = Pki::new();
    let gateway = gateway_with_tls("server", &pki, false).await;
    let mut client = tls_client(&gateway, &pki.ca_pem, None).await.unwrap();
    let response = execute(&mut client, "SELECT 1", vec![]).await.unwrap();
    assert_eq!(response.rows.len(), 1);
    let mut plaintext = DatabaseClient::connect(format!("http://{}", gateway.address))
        .await
        .unwrap();
    assert!(execute(&mut plaintext, "SELECT 1", vec![]).await.is_err());
    // A client that does not trust the gateway's CA refuses it.
    let stranger = Pki::new();
    let refused = match tls_client(&gateway, &stranger.ca_pem, None).await {
        Err(_) => true,
        Ok(mut client) => execute(&mut client, "SELECT 1", vec![]).await.is_err(),
    };
    assert!(refused);
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let pki = Pki::new();
    let gateway = gateway_with_tls("mutual", &pki, true).await;
    let identity = pki.issue(&["client-a"]);
    let mut client = tls_client(&gateway, &pki.ca_pem, Some(identity))
        .await
        .unwrap();
    execute(&mut client, "SELECT 1", vec![]).await.unwrap();

    // The certificate's subject is the principal: another client cannot
    // touch client-a's transaction.
    let tx = client
        .begin(BeginRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    let mut other = tls_client(&gateway, &pki.ca_pem, Some(pki.issue(&["client-b"])))
        .await
        .unwrap();
    let status = other
        .execute(ExecuteRequest {
            sql: "SELECT 1".into(),
            transaction_id: tx.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    client
        .commit(CommitRequest {
            transaction_id: tx,
            ..Default::default()
        })
        .await
        .unwrap();

    let anonymous = match tls_client(&gateway, &pki.ca_pem, None).await {
        Err(_) => true,
        Ok(mut client) => execute(&mut client, "SELECT 1", vec![]).await.is_err(),
    };
    assert!(anonymous, "a client without a certificate got through");
    let stranger = Pki::new();
    let forged = match tls_client(&gateway, &pki.ca_pem, Some(stranger.issue(&["client-b"]))).await
    {
        Err(_) => true,
        Ok(mut client) => execute(&mut client, "SELECT 1", vec![]).await.is_err(),
    };
    assert!(forged, "a certificate from another CA got through");
}

/// A TLS client of the gateway process listening on `address`.
async fn tls_client_of(
    address: &str,
    ca_pem: &str,
    identity: Option<(String, String)>,
) -> DatabaseClient<Channel> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let port = address.rsplit_once(':').unwrap().1;
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    DatabaseClient::new(channel)
}

/// Two gateway processes serving TLS as one fleet, with one certificate
/// (for `localhost` and 127.0.0.1) signed by `pki`; `mutual`: clients and
/// peers need certificates from it. `extra` flags go to both.
async fn tls_fleet(name: &str, pki: &Pki, mutual: bool, extra: &[&str]) -> Vec<GatewayProcess> {
    let (cert, key) = pki.issue(&["localhost", "127.0.0.1"]);
    let cert = write(&format!("{name}-fleet-cert.pem"), &cert);
    let key = write(&format!("{name}-fleet-key.pem"), &key);
    let ca = write(&format!("{name}-fleet-ca.pem"), &pki.ca_pem);
    let (_, url) = fresh_database().await;
    let (cert, key, ca) = (
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        ca.to_str().unwrap(),
    );
    let mut tls = vec!["--tls-cert", cert, "--tls-key", key, "--peer-tls-ca", ca];
    if mutual {
        tls.extend(["--tls-client-ca", ca]);
    }
    tls.extend_from_slice(extra);
    GatewayProcess::fleet(2, &[], |listen, peers| {
        GatewayProcess::fleet_args(&url, listen, peers, &tls)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_fleet_forwards_with_the_callers_token() {
    let pki = Pki::new();
    let tokens = token_file(
        "tls-fleet-tokens",
        "alice-token-0123456789,alice,read-write\nbob-token-0123456789,bob,read-write\n",
    );
    let instances = tls_fleet(
        "tokens",
        &pki,
        false,
        &["--auth-tokens-file", tokens.to_str().unwrap()],
    )
    .await;
    let mut a = tls_client_of(&instances[0].address, &pki.ca_pem, None).await;
    let mut b = tls_client_of(&instances[1].address, &pki.ca_pem, None).await;
    let tx = a
        .begin(as_caller("alice-token-0123456789", BeginRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    let select = |transaction_id: &str| statement_in("SELECT 1", transaction_id);
    b.execute(as_caller("alice-token-0123456789", select(&tx)))
        .await
        .expect("forwarded over TLS");
    let refused = b
        .execute(as_caller("bob-token-0123456789", select(&tx)))
        .await
        .expect_err("not bob's");
    assert_eq!(refused.code(), tonic::Code::NotFound);
    b.commit(as_caller(
        "alice-token-0123456789",
        CommitRequest {
            transaction_id: tx,
            ..Default::default()
        },
    ))
    .await
    .expect("committed through the other instance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutual_tls_fleet_vouches_for_its_callers_and_clients_cannot_forge_it() {
    let pki = Pki::new();
    let instances = tls_fleet("mutual", &pki, true, &[]).await;
    let alice = pki.issue(&["client-a"]);
    let bob = pki.issue(&["client-b"]);
    let mut a = tls_client_of(&instances[0].address, &pki.ca_pem, Some(alice.clone())).await;
    let mut b_as_alice = tls_client_of(&instances[1].address, &pki.ca_pem, Some(alice)).await;
    let mut b_as_bob = tls_client_of(&instances[1].address, &pki.ca_pem, Some(bob.clone())).await;
    let mut a_as_bob = tls_client_of(&instances[0].address, &pki.ca_pem, Some(bob)).await;
    let tx = a
        .begin(BeginRequest::default())
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    let select = |transaction_id: &str| statement_in("SELECT 1", transaction_id);
    // Alice through B: B presents the gateway certificate to A and vouches
    // for alice.
    b_as_alice
        .execute(select(&tx))
        .await
        .expect("forwarded with alice's principal");
    // Bob through B: vouched as bob, refused by A.
    let refused = b_as_bob.execute(select(&tx)).await.expect_err("not bob's");
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    // Bob claiming to be alice, straight to A: his certificate is not the
    // gateway's, so the claim is ignored.
    let mut forged = tonic::Request::new(select(&tx));
    // Principals are certificate subjects: alice is "CN=client-a".
    forged.metadata_mut().insert_bin(
        "x-sqlgate-principal-bin",
        tonic::metadata::MetadataValue::from_bytes(b"CN=client-a"),
    );
    let ignored = a_as_bob.execute(forged).await.expect_err("forged");
    assert_eq!(ignored.code(), tonic::Code::NotFound, "{ignored:?}");
    b_as_alice
        .commit(CommitRequest {
            transaction_id: tx,
            ..Default::default()
        })
        .await
        .expect("alice commits through B");
}

/// On the TLS listener too, connections that say nothing cannot lock new
/// clients out: when every --max-connections place is taken, the oldest
/// connection that carried no request makes room for a new client at once,
/// and a connection that does not complete its TLS handshake within
/// --handshake-timeout is closed. (Before, silent connections held their
/// places for as long as they stayed, 65 s measured.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_do_not_lock_tls_clients_out() {
    const PLACES: usize = 8;
    let pki = Pki::new();
    let gateway = tls_gateway("silent", &pki, false, |config| {
        config.requests.max_connections = PLACES;
        config.requests.handshake_timeout = Duration::from_secs(2);
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..PLACES {
        silent.push(
            tokio::net::TcpStream::connect(gateway.address)
                .await
                .unwrap(),
        );
    }
    let started = std::time::Instant::now();
    let mut client = tokio::time::timeout(
        Duration::from_secs(5),
        tls_client(&gateway, &pki.ca_pem, None),
    )
    .await
    .expect("a new TLS client is locked out")
    .unwrap();
    execute(&mut client, "SELECT 1", vec![]).await.unwrap();
    // Well before the handshake timeout could have freed a place.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // The others are closed by the handshake timeout.
    for mut tcp in silent {
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            let mut buffer = [0u8; 1024];
            while let Ok(1..) = tokio::io::AsyncReadExt::read(&mut tcp, &mut buffer).await {}
        })
        .await;
        assert!(closed.is_ok(), "a silent connection is still open");
    }
    assert!(started.elapsed() >= Duration::from_millis(1500));
    gateway.shut_down().await;
}

/// A TLS client that completes the handshake and then never sends the
/// HTTP/2 preface is closed once --handshake-timeout has passed since it
/// connected (the timeout runs on until the preface, not only to the end of
/// the handshake), while a normal TLS client, connected meanwhile, keeps
/// working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_that_never_sends_the_preface_is_closed() {
    use tokio::io::AsyncReadExt;
    use tokio_rustls::{
        TlsConnector,
        rustls::{ClientConfig, RootCertStore, pki_types::ServerName},
    };
    let pki = Pki::new();
    let gateway = tls_gateway("mute", &pki, false, |config| {
        config.requests.handshake_timeout = Duration::from_secs(1);
    })
    .await;
    let mut roots = RootCertStore::empty();
    let ca = rustls_pki_types_cert(&pki.ca_pem);
    roots.add(ca).unwrap();
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = TlsConnector::from(std::sync::Arc::new(config));
    let started = std::time::Instant::now();
    let tcp = tokio::net::TcpStream::connect(gateway.address)
        .await
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut mute = connector
        .connect(name, tcp)
        .await
        .expect("the TLS handshake completes");
    assert_eq!(mute.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // A normal client meanwhile.
    let mut client = tls_client(&gateway, &pki.ca_pem, None).await.unwrap();
    execute(&mut client, "SELECT 1", vec![]).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buffer = [0u8; 1024];
        // The server's SETTINGS may come first; then the end.
        while let Ok(1..) = mute.read(&mut buffer).await {}
    })
    .await;
    assert!(closed.is_ok(), "the silent TLS connection is still open");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    // The normal client, older than the timeout now, keeps working.
    execute(&mut client, "SELECT 1", vec![]).await.unwrap();
    gateway.shut_down().await;
}

/// A PEM certificate as rustls takes it.
fn rustls_pki_types_cert(pem: &str) -> tokio_rustls::rustls::pki_types::CertificateDer<'static> {
    use tokio_rustls::rustls::pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}
