//! SRTP throughput, single thread: `cargo bench -p pbx-srtp`.
//!
//! Prints one line per figure:
//! `srtp <SUITE> <BYTES>B <STREAMS>streams <protect|unprotect|transcode> <NS> ns/packet`.
//!
//! Each figure is the median of `ROUNDS` rounds (after `WARMUP` rounds),
//! a round being `SEGMENTS` timed segments of `BATCH` packets. Before each
//! segment the packets are prepared untimed in a small pool (plaintexts
//! for protect, SRTP from a sender for unprotect and transcode), so they
//! are cache-warm like a packet the relay has just received; the timed
//! loop only runs the operation on each pool buffer in place. With N
//! streams the packets round-robin over N SSRCs of one context. Optional
//! arguments (substrings of the suite name) select suites.
//!
//! `protect`, `unprotect` and `transcode` use the batch API
//! (`*_batch`, `CALL` packets per call: what the media relay does with a
//! `recvmmsg` batch); `protect_single`, `unprotect_single` and
//! `transcode_single` call the one-packet methods in a loop (`--batch` or
//! `--single` runs only one kind; `--op=protect` only one operation).

use std::hint::black_box;
use std::time::Instant;

use pbx_srtp::{Context, MasterKey, Options, Packet, Suite, transcode_rtp, transcode_rtp_batch};

const BATCH: usize = 64;
/// Packets per batch call.
const CALL: usize = 16;
const SEGMENTS: usize = 60;
const ROUNDS: usize = 11;
const WARMUP: usize = 2;

struct Pool {
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
}

fn key(suite: Suite, seed: u8) -> MasterKey {
    let k: Vec<u8> = (0..suite.key_len())
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect();
    let s: Vec<u8> = (0..suite.salt_len()).map(|i| seed.wrapping_add(7 * i as u8)).collect();
    MasterKey::new(&k, &s).expect("key")
}

fn ctx(suite: Suite, seed: u8) -> Context {
    Context::new(
        suite,
        &key(suite, seed),
        Options {
            max_streams: 4096,
            ..Options::default()
        },
    )
    .expect("context")
}

/// Fills the pool with the next BATCH plaintext RTP packets.
struct Source {
    bytes: usize,
    streams: usize,
    n: u64,
}

impl Source {
    fn fill(&mut self, pool: &mut Pool) {
        for i in 0..BATCH {
            let k = self.n as usize % self.streams;
            let seq = (60_000 + self.n / self.streams as u64) as u16;
            let b = &mut pool.bufs[i];
            b[0] = 0x80;
            b[1] = 0;
            b[2..4].copy_from_slice(&seq.to_be_bytes());
            b[4..8].copy_from_slice(&(self.n as u32).wrapping_mul(160).to_be_bytes());
            b[8..12].copy_from_slice(&(0x1000_0000u32 + k as u32).to_be_bytes());
            for (j, x) in b[12..self.bytes].iter_mut().enumerate() {
                *x = (j as u8) ^ 0x55;
            }
            pool.lens[i] = self.bytes;
            self.n += 1;
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Op {
    Protect,
    Unprotect,
    Transcode,
}

fn run(suite: Suite, bytes: usize, streams: usize, op: Op, batch: bool) -> f64 {
    let mut pool = Pool {
        bufs: vec![vec![0u8; bytes + 64]; BATCH],
        lens: vec![0; BATCH],
    };
    let mut src = Source { bytes, streams, n: 0 };
    let mut a_tx = ctx(suite, 1);
    let mut a_rx = ctx(suite, 1);
    let mut b_tx = ctx(suite, 2);
    let mut times = Vec::new();
    for round in 0..WARMUP + ROUNDS {
        let mut total = std::time::Duration::ZERO;
        for _ in 0..SEGMENTS {
            src.fill(&mut pool);
            if op != Op::Protect {
                for (b, l) in pool.bufs.iter_mut().zip(pool.lens.iter_mut()) {
                    *l = a_tx.protect_rtp(b, *l).expect("protect");
                }
            }
            if batch {
                let mut packets: Vec<Packet<'_>> = pool
                    .bufs
                    .iter_mut()
                    .zip(pool.lens.iter())
                    .map(|(b, l)| Packet::new(b, *l))
                    .collect();
                let t = Instant::now();
                for call in packets.chunks_mut(CALL) {
                    match op {
                        Op::Protect => a_tx.protect_rtp_batch(call),
                        Op::Unprotect => a_rx.unprotect_rtp_batch(call),
                        Op::Transcode => transcode_rtp_batch(&mut a_rx, &mut b_tx, call),
                    }
                    black_box(&call);
                }
                total += t.elapsed();
                assert!(packets.iter().all(|p| p.result().is_ok()), "batch {op:?} failed");
                continue;
            }
            let t = Instant::now();
            match op {
                Op::Protect => {
                    for (b, l) in pool.bufs.iter_mut().zip(pool.lens.iter()) {
                        black_box(a_tx.protect_rtp(b, *l).expect("protect"));
                    }
                }
                Op::Unprotect => {
                    for (b, l) in pool.bufs.iter_mut().zip(pool.lens.iter()) {
                        black_box(a_rx.unprotect_rtp(&mut b[..*l]).expect("unprotect"));
                    }
                }
                Op::Transcode => {
                    for (b, l) in pool.bufs.iter_mut().zip(pool.lens.iter()) {
                        black_box(transcode_rtp(&mut a_rx, &mut b_tx, b, *l).expect("transcode"));
                    }
                }
            }
            total += t.elapsed();
        }
        if round >= WARMUP {
            times.push(total.as_nanos() as f64 / (SEGMENTS * BATCH) as f64);
        }
    }
    median(times)
}

fn main() {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let flag = |f: &str| std::env::args().any(|a| a == f);
    let modes: Vec<bool> = match (flag("--batch"), flag("--single")) {
        (true, false) => vec![true],
        (false, true) => vec![false],
        _ => vec![true, false],
    };
    let only_op = std::env::args().find_map(|a| a.strip_prefix("--op=").map(str::to_owned));
    // One untimed pass first: the clock and caches settle before the first
    // figure (libsrtp/anchor.c does the same).
    for op in [Op::Protect, Op::Unprotect, Op::Transcode] {
        black_box(run(Suite::AesCm128HmacSha1_80, 172, 1, op, true));
    }
    let suites = [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::AesCm256HmacSha1_80,
        Suite::AesCm256HmacSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
    ];
    for suite in suites {
        if !filters.is_empty() && !filters.iter().any(|f| suite.sdes_name().contains(f.as_str())) {
            continue;
        }
        for bytes in [172usize, 1212] {
            for streams in [1usize, 1000] {
                for batch in modes.iter().copied() {
                    for (op, name) in [
                        (Op::Protect, "protect"),
                        (Op::Unprotect, "unprotect"),
                        (Op::Transcode, "transcode"),
                    ] {
                        if only_op.as_deref().is_some_and(|o| o != name) {
                            continue;
                        }
                        let ns = run(suite, bytes, streams, op, batch);
                        let single = if batch { "" } else { "_single" };
                        println!(
                            "srtp {} {bytes}B {streams}streams {name}{single} {ns:.0} ns/packet",
                            suite.sdes_name()
                        );
                    }
                }
            }
        }
    }
}
