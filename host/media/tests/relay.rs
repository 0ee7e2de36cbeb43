//! End-to-end tests of the relay: two simulated phones (plain UDP sockets
//! on 127.0.0.1 with their own `pbx_srtp` contexts) talk through a real
//! relay.
//!
//! Phone X encrypts with its key `send` (the relay's inbound key for leg X)
//! and decrypts with `recv` (the relay's outbound key for leg X), so every
//! packet is re-keyed on the way through. Waits are on events: a phone's
//! receive (bounded by a read timeout) or a counter reaching a value.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use pbx_media::{CallMedia, CallStats, Codec, LegAddrs, LegConfig, LegKeys, MediaError, Relay, RelayConfig, Side};
use pbx_srtp::{Context, MasterKey, Options, Suite};

const WAIT: Duration = Duration::from_secs(3);

/// Each relay gets its own port range so parallel tests rarely meet; the
/// relay skips ports that are busy anyway.
fn relay_with(timeout: Duration, workers: usize) -> Relay {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    let port_min = 31000 + 200 * (k % 100);
    Relay::start(RelayConfig {
        port_min,
        port_max: port_min + 199,
        workers,
        media_timeout: timeout,
        ..RelayConfig::default()
    })
    .expect("relay starts")
}

fn relay() -> Relay {
    relay_with(Duration::from_secs(30), 1)
}

fn key(suite: Suite, seed: u8) -> MasterKey {
    let k: Vec<u8> = (0..suite.key_len())
        .map(|i| seed.wrapping_mul(37).wrapping_add(i as u8))
        .collect();
    let s: Vec<u8> = (0..suite.salt_len()).map(|i| seed.wrapping_add(11 * i as u8)).collect();
    MasterKey::new(&k, &s).unwrap()
}

fn ctx(suite: Suite, k: &MasterKey) -> Context {
    Context::new(suite, k, Options::default()).unwrap()
}

/// A simulated phone: RTP and RTCP sockets, its SRTP contexts, its stream.
struct Phone {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    suite: Option<Suite>,
    send_key: Option<MasterKey>,
    recv_key: Option<MasterKey>,
    tx: Option<Context>,
    rx: Option<Context>,
    mux: bool,
    ssrc: u32,
    seq: u16,
    ts: u32,
    /// The relay's ports for this phone's leg.
    relay: Option<LegAddrs>,
}

impl Phone {
    fn new(suite: Option<Suite>, seed: u8) -> Phone {
        let bind = || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            s
        };
        let send_key = suite.map(|s| key(s, seed));
        let recv_key = suite.map(|s| key(s, seed.wrapping_add(100)));
        Phone {
            rtp: bind(),
            rtcp: bind(),
            suite,
            tx: suite.zip(send_key.as_ref()).map(|(s, k)| ctx(s, k)),
            rx: suite.zip(recv_key.as_ref()).map(|(s, k)| ctx(s, k)),
            send_key,
            recv_key,
            mux: false,
            ssrc: 0x1000_0000 + u32::from(seed),
            seq: 1000,
            ts: 160_000,
            relay: None,
        }
    }

    fn muxed(mut self) -> Phone {
        self.mux = true;
        self
    }

    /// The relay's configuration for this phone's leg.
    fn leg(&self) -> LegConfig {
        LegConfig {
            remote_rtp: Some(self.rtp.local_addr().unwrap()),
            remote_rtcp: Some(self.rtcp.local_addr().unwrap()),
            rtcp_mux: self.mux,
            srtp: self
                .suite
                .map(|s| LegKeys::new(s, self.send_key.clone().unwrap(), self.recv_key.clone().unwrap())),
            codecs: vec![],
            on_hold: false,
        }
    }

    fn relay_rtp(&self) -> SocketAddr {
        self.relay.expect("connected").rtp
    }

    fn relay_rtcp(&self) -> SocketAddr {
        let r = self.relay.expect("connected");
        if self.mux { r.rtp } else { r.rtcp }
    }

    /// The next plain RTP packet of the stream (the timestamp advances by
    /// the payload length, as for G.711).
    fn next_rtp(&mut self, pt: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(payload.len() as u32);
        p
    }

    fn protect(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut w = plain.to_vec();
        if let Some(tx) = &mut self.tx {
            tx.protect_rtp_vec(&mut w).unwrap();
        }
        w
    }

    /// Sends the next RTP packet; returns (plain, wire).
    fn send(&mut self, payload: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let plain = self.next_rtp(0, payload);
        let wire = self.protect(&plain);
        self.rtp.send_to(&wire, self.relay_rtp()).unwrap();
        (plain, wire)
    }

    /// Sends an RTCP receiver report (protected on an SRTP leg); returns it plain.
    fn send_rtcp(&mut self) -> Vec<u8> {
        let mut rr = vec![0x80, 201, 0, 1];
        rr.extend_from_slice(&self.ssrc.to_be_bytes());
        let mut w = rr.clone();
        if let Some(tx) = &mut self.tx {
            tx.protect_rtcp_vec(&mut w).unwrap();
        }
        let sock = if self.mux { &self.rtp } else { &self.rtcp };
        sock.send_to(&w, self.relay_rtcp()).unwrap();
        rr
    }

    /// Receives one RTP packet; returns (wire length, plain packet).
    fn recv(&mut self) -> (usize, Vec<u8>) {
        let mut b = [0u8; 2048];
        let (n, from) = self.rtp.recv_from(&mut b).expect("an RTP packet within the wait");
        assert_eq!(from, self.relay_rtp(), "sent from the relay's port for this leg");
        let mut p = b[..n].to_vec();
        if let Some(rx) = &mut self.rx {
            rx.unprotect_rtp_vec(&mut p).expect("the relay's packet authenticates");
        }
        (n, p)
    }

    /// Receives one RTCP packet (on the RTP socket when muxed), plain.
    fn recv_rtcp(&mut self) -> Vec<u8> {
        let sock = if self.mux { &self.rtp } else { &self.rtcp };
        let mut b = [0u8; 2048];
        let (n, from) = sock.recv_from(&mut b).expect("an RTCP packet within the wait");
        assert_eq!(from, self.relay_rtcp());
        let mut p = b[..n].to_vec();
        if let Some(rx) = &mut self.rx {
            rx.unprotect_rtcp_vec(&mut p).expect("the relay's SRTCP authenticates");
        }
        p
    }

    /// Asserts nothing arrives on the RTP socket right now (the relay
    /// forwards in order, so callers check this after a later packet).
    fn nothing_queued(&self) {
        self.rtp.set_nonblocking(true).unwrap();
        let mut b = [0u8; 64];
        let r = self.rtp.recv_from(&mut b);
        self.rtp.set_nonblocking(false).unwrap();
        assert!(r.is_err(), "unexpected datagram queued");
    }
}

/// A call with both legs configured.
fn call(relay: &Relay, a: &mut Phone, b: &mut Phone) -> CallMedia {
    let call = relay.allocate("test-call").unwrap();
    a.relay = Some(call.local(Side::A));
    b.relay = Some(call.local(Side::B));
    call.configure(Side::A, a.leg()).unwrap();
    call.configure(Side::B, b.leg()).unwrap();
    call
}

/// Polls `f` until it holds, for at most WAIT.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn payload(k: u8) -> Vec<u8> {
    (0..160).map(|i| (i as u8).wrapping_mul(3).wrapping_add(k)).collect()
}

/// Sends `n` packets from `from` and checks each arrives at `to` intact,
/// with the wire sizes of each leg's suite.
fn flow(from: &mut Phone, to: &mut Phone, n: u8) {
    for k in 0..n {
        let (plain, wire) = from.send(&payload(k));
        let (wire_len, got) = to.recv();
        assert_eq!(got, plain, "packet {k} arrives intact");
        assert_eq!(wire.len(), 172 + from.suite.map_or(0, |s| s.srtp_tag_len()));
        assert_eq!(wire_len, 172 + to.suite.map_or(0, |s| s.srtp_tag_len()));
    }
}

#[test]
fn srtp_80_to_srtp_32_both_ways() {
    let relay = relay();
    let mut a = Phone::new(Some(Suite::AesCm128HmacSha1_80), 1);
    let mut b = Phone::new(Some(Suite::AesCm128HmacSha1_32), 2);
    let call = call(&relay, &mut a, &mut b);
    flow(&mut a, &mut b, 20);
    flow(&mut b, &mut a, 20);
    let s = call.close();
    assert_eq!(
        (s.a.packets_in, s.a.packets_out, s.b.packets_in, s.b.packets_out),
        (20, 20, 20, 20)
    );
    assert_eq!(s.a.bytes_in, 20 * 182);
    assert_eq!(s.b.bytes_out, 20 * 176);
    assert_eq!(s.a.latched_rtp, Some(a.rtp.local_addr().unwrap()));
    assert_eq!(s.a.auth_failures + s.b.auth_failures + s.a.sequence_gaps, 0);
    let c = relay.counters();
    assert_eq!((c.packets_relayed, c.calls_active, c.calls_total), (40, 0, 1));
}

#[test]
fn aes_256_to_aead_gcm_both_ways() {
    let relay = relay();
    let mut a = Phone::new(Some(Suite::AesCm256HmacSha1_80), 3);
    let mut b = Phone::new(Some(Suite::AeadAes128Gcm), 4);
    let call = call(&relay, &mut a, &mut b);
    flow(&mut a, &mut b, 10);
    flow(&mut b, &mut a, 10);
    drop(call);
}

#[test]
fn srtp_to_plain_rtp_both_ways() {
    let relay = relay();
    let mut a = Phone::new(Some(Suite::AesCm128HmacSha1_80), 5);
    let mut b = Phone::new(None, 6);
    let call = call(&relay, &mut a, &mut b);
    flow(&mut a, &mut b, 10);
    flow(&mut b, &mut a, 10);
    // A plain leg accepts only RTP-shaped datagrams.
    b.rtp.send_to(b"not RTP at all", b.relay_rtp()).unwrap();
    b.rtp.send_to(&[0x80, 0], b.relay_rtp()).unwrap();
    flow(&mut b, &mut a, 1);
    assert_eq!(call.stats().b.malformed, 2);
}

#[test]
fn srtcp_to_rtcp_both_ways_on_separate_ports() {
    let relay = relay();
    let mut a = Phone::new(Some(Suite::AesCm128HmacSha1_32), 7);
    let mut b = Phone::new(None, 8);
    let call = call(&relay, &mut a, &mut b);
    for _ in 0..3 {
        let rr = a.send_rtcp();
        assert_eq!(b.recv_rtcp(), rr);
        let rr = b.send_rtcp();
        assert_eq!(a.recv_rtcp(), rr);
    }
    // RTP still flows next to it.
    flow(&mut a, &mut b, 2);
    let s = call.close();
    assert_eq!((s.a.rtcp_packets_in, s.a.rtcp_packets_out), (3, 3));
    assert_eq!((s.b.rtcp_packets_in, s.b.rtcp_packets_out), (3, 3));
    assert_eq!(s.a.latched_rtcp, Some(a.rtcp.local_addr().unwrap()));
    assert_eq!(s.a.latched_rtp, Some(a.rtp.local_addr().unwrap()));
}

#[test]
fn rtcp_mux_to_separate_ports() {
    let relay = relay();
    let mut a = Phone::new(Some(Suite::AesCm128HmacSha1_80), 9).muxed();
    let mut b = Phone::new(Some(Suite::AeadAes256Gcm), 10);
    let call = call(&relay, &mut a, &mut b);
    // A sends RTP and SRTCP on one port; B gets them on its two.
    flow(&mut a, &mut b, 2);
    let rr = a.send_rtcp();
    assert_eq!(b.recv_rtcp(), rr);
    flow(&mut a, &mut b, 2);
    // B's RTCP reaches A on A's RTP port.
    let rr = b.send_rtcp();
    assert_eq!(a.recv_rtcp(), rr);
    flow(&mut b, &mut a, 2);
    // With rtcp-mux, A's RTCP port takes nothing.
    let mut w = rr.clone();
    w[4..8].copy_from_slice(&a.ssrc.to_be_bytes());
    a.tx.as_mut().unwrap().protect_rtcp_vec(&mut w).unwrap();
    a.rtcp.send_to(&w, call.local(Side::A).rtcp).unwrap();
    eventually("the misplaced RTCP to be counted", || call.stats().a.malformed == 1);
    let s = call.stats();
    assert_eq!((s.a.rtcp_packets_in, s.a.packets_in, s.b.rtcp_packets_out), (1, 4, 1));
    assert_eq!(s.a.latched_rtcp, None, "muxed RTCP shares the RTP latch");
}

#[test]
fn latching_first_authenticated_source_wins() {
    let relay = relay();
    let mut a = Phone::new(Some(Suite::AesCm128HmacSha1_80), 11);
    let mut b = Phone::new(Some(Suite::AesCm128HmacSha1_80), 12);
    let call = call(&relay, &mut a, &mut b);

    // An attacker without the key sends first: it fails and latches nothing.
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut forged = a.next_rtp(0, &payload(0));
    forged.extend_from_slice(&[0; 10]);
    attacker.send_to(&forged, a.relay_rtp()).unwrap();

    // The phone's packets come from a NAT-mapped port, not the SDP one:
    // the first authenticated packet, from any source, latches.
    let natted = UdpSocket::bind("127.0.0.1:0").unwrap();
    natted.set_read_timeout(Some(WAIT)).unwrap();
    let plain = a.next_rtp(0, &payload(1));
    natted.send_to(&a.protect(&plain), a.relay_rtp()).unwrap();
    assert_eq!(b.recv().1, plain);
    let s = call.stats();
    assert_eq!(s.a.auth_failures, 1);
    assert_eq!(s.a.latched_rtp, Some(natted.local_addr().unwrap()));

    // B's media now goes to the latched address, not the SDP one.
    let (sent, _) = b.send(&payload(2));
    let mut buf = [0u8; 2048];
    let (n, _) = natted.recv_from(&mut buf).unwrap();
    let mut got = buf[..n].to_vec();
    a.rx.as_mut().unwrap().unprotect_rtp_vec(&mut got).unwrap();
    assert_eq!(got, sent);

    // After latching, another source is dropped even with the right key.
    let plain_other = a.next_rtp(0, &payload(3));
    let w = a.protect(&plain_other);
    a.rtp.send_to(&w, a.relay_rtp()).unwrap();
    let plain = a.next_rtp(0, &payload(4));
    natted.send_to(&a.protect(&plain), a.relay_rtp()).unwrap();
    assert_eq!(b.recv().1, plain, "the other source's packet was not relayed");
    let s = call.stats();
    assert_eq!(
        (s.a.wrong_source, s.a.packets_in, s.a.latched_rtp),
        (1, 2, Some(natted.local_addr().unwrap()))
    );
    a.nothing_queued();
}

#[test]
fn plain_leg_latches_its_first_packet() {
    let relay = relay();
    let mut a = Phone::new(None, 13);
    let mut b = Phone::new(None, 14);
    let call = call(&relay, &mut a, &mut b);
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    flow(&mut a, &mut b, 1);
    other.send_to(&a.next_rtp(0, &payload(9)), a.relay_rtp()).unwrap();
    flow(&mut a, &mut b, 1);
    let s = call.stats();
    assert_eq!(
        (s.a.wrong_source, s.a.latched_rtp),
        (1, Some(a.rtp.local_addr().unwrap()))
    );
}

#[test]
fn injected_replayed_forged_and_garbage_packets_are_dropped() {
    let relay = relay();
    let mut a = Phone::new(Some(Suite::AesCm128HmacSha1_80), 15);
    let mut b = Phone::new(Some(Suite::AesCm128HmacSha1_32), 16);
    let call = call(&relay, &mut a, &mut b);
    let (_, first_wire) = a.send(&payload(0));
    b.recv();

    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    let relay_a = a.relay_rtp();
    let relay_a_rtcp = call.local(Side::A).rtcp;
    let mut expected = Vec::new();
    for k in 1..=10u8 {
        // Before each real packet, one bad thing:
        match k {
            1 => {
                // a valid packet from another address,
                let p = a.next_rtp(0, &payload(k));
                attacker.send_to(&a.protect(&p), relay_a).unwrap();
            }
            2 => {
                // a replay of a packet already relayed, from the phone's address,
                a.rtp.send_to(&first_wire, relay_a).unwrap();
            }
            3 => {
                // a packet with a wrong tag,
                let p = a.next_rtp(0, &payload(k));
                let mut w = a.protect(&p);
                let last = w.len() - 1;
                w[last] ^= 1;
                a.rtp.send_to(&w, relay_a).unwrap();
            }
            4 => {
                // truncated packets and non-RTP bytes,
                a.rtp.send_to(&first_wire[..7], relay_a).unwrap();
                a.rtp.send_to(&first_wire[..20], relay_a).unwrap();
                a.rtp.send_to(b"GET / HTTP/1.1\r\n\r\n", relay_a).unwrap();
                a.rtp.send_to(&[], relay_a).unwrap();
            }
            5 => {
                // garbage on the RTCP port,
                a.rtcp.send_to(&[0xFF; 3], relay_a_rtcp).unwrap();
                a.rtcp.send_to(&[0x80, 200, 0, 6, 1, 2, 3, 4, 5], relay_a_rtcp).unwrap();
                a.rtcp.send_to(&[0x80; 1500], relay_a_rtcp).unwrap();
            }
            6 => {
                // a datagram larger than any RTP packet,
                a.rtp.send_to(&[0x80; 1700], relay_a).unwrap();
            }
            _ => {}
        }
        let (plain, _) = a.send(&payload(k));
        expected.push(plain);
        assert_eq!(b.recv().1, *expected.last().unwrap(), "real packet {k} unaffected");
    }
    // The worker counts a send once the system call returns, which may be
    // just after the phone has the packet.
    eventually("the last send to be counted", || call.stats().b.packets_out == 11);
    let s = call.stats();
    assert_eq!(s.a.wrong_source, 1);
    assert_eq!(s.a.replays, 1);
    // The wrong tag, the 20-octet cut (no room for a tag after the header
    // counts as malformed or failed authentication), RTCP garbage that
    // parses as a header, ...
    assert!(s.a.auth_failures >= 1, "{s:?}");
    assert_eq!(s.a.auth_failures + s.a.malformed, 1 + 4 + 3 + 1, "{s:?}");
    assert_eq!(s.a.packets_in, 11);
    assert_eq!(s.b.packets_out, 11);
    // The forged packet and the injected one consumed sequence numbers.
    assert_eq!(s.a.sequence_gaps, 2);
    let c = relay.counters();
    assert_eq!(c.dropped_wrong_source, 1);
    assert_eq!(c.dropped_replay, 1);
}

#[test]
fn packets_before_both_legs_are_configured_are_dropped() {
    let relay = relay();
    let mut a = Phone::new(Some(Suite::AesCm128HmacSha1_80), 17);
    let mut b = Phone::new(None, 18);
    let call = relay.allocate("early").unwrap();
    a.relay = Some(call.local(Side::A));
    b.relay = Some(call.local(Side::B));
    call.configure(Side::A, a.leg()).unwrap();
    a.send(&payload(0));
    eventually("the early packet to be counted", || call.stats().a.not_ready == 1);
    call.configure(Side::B, b.leg()).unwrap();
    flow(&mut a, &mut b, 3);
    assert_eq!(relay.counters().dropped_not_ready, 1);
    assert_eq!(call.stats().a.latched_rtp, Some(a.rtp.local_addr().unwrap()));
}

#[test]
fn rekey_mid_call() {
    let relay = relay();
    let mut a = Phone::new(Some(Suite::AesCm128HmacSha1_80), 19);
    let mut b = Phone::new(Some(Suite::AesCm128HmacSha1_80), 20);
    let call = call(&relay, &mut a, &mut b);
    flow(&mut a, &mut b, 3);
    flow(&mut b, &mut a, 3);
    let (_, old_wire) = a.send(&payload(50));
    b.recv();

    // A re-INVITE with the same keys keeps the contexts: the replay window
    // still knows the packet just relayed.
    call.configure(Side::A, a.leg()).unwrap();
    a.rtp.send_to(&old_wire, a.relay_rtp()).unwrap();
    flow(&mut a, &mut b, 1);
    assert_eq!(call.stats().a.replays, 1);

    // New keys both ways on leg A (and a suite change).
    let suite = Suite::AeadAes256Gcm;
    let (send, recv) = (key(suite, 77), key(suite, 78));
    a.suite = Some(suite);
    a.tx = Some(ctx(suite, &send));
    a.rx = Some(ctx(suite, &recv));
    a.send_key = Some(send);
    a.recv_key = Some(recv);
    call.configure(Side::A, a.leg()).unwrap();
    // A packet still under the old key fails authentication.
    let mut old_ctx = ctx(Suite::AesCm128HmacSha1_80, &key(Suite::AesCm128HmacSha1_80, 19));
    let mut w = a.next_rtp(0, &payload(60));
    old_ctx.protect_rtp_vec(&mut w).unwrap();
    a.rtp.send_to(&w, a.relay_rtp()).unwrap();
    flow(&mut a, &mut b, 5);
    flow(&mut b, &mut a, 5);
    let s = call.close();
    assert_eq!(s.a.auth_failures, 1);
    assert_eq!(s.a.packets_in, 3 + 1 + 1 + 5);
}

#[tokio::test]
async fn media_timeout_resolves_after_silence() {
    let relay = relay_with(Duration::from_millis(200), 1);
    let mut a = Phone::new(None, 21);
    let mut b = Phone::new(None, 22);
    let call = call(&relay, &mut a, &mut b);
    flow(&mut a, &mut b, 2);
    let last = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), call.timed_out())
        .await
        .expect("media timeout within 5 s");
    // The clock ran from the relay's receipt of the last packet, a moment
    // before `last`.
    assert!(last.elapsed() >= Duration::from_millis(190));
    assert_eq!(relay.counters().media_timeouts, 1);
    // Still resolved until the next configure, which re-arms it.
    tokio::time::timeout(Duration::ZERO, call.timed_out())
        .await
        .expect("stays resolved");
    call.configure(Side::A, a.leg()).unwrap();
    assert!(
        tokio::time::timeout(Duration::ZERO, call.timed_out()).await.is_err(),
        "re-armed by configure"
    );
    tokio::time::timeout(Duration::from_secs(5), call.timed_out())
        .await
        .expect("fires again");
}

#[tokio::test]
async fn a_silent_leg_times_out_while_the_other_talks_unless_it_is_held() {
    let relay = relay_with(Duration::from_millis(200), 1);
    let mut a = Phone::new(None, 41);
    let mut b = Phone::new(None, 42);
    let call = call(&relay, &mut a, &mut b);
    // B is held (told `sendonly`): its silence is expected. A talks for
    // three timeouts (a bounded wait for an absence of the event).
    call.configure(
        Side::B,
        LegConfig {
            on_hold: true,
            ..b.leg()
        },
    )
    .unwrap();
    let until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < until {
        a.send(&[0xFF; 160]);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        tokio::time::timeout(Duration::ZERO, call.timed_out()).await.is_err(),
        "a held leg timed out"
    );
    // Resumed but silent (the phone died): the call times out although A
    // keeps talking.
    call.configure(Side::B, b.leg()).unwrap();
    let fired = async {
        loop {
            a.send(&[0xFF; 160]);
            if tokio::time::timeout(Duration::from_millis(20), call.timed_out())
                .await
                .is_ok()
            {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), fired)
        .await
        .expect("the silent leg timed out");
}

#[tokio::test]
async fn media_timeout_waits_for_configure() {
    let relay = relay_with(Duration::from_millis(50), 1);
    let call = relay.allocate("ringing").unwrap();
    // Not configured: nothing is armed. One timeout-and-a-half later it
    // has still not fired (a bounded wait for an absence).
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(tokio::time::timeout(Duration::ZERO, call.timed_out()).await.is_err());
    call.configure(Side::A, LegConfig::default()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), call.timed_out())
        .await
        .expect("armed by configure");
}

#[test]
fn ports_are_pairs_freed_on_close_and_exhaustion_is_reported() {
    // Find a free block of 4 ports, then give the relay exactly that.
    let relay = (0..50)
        .find_map(|i| {
            let min = 42000 + 8 * i;
            let r = Relay::start(RelayConfig {
                port_min: min,
                port_max: min + 3,
                ..RelayConfig::default()
            })
            .unwrap();
            let c = r.allocate("probe").ok()?;
            drop(c);
            Some(r)
        })
        .expect("a free block of 4 ports");
    let c = relay.allocate("one").unwrap();
    for side in [Side::A, Side::B] {
        let l = c.local(side);
        assert_eq!(l.rtp.port() % 2, 0);
        assert_eq!(l.rtcp.port(), l.rtp.port() + 1);
        assert_eq!(l.rtp.ip(), "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
    }
    assert!(matches!(relay.allocate("two"), Err(MediaError::NoPorts { .. })));
    assert_eq!(relay.counters().port_exhaustion, 1);
    c.close();
    let again = relay.allocate("three").unwrap();
    assert_eq!(relay.counters().calls_active, 1);
    drop(again);
    assert_eq!(relay.counters().calls_active, 0);
}

#[test]
fn a_detached_close_frees_the_ports_once_the_worker_let_go() {
    let relay = (0..50)
        .find_map(|i| {
            let min = 43000 + 8 * i;
            let r = Relay::start(RelayConfig {
                port_min: min,
                port_max: min + 3,
                ..RelayConfig::default()
            })
            .unwrap();
            r.allocate("probe").ok()?.close();
            Some(r)
        })
        .expect("a free block of 4 ports");
    let mut a = Phone::new(None, 60);
    let mut b = Phone::new(Some(Suite::AesCm128HmacSha1_80), 61);
    let c = call(&relay, &mut a, &mut b);
    flow(&mut a, &mut b, 2);
    eventually("the sends to be counted", || c.stats().b.packets_out == 2);
    let stats = c.close_detached();
    assert_eq!(stats.a.packets_in, 2);
    eventually("the call to be closed by the worker", || {
        relay.counters().calls_active == 0
    });
    // The only port pairs are free again.
    relay.allocate("again").unwrap().close();
}

#[test]
fn calls_spread_over_workers() {
    let relay = relay_with(Duration::from_secs(30), 2);
    let mut calls = Vec::new();
    for k in 0..4u8 {
        let mut a = Phone::new(Some(Suite::AesCm128HmacSha1_80), 30 + 2 * k);
        let mut b = Phone::new(Some(Suite::AesCm128HmacSha1_32), 31 + 2 * k);
        let c = call(&relay, &mut a, &mut b);
        calls.push((c, a, b));
    }
    for (_, a, b) in &mut calls {
        flow(a, b, 3);
        flow(b, a, 3);
    }
    eventually("all sends to be counted", || relay.counters().packets_relayed == 24);
    assert_eq!(relay.counters().calls_active, 4);
}

#[test]
fn keys_never_show_in_debug_or_errors() {
    let k = MasterKey::new(&[0x5A; 16], &[0xA5; 14]).unwrap();
    let keys = LegKeys::new(Suite::AesCm128HmacSha1_80, k.clone(), k);
    let leg = LegConfig {
        srtp: Some(keys),
        ..LegConfig::default()
    };
    let s = format!("{leg:?}");
    assert!(!s.contains("90") && !s.contains("165"), "{s}");
    // A key of the wrong length for the suite is a typed error.
    let relay = relay();
    let call = relay.allocate("bad-key").unwrap();
    let short = MasterKey::new(&[1; 16], &[2; 14]).unwrap();
    let bad = LegConfig {
        srtp: Some(LegKeys::new(Suite::AesCm256HmacSha1_80, short.clone(), short)),
        ..LegConfig::default()
    };
    let e = call.configure(Side::B, bad).unwrap_err();
    assert!(matches!(e, MediaError::Srtp { side: Side::B, .. }), "{e}");
    assert!(!format!("{e} {e:?}").contains("[1, 1"));
}

// ---------------------------------------------------------------------
// Recording.

/// G.711 µ-law encoder (the classic CCITT algorithm), for the test phones.
fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(32635) + BIAS;
    let exp = (7 - (s >> 7).leading_zeros().saturating_sub(24).min(7)) as i32;
    let exp = exp.clamp(0, 7);
    let mant = (s >> (exp + 3)) & 0x0F;
    !((sign | (exp << 4) | mant) as u8)
}

/// G.711 A-law encoder.
fn alaw(sample: i16) -> u8 {
    let mut s = i32::from(sample) >> 3; // 13-bit
    let sign = if s >= 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s - 1;
    }
    let code = if s < 32 {
        s >> 1
    } else {
        let seg = (31 - (s as u32).leading_zeros()) as i32 - 4; // 1..=7
        let seg = seg.clamp(1, 7);
        (seg << 4) | ((s >> seg) & 0x0F)
    };
    ((sign | code) as u8) ^ 0x55
}

fn tone(freq: f64, start: usize, n: usize, encode: fn(i16) -> u8) -> Vec<u8> {
    (start..start + n)
        .map(|i| encode((8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin()) as i16))
        .collect()
}

/// Goertzel power of `freq` in `x`.
fn power(x: &[i16], freq: f64) -> f64 {
    let c = 2.0 * (2.0 * std::f64::consts::PI * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = f64::from(v) + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - c * s1 * s2
}

fn dominant(x: &[i16]) -> f64 {
    [300.0, 440.0, 700.0, 1000.0, 1500.0, 2000.0]
        .into_iter()
        .max_by(|a, b| power(x, *a).total_cmp(&power(x, *b)))
        .unwrap()
}

/// Parses a PCM WAV file, checks its header, returns (left, right).
fn read_wav(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[0..4], b"RIFF");
    assert_eq!(u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize, b.len() - 8);
    assert_eq!(&b[8..12], b"WAVE");
    assert_eq!(&b[12..16], b"fmt ");
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    assert_eq!((u16_at(20), u16_at(22), u32_at(24), u16_at(34)), (1, 2, 8000, 16));
    assert_eq!((u32_at(28), u16_at(32)), (32000, 4));
    assert_eq!(&b[36..40], b"data");
    assert_eq!(u32_at(40) as usize, b.len() - 44);
    let (mut l, mut r) = (Vec::new(), Vec::new());
    for s in b[44..].chunks_exact(4) {
        l.push(i16::from_le_bytes([s[0], s[1]]));
        r.push(i16::from_le_bytes([s[2], s[3]]));
    }
    (l, r)
}

#[test]
fn g711_test_encoders_round_trip_through_known_points() {
    assert_eq!(ulaw(0), 0xFF);
    assert_eq!(ulaw(32124), 0x80);
    assert_eq!(ulaw(-32124), 0x00);
    assert_eq!(alaw(8), 0xD5);
    assert_eq!(alaw(-8), 0x55);
    assert_eq!(alaw(32256), 0xAA);
}

#[test]
fn recording_puts_each_leg_on_its_channel_with_silence_for_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.wav");
    let relay = relay();
    let mut a = Phone::new(Some(Suite::AesCm128HmacSha1_80), 40);
    let mut b = Phone::new(Some(Suite::AeadAes128Gcm), 41);
    let call = relay.allocate("rec").unwrap();
    a.relay = Some(call.local(Side::A));
    b.relay = Some(call.local(Side::B));
    call.configure(Side::A, a.leg()).unwrap();
    // B's phone uses A-law on payload type 8.
    call.configure(
        Side::B,
        LegConfig {
            codecs: vec![(8, Codec::Pcma), (101, Codec::Other)],
            ..b.leg()
        },
    )
    .unwrap();
    call.record(&path).unwrap();
    assert!(matches!(call.record(&path), Err(MediaError::AlreadyRecording)));

    // One second each way, 20 ms frames, in lock step; A loses frames
    // 20..30 (its timestamps still advance).
    const LOST: std::ops::Range<usize> = 20..30;
    for k in 0..50usize {
        let fa = tone(1000.0, 160 * k, 160, ulaw);
        if LOST.contains(&k) {
            a.next_rtp(0, &fa);
        } else {
            let p = a.next_rtp(0, &fa);
            let w = a.protect(&p);
            a.rtp.send_to(&w, a.relay_rtp()).unwrap();
            assert_eq!(b.recv().1, p);
        }
        let p = b.next_rtp(8, &tone(440.0, 160 * k, 160, alaw));
        let w = b.protect(&p);
        b.rtp.send_to(&w, b.relay_rtp()).unwrap();
        assert_eq!(a.recv().1, p);
    }
    // A telephone-event on B is relayed but not recorded.
    let p = b.next_rtp(101, &[1, 2, 3, 4]);
    let w = b.protect(&p);
    b.rtp.send_to(&w, b.relay_rtp()).unwrap();
    a.recv();
    let s = call.close();
    assert_eq!(s.recording_dropped, 0);
    assert_eq!(s.a.sequence_gaps, LOST.len() as u64);

    let (l, r) = read_wav(&path);
    // About one second; A's first frame starts the file, B's first frame
    // arrived a moment later.
    assert!((50 * 160..52 * 160).contains(&l.len()), "{} samples", l.len());
    let start = l.iter().position(|&v| v.abs() > 100).unwrap();
    assert!(start < 20, "the file starts with A's first frame ({start})");
    assert_eq!(dominant(&l[..20 * 160]), 1000.0);
    assert_eq!(dominant(&l[30 * 160..50 * 160]), 1000.0);
    let b_start = r.iter().position(|&v| v.abs() > 100).unwrap();
    assert_eq!(dominant(&r[b_start..b_start + 40 * 160]), 440.0);
    // The lost frames are silence on the left (a few samples of slack at
    // each edge for the arrival-time anchor).
    let gap = &l[LOST.start * 160 + 10..LOST.end * 160 - 10];
    assert!(gap.iter().all(|&v| v == 0), "the lost frames are silence");
    assert!(
        l[LOST.end * 160 + 10..LOST.end * 160 + 170]
            .iter()
            .any(|&v| v.abs() > 1000)
    );
}

#[test]
fn stats_and_close_are_consistent() {
    let relay = relay();
    let mut a = Phone::new(None, 50);
    let mut b = Phone::new(Some(Suite::AesCm192HmacSha1_80), 51);
    let call = call(&relay, &mut a, &mut b);
    flow(&mut a, &mut b, 4);
    eventually("the last send to be counted", || call.stats().b.packets_out == 4);
    let live: CallStats = call.stats();
    let closed = call.close();
    assert_eq!(live, closed);
    assert_eq!(closed.leg(Side::A).packets_in, 4);
    assert_eq!(closed.leg(Side::B).packets_out, 4);
}

#[test]
fn a_plain_leg_echoing_the_srtp_legs_own_stream_back_is_relayed_intact() {
    // A trunk that echoes audio returns the caller's own SSRC and
    // sequence numbers; both directions must still be right.
    let relay = relay();
    let mut a = Phone::new(Some(Suite::AesCm128HmacSha1_80), 51);
    let mut b = Phone::new(None, 52);
    let _call = call(&relay, &mut a, &mut b);
    for k in 0..20 {
        let (plain, _) = a.send(&payload(k));
        let (_, at_b) = b.recv();
        assert_eq!(at_b, plain, "packet {k} reaches the plain leg decrypted");
        b.rtp.send_to(&at_b, b.relay_rtp()).unwrap();
        let (_, back) = a.recv();
        assert_eq!(back, plain, "packet {k} echoed back intact");
    }
}
