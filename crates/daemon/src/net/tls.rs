//! TLS for every mode (channels `-c`/`-k`, jwt `-tls-cert`/`-tls-key`, demo
//! `TLS_CERT`/`TLS_KEY`): rustls with the ring provider, certificate chain
//! and key read from PEM files, HTTP/2 offered by ALPN.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Builds an acceptor from PEM files; the error is one line for the user.
pub fn acceptor(cert: &str, key: &str) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("Unable to use certificate {cert}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("Unable to use certificate {cert}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "Unable to use certificate {cert}: no certificate in the file"
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("Unable to use private key {key}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("Unable to use certificate {cert} with its key: {e}"))?;
    // HTTP/2 when the client offers it (browsers then hold every stream of
    // an origin on one connection, past their six HTTP/1 connections).
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_give_one_line_errors() {
        let err = acceptor("/nonexistent/cert.pem", "/nonexistent/key.pem")
            .err()
            .unwrap();
        assert!(
            err.starts_with("Unable to use certificate /nonexistent/cert.pem"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }
}
