//! The batch methods give exactly the results of the one-packet methods
//! applied in order: same bytes out, same verdicts, same state after.

use pbx_srtp::{Context, Error, MasterKey, Options, Packet, Suite, transcode_rtp, transcode_rtp_batch};

const ROOM: usize = 64;

fn key(suite: Suite, seed: u8) -> MasterKey {
    let k: Vec<u8> = (0..suite.key_len())
        .map(|i| seed ^ (i as u8).wrapping_mul(13))
        .collect();
    let s: Vec<u8> = (0..suite.salt_len()).map(|i| seed.wrapping_add(i as u8 * 5)).collect();
    MasterKey::new(&k, &s).unwrap()
}

fn ctx(suite: Suite, seed: u8, opts: &Options) -> Context {
    Context::new(suite, &key(suite, seed), opts.clone()).unwrap()
}

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn rtp(seq: u16, ssrc: u32, payload: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload).map(|i| (i as u8).wrapping_mul(seq as u8 | 1)));
    p
}

/// Packets as a sender emits them: three SSRCs, sequence numbers running
/// across the 16-bit wrap, odd payload sizes (one to three SHA-1 blocks).
fn plaintexts(rng: &mut Rng, n: usize) -> Vec<Vec<u8>> {
    let mut seqs = [65_500u16, 65_530, 7];
    (0..n)
        .map(|_| {
            let s = rng.below(3) as usize;
            seqs[s] = seqs[s].wrapping_add(1);
            let payload = [0usize, 1, 40, 52, 60, 160, 161, 200][rng.below(8) as usize];
            rtp(seqs[s], 0xA000 + s as u32, payload)
        })
        .collect()
}

/// Runs `packets` through `f` in batches of random sizes; returns each
/// packet's outcome and bytes.
fn in_batches(rng: &mut Rng, packets: &[Vec<u8>], mut f: impl FnMut(&mut [Packet<'_>])) -> Vec<Outcome> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < packets.len() {
        let n = (1 + rng.below(7) as usize).min(packets.len() - i);
        let mut bufs: Vec<Vec<u8>> = packets[i..i + n]
            .iter()
            .map(|p| {
                let mut b = p.clone();
                b.resize(p.len() + ROOM, 0);
                b
            })
            .collect();
        let mut batch: Vec<Packet<'_>> = bufs
            .iter_mut()
            .zip(&packets[i..i + n])
            .map(|(b, p)| Packet::new(b, p.len()))
            .collect();
        f(&mut batch);
        out.extend(batch.iter().map(|p| (p.result(), p.bytes().to_vec())));
        i += n;
    }
    out
}

fn one_by_one(packets: &[Vec<u8>], mut f: impl FnMut(&mut [u8], usize) -> Result<usize, Error>) -> Vec<Outcome> {
    packets
        .iter()
        .map(|p| {
            let mut b = p.clone();
            b.resize(p.len() + ROOM, 0);
            let r = f(&mut b, p.len());
            let bytes = match r {
                Ok(n) => b[..n].to_vec(),
                Err(_) => Vec::new(),
            };
            (r, bytes)
        })
        .collect()
}

type Outcome = (Result<usize, Error>, Vec<u8>);

/// Compares outcome lists, naming the first packet that differs (the
/// lists themselves are too long to print).
fn assert_same(got: &[Outcome], want: &[Outcome], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: packet count");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: packet {i} differs: batch {:?}, one by one {:?}",
            got[i].0, want[i].0
        );
    }
}

fn options() -> Vec<Options> {
    vec![
        Options::default(),
        Options {
            mki: Some(vec![0x5A, 0xA5]),
            ..Options::default()
        },
        // Not paired: a key derivation rate takes the one-packet path.
        Options {
            key_derivation_rate: 8,
            ..Options::default()
        },
    ]
}

/// What a receiver sees: the stream with duplicates, reordering, forged
/// tags and truncated packets mixed in.
fn hostile(rng: &mut Rng, srtp: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for (i, p) in srtp.iter().enumerate() {
        match rng.below(10) {
            0 => v.push(p.clone()),
            1 if i > 0 => v.push(srtp[i - 1].clone()),
            2 => {
                let mut f = p.clone();
                let j = rng.below(f.len() as u64) as usize;
                f[j] ^= 1 << rng.below(8);
                v.push(f);
            }
            3 => v.push(p[..rng.below(p.len() as u64) as usize].to_vec()),
            _ => {}
        }
        v.push(p.clone());
        if rng.below(8) == 0 && v.len() >= 2 {
            let n = v.len();
            v.swap(n - 1, n - 2);
        }
    }
    v
}

#[test]
fn protect_and_unprotect_batches_match_one_packet_calls() {
    for suite in Suite::ALL {
        for opts in options() {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ suite.key_len() as u64);
            let plain = plaintexts(&mut rng, 400);

            let mut tx1 = ctx(suite, 1, &opts);
            let mut tx2 = ctx(suite, 1, &opts);
            let want = one_by_one(&plain, |b, n| tx1.protect_rtp(b, n));
            let got = in_batches(&mut rng, &plain, |ps| tx2.protect_rtp_batch(ps));
            assert_same(&got, &want, &format!("{suite:?} protect"));

            let srtp: Vec<Vec<u8>> = want.into_iter().map(|(r, b)| r.map(|_| b).unwrap()).collect();
            let received = hostile(&mut rng, &srtp);
            let mut rx1 = ctx(suite, 1, &opts);
            let mut rx2 = ctx(suite, 1, &opts);
            let want = one_by_one(&received, |b, n| rx1.unprotect_rtp(&mut b[..n]));
            let got = in_batches(&mut rng, &received, |ps| rx2.unprotect_rtp_batch(ps));
            assert_same(&got, &want, &format!("{suite:?} unprotect"));
            assert!(want.iter().any(|(r, _)| *r == Err(Error::AuthFailed)));
            assert!(want.iter().any(|(r, _)| *r == Err(Error::Replayed)));
            for ssrc in 0xA000..0xA003 {
                assert_eq!(rx1.rtp_index(ssrc), rx2.rtp_index(ssrc), "{suite:?}");
            }
        }
    }
}

#[test]
fn transcode_batches_match_one_packet_calls() {
    let opts = Options::default();
    for (a, b) in [
        (Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32),
        (Suite::AesCm128HmacSha1_32, Suite::AeadAes128Gcm),
        (Suite::AeadAes256Gcm, Suite::AesCm256HmacSha1_80),
    ] {
        let mut rng = Rng(77);
        let plain = plaintexts(&mut rng, 300);
        let mut tx = ctx(a, 3, &opts);
        let srtp: Vec<Vec<u8>> = one_by_one(&plain, |buf, n| tx.protect_rtp(buf, n))
            .into_iter()
            .map(|(r, bytes)| r.map(|_| bytes).unwrap())
            .collect();
        let received = hostile(&mut rng, &srtp);
        let (mut in1, mut out1) = (ctx(a, 3, &opts), ctx(b, 4, &opts));
        let (mut in2, mut out2) = (ctx(a, 3, &opts), ctx(b, 4, &opts));
        let want = one_by_one(&received, |buf, n| transcode_rtp(&mut in1, &mut out1, buf, n));
        let got = in_batches(&mut rng, &received, |ps| transcode_rtp_batch(&mut in2, &mut out2, ps));
        assert_same(&got, &want, &format!("{a:?} -> {b:?}"));
        // And leg B's receiver accepts every forwarded packet.
        let mut rx = ctx(b, 4, &opts);
        for (r, bytes) in got.into_iter().filter(|(r, _)| r.is_ok()) {
            let mut v = bytes;
            assert!(r.is_ok());
            rx.unprotect_rtp_vec(&mut v).unwrap();
        }
    }
}

#[test]
fn a_packet_longer_than_its_buffer_is_refused_in_a_batch() {
    let opts = Options::default();
    let mut tx = ctx(Suite::AesCm128HmacSha1_80, 1, &opts);
    let mut short = rtp(1, 1, 160);
    let mut ok = rtp(2, 1, 160);
    let n = ok.len();
    ok.resize(n + ROOM, 0);
    // No room for the tag.
    let m = short.len();
    let mut batch = [Packet::new(&mut short, m), Packet::new(&mut ok, n)];
    tx.protect_rtp_batch(&mut batch);
    assert!(matches!(batch[0].result(), Err(Error::BufferTooSmall { .. })));
    assert_eq!(batch[1].result(), Ok(n + 10));
}
