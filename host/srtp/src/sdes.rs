//! SDES key parameters (RFC 4568 §6.1): the `inline:` part of `a=crypto`.
//!
//! ```text
//! a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<base64 key‖salt>[|<lifetime>][|<MKI>:<len>] [session params]
//! ```
//!
//! Parsing validates the key length against the suite, so a
//! [`KeyParams`] always fits its [`Context`](crate::Context). Printing
//! is an explicit method, never `Display`, and `Debug` is redacted: key
//! material only leaves through [`KeyParams::to_inline`].

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};

use crate::{Error, MasterKey, Options, Suite};

/// Longest MKI RFC 4568 allows, in octets.
const MAX_MKI_LEN: usize = 128;

/// One `inline:` key parameter: master key and salt, optional lifetime
/// and MKI.
#[derive(Clone)]
pub struct KeyParams {
    /// The master key and salt.
    pub key: MasterKey,
    /// Master key lifetime in packets, if given.
    pub lifetime: Option<u64>,
    /// MKI value and length in octets, if given.
    pub mki: Option<(u64, usize)>,
}

impl std::fmt::Debug for KeyParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyParams")
            .field("key", &self.key)
            .field("lifetime", &self.lifetime)
            .field("mki", &self.mki)
            .finish()
    }
}

impl KeyParams {
    /// Parses `inline:…` (the `inline:` prefix is optional) for `suite`.
    pub fn parse(suite: Suite, s: &str) -> Result<KeyParams, Error> {
        let s = s.trim();
        let info = match s.split_once(':') {
            Some((method, rest)) if method.eq_ignore_ascii_case("inline") => rest,
            Some(_) if s.contains('|') && !s[..s.find('|').unwrap_or(0)].contains(':') => s,
            Some(_) => return Err(Error::InvalidSdes("key method is not inline")),
            None => s,
        };
        let mut parts = info.split('|');
        let b64 = parts.next().unwrap_or_default();
        let mut raw = [0u8; 64];
        let n = STANDARD_PAD_INDIFFERENT
            .decode_slice(b64, &mut raw)
            .map_err(|_| Error::InvalidSdes("key-salt is not base64 of the suite's length"))?;
        let key = MasterKey::from_concatenated(suite, &raw[..n])
            .map_err(|_| Error::InvalidSdes("key-salt length does not match the suite"));
        zeroize::Zeroize::zeroize(&mut raw);
        let key = key?;
        let mut out = KeyParams {
            key,
            lifetime: None,
            mki: None,
        };
        for p in parts {
            if let Some((v, l)) = p.split_once(':') {
                if out.mki.is_some() {
                    return Err(Error::InvalidSdes("more than one MKI"));
                }
                let len: usize = parse_digits(l).ok_or(Error::InvalidSdes("MKI length"))?;
                if !(1..=MAX_MKI_LEN).contains(&len) {
                    return Err(Error::InvalidSdes("MKI length must be 1 ..= 128"));
                }
                let value: u64 = parse_digits(v).ok_or(Error::InvalidSdes("MKI value"))?;
                if len < 8 && value >> (8 * len) != 0 {
                    return Err(Error::InvalidSdes("MKI value does not fit its length"));
                }
                out.mki = Some((value, len));
            } else {
                if out.lifetime.is_some() || out.mki.is_some() {
                    return Err(Error::InvalidSdes("lifetime must come once, before the MKI"));
                }
                let lifetime = match p.strip_prefix("2^") {
                    Some(exp) => {
                        let e: u32 = parse_digits(exp).ok_or(Error::InvalidSdes("lifetime"))?;
                        1u64.checked_shl(e)
                            .filter(|_| e < 64)
                            .ok_or(Error::InvalidSdes("lifetime too large"))?
                    }
                    None => parse_digits(p).ok_or(Error::InvalidSdes("lifetime"))?,
                };
                if lifetime == 0 || lifetime > 1 << 48 {
                    return Err(Error::InvalidSdes("lifetime must be 1 ..= 2^48"));
                }
                out.lifetime = Some(lifetime);
            }
        }
        Ok(out)
    }

    /// The MKI octets: the value big-endian over its length.
    pub fn mki_bytes(&self) -> Option<Vec<u8>> {
        let (value, len) = self.mki?;
        let mut v = vec![0u8; len];
        let be = value.to_be_bytes();
        let take = len.min(8);
        v[len - take..].copy_from_slice(&be[8 - take..]);
        Some(v)
    }

    /// Context options carrying this key's MKI and lifetime (other fields
    /// default).
    pub fn options(&self) -> Options {
        Options {
            mki: self.mki_bytes(),
            key_lifetime: self.lifetime,
            ..Options::default()
        }
    }

    /// Prints the parameter, `inline:` prefix included, e.g.
    /// `inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4`.
    /// This is the one way key material leaves the crate as text.
    pub fn to_inline(&self) -> String {
        let mut raw = Vec::with_capacity(self.key.key().len() + self.key.salt().len());
        raw.extend_from_slice(self.key.key());
        raw.extend_from_slice(self.key.salt());
        let mut s = format!("inline:{}", STANDARD.encode(&raw));
        zeroize::Zeroize::zeroize(&mut raw);
        if let Some(l) = self.lifetime {
            if l.is_power_of_two() {
                s.push_str(&format!("|2^{}", l.trailing_zeros()));
            } else {
                s.push_str(&format!("|{l}"));
            }
        }
        if let Some((v, len)) = self.mki {
            s.push_str(&format!("|{v}:{len}"));
        }
        s
    }
}

/// A whole `a=crypto` attribute value: `tag suite key-params [session-params]`.
#[derive(Debug, Clone)]
pub struct CryptoAttribute {
    /// The attribute tag (1 ..= 999999999) that the answer echoes.
    pub tag: u32,
    /// The crypto suite.
    pub suite: Suite,
    /// The key parameters (several only with MKIs); at least one.
    pub keys: Vec<KeyParams>,
    /// Session parameters as given (e.g. `UNENCRYPTED_SRTCP`, `KDR=10`).
    pub session_params: Vec<String>,
}

impl CryptoAttribute {
    /// Parses the value after `a=crypto:`.
    pub fn parse(value: &str) -> Result<CryptoAttribute, Error> {
        let mut it = value.split_ascii_whitespace();
        let tag = it
            .next()
            .and_then(parse_digits)
            .filter(|t: &u32| (1..=999_999_999).contains(t))
            .ok_or(Error::InvalidSdes("tag"))?;
        let suite = Suite::from_sdes_name(it.next().ok_or(Error::InvalidSdes("missing suite"))?)?;
        let keys = it
            .next()
            .ok_or(Error::InvalidSdes("missing key parameters"))?
            .split(';')
            .map(|k| KeyParams::parse(suite, k))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CryptoAttribute {
            tag,
            suite,
            keys,
            session_params: it.map(str::to_owned).collect(),
        })
    }

    /// Options for a context of this attribute: MKI and lifetime of the
    /// first key (add the others with
    /// [`Context::add_master_key`](crate::Context::add_master_key)), `UNENCRYPTED_SRTCP` and `KDR=n` (RFC 4568 §6.3.1:
    /// rate 2^n) from the session parameters.
    pub fn options(&self) -> Result<Options, Error> {
        let mut o = self.keys.first().map(KeyParams::options).unwrap_or_default();
        for p in &self.session_params {
            if p == "UNENCRYPTED_SRTCP" {
                o.encrypt_rtcp = false;
            } else if let Some(n) = p.strip_prefix("KDR=") {
                let n: u32 = parse_digits(n)
                    .filter(|&n| n <= 24)
                    .ok_or(Error::InvalidSdes("KDR must be 0 ..= 24"))?;
                o.key_derivation_rate = 1 << n;
            } else if p == "UNENCRYPTED_SRTP" || p == "UNAUTHENTICATED_SRTP" {
                return Err(Error::InvalidSdes(
                    "unencrypted or unauthenticated SRTP is not supported",
                ));
            }
        }
        Ok(o)
    }

    /// Prints the attribute value (key material included).
    pub fn to_value(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(KeyParams::to_inline).collect();
        let mut s = format!("{} {} {}", self.tag, self.suite.sdes_name(), keys.join(";"));
        for p in &self.session_params {
            s.push(' ');
            s.push_str(p);
        }
        s
    }
}

fn parse_digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4568 §7.1's example key.
    const RFC_KEY: &str = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4";

    #[test]
    fn parse_and_print_rfc_example() {
        let k = KeyParams::parse(Suite::AesCm128HmacSha1_80, RFC_KEY).unwrap();
        assert_eq!(k.lifetime, Some(1 << 20));
        assert_eq!(k.mki, Some((1, 4)));
        assert_eq!(k.mki_bytes(), Some(vec![0, 0, 0, 1]));
        assert_eq!(k.to_inline(), RFC_KEY);
        assert!(!format!("{k:?}").contains("WVNf"));
    }

    #[test]
    fn lengths_validated_per_suite() {
        assert!(KeyParams::parse(Suite::AesCm256HmacSha1_80, RFC_KEY).is_err());
        assert!(KeyParams::parse(Suite::AeadAes128Gcm, RFC_KEY).is_err());
        let gcm = STANDARD.encode([7u8; 28]);
        assert!(KeyParams::parse(Suite::AeadAes128Gcm, &format!("inline:{gcm}")).is_ok());
        let aes256 = STANDARD.encode([7u8; 46]);
        let unpadded = aes256.trim_end_matches('=');
        assert!(KeyParams::parse(Suite::AesCm256HmacSha1_80, &format!("inline:{unpadded}")).is_ok());
    }

    #[test]
    fn bad_inputs() {
        for bad in [
            "inline:",
            "inline:!!!!",
            "uri:foo",
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|0",
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^49",
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|1:0",
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|1:129",
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|256:1",
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|1:4|2^20",
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^10|2^20",
        ] {
            assert!(KeyParams::parse(Suite::AesCm128HmacSha1_80, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn whole_attribute() {
        let v = format!("1 AES_CM_128_HMAC_SHA1_80 {RFC_KEY} UNENCRYPTED_SRTCP KDR=10");
        let a = CryptoAttribute::parse(&v).unwrap();
        assert_eq!(a.tag, 1);
        assert_eq!(a.suite, Suite::AesCm128HmacSha1_80);
        let o = a.options().unwrap();
        assert!(!o.encrypt_rtcp);
        assert_eq!(o.key_derivation_rate, 1024);
        assert_eq!(o.mki, Some(vec![0, 0, 0, 1]));
        assert_eq!(a.to_value(), v);
        assert!(CryptoAttribute::parse("0 AES_CM_128_HMAC_SHA1_80 inline:x").is_err());
        assert!(CryptoAttribute::parse("1 NOPE inline:x").is_err());
    }
}
