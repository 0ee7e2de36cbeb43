//! AES-CM encryption with HMAC-SHA1 authentication (RFC 3711 §4.1.1,
//! §4.2.1; RFC 6188 for AES-192/256).
//!
//! SRTP:  `header ‖ E(payload) ‖ [MKI] ‖ tag`, tag = HMAC(header ‖ E(payload) ‖ ROC).
//! SRTCP: `header(8) ‖ E(rest) ‖ E‖index ‖ [MKI] ‖ tag`, tag over everything before the MKI.
//! Authentication is checked before anything is decrypted.

use subtle::ConstantTimeEq;

use super::hmac_sha1::HmacSha1;
use super::{AesCtr, E_FLAG, RtpAt, SrtpCipher};
use crate::Error;
use crate::key::SessionKeys;

/// Session state for AES-CM + HMAC-SHA1.
#[derive(Clone)]
pub(crate) struct AesCmHmac {
    aes: AesCtr,
    salt: [u8; 14],
    /// HMAC keyed once: the inner and outer SHA-1 states after absorbing
    /// the padded key, so a packet costs no key-block compressions.
    mac: HmacSha1,
    tag_len: usize,
}

impl Drop for AesCmHmac {
    fn drop(&mut self) {
        // The AES key schedule (`aes/zeroize`) and the HMAC states wipe
        // themselves; the session salt is secret too.
        zeroize::Zeroize::zeroize(&mut self.salt);
    }
}

impl AesCmHmac {
    pub(crate) fn new(keys: &SessionKeys, tag_len: usize) -> Result<AesCmHmac, Error> {
        let mut salt = [0u8; 14];
        salt.copy_from_slice(
            keys.salt()
                .get(..14)
                .ok_or(Error::InvalidKeyLength("AES-CM salt must be 14 octets"))?,
        );
        let mac = HmacSha1::new(keys.auth_key());
        Ok(AesCmHmac {
            aes: AesCtr::new(keys.cipher_key())?,
            salt,
            mac,
            tag_len,
        })
    }

    /// `IV = (salt · 2^16) XOR (SSRC · 2^64) XOR (index · 2^16)`.
    #[inline]
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *d ^= s;
        }
        for (d, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *d ^= s;
        }
        iv
    }

    /// The full 20-octet HMAC of `data ‖ suffix`.
    #[inline]
    fn mac(&self, data: &[u8], suffix: &[u8]) -> [u8; 20] {
        self.mac.mac(data, suffix)
    }

    /// The keyed HMAC, for batches that compute two MACs at once.
    #[inline]
    pub(crate) fn hmac(&self) -> &HmacSha1 {
        &self.mac
    }

    /// Encrypts or decrypts (the same XOR) the RTP payload `buf[hdr_len..end]`.
    #[inline]
    pub(crate) fn crypt_rtp(&self, buf: &mut [u8], end: usize, at: RtpAt) {
        let index = (u64::from(at.roc) << 16) | u64::from(at.seq);
        self.aes
            .apply_keystream(&self.iv(at.ssrc, index), &mut buf[at.hdr_len..end]);
    }

    /// Appends `mki` and the truncated `tag` after `buf[..len]`; returns
    /// the SRTP length. The caller checked that `buf` has the room.
    #[inline]
    pub(crate) fn append_trailer(&self, buf: &mut [u8], len: usize, mki: &[u8], tag: &[u8; 20]) -> usize {
        let mut end = len;
        buf[end..end + mki.len()].copy_from_slice(mki);
        end += mki.len();
        buf[end..end + self.tag_len].copy_from_slice(&tag[..self.tag_len]);
        end + self.tag_len
    }

    /// Whether the packet `buf` ends with the truncated `mac`, compared in
    /// constant time.
    #[inline]
    pub(crate) fn tag_matches(&self, buf: &[u8], mac: &[u8; 20]) -> bool {
        buf.len() >= self.tag_len && bool::from(mac[..self.tag_len].ct_eq(&buf[buf.len() - self.tag_len..]))
    }
}

impl SrtpCipher for AesCmHmac {
    #[inline]
    fn protect_rtp(&self, buf: &mut [u8], len: usize, at: RtpAt, mki: &[u8]) -> usize {
        self.crypt_rtp(buf, len, at);
        let tag = self.mac(&buf[..len], &at.roc.to_be_bytes());
        self.append_trailer(buf, len, mki, &tag)
    }

    #[inline]
    fn unprotect_rtp(&self, buf: &mut [u8], at: RtpAt, mki_len: usize) -> Result<usize, Error> {
        let body_end = buf
            .len()
            .checked_sub(self.tag_len + mki_len)
            .filter(|&e| e >= at.hdr_len)
            .ok_or(Error::Malformed("SRTP packet shorter than header and tag"))?;
        let want = self.mac(&buf[..body_end], &at.roc.to_be_bytes());
        if !self.tag_matches(buf, &want) {
            return Err(Error::AuthFailed);
        }
        self.crypt_rtp(buf, body_end, at);
        Ok(body_end)
    }

    #[inline]
    fn protect_rtcp(&self, buf: &mut [u8], len: usize, ssrc: u32, index: u32, encrypt: bool, mki: &[u8]) -> usize {
        if encrypt {
            self.aes
                .apply_keystream(&self.iv(ssrc, u64::from(index)), &mut buf[8..len]);
        }
        let trailer = if encrypt { E_FLAG | index } else { index };
        buf[len..len + 4].copy_from_slice(&trailer.to_be_bytes());
        let tag = self.mac(&buf[..len + 4], &[]);
        let mut end = len + 4;
        buf[end..end + mki.len()].copy_from_slice(mki);
        end += mki.len();
        buf[end..end + self.tag_len].copy_from_slice(&tag[..self.tag_len]);
        end + self.tag_len
    }

    #[inline]
    fn unprotect_rtcp(&self, buf: &mut [u8], ssrc: u32, trailer: u32, mki_len: usize) -> Result<usize, Error> {
        let n = buf.len();
        let auth_end = n
            .checked_sub(self.tag_len + mki_len)
            .filter(|&e| e >= 12)
            .ok_or(Error::Malformed("SRTCP packet too short"))?;
        let want = self.mac(&buf[..auth_end], &[]);
        if !bool::from(want[..self.tag_len].ct_eq(&buf[n - self.tag_len..])) {
            return Err(Error::AuthFailed);
        }
        let rtcp_end = auth_end - 4;
        if trailer & E_FLAG != 0 {
            let index = trailer & !E_FLAG;
            self.aes
                .apply_keystream(&self.iv(ssrc, u64::from(index)), &mut buf[8..rtcp_end]);
        }
        Ok(rtcp_end)
    }
}
