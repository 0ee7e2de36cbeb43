//! Two SHA-1 compressions at once, for HMACs of two packets in one pass.
//!
//! Why: with SHA-NI a single SHA-1 block is a chain of twenty dependent
//! `sha1rnds4` instructions, so one message runs at the instruction's
//! latency (about 120 cycles per block on Zen), not its throughput. Two
//! independent messages interleaved fill the gaps: measured on the
//! project's EPYC, one block costs 54 ns alone and two blocks 70 ns
//! together. A 172-octet SRTP packet's HMAC is four blocks, so this is
//! most of the difference between single and batched protection.
//!
//! This is the crate's only hand-written SHA code and one of the two
//! places with `unsafe` (intrinsics). Soundness rests on one check: the
//! intrinsics run only after `cpufeatures` confirmed SHA, SSE2, SSSE3 and
//! SSE4.1 at run time (the same set the `sha1` crate checks); otherwise
//! each block goes through `sha1::compress`, which picks its own best
//! implementation. The unit tests compare against `sha1::compress`.

use sha1::digest::generic_array::GenericArray;

/// One SHA-1 compression of `block` into `state`.
#[inline]
pub(crate) fn compress1(state: &mut [u32; 5], block: &[u8; 64]) {
    sha1::compress(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

#[cfg(target_arch = "x86_64")]
cpufeatures::new!(shani, "sha", "sse2", "ssse3", "sse4.1");

/// A message's blocks in two runs: whole blocks straight from the
/// caller's buffer, then blocks of a padded tail.
pub(crate) type Blocks<'a> = (&'a [[u8; 64]], &'a [[u8; 64]]);

#[inline(always)]
fn block<'a>(m: Blocks<'a>, i: usize) -> &'a [u8; 64] {
    match m.0.get(i) {
        Some(b) => b,
        None => &m.1[i - m.0.len()],
    }
}

/// Compresses the blocks of `a` into `sa` and those of `b` into `sb`: two
/// independent chains, interleaved while both have blocks left.
#[inline]
pub(crate) fn compress2(sa: &mut [u32; 5], a: Blocks<'_>, sb: &mut [u32; 5], b: Blocks<'_>) {
    let (na, nb) = (a.0.len() + a.1.len(), b.0.len() + b.1.len());
    let both = na.min(nb);
    #[cfg(target_arch = "x86_64")]
    let done = if shani::get() {
        // SAFETY: the CPU supports every feature `x86::compress2` enables
        // (checked just above); `block` only hands it whole 64-octet
        // arrays, and it writes only the two states.
        #[allow(unsafe_code)]
        unsafe {
            x86::compress2(sa, sb, both, |i| (block(a, i), block(b, i)))
        };
        both
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for i in done..na {
        compress1(sa, block(a, i));
    }
    for i in done..nb {
        compress1(sb, block(b, i));
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;

    /// Loads a state as SHA-NI wants it: ABCD with A in the top lane, E
    /// alone in the top lane of a second register.
    #[inline(always)]
    unsafe fn load_state(s: &[u32; 5]) -> (__m128i, __m128i) {
        // SAFETY (callers): SSE2 is enabled by the caller's target features.
        unsafe {
            (
                _mm_set_epi32(s[0] as i32, s[1] as i32, s[2] as i32, s[3] as i32),
                _mm_set_epi32(s[4] as i32, 0, 0, 0),
            )
        }
    }

    #[inline(always)]
    unsafe fn store_state(s: &mut [u32; 5], abcd: __m128i, e: __m128i) {
        // SAFETY (callers): SSE4.1 (`pextrd`) is enabled by the caller.
        unsafe {
            s[0] = _mm_extract_epi32::<3>(abcd) as u32;
            s[1] = _mm_extract_epi32::<2>(abcd) as u32;
            s[2] = _mm_extract_epi32::<1>(abcd) as u32;
            s[3] = _mm_extract_epi32::<0>(abcd) as u32;
            s[4] = _mm_extract_epi32::<3>(e) as u32;
        }
    }

    /// The message words of a block, big-endian, W0 in the top lane.
    #[inline(always)]
    unsafe fn load_block(b: &[u8; 64]) -> [__m128i; 4] {
        // SAFETY (callers): SSE2/SSSE3 enabled by the caller; every load is
        // an unaligned 16-octet read inside the 64-octet array.
        unsafe {
            let mask = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0A0B_0C0D_0E0F);
            let p = b.as_ptr();
            [
                _mm_shuffle_epi8(_mm_loadu_si128(p.cast()), mask),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(16).cast()), mask),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(32).cast()), mask),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(48).cast()), mask),
            ]
        }
    }

    /// `n` blocks of two messages (`blocks(i)` gives the i-th of each),
    /// their rounds interleaved instruction by instruction, the states
    /// kept in registers from block to block. Round group `i` (rounds
    /// 4i..4i+3) uses schedule vector `W[i]`; `W[i] = msg2(msg1(W[i-4],
    /// W[i-3]) ^ W[i-2], W[i-1])` for `i >= 4`, kept in a ring of four
    /// registers per message.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[allow(unused_assignments)] // the last group's schedule store is dead
    pub(super) unsafe fn compress2<'a>(
        sa: &mut [u32; 5],
        sb: &mut [u32; 5],
        n: usize,
        blocks: impl Fn(usize) -> (&'a [u8; 64], &'a [u8; 64]),
    ) {
        // SAFETY: this function's target features are enabled (the caller
        // checked them at run time); the helpers only touch the arguments.
        unsafe {
            let (mut abcd_a, mut e_a) = load_state(sa);
            let (mut abcd_b, mut e_b) = load_state(sb);
            for i in 0..n {
                let (ba, bb) = blocks(i);
                (abcd_a, e_a, abcd_b, e_b) = two_blocks(abcd_a, e_a, ba, abcd_b, e_b, bb);
            }
            store_state(sa, abcd_a, e_a);
            store_state(sb, abcd_b, e_b);
        }
    }

    /// One block of each message; returns the new ABCD and E of each.
    #[inline(always)]
    #[allow(unused_assignments)] // the last group's schedule store is dead
    unsafe fn two_blocks(
        mut abcd_a: __m128i,
        e_a: __m128i,
        ba: &[u8; 64],
        mut abcd_b: __m128i,
        e_b: __m128i,
        bb: &[u8; 64],
    ) -> (__m128i, __m128i, __m128i, __m128i) {
        // SAFETY (callers): SHA, SSE2, SSSE3 and SSE4.1 are enabled by
        // the caller's target features.
        unsafe {
            let (save_a, save_b) = (abcd_a, abcd_b);
            let mut wa = load_block(ba);
            let mut wb = load_block(bb);
            let mut prev_a = abcd_a;
            let mut prev_b = abcd_b;
            abcd_a = _mm_sha1rnds4_epu32::<0>(abcd_a, _mm_add_epi32(e_a, wa[0]));
            abcd_b = _mm_sha1rnds4_epu32::<0>(abcd_b, _mm_add_epi32(e_b, wb[0]));
            macro_rules! group {
                ($i:literal, $f:literal) => {{
                    let (xa, xb) = if $i < 4 {
                        (wa[$i % 4], wb[$i % 4])
                    } else {
                        let xa = _mm_sha1msg2_epu32(
                            _mm_xor_si128(_mm_sha1msg1_epu32(wa[$i % 4], wa[($i + 1) % 4]), wa[($i + 2) % 4]),
                            wa[($i + 3) % 4],
                        );
                        let xb = _mm_sha1msg2_epu32(
                            _mm_xor_si128(_mm_sha1msg1_epu32(wb[$i % 4], wb[($i + 1) % 4]), wb[($i + 2) % 4]),
                            wb[($i + 3) % 4],
                        );
                        wa[$i % 4] = xa;
                        wb[$i % 4] = xb;
                        (xa, xb)
                    };
                    let ea = _mm_sha1nexte_epu32(prev_a, xa);
                    let eb = _mm_sha1nexte_epu32(prev_b, xb);
                    prev_a = abcd_a;
                    prev_b = abcd_b;
                    abcd_a = _mm_sha1rnds4_epu32::<$f>(abcd_a, ea);
                    abcd_b = _mm_sha1rnds4_epu32::<$f>(abcd_b, eb);
                }};
            }
            group!(1, 0);
            group!(2, 0);
            group!(3, 0);
            group!(4, 0);
            group!(5, 1);
            group!(6, 1);
            group!(7, 1);
            group!(8, 1);
            group!(9, 1);
            group!(10, 2);
            group!(11, 2);
            group!(12, 2);
            group!(13, 2);
            group!(14, 2);
            group!(15, 3);
            group!(16, 3);
            group!(17, 3);
            group!(18, 3);
            group!(19, 3);
            (
                _mm_add_epi32(abcd_a, save_a),
                _mm_sha1nexte_epu32(prev_a, e_a),
                _mm_add_epi32(abcd_b, save_b),
                _mm_sha1nexte_epu32(prev_b, e_b),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_chains_match_sha1_compress() {
        let mut sa = [1, 2, 3, 4, 5];
        let mut ra = sa;
        let mut sb = [6, 7, 8, 9, 10];
        let rb = sb;
        // Unequal lengths: the longer message finishes alone.
        compress2(&mut sa, (&[[7; 64], [8; 64]], &[]), &mut sb, (&[], &[]));
        compress1(&mut ra, &[7; 64]);
        compress1(&mut ra, &[8; 64]);
        assert_eq!((sa, sb), (ra, rb));
        let mut x = 0x1234_5678u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..200 {
            let mut ba = [0u8; 64];
            let mut bb = [0u8; 64];
            ba.iter_mut().chain(bb.iter_mut()).for_each(|b| *b = next() as u8);
            let mut sa = [next(), next(), next(), next(), next()];
            let mut sb = [next(), next(), next(), next(), next()];
            let (mut ra, mut rb) = (sa, sb);
            compress2(&mut sa, (&[ba, bb], &[ba]), &mut sb, (&[bb], &[ba, ba]));
            for blk in [ba, bb, ba] {
                compress1(&mut ra, &blk);
            }
            for blk in [bb, ba, ba] {
                compress1(&mut rb, &blk);
            }
            assert_eq!((sa, sb), (ra, rb));
        }
    }
}
