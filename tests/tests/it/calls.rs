//! Calls through the B2BUA with real phones: baresip over TLS with SDES
//! SRTP (one leg `_80`, the other `_32`), cancel, busy, hold/resume,
//! `sips:` end-to-end security, a sipp trunk; bad offers.

use pbx_tests::{Baresip, Ctl, DOMAIN, PhoneConfig, TestPbx, shared_dir, wav_has_tone};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const PW100: &str = "secret-100-pass";
const PW101: &str = "secret-101-pass";
const PW102: &str = "secret-102-pass";

fn exts() -> Vec<(&'static str, &'static str)> {
    vec![("100", PW100), ("101", PW101), ("102", PW102)]
}

/// Extension 101 is offered only AES_CM_128_HMAC_SHA1_32 (baresip itself
/// offers only _80), so the two legs of a 100 → 101 call differ.
const TAG32_FOR_101: &str = "[extensions.\"101\"]\nsrtp_suites = [\"AES_CM_128_HMAC_SHA1_32\"]\nrecord = true\n";

/// Wait (bounded) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `a=crypto` keys and `m=`/`c=` lines of the SDP bodies a baresip
/// log shows arriving (`-s` prints every message; received ones follow a
/// `recv` marker line, sent ones a `send` line in libre 1.1).
fn crypto_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.trim_start().starts_with("a=crypto:"))
        .map(|l| l.trim().to_string())
        .collect()
}

fn key_of(crypto: &str) -> &str {
    crypto
        .split("inline:")
        .nth(1)
        .unwrap_or("")
        .split(['|', ' '])
        .next()
        .unwrap_or("")
}

/// A `sips:` URI for baresip's `dial`: baresip 1.0 puts `sip:` in front
/// of any dial string that does not contain the text `sip:`, so the URI
/// carries it in a parameter the PBX ignores.
fn sips(user: &str) -> String {
    format!("sips:{user}@{DOMAIN};x=sip:")
}

/// Let a call run until the relay has forwarded `secs` seconds of audio
/// (50 packets/s per direction), bounded.
async fn talk(pbx: &TestPbx, secs: u64) {
    let relay = pbx.running.sip.calls.relay();
    let start = relay.counters().packets_relayed;
    eventually("audio to flow through the relay", || {
        relay.counters().packets_relayed >= start + secs * 2 * 50
    })
    .await;
}

/// Alice (100) and Bob (101, set up as `bob`) registered over TLS, with
/// their control links connected.
async fn alice_and_bob(pbx: &TestPbx, bob: PhoneConfig) -> (Baresip, Baresip, Ctl, Ctl) {
    let alice = Baresip::start(pbx, &PhoneConfig::tls("100", PW100));
    let bob = Baresip::start(pbx, &bob);
    alice.registered();
    bob.registered();
    let (a, b) = (alice.connect().await, bob.connect().await);
    (alice, bob, a, b)
}

/// Alice dials Bob and both see the call up.
async fn call_up(a: &mut Ctl, b: &mut Ctl) {
    a.cmd(&format!("dial sip:101@{DOMAIN}")).await;
    a.wait("CALL_ESTABLISHED", 20).await;
    b.wait("CALL_ESTABLISHED", 20).await;
}

/// `x` hangs up and both see the call closed.
async fn hang_up(x: &mut Ctl, y: &mut Ctl) {
    x.cmd("hangup").await;
    x.wait("CALL_CLOSED", 10).await;
    y.wait("CALL_CLOSED", 10).await;
}

fn param(event: &serde_json::Value) -> &str {
    event["param"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tls_phones_talk_through_the_pbx_with_different_srtp_suites_per_leg() {
    let pbx = TestPbx::start_with(&exts(), TAG32_FOR_101, &[]).await;
    let bob_440 = PhoneConfig {
        tone: 440,
        ..PhoneConfig::tls("101", PW101)
    };
    let (alice, bob, mut a, mut b) = alice_and_bob(&pbx, bob_440).await;

    // Alice calls; both talk for 3 s of relayed audio; Alice hangs up.
    call_up(&mut a, &mut b).await;
    a.wait("CALL_MENC", 10).await;
    b.wait("CALL_MENC", 10).await;
    talk(&pbx, 3).await;
    hang_up(&mut a, &mut b).await;

    // Each leg negotiated its own suite.
    assert_eq!(a.menc().as_deref(), Some("AES_CM_128_HMAC_SHA1_80"), "{:?}", a.events);
    assert_eq!(b.menc().as_deref(), Some("AES_CM_128_HMAC_SHA1_32"), "{:?}", b.events);

    // Each phone saw the PBX's relay address and keys of its own leg.
    let (alog, blog) = (alice.log(), bob.log());
    let (acrypto, bcrypto) = (crypto_lines(&alog), crypto_lines(&blog));
    assert!(acrypto.len() >= 2 && bcrypto.len() >= 2, "{acrypto:?} {bcrypto:?}");
    let bob_keys: Vec<&str> = bcrypto.iter().map(|c| key_of(c)).collect();
    for k in acrypto.iter().map(|c| key_of(c)) {
        assert!(!bob_keys.contains(&k), "a key crossed from one leg to the other");
    }
    let relay_ports = |log: &str| -> Vec<u16> {
        log.lines()
            .filter_map(|l| l.trim().strip_prefix("m=audio "))
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect()
    };
    let (aports, bports) = (relay_ports(&alog), relay_ports(&blog));
    assert!(
        aports.iter().any(|p| (20000..30000).contains(p)),
        "alice saw no relay port: {aports:?}"
    );
    assert!(
        bports.iter().any(|p| (20000..30000).contains(p)),
        "bob saw no relay port: {bports:?}"
    );

    // Audio crossed the relay both ways, decrypted and re-encrypted.
    assert_eq!(pbx.running.sip.calls.counters.answered.load(Ordering::Relaxed), 1);
    let (alice_heard, bob_heard) = (alice.received_wavs(), bob.received_wavs());
    assert!(!alice_heard.is_empty() && !bob_heard.is_empty(), "no WAV dumps");
    wav_has_tone(&bob_heard[0], 1000, 1.5).unwrap_or_else(|e| panic!("bob did not hear alice: {e}"));
    wav_has_tone(&alice_heard[0], 440, 1.5).unwrap_or_else(|e| panic!("alice did not hear bob: {e}"));

    // 101 is recorded: caller left (1000 Hz), callee right (440 Hz).
    eventually("the call to end", || pbx.running.sip.calls.active() == 0).await;
    let recordings: Vec<_> = std::fs::read_dir(pbx.data.join("recordings"))
        .expect("a recordings folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    let (channels, rate) = read_wav(&recordings[0]);
    assert_eq!(channels.len(), 2, "a stereo recording");
    let (left, right) = (&channels[0], &channels[1]);
    assert_eq!(rate, 8000);
    assert!(left.len() > 8000 * 2, "recording too short: {} samples", left.len());
    assert_eq!(dominant(left, &[440.0, 1000.0]), 1000.0, "caller channel");
    assert_eq!(dominant(right, &[440.0, 1000.0]), 440.0, "callee channel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_goes_silent_is_hung_up_by_the_media_timeout() {
    let pbx = TestPbx::start_with(&exts(), "timeout_secs = 2\n", &[]).await;
    let (_alice, bob, mut a, mut b) = alice_and_bob(&pbx, PhoneConfig::tls("101", PW101)).await;
    call_up(&mut a, &mut b).await;
    talk(&pbx, 1).await;
    // Bob's phone freezes (no RTP, no RTCP); Alice keeps talking.
    bob.signal("STOP");
    let closed = a.wait("CALL_CLOSED", 15).await;
    bob.signal("CONT");
    assert!(pbx.running.sip.calls.relay().counters().media_timeouts >= 1, "{closed}");
    b.wait("CALL_CLOSED", 15).await;
    eventually("the call to end", || pbx.running.sip.calls.active() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_who_knows_the_call_id_cannot_hang_up_the_call() {
    let pbx = TestPbx::start(&exts()).await;
    let (alice, _bob, mut a, mut b) = alice_and_bob(&pbx, PhoneConfig::tls("101", PW101)).await;
    call_up(&mut a, &mut b).await;
    // The caller's dialog identifiers, as an eavesdropper would read them.
    let log = alice.log();
    let invite = &log[log.find("INVITE sip:101@").expect("alice's INVITE")..];
    let header = |name: &str| {
        invite
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let (call_id, from) = (header("Call-ID:"), header("From:"));
    let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = stranger.local_addr().unwrap();
    let bye = format!(
        "BYE sip:pbx@{pbx_addr} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-evil\r\nMax-Forwards: 70\r\n\
         From: {from}\r\nTo: <sip:101@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: 99 BYE\r\nContent-Length: 0\r\n\r\n",
        pbx_addr = pbx.udp()
    );
    let dropped = pbx.running.sip.counters.dropped.load(Ordering::Relaxed);
    stranger.send_to(bye.as_bytes(), pbx.udp()).await.unwrap();
    eventually("the forged BYE to be dropped", || {
        pbx.running.sip.counters.dropped.load(Ordering::Relaxed) > dropped
    })
    .await;
    assert_eq!(pbx.running.sip.calls.active(), 1, "a forged BYE ended the call");
    // The real caller still can.
    hang_up(&mut a, &mut b).await;
    eventually("the call to end", || pbx.running.sip.calls.active() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_hangs_up_and_the_caller_is_told() {
    let pbx = TestPbx::start(&exts()).await;
    let (_alice, _bob, mut a, mut b) = alice_and_bob(&pbx, PhoneConfig::tls("101", PW101)).await;
    call_up(&mut a, &mut b).await;
    hang_up(&mut b, &mut a).await;
    eventually("the call to end", || pbx.running.sip.calls.active() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_answer_busy_callee_and_no_answer() {
    let pbx = TestPbx::start_with(&exts(), "[calls]\nring_timeout_secs = 2\n", &[]).await;
    let ringing = PhoneConfig {
        answermode: "manual",
        ..PhoneConfig::tls("101", PW101)
    };
    let (_alice, bob, mut a, mut b) = alice_and_bob(&pbx, ringing).await;

    // CANCEL: Alice hangs up while Bob's phone rings.
    a.cmd(&format!("dial sip:101@{DOMAIN}")).await;
    b.wait("CALL_INCOMING", 20).await;
    a.wait("CALL_RINGING", 20).await;
    hang_up(&mut a, &mut b).await;
    assert!(bob.log().contains("CANCEL sip:"), "bob got no CANCEL");
    eventually("the cancelled call to end", || pbx.running.sip.calls.active() == 0).await;

    // Busy: Bob rejects the call; Alice is told 486.
    a.cmd(&format!("dial sip:101@{DOMAIN}")).await;
    b.wait("CALL_INCOMING", 20).await;
    b.cmd("hangup").await;
    let closed = a.wait("CALL_CLOSED", 20).await;
    assert!(param(&closed).contains("486"), "alice was not told busy: {closed}");
    b.wait("CALL_CLOSED", 10).await;
    eventually("the busy call to end", || pbx.running.sip.calls.active() == 0).await;

    // No answer: after the ring timeout Alice is told 480 and Bob's phone
    // stops ringing (CANCEL).
    a.cmd(&format!("dial sip:101@{DOMAIN}")).await;
    b.wait("CALL_INCOMING", 20).await;
    let closed = a.wait("CALL_CLOSED", 15).await;
    assert!(param(&closed).contains("480"), "alice was not told no answer: {closed}");
    b.wait("CALL_CLOSED", 10).await;
    eventually("the unanswered call to end", || pbx.running.sip.calls.active() == 0).await;
    assert_eq!(pbx.running.sip.calls.counters.answered.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_and_resume_are_renegotiated_on_both_legs() {
    let pbx = TestPbx::start(&exts()).await;
    let (_alice, bob, mut a, mut b) = alice_and_bob(&pbx, PhoneConfig::tls("101", PW101)).await;
    call_up(&mut a, &mut b).await;
    let invites = || bob.log().matches("INVITE sip:").count();
    a.cmd("hold").await;
    eventually("the hold to reach bob", || {
        invites() >= 2 && bob.log().contains("a=sendonly")
    })
    .await;
    a.cmd("resume").await;
    eventually("the resume to reach bob", || invites() >= 3).await;
    // Audio flows again after the resume.
    talk(&pbx, 1).await;
    hang_up(&mut a, &mut b).await;
    let blog = bob.log();
    let resume = blog.rfind("INVITE sip:").map(|i| &blog[i..]).unwrap_or("");
    assert!(
        resume.contains("a=sendrecv"),
        "the resume offer was not sendrecv:\n{resume}"
    );
    eventually("the call to end", || pbx.running.sip.calls.active() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sips_call_to_a_plain_udp_phone_needs_end_to_end_security() {
    // e2e enabled for the domain.
    let e2e_on = format!("{{\"enabled\": false, \"domains\": {{\"{DOMAIN}\": true}}}}");
    let pbx = TestPbx::start_with(&exts(), "", &[("e2e-security", &e2e_on)]).await;
    let alice = Baresip::start(&pbx, &PhoneConfig::tls("100", PW100));
    let carol = Baresip::start(
        &pbx,
        &PhoneConfig {
            transport: "udp",
            mediaenc: None,
            ..PhoneConfig::tls("102", PW102)
        },
    );
    alice.registered();
    carol.registered();
    let (mut a, mut c) = (alice.connect().await, carol.connect().await);
    a.cmd(&format!("dial {}", sips("102"))).await;
    let closed = a.wait("CALL_CLOSED", 20).await;
    assert!(
        param(&closed).contains("488"),
        "refusal not passed on: {closed}\n{}",
        alice.log()
    );
    assert!(
        alice.log().contains("end-to-end security"),
        "the plugin's reason did not reach the caller"
    );
    assert!(!carol.log().contains("INVITE sip"), "a second leg was started");

    // Disable it (hot reload of the plugin's configuration): the call connects.
    let mut reloads = pbx.running.policy.subscribe();
    std::fs::write(
        pbx.data.join("plugins/e2e-security.json"),
        format!("{{\"enabled\": false, \"domains\": {{\"{DOMAIN}\": false}}}}"),
    )
    .unwrap();
    reloaded(&mut reloads, "e2e-security").await;
    a.cmd(&format!("dial {}", sips("102"))).await;
    a.wait("CALL_ESTABLISHED", 20).await;
    c.wait("CALL_ESTABLISHED", 20).await;
    a.cmd("hangup").await;
    a.wait("CALL_CLOSED", 10).await;
    c.wait("CALL_CLOSED", 10).await;
    // Carol's leg is plain RTP over UDP: no keys were sent to her in clear.
    assert!(crypto_lines(&carol.log()).is_empty(), "SDES keys sent over UDP");
}

async fn reloaded(rx: &mut tokio::sync::broadcast::Receiver<pbx::plugins::ReloadEvent>, plugin: &str) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while !matches!(rx.recv().await, Ok(ev) if ev.plugin == plugin) {}
    })
    .await
    .unwrap_or_else(|_| panic!("{plugin} did not reload"));
}

/// A sipp UAS playing a trunk on a UDP port, echoing the RTP it gets;
/// its output's stdout holds the messages it exchanged.
fn sipp_trunk_uas(port: u16) -> tokio::task::JoinHandle<std::process::Output> {
    pbx_tests::require("sipp", "sip-tester");
    let dir = pbx_tests::tempdir();
    let media = pbx_tests::free_port_pair();
    tokio::task::spawn_blocking(move || {
        let mut out = std::process::Command::new("timeout")
            .args(["-k", "2", "40", "sipp", "-sn", "uas", "-i", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args(["-mp", &media.to_string(), "-rtp_echo"])
            .args(["-m", "1", "-nostdin", "-trace_msg", "-message_file"])
            .arg(dir.path().join("msgs.log"))
            .output()
            .expect("running sipp");
        out.stdout = std::fs::read(dir.path().join("msgs.log")).unwrap_or_default();
        out
    })
}

async fn wait_udp_bound(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "sipp never bound its port");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_out_to_a_sipp_trunk_get_plain_rtp_and_sips_needs_an_exception() {
    let port = pbx_tests::free_port(true);
    let trunk = format!("[trunks.pstn]\naddress = \"127.0.0.1:{port}\"\ntransport = \"udp\"\nsrtp = \"off\"\n");
    let plan = r#"{"trunk_prefixes": [{"prefix": "9", "trunk": "pstn"}]}"#;
    let e2e_on = format!("{{\"domains\": {{\"{DOMAIN}\": true}}}}");
    let pbx = TestPbx::start_with(&exts(), &trunk, &[("dial-plan", plan), ("e2e-security", &e2e_on)]).await;
    let alice = Baresip::start(&pbx, &PhoneConfig::tls("100", PW100));
    alice.registered();
    let mut a = alice.connect().await;

    // A plain call: sipp answers, the trunk leg is RTP/AVP without keys;
    // sipp echoes the audio it gets, so Alice hears sound only if it went
    // SRTP -> RTP to the trunk and RTP -> SRTP back. (Not her tone: within
    // a call sipp 3.6 echoes each packet several times, from two ports,
    // which the relay rightly drops as not latched, and the copies that
    // pass are duplicates a jitter buffer mangles.)
    let uas = sipp_trunk_uas(port);
    wait_udp_bound(port).await;
    a.cmd(&format!("dial sip:95551234@{DOMAIN}")).await;
    a.wait("CALL_ESTABLISHED", 20).await;
    a.wait("CALL_MENC", 10).await;
    talk(&pbx, 2).await;
    a.cmd("hangup").await;
    a.wait("CALL_CLOSED", 10).await;
    let out = uas.await.unwrap();
    let msgs = String::from_utf8_lossy(&out.stdout);
    assert!(msgs.contains("INVITE sip:5551234@"), "prefix not stripped:\n{msgs}");
    assert!(
        msgs.contains("RTP/AVP") && !msgs.contains("a=crypto"),
        "trunk leg not plain:\n{msgs}"
    );
    assert_eq!(a.menc().as_deref(), Some("AES_CM_128_HMAC_SHA1_80"));
    let heard = alice.received_wavs();
    assert!(!heard.is_empty(), "no WAV dump");
    let (channels, _) = read_wav(&heard[0]);
    let voiced = channels[0].iter().filter(|v| v.abs() > 500.0).count();
    assert!(
        voiced > 8000,
        "the trunk's echo did not come back: {voiced} voiced samples"
    );

    // sips: to the trunk is refused while it is not an exception...
    a.cmd(&format!("dial {}", sips("95551234"))).await;
    let closed = a.wait("CALL_CLOSED", 20).await;
    assert!(param(&closed).contains("488"), "{closed}");

    // ...and allowed once the trunk-exceptions plugin lists it.
    let mut reloads = pbx.running.policy.subscribe();
    std::fs::write(
        pbx.data.join("plugins/trunk-exceptions.json"),
        r#"{"exempt": ["pstn"]}"#,
    )
    .unwrap();
    reloaded(&mut reloads, "trunk-exceptions").await;
    let uas = sipp_trunk_uas(port);
    wait_udp_bound(port).await;
    a.cmd(&format!("dial {}", sips("95551234"))).await;
    a.wait("CALL_ESTABLISHED", 20).await;
    a.cmd("hangup").await;
    a.wait("CALL_CLOSED", 10).await;
    assert!(uas.await.unwrap().status.success());
}

/// A sipp UAS running one of our scenarios (`tests/sipp/<name>.xml`) on a
/// UDP port.
fn sipp_scenario_uas(name: &str, port: u16) -> tokio::task::JoinHandle<std::process::Output> {
    pbx_tests::require("sipp", "sip-tester");
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("sipp/{name}.xml"));
    let dir = pbx_tests::tempdir();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .args(["-k", "2", "40", "sipp", "-sf"])
            .arg(&scenario)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1", "-nostdin"])
            .args(["-mp", &pbx_tests::free_port_pair().to_string()])
            .current_dir(dir.path())
            .output()
            .expect("running sipp")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pbx_registers_to_a_trunk_and_answers_its_call_challenge() {
    let port = pbx_tests::free_port(true);
    let trunk = format!(
        "[trunks.pstn]\naddress = \"127.0.0.1:{port}\"\nusername = \"pbxuser\"\npassword = \"trunk-secret\"\n\
         register = true\nregister_expires = 60\n"
    );
    let plan = r#"{"trunk_prefixes": [{"prefix": "9", "trunk": "pstn"}]}"#;
    // The provider's registrar checks the PBX's digest answer.
    let registrar = sipp_scenario_uas("trunk_registrar", port);
    wait_udp_bound(port).await;
    let pbx = TestPbx::start_with(&exts(), &trunk, &[("dial-plan", plan)]).await;
    let out = registrar.await.unwrap();
    assert!(
        out.status.success(),
        "the registrar refused the PBX: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    eventually("the trunk registration", || {
        pbx.running.sip.calls.trunk_status("pstn") == Some(pbx::calls::TrunkStatus::Registered { expires: 60 })
    })
    .await;

    // A call out: the provider challenges the INVITE, the PBX answers it.
    let alice = Baresip::start(&pbx, &PhoneConfig::tls("100", PW100));
    alice.registered();
    let mut a = alice.connect().await;
    let provider = sipp_scenario_uas("trunk_uas_auth", port);
    wait_udp_bound(port).await;
    a.cmd(&format!("dial sip:95551234@{DOMAIN}")).await;
    a.wait("CALL_ESTABLISHED", 20).await;
    a.cmd("hangup").await;
    a.wait("CALL_CLOSED", 10).await;
    let out = provider.await.unwrap();
    assert!(
        out.status.success(),
        "the provider refused the call: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_trunk_call_reaches_a_tls_extension() {
    let sipp_port = pbx_tests::free_port(true);
    let trunk = format!("[trunks.pstn]\naddress = \"127.0.0.1:{sipp_port}\"\n");
    let pbx = TestPbx::start_with(&exts(), &trunk, &[]).await;
    let alice = Baresip::start(&pbx, &PhoneConfig::tls("100", PW100));
    alice.registered();
    let mut a = alice.connect().await;
    let recipe = shared_dir().join("peers/sipp/uac_invite.xml");
    let args: Vec<String> = [
        "-s",
        "100",
        "-key",
        "domain",
        DOMAIN,
        "-key",
        "caller",
        "trunkcaller",
        "-key",
        "proto",
        "RTP/AVP",
        "-key",
        "crypto",
        "a=sendrecv",
        "-d",
        "2000",
        "-m",
        "1",
        "-p",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([sipp_port.to_string()])
    .collect();
    let out = pbx_tests::sipp_at(&recipe, "u1", pbx.udp(), &args).await;
    assert!(
        out.status.success(),
        "the trunk's call failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    a.wait("CALL_ESTABLISHED", 20).await;
    a.wait("CALL_CLOSED", 20).await;
    assert_eq!(a.menc().as_deref(), Some("AES_CM_128_HMAC_SHA1_80"));
}

/// The dial plan sending `9…` to trunk `name`.
fn prefix_9_to(name: &str) -> String {
    format!(r#"{{"trunk_prefixes": [{{"prefix": "9", "trunk": "{name}"}}]}}"#)
}

/// The SIP messages in a baresip log (`-s`) that start with `start`.
fn messages<'a>(log: &'a str, start: &str) -> Vec<&'a str> {
    log.match_indices(start)
        .map(|(i, _)| {
            let rest = &log[i..];
            let end = [rest.find("\n\n"), rest.find("\r\n\r\n")].into_iter().flatten().min();
            &rest[..end.unwrap_or(rest.len())]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_trunk_is_verified_and_carries_calls_both_ways_over_one_connection() {
    // A baresip plays the TLS gateway, with a certificate of a test CA.
    let certs = pbx_tests::test_certs();
    let gw = Baresip::gateway(&certs.path().join("server.pem"), "5551234", 440);
    let trunk = format!(
        "[trunks.gw]\naddress = \"{}\"\ntransport = \"tls\"\nsrtp = \"required\"\nca = \"{}\"\n",
        gw.tls(),
        certs.path().join("ca.crt").display()
    );
    // `sips:` end to end is on, and the trunk is not exempt from it.
    let e2e_on = format!("{{\"domains\": {{\"{DOMAIN}\": true}}}}");
    let pbx = TestPbx::start_with(
        &exts(),
        &trunk,
        &[("dial-plan", &prefix_9_to("gw")), ("e2e-security", &e2e_on)],
    )
    .await;
    let alice = Baresip::start(&pbx, &PhoneConfig::tls("100", PW100));
    alice.registered();
    let (mut a, mut g) = (alice.connect().await, gw.connect().await);
    assert!(
        pbx.running.sip.calls.trunk_connection("gw").is_none(),
        "connected before any call"
    );

    // Out: a sips: call may go to the trunk, since it is TLS with SRTP.
    a.cmd(&format!("dial {}", sips("95551234"))).await;
    a.wait("CALL_ESTABLISHED", 20).await;
    g.wait("CALL_ESTABLISHED", 20).await;
    talk(&pbx, 3).await;
    let link = pbx
        .running
        .sip
        .calls
        .trunk_connection("gw")
        .expect("a connection to the trunk");
    assert_eq!((link.proto, link.remote), (pbx::sip::Proto::Tls, gw.tls()));
    hang_up(&mut a, &mut g).await;
    assert_eq!(g.menc().as_deref(), Some("AES_CM_128_HMAC_SHA1_80"), "{:?}", g.events);
    let log = gw.log();
    let invite = messages(&log, "INVITE sip:")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("the gateway got no INVITE:\n{log}"));
    let me = format!("127.0.0.1:{}", link.local.port());
    assert!(
        invite.starts_with(&format!("INVITE sip:5551234@{};transport=tls SIP/2.0", gw.tls())),
        "{invite}"
    );
    assert!(invite.contains(&format!("Via: SIP/2.0/TLS {me};")), "{invite}");
    assert!(invite.contains(&format!("<sip:pbx@{me};transport=tls>")), "{invite}");
    let heard = (gw.received_wavs(), alice.received_wavs());
    wav_has_tone(&heard.0[0], 1000, 1.5).unwrap_or_else(|e| panic!("the gateway did not hear alice: {e}"));
    wav_has_tone(&heard.1[0], 440, 1.5).unwrap_or_else(|e| panic!("alice did not hear the gateway: {e}"));

    // In: the gateway calls 100 over the connection the PBX opened (libre
    // reuses a connection to the address it dials); no digest challenge.
    g.cmd(&format!("dial sip:100@{me}")).await;
    g.wait("CALL_ESTABLISHED", 20).await;
    a.wait("CALL_ESTABLISHED", 20).await;
    talk(&pbx, 2).await;
    hang_up(&mut g, &mut a).await;
    let log = gw.log();
    assert!(!log.contains("407 Proxy Authentication Required"), "{log}");
    assert_eq!(
        messages(&log, "INVITE sip:100@").len(),
        1,
        "the gateway's INVITE went once, unchallenged:\n{log}"
    );

    // One connection carried everything.
    let calls = &pbx.running.sip.calls;
    assert_eq!(calls.trunk_connection("gw").and_then(|s| s.flow), link.flow);
    assert_eq!(calls.counters.answered.load(Ordering::Relaxed), 2);
    assert_eq!(pbx.running.sip.counters.connect_failures.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_trunk_whose_certificate_fails_the_check_is_never_called() {
    let certs = pbx_tests::test_certs();
    let gw = Baresip::gateway(&certs.path().join("server.pem"), "5551234", 440);
    // `untrusted` trusts another CA; `misnamed` the right one, but checks
    // a name the certificate is not for.
    let trunks = format!(
        "[trunks.untrusted]\naddress = \"{gw}\"\ntransport = \"tls\"\nca = \"{other}\"\n\
         [trunks.misnamed]\naddress = \"{gw}\"\ntransport = \"tls\"\nca = \"{ca}\"\nserver_name = \"wrong.example.test\"\n",
        gw = gw.tls(),
        other = certs.path().join("selfsigned.crt").display(),
        ca = certs.path().join("ca.crt").display(),
    );
    let plan = r#"{"trunk_prefixes": [{"prefix": "8", "trunk": "untrusted"}, {"prefix": "9", "trunk": "misnamed"}]}"#;
    let pbx = TestPbx::start_with(&exts(), &trunks, &[("dial-plan", plan)]).await;
    let alice = Baresip::start(&pbx, &PhoneConfig::tls("100", PW100));
    alice.registered();
    let (mut a, mut g) = (alice.connect().await, gw.connect().await);

    for (number, why) in [
        ("85551234", "trunk TLS certificate not trusted"),
        ("95551234", "trunk TLS certificate not valid for wrong.example.test"),
    ] {
        a.cmd(&format!("dial sip:{number}@{DOMAIN}")).await;
        let closed = a.wait("CALL_CLOSED", 20).await;
        assert!(param(&closed).contains("503"), "{closed}");
        let log = alice.log();
        let warning = format!("Warning: 399 pbx \"{why}\"");
        assert!(
            messages(&log, "SIP/2.0 503 Service Unavailable")
                .iter()
                .any(|m| m.contains(&warning)),
            "no 503 with {warning}:\n{log}"
        );
    }
    let sip = &pbx.running.sip;
    assert_eq!(sip.counters.connect_failures.load(Ordering::Relaxed), 2);
    assert!(sip.calls.trunk_connection("untrusted").is_none());
    assert!(sip.calls.trunk_connection("misnamed").is_none());
    // The gateway never saw a request: the PBX stopped at the handshake.
    g.cmd("reginfo").await;
    assert!(!g.events.iter().any(|e| e["type"] == "CALL_INCOMING"), "{:?}", g.events);
    let log = gw.log();
    assert!(!log.contains("INVITE sip:"), "the gateway saw an INVITE:\n{log}");
}

/// A sipp UAS (`-sn uas`) playing a trunk on TCP `port`, echoing the RTP
/// it gets; its output's stdout holds the messages it exchanged.
fn sipp_tcp_trunk_uas(port: u16) -> tokio::task::JoinHandle<std::process::Output> {
    pbx_tests::require("sipp", "sip-tester");
    let dir = pbx_tests::tempdir();
    let media = pbx_tests::free_port_pair();
    tokio::task::spawn_blocking(move || {
        let mut out = std::process::Command::new("timeout")
            .args([
                "-k",
                "2",
                "40",
                "sipp",
                "-sn",
                "uas",
                "-t",
                "t1",
                "-i",
                "127.0.0.1",
                "-p",
            ])
            .arg(port.to_string())
            .args(["-mp", &media.to_string(), "-rtp_echo"])
            .args(["-m", "1", "-nostdin", "-trace_msg", "-message_file"])
            .arg(dir.path().join("msgs.log"))
            .current_dir(dir.path())
            .output()
            .expect("running sipp");
        out.stdout = std::fs::read(dir.path().join("msgs.log")).unwrap_or_default();
        out
    })
}

/// Wait until something listens on TCP `port`.
async fn wait_tcp_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "sipp never listened on its port");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_out_to_a_tcp_sipp_trunk_go_over_the_connection_the_pbx_opened() {
    let port = pbx_tests::free_port(false);
    let trunk = format!("[trunks.pstn]\naddress = \"127.0.0.1:{port}\"\ntransport = \"tcp\"\n");
    let pbx = TestPbx::start_with(&exts(), &trunk, &[("dial-plan", &prefix_9_to("pstn"))]).await;
    let alice = Baresip::start(&pbx, &PhoneConfig::tls("100", PW100));
    alice.registered();
    let mut a = alice.connect().await;

    let uas = sipp_tcp_trunk_uas(port);
    wait_tcp_listening(port).await;
    a.cmd(&format!("dial sip:95551234@{DOMAIN}")).await;
    a.wait("CALL_ESTABLISHED", 20).await;
    talk(&pbx, 2).await;
    let link = pbx
        .running
        .sip
        .calls
        .trunk_connection("pstn")
        .expect("a connection to the trunk");
    a.cmd("hangup").await;
    a.wait("CALL_CLOSED", 10).await;
    let out = uas.await.unwrap();
    let msgs = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the trunk's call failed:\n{msgs}");
    let me = format!("127.0.0.1:{}", link.local.port());
    assert!(
        msgs.contains(&format!("INVITE sip:5551234@127.0.0.1:{port};transport=tcp SIP/2.0")),
        "{msgs}"
    );
    assert!(msgs.contains(&format!("Via: SIP/2.0/TCP {me};")), "{msgs}");
    assert!(msgs.contains(&format!("<sip:pbx@{me};transport=tcp>")), "{msgs}");
    assert!(msgs.contains("BYE sip:"), "{msgs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pbx_registers_to_a_tcp_trunk_and_again_when_its_connection_drops() {
    let port = pbx_tests::free_port(false);
    let trunk = format!(
        "[trunks.pstn]\naddress = \"127.0.0.1:{port}\"\ntransport = \"tcp\"\nusername = \"pbxuser\"\n\
         password = \"trunk-secret\"\nregister = true\nregister_expires = 60\n"
    );
    let registrar = || {
        let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sipp/trunk_registrar.xml");
        let dir = pbx_tests::tempdir();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("timeout")
                .args(["-k", "2", "40", "sipp", "-sf"])
                .arg(&scenario)
                .args([
                    "-t",
                    "t1",
                    "-i",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-m",
                    "1",
                    "-nostdin",
                ])
                .current_dir(dir.path())
                .output()
                .expect("running sipp")
        })
    };
    pbx_tests::require("sipp", "sip-tester");
    let first = registrar();
    wait_tcp_listening(port).await;
    let pbx = TestPbx::start_with(&exts(), &trunk, &[]).await;
    let calls = &pbx.running.sip.calls;
    let registered = || calls.trunk_status("pstn") == Some(pbx::calls::TrunkStatus::Registered { expires: 60 });
    // (Watched while sipp runs: the state lasts from its 200 until a
    // second after it quits.)
    eventually("the trunk registration", registered).await;
    let out = first.await.unwrap();
    assert!(
        out.status.success(),
        "the registrar refused the PBX: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The registrar is gone with its connection: the PBX tries to register
    // again at once (not 48 s later), and says why it cannot.
    eventually("a new registration attempt", || {
        matches!(calls.trunk_status("pstn"), Some(pbx::calls::TrunkStatus::Failed { reason }) if reason == "trunk connection refused")
    })
    .await;
    assert!(calls.trunk_connection("pstn").is_none());

    // Back up: the next attempt (after a back-off) connects and registers.
    let second = registrar();
    wait_tcp_listening(port).await;
    eventually("the trunk registration", registered).await;
    let out = second.await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// Read a 16-bit PCM WAV: one sample vector per channel, and the rate.
fn read_wav(path: &std::path::Path) -> (Vec<Vec<f32>>, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[0..4], b"RIFF");
    assert_eq!(&b[8..12], b"WAVE");
    let mut i = 12;
    let (mut channels, mut rate, mut data) = (0usize, 0u32, &b[0..0]);
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes(b[i + 4..i + 8].try_into().unwrap()) as usize;
        let body = &b[i + 8..(i + 8 + len).min(b.len())];
        if id == b"fmt " {
            channels = usize::from(u16::from_le_bytes([body[2], body[3]]));
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            data = body;
        }
        i += 8 + len + (len & 1);
    }
    assert!(channels > 0, "no fmt chunk");
    let mut out = vec![Vec::new(); channels];
    for frame in data.chunks_exact(2 * channels) {
        for (c, s) in frame.chunks_exact(2).enumerate() {
            out[c].push(f32::from(i16::from_le_bytes([s[0], s[1]])));
        }
    }
    (out, rate)
}

/// Which of `candidates` (Hz) carries the most energy in `x` at 8 kHz
/// (Goertzel).
fn dominant(x: &[f32], candidates: &[f32]) -> f32 {
    let power = |f: f32| {
        let w = 2.0 * std::f32::consts::PI * f / 8000.0;
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &v in x {
            let s = v + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2
    };
    *candidates
        .iter()
        .max_by(|a, b| power(**a).total_cmp(&power(**b)))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_offers_are_refused_with_a_reason_and_nothing_crashes() {
    // The test socket plays a trunk, so its INVITEs need no digest.
    let gw = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = gw.local_addr().unwrap();
    let trunk = format!("[trunks.gw]\naddress = \"{addr}\"\nsrtp = \"optional\"\n");
    let pbx = TestPbx::start_with(&exts(), &trunk, &[]).await;
    let session = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n";
    let cases = [
        (
            "no version line",
            "o=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n".to_string(),
            400,
        ),
        ("garbage", "\u{1}\u{2}binary junk".to_string(), 400),
        (
            "crypto key not base64",
            format!("{session}m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:!!!!\r\n"),
            488,
        ),
        (
            "1-byte key",
            format!("{session}m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AA==\r\n"),
            488,
        ),
        (
            "unknown suite only",
            format!(
                "{session}m=audio 4000 RTP/SAVP 0\r\na=crypto:1 F8_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ\r\n"
            ),
            488,
        ),
        ("no audio", format!("{session}m=video 4000 RTP/AVP 96\r\n"), 488),
    ];
    let mut buf = vec![0u8; 4096];
    for (n, (what, body, want)) in cases.iter().enumerate() {
        let invite = format!(
            "INVITE sip:100@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bK-bad{n}\r\nMax-Forwards: 70\r\n\
             From: <sip:gw@{addr}>;tag=t{n}\r\nTo: <sip:100@{DOMAIN}>\r\nCall-ID: bad-{n}@test\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:gw@{addr}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        gw.send_to(invite.as_bytes(), pbx.udp()).await.unwrap();
        let status = loop {
            let (len, _) = tokio::time::timeout(Duration::from_secs(5), gw.recv_from(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("{what}: no response"))
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            let code: u16 = text[8..11].parse().unwrap();
            if code >= 200 {
                break (code, text);
            }
        };
        assert_eq!(status.0, *want, "{what}: {}", status.1);
        assert!(
            status.1.contains("Warning: 399"),
            "{what}: no reason given: {}",
            status.1
        );
    }
    assert_eq!(pbx.running.sip.calls.active(), 0);
    // The PBX still answers.
    let options = format!(
        "OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bK-opt\r\nMax-Forwards: 70\r\n\
         From: <sip:gw@{addr}>;tag=o\r\nTo: <sip:{DOMAIN}>\r\nCall-ID: opt@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    gw.send_to(options.as_bytes(), pbx.udp()).await.unwrap();
    let (len, _) = tokio::time::timeout(Duration::from_secs(5), gw.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..len].starts_with(b"SIP/2.0 200"));
}
