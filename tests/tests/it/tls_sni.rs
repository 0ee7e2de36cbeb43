//! One certificate per domain, chosen by SNI through the certificates hook,
//! with a client certificate asked for (never required) as on the SIP
//! listeners.

use crate::support::{bundled, policy};
use arc_swap::ArcSwap;
use pbx::plugins::Hook;
use pbx::tls::{CertStore, TlsAcceptor, issue_dev_cert};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Start a TLS listener for domains `pbx.test` (default), `a.example` and
/// `b.example`, verifying client certificates against the development CA;
/// returns its address and the certificates folder. It answers each
/// connection with the domain it chose, then the client certificate's
/// subject if one was presented.
async fn listener() -> (std::net::SocketAddr, tempfile::TempDir) {
    let dir = pbx_tests::tempdir();
    for d in ["a.example", "b.example"] {
        issue_dev_cert(dir.path(), d).unwrap();
    }
    let store = CertStore::load_or_init(dir.path(), "pbx.test").unwrap();
    let policy = policy();
    policy
        .install("certificates", bundled(Hook::Certificates), "{}".into())
        .await
        .unwrap();
    let acceptor = Arc::new(
        TlsAcceptor::new("sip-tls", Arc::new(ArcSwap::from_pointee(store)), policy)
            .with_client_ca(&dir.path().join(pbx::tls::DEV_CA_FILE))
            .unwrap(),
    );
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (io, _) = tcp.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(io).await {
                    let mut answer = tls.domain.clone();
                    if let Some(subject) = &tls.client_cert_subject {
                        answer = format!("{answer} {subject}");
                    }
                    let _ = tls.stream.write_all(answer.as_bytes()).await;
                    let _ = tls.stream.shutdown().await;
                }
            });
        }
    });
    (addr, dir)
}

/// Connect trusting only the development CA; returns the leaf certificate
/// presented and the domain the server says it chose.
async fn connect(
    addr: std::net::SocketAddr,
    certs: &std::path::Path,
    name: ServerName<'static>,
) -> (CertificateDer<'static>, String) {
    connect_as(addr, certs, name, None).await
}

/// [`connect`], presenting the client certificate `identity` (PEM
/// certificate and key) if given.
async fn connect_as(
    addr: std::net::SocketAddr,
    certs: &std::path::Path,
    name: ServerName<'static>,
    identity: Option<(String, String)>,
) -> (CertificateDer<'static>, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(certs.join(pbx::tls::DEV_CA_FILE)).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => config
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => config.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .expect("handshake verifies against the dev CA");
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned();
    let mut domain = String::new();
    tls.read_to_string(&mut domain).await.unwrap();
    (leaf, domain)
}

fn cert_of(certs: &std::path::Path, domain: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(certs.join(domain).join("cert.pem")).unwrap()
}

#[tokio::test]
async fn sni_selects_the_domain_certificate_and_no_sni_gets_the_default() {
    let (addr, dir) = listener().await;
    for d in ["a.example", "b.example"] {
        let (leaf, chosen) = connect(addr, dir.path(), ServerName::try_from(d).unwrap()).await;
        assert_eq!(chosen, d);
        assert_eq!(leaf, cert_of(dir.path(), d), "{d} got another domain's certificate");
    }
    // rustls sends no SNI when connecting to an IP address.
    let (leaf, chosen) = connect(
        addr,
        dir.path(),
        ServerName::IpAddress("127.0.0.1".parse::<std::net::IpAddr>().unwrap().into()),
    )
    .await;
    assert_eq!(chosen, "pbx.test");
    assert_eq!(leaf, cert_of(dir.path(), "pbx.test"));
}

#[tokio::test]
async fn tls_garbage_closes_only_that_connection() {
    let (addr, dir) = listener().await;
    let mut junk = TcpStream::connect(addr).await.unwrap();
    junk.write_all(b"REGISTER sip:pbx.test SIP/2.0\r\n\r\n\x16\x03\x01garbage")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    // The server drops the connection: EOF or reset, never a hang.
    let n = tokio::time::timeout(std::time::Duration::from_secs(15), junk.read(&mut buf))
        .await
        .expect("closed");
    assert!(
        matches!(n, Ok(0) | Err(_)) || matches!(n, Ok(n) if n > 0 && buf[0] == 0x15),
        "{n:?}"
    );
    // The listener still serves others.
    let (_, chosen) = connect(addr, dir.path(), ServerName::try_from("a.example").unwrap()).await;
    assert_eq!(chosen, "a.example");
}

#[tokio::test]
async fn sni_selection_still_works_when_the_client_presents_a_certificate() {
    let (addr, dir) = listener().await;
    let phone = pbx::tls::issue_dev_client_cert(dir.path(), "phone-7", Some("Example")).unwrap();
    let (leaf, answer) = connect_as(
        addr,
        dir.path(),
        ServerName::try_from("b.example").unwrap(),
        Some(phone),
    )
    .await;
    assert_eq!(answer, "b.example CN=phone-7,O=Example");
    assert_eq!(leaf, cert_of(dir.path(), "b.example"));
}
