//! SDES `a=crypto` (RFC 4568 §9.1) and the key material it carries.
//!
//! ```text
//! a=crypto:<tag> <crypto-suite> <key-params>[;<key-params>...] [<session-param> ...]
//! key-params = inline:<base64(key ‖ salt)>[|<lifetime>][|<MKI value>:<MKI length>]
//! lifetime   = 2^<n> | <decimal packets>
//! ```
//!
//! A parsed [`CryptoAttr`] prints back to the same text: the base64 is
//! required to be canonical (so re-encoding gives the same characters,
//! with or without `=` padding as received) and the lifetime and MKI
//! suffix is kept as written. Keys live only in [`KeyMaterial`], which is
//! wiped on drop and never shows its bytes in `Debug`.
//!
//! This is a private parser rather than `pbx_srtp::CryptoAttribute`
//! because the SDP side needs an exact print-back, one typed error per
//! cause (bad base64 vs. wrong length, so the B2BUA can log why an offer
//! was refused) and the raw session parameters for offer/answer policy.
//! The suite table ([`Suite`]) and the key container
//! ([`pbx_srtp::MasterKey`]) are shared with `pbx-srtp`.

use crate::parse::split_once_byte;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, STANDARD_PAD_INDIFFERENT};
use pbx_srtp::MasterKey;
use zeroize::Zeroizing;

use crate::parse::is_digits;
use crate::{CryptoError, KeyGenError, Suite};

/// Most key parameters accepted in one `a=crypto` line.
const MAX_KEYS: usize = 16;
/// Longest key ‖ salt of any suite (AES-256: 32 + 14).
const MAX_KEY_SALT: usize = 46;
/// Largest lifetime RFC 3711 allows for SRTP (2^48 packets).
const MAX_LIFETIME: u64 = 1 << 48;

/// A master key and salt for one suite: what an `inline:` parameter
/// carries, and what a `pbx_srtp::Context` is built from.
///
/// Wiped on drop (through [`MasterKey`]); `Debug` prints only the suite.
/// There is deliberately no `PartialEq`: compare with
/// [`KeyMaterial::ct_eq`], which does not leak timing.
#[derive(Clone)]
pub struct KeyMaterial {
    suite: Suite,
    key: MasterKey,
}

impl KeyMaterial {
    /// Key material from separate key and salt; their lengths must be the
    /// suite's.
    pub fn new(suite: Suite, key: &[u8], salt: &[u8]) -> Result<KeyMaterial, CryptoError> {
        let expected = suite.key_len() + suite.salt_len();
        if key.len() != suite.key_len() || salt.len() != suite.salt_len() {
            return Err(CryptoError::KeyLength {
                suite,
                expected,
                got: key.len() + salt.len(),
            });
        }
        let key = MasterKey::new(key, salt).map_err(|_| CryptoError::KeyLength {
            suite,
            expected,
            got: key.len() + salt.len(),
        })?;
        Ok(KeyMaterial { suite, key })
    }

    /// Key material from `key ‖ salt` as SDES carries it.
    pub fn from_concatenated(suite: Suite, key_and_salt: &[u8]) -> Result<KeyMaterial, CryptoError> {
        let expected = suite.key_len() + suite.salt_len();
        if key_and_salt.len() != expected {
            return Err(CryptoError::KeyLength {
                suite,
                expected,
                got: key_and_salt.len(),
            });
        }
        let (k, s) = key_and_salt.split_at(suite.key_len());
        KeyMaterial::new(suite, k, s)
    }

    /// Fresh key material from the operating system's CSPRNG. This is the
    /// key generator to pass to [`answer`](crate::answer) and
    /// [`offer`](crate::offer) in production:
    /// `answer(&sdp, &local, &policy, &mut KeyMaterial::random)`.
    pub fn random(suite: Suite) -> Result<KeyMaterial, KeyGenError> {
        let mut buf = Zeroizing::new([0u8; MAX_KEY_SALT]);
        let n = suite.key_len() + suite.salt_len();
        let out = buf.get_mut(..n).ok_or(KeyGenError)?;
        getrandom::getrandom(out).map_err(|_| KeyGenError)?;
        KeyMaterial::from_concatenated(suite, out).map_err(|_| KeyGenError)
    }

    /// The suite this key is for.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The master key octets.
    pub fn key(&self) -> &[u8] {
        self.key.key()
    }

    /// The master salt octets.
    pub fn salt(&self) -> &[u8] {
        self.key.salt()
    }

    /// The key in the form `pbx_srtp::Context::new` takes.
    pub fn master_key(&self) -> &MasterKey {
        &self.key
    }

    /// Constant-time equality of suite, key and salt.
    pub fn ct_eq(&self, other: &KeyMaterial) -> bool {
        fn eq(a: &[u8], b: &[u8]) -> bool {
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        }
        // Evaluate both comparisons before combining them.
        let k = eq(self.key(), other.key());
        let s = eq(self.salt(), other.salt());
        self.suite == other.suite && k & s
    }

    /// `base64(key ‖ salt)`, in a buffer that is wiped on drop.
    fn to_base64(&self, padded: bool) -> Zeroizing<String> {
        let mut raw = Zeroizing::new([0u8; MAX_KEY_SALT]);
        let (k, s) = (self.key(), self.salt());
        let n = k.len() + s.len();
        let mut out = Zeroizing::new(String::with_capacity(64));
        // Lengths come from `MasterKey` (at most 32 + 14), so the ranges fit.
        if let Some(d) = raw.get_mut(..k.len()) {
            d.copy_from_slice(k);
        }
        if let Some(d) = raw.get_mut(k.len()..n) {
            d.copy_from_slice(s);
        }
        let bytes = raw.get(..n).unwrap_or_default();
        if padded {
            STANDARD.encode_string(bytes, &mut out);
        } else {
            STANDARD_NO_PAD.encode_string(bytes, &mut out);
        }
        out
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("suite", &format_args!("{}", self.suite))
            .finish_non_exhaustive()
    }
}

/// A master key identifier (RFC 3711 §3.1, RFC 4568 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mki {
    /// The MKI value.
    pub value: u64,
    /// Its length on the wire in octets, 1..=128.
    pub len: u8,
}

impl Mki {
    /// The MKI octets as they appear in SRTP packets: the value big-endian
    /// over `len` octets.
    pub fn to_bytes(self) -> Vec<u8> {
        let len = usize::from(self.len);
        let mut v = vec![0u8; len];
        let be = self.value.to_be_bytes();
        let take = len.min(8);
        if let (Some(dst), Some(src)) = (v.get_mut(len - take..), be.get(8 - take..)) {
            dst.copy_from_slice(src);
        }
        v
    }
}

/// One `inline:` key parameter.
#[derive(Debug, Clone)]
pub struct KeyParam {
    key: KeyMaterial,
    /// The key method as written (`inline`, any case).
    method: String,
    /// Whether the base64 carried `=` padding.
    padded: bool,
    lifetime: Option<u64>,
    mki: Option<Mki>,
    /// `|lifetime|mki` exactly as written, for printing.
    suffix: String,
}

impl KeyParam {
    /// A plain `inline:<key>` parameter (padded base64, no lifetime, no MKI).
    pub fn new(key: KeyMaterial) -> KeyParam {
        KeyParam {
            key,
            method: "inline".into(),
            padded: true,
            lifetime: None,
            mki: None,
            suffix: String::new(),
        }
    }

    /// The key and salt.
    pub fn key(&self) -> &KeyMaterial {
        &self.key
    }

    /// The master key lifetime in packets, if given.
    pub fn lifetime(&self) -> Option<u64> {
        self.lifetime
    }

    /// The MKI, if given.
    pub fn mki(&self) -> Option<Mki> {
        self.mki
    }

    /// Parses one key parameter for `suite`.
    pub fn parse(suite: Suite, s: &str) -> Result<KeyParam, CryptoError> {
        let (method, info) = split_once_byte(s, b':').ok_or(CryptoError::UnsupportedKeyMethod)?;
        if !method.eq_ignore_ascii_case("inline") {
            return Err(CryptoError::UnsupportedKeyMethod);
        }
        let (b64, suffix) = match info.bytes().position(|c| c == b'|') {
            Some(i) => info.split_at(i),
            None => (info, ""),
        };
        let key = decode_key(suite, b64)?;
        let mut lifetime = None;
        let mut mki = None;
        // `suffix` is empty or starts with '|'; skip the first (empty) piece.
        for part in suffix.split('|').skip(1) {
            if let Some((v, l)) = split_once_byte(part, b':') {
                if mki.is_some() {
                    return Err(CryptoError::InvalidMki);
                }
                mki = Some(parse_mki(v, l)?);
            } else {
                if lifetime.is_some() || mki.is_some() {
                    return Err(CryptoError::InvalidLifetime);
                }
                lifetime = Some(parse_lifetime(part)?);
            }
        }
        Ok(KeyParam {
            key,
            method: method.to_owned(),
            padded: b64.ends_with('='),
            lifetime,
            mki,
            suffix: suffix.to_owned(),
        })
    }
}

impl fmt::Display for KeyParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}{}",
            self.method,
            self.key.to_base64(self.padded).as_str(),
            self.suffix
        )
    }
}

fn decode_key(suite: Suite, b64: &str) -> Result<KeyMaterial, CryptoError> {
    let expected = suite.key_len() + suite.salt_len();
    // Anything longer than 64 characters decodes to more than 46 octets:
    // refuse it before decoding, reporting roughly what it would be.
    if b64.len() > 64 {
        return Err(CryptoError::KeyLength {
            suite,
            expected,
            got: b64.len() / 4 * 3,
        });
    }
    let mut raw = Zeroizing::new([0u8; 48]);
    let n = STANDARD_PAD_INDIFFERENT
        .decode_slice(b64, raw.as_mut_slice())
        .map_err(|_| CryptoError::InvalidBase64)?;
    let bytes = raw.get(..n).unwrap_or_default();
    // Canonical only, so printing reproduces the text.
    let mut again = Zeroizing::new(String::with_capacity(64));
    if b64.ends_with('=') {
        STANDARD.encode_string(bytes, &mut again);
    } else {
        STANDARD_NO_PAD.encode_string(bytes, &mut again);
    }
    if again.as_str() != b64 {
        return Err(CryptoError::InvalidBase64);
    }
    if n != expected {
        return Err(CryptoError::KeyLength {
            suite,
            expected,
            got: n,
        });
    }
    KeyMaterial::from_concatenated(suite, bytes)
}

fn parse_lifetime(s: &str) -> Result<u64, CryptoError> {
    let packets = match s.strip_prefix("2^") {
        Some(e) if is_digits(e, 2) => {
            let e: u32 = e.parse().map_err(|_| CryptoError::InvalidLifetime)?;
            1u64.checked_shl(e)
                .filter(|_| e <= 48)
                .ok_or(CryptoError::InvalidLifetime)?
        }
        Some(_) => return Err(CryptoError::InvalidLifetime),
        None if is_digits(s, 15) => s.parse().map_err(|_| CryptoError::InvalidLifetime)?,
        None => return Err(CryptoError::InvalidLifetime),
    };
    if packets == 0 || packets > MAX_LIFETIME {
        return Err(CryptoError::InvalidLifetime);
    }
    Ok(packets)
}

fn parse_mki(v: &str, l: &str) -> Result<Mki, CryptoError> {
    if !is_digits(v, 20) || !is_digits(l, 3) {
        return Err(CryptoError::InvalidMki);
    }
    let value: u64 = v.parse().map_err(|_| CryptoError::InvalidMki)?;
    let len: u8 = l
        .parse()
        .ok()
        .filter(|n| (1..=128).contains(n))
        .ok_or(CryptoError::InvalidMki)?;
    if len < 8 && value >> (8 * u32::from(len)) != 0 {
        return Err(CryptoError::InvalidMki);
    }
    Ok(Mki { value, len })
}

/// The session parameters of RFC 4568 §6.3 that change security, as
/// flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionFlags {
    /// `UNENCRYPTED_SRTP`: media payloads are not encrypted.
    pub unencrypted_srtp: bool,
    /// `UNENCRYPTED_SRTCP`: RTCP is not encrypted.
    pub unencrypted_srtcp: bool,
    /// `UNAUTHENTICATED_SRTP`: media has no authentication tag.
    pub unauthenticated_srtp: bool,
}

/// A parsed `a=crypto` value.
#[derive(Debug, Clone)]
pub struct CryptoAttr {
    /// The tag, 0..=999999999; the answer echoes it.
    pub tag: u32,
    /// The crypto suite.
    pub suite: Suite,
    /// One or more key parameters (several only with distinct MKIs).
    pub keys: Vec<KeyParam>,
    /// Session parameters as written (`KDR=10`, `UNENCRYPTED_SRTCP`, ...).
    pub session_params: Vec<String>,
}

impl CryptoAttr {
    /// A line with one plain `inline:` key and no session parameters.
    pub fn new(tag: u32, key: KeyMaterial) -> CryptoAttr {
        CryptoAttr {
            tag,
            suite: key.suite(),
            keys: vec![KeyParam::new(key)],
            session_params: Vec::new(),
        }
    }

    /// The first (usually the only) key.
    pub fn key(&self) -> Option<&KeyMaterial> {
        self.keys.first().map(KeyParam::key)
    }

    /// The security-relevant flags among the session parameters.
    pub fn flags(&self) -> SessionFlags {
        let mut f = SessionFlags::default();
        for p in &self.session_params {
            match p.as_str() {
                "UNENCRYPTED_SRTP" => f.unencrypted_srtp = true,
                "UNENCRYPTED_SRTCP" => f.unencrypted_srtcp = true,
                "UNAUTHENTICATED_SRTP" => f.unauthenticated_srtp = true,
                _ => {}
            }
        }
        f
    }

    /// `KDR=n`: the key derivation rate is 2^n packets (RFC 4568 §6.3.1).
    pub fn kdr(&self) -> Option<u8> {
        self.session_params
            .iter()
            .find_map(|p| p.strip_prefix("KDR="))
            .and_then(|n| n.parse().ok())
    }

    /// `WSH=n`: the sender's suggested replay window size.
    pub fn wsh(&self) -> Option<u32> {
        self.session_params
            .iter()
            .find_map(|p| p.strip_prefix("WSH="))
            .and_then(|n| n.parse().ok())
    }

    /// The first session parameter we do not implement and may not ignore:
    /// anything but the three flags, `KDR`, `WSH` and `-`-prefixed
    /// (optional) parameters. `FEC_ORDER` and `FEC_KEY` count as
    /// unsupported. RFC 4568 §6.3: such a line is not acceptable.
    pub fn unsupported_mandatory_param(&self) -> Option<&str> {
        self.session_params.iter().map(String::as_str).find(|p| {
            !(p.starts_with('-')
                || matches!(*p, "UNENCRYPTED_SRTP" | "UNENCRYPTED_SRTCP" | "UNAUTHENTICATED_SRTP")
                || p.starts_with("KDR=")
                || p.starts_with("WSH="))
        })
    }
}

impl FromStr for CryptoAttr {
    type Err = CryptoError;

    /// Parses the value after `a=crypto:`.
    fn from_str(v: &str) -> Result<CryptoAttr, CryptoError> {
        let mut it = v.split_ascii_whitespace();
        let tag = it.next().ok_or(CryptoError::Truncated)?;
        if !is_digits(tag, 9) || (tag.len() > 1 && tag.starts_with('0')) {
            return Err(CryptoError::InvalidTag);
        }
        let tag: u32 = tag.parse().map_err(|_| CryptoError::InvalidTag)?;
        let name = it.next().ok_or(CryptoError::Truncated)?;
        let suite =
            Suite::from_sdes_name(name).map_err(|_| CryptoError::UnknownSuite(name.chars().take(64).collect()))?;
        let key_params = it.next().ok_or(CryptoError::Truncated)?;
        let mut keys = Vec::new();
        for k in key_params.split(';') {
            if keys.len() == MAX_KEYS {
                return Err(CryptoError::TooManyKeys);
            }
            keys.push(KeyParam::parse(suite, k)?);
        }
        if keys.len() > 1 {
            let mut mkis: Vec<u64> = Vec::with_capacity(keys.len());
            for k in &keys {
                let m = k.mki.ok_or(CryptoError::MkiRequired)?;
                if mkis.contains(&m.value) {
                    return Err(CryptoError::MkiRequired);
                }
                mkis.push(m.value);
            }
        }
        let session_params: Vec<String> = it.map(str::to_owned).collect();
        for p in &session_params {
            check_session_param(p)?;
        }
        Ok(CryptoAttr {
            tag,
            suite,
            keys,
            session_params,
        })
    }
}

/// Checks the value of the session parameters we know.
fn check_session_param(p: &str) -> Result<(), CryptoError> {
    let bad = || CryptoError::InvalidSessionParam(p.chars().take(64).collect());
    if let Some(n) = p.strip_prefix("KDR=") {
        if !is_digits(n, 2) || n.parse::<u8>().map_or(true, |n| n > 24) {
            return Err(bad());
        }
    } else if let Some(n) = p.strip_prefix("WSH=") {
        if !is_digits(n, 10) || n.parse::<u32>().map_or(true, |n| n < 64) {
            return Err(bad());
        }
    } else if let Some(o) = p.strip_prefix("FEC_ORDER=")
        && !matches!(o, "FEC_SRTP" | "SRTP_FEC")
    {
        return Err(bad());
    }
    Ok(())
}

impl fmt::Display for CryptoAttr {
    /// Prints the value after `a=crypto:`, key material included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.tag, self.suite.sdes_name())?;
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{k}")?;
        }
        for p in &self.session_params {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4568 §7.1.1's example key (30 octets).
    const RFC: &str = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4";

    fn parse(s: &str) -> Result<CryptoAttr, CryptoError> {
        s.parse()
    }

    #[test]
    fn rfc_example_round_trips() {
        let a = parse(RFC).unwrap();
        assert_eq!((a.tag, a.suite), (1, Suite::AesCm128HmacSha1_80));
        assert_eq!(a.keys[0].lifetime(), Some(1 << 20));
        assert_eq!(a.keys[0].mki(), Some(Mki { value: 1, len: 4 }));
        assert_eq!(a.keys[0].mki().unwrap().to_bytes(), [0, 0, 0, 1]);
        assert_eq!(a.to_string(), RFC);
    }

    #[test]
    fn exact_print_keeps_written_forms() {
        for s in [
            "7 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1048576",
            "2 AES_CM_128_HMAC_SHA1_80 INLINE:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31|0002:2 KDR=3 -FOO=1",
            "3 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==",
            "3 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw",
        ] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn lengths_per_suite() {
        let b64 = |n: usize| STANDARD.encode(vec![5u8; n]);
        for (suite, n) in [
            ("AES_CM_128_HMAC_SHA1_80", 30),
            ("AES_CM_128_HMAC_SHA1_32", 30),
            ("AES_256_CM_HMAC_SHA1_80", 46),
            ("AES_256_CM_HMAC_SHA1_32", 46),
            ("AEAD_AES_128_GCM", 28),
            ("AEAD_AES_256_GCM", 44),
        ] {
            let a = parse(&format!("1 {suite} inline:{}", b64(n))).unwrap();
            assert_eq!(a.suite.sdes_name(), suite);
            for wrong in [1, n - 1, n + 1, 30, 46, 28, 44] {
                if wrong == n {
                    continue;
                }
                let e = parse(&format!("1 {suite} inline:{}", b64(wrong))).unwrap_err();
                assert!(
                    matches!(e, CryptoError::KeyLength { got, .. } if got == wrong),
                    "{suite} {wrong}: {e:?}"
                );
            }
        }
    }

    #[test]
    fn errors() {
        let k = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        let cases: &[(&str, CryptoError)] = &[
            ("", CryptoError::Truncated),
            ("1", CryptoError::Truncated),
            ("1 AES_CM_128_HMAC_SHA1_80", CryptoError::Truncated),
            ("x AES_CM_128_HMAC_SHA1_80 inline:x", CryptoError::InvalidTag),
            ("1234567890 AES_CM_128_HMAC_SHA1_80 inline:x", CryptoError::InvalidTag),
            ("01 AES_CM_128_HMAC_SHA1_80 inline:x", CryptoError::InvalidTag),
            (
                "1 F8_128_HMAC_SHA1_80 inline:x",
                CryptoError::UnknownSuite("F8_128_HMAC_SHA1_80".into()),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 uri:http://x",
                CryptoError::UnsupportedKeyMethod,
            ),
            ("1 AES_CM_128_HMAC_SHA1_80 PS1u", CryptoError::UnsupportedKeyMethod),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!!", CryptoError::InvalidBase64),
            // 28 octets need 38 characters; a last one with low bits set is not canonical.
            (
                "1 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGx",
                CryptoError::InvalidBase64,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB=",
                CryptoError::InvalidBase64,
            ),
        ];
        for (s, e) in cases {
            assert_eq!(parse(s).as_ref().map(|_| ()).unwrap_err(), e, "{s}");
        }
        for suffix in [
            "|0",
            "|2^49",
            "|2^",
            "|x",
            "|281474976710657",
            "|2^20|2^20",
            "|1:4|2^20",
        ] {
            let s = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}{suffix}");
            assert_eq!(parse(&s).unwrap_err(), CryptoError::InvalidLifetime, "{s}");
        }
        for suffix in ["|1:0", "|1:129", "|256:1", "|1:4|2:4", "|x:1", "|1:"] {
            let s = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}{suffix}");
            assert_eq!(parse(&s).unwrap_err(), CryptoError::InvalidMki, "{s}");
        }
        let two = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k};inline:{k}");
        assert_eq!(parse(&two).unwrap_err(), CryptoError::MkiRequired);
        let two = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|1:1;inline:{k}|2:1");
        assert_eq!(parse(&two).unwrap().keys.len(), 2);
        for p in ["KDR=25", "KDR=x", "WSH=10", "FEC_ORDER=X"] {
            let s = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k} {p}");
            assert!(matches!(parse(&s), Err(CryptoError::InvalidSessionParam(_))), "{s}");
        }
    }

    #[test]
    fn session_params() {
        let k = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        let a = parse(&format!(
            "1 AES_CM_128_HMAC_SHA1_80 inline:{k} KDR=10 UNENCRYPTED_SRTCP WSH=128 -X"
        ))
        .unwrap();
        assert_eq!(a.kdr(), Some(10));
        assert_eq!(a.wsh(), Some(128));
        assert_eq!(
            a.flags(),
            SessionFlags {
                unencrypted_srtcp: true,
                ..SessionFlags::default()
            }
        );
        assert_eq!(a.unsupported_mandatory_param(), None);
        let a = parse(&format!(
            "1 AES_CM_128_HMAC_SHA1_80 inline:{k} FEC_ORDER=FEC_SRTP NEW_THING"
        ))
        .unwrap();
        assert_eq!(a.unsupported_mandatory_param(), Some("FEC_ORDER=FEC_SRTP"));
    }

    #[test]
    fn key_material_is_redacted_and_random() {
        let k = KeyMaterial::random(Suite::AesCm128HmacSha1_80).unwrap();
        let dbg = format!("{k:?}");
        assert_eq!(dbg, "KeyMaterial { suite: AES_CM_128_HMAC_SHA1_80, .. }");
        let attr = CryptoAttr::new(1, k.clone());
        assert!(!format!("{attr:?}").contains(&STANDARD.encode(k.key())[..8]));
        let k2 = KeyMaterial::random(Suite::AesCm128HmacSha1_80).unwrap();
        assert!(!k.ct_eq(&k2));
        assert!(k.ct_eq(&k.clone()));
        assert_eq!(KeyMaterial::random(Suite::AeadAes256Gcm).unwrap().key().len(), 32);
        assert_eq!(KeyMaterial::random(Suite::AeadAes256Gcm).unwrap().salt().len(), 12);
    }
}
