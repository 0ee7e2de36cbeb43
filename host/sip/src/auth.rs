//! Server-side SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760),
//! sans-IO.
//!
//! The flow on the PBX side:
//!
//! 1. A request without credentials gets a `401` (or `407`) carrying the
//!    header values of [`Authenticator::challenges`]: SHA-256 first, then
//!    MD5 for older phones (RFC 8760 §2.4).
//! 2. The retried request's `Authorization` value goes through
//!    [`DigestResponse::parse`]; the caller looks up the user named in it
//!    and passes the password (or a stored HA1) to
//!    [`Authenticator::verify`].
//! 3. [`AuthError::StaleNonce`] means the credentials were right but the
//!    nonce had expired: challenge again with `stale = true` so the phone
//!    retries without asking the user (RFC 7616 §3.3).
//!
//! # Nonces
//!
//! Nonces are self-validating, so no per-challenge state is kept: a nonce
//! is `base64url(timestamp ‖ counter ‖ HMAC-SHA-256(key, timestamp ‖
//! counter)[..16])`. A forged or altered nonce fails the HMAC; an old one
//! fails the lifetime check. State is kept only for nonces that have been
//! *used*, to refuse replays: the highest `nc` per nonce, in a table of
//! bounded size (see [`Authenticator::verify`]).
//!
//! # Secrets
//!
//! Passwords and HA1 values travel in [`Credential`], whose `Debug` output
//! is redacted, and no error text ever contains them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::message::text::{has_forbidden_control, split_once_byte, split_top_level, unquote_cow};
use crate::message::{HeaderName, Method};
use std::borrow::Cow;

/// Why a challenge could not be made or credentials were refused.
///
/// No variant carries user input or secrets, so errors are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The realm contains quotes, backslashes or control characters.
    #[error("invalid realm")]
    InvalidRealm,
    /// The operating system could not supply random bytes for a key.
    #[error("no randomness available for the nonce key")]
    Random,
    /// The credentials header is not a well-formed Digest response.
    #[error("malformed digest credentials: {0}")]
    Malformed(&'static str),
    /// The credentials are for another realm.
    #[error("credentials for another realm")]
    WrongRealm,
    /// The algorithm is neither MD5 nor SHA-256 (no `-sess`, no userhash).
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,
    /// The qop is not `auth` (`auth-int` is not supported).
    #[error("unsupported qop")]
    UnsupportedQop,
    /// The stored HA1 was computed with another algorithm than the response.
    #[error("stored HA1 does not match the response algorithm")]
    AlgorithmMismatch,
    /// The nonce was not issued by this server (bad HMAC or encoding).
    #[error("nonce not issued by this server")]
    InvalidNonce,
    /// The opaque value is not the one this server sends.
    #[error("opaque mismatch")]
    OpaqueMismatch,
    /// The nonce has expired but the response was right: re-challenge with
    /// `stale=true`.
    #[error("stale nonce")]
    StaleNonce,
    /// The response hash is wrong (wrong password, or tampered request).
    #[error("wrong digest response")]
    WrongResponse,
    /// The nonce count did not increase: a replayed request.
    #[error("replayed nonce count")]
    Replay,
}

/// A digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5 (RFC 2617): what every phone supports.
    Md5,
    /// SHA-256 (RFC 7616, RFC 8760): preferred where supported.
    Sha256,
}

impl Algorithm {
    /// The token used in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// The `algorithm=` parameter (MD5 when absent, RFC 2617).
    fn from_param(value: Option<&str>) -> Result<Algorithm, AuthError> {
        match value {
            None => Ok(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("MD5") => Ok(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Ok(Algorithm::Sha256),
            Some(_) => Err(AuthError::UnsupportedAlgorithm),
        }
    }

    /// `H(a:b:c...)` in lower-case hex, hashed part by part (no joined
    /// copy: this runs three times per authenticated request).
    fn hash_joined(self, parts: &[&str]) -> HexDigest {
        fn joined<D: Digest>(parts: &[&str]) -> sha2::digest::Output<D> {
            let mut d = D::new();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(part.as_bytes());
            }
            d.finalize()
        }
        match self {
            Algorithm::Md5 => HexDigest::new(&joined::<Md5>(parts)),
            Algorithm::Sha256 => HexDigest::new(&joined::<Sha256>(parts)),
        }
    }
}

/// A digest in lower-case hex, on the stack (at most SHA-256's 64 digits).
struct HexDigest {
    buf: [u8; 64],
    len: usize,
}

impl HexDigest {
    fn new(bytes: &[u8]) -> HexDigest {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        let len = bytes.len().min(32) * 2;
        for (pair, b) in buf.chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0xf)];
        }
        HexDigest { buf, len }
    }

    fn as_str(&self) -> &str {
        // Only ASCII hex digits were written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Display for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<&str> for HexDigest {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::ops::Deref for HexDigest {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// Whether the challenge is from a UAS (`401`) or a proxy (`407`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// `401 Unauthorized` with `WWW-Authenticate`; answered in `Authorization`.
    Www,
    /// `407 Proxy Authentication Required` with `Proxy-Authenticate`;
    /// answered in `Proxy-Authorization`.
    Proxy,
}

impl ChallengeKind {
    /// The response status that carries the challenge.
    pub fn status(self) -> u16 {
        match self {
            ChallengeKind::Www => 401,
            ChallengeKind::Proxy => 407,
        }
    }

    /// The header carrying the challenge.
    pub fn challenge_header(self) -> HeaderName {
        match self {
            ChallengeKind::Www => HeaderName::WWW_AUTHENTICATE,
            ChallengeKind::Proxy => HeaderName::PROXY_AUTHENTICATE,
        }
    }

    /// The header in which the client answers.
    pub fn credentials_header(self) -> HeaderName {
        match self {
            ChallengeKind::Www => HeaderName::AUTHORIZATION,
            ChallengeKind::Proxy => HeaderName::PROXY_AUTHORIZATION,
        }
    }
}

/// A user's secret as the caller stores it.
///
/// `Debug` prints `<redacted>`; there is no `Display`.
#[derive(Clone)]
pub enum Credential {
    /// The clear-text password.
    Password(String),
    /// A precomputed `H(username:realm:password)` in hex, for one algorithm.
    Ha1 {
        /// The algorithm `hex` was computed with.
        algorithm: Algorithm,
        /// The HA1 in hex.
        hex: String,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Password(_) => f.write_str("Credential::Password(<redacted>)"),
            Credential::Ha1 { algorithm, .. } => {
                write!(f, "Credential::Ha1({}, <redacted>)", algorithm.as_str())
            }
        }
    }
}

/// One challenge; its `Display` is the header value
/// (`Digest realm="...", nonce="...", ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection realm.
    pub realm: String,
    /// A fresh self-validating nonce.
    pub nonce: String,
    /// The server's opaque value, echoed back by clients.
    pub opaque: String,
    /// The algorithm offered.
    pub algorithm: Algorithm,
    /// `stale=true`: the previous nonce expired, the password was right.
    pub stale: bool,
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm=\"{}\", nonce=\"{}\", opaque=\"{}\", algorithm={}, qop=\"auth\"",
            self.realm,
            self.nonce,
            self.opaque,
            self.algorithm.as_str()
        )?;
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

/// The `name=value` parameters of a `Digest ...` header value, unquoted
/// (borrowed from the header unless an escape had to be undone).
struct DigestParams<'a>(Vec<(&'a str, Cow<'a, str>)>);

impl<'a> DigestParams<'a> {
    fn parse(value: &'a str) -> Result<Self, AuthError> {
        let value = value.trim_ascii();
        let scheme_end = value.find([' ', '\t']).ok_or(AuthError::Malformed("scheme"))?;
        if !value[..scheme_end].eq_ignore_ascii_case("Digest") || has_forbidden_control(value) {
            return Err(AuthError::Malformed("scheme"));
        }
        // A phone's credentials carry about ten parameters.
        let mut params: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(12);
        for item in split_top_level(&value[scheme_end..], b',') {
            let (name, v) = split_once_byte(item, b'=').ok_or(AuthError::Malformed("parameter"))?;
            let name = name.trim_ascii();
            if params.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(AuthError::Malformed("duplicate parameter"));
            }
            params.push((name, unquote_cow(v.trim_ascii())));
        }
        Ok(DigestParams(params))
    }

    /// The value of parameter `name` (case-insensitive), unquoted.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }
}

/// A server's challenge as a client reads it, to answer with credentials
/// (the PBX registering to a trunk, or calling through one that asks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerChallenge {
    /// The realm.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// The opaque value to echo, if any.
    pub opaque: Option<String>,
    /// The hash algorithm.
    pub algorithm: Algorithm,
    /// The server offers `qop=auth` (else the RFC 2069 form is used).
    pub qop_auth: bool,
}

impl ServerChallenge {
    /// Parses a `WWW-Authenticate` / `Proxy-Authenticate` value.
    ///
    /// # Errors
    ///
    /// [`AuthError::Malformed`], [`AuthError::UnsupportedAlgorithm`], or
    /// [`AuthError::UnsupportedQop`] when only `auth-int` is offered.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let params = DigestParams::parse(value)?;
        let get = |name: &str| params.get(name);
        let algorithm = Algorithm::from_param(get("algorithm"))?;
        let qop_auth = match get("qop") {
            None => false,
            Some(q) if q.split(',').any(|t| t.trim_ascii().eq_ignore_ascii_case("auth")) => true,
            Some(_) => return Err(AuthError::UnsupportedQop),
        };
        Ok(Self {
            realm: get("realm").ok_or(AuthError::Malformed("realm"))?.to_owned(),
            nonce: get("nonce")
                .filter(|n| !n.is_empty())
                .ok_or(AuthError::Malformed("nonce"))?
                .to_owned(),
            opaque: get("opaque").map(str::to_owned),
            algorithm,
            qop_auth,
        })
    }

    /// The first usable challenge of a `401` or `407` response, with its
    /// kind (which header the answer goes in).
    pub fn from_response(response: &crate::Response) -> Option<(ChallengeKind, ServerChallenge)> {
        let kind = match response.status() {
            401 => ChallengeKind::Www,
            407 => ChallengeKind::Proxy,
            _ => return None,
        };
        let challenge = response
            .headers()
            .get_all(&kind.challenge_header())
            .find_map(|v| ServerChallenge::parse(v).ok())?;
        Some((kind, challenge))
    }

    /// The credentials header value answering this challenge for a
    /// request `method uri` (RFC 7616 §3.4): `cnonce` is a fresh random
    /// string, `nc` counts the requests answered with this nonce (from 1).
    pub fn answer(&self, method: &str, uri: &str, username: &str, password: &str, cnonce: &str, nc: u32) -> String {
        let alg = self.algorithm;
        let ha1 = alg.hash_joined(&[username, &self.realm, password]);
        let ha2 = alg.hash_joined(&[method, uri]);
        let nc_hex = format!("{nc:08x}");
        let response = if self.qop_auth {
            alg.hash_joined(&[&ha1, &self.nonce, &nc_hex, cnonce, "auth", &ha2])
        } else {
            alg.hash_joined(&[&ha1, &self.nonce, &ha2])
        };
        let mut v = format!(
            "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            self.realm,
            self.nonce,
            alg.as_str()
        );
        if self.qop_auth {
            v.push_str(&format!(", qop=auth, nc={nc_hex}, cnonce=\"{cnonce}\""));
        }
        if let Some(o) = &self.opaque {
            v.push_str(&format!(", opaque=\"{o}\""));
        }
        v
    }
}

/// The parameters of a client's `Authorization` / `Proxy-Authorization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestResponse {
    /// Who claims to be authenticating; look the credential up by this.
    pub username: String,
    /// The realm the client answered for.
    pub realm: String,
    /// The nonce the client answered.
    pub nonce: String,
    /// The digest-uri the client hashed.
    pub uri: String,
    /// The response hash, lower-case hex.
    pub response: String,
    /// The algorithm (MD5 when absent, RFC 2617).
    pub algorithm: Algorithm,
    /// `Some((nc, cnonce))` for `qop=auth`; `None` for the legacy RFC 2069
    /// form without qop.
    pub qop_auth: Option<(u32, String)>,
    /// The opaque value, if echoed.
    pub opaque: Option<String>,
}

impl DigestResponse {
    /// Parses a header value such as `Digest username="100", realm=...`.
    ///
    /// # Errors
    ///
    /// [`AuthError::Malformed`], [`AuthError::UnsupportedAlgorithm`] or
    /// [`AuthError::UnsupportedQop`].
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let params = DigestParams::parse(value)?;
        let get = |name: &str| params.get(name);
        let required = |name: &'static str| get(name).filter(|v| !v.is_empty()).ok_or(AuthError::Malformed(name));
        let algorithm = Algorithm::from_param(get("algorithm"))?;
        if get("userhash").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err(AuthError::UnsupportedAlgorithm);
        }
        let qop_auth = match get("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let nc = required("nc")?;
                if nc.len() != 8 {
                    return Err(AuthError::Malformed("nc"));
                }
                let nc = u32::from_str_radix(nc, 16).map_err(|_| AuthError::Malformed("nc"))?;
                Some((nc, required("cnonce")?.to_owned()))
            }
            Some(_) => return Err(AuthError::UnsupportedQop),
        };
        Ok(Self {
            username: required("username")?.to_owned(),
            realm: get("realm").ok_or(AuthError::Malformed("realm"))?.to_owned(),
            nonce: required("nonce")?.to_owned(),
            uri: required("uri")?.to_owned(),
            response: required("response")?.to_ascii_lowercase(),
            algorithm,
            qop_auth,
            opaque: get("opaque").map(str::to_owned),
        })
    }
}

/// Issues challenges and verifies responses for one realm.
pub struct Authenticator {
    realm: String,
    /// HMAC-SHA-256 key for nonces, zero-padded to the block size (which is
    /// what HMAC does with a short key anyway).
    key: [u8; 64],
    opaque: String,
    lifetime: Duration,
    counter: AtomicU64,
    /// Highest `nc` seen per used nonce, keyed by the nonce's counter.
    used: BTreeMap<u64, UsedNonce>,
    max_tracked: usize,
    /// Nonces with a counter at or below this were evicted from `used`;
    /// they are treated as expired so that eviction cannot open a replay.
    evicted_up_to: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct UsedNonce {
    highest_nc: u32,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("realm", &self.realm)
            .field("key", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .field("tracked_nonces", &self.used.len())
            .finish_non_exhaustive()
    }
}

/// Nonce layout: 8 bytes timestamp, 8 bytes counter, 16 bytes HMAC.
const NONCE_LEN: usize = 32;
/// Nonces dated further in the future than this are refused (clock steps).
const MAX_CLOCK_SKEW: u64 = 60;

impl Authenticator {
    /// Default nonce lifetime: long enough for a user to type a password,
    /// short enough that captured nonces soon become useless.
    pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
    /// Default bound on the replay table.
    pub const DEFAULT_MAX_TRACKED: usize = 10_000;

    /// An authenticator for `realm` with a caller-supplied 32-byte key.
    ///
    /// Use the same key across restarts (or in a cluster) to keep issued
    /// nonces valid; otherwise see [`Authenticator::with_random_key`].
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidRealm`] if the realm cannot be put in a quoted
    /// string as is.
    pub fn new(realm: impl Into<String>, key: [u8; 32]) -> Result<Self, AuthError> {
        let realm = realm.into();
        if realm.is_empty() || realm.contains(['"', '\\']) || has_forbidden_control(&realm) {
            return Err(AuthError::InvalidRealm);
        }
        let mut padded = [0u8; 64];
        padded[..32].copy_from_slice(&key);
        let mut this = Self {
            realm,
            key: padded,
            opaque: String::new(),
            lifetime: Self::DEFAULT_LIFETIME,
            counter: AtomicU64::new(0),
            used: BTreeMap::new(),
            max_tracked: Self::DEFAULT_MAX_TRACKED,
            evicted_up_to: None,
        };
        this.opaque = hex(&this.mac(b"opaque")[..8]);
        Ok(this)
    }

    /// An authenticator with a fresh random key: nonces do not survive a
    /// restart, which only costs phones one extra challenge.
    ///
    /// # Errors
    ///
    /// [`AuthError::Random`] or [`AuthError::InvalidRealm`].
    pub fn with_random_key(realm: impl Into<String>) -> Result<Self, AuthError> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|_| AuthError::Random)?;
        Self::new(realm, key)
    }

    /// Sets how long a nonce stays valid.
    pub fn with_nonce_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Sets how many used nonces are remembered for replay checks.
    pub fn with_max_tracked(mut self, max: usize) -> Self {
        self.max_tracked = max.max(1);
        self
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// A challenge with a fresh nonce.
    pub fn challenge(&self, algorithm: Algorithm, stale: bool, now: SystemTime) -> Challenge {
        Challenge {
            realm: self.realm.clone(),
            nonce: self.new_nonce(unix(now)),
            opaque: self.opaque.clone(),
            algorithm,
            stale,
        }
    }

    /// The challenges to put in a 401/407, most preferred first: SHA-256,
    /// then MD5 (RFC 8760 §2.4).
    pub fn challenges(&self, stale: bool, now: SystemTime) -> [Challenge; 2] {
        [
            self.challenge(Algorithm::Sha256, stale, now),
            self.challenge(Algorithm::Md5, stale, now),
        ]
    }

    /// Checks a client's digest response for a request with `method`.
    ///
    /// The order of checks matters: the response hash is verified before
    /// the replay table is touched, so a forged request cannot advance a
    /// nonce's `nc` (the check/accept split of SRTP replay windows). The
    /// legacy form without qop has no `nc`; its nonces are single-use.
    ///
    /// The digest-uri is hashed as given; callers wanting it bound to the
    /// Request-URI compare [`DigestResponse::uri`] themselves.
    ///
    /// # Errors
    ///
    /// [`AuthError::StaleNonce`] asks for a new challenge with
    /// `stale=true`; every other error asks for a plain new challenge (or a
    /// 403 after repeated failures, the caller's policy).
    pub fn verify(
        &mut self,
        response: &DigestResponse,
        method: &Method,
        credential: &Credential,
        now: SystemTime,
    ) -> Result<(), AuthError> {
        if response.realm != self.realm {
            return Err(AuthError::WrongRealm);
        }
        if response.opaque.as_ref().is_some_and(|o| o != &self.opaque) {
            return Err(AuthError::OpaqueMismatch);
        }
        let (issued, counter) = self.open_nonce(&response.nonce)?;
        let now = unix(now);
        if issued > now + MAX_CLOCK_SKEW {
            return Err(AuthError::InvalidNonce);
        }

        let algorithm = response.algorithm;
        let (computed, given);
        let ha1: &str = match credential {
            Credential::Password(pw) => {
                computed = algorithm.hash_joined(&[&response.username, &self.realm, pw]);
                &computed
            }
            Credential::Ha1 { algorithm: a, hex } if *a == algorithm => {
                given = hex.to_ascii_lowercase();
                &given
            }
            Credential::Ha1 { .. } => return Err(AuthError::AlgorithmMismatch),
        };
        let expected = expected_response(ha1, response, method.as_str());
        if !constant_time_eq(expected.as_bytes(), response.response.as_bytes()) {
            return Err(AuthError::WrongResponse);
        }

        let expired = now.saturating_sub(issued) > self.lifetime.as_secs();
        let evicted = self.evicted_up_to.is_some_and(|e| counter <= e) && !self.used.contains_key(&counter);
        if expired || evicted {
            return Err(AuthError::StaleNonce);
        }
        let nc = response.qop_auth.as_ref().map_or(1, |(nc, _)| *nc);
        if let Some(used) = self.used.get_mut(&counter) {
            if nc <= used.highest_nc {
                return Err(AuthError::Replay);
            }
            used.highest_nc = nc;
            return Ok(());
        }
        if nc == 0 {
            return Err(AuthError::Replay);
        }
        self.make_room(now);
        self.used.insert(counter, UsedNonce { highest_nc: nc });
        Ok(())
    }

    /// Keeps the replay table within `max_tracked`: expired entries go
    /// first, then the oldest, raising the eviction floor.
    fn make_room(&mut self, _now: u64) {
        // Counters grow with every nonce issued, so the smallest key is the
        // oldest nonce (expired ones first): evicting it is O(log n), which
        // keeps a full table cheap under a registration storm.
        while self.used.len() >= self.max_tracked {
            let Some((oldest, _)) = self.used.pop_first() else {
                break;
            };
            self.evicted_up_to = Some(self.evicted_up_to.map_or(oldest, |e| e.max(oldest)));
        }
    }

    fn new_nonce(&self, now: u64) -> String {
        let counter = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut raw = [0u8; NONCE_LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        raw[8..16].copy_from_slice(&counter.to_be_bytes());
        let tag = self.mac(&raw[..16]);
        raw[16..].copy_from_slice(&tag[..16]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a nonce's HMAC and returns its timestamp and counter.
    fn open_nonce(&self, nonce: &str) -> Result<(u64, u64), AuthError> {
        let raw = URL_SAFE_NO_PAD.decode(nonce).map_err(|_| AuthError::InvalidNonce)?;
        if raw.len() != NONCE_LEN {
            return Err(AuthError::InvalidNonce);
        }
        let mut mac = self.hmac();
        mac.update(&raw[..16]);
        mac.verify_truncated_left(&raw[16..])
            .map_err(|_| AuthError::InvalidNonce)?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&raw[8..16]);
        Ok((u64::from_be_bytes(ts), u64::from_be_bytes(counter)))
    }

    fn hmac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as hmac::digest::KeyInit>::new(&self.key.into())
    }

    fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = self.hmac();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

/// The response a client knowing `ha1` must send (RFC 7616 §3.4.1).
fn expected_response(ha1: &str, response: &DigestResponse, method: &str) -> HexDigest {
    let algorithm = response.algorithm;
    let ha2 = algorithm.hash_joined(&[method, &response.uri]);
    match &response.qop_auth {
        Some((nc, cnonce)) => {
            let nc = HexDigest::new(&nc.to_be_bytes());
            algorithm.hash_joined(&[ha1, &response.nonce, &nc, cnonce, "auth", &ha2])
        }
        None => algorithm.hash_joined(&[ha1, &response.nonce, &ha2]),
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Compares without an early exit, so timing does not reveal how many
/// leading characters of a guessed response were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
