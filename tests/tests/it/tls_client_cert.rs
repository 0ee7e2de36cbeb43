//! A phone's TLS client certificate: asked for but never required,
//! verified against the client-CA bundle (by default the PBX's development
//! CA), and its subject given to the routing plugin. A plugin built against
//! the previous contract (`pbx:policy@0.1.0`) still loads and routes.

use pbx::tls::issue_dev_client_cert;
use pbx_tests::{DOMAIN, TestPbx, guest_wasm};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const PW100: &str = "secret-100-pass";

/// A PBX whose routing hook is served by the test guest `guest` (the
/// plugin file name `routing-under-test`).
async fn pbx_routing_with(guest: &str) -> TestPbx {
    let pbx = TestPbx::start_with(
        &[("100", PW100)],
        "[plugins.hooks]\nrouting = \"routing-under-test\"\n",
        &[],
    )
    .await;
    pbx.running
        .policy
        .install("routing-under-test", guest_wasm(guest), "{}".into())
        .await
        .expect("the test plugin loads");
    pbx
}

/// A phone's certificate and key, as PEM.
type Identity = (String, String);

/// A certificate for `cn` from the development CA of the certificates
/// folder `certs` (the PBX's own, or another one).
fn identity(certs: &std::path::Path, cn: &str, org: Option<&str>) -> Identity {
    issue_dev_client_cert(certs, cn, org).unwrap()
}

/// Open a TLS connection to the PBX trusting its development CA, over TLS
/// `version`, presenting `identity` if given. The handshake's outcome as
/// the client sees it (over TLS 1.3 a refused client certificate shows up
/// only at the first read).
async fn connect(
    pbx: &TestPbx,
    version: &'static rustls::SupportedProtocolVersion,
    identity: Option<&Identity>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pbx.data.join("certs").join(pbx::tls::DEV_CA_FILE)).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(pbx.tls()).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(DOMAIN).unwrap(), tcp)
        .await
}

/// An INVITE from extension 100 to `user`, with an SRTP offer.
fn invite(tls: &TlsStream<TcpStream>, user: &str, cseq: u32, auth: Option<&str>) -> String {
    let me = tls.get_ref().0.local_addr().unwrap();
    // One call per connection: its port makes the Call-ID, tag and branch unique.
    let port = me.port();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ\r\n";
    let auth = auth.map_or(String::new(), |a| format!("Proxy-Authorization: {a}\r\n"));
    format!(
        "INVITE sip:{user}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bK-cert{port}-{cseq}\r\nMax-Forwards: 70\r\n\
         From: <sip:100@{DOMAIN}>;tag=cert{port}\r\nTo: <sip:{user}@{DOMAIN}>\r\nCall-ID: cert-{user}-{port}@test\r\nCSeq: {cseq} INVITE\r\n\
         Contact: <sip:100@{me};transport=tls>\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// The next final response on `tls` (1xx skipped), as text.
async fn final_response(tls: &mut TlsStream<TcpStream>, buf: &mut Vec<u8>) -> std::io::Result<String> {
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
                let body = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if buf.len() >= end + 4 + body {
                    let message = String::from_utf8_lossy(&buf[..end + 4 + body]).into_owned();
                    buf.drain(..end + 4 + body);
                    if message.starts_with("SIP/2.0 1") {
                        continue;
                    }
                    return Ok(message);
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tls.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// Place a call from extension 100 (answering the digest challenge) to
/// `user` over `tls`; the final response.
async fn call(tls: &mut TlsStream<TcpStream>, user: &str) -> String {
    let mut buf = Vec::new();
    let first = invite(tls, user, 1, None);
    tls.write_all(first.as_bytes()).await.unwrap();
    let challenge = final_response(tls, &mut buf).await.unwrap();
    assert!(challenge.starts_with("SIP/2.0 407"), "{challenge}");
    let offer = challenge
        .lines()
        .find_map(|l| l.strip_prefix("Proxy-Authenticate:"))
        .and_then(|v| pbx_sip::auth::ServerChallenge::parse(v).ok())
        .expect("a digest challenge");
    let answer = offer.answer("INVITE", &format!("sip:{user}@{DOMAIN}"), "100", PW100, "c0ffee", 1);
    let second = invite(tls, user, 2, Some(&answer));
    tls.write_all(second.as_bytes()).await.unwrap();
    final_response(tls, &mut buf).await.unwrap()
}

fn warning(response: &str) -> &str {
    response
        .lines()
        .find_map(|l| l.strip_prefix("Warning:"))
        .unwrap_or_else(|| panic!("no Warning header: {response}"))
}

const VERSIONS: [&rustls::SupportedProtocolVersion; 2] = [&rustls::version::TLS13, &rustls::version::TLS12];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_certificate_from_the_dev_ca_reaches_the_routing_plugin() {
    let pbx = pbx_routing_with("guest-evil").await;
    let phone = identity(&pbx.data.join("certs"), "phone-100", Some("Example"));
    for version in VERSIONS {
        let mut tls = connect(&pbx, version, Some(&phone)).await.expect("handshake");
        let response = call(&mut tls, "whoami").await;
        assert!(response.starts_with("SIP/2.0 403"), "{version:?}: {response}");
        assert!(
            warning(&response).contains("client certificate: CN=phone-100,O=Example"),
            "{version:?}: {response}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_without_a_certificate_connects_and_the_plugin_sees_none() {
    let pbx = pbx_routing_with("guest-evil").await;
    for version in VERSIONS {
        let mut tls = connect(&pbx, version, None).await.expect("no certificate is required");
        let response = call(&mut tls, "whoami").await;
        assert!(response.starts_with("SIP/2.0 403"), "{version:?}: {response}");
        assert!(
            warning(&response).contains("client certificate: none"),
            "{version:?}: {response}"
        );
    }
    assert_eq!(pbx.running.sip.counters.tls_failures.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_unknown_ca_fails_the_handshake() {
    let pbx = pbx_routing_with("guest-evil").await;
    let elsewhere = pbx_tests::tempdir();
    let stranger = identity(elsewhere.path(), "phone-100", Some("Example"));
    for (n, version) in VERSIONS.into_iter().enumerate() {
        // TLS 1.2: the handshake itself fails. TLS 1.3: the client's side
        // completes before the server checked its certificate; the server's
        // alert (or the close) comes at the first read, and no SIP answer.
        if let Ok(mut tls) = connect(&pbx, version, Some(&stranger)).await {
            let invite = invite(&tls, "whoami", 1, None);
            let _ = tls.write_all(invite.as_bytes()).await;
            let mut buf = Vec::new();
            let outcome = final_response(&mut tls, &mut buf).await;
            assert!(outcome.is_err(), "{version:?}: the PBX answered: {outcome:?}");
        }
        let failures = n as u64 + 1;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while pbx.running.sip.counters.tls_failures.load(Ordering::Relaxed) < failures {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{version:?}: no handshake failure counted"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The dev CA's phones still get in.
    let phone = identity(&pbx.data.join("certs"), "phone-100", None);
    let mut tls = connect(&pbx, &rustls::version::TLS13, Some(&phone)).await.unwrap();
    let response = call(&mut tls, "whoami").await;
    assert!(
        warning(&response).contains("client certificate: CN=phone-100"),
        "{response}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_against_policy_0_1_0_still_loads_and_routes() {
    let pbx = pbx_routing_with("guest-legacy").await;
    let plugin = pbx.running.policy.current(pbx::plugins::Hook::Routing).unwrap();
    assert_eq!(plugin.contract_version(), "0.1.0");
    assert_eq!(plugin.info.name, "legacy");
    let phone = identity(&pbx.data.join("certs"), "phone-100", None);
    let mut tls = connect(&pbx, &rustls::version::TLS13, Some(&phone)).await.unwrap();
    let response = call(&mut tls, "legacy").await;
    assert!(response.starts_with("SIP/2.0 403"), "{response}");
    assert!(
        warning(&response).contains(&format!("legacy plugin saw sip:legacy@{DOMAIN} over tls")),
        "{response}"
    );
}
