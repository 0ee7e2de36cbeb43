//! AES-GCM AEAD (RFC 7714).
//!
//! SRTP:  `header ‖ ciphertext ‖ tag(16) ‖ [MKI]`, header as AAD.
//! SRTCP: `header(8) ‖ ciphertext ‖ tag(16) ‖ E‖index ‖ [MKI]`, AAD = header(8) ‖ E‖index;
//! with E clear the whole RTCP packet ‖ E‖index is AAD and nothing is encrypted.
//! The MKI goes last, after the tag, as in libsrtp.

use aes::{Aes128, Aes256};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::U12;
use aes_gcm::{AesGcm, KeyInit, Nonce, Tag};

#[cfg(target_arch = "x86_64")]
use super::aesni::{Aes128Ni, Aes256Ni, AesNi};
#[cfg(target_arch = "x86_64")]
use super::ghash::GHashKey;
use super::{E_FLAG, RtpAt, SrtpCipher};
use crate::Error;
use crate::key::SessionKeys;
#[cfg(target_arch = "x86_64")]
use subtle::ConstantTimeEq;

const TAG_LEN: usize = 16;

/// Longest AAD, as in `aes-gcm`.
#[cfg(target_arch = "x86_64")]
const A_MAX: u64 = 1 << 36;
/// Longest payload (SP 800-38D: 2^32 − 2 blocks), so the 32-bit block
/// counter, which starts at 2, never wraps.
#[cfg(target_arch = "x86_64")]
const P_MAX: u64 = (1 << 36) - 32;

/// AES-GCM with the key schedule and GHASH key computed once. The crate
/// fallback is boxed (see `AesCtr`).
#[derive(Clone)]
enum Gcm {
    /// AES-NI and PCLMULQDQ (our `aesni` and `ghash`).
    #[cfg(target_arch = "x86_64")]
    Ni128(FastGcm<11>),
    #[cfg(target_arch = "x86_64")]
    Ni256(FastGcm<15>),
    /// The `aes-gcm` crate, on CPUs without them (boxed: ~1 KB).
    A128(Box<AesGcm<Aes128, U12>>),
    A256(Box<AesGcm<Aes256, U12>>),
}

impl Gcm {
    fn new(key: &[u8]) -> Result<Gcm, Error> {
        #[cfg(target_arch = "x86_64")]
        {
            if let Ok(k) = <&[u8; 16]>::try_from(key)
                && let Some(g) = Aes128Ni::new(k).and_then(FastGcm::new)
            {
                return Ok(Gcm::Ni128(g));
            }
            if let Ok(k) = <&[u8; 32]>::try_from(key)
                && let Some(g) = Aes256Ni::new(k).and_then(FastGcm::new)
            {
                return Ok(Gcm::Ni256(g));
            }
        }
        let bad = |_| Error::InvalidKeyLength("GCM key must be 16 or 32 octets");
        Ok(match key.len() {
            16 => Gcm::A128(Box::new(AesGcm::new_from_slice(key).map_err(bad)?)),
            32 => Gcm::A256(Box::new(AesGcm::new_from_slice(key).map_err(bad)?)),
            _ => return Err(Error::InvalidKeyLength("GCM key must be 16 or 32 octets")),
        })
    }

    /// Encrypts `data` in place and returns the tag over `aad` and it.
    #[inline]
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; TAG_LEN] {
        match self {
            #[cfg(target_arch = "x86_64")]
            Gcm::Ni128(g) => g.seal(nonce, aad, data),
            #[cfg(target_arch = "x86_64")]
            Gcm::Ni256(g) => g.seal(nonce, aad, data),
            _ => self.seal_crate(nonce, aad, data),
        }
    }

    /// Checks `tag` over `aad` and `data`, then decrypts `data` in place;
    /// on failure `data` is untouched.
    #[inline]
    fn open(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8]) -> Result<(), Error> {
        match self {
            #[cfg(target_arch = "x86_64")]
            Gcm::Ni128(g) => g.open(nonce, aad, data, tag),
            #[cfg(target_arch = "x86_64")]
            Gcm::Ni256(g) => g.open(nonce, aad, data, tag),
            _ => self.open_crate(nonce, aad, data, tag),
        }
    }

    /// `seal` with the `aes-gcm` crate, out of line so that the fast
    /// path's dispatch stays small.
    #[inline(never)]
    fn seal_crate(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; TAG_LEN] {
        let n = Nonce::from_slice(nonce);
        // Only fails for inputs over 2^36 octets, which a packet cannot be;
        // an all-zero tag would then simply never verify.
        let tag = match self {
            Gcm::A128(g) => g.encrypt_in_place_detached(n, aad, data),
            Gcm::A256(g) => g.encrypt_in_place_detached(n, aad, data),
            #[cfg(target_arch = "x86_64")]
            Gcm::Ni128(g) => return g.seal(nonce, aad, data),
            #[cfg(target_arch = "x86_64")]
            Gcm::Ni256(g) => return g.seal(nonce, aad, data),
        };
        tag.map(Into::into).unwrap_or([0; TAG_LEN])
    }

    /// `open` with the `aes-gcm` crate, which compares the tag in constant
    /// time and decrypts only after it matched, so `data` is untouched on
    /// failure.
    #[inline(never)]
    fn open_crate(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8]) -> Result<(), Error> {
        let n = Nonce::from_slice(nonce);
        match self {
            Gcm::A128(g) => g.decrypt_in_place_detached(n, aad, data, Tag::from_slice(tag)),
            Gcm::A256(g) => g.decrypt_in_place_detached(n, aad, data, Tag::from_slice(tag)),
            #[cfg(target_arch = "x86_64")]
            Gcm::Ni128(g) => return g.open(nonce, aad, data, tag),
            #[cfg(target_arch = "x86_64")]
            Gcm::Ni256(g) => return g.open(nonce, aad, data, tag),
        }
        .map_err(|_| Error::AuthFailed)
    }
}

/// GCM on AES-NI and PCLMULQDQ: the AES key schedule and the GHASH key
/// (H = E(0) and its powers), both wiped on drop.
#[cfg(target_arch = "x86_64")]
#[derive(Clone)]
struct FastGcm<const NK: usize> {
    aes: AesNi<NK>,
    ghash: GHashKey,
}

#[cfg(target_arch = "x86_64")]
impl<const NK: usize> FastGcm<NK> {
    /// `None` if the CPU lacks PCLMULQDQ.
    fn new(aes: AesNi<NK>) -> Option<Self> {
        let mut h = [0u8; 16];
        aes.encrypt_block(&mut h);
        let ghash = GHashKey::new(&h);
        zeroize::Zeroize::zeroize(&mut h);
        Some(FastGcm { aes, ghash: ghash? })
    }

    #[inline]
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; TAG_LEN] {
        if data.len() as u64 > P_MAX || aad.len() as u64 > A_MAX {
            return [0; TAG_LEN];
        }
        self.ghash.gcm_seal(&self.aes, nonce, aad, data)
    }

    #[inline]
    fn open(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8]) -> Result<(), Error> {
        if data.len() as u64 > P_MAX || aad.len() as u64 > A_MAX {
            return Err(Error::AuthFailed);
        }
        let Ok(tag) = <&[u8; TAG_LEN]>::try_from(tag) else {
            return Err(Error::AuthFailed);
        };
        // Zero exactly when the tags match, compared in constant time.
        let diff = self.ghash.gcm_tag_diff(&self.aes, nonce, aad, data, tag);
        if !bool::from(diff.ct_eq(&0)) {
            return Err(Error::AuthFailed);
        }
        self.aes.gcm_ctr(nonce, data);
        Ok(())
    }
}

/// Session state for AEAD_AES_128_GCM / AEAD_AES_256_GCM.
#[derive(Clone)]
pub(crate) struct AeadGcm {
    gcm: Gcm,
    salt: [u8; 12],
}

impl Drop for AeadGcm {
    fn drop(&mut self) {
        // `aes-gcm/zeroize` and `FastGcm`'s fields wipe the key schedules;
        // the salt is secret too.
        zeroize::Zeroize::zeroize(&mut self.salt);
    }
}

impl AeadGcm {
    pub(crate) fn new(keys: &SessionKeys) -> Result<AeadGcm, Error> {
        let gcm = Gcm::new(keys.cipher_key())?;
        let mut salt = [0u8; 12];
        salt.copy_from_slice(
            keys.salt()
                .get(..12)
                .ok_or(Error::InvalidKeyLength("GCM salt must be 12 octets"))?,
        );
        Ok(AeadGcm { gcm, salt })
    }

    /// RFC 7714 §8.1 / §9.1: `(00 00 ‖ SSRC ‖ word1 ‖ word2) XOR salt`,
    /// with ROC ‖ SEQ for SRTP and 00 00 ‖ index(31 bits) for SRTCP.
    #[inline]
    fn nonce(&self, ssrc: u32, tail: [u8; 6]) -> [u8; 12] {
        let mut n = self.salt;
        for (d, s) in n[2..6].iter_mut().zip(ssrc.to_be_bytes()) {
            *d ^= s;
        }
        for (d, s) in n[6..].iter_mut().zip(tail) {
            *d ^= s;
        }
        n
    }

    #[inline]
    fn rtp_nonce(&self, ssrc: u32, roc: u32, seq: u16) -> [u8; 12] {
        let mut tail = [0u8; 6];
        tail[..4].copy_from_slice(&roc.to_be_bytes());
        tail[4..].copy_from_slice(&seq.to_be_bytes());
        self.nonce(ssrc, tail)
    }

    #[inline]
    fn rtcp_nonce(&self, ssrc: u32, index: u32) -> [u8; 12] {
        let mut tail = [0u8; 6];
        tail[2..].copy_from_slice(&(index & !E_FLAG).to_be_bytes());
        self.nonce(ssrc, tail)
    }
}

impl SrtpCipher for AeadGcm {
    #[inline]
    fn protect_rtp(&self, buf: &mut [u8], len: usize, at: RtpAt, mki: &[u8]) -> usize {
        let RtpAt {
            hdr_len,
            ssrc,
            roc,
            seq,
        } = at;
        let nonce = self.rtp_nonce(ssrc, roc, seq);
        let (hdr, rest) = buf.split_at_mut(hdr_len);
        let body_len = len - hdr_len;
        let tag = self.gcm.seal(&nonce, hdr, &mut rest[..body_len]);
        rest[body_len..body_len + TAG_LEN].copy_from_slice(&tag);
        let end = len + TAG_LEN;
        buf[end..end + mki.len()].copy_from_slice(mki);
        end + mki.len()
    }

    #[inline]
    fn unprotect_rtp(&self, buf: &mut [u8], at: RtpAt, mki_len: usize) -> Result<usize, Error> {
        let RtpAt {
            hdr_len,
            ssrc,
            roc,
            seq,
        } = at;
        let ct_end = buf
            .len()
            .checked_sub(TAG_LEN + mki_len)
            .filter(|&e| e >= hdr_len)
            .ok_or(Error::Malformed("SRTP packet shorter than header and tag"))?;
        let nonce = self.rtp_nonce(ssrc, roc, seq);
        let (hdr, rest) = buf.split_at_mut(hdr_len);
        let (ct, tail) = rest.split_at_mut(ct_end - hdr_len);
        self.gcm.open(&nonce, hdr, ct, &tail[..TAG_LEN])?;
        Ok(ct_end)
    }

    #[inline]
    fn protect_rtcp(&self, buf: &mut [u8], len: usize, ssrc: u32, index: u32, encrypt: bool, mki: &[u8]) -> usize {
        let nonce = self.rtcp_nonce(ssrc, index);
        let trailer = (if encrypt { E_FLAG | index } else { index }).to_be_bytes();
        if encrypt {
            let mut aad = [0u8; 12];
            aad[..8].copy_from_slice(&buf[..8]);
            aad[8..].copy_from_slice(&trailer);
            let tag = self.gcm.seal(&nonce, &aad, &mut buf[8..len]);
            buf[len..len + TAG_LEN].copy_from_slice(&tag);
        } else {
            // The AAD is `packet ‖ trailer`: put the trailer right after the
            // packet to make it one slice, then move it behind the tag.
            buf[len..len + 4].copy_from_slice(&trailer);
            let tag = self.gcm.seal(&nonce, &buf[..len + 4], &mut []);
            buf[len..len + TAG_LEN].copy_from_slice(&tag);
        }
        let end = len + TAG_LEN;
        buf[end..end + 4].copy_from_slice(&trailer);
        buf[end + 4..end + 4 + mki.len()].copy_from_slice(mki);
        end + 4 + mki.len()
    }

    #[inline]
    fn unprotect_rtcp(&self, buf: &mut [u8], ssrc: u32, trailer: u32, mki_len: usize) -> Result<usize, Error> {
        let body_end = buf
            .len()
            .checked_sub(mki_len + 4 + TAG_LEN)
            .filter(|&e| e >= 8)
            .ok_or(Error::Malformed("SRTCP packet too short"))?;
        let nonce = self.rtcp_nonce(ssrc, trailer);
        let tb = trailer.to_be_bytes();
        if trailer & E_FLAG != 0 {
            let mut aad = [0u8; 12];
            aad[..8].copy_from_slice(&buf[..8]);
            aad[8..].copy_from_slice(&tb);
            let (head, rest) = buf.split_at_mut(body_end);
            self.gcm.open(&nonce, &aad, &mut head[8..], &rest[..TAG_LEN])?;
        } else {
            // AAD is `packet ‖ trailer`: lay the trailer over the first tag
            // octets for the check, then put the tag back either way so a
            // rejected packet leaves the buffer as it was.
            let mut tag = [0u8; TAG_LEN];
            tag.copy_from_slice(&buf[body_end..body_end + TAG_LEN]);
            buf[body_end..body_end + 4].copy_from_slice(&tb);
            let r = self.gcm.open(&nonce, &buf[..body_end + 4], &mut [], &tag);
            buf[body_end..body_end + TAG_LEN].copy_from_slice(&tag);
            r?;
        }
        Ok(body_end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cipher::test_rng::Rng;

    fn reference(key: &[u8], nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        let n = Nonce::from_slice(nonce);
        match key.len() {
            16 => AesGcm::<Aes128, U12>::new_from_slice(key)
                .unwrap()
                .encrypt_in_place_detached(n, aad, data),
            _ => AesGcm::<Aes256, U12>::new_from_slice(key)
                .unwrap()
                .encrypt_in_place_detached(n, aad, data),
        }
        .unwrap()
        .into()
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn fast_variant_used_when_the_cpu_has_it() {
        let fast = std::is_x86_feature_detected!("aes")
            && std::is_x86_feature_detected!("pclmulqdq")
            && std::is_x86_feature_detected!("ssse3");
        assert_eq!(matches!(Gcm::new(&[3; 16]), Ok(Gcm::Ni128(_))), fast);
        assert_eq!(matches!(Gcm::new(&[3; 32]), Ok(Gcm::Ni256(_))), fast);
        assert!(Gcm::new(&[3; 24]).is_err());
    }

    #[test]
    fn seal_and_open_match_aes_gcm() {
        let mut rng = Rng(30);
        for key_len in [16, 32] {
            let mut key = vec![0u8; key_len];
            let mut aad = [0u8; 40];
            let mut plain = [0u8; 300];
            for len in 0..=300 {
                rng.fill(&mut key);
                let gcm = Gcm::new(&key).unwrap();
                for aad_len in 0..=40 {
                    let nonce = rng.array::<12>();
                    rng.fill(&mut aad[..aad_len]);
                    rng.fill(&mut plain[..len]);
                    let mut want = plain;
                    let want_tag = reference(&key, &nonce, &aad[..aad_len], &mut want[..len]);
                    let mut got = plain;
                    let tag = gcm.seal(&nonce, &aad[..aad_len], &mut got[..len]);
                    assert_eq!((got, tag), (want, want_tag), "key {key_len} len {len} aad {aad_len}");
                    gcm.open(&nonce, &aad[..aad_len], &mut got[..len], &tag).unwrap();
                    assert_eq!(got, plain);
                }
            }
        }
    }

    #[test]
    fn open_rejects_every_bit_flip_and_leaves_data() {
        let mut rng = Rng(31);
        for key_len in [16, 32] {
            let mut key = vec![0u8; key_len];
            rng.fill(&mut key);
            let gcm = Gcm::new(&key).unwrap();
            for (aad_len, len) in [(12, 160), (12, 0), (0, 1), (20, 33), (8, 64)] {
                let nonce = rng.array::<12>();
                let mut aad = vec![0u8; aad_len];
                rng.fill(&mut aad);
                let mut ct = vec![0u8; len];
                rng.fill(&mut ct);
                let tag = gcm.seal(&nonce, &aad, &mut ct);
                for bit in 0..(aad_len + len + TAG_LEN) * 8 {
                    let (mut a, mut c, mut t) = (aad.clone(), ct.clone(), tag);
                    let (i, m) = (bit / 8, 1u8 << (bit % 8));
                    if i < aad_len {
                        a[i] ^= m;
                    } else if i < aad_len + len {
                        c[i - aad_len] ^= m;
                    } else {
                        t[i - aad_len - len] ^= m;
                    }
                    let before = c.clone();
                    assert!(
                        matches!(gcm.open(&nonce, &a, &mut c, &t), Err(Error::AuthFailed)),
                        "bit {bit}"
                    );
                    assert_eq!(c, before, "data changed on failure, bit {bit}");
                }
                // A wrong nonce fails too; the right one decrypts.
                let mut other = nonce;
                other[11] ^= 1;
                let mut c = ct.clone();
                assert!(gcm.open(&other, &aad, &mut c, &tag).is_err());
                assert_eq!(c, ct);
                gcm.open(&nonce, &aad, &mut c, &tag).unwrap();
            }
        }
    }
}
