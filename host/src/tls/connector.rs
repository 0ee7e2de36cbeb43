//! The TLS client side, for connections the PBX opens itself (to TLS
//! trunks): the server's certificate chain is verified against a CA
//! bundle (webpki, through rustls) and must be valid for the configured
//! name. There is no way to skip the check.

use super::CertError;
use rustls::client::ClientConfig;
use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Why a TLS handshake toward a server failed. The first variants are the
/// certificate checks, so an operator can tell "wrong CA" from "wrong name".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The chain does not lead to a CA of the bundle (or a signature in it
    /// is bad).
    #[error("TLS certificate not trusted")]
    NotTrusted,
    /// The certificate is trusted but not issued for the name checked.
    #[error("TLS certificate not valid for {0}")]
    WrongName(String),
    /// The certificate is outside its validity period.
    #[error("TLS certificate expired or not yet valid")]
    Expired,
    /// The certificate was refused for another reason (encoding, purpose,
    /// algorithm).
    #[error("TLS certificate refused: {0}")]
    BadCertificate(String),
    /// The handshake failed before or after the certificate check
    /// (protocol versions, alerts, the peer closing the connection).
    #[error("TLS handshake failed: {0}")]
    Failed(String),
}

/// A TLS client for one server: the verifier (CA bundle, TLS 1.2 and 1.3,
/// ring) and the name the certificate must be valid for.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A client trusting the certificates of the PEM file `ca` (one or
    /// more), checking `server_name`.
    pub fn new(ca: &Path, server_name: ServerName<'static>) -> Result<TlsClient, CertError> {
        let roots = load_ca(ca)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols.clear();
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// The name the server's certificate must be valid for.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }

    /// Run the handshake over `io` (the caller bounds it in time).
    pub async fn connect<S>(&self, io: S) -> Result<TlsStream<S>, HandshakeError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.connector
            .connect(self.server_name.clone(), io)
            .await
            .map_err(|e| classify(&e, &self.server_name))
    }
}

/// The trust anchors of the PEM file `path`: at least one certificate.
pub fn load_ca(path: &Path) -> Result<RootCertStore, CertError> {
    let pem = std::fs::read(path).map_err(|source| CertError::Io {
        path: path.into(),
        source,
    })?;
    let bad = |what: String| CertError::Pem {
        path: path.into(),
        what,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate (PEM `CERTIFICATE` block) found".into()));
    }
    Ok(roots)
}

/// What an I/O error out of the handshake means. tokio-rustls wraps
/// rustls' own error in the `io::Error`.
fn classify(e: &std::io::Error, name: &ServerName<'_>) -> HandshakeError {
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return HandshakeError::Failed(e.to_string());
    };
    match tls {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => HandshakeError::NotTrusted,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                HandshakeError::WrongName(name.to_str().into_owned())
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => HandshakeError::Expired,
            other => HandshakeError::BadCertificate(format!("{other:?}")),
        },
        other => HandshakeError::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_bundle_needs_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = load_ca(&dir.path().join("nope.pem")).unwrap_err();
        assert!(missing.to_string().contains("nope.pem"), "{missing}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(load_ca(&empty).unwrap_err().to_string().contains("no certificate"));
        // The development CA the PBX makes on first run is a usable bundle.
        crate::tls::issue_dev_cert(dir.path(), "example.test").unwrap();
        let roots = load_ca(&dir.path().join(crate::tls::DEV_CA_FILE)).unwrap();
        assert_eq!(roots.len(), 1);
    }

    #[test]
    fn handshake_errors_say_which_check_failed() {
        let name = ServerName::try_from("gw.example.test").unwrap();
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let cert = |c: CertificateError| io(rustls::Error::InvalidCertificate(c));
        assert_eq!(
            classify(&cert(CertificateError::UnknownIssuer), &name),
            HandshakeError::NotTrusted
        );
        assert_eq!(
            classify(&cert(CertificateError::NotValidForName), &name).to_string(),
            "TLS certificate not valid for gw.example.test"
        );
        assert_eq!(
            classify(&cert(CertificateError::Expired), &name),
            HandshakeError::Expired
        );
        let closed = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert!(matches!(classify(&closed, &name), HandshakeError::Failed(_)));
    }
}
