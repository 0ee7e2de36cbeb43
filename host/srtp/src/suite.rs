//! The crypto suites and their parameters.

use crate::Error;

/// An SRTP protection profile, named as in SDES (RFC 4568, RFC 6188,
/// RFC 7714).
///
/// The suite fixes the key, salt and tag lengths; everything else about a
/// session lives in [`Options`](crate::Options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suite {
    /// `AES_CM_128_HMAC_SHA1_80` (RFC 3711 default suite).
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: 32-bit SRTP tag, SRTCP keeps 80 bits.
    AesCm128HmacSha1_32,
    /// `AES_192_CM_HMAC_SHA1_80` (RFC 6188).
    AesCm192HmacSha1_80,
    /// `AES_192_CM_HMAC_SHA1_32` (RFC 6188).
    AesCm192HmacSha1_32,
    /// `AES_256_CM_HMAC_SHA1_80` (RFC 6188).
    AesCm256HmacSha1_80,
    /// `AES_256_CM_HMAC_SHA1_32` (RFC 6188).
    AesCm256HmacSha1_32,
    /// `AEAD_AES_128_GCM` (RFC 7714), 16-octet tag.
    AeadAes128Gcm,
    /// `AEAD_AES_256_GCM` (RFC 7714), 16-octet tag.
    AeadAes256Gcm,
}

impl Suite {
    /// Every suite, strongest-first within each family (the order an SDES
    /// offer would list them in).
    pub const ALL: [Suite; 8] = [
        Suite::AeadAes256Gcm,
        Suite::AeadAes128Gcm,
        Suite::AesCm256HmacSha1_80,
        Suite::AesCm256HmacSha1_32,
        Suite::AesCm192HmacSha1_80,
        Suite::AesCm192HmacSha1_32,
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
    ];

    /// The SDES crypto-suite name.
    pub fn sdes_name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AesCm192HmacSha1_80 => "AES_192_CM_HMAC_SHA1_80",
            Suite::AesCm192HmacSha1_32 => "AES_192_CM_HMAC_SHA1_32",
            Suite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// The suite of an SDES crypto-suite name (exact, case-sensitive, as
    /// RFC 4568 registers them).
    pub fn from_sdes_name(name: &str) -> Result<Suite, Error> {
        Suite::ALL
            .into_iter()
            .find(|s| s.sdes_name() == name)
            .ok_or(Error::UnsupportedSuite)
    }

    /// Master (and session) key length in octets.
    pub fn key_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 | Suite::AeadAes128Gcm => 16,
            Suite::AesCm192HmacSha1_80 | Suite::AesCm192HmacSha1_32 => 24,
            Suite::AesCm256HmacSha1_80 | Suite::AesCm256HmacSha1_32 | Suite::AeadAes256Gcm => 32,
        }
    }

    /// Master (and session) salt length in octets: 14 for AES-CM, 12 for GCM.
    pub fn salt_len(self) -> usize {
        if self.is_aead() { 12 } else { 14 }
    }

    /// SRTP authentication tag length in octets.
    pub fn srtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_32 | Suite::AesCm192HmacSha1_32 | Suite::AesCm256HmacSha1_32 => 4,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => 16,
            _ => 10,
        }
    }

    /// SRTCP authentication tag length in octets. The `_32` suites keep the
    /// 80-bit tag for SRTCP (RFC 4568 §6.2.1).
    pub fn srtcp_tag_len(self) -> usize {
        if self.is_aead() { 16 } else { 10 }
    }

    /// True for the AEAD (GCM) suites, which have no separate auth key.
    pub fn is_aead(self) -> bool {
        matches!(self, Suite::AeadAes128Gcm | Suite::AeadAes256Gcm)
    }

    /// HMAC-SHA1 session auth key length (0 for AEAD suites).
    pub(crate) fn auth_key_len(self) -> usize {
        if self.is_aead() { 0 } else { 20 }
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.sdes_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Suite::ALL {
            assert_eq!(Suite::from_sdes_name(s.sdes_name()), Ok(s));
        }
        assert_eq!(
            Suite::from_sdes_name("F8_128_HMAC_SHA1_80"),
            Err(Error::UnsupportedSuite)
        );
    }

    #[test]
    fn lengths() {
        assert_eq!(Suite::AesCm128HmacSha1_32.srtp_tag_len(), 4);
        assert_eq!(Suite::AesCm128HmacSha1_32.srtcp_tag_len(), 10);
        assert_eq!(Suite::AeadAes256Gcm.salt_len(), 12);
        assert_eq!(Suite::AesCm256HmacSha1_80.key_len(), 32);
    }
}
