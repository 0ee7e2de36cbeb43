//! Crypto contexts: per-direction state with one stream per SSRC.
//!
//! A [`Context`] holds the session ciphers of one master key and the
//! per-SSRC [`Stream`] state (RTP highest index and replay window, SRTCP
//! replay window and send index). Use one context per direction of a
//! leg: an inbound one you only `unprotect` with, an outbound one you only
//! `protect` with. Streams are created on the first packet of an SSRC; for
//! `unprotect`, only once that packet has authenticated.
//!
//! Every `unprotect` follows the same order: parse, estimate the index,
//! replay *check*, authenticate and decrypt, and only then *commit* (new
//! stream, highest index, replay bit, packet counter). Any error returns
//! before the commit, so rejected packets leave no trace.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use crate::cipher::{AesCmHmac, Cipher, E_FLAG, RtpAt, SrtpCipher};
use crate::key::{MasterKey, SessionKeys};
use crate::replay::{MAX_WINDOW, MIN_WINDOW, ReplayWindow};
use crate::rtp::{self, RTCP_HEADER_LEN};
use crate::{Error, Suite, kdf};

/// RFC 3711 §9.2: at most 2^48 SRTP packets per master key.
pub const SRTP_MAX_PACKETS: u64 = 1 << 48;
/// RFC 3711 §9.2: at most 2^31 SRTCP packets per master key.
pub const SRTCP_MAX_PACKETS: u64 = 1 << 31;
/// Largest SRTCP index (31 bits).
const SRTCP_MAX_INDEX: u32 = 0x7FFF_FFFF;

/// Session parameters besides the suite and the key.
///
/// Build with struct update syntax so that new fields keep their
/// defaults: `Options { replay_window: 1024, ..Options::default() }`.
#[derive(Clone, PartialEq, Eq)]
pub struct Options {
    /// Replay window in packets, for SRTP and SRTCP alike (64 ..= 32767;
    /// default 128, libsrtp's).
    pub replay_window: usize,
    /// Key derivation rate (RFC 3711 §4.3.1): 0 (derive once, the common
    /// case and the default) or a power of two up to 2^24.
    pub key_derivation_rate: u64,
    /// The MKI carried in every packet, if negotiated (1 ..= 128 octets).
    pub mki: Option<Vec<u8>>,
    /// Encrypt SRTCP (default). False when `UNENCRYPTED_SRTCP` was
    /// negotiated: outgoing SRTCP is then authenticated only, and
    /// incoming SRTCP may have the E flag clear.
    pub encrypt_rtcp: bool,
    /// Create a stream for any SSRC on its first (authenticated) packet
    /// (default). When false, only SSRCs added with
    /// [`Context::add_stream`] are accepted.
    pub accept_unknown_ssrc: bool,
    /// Most streams (SSRCs) the context will hold; bounds the memory a
    /// peer can make us spend (default 1024).
    pub max_streams: usize,
    /// Master key lifetime in packets (the SDES `|lifetime|`), if smaller
    /// than the RFC 3711 limits.
    pub key_lifetime: Option<u64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            replay_window: 128,
            key_derivation_rate: 0,
            mki: None,
            encrypt_rtcp: true,
            accept_unknown_ssrc: true,
            max_streams: 1024,
            key_lifetime: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The MKI is not secret, but print only its length to keep logs short.
        f.debug_struct("Options")
            .field("replay_window", &self.replay_window)
            .field("key_derivation_rate", &self.key_derivation_rate)
            .field("mki_len", &self.mki.as_ref().map(Vec::len))
            .field("encrypt_rtcp", &self.encrypt_rtcp)
            .field("accept_unknown_ssrc", &self.accept_unknown_ssrc)
            .field("max_streams", &self.max_streams)
            .field("key_lifetime", &self.key_lifetime)
            .finish()
    }
}

impl Options {
    fn validate(&self) -> Result<(), Error> {
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&self.replay_window) {
            return Err(Error::InvalidOption("replay_window must be 64 ..= 32767"));
        }
        let kdr = self.key_derivation_rate;
        if kdr != 0 && (!kdr.is_power_of_two() || kdr > 1 << 24) {
            return Err(Error::InvalidOption(
                "key_derivation_rate must be 0 or a power of two up to 2^24",
            ));
        }
        if let Some(mki) = &self.mki
            && !(1..=128).contains(&mki.len())
        {
            return Err(Error::InvalidOption("MKI must be 1 ..= 128 octets"));
        }
        if self.max_streams == 0 {
            return Err(Error::InvalidOption("max_streams must be at least 1"));
        }
        if self.key_lifetime == Some(0) {
            return Err(Error::InvalidOption("key_lifetime must be at least 1"));
        }
        Ok(())
    }
}

/// Per-SSRC state.
#[derive(Debug, Clone)]
struct Stream {
    /// SRTP replay window; its top is the highest index s_l/ROC of §3.3.1.
    rtp: ReplayWindow,
    /// SRTCP replay window over the explicit SRTCP index.
    rtcp: ReplayWindow,
    /// Last SRTCP index sent (0: none yet, so the first one is 1, as in libsrtp).
    rtcp_sent: u32,
    /// Session ciphers for `r = index DIV kdr > 0` (key derivation rate
    /// only): the master key and `r` they were derived for, and the cipher.
    rtp_kdr: Option<Box<Derived>>,
    rtcp_kdr: Option<Box<Derived>>,
}

impl Stream {
    fn new(window: usize) -> Stream {
        Stream {
            rtp: ReplayWindow::new(window),
            rtcp: ReplayWindow::new(window),
            rtcp_sent: 0,
            rtp_kdr: None,
            rtcp_kdr: None,
        }
    }
}

/// Session ciphers derived for one master key at `r = index DIV kdr`.
type Derived = (usize, u64, Cipher);

/// One master key: its MKI, session ciphers and usage counters (the key
/// lifetime is per master key, RFC 3711 §9.2).
struct KeySet {
    mki: Vec<u8>,
    rtp: Cipher,
    rtcp: Cipher,
    /// Kept only when the key derivation rate is non-zero, to re-derive.
    master: Option<MasterKey>,
    rtp_packets: u64,
    rtcp_packets: u64,
    rtp_limit: u64,
    rtcp_limit: u64,
}

/// An SRTP/SRTCP crypto context: the session ciphers of one master key
/// (or several, told apart by MKI) plus one stream of state per SSRC.
///
/// All packet methods work in place on the caller's buffer and allocate
/// nothing (except the one-time stream entry for a new SSRC, and, with a
/// key derivation rate, the re-derived keys every `kdr` packets).
pub struct Context {
    suite: Suite,
    /// Never empty; `keys[0]` is the key the context was created with.
    keys: Vec<KeySet>,
    /// The key `protect_*` uses (an index into `keys`).
    send_key: usize,
    /// MKI length, the same for every key (0: no MKI).
    mki_len: usize,
    kdr: u64,
    window: usize,
    encrypt_rtcp: bool,
    accept_unknown_ssrc: bool,
    max_streams: usize,
    streams: HashMap<u32, Stream, SsrcHash>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("suite", &self.suite)
            .field("master_keys", &self.keys.len())
            .field("streams", &self.streams.len())
            .field("rtp_packets", &self.keys.iter().map(|k| k.rtp_packets).sum::<u64>())
            .field("rtcp_packets", &self.keys.iter().map(|k| k.rtcp_packets).sum::<u64>())
            .finish_non_exhaustive()
    }
}

impl KeySet {
    fn new(
        suite: Suite,
        rtp: &SessionKeys,
        rtcp: &SessionKeys,
        master: Option<MasterKey>,
        mki: Vec<u8>,
        lifetime: Option<u64>,
    ) -> Result<KeySet, Error> {
        let lifetime = lifetime.unwrap_or(u64::MAX);
        Ok(KeySet {
            mki,
            rtp: Cipher::new(suite, rtp, suite.srtp_tag_len())?,
            rtcp: Cipher::new(suite, rtcp, suite.srtcp_tag_len())?,
            master,
            rtp_packets: 0,
            rtcp_packets: 0,
            rtp_limit: lifetime.min(SRTP_MAX_PACKETS),
            rtcp_limit: lifetime.min(SRTCP_MAX_PACKETS),
        })
    }
}

impl Context {
    /// A context for `suite` keyed with `key` (lengths checked against the
    /// suite), deriving the session keys (RFC 3711 §4.3).
    pub fn new(suite: Suite, key: &MasterKey, options: Options) -> Result<Context, Error> {
        key.check(suite)?;
        options.validate()?;
        let (rtp, rtcp) = kdf::session_keys(suite, key, options.key_derivation_rate, 0, 0)?;
        let master = (options.key_derivation_rate != 0).then(|| key.clone());
        Context::build(suite, &rtp, &rtcp, master, options)
    }

    /// A context from already-derived session keys, bypassing the KDF.
    ///
    /// For known-answer tests (RFC 7714 gives session keys) and for key
    /// management that derives its own; no key derivation rate.
    pub fn from_session_keys(
        suite: Suite,
        rtp: &SessionKeys,
        rtcp: &SessionKeys,
        options: Options,
    ) -> Result<Context, Error> {
        options.validate()?;
        if options.key_derivation_rate != 0 {
            return Err(Error::InvalidOption(
                "session keys cannot be re-derived: key_derivation_rate must be 0",
            ));
        }
        Context::build(suite, rtp, rtcp, None, options)
    }

    fn build(
        suite: Suite,
        rtp: &SessionKeys,
        rtcp: &SessionKeys,
        master: Option<MasterKey>,
        o: Options,
    ) -> Result<Context, Error> {
        let mki = o.mki.unwrap_or_default();
        Ok(Context {
            suite,
            mki_len: mki.len(),
            keys: vec![KeySet::new(suite, rtp, rtcp, master, mki, o.key_lifetime)?],
            send_key: 0,
            kdr: o.key_derivation_rate,
            window: o.replay_window,
            encrypt_rtcp: o.encrypt_rtcp,
            accept_unknown_ssrc: o.accept_unknown_ssrc,
            max_streams: o.max_streams,
            streams: HashMap::with_hasher(SsrcHash::new()),
        })
    }

    /// Adds another master key, told apart by its MKI (RFC 3711 §3.1):
    /// the receiver picks the key each packet names, the sender keeps
    /// using its current key until [`use_master_key`](Self::use_master_key).
    /// Only for contexts created with an MKI; `mki` must have the same
    /// length and differ from the other keys' MKIs. `lifetime` is the
    /// key's packet lifetime (SDES `|lifetime|`).
    pub fn add_master_key(&mut self, key: &MasterKey, mki: &[u8], lifetime: Option<u64>) -> Result<(), Error> {
        key.check(self.suite)?;
        if self.mki_len == 0 || mki.len() != self.mki_len {
            return Err(Error::InvalidOption(
                "extra master keys need an MKI of the context's MKI length",
            ));
        }
        if self.keys.iter().any(|k| k.mki == mki) {
            return Err(Error::InvalidOption("MKI already in use"));
        }
        if lifetime == Some(0) {
            return Err(Error::InvalidOption("key_lifetime must be at least 1"));
        }
        let (rtp, rtcp) = kdf::session_keys(self.suite, key, self.kdr, 0, 0)?;
        let master = (self.kdr != 0).then(|| key.clone());
        self.keys
            .push(KeySet::new(self.suite, &rtp, &rtcp, master, mki.to_vec(), lifetime)?);
        Ok(())
    }

    /// Makes the master key with this MKI the one `protect_*` uses.
    pub fn use_master_key(&mut self, mki: &[u8]) -> Result<(), Error> {
        self.send_key = self.keys.iter().position(|k| k.mki == mki).ok_or(Error::UnknownMki)?;
        Ok(())
    }

    /// Forgets the master key with this MKI (after a rekey, once the peer
    /// has switched). The key in use for sending cannot be removed.
    pub fn remove_master_key(&mut self, mki: &[u8]) -> Result<(), Error> {
        let i = self.keys.iter().position(|k| k.mki == mki).ok_or(Error::UnknownMki)?;
        if i == self.send_key {
            return Err(Error::InvalidOption("cannot remove the master key in use for sending"));
        }
        self.keys.remove(i);
        if self.send_key > i {
            self.send_key -= 1;
        }
        // Cached derivations name keys by position: drop them, they are
        // re-derived on demand.
        for s in self.streams.values_mut() {
            s.rtp_kdr = None;
            s.rtcp_kdr = None;
        }
        Ok(())
    }

    /// The suite of this context.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Octets `protect_rtp` appends (MKI and tag): the spare room the
    /// buffer needs past the RTP packet.
    pub fn rtp_overhead(&self) -> usize {
        self.suite.srtp_tag_len() + self.mki_len
    }

    /// Octets `protect_rtcp` appends (E‖index, MKI and tag).
    pub fn rtcp_overhead(&self) -> usize {
        4 + self.suite.srtcp_tag_len() + self.mki_len
    }

    /// Number of streams (SSRCs) the context holds.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Creates the stream for `ssrc` ahead of its first packet, e.g. for
    /// the SSRCs signalled in SDP when `accept_unknown_ssrc` is false.
    pub fn add_stream(&mut self, ssrc: u32) -> Result<(), Error> {
        if !self.streams.contains_key(&ssrc) {
            if self.streams.len() >= self.max_streams {
                return Err(Error::TooManyStreams);
            }
            self.streams.insert(ssrc, Stream::new(self.window));
        }
        Ok(())
    }

    /// Forgets the stream of `ssrc` (RTCP BYE, SSRC change). Returns
    /// whether there was one.
    pub fn remove_stream(&mut self, ssrc: u32) -> bool {
        self.streams.remove(&ssrc).is_some()
    }

    /// The rollover counter of the highest SRTP index seen on `ssrc`.
    pub fn roc(&self, ssrc: u32) -> Option<u32> {
        self.streams.get(&ssrc)?.rtp.top().map(|i| (i >> 16) as u32)
    }

    /// The highest 48-bit SRTP packet index accepted or sent on `ssrc`.
    pub fn rtp_index(&self, ssrc: u32) -> Option<u64> {
        self.streams.get(&ssrc)?.rtp.top()
    }

    /// Sets the SRTCP index the next `protect_rtcp` on `ssrc` uses
    /// (1 ..= 2^31-1), creating the stream if needed. Senders start at 1,
    /// like libsrtp; this is for resuming a stream or matching a peer that
    /// starts elsewhere. Never reuse an index under the same key.
    pub fn set_next_srtcp_index(&mut self, ssrc: u32, index: u32) -> Result<(), Error> {
        if !(1..=SRTCP_MAX_INDEX).contains(&index) {
            return Err(Error::InvalidOption("SRTCP index must be 1 ..= 2^31-1"));
        }
        let stream = stream_for_send(&mut self.streams, ssrc, true, self.max_streams, self.window)?;
        stream.rtcp_sent = index - 1;
        Ok(())
    }

    /// Protects the RTP packet `buf[..len]` in place: encrypts the payload
    /// and appends MKI and tag. `buf` must have
    /// [`rtp_overhead`](Self::rtp_overhead) spare octets past `len`.
    /// Returns the SRTP packet length.
    ///
    /// Like libsrtp, re-sending an index already sent is refused
    /// ([`Error::Replayed`]): two packets under one keystream would leak
    /// their XOR.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let (suite, kdr) = (self.suite, self.kdr);
        let SendSlot {
            hdr,
            k,
            ks,
            stream,
            index,
        } = self.send_slot(buf, len)?;
        let r = index.checked_div(kdr).unwrap_or(0);
        let derived = derive_if_needed(suite, ks, k, kdr, r, stream.rtp_kdr.as_deref(), false)?;
        let cipher = pick(&ks.rtp, stream.rtp_kdr.as_deref(), k, r, derived.as_ref());
        let at = RtpAt {
            hdr_len: hdr.len,
            ssrc: hdr.ssrc,
            roc: (index >> 16) as u32,
            seq: hdr.seq,
        };
        let n = cipher.protect_rtp(buf, len, at, &ks.mki);
        stream.rtp.accept(index);
        if let Some(c) = derived {
            stream.rtp_kdr = Some(Box::new((k, r, c)));
        }
        ks.rtp_packets += 1;
        Ok(n)
    }

    /// Verifies and decrypts the SRTP packet `buf` (exactly the packet) in
    /// place. Returns the RTP packet length (header, payload and padding:
    /// padding is left as it was). On error nothing changes, in the
    /// context or in `buf`.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let hdr = rtp::parse_rtp(buf)?;
        let tag_len = self.suite.srtp_tag_len();
        if buf.len() < hdr.len + tag_len + self.mki_len {
            return Err(Error::Malformed("SRTP packet shorter than header and tag"));
        }
        let k = self.key_for(buf, tag_len)?;
        let ks = self.keys.get_mut(k).ok_or(Error::UnknownMki)?;
        if ks.rtp_packets >= ks.rtp_limit {
            return Err(Error::KeyExhausted);
        }
        let stream_count = self.streams.len();
        let stream = self.streams.get_mut(&hdr.ssrc);
        let index = match stream.as_deref() {
            Some(s) => {
                let index = rtp::estimate_index(s.rtp.top(), hdr.seq).ok_or(Error::KeyExhausted)?;
                s.rtp.check(index)?;
                index
            }
            None => {
                check_new_stream(hdr.ssrc, self.accept_unknown_ssrc, stream_count, self.max_streams)?;
                u64::from(hdr.seq)
            }
        };
        let r = index.checked_div(self.kdr).unwrap_or(0);
        let cached = stream.as_deref().and_then(|s| s.rtp_kdr.as_deref());
        let derived = derive_if_needed(self.suite, ks, k, self.kdr, r, cached, false)?;
        let cipher = pick(&ks.rtp, cached, k, r, derived.as_ref());
        let at = RtpAt {
            hdr_len: hdr.len,
            ssrc: hdr.ssrc,
            roc: (index >> 16) as u32,
            seq: hdr.seq,
        };
        let n = cipher.unprotect_rtp(buf, at, self.mki_len)?;
        // Authenticated: commit.
        let s = match stream {
            Some(s) => s,
            None => self.streams.entry(hdr.ssrc).or_insert_with(|| Stream::new(self.window)),
        };
        s.rtp.accept(index);
        if let Some(c) = derived {
            s.rtp_kdr = Some(Box::new((k, r, c)));
        }
        ks.rtp_packets += 1;
        Ok(n)
    }

    /// Protects the RTCP (compound) packet `buf[..len]` in place: encrypts
    /// all but the first 8 octets (unless `encrypt_rtcp` is off) and
    /// appends E‖index, MKI and tag. `buf` must have
    /// [`rtcp_overhead`](Self::rtcp_overhead) spare octets past `len`.
    /// SRTCP indices start at 1 per SSRC, as in libsrtp.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let pkt = buf.get(..len).ok_or(Error::BufferTooSmall { needed: len })?;
        let ssrc = rtp::parse_rtcp(pkt)?;
        let needed = len + self.rtcp_overhead();
        if buf.len() < needed {
            return Err(Error::BufferTooSmall { needed });
        }
        let k = self.send_key;
        let ks = self.keys.get_mut(k).ok_or(Error::UnknownMki)?;
        if ks.rtcp_packets >= ks.rtcp_limit {
            return Err(Error::KeyExhausted);
        }
        let stream = stream_for_send(
            &mut self.streams,
            ssrc,
            self.accept_unknown_ssrc,
            self.max_streams,
            self.window,
        )?;
        if stream.rtcp_sent >= SRTCP_MAX_INDEX {
            return Err(Error::KeyExhausted);
        }
        let index = stream.rtcp_sent + 1;
        let r = u64::from(index).checked_div(self.kdr).unwrap_or(0);
        let derived = derive_if_needed(self.suite, ks, k, self.kdr, r, stream.rtcp_kdr.as_deref(), true)?;
        let cipher = pick(&ks.rtcp, stream.rtcp_kdr.as_deref(), k, r, derived.as_ref());
        let n = cipher.protect_rtcp(buf, len, ssrc, index, self.encrypt_rtcp, &ks.mki);
        stream.rtcp_sent = index;
        if let Some(c) = derived {
            stream.rtcp_kdr = Some(Box::new((k, r, c)));
        }
        ks.rtcp_packets += 1;
        Ok(n)
    }

    /// Verifies and decrypts the SRTCP packet `buf` in place. Returns the
    /// RTCP packet length (without E‖index, MKI and tag). On error
    /// nothing changes.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let ssrc = rtp::parse_rtcp(buf)?;
        let tag_len = self.suite.srtcp_tag_len();
        let n = buf.len();
        if n < RTCP_HEADER_LEN + 4 + tag_len + self.mki_len {
            return Err(Error::Malformed("SRTCP packet too short"));
        }
        // AES-CM: … ‖ E‖index ‖ MKI ‖ tag; GCM: … ‖ tag ‖ E‖index ‖ MKI.
        let trailer_at = n - 4 - self.mki_len - if self.suite.is_aead() { 0 } else { tag_len };
        let trailer = u32::from_be_bytes([
            buf[trailer_at],
            buf[trailer_at + 1],
            buf[trailer_at + 2],
            buf[trailer_at + 3],
        ]);
        if trailer & E_FLAG == 0 && self.encrypt_rtcp {
            return Err(Error::UnencryptedRtcp);
        }
        let k = self.key_for(buf, tag_len)?;
        let ks = self.keys.get_mut(k).ok_or(Error::UnknownMki)?;
        if ks.rtcp_packets >= ks.rtcp_limit {
            return Err(Error::KeyExhausted);
        }
        let index = trailer & !E_FLAG;
        let stream_count = self.streams.len();
        let stream = self.streams.get_mut(&ssrc);
        match stream.as_deref() {
            Some(s) => s.rtcp.check(u64::from(index))?,
            None => check_new_stream(ssrc, self.accept_unknown_ssrc, stream_count, self.max_streams)?,
        }
        let r = u64::from(index).checked_div(self.kdr).unwrap_or(0);
        let cached = stream.as_deref().and_then(|s| s.rtcp_kdr.as_deref());
        let derived = derive_if_needed(self.suite, ks, k, self.kdr, r, cached, true)?;
        let cipher = pick(&ks.rtcp, cached, k, r, derived.as_ref());
        let len = cipher.unprotect_rtcp(buf, ssrc, trailer, self.mki_len)?;
        let s = match stream {
            Some(s) => s,
            None => self.streams.entry(ssrc).or_insert_with(|| Stream::new(self.window)),
        };
        s.rtcp.accept(u64::from(index));
        if let Some(c) = derived {
            s.rtcp_kdr = Some(Box::new((k, r, c)));
        }
        ks.rtcp_packets += 1;
        Ok(len)
    }

    /// [`protect_rtp`](Self::protect_rtp) on a `Vec`: grows it by the
    /// overhead (no allocation when its capacity allows).
    pub fn protect_rtp_vec(&mut self, pkt: &mut Vec<u8>) -> Result<(), Error> {
        let len = pkt.len();
        pkt.resize(len + self.rtp_overhead(), 0);
        let r = self.protect_rtp(pkt, len);
        pkt.truncate(*r.as_ref().unwrap_or(&len));
        r.map(drop)
    }

    /// [`unprotect_rtp`](Self::unprotect_rtp) on a `Vec`, truncating it to
    /// the RTP packet.
    pub fn unprotect_rtp_vec(&mut self, pkt: &mut Vec<u8>) -> Result<(), Error> {
        let n = self.unprotect_rtp(pkt)?;
        pkt.truncate(n);
        Ok(())
    }

    /// [`protect_rtcp`](Self::protect_rtcp) on a `Vec`.
    pub fn protect_rtcp_vec(&mut self, pkt: &mut Vec<u8>) -> Result<(), Error> {
        let len = pkt.len();
        pkt.resize(len + self.rtcp_overhead(), 0);
        let r = self.protect_rtcp(pkt, len);
        pkt.truncate(*r.as_ref().unwrap_or(&len));
        r.map(drop)
    }

    /// [`unprotect_rtcp`](Self::unprotect_rtcp) on a `Vec`.
    pub fn unprotect_rtcp_vec(&mut self, pkt: &mut Vec<u8>) -> Result<(), Error> {
        let n = self.unprotect_rtcp(pkt)?;
        pkt.truncate(n);
        Ok(())
    }

    /// The checks every RTP protect makes before encrypting: the header
    /// parses, `buf` has room for the trailer, the send key has packets
    /// left, and the stream (created on its first packet) has not sent
    /// this index. Changes nothing but creating the stream.
    #[inline]
    fn send_slot(&mut self, buf: &[u8], len: usize) -> Result<SendSlot<'_>, Error> {
        let pkt = buf.get(..len).ok_or(Error::BufferTooSmall { needed: len })?;
        let hdr = rtp::parse_rtp(pkt)?;
        let needed = len + self.rtp_overhead();
        if buf.len() < needed {
            return Err(Error::BufferTooSmall { needed });
        }
        let k = self.send_key;
        let ks = self.keys.get_mut(k).ok_or(Error::UnknownMki)?;
        if ks.rtp_packets >= ks.rtp_limit {
            return Err(Error::KeyExhausted);
        }
        let stream = stream_for_send(
            &mut self.streams,
            hdr.ssrc,
            self.accept_unknown_ssrc,
            self.max_streams,
            self.window,
        )?;
        let index = rtp::estimate_index(stream.rtp.top(), hdr.seq).ok_or(Error::KeyExhausted)?;
        stream.rtp.check(index)?;
        Ok(SendSlot {
            hdr,
            k,
            ks,
            stream,
            index,
        })
    }

    /// Whether the batch methods can pair this context's packets: AES-CM
    /// with HMAC-SHA1 and no key derivation rate (a rate re-derives keys
    /// mid-stream, which the batch steps below do not handle; such contexts
    /// and GCM take the one-packet path).
    pub(crate) fn pairable(&self) -> bool {
        self.kdr == 0 && !self.suite.is_aead()
    }

    /// The AES-CM/HMAC cipher of master key `k`'s SRTP direction.
    #[inline]
    pub(crate) fn rtp_cm_hmac(&self, k: usize) -> Option<&AesCmHmac> {
        self.keys.get(k).and_then(|ks| ks.rtp.as_cm_hmac())
    }

    /// [`protect_rtp`](Self::protect_rtp) up to the MAC, for a pairable
    /// context: the checks, the stream state committed (nothing after this
    /// step can fail) and the payload encrypted. [`protect_rtp_end`]
    /// appends the tag computed over `buf[..len]` and the ROC.
    ///
    /// [`protect_rtp_end`]: Self::protect_rtp_end
    pub(crate) fn protect_rtp_begin(&mut self, buf: &mut [u8], len: usize) -> Result<Begun, Error> {
        let SendSlot {
            hdr,
            k,
            ks,
            stream,
            index,
        } = self.send_slot(buf, len)?;
        let cipher = ks
            .rtp
            .as_cm_hmac()
            .ok_or(Error::InvalidOption("batch step on a GCM context"))?;
        let at = RtpAt {
            hdr_len: hdr.len,
            ssrc: hdr.ssrc,
            roc: (index >> 16) as u32,
            seq: hdr.seq,
        };
        cipher.crypt_rtp(buf, len, at);
        stream.rtp.accept(index);
        ks.rtp_packets += 1;
        Ok(Begun { k, roc: at.roc, len })
    }

    /// Appends MKI and tag to a packet [`protect_rtp_begin`](Self::protect_rtp_begin)
    /// prepared; returns the SRTP length.
    pub(crate) fn protect_rtp_end(&self, buf: &mut [u8], begun: &Begun, tag: &[u8; 20]) -> Result<usize, Error> {
        let ks = self.keys.get(begun.k).ok_or(Error::UnknownMki)?;
        let cipher = ks
            .rtp
            .as_cm_hmac()
            .ok_or(Error::InvalidOption("batch step on a GCM context"))?;
        Ok(cipher.append_trailer(buf, begun.len, &ks.mki, tag))
    }

    /// [`unprotect_rtp`](Self::unprotect_rtp)'s checks before the MAC, for
    /// a pairable context, changing nothing: which key, which index (the
    /// §3.3.1 estimate against the stream as it is now), replay, limits.
    pub(crate) fn unprotect_rtp_check(&self, buf: &[u8]) -> Result<Checked, Error> {
        let hdr = rtp::parse_rtp(buf)?;
        let tag_len = self.suite.srtp_tag_len();
        if buf.len() < hdr.len + tag_len + self.mki_len {
            return Err(Error::Malformed("SRTP packet shorter than header and tag"));
        }
        let k = self.key_for(buf, tag_len)?;
        let ks = self.keys.get(k).ok_or(Error::UnknownMki)?;
        if ks.rtp_packets >= ks.rtp_limit {
            return Err(Error::KeyExhausted);
        }
        let index = match self.streams.get(&hdr.ssrc) {
            Some(s) => {
                let index = rtp::estimate_index(s.rtp.top(), hdr.seq).ok_or(Error::KeyExhausted)?;
                s.rtp.check(index)?;
                index
            }
            None => {
                check_new_stream(hdr.ssrc, self.accept_unknown_ssrc, self.streams.len(), self.max_streams)?;
                u64::from(hdr.seq)
            }
        };
        Ok(Checked {
            k,
            index,
            at: RtpAt {
                hdr_len: hdr.len,
                ssrc: hdr.ssrc,
                roc: (index >> 16) as u32,
                seq: hdr.seq,
            },
            body_end: buf.len() - tag_len - self.mki_len,
        })
    }

    /// Finishes what [`unprotect_rtp_check`](Self::unprotect_rtp_check)
    /// began, given the full MAC of `buf[..body_end] ‖ ROC`: verifies the
    /// tag, decrypts and commits. On error nothing changes.
    pub(crate) fn unprotect_rtp_end(&mut self, buf: &mut [u8], c: &Checked, mac: &[u8; 20]) -> Result<usize, Error> {
        let ks = self.keys.get_mut(c.k).ok_or(Error::UnknownMki)?;
        let cipher = ks
            .rtp
            .as_cm_hmac()
            .ok_or(Error::InvalidOption("batch step on a GCM context"))?;
        if !cipher.tag_matches(buf, mac) {
            return Err(Error::AuthFailed);
        }
        cipher.crypt_rtp(buf, c.body_end, c.at);
        let window = self.window;
        self.streams
            .entry(c.at.ssrc)
            .or_insert_with(|| Stream::new(window))
            .rtp
            .accept(c.index);
        ks.rtp_packets += 1;
        Ok(c.body_end)
    }

    /// The master key a received packet names by its MKI, which sits
    /// before the tag (AES-CM) or at the very end (GCM). The caller
    /// checked that the packet is long enough.
    #[inline]
    fn key_for(&self, buf: &[u8], tag_len: usize) -> Result<usize, Error> {
        if self.mki_len == 0 {
            return Ok(0);
        }
        let end = buf.len() - if self.suite.is_aead() { 0 } else { tag_len };
        let mki = buf.get(end - self.mki_len..end).ok_or(Error::UnknownMki)?;
        self.keys.iter().position(|k| k.mki == mki).ok_or(Error::UnknownMki)
    }
}

/// What `Context::send_slot` found: the packet's header, the send key
/// (its position and state), the stream and the packet's index.
struct SendSlot<'a> {
    hdr: rtp::RtpHeader,
    k: usize,
    ks: &'a mut KeySet,
    stream: &'a mut Stream,
    index: u64,
}

/// A packet between [`Context::protect_rtp_begin`] and
/// [`Context::protect_rtp_end`].
pub(crate) struct Begun {
    k: usize,
    pub(crate) roc: u32,
    pub(crate) len: usize,
}

impl Begun {
    pub(crate) fn key(&self) -> usize {
        self.k
    }
}

/// A received packet that passed [`Context::unprotect_rtp_check`].
pub(crate) struct Checked {
    k: usize,
    index: u64,
    at: RtpAt,
    pub(crate) body_end: usize,
}

impl Checked {
    pub(crate) fn key(&self) -> usize {
        self.k
    }
    pub(crate) fn roc(&self) -> u32 {
        self.at.roc
    }
    /// Whether a re-check found the same key and index: the MAC computed
    /// for `self` is then still the right one.
    pub(crate) fn same_as(&self, other: &Checked) -> bool {
        self.k == other.k && self.index == other.index
    }
}

/// SRTP transcoding: unprotects `buf[..len]` with `inbound` (leg A's
/// receive context) and protects the result with `outbound` (leg B's send
/// context), in place. `buf` needs `outbound.rtp_overhead()` spare octets
/// past the RTP packet, which `len` already covers when B's overhead is
/// not larger than A's. Returns the new SRTP length.
pub fn transcode_rtp(
    inbound: &mut Context,
    outbound: &mut Context,
    buf: &mut [u8],
    len: usize,
) -> Result<usize, Error> {
    let pkt = buf.get_mut(..len).ok_or(Error::BufferTooSmall { needed: len })?;
    let n = inbound.unprotect_rtp(pkt)?;
    outbound.protect_rtp(buf, n)
}

/// The RTCP counterpart of [`transcode_rtp`].
pub fn transcode_rtcp(
    inbound: &mut Context,
    outbound: &mut Context,
    buf: &mut [u8],
    len: usize,
) -> Result<usize, Error> {
    let pkt = buf.get_mut(..len).ok_or(Error::BufferTooSmall { needed: len })?;
    let n = inbound.unprotect_rtcp(pkt)?;
    outbound.protect_rtcp(buf, n)
}

fn check_new_stream(ssrc: u32, accept_unknown: bool, count: usize, max: usize) -> Result<(), Error> {
    if !accept_unknown {
        return Err(Error::UnknownSsrc(ssrc));
    }
    if count >= max {
        return Err(Error::TooManyStreams);
    }
    Ok(())
}

/// The sender's stream for `ssrc`, created on its first packet.
#[inline]
fn stream_for_send(
    streams: &mut HashMap<u32, Stream, SsrcHash>,
    ssrc: u32,
    accept_unknown: bool,
    max: usize,
    window: usize,
) -> Result<&mut Stream, Error> {
    let count = streams.len();
    match streams.entry(ssrc) {
        std::collections::hash_map::Entry::Occupied(o) => Ok(o.into_mut()),
        std::collections::hash_map::Entry::Vacant(v) => {
            check_new_stream(ssrc, accept_unknown, count, max)?;
            Ok(v.insert(Stream::new(window)))
        }
    }
}

/// With a key derivation rate, the session keys for `r > 0` that are not
/// cached yet (RFC 3711 §4.3.1). `None` when the base or cached cipher serves.
#[cold]
fn derive_slow(suite: Suite, master: &MasterKey, kdr: u64, r: u64, rtcp: bool) -> Result<Cipher, Error> {
    let index = r * kdr;
    let (srtp, srtcp) = kdf::session_keys(suite, master, kdr, index, index)?;
    if rtcp {
        Cipher::new(suite, &srtcp, suite.srtcp_tag_len())
    } else {
        Cipher::new(suite, &srtp, suite.srtp_tag_len())
    }
}

#[inline]
fn derive_if_needed(
    suite: Suite,
    ks: &KeySet,
    k: usize,
    kdr: u64,
    r: u64,
    cached: Option<&Derived>,
    rtcp: bool,
) -> Result<Option<Cipher>, Error> {
    if r == 0 || cached.is_some_and(|(ck, cr, _)| *ck == k && *cr == r) {
        return Ok(None);
    }
    match &ks.master {
        Some(m) => derive_slow(suite, m, kdr, r, rtcp).map(Some),
        None => Ok(None),
    }
}

/// The cipher for master key `k` at `r`: just derived, cached in the
/// stream, or the key's base (r = 0) cipher.
#[inline]
fn pick<'a>(
    base: &'a Cipher,
    cached: Option<&'a Derived>,
    k: usize,
    r: u64,
    derived: Option<&'a Cipher>,
) -> &'a Cipher {
    if let Some(d) = derived {
        return d;
    }
    match cached {
        Some((ck, cr, c)) if *ck == k && *cr == r && r != 0 => c,
        _ => base,
    }
}

/// Hashing for SSRC keys: one multiply, seeded per context.
///
/// SipHash (std's default) costs more than the rest of the lookup. Only
/// authenticated packets insert streams, so an attacker cannot flood the
/// map with colliding SSRCs; the random seed still keeps bucket layout
/// unpredictable.
#[derive(Clone)]
struct SsrcHash(u64);

impl SsrcHash {
    fn new() -> SsrcHash {
        SsrcHash(std::collections::hash_map::RandomState::new().hash_one(0x5352_5450u32) | 1)
    }
}

impl BuildHasher for SsrcHash {
    type Hasher = SsrcHasher;
    fn build_hasher(&self) -> SsrcHasher {
        SsrcHasher { seed: self.0, value: 0 }
    }
}

struct SsrcHasher {
    seed: u64,
    value: u64,
}

impl Hasher for SsrcHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.value = (self.value << 8 | u64::from(b)).rotate_left(5);
        }
    }
    fn write_u32(&mut self, x: u32) {
        self.value = u64::from(x);
    }
    fn finish(&self) -> u64 {
        // Folded multiply: mixes every input bit into the low bits (bucket)
        // and the top bits (hashbrown's control byte).
        let m = u128::from(self.value ^ self.seed) * u128::from(0x9E37_79B9_7F4A_7C15u64);
        (m as u64) ^ ((m >> 64) as u64)
    }
}
