//! The SRTP key derivation function (RFC 3711 §4.3, AES-CM PRF; RFC 6188
//! §5 for AES-192/256).
//!
//! Session keys are AES-CM keystream under the master key, with the IV
//! built from the master salt, a label and `r = index DIV kdr`.

use crate::cipher::AesCtr;
use crate::key::{MasterKey, SessionKeys};
use crate::{Error, Suite};

/// Label of the SRTP encryption key.
pub const LABEL_SRTP_ENCRYPTION: u8 = 0;
/// Label of the SRTP authentication key.
pub const LABEL_SRTP_AUTH: u8 = 1;
/// Label of the SRTP salt.
pub const LABEL_SRTP_SALT: u8 = 2;
/// Label of the SRTCP encryption key.
pub const LABEL_SRTCP_ENCRYPTION: u8 = 3;
/// Label of the SRTCP authentication key.
pub const LABEL_SRTCP_AUTH: u8 = 4;
/// Label of the SRTCP salt.
pub const LABEL_SRTCP_SALT: u8 = 5;

/// Writes the AES-CM keystream for `iv` (the 16-octet initial counter)
/// under `key` (16, 24 or 32 octets) into `out`. This is the PRF of the
/// KDF and the SRTP AES-CM keystream generator; RFC 3711 B.2 tests it.
pub fn aes_cm_keystream(key: &[u8], iv: &[u8; 16], out: &mut [u8]) -> Result<(), Error> {
    out.fill(0);
    AesCtr::new(key)?.apply_keystream(iv, out);
    Ok(())
}

/// Derives `out.len()` octets for `label` at packet `index` with key
/// derivation rate `kdr` (0: derive once, at index 0).
///
/// A 12-octet (GCM) master salt is extended with two zero octets on the
/// right, as libsrtp does and RFC 7714 §11 intends.
pub fn derive(
    master_key: &[u8],
    master_salt: &[u8],
    label: u8,
    index: u64,
    kdr: u64,
    out: &mut [u8],
) -> Result<(), Error> {
    let iv = kdf_iv(master_salt, label, index, kdr)?;
    aes_cm_keystream(master_key, &iv, out)
}

/// The KDF's AES-CM IV: `(key_id XOR master_salt) · 2^16`, where
/// `key_id = label ‖ r` and `r = index DIV kdr` (48 bits).
pub fn kdf_iv(master_salt: &[u8], label: u8, index: u64, kdr: u64) -> Result<[u8; 16], Error> {
    if master_salt.len() > 14 {
        return Err(Error::InvalidKeyLength("master salt longer than 14 octets"));
    }
    let r = index.checked_div(kdr).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
    let mut iv = [0u8; 16];
    iv[..master_salt.len()].copy_from_slice(master_salt);
    iv[7] ^= label;
    for (i, b) in r.to_be_bytes()[2..].iter().enumerate() {
        iv[8 + i] ^= b;
    }
    Ok(iv)
}

/// Derives the SRTP (labels 0–2) and SRTCP (labels 3–5) session keys of
/// `suite` for the given indices.
pub(crate) fn session_keys(
    suite: Suite,
    master: &MasterKey,
    kdr: u64,
    srtp_index: u64,
    srtcp_index: u64,
) -> Result<(SessionKeys, SessionKeys), Error> {
    let one = |base: u8, index: u64| -> Result<SessionKeys, Error> {
        let mut keys = SessionKeys::new(
            &[0; 32][..suite.key_len()],
            &[0; 14][..suite.salt_len()],
            &[0; 20][..suite.auth_key_len()],
        )?;
        derive(
            master.key(),
            master.salt(),
            base,
            index,
            kdr,
            &mut keys.cipher_key[..suite.key_len()],
        )?;
        derive(
            master.key(),
            master.salt(),
            base + 1,
            index,
            kdr,
            &mut keys.auth_key[..suite.auth_key_len()],
        )?;
        derive(
            master.key(),
            master.salt(),
            base + 2,
            index,
            kdr,
            &mut keys.salt[..suite.salt_len()],
        )?;
        Ok(keys)
    };
    Ok((
        one(LABEL_SRTP_ENCRYPTION, srtp_index)?,
        one(LABEL_SRTCP_ENCRYPTION, srtcp_index)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc3711_b3_cipher_key() {
        let key = hex("e1f97a0d3e018be0d64fa32c06de4139");
        let salt = hex("0ec675ad498afeebb6960b3aabe6");
        let mut out = [0u8; 16];
        derive(&key, &salt, 0, 0, 0, &mut out).unwrap();
        assert_eq!(out.to_vec(), hex("c61e7a93744f39ee10734afe3ff7a087"));
    }

    #[test]
    fn kdr_changes_iv_only_at_multiples() {
        let salt = [0u8; 14];
        let a = kdf_iv(&salt, 0, 1023, 1024).unwrap();
        let b = kdf_iv(&salt, 0, 1024, 1024).unwrap();
        assert_eq!(a, [0; 16]);
        assert_eq!(b[13], 1);
    }
}
