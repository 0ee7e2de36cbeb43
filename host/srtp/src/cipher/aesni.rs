//! AES-128 and AES-256 with AES-NI: key expansion, one-block encryption
//! and a CTR keystream XOR that keeps the AES units busy; also GCM's
//! counter mode, and the pieces [`ghash`](super::ghash) uses to run AES
//! and GHASH in one function.
//!
//! AES-NI's `aesenc` has a latency of several cycles but issues one or
//! two per cycle, so independent blocks are encrypted side by side: eight
//! per loop iteration, and what is left (up to [`TAIL_MAX`] blocks) as one
//! more group of exactly that many blocks (a routine monomorphised per
//! group size), rather than one latency chain per leftover block.
//!
//! # Why `unsafe`, and why it is sound
//!
//! The `std::arch` intrinsics run only in functions compiled with
//! `#[target_feature(enable = ...)]`, and calling such a function is
//! `unsafe`: on a CPU without the feature it would execute an illegal
//! instruction. The only way to get an [`AesNi`] is [`Aes128Ni::new`] /
//! [`Aes256Ni::new`], which return `None` unless
//! `is_x86_feature_detected!` reported every feature the module enables
//! ([`supported`]); each safe method then enters the feature-enabled code.
//! The other `unsafe` operations are unaligned 16-byte loads and stores
//! through references to `[u8; 16]`.

use std::arch::x86_64::{
    __m128i, _mm_add_epi64, _mm_aesenc_si128, _mm_aesenclast_si128, _mm_aeskeygenassist_si128, _mm_cvtsi128_si64,
    _mm_loadu_si128, _mm_set_epi8, _mm_set_epi64x, _mm_setzero_si128, _mm_shuffle_epi8, _mm_shuffle_epi32,
    _mm_slli_si128, _mm_storeu_si128, _mm_unpackhi_epi64, _mm_xor_si128,
};

use zeroize::Zeroize;

/// The largest number of blocks encrypted as the final group of a CTR
/// call. Above it the loop takes eight blocks at a time. A group of up to
/// twelve still fits the sixteen XMM registers with the counter and the
/// byte-swap mask; a 160-octet payload (ten blocks) is then one group.
const TAIL_MAX: usize = 12;

/// Whether this CPU has everything this module's code is compiled for.
pub(crate) fn supported() -> bool {
    std::is_x86_feature_detected!("aes")
        && std::is_x86_feature_detected!("sse2")
        && std::is_x86_feature_detected!("ssse3")
}

/// An expanded AES key: `NK` round keys (11 for AES-128, 15 for AES-256),
/// wiped on drop. Built only by [`Aes128Ni::new`] and [`Aes256Ni::new`],
/// after the CPU features were detected.
#[derive(Clone)]
pub(crate) struct AesNi<const NK: usize> {
    rk: [__m128i; NK],
}

/// AES-128 with AES-NI.
pub(crate) type Aes128Ni = AesNi<11>;
/// AES-256 with AES-NI.
pub(crate) type Aes256Ni = AesNi<15>;

impl<const NK: usize> Drop for AesNi<NK> {
    fn drop(&mut self) {
        self.rk.zeroize();
    }
}

impl AesNi<11> {
    /// Expands a 128-bit key; `None` if the CPU lacks AES-NI or SSSE3.
    pub(crate) fn new(key: &[u8; 16]) -> Option<Self> {
        if !supported() {
            return None;
        }
        // SAFETY: `supported()` just confirmed the features `expand128` enables.
        Some(AesNi {
            rk: unsafe { expand128(key) },
        })
    }
}

impl AesNi<15> {
    /// Expands a 256-bit key; `None` if the CPU lacks AES-NI or SSSE3.
    pub(crate) fn new(key: &[u8; 32]) -> Option<Self> {
        if !supported() {
            return None;
        }
        // SAFETY: `supported()` just confirmed the features `expand256` enables.
        Some(AesNi {
            rk: unsafe { expand256(key) },
        })
    }
}

impl<const NK: usize> AesNi<NK> {
    /// Encrypts one block in place.
    #[inline]
    pub(crate) fn encrypt_block(&self, block: &mut [u8; 16]) {
        // SAFETY: an `AesNi` exists only if `supported()` held (see `new`).
        unsafe { encrypt_one(&self.rk, block) }
    }

    /// GCM's counter mode for a 96-bit nonce: XORs the keystream from
    /// J0 + 1 into `data` (J0 = nonce ‖ 00000001). The counter's low 64
    /// bits are incremented, which equals GCM's 32-bit increment for
    /// payloads within GCM's limit of 2^32 − 2 blocks (the caller checks it).
    #[inline]
    pub(crate) fn gcm_ctr(&self, nonce: &[u8; 12], data: &mut [u8]) {
        // SAFETY: an `AesNi` exists only if `supported()` held (see `new`).
        unsafe { gcm_ctr_impl(&self.rk, nonce, data) };
    }

    /// The round keys, for the GCM code in `ghash` that runs AES and
    /// GHASH in one feature-enabled function.
    pub(super) fn round_keys(&self) -> &[__m128i; NK] {
        &self.rk
    }

    /// XORs the CTR keystream starting at `counter` into `data`: block `i`
    /// of the keystream is `E(counter + i)`, the counter a 128-bit
    /// big-endian integer (as the `ctr` crate's `Ctr128BE`).
    ///
    /// The SIMD loop increments only the low 64 bits; this wrapper splits
    /// `data` where they wrap and carries into the high half, so the
    /// result is exact for any counter. SRTP's AES-CM IV has 16 zero low
    /// bits, so for packets the split never happens.
    pub(crate) fn ctr_xor(&self, counter: &[u8; 16], data: &mut [u8]) {
        let start = u128::from_be_bytes(*counter);
        // Blocks before the low half wraps to zero: 2^64 - lo.
        let before_wrap = (u64::MAX - start as u64) as u128 + 1;
        let (first, rest) = if (data.len() as u128).div_ceil(16) > before_wrap {
            // Only reachable with a counter within `data.len() / 16` of a
            // 64-bit wrap, never with SRTP's.
            data.split_at_mut((before_wrap * 16) as usize)
        } else {
            (data, &mut [][..])
        };
        // SAFETY: an `AesNi` exists only if `supported()` held (see `new`).
        unsafe { ctr_xor_impl(&self.rk, counter, first) };
        if !rest.is_empty() {
            let next = ((start >> 64).wrapping_add(1) << 64).to_be_bytes();
            // SAFETY: as above.
            unsafe { ctr_xor_impl(&self.rk, &next, rest) };
        }
    }
}

#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn load(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is 16 readable bytes and `loadu` needs no alignment.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn store(b: &mut [u8; 16], v: __m128i) {
    // SAFETY: `b` is 16 writable bytes and `storeu` needs no alignment.
    unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), v) }
}

/// One step of the AES key schedule: `prev` with each 32-bit word XORed
/// into the words above it (`w[i] ^= w[i-1]` running), then XOR `t`.
#[inline]
#[target_feature(enable = "sse2")]
fn schedule_step(prev: __m128i, t: __m128i) -> __m128i {
    let mut k = prev;
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    _mm_xor_si128(k, t)
}

#[target_feature(enable = "aes,sse2,ssse3")]
fn expand128(key: &[u8; 16]) -> [__m128i; 11] {
    let mut rk = [_mm_setzero_si128(); 11];
    rk[0] = load(key);
    macro_rules! round {
        ($i:literal, $rcon:literal) => {
            // RotWord(SubWord(w3)) ^ rcon, broadcast to all four words.
            let t = _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>(rk[$i - 1]));
            rk[$i] = schedule_step(rk[$i - 1], t);
        };
    }
    round!(1, 0x01);
    round!(2, 0x02);
    round!(3, 0x04);
    round!(4, 0x08);
    round!(5, 0x10);
    round!(6, 0x20);
    round!(7, 0x40);
    round!(8, 0x80);
    round!(9, 0x1b);
    round!(10, 0x36);
    rk
}

#[target_feature(enable = "aes,sse2,ssse3")]
fn expand256(key: &[u8; 32]) -> [__m128i; 15] {
    let mut rk = [_mm_setzero_si128(); 15];
    let (halves, _) = key.as_chunks::<16>();
    rk[0] = load(&halves[0]);
    rk[1] = load(&halves[1]);
    macro_rules! even {
        // Words 8i..8i+3: RotWord(SubWord(last word)) ^ rcon.
        ($i:literal, $rcon:literal) => {
            let t = _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>(rk[$i - 1]));
            rk[$i] = schedule_step(rk[$i - 2], t);
        };
    }
    macro_rules! odd {
        // Words 8i+4..8i+7: SubWord(last word), no rotation, no rcon.
        ($i:literal) => {
            let t = _mm_shuffle_epi32::<0xaa>(_mm_aeskeygenassist_si128::<0>(rk[$i - 1]));
            rk[$i] = schedule_step(rk[$i - 2], t);
        };
    }
    even!(2, 0x01);
    odd!(3);
    even!(4, 0x02);
    odd!(5);
    even!(6, 0x04);
    odd!(7);
    even!(8, 0x08);
    odd!(9);
    even!(10, 0x10);
    odd!(11);
    even!(12, 0x20);
    odd!(13);
    even!(14, 0x40);
    rk
}

/// Encrypts `N` independent blocks, round by round across all of them so
/// that the `aesenc` latencies overlap.
#[inline]
#[target_feature(enable = "aes,sse2")]
fn encrypt_n<const NK: usize, const N: usize>(rk: &[__m128i; NK], b: &mut [__m128i; N]) {
    for x in b.iter_mut() {
        *x = _mm_xor_si128(*x, rk[0]);
    }
    for k in &rk[1..NK - 1] {
        for x in b.iter_mut() {
            *x = _mm_aesenc_si128(*x, *k);
        }
        for x in b.iter_mut() {
            keep(x);
        }
    }
    for x in b.iter_mut() {
        *x = _mm_aesenclast_si128(*x, rk[NK - 1]);
    }
}

/// An empty `asm!` that takes `x` in a register and gives it back: a
/// scheduling fence. Without it LLVM reorders an `N`-block group into
/// shorter runs (to save registers), which leaves the AES unit idle on
/// the `aesenc` latency; with it every round of every block is issued
/// before the next round of any block, as written.
#[inline(always)]
fn keep(x: &mut __m128i) {
    // SAFETY: the template is empty: no instruction runs, no memory, stack
    // or flags are touched; the register keeps its value.
    unsafe {
        std::arch::asm!(
            "/* {0} */",
            inout(xmm_reg) * x,
            options(nomem, nostack, preserves_flags)
        )
    }
}

#[target_feature(enable = "aes,sse2,ssse3")]
fn encrypt_one<const NK: usize>(rk: &[__m128i; NK], block: &mut [u8; 16]) {
    let mut b = [load(block)];
    encrypt_n(rk, &mut b);
    store(block, b[0]);
}

/// The `pshufb` mask that reverses the 16 bytes of a block: a big-endian
/// counter becomes a little-endian one whose low 64 bits are lane 0.
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn bswap_mask() -> __m128i {
    _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
}

/// Counter blocks `ctr + 0 .. ctr + N` (low 64 bits incremented), with
/// `ctr` byte-reversed and the results back in big-endian block order.
#[inline]
#[target_feature(enable = "sse2,ssse3")]
fn counters<const N: usize>(ctr: __m128i, mask: __m128i) -> [__m128i; N] {
    let mut b = [_mm_setzero_si128(); N];
    for (i, x) in b.iter_mut().enumerate() {
        *x = _mm_shuffle_epi8(_mm_add_epi64(ctr, _mm_set_epi64x(0, i as i64)), mask);
    }
    b
}

/// Up to eight octets as a little-endian integer, read with at most two
/// (overlapping) fixed-size loads rather than a `memcpy` call.
#[inline]
fn read_le(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 8 {
        u64::from_le_bytes(b[..8].try_into().unwrap_or_default())
    } else if n >= 4 {
        let lo = u32::from_le_bytes(b[..4].try_into().unwrap_or_default());
        let hi = u32::from_le_bytes(b[n - 4..].try_into().unwrap_or_default());
        u64::from(lo) | (u64::from(hi) << ((n - 4) * 8))
    } else if n >= 2 {
        let lo = u16::from_le_bytes(b[..2].try_into().unwrap_or_default());
        let hi = u16::from_le_bytes(b[n - 2..].try_into().unwrap_or_default());
        u64::from(lo) | (u64::from(hi) << ((n - 2) * 8))
    } else {
        b.first().copied().map_or(0, u64::from)
    }
}

/// Writes the low `d.len()` (at most eight) octets of `v`, little-endian,
/// with at most two (overlapping) fixed-size stores.
#[inline]
fn write_le(d: &mut [u8], v: u64) {
    let n = d.len();
    if n >= 8 {
        d[..8].copy_from_slice(&v.to_le_bytes());
    } else if n >= 4 {
        d[..4].copy_from_slice(&(v as u32).to_le_bytes());
        d[n - 4..].copy_from_slice(&((v >> ((n - 4) * 8)) as u32).to_le_bytes());
    } else if n >= 2 {
        d[..2].copy_from_slice(&(v as u16).to_le_bytes());
        d[n - 2..].copy_from_slice(&((v >> ((n - 2) * 8)) as u16).to_le_bytes());
    } else if let Some(x) = d.first_mut() {
        *x = v as u8;
    }
}

/// A block shorter than 16 octets, zero-padded, built in registers (a
/// padded copy on the stack would stall the 16-octet load that follows
/// its narrower stores).
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn load_partial(b: &[u8]) -> __m128i {
    let (lo, hi) = match b.split_at_checked(8) {
        Some((lo, hi)) => (read_le(lo), read_le(hi)),
        None => (read_le(b), 0),
    };
    _mm_set_epi64x(hi as i64, lo as i64)
}

/// XORs keystream block `k` into `d`, the last block of a message
/// (fewer than 16 octets).
#[inline]
#[target_feature(enable = "sse2")]
fn xor_partial(d: &mut [u8], k: __m128i) {
    let v = _mm_xor_si128(load_partial(d), k);
    let lo = _mm_cvtsi128_si64(v) as u64;
    let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v)) as u64;
    match d.split_at_mut_checked(8) {
        Some((a, b)) => {
            write_le(a, lo);
            write_le(b, hi);
        }
        None => write_le(d, lo),
    }
}

/// The last group: `data` is `N` blocks, the last possibly partial.
#[inline]
#[target_feature(enable = "aes,sse2,ssse3")]
fn tail<const NK: usize, const N: usize>(rk: &[__m128i; NK], ctr: __m128i, mask: __m128i, data: &mut [u8]) {
    let mut b = counters::<N>(ctr, mask);
    encrypt_n(rk, &mut b);
    let (blocks, last) = data.as_chunks_mut::<16>();
    for (d, k) in blocks.iter_mut().zip(b) {
        let v = _mm_xor_si128(load(d), k);
        store(d, v);
    }
    if !last.is_empty() {
        xor_partial(last, b[N - 1]);
    }
}

#[target_feature(enable = "aes,sse2,ssse3")]
fn ctr_xor_impl<const NK: usize>(rk: &[__m128i; NK], counter: &[u8; 16], data: &mut [u8]) {
    let mask = bswap_mask();
    ctr_core(rk, _mm_shuffle_epi8(load(counter), mask), mask, data);
}

#[target_feature(enable = "aes,sse2,ssse3")]
fn gcm_ctr_impl<const NK: usize>(rk: &[__m128i; NK], nonce: &[u8; 12], data: &mut [u8]) {
    let mask = bswap_mask();
    ctr_core(rk, gcm_first_counter(gcm_j0(nonce), mask), mask, data);
}

/// GCM's J0 = nonce ‖ 00000001 for a 96-bit nonce, as a block (built in
/// registers, not in a stack array whose 16-octet load would wait for
/// the narrower stores that filled it).
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn gcm_j0(nonce: &[u8; 12]) -> __m128i {
    let (n0, n1) = nonce.split_at(8);
    _mm_set_epi64x((read_le(n1) | (1 << 56)) as i64, read_le(n0) as i64)
}

/// J0 + 1, the first payload counter, byte-reversed for [`ctr_core`].
#[inline]
#[target_feature(enable = "sse2,ssse3")]
pub(super) fn gcm_first_counter(j0: __m128i, mask: __m128i) -> __m128i {
    _mm_add_epi64(_mm_shuffle_epi8(j0, mask), _mm_set_epi64x(0, 1))
}

/// Encrypts one block held in a register.
#[inline]
#[target_feature(enable = "aes,sse2")]
pub(super) fn encrypt1<const NK: usize>(rk: &[__m128i; NK], b: __m128i) -> __m128i {
    let mut x = [b];
    encrypt_n(rk, &mut x);
    x[0]
}

/// XORs the keystream of the `N` counter blocks from `ctr` (byte-reversed,
/// see [`ctr_core`]) into the `N` whole blocks `data`, and advances `ctr`.
#[inline]
#[target_feature(enable = "aes,sse2,ssse3")]
fn ctr_blocks<const NK: usize, const N: usize>(
    rk: &[__m128i; NK],
    ctr: &mut __m128i,
    mask: __m128i,
    data: &mut [[u8; 16]; N],
) {
    let mut b = counters::<N>(*ctr, mask);
    *ctr = _mm_add_epi64(*ctr, _mm_set_epi64x(0, N as i64));
    encrypt_n(rk, &mut b);
    for (d, k) in data.iter_mut().zip(b) {
        let v = _mm_xor_si128(load(d), k);
        store(d, v);
    }
}

/// The CTR loop: `ctr` is the first counter block byte-reversed (its low
/// 64 bits in lane 0, which is what is incremented).
#[inline]
#[target_feature(enable = "aes,sse2,ssse3")]
pub(super) fn ctr_core<const NK: usize>(rk: &[__m128i; NK], mut ctr: __m128i, mask: __m128i, data: &mut [u8]) {
    // Eight blocks at a time while more than `TAIL_MAX` blocks are left.
    // (A while loop measured faster than splitting off whole groups first.)
    let mut rest = data;
    while rest.len() > TAIL_MAX * 16 {
        let (group, r) = std::mem::take(&mut rest).split_at_mut(128);
        rest = r;
        let (blocks, _) = group.as_chunks_mut::<16>();
        if let Ok(g) = <&mut [[u8; 16]; 8]>::try_from(blocks) {
            ctr_blocks(rk, &mut ctr, mask, g);
        }
    }
    macro_rules! tails {
        ($($n:literal)*) => {
            match rest.len().div_ceil(16) {
                $($n => tail::<NK, $n>(rk, ctr, mask, rest),)*
                _ => {}
            }
        };
    }
    tails!(1 2 3 4 5 6 7 8 9 10 11 12);
}

#[cfg(test)]
mod tests {
    use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};

    use super::*;
    use crate::cipher::test_rng::Rng;

    #[test]
    fn aes128_block_matches_aes_crate() {
        assert!(supported(), "these tests expect an AES-NI machine");
        let mut rng = Rng(1);
        // FIPS-197 C.1 first, then random keys and blocks.
        let mut keys = vec![core::array::from_fn::<u8, 16, _>(|i| i as u8)];
        keys.extend((0..20).map(|_| rng.array::<16>()));
        for key in keys {
            let ni = Aes128Ni::new(&key).expect("AES-NI");
            let rc = aes::Aes128::new(&key.into());
            for _ in 0..8 {
                let mut a = rng.array::<16>();
                let mut b = a.into();
                ni.encrypt_block(&mut a);
                rc.encrypt_block(&mut b);
                assert_eq!(a, <[u8; 16]>::from(b), "key {key:02x?}");
            }
        }
        let fips = Aes128Ni::new(&core::array::from_fn(|i| i as u8)).expect("AES-NI");
        let mut b: [u8; 16] = core::array::from_fn(|i| (i as u8) * 0x11);
        fips.encrypt_block(&mut b);
        assert_eq!(b, *b"\x69\xc4\xe0\xd8\x6a\x7b\x04\x30\xd8\xcd\xb7\x80\x70\xb4\xc5\x5a");
    }

    #[test]
    fn aes256_block_matches_aes_crate() {
        let mut rng = Rng(2);
        for _ in 0..20 {
            let key = rng.array::<32>();
            let ni = Aes256Ni::new(&key).expect("AES-NI");
            let rc = aes::Aes256::new(&key.into());
            for _ in 0..8 {
                let mut a = rng.array::<16>();
                let mut b = a.into();
                ni.encrypt_block(&mut a);
                rc.encrypt_block(&mut b);
                assert_eq!(a, <[u8; 16]>::from(b), "key {key:02x?}");
            }
        }
        // FIPS-197 C.3.
        let fips = Aes256Ni::new(&core::array::from_fn(|i| i as u8)).expect("AES-NI");
        let mut b: [u8; 16] = core::array::from_fn(|i| (i as u8) * 0x11);
        fips.encrypt_block(&mut b);
        assert_eq!(b, *b"\x8e\xa2\xb7\xca\x51\x67\x45\xbf\xea\xfc\x49\x90\x4b\x49\x60\x89");
    }

    fn reference_ctr(key: &[u8], iv: &[u8; 16], data: &mut [u8]) {
        match key.len() {
            16 => ctr::Ctr128BE::<aes::Aes128>::new(key.into(), iv.into()).apply_keystream(data),
            32 => ctr::Ctr128BE::<aes::Aes256>::new(key.into(), iv.into()).apply_keystream(data),
            _ => unreachable!(),
        }
    }

    fn check_ctr(key: &[u8], iv: &[u8; 16], data: &[u8], offset: usize) {
        // `offset` shifts the data in its buffer so loads and stores are
        // unaligned in every way.
        let mut buf = vec![0xEEu8; data.len() + offset + 3];
        buf[offset..offset + data.len()].copy_from_slice(data);
        let mut want = buf.clone();
        reference_ctr(key, iv, &mut want[offset..offset + data.len()]);
        match key.len() {
            16 => Aes128Ni::new(key.try_into().unwrap())
                .unwrap()
                .ctr_xor(iv, &mut buf[offset..offset + data.len()]),
            _ => Aes256Ni::new(key.try_into().unwrap())
                .unwrap()
                .ctr_xor(iv, &mut buf[offset..offset + data.len()]),
        }
        assert_eq!(buf, want, "len {} offset {offset} iv {iv:02x?}", data.len());
    }

    #[test]
    fn ctr_matches_ctr_crate_for_every_length() {
        let mut rng = Rng(3);
        for key_len in [16, 32] {
            for len in 0..=300 {
                let mut key = vec![0u8; key_len];
                rng.fill(&mut key);
                let mut iv = rng.array::<16>();
                if len % 2 == 0 {
                    // SRTP-shaped: 16 zero low bits.
                    iv[14] = 0;
                    iv[15] = 0;
                }
                let mut data = vec![0u8; len];
                rng.fill(&mut data);
                check_ctr(&key, &iv, &data, len % 7);
            }
        }
    }

    #[test]
    fn ctr_carries_like_a_128_bit_counter() {
        let mut rng = Rng(4);
        let key = rng.array::<16>();
        let mut data = vec![0u8; 40 * 16 + 5];
        rng.fill(&mut data);
        // Carries out of the low 32 bits, out of the low 64 bits (which
        // the wrapper splits), and out of all 128.
        for (hi, lo) in [
            (7u64, 0xffff_fffeu64),
            (7, u64::MAX),
            (7, u64::MAX - 3),
            (7, u64::MAX - 20),
            (u64::MAX, u64::MAX - 1),
        ] {
            let mut iv = [0u8; 16];
            iv[..8].copy_from_slice(&hi.to_be_bytes());
            iv[8..].copy_from_slice(&lo.to_be_bytes());
            for len in [1, 16, 17, 100, 200, data.len()] {
                check_ctr(&key, &iv, &data[..len], 1);
            }
        }
    }
}
