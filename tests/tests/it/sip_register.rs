//! Registration with real peers: sipp over UDP and TCP, baresip over TLS;
//! bad input; brute-force protection.

use pbx::sip::Proto;
use pbx_tests::{Baresip, DOMAIN, PhoneConfig, TestPbx, shared_dir, sipp_spawn};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

fn users(n: u32) -> Vec<(String, String)> {
    (200..200 + n)
        .map(|u| (u.to_string(), format!("pw-{u}-secret")))
        .collect()
}

async fn pbx_with(users: &[(String, String)]) -> TestPbx {
    let list: Vec<(&str, &str)> = users.iter().map(|(u, p)| (u.as_str(), p.as_str())).collect();
    TestPbx::start(&list).await
}

/// Wait (polling the registrar, bounded) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Register `user` with `password` and un-register it again, with the
/// sipp recipe from `../shared/peers/sipp/`.
fn sipp_register(
    pbx: &TestPbx,
    transport: &str,
    user: &str,
    password: &str,
) -> tokio::task::JoinHandle<std::process::Output> {
    let target = if transport == "u1" { pbx.udp() } else { pbx.tcp() };
    let recipe = shared_dir().join("peers/sipp/register_auth.xml");
    let extra: Vec<String> = [
        "-s", user, "-au", user, "-ap", password, "-key", "domain", DOMAIN, "-m", "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sipp_spawn(&recipe, transport, target, &extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_many_users_with_digest_over_udp_and_tcp() {
    let users = users(20);
    let pbx = pbx_with(&users).await;
    for transport in ["u1", "t1"] {
        // Twenty phones at once, each its own sipp process.
        let runs: Vec<_> = users
            .iter()
            .map(|(u, p)| sipp_register(&pbx, transport, u, p))
            .collect();
        for (run, (user, _)) in runs.into_iter().zip(&users) {
            let out = run.await.unwrap();
            assert!(
                out.status.success(),
                "sipp over {transport} for {user} failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // Every user un-registered at the end of its scenario.
    for (u, _) in &users {
        assert!(
            pbx.running.sip.registrar.lookup(DOMAIN, u).is_empty(),
            "{u} still registered"
        );
    }
}

#[tokio::test]
async fn a_wrong_password_gets_no_binding() {
    let pbx = pbx_with(&users(1)).await;
    let out = sipp_register(&pbx, "u1", "200", "not-the-password").await.unwrap();
    assert!(!out.status.success(), "sipp succeeded with a wrong password");
    assert!(pbx.running.sip.registrar.lookup(DOMAIN, "200").is_empty());
}

/// Send `msg` from `sock` and wait for one datagram back.
async fn exchange(sock: &UdpSocket, to: std::net::SocketAddr, msg: &str) -> Option<String> {
    sock.send_to(msg.as_bytes(), to).await.unwrap();
    let mut buf = vec![0u8; 65536];
    match tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    }
}

fn register(from_port: u16, cseq: u32, auth: Option<&str>) -> String {
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:{from_port};branch=z9hG4bK-bf{cseq};rport\r\n\
         From: <sip:200@{DOMAIN}>;tag=bf\r\nTo: <sip:200@{DOMAIN}>\r\nCall-ID: brute@127.0.0.2\r\nCSeq: {cseq} REGISTER\r\n\
         Contact: <sip:200@127.0.0.2:{from_port}>\r\n{auth}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_400_and_the_pbx_carries_on() {
    let pbx = pbx_with(&users(1)).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    // No Call-ID, CSeq or From: a 400 that says what is wrong.
    let bad = format!(
        "OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-m1\r\nTo: <sip:{DOMAIN}>\r\n\r\n"
    );
    let reply = exchange(&sock, pbx.udp(), &bad)
        .await
        .expect("an answer to a malformed request");
    assert!(reply.starts_with("SIP/2.0 400 "), "{reply}");
    // Garbage is dropped and counted, not answered.
    sock.send_to(b"\x00\x01garbage\xff\r\n\r\n", pbx.udp()).await.unwrap();
    // The PBX still answers OPTIONS with what it supports.
    let options = format!(
        "OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-o1\r\nFrom: <sip:x@{DOMAIN}>;tag=1\r\n\
         To: <sip:{DOMAIN}>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    let reply = exchange(&sock, pbx.udp(), &options)
        .await
        .expect("an answer to OPTIONS");
    assert!(
        reply.starts_with("SIP/2.0 200 OK") && reply.contains("Allow: ") && reply.contains("REGISTER"),
        "{reply}"
    );
    let c = &pbx.running.sip.counters;
    assert_eq!(c.bad_requests.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(c.dropped.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_failed_auths_from_one_source_do_not_stop_another_phone() {
    let users = users(1);
    let pbx = pbx_with(&users).await;
    let attacker = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let port = attacker.local_addr().unwrap().port();
    let bogus = format!(
        "Digest username=\"200\", realm=\"{DOMAIN}\", nonce=\"bm90LWEtbm9uY2U\", uri=\"sip:{DOMAIN}\", \
         response=\"00000000000000000000000000000000\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"x\""
    );
    let mut last = String::new();
    for i in 0..10_000u32 {
        // Send without waiting; read back whatever arrived so the socket
        // buffer never fills.
        attacker
            .send_to(register(port, i + 1, Some(&bogus)).as_bytes(), pbx.udp())
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        while let Ok((n, _)) = attacker.try_recv_from(&mut buf) {
            last = String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    }
    let reply = exchange(&attacker, pbx.udp(), &register(port, 20_000, Some(&bogus)))
        .await
        .unwrap();
    assert!(
        reply.starts_with("SIP/2.0 403 Too many failed"),
        "{reply} / last: {last}"
    );
    // The other phone registers normally.
    let out = sipp_register(&pbx, "u1", &users[0].0, &users[0].1).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_message_is_cut_off_without_affecting_others() {
    let pbx = pbx_with(&users(1)).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let slow = tokio::net::TcpStream::connect(pbx.tcp()).await.unwrap();
    let (mut slow, mut slow_tx) = slow.into_split();
    slow_tx
        .write_all(b"REGISTER sip:example.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-s\r\n")
        .await
        .unwrap();
    // It keeps trickling header lines, a few bytes a second, which must
    // not keep the unfinished message alive.
    let trickle = tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(700)).await;
            if slow_tx.write_all(b"X-Slow: 1\r\n").await.is_err() {
                break;
            }
        }
    });
    // Meanwhile another client is served.
    let mut other = tokio::net::TcpStream::connect(pbx.tcp()).await.unwrap();
    other
        .write_all(
            format!(
                "OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-o\r\nFrom: <sip:x@{DOMAIN}>;tag=1\r\n\
                 To: <sip:{DOMAIN}>\r\nCall-ID: o2\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(5), other.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 200 OK"));
    // The slow one is closed once its message times out (EOF, no reply),
    // counted from its first bytes.
    let n = tokio::time::timeout(Duration::from_secs(25), slow.read(&mut buf))
        .await
        .expect("cut off")
        .unwrap_or(0);
    assert_eq!(n, 0);
    trickle.abort();
}

/// A TLS phone with SRTP registering every `regint` seconds.
fn tls_phone(pbx: &TestPbx, user: &str, password: &str, regint: u32) -> Baresip {
    Baresip::start(
        pbx,
        &PhoneConfig {
            regint,
            ..PhoneConfig::tls(user, password)
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_over_tls_reregisters_and_unregisters() {
    let pbx = pbx_with(&[("100".into(), "tls-secret-100".into())]).await;
    // A short registration interval, so the phone re-registers within seconds.
    let phone = tls_phone(&pbx, "100", "tls-secret-100", 4);
    let reg = tokio::task::block_in_place(|| phone.ctl(&["poll:reginfo|\\bOK\\b|20"]));
    assert!(reg.0, "baresip did not register: {}\n{}", reg.1, phone.log());
    let bindings = pbx.running.sip.registrar.lookup(DOMAIN, "100");
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    assert_eq!(bindings[0].source.proto, Proto::Tls);
    let first_cseq = bindings[0].cseq;
    assert!(
        pbx.running
            .sip
            .flows
            .is_open(bindings[0].source.flow.expect("a TLS flow"))
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    while pbx
        .running
        .sip
        .registrar
        .lookup(DOMAIN, "100")
        .first()
        .is_none_or(|b| b.cseq <= first_cseq)
    {
        assert!(
            Instant::now() < deadline,
            "no re-registration; phone log:\n{}",
            phone.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A request to the phone leaves over the connection it registered on:
    // the phone sees it arrive from the PBX's TLS port at the very port
    // its REGISTER came from (never a new connection to its listener).
    let registered_from = pbx.running.sip.registrar.lookup(DOMAIN, "100")[0].source.remote;
    assert_eq!(pbx.running.sip.qualify(DOMAIN, "100").await, 1);
    let counters = &pbx.running.sip.counters;
    eventually("the phone's answer to OPTIONS", || {
        counters.qualify_answers.load(std::sync::atomic::Ordering::Relaxed) == 1
    })
    .await;
    let log = phone.log();
    let arrival = format!("TLS {} -> {}\nOPTIONS sip:100", pbx.tls(), registered_from);
    assert!(
        log.contains(&arrival),
        "expected `{arrival}` in the phone's log:\n{log}"
    );

    // Quitting un-registers.
    let _ = tokio::task::block_in_place(|| phone.ctl(&["cmd:quit"]));
    eventually("the un-registration", || {
        pbx.running.sip.registrar.lookup(DOMAIN, "100").is_empty()
    })
    .await;
    let log = phone.log();
    assert!(log.contains("REGISTER sip:example.test;transport=tls"), "{log}");
    assert!(log.contains("SIP/2.0 401 Unauthorized"), "challenge missing: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_with_a_wrong_password_is_refused() {
    let pbx = pbx_with(&[("100".into(), "the-right-one".into())]).await;
    let phone = tls_phone(&pbx, "100", "a-wrong-one", 300);
    eventually("the 403 at the phone", || phone.log().contains("SIP/2.0 403 Forbidden")).await;
    assert!(pbx.running.sip.registrar.lookup(DOMAIN, "100").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_survive_a_restart() {
    let pbx = pbx_with(&users(1)).await;
    let sock = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let challenge = exchange(&sock, pbx.udp(), &register(port, 1, None)).await.unwrap();
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let offer = challenge
        .lines()
        .find_map(|l| l.strip_prefix("WWW-Authenticate:"))
        .and_then(|v| pbx_sip::auth::ServerChallenge::parse(v).ok())
        .expect("a digest challenge");
    let answer = offer.answer(
        "REGISTER",
        &format!("sip:{DOMAIN}"),
        "200",
        "pw-200-secret",
        "c0ffee",
        1,
    );
    let ok = exchange(&sock, pbx.udp(), &register(port, 2, Some(&answer)))
        .await
        .unwrap();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let contact = format!("sip:200@127.0.0.2:{port}");
    let before = pbx.running.sip.registrar.lookup(DOMAIN, "200");
    assert_eq!(before.len(), 1);
    assert!(before[0].contact.contains(&contact), "{:?}", before[0].contact);

    // Stopped: the binding is in the database at once (not some time
    // later). Started again on the same data: the binding is back, with
    // its expiry, before the phone says anything.
    let store = pbx.running.store.clone();
    let stopped = pbx.stop().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let saved = store.bindings(now).unwrap();
    assert!(
        saved.iter().any(|b| b.extension == "200"),
        "not saved at shutdown: {saved:?}"
    );
    drop(store);
    let pbx = stopped.start().await;
    let after = pbx.running.sip.registrar.lookup(DOMAIN, "200");
    assert_eq!(after.len(), 1, "the binding did not survive the restart");
    assert_eq!(after[0].contact, before[0].contact);
    assert_eq!(after[0].expires_at, before[0].expires_at);
}
