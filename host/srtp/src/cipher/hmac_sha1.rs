//! HMAC-SHA1 (RFC 2104) with both pads absorbed once per session key.
//!
//! The `hmac` crate's `Hmac<Sha1>` does the same job; cloning it per packet
//! costs about 40 ns more on a 172-octet packet (state and block-buffer
//! copies, two buffered finalisations) than driving the SHA-1 compression
//! function (`sha1::compress`, SHA-NI when the CPU has it) directly: the
//! packet's whole blocks are compressed straight from the caller's buffer
//! and only the last partial block, the ROC and the padding go through a
//! stack block. Unit tests check it against `hmac`.

use sha1::digest::generic_array::GenericArray;
use zeroize::{Zeroize, ZeroizeOnDrop};

const H0: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
const BLOCK: usize = 64;

/// HMAC-SHA1 keyed once: the SHA-1 states after the ipad and opad blocks.
/// They are as secret as the key, so they are wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct HmacSha1 {
    inner: [u32; 5],
    outer: [u32; 5],
}

#[inline]
fn compress(state: &mut [u32; 5], block: &[u8]) {
    sha1::compress(state, std::slice::from_ref(GenericArray::from_slice(block)));
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
        compress(&mut inner, &pad);
        let mut outer = H0;
        for (p, x) in pad.iter_mut().zip(&k) {
            *p = x ^ 0x5C;
        }
        compress(&mut outer, &pad);
        k.zeroize();
        pad.zeroize();
        HmacSha1 { inner, outer }
    }

    /// HMAC-SHA1 of `data ‖ suffix`, `suffix` at most 8 octets (the ROC).
    #[inline]
    pub(crate) fn mac(&self, data: &[u8], suffix: &[u8]) -> [u8; 20] {
        debug_assert!(suffix.len() <= 8);
        let suffix = &suffix[..suffix.len().min(8)];
        let mut st = self.inner;
        let mut blocks = data.chunks_exact(BLOCK);
        for b in &mut blocks {
            compress(&mut st, b);
        }
        let rem = blocks.remainder();
        // rem < 64, suffix <= 8, then 0x80 and the 8-octet length: two
        // blocks at most.
        let mut tail = [0u8; 2 * BLOCK];
        tail[..rem.len()].copy_from_slice(rem);
        let t = rem.len() + suffix.len();
        tail[rem.len()..t].copy_from_slice(suffix);
        tail[t] = 0x80;
        let end = if t + 9 <= BLOCK { BLOCK } else { 2 * BLOCK };
        let bits = ((BLOCK + data.len() + suffix.len()) as u64) * 8;
        tail[end - 8..end].copy_from_slice(&bits.to_be_bytes());
        for b in tail[..end].chunks_exact(BLOCK) {
            compress(&mut st, b);
        }
        let mut ob = [0u8; BLOCK];
        for (o, w) in ob.chunks_exact_mut(4).zip(st) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        ob[20] = 0x80;
        ob[56..].copy_from_slice(&(((BLOCK + 20) as u64) * 8).to_be_bytes());
        let mut out_st = self.outer;
        compress(&mut out_st, &ob);
        let mut out = [0u8; 20];
        for (o, w) in out.chunks_exact_mut(4).zip(out_st) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
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
    fn rfc2202_case_1() {
        let m = HmacSha1::new(&[0x0b; 20]).mac(b"Hi There", &[]);
        let hex: String = m.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "b617318655057264e28bc0b6fb378c8ef146be00");
    }
}
