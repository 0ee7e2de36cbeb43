//! Rough per-operation timings with plain `Instant` loops (no harness):
//! `cargo bench -p pbx-sip --bench parse`.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use pbx_sip::auth::{Algorithm, Authenticator, Credential, DigestResponse};
use pbx_sip::framing;
use pbx_sip::message::{Message, Method, ParseConfig};

const REGISTER: &str = "REGISTER sips:pbx.example.test SIP/2.0\r
Via: SIP/2.0/TLS 192.0.2.31:1031;branch=z9hG4bK-x7zcmxg2b0k1;rport\r
From: \"Reception\" <sips:201@pbx.example.test>;tag=vaqrjt2ot7\r
To: \"Reception\" <sips:201@pbx.example.test>\r
Call-ID: 3c2e6e1f7d6b-ssu1h6yc8xqe\r
CSeq: 2 REGISTER\r
Max-Forwards: 70\r
Contact: <sips:201@192.0.2.31:1031;transport=tls>;reg-id=1;+sip.instance=\"<urn:uuid:a1b2c3d4-0001-0002-0003-000413acd001>\"\r
User-Agent: snom D785/10.1.159.12\r
Supported: path, gruu\r
Allow-Events: dialog\r
Expires: 3600\r
Content-Length: 0\r
\r
";

const INVITE: &str = "INVITE sip:202@pbx.example.test;user=phone SIP/2.0\r
Via: SIP/2.0/TLS 192.0.2.40:5061;branch=z9hG4bKe7c2b5a91E1A8B5C\r
From: \"Lab 201\" <sip:201@pbx.example.test>;tag=C8F1A5B2-9E3D4F60\r
To: <sip:202@pbx.example.test;user=phone>\r
CSeq: 1 INVITE\r
Call-ID: 5e9a1d3c-7b2f4e80-9c0d1a2b@192.0.2.40\r
Contact: <sip:201@192.0.2.40:5061;transport=tls>\r
Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE, SUBSCRIBE, NOTIFY, PRACK, UPDATE, REFER\r
User-Agent: PolycomVVX-VVX_450-UA/6.4.3.5018\r
Supported: 100rel,replaces\r
Max-Forwards: 70\r
Content-Type: application/sdp\r
Content-Length: 275\r
\r
v=0\r
o=- 1701234567 1701234567 IN IP4 192.0.2.40\r
s=Polycom IP Phone\r
c=IN IP4 192.0.2.40\r
t=0 0\r
m=audio 2222 RTP/SAVP 9 0 8 101\r
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzcyAo\r
a=rtpmap:9 G722/8000\r
a=rtpmap:0 PCMU/8000\r
a=sendrecv\r
";

/// Runs `f` for about half a second after a warm-up and prints ns per call;
/// skipped unless its name contains the command-line filter, if any
/// (`cargo bench -p pbx-sip --bench parse -- digest`).
fn bench(name: &str, mut f: impl FnMut()) {
    // Cargo passes `--bench` to harness-less benches; ignore flags.
    if let Some(filter) = std::env::args().skip(1).find(|a| !a.starts_with("--"))
        && !name.contains(&filter)
    {
        return;
    }
    for _ in 0..1_000 {
        f();
    }
    let mut iterations = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(500) {
        for _ in 0..100 {
            f();
        }
        iterations += 100;
    }
    let ns = start.elapsed().as_nanos() as f64 / iterations as f64;
    println!("{name:<40} {ns:>10.0} ns/op");
}

fn main() {
    let cfg = ParseConfig::default();
    assert!(Message::parse(REGISTER.as_bytes(), &cfg).is_ok());
    assert!(
        Message::parse(INVITE.as_bytes(), &cfg).is_ok_and(|m| m.to_bytes() == INVITE.as_bytes()),
        "fixture must parse and round-trip"
    );
    bench("parse REGISTER", || {
        black_box(Message::parse(black_box(REGISTER.as_bytes()), &cfg).ok());
    });
    bench("parse INVITE with SDP", || {
        black_box(Message::parse(black_box(INVITE.as_bytes()), &cfg).ok());
    });
    bench("framing::check INVITE", || {
        black_box(framing::check(black_box(INVITE.as_bytes()), &cfg).ok());
    });
    let invite = Message::parse(INVITE.as_bytes(), &cfg).expect("parses");
    bench("print INVITE", || {
        black_box(black_box(&invite).to_bytes());
    });

    // Digest verification: a fresh nc each round so the replay check
    // passes, like a phone sending many requests on one nonce.
    for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
        let now = SystemTime::now();
        let mut auth = Authenticator::new("pbx.example.test", [3; 32]).expect("valid realm");
        let challenge = auth.challenge(algorithm, false, now);
        let password = Credential::Password("secret".into());
        let mut nc = 0u32;
        let name = format!("digest verify {} (parse + check)", algorithm.as_str());
        bench(&name, || {
            nc += 1;
            let header = client_answer(&challenge.nonce, &challenge.opaque, algorithm, nc);
            let parsed = DigestResponse::parse(&header).expect("well-formed");
            black_box(auth.verify(&parsed, &Method::Register, &password, now)).expect("verifies");
        });
    }
}

/// What a phone computes (RFC 7616 §3.4.1); included in the timing, so the
/// verify figure is an upper bound.
fn client_answer(nonce: &str, opaque: &str, algorithm: Algorithm, nc: u32) -> String {
    use md5::Digest as _;
    let h = |s: String| -> String {
        match algorithm {
            Algorithm::Md5 => hex(&md5::Md5::digest(s.as_bytes())),
            _ => hex(&sha2::Sha256::digest(s.as_bytes())),
        }
    };
    let ha1 = h("201:pbx.example.test:secret".to_owned());
    let ha2 = h("REGISTER:sips:pbx.example.test".to_owned());
    let response = h(format!("{ha1}:{nonce}:{nc:08x}:c0ffee:auth:{ha2}"));
    format!(
        "Digest username=\"201\", realm=\"pbx.example.test\", nonce=\"{nonce}\", uri=\"sips:pbx.example.test\", \
         response=\"{response}\", algorithm={}, qop=auth, nc={nc:08x}, cnonce=\"c0ffee\", opaque=\"{opaque}\"",
        algorithm.as_str()
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
