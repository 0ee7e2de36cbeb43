//! Timing of the per-call SDP work: parse an offer, build the answer,
//! print it, and the PBX's own offer/accept round.
//!
//! `cargo bench -p pbx-sdp` prints nanoseconds per operation (median of
//! several batches). Keys come from a deterministic generator so the
//! numbers measure SDP work, not the OS random source; the cost of
//! `KeyMaterial::random` is printed separately.

use std::hint::black_box;
use std::time::Instant;

use pbx_sdp::{KeyGenError, KeyMaterial, LocalMedia, Sdp, SrtpOffer, SrtpPolicy, Suite, answer, offer};

const BARESIP: &str = include_str!("../tests/fixtures/baresip_offer.sdp");
const POLYCOM: &str = include_str!("../tests/fixtures/polycom_offer.sdp");

fn keygen(suite: Suite) -> Result<KeyMaterial, KeyGenError> {
    let bytes = [0x5a; 46];
    KeyMaterial::from_concatenated(suite, &bytes[..suite.key_len() + suite.salt_len()]).map_err(|_| KeyGenError)
}

/// Runs `f` in batches and prints the median ns per call; skipped unless
/// its name contains the command-line filter, if any
/// (`cargo bench -p pbx-sdp -- parse`).
fn bench(name: &str, mut f: impl FnMut()) {
    // Cargo passes `--bench` to harness-less benches; ignore flags.
    if let Some(filter) = std::env::args().skip(1).find(|a| !a.starts_with("--"))
        && !name.contains(&filter)
    {
        return;
    }
    let iters = 20_000u32;
    for _ in 0..iters / 10 {
        f();
    }
    let mut samples: Vec<f64> = (0..9)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    println!("{name:<44} {:>9.0} ns", samples[samples.len() / 2]);
}

fn main() {
    let local = LocalMedia::new("198.51.100.1".parse().expect("ip"), 40000);
    let policy = SrtpPolicy::default();
    let baresip = Sdp::parse(BARESIP).expect("fixture parses");
    let polycom = Sdp::parse(POLYCOM).expect("fixture parses");

    bench("parse baresip offer (17 lines)", || {
        black_box(Sdp::parse(black_box(BARESIP)).ok());
    });
    bench("parse polycom offer (4 crypto lines)", || {
        black_box(Sdp::parse(black_box(POLYCOM)).ok());
    });
    bench("answer baresip offer", || {
        black_box(answer(black_box(&baresip), &local, &policy, &mut keygen).ok());
    });
    bench("answer polycom offer", || {
        black_box(answer(black_box(&polycom), &local, &policy, &mut keygen).ok());
    });
    bench("parse + answer + print (baresip)", || {
        let o = Sdp::parse(black_box(BARESIP)).expect("parses");
        let (a, _) = answer(&o, &local, &policy, &mut keygen).expect("answers");
        black_box(a.to_bytes());
    });
    let srtp = SrtpOffer::mandatory(&[Suite::AesCm128HmacSha1_32]);
    let (ours, pending) = offer(&local, &srtp, &mut keygen).expect("offer");
    let phone = LocalMedia::new("192.0.2.7".parse().expect("ip"), 30026);
    let mut other = |s: Suite| {
        KeyMaterial::from_concatenated(s, &[0x33; 30][..s.key_len() + s.salt_len()]).map_err(|_| KeyGenError)
    };
    let (reply, _) = answer(&ours, &phone, &policy, &mut other).expect("answers");
    bench("offer (_32 only)", || {
        black_box(offer(&local, &srtp, &mut keygen).ok());
    });
    bench("accept_answer", || {
        black_box(pending.accept_answer(black_box(&reply)).ok());
    });
    bench("KeyMaterial::random (getrandom)", || {
        black_box(KeyMaterial::random(Suite::AesCm128HmacSha1_80).ok());
    });
}
