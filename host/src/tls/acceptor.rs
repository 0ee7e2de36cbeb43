//! The TLS acceptor: certificate per domain by SNI, through the plugin hook.
//!
//! rustls asks for a certificate synchronously, but plugin calls are async,
//! so the ClientHello is read first (`LazyConfigAcceptor`), the policy is
//! asked, and the handshake then continues with the chosen domain's
//! `ServerConfig` (built once per domain and cached).
//!
//! With a client-CA bundle ([`TlsAcceptor::with_client_ca`]) the server asks
//! for a client certificate but does not require one: a phone without one
//! connects as before, a presented certificate must verify against the
//! bundle or the handshake fails, and the verified leaf's subject travels
//! with the connection ([`Accepted::client_cert_subject`]).

use super::{CertError, CertStore};
use crate::plugins::Policy;
use crate::plugins::certificates::Hello;
use crate::plugins::types::Transport;
use arc_swap::ArcSwap;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{Acceptor, ResolvesServerCert, ServerConfig, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A completed handshake.
pub struct Accepted<S> {
    /// The TLS stream.
    pub stream: TlsStream<S>,
    /// The SNI name the client sent, lower-cased.
    pub server_name: Option<String>,
    /// The domain whose certificate was presented.
    pub domain: String,
    /// The subject (RFC 4514) of the client certificate the peer presented,
    /// verified against the client-CA bundle; `None` when it presented none.
    pub client_cert_subject: Option<Arc<str>>,
}

/// A domain's certificate and the `ServerConfig` built for it.
type DomainConfig = (Arc<CertifiedKey>, Arc<ServerConfig>);

/// Accepts TLS connections for one listener.
pub struct TlsAcceptor {
    listener: String,
    certs: Arc<ArcSwap<CertStore>>,
    policy: Arc<Policy>,
    /// Verifies an optional client certificate; `None`: none is asked for.
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    /// One `ServerConfig` per domain, rebuilt when its certificate changes.
    configs: Mutex<HashMap<String, DomainConfig>>,
}

impl TlsAcceptor {
    /// An acceptor for the listener named `listener` (e.g. `sip-tls`).
    pub fn new(listener: &str, certs: Arc<ArcSwap<CertStore>>, policy: Arc<Policy>) -> Self {
        TlsAcceptor {
            listener: listener.into(),
            certs,
            policy,
            client_verifier: None,
            configs: Mutex::new(HashMap::new()),
        }
    }

    /// Ask clients for a certificate, without requiring one, and verify a
    /// presented one against the CA certificates of the PEM file `ca`. A
    /// certificate that does not verify fails the handshake.
    pub fn with_client_ca(mut self, ca: &std::path::Path) -> Result<Self, CertError> {
        let roots = super::load_ca(ca)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .map_err(|e| CertError::Pem {
                path: ca.into(),
                what: format!("not usable to verify client certificates: {e}"),
            })?;
        self.client_verifier = Some(verifier);
        self.configs.get_mut().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(self)
    }

    /// Run the handshake on `io`, choosing the certificate by SNI through
    /// the certificates hook. Fails (and the caller drops the connection)
    /// on garbage, a failed handshake or a timeout.
    pub async fn accept<S>(&self, io: S) -> std::io::Result<Accepted<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let handshake = async {
            let start = LazyConfigAcceptor::new(Acceptor::default(), io).await?;
            let server_name = start.client_hello().server_name().map(str::to_ascii_lowercase);
            let hello = Hello {
                server_name: server_name.clone(),
                listener: self.listener.clone(),
                transport: Transport::Tls,
            };
            let store = self.certs.load_full();
            let chosen = self.policy.certificate_for(&hello, |d| store.has(d)).await;
            let (domain, key) = store.get(chosen.as_deref());
            let config = self.config_for(&domain, key);
            let stream = start.into_stream(config).await?;
            // rustls returns peer certificates only once they verified.
            let client_cert_subject = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| super::subject_rfc4514(leaf))
                .map(Arc::from);
            Ok(Accepted {
                stream,
                server_name,
                domain,
                client_cert_subject,
            })
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))?
    }

    fn config_for(&self, domain: &str, key: Arc<CertifiedKey>) -> Arc<ServerConfig> {
        let mut configs = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, c)) = configs.get(domain)
            && Arc::ptr_eq(k, &key)
        {
            return c.clone();
        }
        let config = Arc::new(server_config(key.clone(), self.client_verifier.clone()));
        configs.insert(domain.to_string(), (key, config.clone()));
        config
    }
}

/// A fixed certificate.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// TLS 1.2 and 1.3 (many phones still speak only 1.2), ring provider; a
/// client certificate asked for but never required (`client_verifier`
/// allows unauthenticated clients), or not asked for at all.
fn server_config(key: Arc<CertifiedKey>, client_verifier: Option<Arc<dyn ClientCertVerifier>>) -> ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("ring supports TLS 1.2 and 1.3");
    let builder = match client_verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(Fixed(key)));
    config.alpn_protocols.clear();
    config
}
