//! Packet transforms: one [`Cipher`] per suite family.
//!
//! A cipher owns ready-to-use session state (AES key schedules, the HMAC
//! inner/outer pads, the GHASH key) built once from [`SessionKeys`], and
//! transforms a packet in place. It knows the wire layout of its family
//! (where the tag, the MKI and the SRTCP trailer go) but nothing about
//! streams, indices or replay: the [`Context`](crate::Context) decides
//! which index to use and commits state only after `unprotect` succeeds.

mod aead_gcm;
mod aes_cm_hmac;
// The only modules with `unsafe`: SIMD intrinsics, entered only after run-time
// feature detection (see their module docs).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod aesni;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod ghash;
mod hmac_sha1;
mod sha1_x2;

pub(crate) use aead_gcm::AeadGcm;
pub(crate) use aes_cm_hmac::AesCmHmac;

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use aes::{Aes128, Aes192, Aes256};

use crate::key::SessionKeys;
use crate::{Error, Suite};

/// The SRTCP trailer flag: payload encrypted.
pub(crate) const E_FLAG: u32 = 0x8000_0000;

/// Where an RTP packet's payload starts and which index it has.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtpAt {
    /// Header length (CSRCs and extension included).
    pub(crate) hdr_len: usize,
    pub(crate) ssrc: u32,
    pub(crate) roc: u32,
    pub(crate) seq: u16,
}

/// What every suite family provides. Implemented by [`AesCmHmac`] and
/// [`AeadGcm`]; [`Cipher`] dispatches statically between them.
pub(crate) trait SrtpCipher {
    /// Encrypts `buf[hdr_len..len]` and appends MKI and tag; returns the
    /// protected length. The caller checked that `buf` has the room.
    fn protect_rtp(&self, buf: &mut [u8], len: usize, at: RtpAt, mki: &[u8]) -> usize;
    /// Verifies and decrypts the whole packet `buf` (MKI already checked);
    /// returns the plaintext length. On error `buf` is unchanged.
    fn unprotect_rtp(&self, buf: &mut [u8], at: RtpAt, mki_len: usize) -> Result<usize, Error>;
    /// Encrypts (if `encrypt`) `buf[8..len]`, appends E‖index, MKI and tag.
    fn protect_rtcp(&self, buf: &mut [u8], len: usize, ssrc: u32, index: u32, encrypt: bool, mki: &[u8]) -> usize;
    /// Verifies and decrypts the SRTCP packet `buf` whose trailer word
    /// (E‖index) is `trailer`; returns the RTCP length.
    fn unprotect_rtcp(&self, buf: &mut [u8], ssrc: u32, trailer: u32, mki_len: usize) -> Result<usize, Error>;
}

/// The session cipher of one direction of SRTP or SRTCP.
// Variants differ in size (GCM holds its GHASH key too); boxing them would
// add a pointer chase per packet for no gain, there are two per context.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum Cipher {
    /// AES-CM with HMAC-SHA1 (RFC 3711, RFC 6188).
    CmHmac(AesCmHmac),
    /// AES-GCM (RFC 7714).
    Gcm(AeadGcm),
}

impl Cipher {
    /// Builds the cipher of `suite` with the given session keys and tag length.
    pub(crate) fn new(suite: Suite, keys: &SessionKeys, tag_len: usize) -> Result<Cipher, Error> {
        keys.check(suite)?;
        if suite.is_aead() {
            Ok(Cipher::Gcm(AeadGcm::new(keys)?))
        } else {
            Ok(Cipher::CmHmac(AesCmHmac::new(keys, tag_len)?))
        }
    }
}

impl Cipher {
    /// The AES-CM/HMAC-SHA1 cipher, for the batched (two MACs at once) path.
    #[inline]
    pub(crate) fn as_cm_hmac(&self) -> Option<&AesCmHmac> {
        match self {
            Cipher::CmHmac(c) => Some(c),
            Cipher::Gcm(_) => None,
        }
    }
}

// Static dispatch for the hot path: a `match` per call, inlined, rather
// than a vtable call.
macro_rules! dispatch {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            Cipher::CmHmac($c) => $e,
            Cipher::Gcm($c) => $e,
        }
    };
}

impl SrtpCipher for Cipher {
    #[inline]
    fn protect_rtp(&self, buf: &mut [u8], len: usize, at: RtpAt, mki: &[u8]) -> usize {
        dispatch!(self, c => c.protect_rtp(buf, len, at, mki))
    }
    #[inline]
    fn unprotect_rtp(&self, buf: &mut [u8], at: RtpAt, mki_len: usize) -> Result<usize, Error> {
        dispatch!(self, c => c.unprotect_rtp(buf, at, mki_len))
    }
    #[inline]
    fn protect_rtcp(&self, buf: &mut [u8], len: usize, ssrc: u32, index: u32, encrypt: bool, mki: &[u8]) -> usize {
        dispatch!(self, c => c.protect_rtcp(buf, len, ssrc, index, encrypt, mki))
    }
    #[inline]
    fn unprotect_rtcp(&self, buf: &mut [u8], ssrc: u32, trailer: u32, mki_len: usize) -> Result<usize, Error> {
        dispatch!(self, c => c.unprotect_rtcp(buf, ssrc, trailer, mki_len))
    }
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cipher::CmHmac(_) => "Cipher::CmHmac(<redacted>)",
            Cipher::Gcm(_) => "Cipher::Gcm(<redacted>)",
        })
    }
}

/// AES in SRTP counter mode with its key schedule built once.
///
/// SRTP's AES-CM increments only the low 16 bits of the counter; a full
/// 128-bit big-endian counter (what both paths below implement) gives the
/// same keystream for any packet shorter than 2^16 blocks (1 MiB), and
/// every packet is.
///
/// AES-128 and AES-256 use our AES-NI code when the CPU has it (checked
/// once, here); otherwise, and for AES-192, the `aes` and `ctr` crates.
/// Their key schedules (with run-time dispatch, up to ~1 KB) are boxed:
/// the common variants stay small, and so does every `Cipher` a context
/// holds or moves.
#[derive(Clone)]
pub(crate) enum AesCtr {
    #[cfg(target_arch = "x86_64")]
    Ni128(aesni::Aes128Ni),
    #[cfg(target_arch = "x86_64")]
    Ni256(aesni::Aes256Ni),
    A128(Box<Aes128>),
    A192(Box<Aes192>),
    A256(Box<Aes256>),
}

impl AesCtr {
    pub(crate) fn new(key: &[u8]) -> Result<AesCtr, Error> {
        #[cfg(target_arch = "x86_64")]
        {
            if let Ok(k) = <&[u8; 16]>::try_from(key)
                && let Some(a) = aesni::Aes128Ni::new(k)
            {
                return Ok(AesCtr::Ni128(a));
            }
            if let Ok(k) = <&[u8; 32]>::try_from(key)
                && let Some(a) = aesni::Aes256Ni::new(k)
            {
                return Ok(AesCtr::Ni256(a));
            }
        }
        let bad = |_| Error::InvalidKeyLength("AES key must be 16, 24 or 32 octets");
        Ok(match key.len() {
            16 => AesCtr::A128(Box::new(Aes128::new_from_slice(key).map_err(bad)?)),
            24 => AesCtr::A192(Box::new(Aes192::new_from_slice(key).map_err(bad)?)),
            32 => AesCtr::A256(Box::new(Aes256::new_from_slice(key).map_err(bad)?)),
            _ => {
                return Err(Error::InvalidKeyLength("AES key must be 16, 24 or 32 octets"));
            }
        })
    }

    /// XORs the keystream starting at counter `iv` into `data`.
    #[inline]
    pub(crate) fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            AesCtr::Ni128(c) => c.ctr_xor(iv, data),
            #[cfg(target_arch = "x86_64")]
            AesCtr::Ni256(c) => c.ctr_xor(iv, data),
            _ => self.apply_keystream_crates(iv, data),
        }
    }

    /// The `aes`/`ctr` crate paths, out of line so that the AES-NI
    /// dispatch above stays a compare and a jump.
    #[inline(never)]
    fn apply_keystream_crates(&self, iv: &[u8; 16], data: &mut [u8]) {
        // The `ctr` crate borrows the key schedule (`&Aes128` is a block
        // cipher too), so nothing is copied per packet; it generates eight
        // blocks at a time with AES-NI when the CPU has it.
        macro_rules! run {
            ($c:expr, $t:ty) => {{
                let core = ctr::CtrCore::<&$t, ctr::flavors::Ctr128BE>::inner_iv_init($c, iv.into());
                let mut ctr = aes::cipher::StreamCipherCoreWrapper::from_core(core);
                ctr.apply_keystream(data);
            }};
        }
        match self {
            #[cfg(target_arch = "x86_64")]
            AesCtr::Ni128(c) => c.ctr_xor(iv, data),
            #[cfg(target_arch = "x86_64")]
            AesCtr::Ni256(c) => c.ctr_xor(iv, data),
            AesCtr::A128(c) => run!(c, Aes128),
            AesCtr::A192(c) => run!(c, Aes192),
            AesCtr::A256(c) => run!(c, Aes256),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_rng {
    /// splitmix64: deterministic "random-ish" test bytes.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        pub(crate) fn fill(&mut self, b: &mut [u8]) {
            for x in b {
                *x = self.next() as u8;
            }
        }

        pub(crate) fn array<const N: usize>(&mut self) -> [u8; N] {
            let mut a = [0u8; N];
            self.fill(&mut a);
            a
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_rng::Rng;
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn aes_ctr_uses_aes_ni_when_available() {
        let ni = std::is_x86_feature_detected!("aes") && std::is_x86_feature_detected!("ssse3");
        assert!(matches!(AesCtr::new(&[1; 16]), Ok(AesCtr::Ni128(_))) == ni);
        assert!(matches!(AesCtr::new(&[1; 32]), Ok(AesCtr::Ni256(_))) == ni);
        assert!(matches!(AesCtr::new(&[1; 24]), Ok(AesCtr::A192(_))));
        assert!(AesCtr::new(&[1; 20]).is_err());
    }

    #[test]
    fn aes_ctr_paths_agree() {
        let mut rng = Rng(20);
        for key_len in [16, 32] {
            for len in [0, 1, 15, 16, 17, 160, 161, 1200] {
                let mut key = vec![0u8; key_len];
                rng.fill(&mut key);
                let iv = rng.array::<16>();
                let mut data = vec![0u8; len];
                rng.fill(&mut data);
                let mut want = data.clone();
                let fallback = match key_len {
                    16 => AesCtr::A128(Box::new(Aes128::new_from_slice(&key).unwrap())),
                    _ => AesCtr::A256(Box::new(Aes256::new_from_slice(&key).unwrap())),
                };
                fallback.apply_keystream(&iv, &mut want);
                AesCtr::new(&key).unwrap().apply_keystream(&iv, &mut data);
                assert_eq!(data, want, "key_len {key_len} len {len}");
            }
        }
    }
}
