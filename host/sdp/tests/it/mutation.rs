//! A deterministic mutation loop: real offers and answers, mutated byte-
//! and line-wise, must never panic the parser, the accessors, the
//! printer or the negotiation, and whatever parses must print back to
//! something that parses to the same value.
//!
//! `PBX_SDP_MUTATIONS=n` changes the number of rounds (default 3000 per
//! seed document); the generator is seeded, so failures reproduce.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use pbx_sdp::{Sdp, SrtpMode, SrtpOffer, SrtpPolicy, Suite, answer, offer};

use crate::support::{det_keygen, local_v4};

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

const TOKENS: &[&[u8]] = &[
    b"=",
    b":",
    b"/",
    b" ",
    b"\r",
    b"\n",
    b"\r\n",
    b"\0",
    b"\t",
    b"|",
    b";",
    b"^",
    b"-",
    b"0",
    b"65536",
    b"99999999999999999999999",
    b"2^",
    b"2^64",
    b"inline:",
    b"IN IP6 ::1",
    b"IN IP4 0.0.0.0",
    b"m=audio 1 RTP/SAVP 0\r\n",
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:",
    b"a=crypto:",
    b"AEAD_AES_256_GCM",
    b"a=rtpmap:",
    b"a=fmtp:",
    b"a=rtcp:",
    b"a=ptime:",
    b"RTP/AVP",
    b"a=inactive\r\n",
    b"a=rtcp-mux\r\n",
    b"\xff",
    b"\xc3\xa9",
    b"QQ==",
    b"====",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if !v.is_empty() => {
                let end = (at + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            4 => v.truncate(at),
            5 => {
                // Duplicate or move a whole line.
                let lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
                let line = lines[rng.below(lines.len())].to_vec();
                let pos = rng.below(v.len() + 1);
                v.splice(pos..pos, line.into_iter().chain([b'\n']));
            }
            6 if !v.is_empty() => {
                // Replace a digit run with a huge or zero number.
                let i = rng.below(v.len());
                if v[i].is_ascii_digit() {
                    let t: &[u8] = if rng.below(2) == 0 {
                        b"0"
                    } else {
                        b"18446744073709551616"
                    };
                    v.splice(i..i + 1, t.iter().copied());
                }
            }
            _ => {
                let i = rng.below(v.len() + 1);
                let j = rng.below(v.len() + 1);
                let (a, b) = (i.min(j), i.max(j));
                v[a..b].reverse();
            }
        }
    }
    v
}

/// Everything a caller might do with an untrusted body.
fn exercise(bytes: &[u8], pending: &pbx_sdp::PendingOffer) {
    let Ok(sdp) = Sdp::parse_bytes(bytes) else {
        return;
    };
    let printed = sdp.to_string();
    let again = Sdp::parse(&printed).unwrap_or_else(|e| panic!("printed form does not parse: {e}\n{printed}"));
    assert_eq!(again, sdp, "round trip changed the value");
    let _ = format!("{sdp:?}");
    let _ = sdp.validate();
    for m in &sdp.media {
        let _ = (
            sdp.direction(m),
            sdp.connection_for(m).map(|c| (c.ip(), c.is_unspecified())),
        );
        let _ = (
            m.rtpmaps().count(),
            m.ptime(),
            m.maxptime(),
            m.rtcp(),
            m.rtcp_mux(),
            m.direction_attr(),
        );
        for pt in m.payload_types() {
            let _ = (m.rtpmap(pt), m.fmtp(pt).map(|f| f.pairs().count()));
        }
        for c in m.crypto().flatten() {
            let _ = (
                c.to_string(),
                c.flags(),
                c.kdr(),
                c.wsh(),
                c.unsupported_mandatory_param(),
            );
            assert_eq!(
                c.to_string().parse::<pbx_sdp::CryptoAttr>().map(|x| x.to_string()),
                Ok(c.to_string())
            );
        }
    }
    for mode in [SrtpMode::Required, SrtpMode::Optional, SrtpMode::Disabled] {
        if let Ok((ans, streams)) = answer(&sdp, &local_v4(40000), &SrtpPolicy::with_mode(mode), &mut det_keygen(1)) {
            assert!(!streams.is_empty());
            assert_eq!(ans.media.len(), sdp.media.len());
            Sdp::parse(&ans.to_string()).expect("our answer parses");
        }
    }
    let _ = pending.accept_answer(&sdp);
}

#[test]
fn mutated_sdp_never_panics() {
    let rounds: usize = std::env::var("PBX_SDP_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seeds: Vec<Vec<u8>> = [
        "baresip_offer.sdp",
        "polycom_offer.sdp",
        "ipv6_offer.sdp",
        "audio_video_offer.sdp",
    ]
    .iter()
    .map(|n| std::fs::read(dir.join(n)).unwrap())
    .collect();
    let suites = [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32];
    let (ours, pending) = offer(&local_v4(41000), &SrtpOffer::mandatory(&suites), &mut det_keygen(9)).unwrap();
    let reply = answer(&ours, &local_v4(30026), &SrtpPolicy::default(), &mut det_keygen(5))
        .unwrap()
        .0;
    seeds.push(reply.to_bytes());

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0usize;
    for seed in &seeds {
        for _ in 0..rounds {
            let input = mutate(&mut rng, seed);
            let result = catch_unwind(AssertUnwindSafe(|| exercise(&input, &pending)));
            if let Err(panic) = result {
                eprintln!("panicking input: {:?}", String::from_utf8_lossy(&input));
                resume_unwind(panic);
            }
            parsed += usize::from(Sdp::parse_bytes(&input).is_ok());
        }
    }
    // The loop is only useful if a fair share of mutants get past the parser.
    assert!(parsed > rounds * seeds.len() / 10, "only {parsed} mutants parsed");
}

#[test]
fn limits_hold() {
    let big = format!("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n{}", "a=x\r\n".repeat(20_000));
    assert!(matches!(Sdp::parse(&big), Err(pbx_sdp::ParseError::TooLarge { .. })));
    let many = format!("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n{}", "a=x\r\n".repeat(300));
    assert!(matches!(
        Sdp::parse(&many),
        Err(pbx_sdp::ParseError::TooManyAttributes { .. })
    ));
    let lines = format!("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n{}", "\r\n".repeat(2000));
    assert!(matches!(
        Sdp::parse(&lines),
        Err(pbx_sdp::ParseError::TooManyLines { .. })
    ));
    let media = format!(
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n{}",
        "m=audio 1 RTP/AVP 0\r\n".repeat(33)
    );
    assert!(matches!(
        Sdp::parse(&media),
        Err(pbx_sdp::ParseError::TooManyMedia { .. })
    ));
    let long = format!("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns={}\r\n", "x".repeat(5000));
    assert!(matches!(
        Sdp::parse(&long),
        Err(pbx_sdp::ParseError::LineTooLong { .. })
    ));
}
