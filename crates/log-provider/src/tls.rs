//! HTTPS for log-provider (TLS_CERT_FILE, TLS_KEY_FILE): a rustls acceptor on the platform's
//! acceptor hook. The certificate file is watched like a secret (cert-manager renews it in
//! place): each reload reads the key file too and builds a new server configuration, which new
//! connections use; open ones keep theirs. A reload that fails keeps the current certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use platform::acceptor::{Accepting, Connection};
use platform::Reloadable;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;

/// The acceptor: the current server configuration, taken once per connection.
pub struct TlsAcceptor {
    config: Reloadable<Arc<rustls::ServerConfig>>,
}

impl TlsAcceptor {
    pub fn new(config: Reloadable<Arc<rustls::ServerConfig>>) -> Self {
        Self { config }
    }
}

impl platform::Acceptor for TlsAcceptor {
    fn accept(&self, stream: TcpStream) -> Accepting {
        let acceptor = tokio_rustls::TlsAcceptor::from((*self.config.current()).clone());
        Box::pin(async move {
            let tls = acceptor.accept(stream).await?;
            Ok(Box::new(tls) as Box<dyn Connection>)
        })
    }
}

/// Parses the certificate file's content (a PEM chain) and reads the key file beside it. The
/// error names the file and the problem, never key material.
pub fn server_config(cert_pem: &str, key_file: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "is not a PEM certificate chain".to_string())?;
    if chain.is_empty() {
        return Err("holds no PEM certificate".to_string());
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|_| {
        format!(
            "its key {} is not a readable PEM private key",
            key_file.display()
        )
    })?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|err| format!("does not match its key {}: {err}", key_file.display()))?;
    // HTTP/2 and HTTP/1.1 are both served; ALPN lets the client pick.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// TLS_CERT_FILE and TLS_KEY_FILE, as configured.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}
