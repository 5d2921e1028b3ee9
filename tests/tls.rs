//! TLS on the listener, with certificates made in the test (rcgen): a TLS
//! client gets through, a plaintext one does not; with a client CA (mutual
//! TLS) only clients with a certificate from that CA get through.
mod common;

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
        .commit(CommitRequest { transaction_id: tx })
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
