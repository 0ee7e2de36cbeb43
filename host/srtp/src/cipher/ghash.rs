//! GHASH (NIST SP 800-38D) with PCLMULQDQ, and AES-GCM on it and
//! [`aesni`](super::aesni).
//!
//! Follows Intel's white paper "Intel Carry-Less Multiplication
//! Instruction and its Usage for Computing the GCM Mode" (Gueron, Kounavis,
//! rev. 2.02): blocks are byte-reversed into the bit-reflected domain,
//! multiplied 64×64 with Karatsuba (three `pclmulqdq`), the 256-bit
//! product shifted left by one bit and reduced modulo
//! x^128 + x^7 + x^2 + x + 1 with shifts (the `gfmul` algorithm).
//!
//! Reduction is linear, so blocks are hashed in chunks of up to [`AGG`]:
//! `(Y ^ X1)·H^k ^ X2·H^(k-1) ^ … ^ Xk·H`, the products summed unreduced
//! and reduced once; H..H^8 are computed at key setup. Only a chunk's
//! first product and its reduction wait for the previous chunk. Eight
//! blocks per reduction rather than four: a 172-octet SRTP packet (12
//! blocks with the AAD and length blocks) then takes two reductions, not
//! three, which took AES-128-GCM seal of it from 116 to 92 ns on the
//! target machine (Zen 1, where `pclmulqdq` issues every other cycle).
//!
//! [`GHashKey::gcm_seal`] and [`GHashKey::gcm_tag_diff`] run AES and GHASH
//! in one feature-enabled function: no calls or memory round trips
//! between them, and E(J0) overlaps the rest.
//!
//! # Why `unsafe`, and why it is sound
//!
//! The `std::arch` intrinsics run only in functions compiled with
//! `#[target_feature(enable = ...)]`, and calling such a function is
//! `unsafe`: on a CPU without the feature it would execute an illegal
//! instruction. The only way to get a [`GHashKey`] is [`GHashKey::new`],
//! which returns `None` unless `is_x86_feature_detected!` reported
//! PCLMULQDQ and SSSE3; each safe method then enters the feature-enabled
//! code. The other `unsafe` operations are unaligned 16-byte loads and
//! stores through references to `[u8; 16]`.

use std::arch::x86_64::{
    __m128i, _mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_or_si128, _mm_set_epi64x, _mm_setzero_si128,
    _mm_shuffle_epi8, _mm_shuffle_epi32, _mm_slli_epi32, _mm_slli_si128, _mm_srli_epi32, _mm_srli_si128,
    _mm_unpackhi_epi64, _mm_xor_si128,
};

use zeroize::Zeroize;

use super::aesni::{AesNi, bswap_mask, ctr_core, encrypt1, gcm_first_counter, gcm_j0, load, load_partial, store};

/// Whether this CPU has everything this module's code is compiled for.
fn supported() -> bool {
    std::is_x86_feature_detected!("pclmulqdq")
        && std::is_x86_feature_detected!("sse2")
        && std::is_x86_feature_detected!("ssse3")
}

/// Blocks per reduction, and powers of H kept (see the module doc).
const AGG: usize = 8;

/// The hash key H and its powers, wiped on drop.
#[derive(Clone)]
pub(crate) struct GHashKey {
    /// `h[i]` is H^(i+1), byte-reversed.
    h: [__m128i; AGG],
    /// `hk[i]` is `hi ^ lo` of `h[i]` in both halves: the Karatsuba middle
    /// factor.
    hk: [__m128i; AGG],
}

impl Drop for GHashKey {
    fn drop(&mut self) {
        self.h.zeroize();
        self.hk.zeroize();
    }
}

impl GHashKey {
    /// Sets up GHASH with key `h` (in GCM, the encryption of the zero
    /// block); `None` if the CPU lacks PCLMULQDQ or SSSE3.
    pub(crate) fn new(h: &[u8; 16]) -> Option<GHashKey> {
        if !supported() {
            return None;
        }
        // SAFETY: `supported()` just confirmed the features `powers` enables.
        let (h, hk) = unsafe { powers(h) };
        Some(GHashKey { h, hk })
    }

    /// GHASH over `parts`, each zero-padded to a whole number of blocks,
    /// starting from Y = 0.
    #[cfg(test)]
    pub(crate) fn hash(&self, parts: [&[u8]; 3]) -> [u8; 16] {
        let mut out = [0u8; 16];
        // SAFETY: a `GHashKey` exists only if `supported()` held (see `new`).
        unsafe { hash_impl(self, &parts, &mut out) };
        out
    }

    /// AES-GCM encryption with a 96-bit nonce under `aes` (whose GHASH
    /// key this is): encrypts `data` in place and returns the tag. One
    /// feature-enabled function runs both, so nothing goes through memory
    /// between them and the CPU can overlap their latencies.
    pub(crate) fn gcm_seal<const NK: usize>(
        &self,
        aes: &AesNi<NK>,
        nonce: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
    ) -> [u8; 16] {
        let mut tag = [0u8; 16];
        // SAFETY: a `GHashKey` exists only if `supported()` held (see
        // `new`), an `AesNi` only if `aesni::supported()` did: together
        // they are every feature `gcm_seal_impl` enables.
        unsafe { gcm_seal_impl(self, aes.round_keys(), nonce, aad, data, &mut tag) };
        tag
    }

    /// Checks a received AES-GCM tag: computes the tag of `aad` and the
    /// ciphertext `ct` and returns the OR of the 64-bit halves of its XOR
    /// with `tag`, which is zero exactly when they match. Branch-free, so
    /// the caller can compare the result with zero in constant time.
    pub(crate) fn gcm_tag_diff<const NK: usize>(
        &self,
        aes: &AesNi<NK>,
        nonce: &[u8; 12],
        aad: &[u8],
        ct: &[u8],
        tag: &[u8; 16],
    ) -> u64 {
        // SAFETY: as in `gcm_seal`.
        unsafe { gcm_tag_diff_impl(self, aes.round_keys(), nonce, aad, ct, tag) }
    }
}

/// `hi ^ lo` of `a` in both 64-bit halves.
#[inline]
#[target_feature(enable = "sse2")]
fn fold(a: __m128i) -> __m128i {
    _mm_xor_si128(a, _mm_shuffle_epi32::<0x4e>(a))
}

/// An unreduced 256-bit product, Karatsuba style: `lo`, `hi` and the
/// middle term not yet corrected by `lo ^ hi`. Sums of such products are
/// products of sums, so they are accumulated and finished once.
#[derive(Clone, Copy)]
struct Wide {
    lo: __m128i,
    hi: __m128i,
    mid: __m128i,
}

#[inline]
#[target_feature(enable = "pclmulqdq,sse2")]
fn mul_wide(a: __m128i, b: __m128i, bk: __m128i) -> Wide {
    Wide {
        lo: _mm_clmulepi64_si128::<0x00>(a, b),
        hi: _mm_clmulepi64_si128::<0x11>(a, b),
        mid: _mm_clmulepi64_si128::<0x00>(fold(a), bk),
    }
}

#[inline]
#[target_feature(enable = "sse2")]
fn add_wide(a: Wide, b: Wide) -> Wide {
    Wide {
        lo: _mm_xor_si128(a.lo, b.lo),
        hi: _mm_xor_si128(a.hi, b.hi),
        mid: _mm_xor_si128(a.mid, b.mid),
    }
}

/// Finishes a (sum of) Karatsuba product(s) and reduces it: the white
/// paper's `gfmul` after its multiplications.
#[inline]
#[target_feature(enable = "sse2")]
fn reduce(w: Wide) -> __m128i {
    let mid = _mm_xor_si128(w.mid, _mm_xor_si128(w.lo, w.hi));
    let mut lo = _mm_xor_si128(w.lo, _mm_slli_si128::<8>(mid));
    let mut hi = _mm_xor_si128(w.hi, _mm_srli_si128::<8>(mid));

    // Shift the 256-bit hi:lo left by one bit: the product of two
    // bit-reflected operands is one bit short.
    let lo_carry = _mm_srli_epi32::<31>(lo);
    let hi_carry = _mm_srli_epi32::<31>(hi);
    lo = _mm_slli_epi32::<1>(lo);
    hi = _mm_slli_epi32::<1>(hi);
    let cross = _mm_srli_si128::<12>(lo_carry);
    lo = _mm_or_si128(lo, _mm_slli_si128::<4>(lo_carry));
    hi = _mm_or_si128(hi, _mm_slli_si128::<4>(hi_carry));
    hi = _mm_or_si128(hi, cross);

    // First phase of the reduction.
    let mut a = _mm_slli_epi32::<31>(lo);
    a = _mm_xor_si128(a, _mm_slli_epi32::<30>(lo));
    a = _mm_xor_si128(a, _mm_slli_epi32::<25>(lo));
    let b = _mm_srli_si128::<4>(a);
    lo = _mm_xor_si128(lo, _mm_slli_si128::<12>(a));

    // Second phase.
    let mut c = _mm_srli_epi32::<1>(lo);
    c = _mm_xor_si128(c, _mm_srli_epi32::<2>(lo));
    c = _mm_xor_si128(c, _mm_srli_epi32::<7>(lo));
    c = _mm_xor_si128(c, b);
    lo = _mm_xor_si128(lo, c);
    _mm_xor_si128(hi, lo)
}

/// `a · b` in GF(2^128), both byte-reversed.
#[inline]
#[target_feature(enable = "pclmulqdq,sse2")]
fn gfmul(a: __m128i, b: __m128i) -> __m128i {
    reduce(mul_wide(a, b, fold(b)))
}

#[target_feature(enable = "pclmulqdq,sse2,ssse3")]
fn powers(h: &[u8; 16]) -> ([__m128i; AGG], [__m128i; AGG]) {
    let mut p = [_mm_shuffle_epi8(load(h), bswap_mask()); AGG];
    for i in 1..AGG {
        p[i] = gfmul(p[i - 1], p[0]);
    }
    let mut k = p;
    for x in k.iter_mut() {
        *x = fold(*x);
    }
    (p, k)
}

/// A running GHASH over a message of `n` blocks known in advance.
///
/// The blocks are cut into chunks of at most [`AGG`], the first one
/// short, so that the last block of every chunk is multiplied by H. Block
/// `j` of a chunk of `k` is multiplied by H^(k-j), the first one after
/// adding Y, the reduced sum of the previous chunk; the products of a
/// chunk are summed unreduced ([`Wide`]) and reduced once.
struct State<'k> {
    key: &'k GHashKey,
    mask: __m128i,
    /// The unreduced sum of the current chunk's products.
    acc: Wide,
    /// Blocks not yet added, this one included.
    left: usize,
    /// Whether the next block starts a chunk after the first.
    first: bool,
}

impl<'k> State<'k> {
    /// A GHASH of `n` blocks, from Y = 0.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn new(key: &'k GHashKey, n: usize) -> Self {
        let zero = _mm_setzero_si128();
        State {
            key,
            mask: bswap_mask(),
            acc: Wide {
                lo: zero,
                hi: zero,
                mid: zero,
            },
            left: n,
            first: true,
        }
    }

    /// Y after the `n` blocks, byte-reversed.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn finish(&self) -> __m128i {
        if self.first {
            _mm_setzero_si128()
        } else {
            reduce(self.acc)
        }
    }

    /// Adds one byte-reversed block; at most `n` in all.
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    fn block(&mut self, mut x: __m128i) {
        // H^(i+1) for this block: the blocks left after it, modulo a chunk.
        let i = self.left.wrapping_sub(1) % AGG;
        if i == AGG - 1 && !self.first {
            // A new chunk: its first block carries Y.
            x = _mm_xor_si128(x, reduce(self.acc));
            self.acc = mul_wide(x, self.key.h[i], self.key.hk[i]);
        } else {
            self.acc = add_wide(self.acc, mul_wide(x, self.key.h[i], self.key.hk[i]));
        }
        self.first = false;
        self.left = self.left.wrapping_sub(1);
    }

    /// Adds `data`, zero-padded to whole blocks.
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2,ssse3")]
    fn absorb(&mut self, data: &[u8]) {
        let (whole, rest) = data.as_chunks::<16>();
        for b in whole {
            self.block(_mm_shuffle_epi8(load(b), self.mask));
        }
        if !rest.is_empty() {
            self.block(_mm_shuffle_epi8(load_partial(rest), self.mask));
        }
    }
}

/// E(J0) first, the AAD's GHASH (which needs no ciphertext), the
/// keystream, then the ciphertext's GHASH while it is in L1. (Hashing
/// each group of four blocks right after encrypting it measured slower:
/// four-block AES groups leave the AES unit waiting on `aesenc` latency.)
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3")]
fn gcm_seal_impl<const NK: usize>(
    key: &GHashKey,
    rk: &[__m128i; NK],
    nonce: &[u8; 12],
    aad: &[u8],
    data: &mut [u8],
    tag: &mut [u8; 16],
) {
    let mask = bswap_mask();
    let j0 = gcm_j0(nonce);
    let e = encrypt1(rk, j0);
    let mut st = State::new(key, aad.len().div_ceil(16) + data.len().div_ceil(16) + 1);
    st.absorb(aad);
    ctr_core(rk, gcm_first_counter(j0, mask), mask, data);
    st.absorb(data);
    st.block(lens_block(aad.len(), data.len()));
    store(tag, _mm_xor_si128(_mm_shuffle_epi8(st.finish(), mask), e));
}

/// The tag over `aad` and `ct`, XOR `tag`, its two halves ORed.
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3")]
fn gcm_tag_diff_impl<const NK: usize>(
    key: &GHashKey,
    rk: &[__m128i; NK],
    nonce: &[u8; 12],
    aad: &[u8],
    ct: &[u8],
    tag: &[u8; 16],
) -> u64 {
    let mask = bswap_mask();
    let e = encrypt1(rk, gcm_j0(nonce));
    let mut st = State::new(key, aad.len().div_ceil(16) + ct.len().div_ceil(16) + 1);
    st.absorb(aad);
    st.absorb(ct);
    st.block(lens_block(aad.len(), ct.len()));
    let want = _mm_xor_si128(_mm_shuffle_epi8(st.finish(), mask), e);
    let d = _mm_xor_si128(want, load(tag));
    _mm_cvtsi128_si64(_mm_or_si128(d, _mm_unpackhi_epi64(d, d))) as u64
}

/// GCM's last block, `[len(A)]64 ‖ [len(C)]64` in bits, byte-reversed
/// (the second length is then the low lane).
#[inline]
#[target_feature(enable = "sse2")]
fn lens_block(aad: usize, ct: usize) -> __m128i {
    _mm_set_epi64x((aad as u64 * 8) as i64, (ct as u64 * 8) as i64)
}

/// Plain GHASH of zero-padded `parts`, for the tests.
#[cfg(test)]
#[target_feature(enable = "pclmulqdq,sse2,ssse3")]
fn hash_impl(key: &GHashKey, parts: &[&[u8]], out: &mut [u8; 16]) {
    let mut st = State::new(key, parts.iter().map(|p| p.len().div_ceil(16)).sum());
    for p in parts {
        st.absorb(p);
    }
    store(out, _mm_shuffle_epi8(st.finish(), bswap_mask()));
}

#[cfg(test)]
mod tests {
    use ghash::universal_hash::{KeyInit, UniversalHash};

    use super::*;
    use crate::cipher::test_rng::Rng;

    fn reference(key: &[u8; 16], parts: &[&[u8]]) -> [u8; 16] {
        let mut g = ghash::GHash::new(ghash::Key::from_slice(key));
        for p in parts {
            g.update_padded(p);
        }
        g.finalize().into()
    }

    #[test]
    fn matches_ghash_crate_for_0_to_40_blocks() {
        assert!(supported(), "these tests expect a PCLMULQDQ machine");
        let mut rng = Rng(10);
        let mut data = vec![0u8; 40 * 16];
        for blocks in 0..=40usize {
            for _ in 0..4 {
                let key = rng.array::<16>();
                rng.fill(&mut data);
                let g = GHashKey::new(&key).expect("PCLMULQDQ");
                for len in [
                    blocks * 16,
                    (blocks * 16).saturating_sub(1),
                    (blocks * 16).saturating_sub(9),
                ] {
                    let d = &data[..len];
                    assert_eq!(g.hash([d, &[], &[]]), reference(&key, &[d]), "len {len} key {key:02x?}");
                }
            }
        }
    }

    #[test]
    fn padded_parts_match_ghash_crate() {
        let mut rng = Rng(11);
        let mut buf = [0u8; 300];
        rng.fill(&mut buf);
        for _ in 0..300 {
            let key = rng.array::<16>();
            let g = GHashKey::new(&key).unwrap();
            let a = (rng.next() % 45) as usize;
            let b = (rng.next() % 200) as usize;
            let c = (rng.next() % 40) as usize;
            let (pa, rest) = buf.split_at(a);
            let (pb, rest) = rest.split_at(b);
            let pc = &rest[..c];
            assert_eq!(g.hash([pa, pb, pc]), reference(&key, &[pa, pb, pc]), "{a} {b} {c}");
        }
    }

    #[test]
    fn special_keys() {
        // H = 0 hashes everything to 0; H = 1 (x^0, i.e. 0x80 first octet)
        // is the identity on a single block.
        let block = [0x5au8; 16];
        assert_eq!(GHashKey::new(&[0; 16]).unwrap().hash([&block, &[], &[]]), [0; 16]);
        let mut one = [0u8; 16];
        one[0] = 0x80;
        assert_eq!(GHashKey::new(&one).unwrap().hash([&block, &[], &[]]), block);
        assert_eq!(reference(&one, &[&block]), block);
    }
}
