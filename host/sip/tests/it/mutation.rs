//! A quick property test: random and mutated bytes never make the parser,
//! the framer or the 400 builder panic, and whatever parses prints back to
//! something that parses to the same message.
//!
//! A tiny xorshift generator keeps this dependency-free and reproducible;
//! the cargo-fuzz targets in `fuzz/` explore the same entry points longer.

use pbx_sip::auth::DigestResponse;
use pbx_sip::framing;
use pbx_sip::message::{Message, ParseConfig};
use pbx_sip::response::bad_request;

use crate::wire;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    "INVITE sips:bob@[2001:db8::1]:5061;transport=tls SIP/2.0
Via: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bKa;rport, SIP/2.0/UDP h;branch=z9hG4bKb
f: \"A, \\\"B\\\"\" <sip:a@b>;tag=1
t: sip:bob@x
i: c1
CSeq: 1 INVITE
m: <sip:a@192.0.2.1;transport=tls>;expires=30, *
Authorization: Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"00\", qop=auth, nc=00000001, cnonce=\"c\"
Content-Type: application/sdp
l: 4

v=0
",
    "SIP/2.0 200 OK
Via: SIP/2.0/UDP h;branch=z9hG4bK1;received=2001:db8::2
From: <sip:a@b>;tag=1
To: <sip:a@b>;tag=2
Call-ID: c
CSeq: 1 REGISTER
Contact: <sip:a@h>;expires=60
Content-Length: 0

",
    "\r\n\r\nOPTIONS sip:x SIP/2.0\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\n l: 0\n\n",
];

fn mutate(rng: &mut XorShift, input: &mut Vec<u8>) {
    const INTERESTING: &[&[u8]] = &[
        b"\r\n",
        b"\r\n\r\n",
        b":",
        b";",
        b",",
        b"<",
        b">",
        b"\"",
        b"\\",
        b"[",
        b"]",
        b"%",
        b"@",
        b" ",
        b"\t",
        b"\0",
        b"\xff",
        b"SIP/2.0",
        b"l: ",
        b"Content-Length: 99\r\n",
        b";tag=",
        b"z9hG4bK",
        b"sips:",
    ];
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            1 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(len - i).min(16) + 1;
                input.drain(i..(i + n).min(len));
            }
            2 => {
                let i = rng.below(len + 1);
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                input.splice(i..i, piece.iter().copied());
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let j = i + rng.below(len - i);
                let chunk = input[i..j].to_vec();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, chunk);
            }
            4 => input.truncate(rng.below(len + 1)),
            _ => {
                let i = rng.below(len + 1);
                input.insert(i, rng.next() as u8);
            }
        }
    }
}

fn exercise(input: &[u8]) {
    let cfg = ParseConfig::default();
    let _ = framing::check(input, &cfg);
    let _ = framing::check(input, &ParseConfig { max_size: 64 });
    let _ = DigestResponse::parse(&String::from_utf8_lossy(input));
    match Message::parse(input, &cfg) {
        Ok(msg) => {
            // Printing a parsed message must give bytes that parse to the
            // same message: the printer never emits what the parser refuses.
            let printed = msg.to_bytes();
            let again = Message::parse(&printed, &cfg)
                .unwrap_or_else(|e| panic!("reprint of {input:?} fails: {e}\n{}", String::from_utf8_lossy(&printed)));
            assert_eq!(again, msg, "round trip of {input:?}");
        }
        Err(e) => {
            if let Ok(reply) = bad_request(input, &e, "t") {
                // The 400 itself must be well formed enough to frame.
                assert!(reply.starts_with(b"SIP/2.0 "));
                assert!(reply.ends_with(b"\r\n\r\n"));
            }
        }
    }
}

#[test]
fn mutated_messages_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for seed in SEEDS {
        let base = wire(seed);
        exercise(&base);
        for _ in 0..4000 {
            let mut input = base.clone();
            mutate(&mut rng, &mut input);
            exercise(&input);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(42);
    for _ in 0..3000 {
        let len = rng.below(300);
        let input: Vec<u8> = (0..len).map(|_| b"SIP/2.0 \r\n:;<>@\"abc123"[rng.below(22)]).collect();
        exercise(&input);
    }
}
