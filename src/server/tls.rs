//! The listener's TLS, from the PEM files the flags name.
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use super::StartError;

/// The listener's TLS from PEM files; with a client CA, client certificates
/// are required. As tonic's own TLS would be: HTTP/2 by ALPN, the process's
/// crypto provider (ring).
pub(super) fn tls_acceptor(files: &crate::config::TlsFiles) -> Result<TlsAcceptor, StartError> {
    use tokio_rustls::rustls::{
        RootCertStore, ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::WebPkiClientVerifier,
    };
    let certificates = |flag: &str, path: &std::path::Path, pem: &[u8]| {
        CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StartError::Tls(format!("{flag} {}: {e}", path.display())))
    };
    let cert = read_pem(&files.cert, "--tls-cert", "CERTIFICATE")?;
    let cert = certificates("--tls-cert", &files.cert, &cert)?;
    let key = read_pem(&files.key, "--tls-key", "PRIVATE KEY")?;
    let key = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|e| StartError::Tls(format!("--tls-key {}: {e}", files.key.display())))?;
    let builder = ServerConfig::builder();
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let pem = read_pem(ca, "--tls-client-ca", "CERTIFICATE")?;
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(certificates("--tls-client-ca", ca, &pem)?);
            let verifier = WebPkiClientVerifier::builder(roots.into())
                .build()
                .map_err(|e| StartError::Tls(format!("--tls-client-ca {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(cert, key)
        .map_err(|e| StartError::Tls(format!("--tls-cert and --tls-key: {e}")))?;
    config.alpn_protocols.push(b"h2".to_vec());
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reads a PEM file given with `flag`, checking that it holds a block whose
/// label ends with `label` (a certificate that parses, for CERTIFICATE), so
/// that a wrong file is named at start-up rather than failing as a
/// "transport error" once serving.
fn read_pem(path: &std::path::Path, flag: &str, label: &str) -> Result<Vec<u8>, StartError> {
    let bad = |why: String| StartError::Tls(format!("{flag} {}: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let mut found = false;
    for block in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
        let block = block.map_err(|e| bad(format!("not a valid PEM file ({e})")))?;
        if block.label.ends_with(label) {
            if label == "CERTIFICATE" {
                block
                    .parse_x509()
                    .map_err(|e| bad(format!("its certificate does not parse ({e})")))?;
            }
            found = true;
        }
    }
    if !found {
        return Err(bad(format!(
            "not a PEM file with a {label} (-----BEGIN {label}----- block)"
        )));
    }
    Ok(bytes)
}
