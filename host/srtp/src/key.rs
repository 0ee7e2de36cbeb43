//! Master key material.
//!
//! Keys live in fixed-size arrays (no heap copies to forget about), are
//! wiped when dropped, and print as `<redacted>`.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{Error, Suite};

/// Longest master key (AES-256).
pub(crate) const MAX_KEY_LEN: usize = 32;
/// Longest master salt (AES-CM, 112 bits).
pub(crate) const MAX_SALT_LEN: usize = 14;

/// A master key and master salt, as SDES or DTLS-SRTP hands them over.
///
/// Its length is checked against the suite when a
/// [`Context`](crate::Context) is built from it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    key: [u8; MAX_KEY_LEN],
    key_len: usize,
    salt: [u8; MAX_SALT_LEN],
    salt_len: usize,
}

impl MasterKey {
    /// Copies a master key (16, 24 or 32 octets) and salt (12 or 14 octets).
    pub fn new(key: &[u8], salt: &[u8]) -> Result<MasterKey, Error> {
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(Error::InvalidKeyLength("master key must be 16, 24 or 32 octets"));
        }
        if !matches!(salt.len(), 12 | 14) {
            return Err(Error::InvalidKeyLength("master salt must be 12 or 14 octets"));
        }
        let mut k = MasterKey {
            key: [0; MAX_KEY_LEN],
            key_len: key.len(),
            salt: [0; MAX_SALT_LEN],
            salt_len: salt.len(),
        };
        k.key[..key.len()].copy_from_slice(key);
        k.salt[..salt.len()].copy_from_slice(salt);
        Ok(k)
    }

    /// Splits `key ‖ salt` (the SDES `inline:` octets, or the DTLS-SRTP
    /// exporter halves joined) by the suite's lengths.
    pub fn from_concatenated(suite: Suite, key_and_salt: &[u8]) -> Result<MasterKey, Error> {
        if key_and_salt.len() != suite.key_len() + suite.salt_len() {
            return Err(Error::InvalidKeyLength("key ‖ salt length does not match the suite"));
        }
        let (key, salt) = key_and_salt.split_at(suite.key_len());
        MasterKey::new(key, salt)
    }

    /// The master key octets.
    pub fn key(&self) -> &[u8] {
        &self.key[..self.key_len]
    }

    /// The master salt octets.
    pub fn salt(&self) -> &[u8] {
        &self.salt[..self.salt_len]
    }

    /// Checks the lengths against `suite`.
    pub(crate) fn check(&self, suite: Suite) -> Result<(), Error> {
        if self.key_len != suite.key_len() {
            return Err(Error::InvalidKeyLength("master key length does not match the suite"));
        }
        if self.salt_len != suite.salt_len() {
            return Err(Error::InvalidKeyLength("master salt length does not match the suite"));
        }
        Ok(())
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("key_len", &self.key_len)
            .field("salt_len", &self.salt_len)
            .finish_non_exhaustive()
    }
}

/// Session keys for one of SRTP or SRTCP, the output of the key
/// derivation (RFC 3711 §4.3). Normally internal; public so that
/// known-answer tests (RFC 7714 gives session keys) can bypass the KDF.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKeys {
    pub(crate) cipher_key: [u8; MAX_KEY_LEN],
    pub(crate) cipher_key_len: usize,
    pub(crate) salt: [u8; MAX_SALT_LEN],
    pub(crate) salt_len: usize,
    pub(crate) auth_key: [u8; 20],
    pub(crate) auth_key_len: usize,
}

impl SessionKeys {
    /// Session keys from their octets; `auth_key` is empty for GCM.
    pub fn new(cipher_key: &[u8], salt: &[u8], auth_key: &[u8]) -> Result<SessionKeys, Error> {
        if !matches!(cipher_key.len(), 16 | 24 | 32) {
            return Err(Error::InvalidKeyLength("session key must be 16, 24 or 32 octets"));
        }
        if !matches!(salt.len(), 12 | 14) {
            return Err(Error::InvalidKeyLength("session salt must be 12 or 14 octets"));
        }
        if !matches!(auth_key.len(), 0 | 20) {
            return Err(Error::InvalidKeyLength("session auth key must be 0 or 20 octets"));
        }
        let mut k = SessionKeys {
            cipher_key: [0; MAX_KEY_LEN],
            cipher_key_len: cipher_key.len(),
            salt: [0; MAX_SALT_LEN],
            salt_len: salt.len(),
            auth_key: [0; 20],
            auth_key_len: auth_key.len(),
        };
        k.cipher_key[..cipher_key.len()].copy_from_slice(cipher_key);
        k.salt[..salt.len()].copy_from_slice(salt);
        k.auth_key[..auth_key.len()].copy_from_slice(auth_key);
        Ok(k)
    }

    /// The session encryption key.
    pub fn cipher_key(&self) -> &[u8] {
        &self.cipher_key[..self.cipher_key_len]
    }

    /// The session salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt[..self.salt_len]
    }

    /// The session HMAC key (empty for GCM).
    pub fn auth_key(&self) -> &[u8] {
        &self.auth_key[..self.auth_key_len]
    }

    pub(crate) fn check(&self, suite: Suite) -> Result<(), Error> {
        if self.cipher_key_len != suite.key_len()
            || self.salt_len != suite.salt_len()
            || self.auth_key_len != suite.auth_key_len()
        {
            return Err(Error::InvalidKeyLength("session key lengths do not match the suite"));
        }
        Ok(())
    }
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys { <redacted> }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let k = MasterKey::new(&[0xAB; 16], &[0xCD; 14]).unwrap();
        let s = format!("{k:?}");
        assert!(!s.contains("171") && !s.to_lowercase().contains("ab"), "{s}");
        let s = format!("{:?}", SessionKeys::new(&[0xAB; 16], &[0xCD; 14], &[0xEF; 20]).unwrap());
        assert!(!s.contains("171") && !s.contains("205"), "{s}");
    }

    #[test]
    fn lengths_checked() {
        assert!(MasterKey::new(&[0; 15], &[0; 14]).is_err());
        assert!(MasterKey::new(&[0; 16], &[0; 13]).is_err());
        let k = MasterKey::new(&[0; 16], &[0; 12]).unwrap();
        assert!(k.check(Suite::AesCm128HmacSha1_80).is_err());
        assert!(k.check(Suite::AeadAes128Gcm).is_ok());
        assert!(MasterKey::from_concatenated(Suite::AesCm128HmacSha1_80, &[0; 30]).is_ok());
        assert!(MasterKey::from_concatenated(Suite::AesCm128HmacSha1_80, &[0; 29]).is_err());
    }
}
