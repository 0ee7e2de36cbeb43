//! Registrar figures (issue 4): REGISTER completions per second with MD5
//! digest over TLS, on persistent connections and with a new connection
//! (full handshake) per registration, and the PBX's CPU time per
//! registration, and the memory a registered TLS phone costs (every user
//! connected and registered at once).
//!
//! The PBX runs as a child process (this binary with `PBX_BENCH_SERVER`
//! set), so its CPU time is read from `/proc/<pid>/stat` alone; the load
//! client runs here on one thread. Prints `register <figure> <value> <unit>`.
//!
//! The same load can be pointed at another registrar to compare (see
//! `benches/anchors/kamailio.sh`): `PBX_BENCH_PEER` is its TLS address,
//! `PBX_BENCH_PEER_PIDS` its processes (comma-separated; their CPU times
//! and resident sizes are summed) and `PBX_BENCH_PEER_CA` the CA that
//! signed its certificate for `example.test`. Its users are `u0`..`u999`
//! with the passwords `pw-u0`...

mod support;

use pbx_sip::auth::ServerChallenge;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls_pki_types::pem::PemObject;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{cpu_time, rss_kib};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DOMAIN: &str = "example.test";
const USERS: u32 = 1000;

fn main() {
    if let Some(data) = std::env::var_os("PBX_BENCH_SERVER") {
        return server(data.into());
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, tls, pids, ca) = match support::peer_from_env() {
        Some(peer) => (None, peer.tls, peer.pids, peer.ca),
        None => {
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(
                data.join("pbx.toml"),
                format!("[sip]\ndomain = \"{DOMAIN}\"\nudp = []\ntcp = []\ntls = [\"127.0.0.1:0\"]\n"),
            )
            .unwrap();
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .env("PBX_BENCH_SERVER", &data)
                .env("PBX_LOG", "warn")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let tls: SocketAddr = loop {
                let line = lines.next().expect("server output").unwrap();
                if let Some(addr) = line.strip_prefix("READY ") {
                    break addr.parse().unwrap();
                }
            };
            let pid = child.id();
            (
                Some(child),
                tls,
                vec![pid],
                data.join("certs").join(pbx::tls::DEV_CA_FILE),
            )
        }
    };
    let pids = &pids[..];

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let connector = connector(&ca);
        // Persistent connections: 50 phones re-registering in a loop.
        let (n, cpu, wall) = measure(pids, Duration::from_secs(5), load(&connector, tls, 50, Mode::Challenge)).await;
        report("persistent_tls", n, cpu, wall);
        // The same, with each phone answering the last challenge again
        // (nc + 1) as baresip and most desk phones do on re-registration:
        // one request per registration instead of two.
        let (n, cpu, wall) = measure(pids, Duration::from_secs(5), load(&connector, tls, 50, Mode::Reuse)).await;
        report("persistent_tls_nonce_reuse", n, cpu, wall);
        // A new TLS connection (full handshake) per registration.
        let (n, cpu, wall) = measure(pids, Duration::from_secs(5), load(&connector, tls, 20, Mode::Reconnect)).await;
        report("new_tls_connection_each", n, cpu, wall);
        // Memory per registered TLS phone: every user registers over its
        // own connection and stays connected, as desk phones do.
        let before = rss_kib(pids);
        let mut phones = Vec::new();
        for chunk in (0..USERS).collect::<Vec<_>>().chunks(100) {
            let opened: Vec<_> = chunk
                .iter()
                .map(|&u| {
                    let connector = connector.clone();
                    tokio::spawn(async move {
                        let mut s = connect(&connector, tls).await;
                        // Above any CSeq the load runs used on this Call-ID.
                        let mut seq = 100_000_000;
                        register(&mut s, u, &mut seq, None).await;
                        s
                    })
                })
                .collect();
            for t in opened {
                phones.push(t.await.unwrap());
            }
        }
        let after = rss_kib(pids);
        println!(
            "register memory_per_tls_phone {:.1} KiB ({USERS} phones connected and registered: RSS {before} -> {after} KiB)",
            after.saturating_sub(before) as f64 / f64::from(USERS)
        );
        drop(phones);
    });
    println!("register server_VmRSS: {} kB", rss_kib(pids));
    if let Some(mut child) = child.take() {
        drop(child.stdin.take());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// How the load clients register.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// One connection each; every registration is challenged.
    Challenge,
    /// One connection each; re-registrations answer the last challenge
    /// again with the next `nc`, and are challenged only when it is stale.
    Reuse,
    /// A new connection (full handshake) per registration, challenged.
    Reconnect,
}

/// `phones` concurrent clients registering until the deadline.
fn load(
    connector: &tokio_rustls::TlsConnector,
    tls: SocketAddr,
    phones: u32,
    mode: Mode,
) -> impl FnOnce(Instant) -> std::pin::Pin<Box<dyn std::future::Future<Output = u64>>> {
    let connector = connector.clone();
    move |deadline| {
        Box::pin(async move {
            let mut tasks = Vec::new();
            for c in 0..phones {
                let connector = connector.clone();
                tasks.push(tokio::spawn(async move {
                    let reconnect = mode == Mode::Reconnect;
                    let user = (c + if reconnect { 100 } else { 0 }) % USERS;
                    let mut stream = connect(&connector, tls).await;
                    // Above any CSeq an earlier run used on this Call-ID.
                    let (mut done, mut seq) = (0u64, if mode == Mode::Reuse { 1_000_000 } else { 0 });
                    let mut cached = None;
                    while Instant::now() < deadline {
                        if reconnect && done > 0 {
                            stream = connect(&connector, tls).await;
                        }
                        let keep = if mode == Mode::Reuse { Some(&mut cached) } else { None };
                        register(&mut stream, user, &mut seq, keep).await;
                        done += 1;
                    }
                    done
                }));
            }
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap();
            }
            total
        })
    }
}

fn report(name: &str, n: u64, cpu: Duration, wall: Duration) {
    println!("register {name}_per_second {:.0} /s", n as f64 / wall.as_secs_f64());
    println!(
        "register {name}_cpu_per_registration {:.1} us",
        cpu.as_secs_f64() * 1e6 / n.max(1) as f64
    );
}

/// Run `load` for `span` and return completions, the server's CPU time and
/// the wall time.
async fn measure<F, Fut>(pids: &[u32], span: Duration, load: F) -> (u64, Duration, Duration)
where
    F: FnOnce(Instant) -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let cpu0 = cpu_time(pids);
    let t0 = Instant::now();
    let n = load(t0 + span).await;
    (n, cpu_time(pids) - cpu0, t0.elapsed())
}

fn connector(ca: &std::path::Path) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn connect(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    connector
        .connect(ServerName::try_from(DOMAIN).unwrap(), tcp)
        .await
        .unwrap()
}

/// The last challenge a client answered, and the `nc` it used.
type Cached = Option<(ServerChallenge, u32)>;

/// REGISTER, answer the challenge, expect 200. With `cached`, first try
/// the last challenge again with the next `nc`.
async fn register<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    user: u32,
    seq: &mut u32,
    cached: Option<&mut Cached>,
) {
    let user = format!("u{user}");
    let msg = |seq: u32, auth: &str| {
        format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK{seq}x{user};rport\r\n\
             From: <sip:{user}@{DOMAIN}>;tag=b{user}\r\nTo: <sip:{user}@{DOMAIN}>\r\nCall-ID: bench-{user}\r\n\
             CSeq: {seq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:5999;transport=tls>\r\n{auth}Expires: 300\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let authorization = |offer: &ServerChallenge, nc: u32| {
        let value = offer.answer(
            "REGISTER",
            &format!("sip:{DOMAIN}"),
            &user,
            &format!("pw-{user}"),
            "c0ffee",
            nc,
        );
        format!("Authorization: {value}\r\n")
    };
    let mut cached = cached;
    let mut auth = String::new();
    if let Some(Some((offer, nc))) = cached.as_deref_mut() {
        *nc += 1;
        auth = authorization(offer, *nc);
    }
    *seq += 1;
    s.write_all(msg(*seq, &auth).as_bytes()).await.unwrap();
    let mut reply = read_response(s).await;
    if reply.starts_with("SIP/2.0 401") {
        let offer = reply
            .lines()
            .find_map(|l| l.strip_prefix("WWW-Authenticate:"))
            .and_then(|v| ServerChallenge::parse(v).ok())
            .expect("a digest challenge");
        *seq += 1;
        s.write_all(msg(*seq, &authorization(&offer, 1)).as_bytes())
            .await
            .unwrap();
        reply = read_response(s).await;
        if let Some(c) = cached {
            *c = Some((offer, 1));
        }
    } else {
        assert!(auth.is_empty() || reply.starts_with("SIP/2.0 200"), "{reply}");
    }
    assert!(reply.starts_with("SIP/2.0 200"), "{reply}");
}

/// Read one body-less response.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::with_capacity(1024);
    let mut byte = [0u8; 512];
    loop {
        let n = s.read(&mut byte).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&byte[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return String::from_utf8_lossy(&buf).into_owned();
        }
    }
}

/// The PBX side: start it, create the users, print the TLS port, run until
/// standard input closes.
fn server(data: std::path::PathBuf) {
    tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = pbx::config::Config::load_or_init(&data).unwrap();
        let running = pbx::app::start(config).await.unwrap();
        for u in 0..USERS {
            let _ = running.store.add_extension(&pbx::store::Extension {
                domain: DOMAIN.into(),
                extension: format!("u{u}"),
                password: format!("pw-u{u}"),
                display_name: None,
                provisioned: false,
            });
        }
        println!("READY {}", running.listeners.tls[0]);
        std::io::stdout().flush().unwrap();
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
        })
        .await
        .unwrap();
    });
}
