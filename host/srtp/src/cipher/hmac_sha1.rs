//! HMAC-SHA1 (RFC 2104) with both pads absorbed once per session key.
//!
//! The `hmac` crate's `Hmac<Sha1>` does the same job; cloning it per packet
//! costs about 40 ns more on a 172-octet packet (state and block-buffer
//! copies, two buffered finalisations) than driving the SHA-1 compression
//! function (`sha1::compress`, SHA-NI when the CPU has it) directly: the
//! packet's whole blocks are compressed straight from the caller's buffer
//! and only the last partial block, the ROC and the padding go through a
//! stack block. [`HmacSha1::mac2`] computes two MACs with their blocks
//! interleaved (`sha1_x2`), for batches. Unit tests check both against
//! `hmac`.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::sha1_x2::{Blocks, compress1, compress2};

const H0: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
const BLOCK: usize = 64;

/// HMAC-SHA1 keyed once: the SHA-1 states after the ipad and opad blocks.
/// They are as secret as the key, so they are wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct HmacSha1 {
    inner: [u32; 5],
    outer: [u32; 5],
}

/// The blocks the inner hash compresses after the ipad block: the data's
/// whole blocks straight from the caller's buffer, then a stack tail with
/// the last partial block, the suffix (ROC), `0x80` and the bit length.
struct InnerBlocks<'a> {
    whole: &'a [[u8; BLOCK]],
    tail: [[u8; BLOCK]; 2],
    tail_blocks: usize,
}

impl<'a> InnerBlocks<'a> {
    #[inline]
    fn new(data: &'a [u8], suffix: &[u8]) -> InnerBlocks<'a> {
        debug_assert!(suffix.len() <= 8);
        let suffix = &suffix[..suffix.len().min(8)];
        let (whole, rem) = data.as_chunks::<BLOCK>();
        // rem < 64, suffix <= 8, then 0x80 and the 8-octet length: two
        // blocks at most.
        let mut tail = [[0u8; BLOCK]; 2];
        let flat = tail.as_flattened_mut();
        flat[..rem.len()].copy_from_slice(rem);
        let t = rem.len() + suffix.len();
        flat[rem.len()..t].copy_from_slice(suffix);
        flat[t] = 0x80;
        let end = if t + 9 <= BLOCK { BLOCK } else { 2 * BLOCK };
        let bits = ((BLOCK + data.len() + suffix.len()) as u64) * 8;
        flat[end - 8..end].copy_from_slice(&bits.to_be_bytes());
        InnerBlocks {
            whole,
            tail,
            tail_blocks: end / BLOCK,
        }
    }

    #[inline]
    fn iter(&self) -> impl Iterator<Item = &[u8; BLOCK]> {
        self.whole.iter().chain(&self.tail[..self.tail_blocks])
    }

    #[inline]
    fn runs(&self) -> Blocks<'_> {
        (self.whole, &self.tail[..self.tail_blocks])
    }
}

/// The outer hash's one block: the inner digest, `0x80`, the bit length.
#[inline]
fn outer_block(inner: [u32; 5]) -> [u8; BLOCK] {
    let mut ob = [0u8; BLOCK];
    for (o, w) in ob.chunks_exact_mut(4).zip(inner) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    ob[20] = 0x80;
    ob[56..].copy_from_slice(&(((BLOCK + 20) as u64) * 8).to_be_bytes());
    ob
}

#[inline]
fn digest(state: [u32; 5]) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

impl HmacSha1 {
    /// Keys the MAC. Keys longer than a block are not needed by SRTP (its
    /// auth keys are 20 octets) and are hashed first as RFC 2104 says.
    pub(crate) fn new(key: &[u8]) -> HmacSha1 {
        let mut k = [0u8; BLOCK];
        if key.len() > BLOCK {
            use sha1::Digest;
            k[..20].copy_from_slice(&sha1::Sha1::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut pad = [0u8; BLOCK];
        let mut inner = H0;
        for (p, x) in pad.iter_mut().zip(&k) {
            *p = x ^ 0x36;
        }
        compress1(&mut inner, &pad);
        let mut outer = H0;
        for (p, x) in pad.iter_mut().zip(&k) {
            *p = x ^ 0x5C;
        }
        compress1(&mut outer, &pad);
        k.zeroize();
        pad.zeroize();
        HmacSha1 { inner, outer }
    }

    /// HMAC-SHA1 of `data ‖ suffix`, `suffix` at most 8 octets (the ROC).
    #[inline]
    pub(crate) fn mac(&self, data: &[u8], suffix: &[u8]) -> [u8; 20] {
        let blocks = InnerBlocks::new(data, suffix);
        let mut st = self.inner;
        for b in blocks.iter() {
            compress1(&mut st, b);
        }
        let mut out = self.outer;
        compress1(&mut out, &outer_block(st));
        digest(out)
    }

    /// Two HMACs at once, `a` keyed with `self` and `b` with `other`
    /// (possibly the same key): the same results as two [`mac`](Self::mac)
    /// calls, with the two messages' SHA-1 blocks compressed side by side
    /// (see `sha1_x2` for why that is faster).
    #[inline]
    pub(crate) fn mac2(&self, a: (&[u8], &[u8]), other: &HmacSha1, b: (&[u8], &[u8])) -> ([u8; 20], [u8; 20]) {
        let (ba, bb) = (InnerBlocks::new(a.0, a.1), InnerBlocks::new(b.0, b.1));
        let (mut sa, mut sb) = (self.inner, other.inner);
        compress2(&mut sa, ba.runs(), &mut sb, bb.runs());
        let (mut oa, mut ob) = (self.outer, other.outer);
        let (xa, xb) = ([outer_block(sa)], [outer_block(sb)]);
        compress2(&mut oa, (&xa, &[]), &mut ob, (&xb, &[]));
        (digest(oa), digest(ob))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};

    #[test]
    fn matches_the_hmac_crate() {
        let data: Vec<u8> = (0..1400u32).map(|i| (i * 131 % 251) as u8).collect();
        for key_len in [0usize, 1, 20, 64, 65, 100] {
            let key: Vec<u8> = (0..key_len).map(|i| i as u8 ^ 0x5A).collect();
            let ours = HmacSha1::new(&key);
            for len in (0..200).chain([1212, 1216, 1399]) {
                for suffix in [&[][..], &[1, 2, 3, 4][..], &[9; 8][..]] {
                    let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&key).unwrap();
                    m.update(&data[..len]);
                    m.update(suffix);
                    let want: [u8; 20] = m.finalize().into_bytes().into();
                    assert_eq!(
                        ours.mac(&data[..len], suffix),
                        want,
                        "key {key_len} len {len} suffix {}",
                        suffix.len()
                    );
                }
            }
        }
    }

    #[test]
    fn two_at_once_match_one_at_a_time() {
        let data: Vec<u8> = (0..400u32).map(|i| (i * 7 % 253) as u8).collect();
        let ka = HmacSha1::new(&[1; 20]);
        let kb = HmacSha1::new(&[2; 20]);
        for la in (0..140).step_by(3).chain([172, 176, 300]) {
            for lb in [0usize, 1, 55, 56, 64, 119, 120, 172, 399] {
                let a = (&data[..la], &[0, 0, 0, 7][..]);
                let b = (&data[data.len() - lb..], &[][..]);
                assert_eq!(ka.mac2(a, &kb, b), (ka.mac(a.0, a.1), kb.mac(b.0, b.1)), "{la} {lb}");
                assert_eq!(ka.mac2(a, &ka, a).1, ka.mac(a.0, a.1));
            }
        }
    }

    #[test]
    fn rfc2202_case_1() {
        let m = HmacSha1::new(&[0x0b; 20]).mac(b"Hi There", &[]);
        let hex: String = m.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "b617318655057264e28bc0b6fb378c8ef146be00");
    }
}
