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

use super::{E_FLAG, RtpAt, SrtpCipher};
use crate::Error;
use crate::key::SessionKeys;

const TAG_LEN: usize = 16;

/// AES-GCM with the key schedule and GHASH key computed once.
#[allow(clippy::large_enum_variant)] // see `Cipher`
#[derive(Clone)]
enum Gcm {
    A128(AesGcm<Aes128, U12>),
    A256(AesGcm<Aes256, U12>),
}

impl Gcm {
    #[inline]
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = Nonce::from_slice(nonce);
        // Only fails for inputs over 2^36 octets, which a packet cannot be;
        // an all-zero tag would then simply never verify.
        let tag = match self {
            Gcm::A128(g) => g.encrypt_in_place_detached(nonce, aad, data),
            Gcm::A256(g) => g.encrypt_in_place_detached(nonce, aad, data),
        };
        tag.map(Into::into).unwrap_or([0; TAG_LEN])
    }

    #[inline]
    fn open(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8]) -> Result<(), Error> {
        let nonce = Nonce::from_slice(nonce);
        let tag = Tag::from_slice(tag);
        // aes-gcm compares the tag in constant time and decrypts only after
        // it matched, so `data` is untouched on failure.
        match self {
            Gcm::A128(g) => g.decrypt_in_place_detached(nonce, aad, data, tag),
            Gcm::A256(g) => g.decrypt_in_place_detached(nonce, aad, data, tag),
        }
        .map_err(|_| Error::AuthFailed)
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
        // `aes-gcm/zeroize` wipes the key schedule; the salt is secret too.
        zeroize::Zeroize::zeroize(&mut self.salt);
    }
}

impl AeadGcm {
    pub(crate) fn new(keys: &SessionKeys) -> Result<AeadGcm, Error> {
        let bad = |_| Error::InvalidKeyLength("GCM key must be 16 or 32 octets");
        let gcm = match keys.cipher_key().len() {
            16 => Gcm::A128(AesGcm::new_from_slice(keys.cipher_key()).map_err(bad)?),
            32 => Gcm::A256(AesGcm::new_from_slice(keys.cipher_key()).map_err(bad)?),
            _ => return Err(Error::InvalidKeyLength("GCM key must be 16 or 32 octets")),
        };
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
