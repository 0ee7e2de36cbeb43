//! Offer/answer for one B2BUA leg (RFC 3264) with SDES-SRTP (RFC 4568
//! §5–7), as pure functions.
//!
//! ```text
//!   leg A (phone)                 PBX                      leg B (phone/trunk)
//!   INVITE offer ──▶ answer(offer, local_a, policy, keygen)
//!                       └─▶ offer(local_b, srtp_b, keygen) ──▶ INVITE offer
//!                           PendingOffer::accept_answer(200 OK answer) ◀──
//!   200 OK answer ◀──
//! ```
//!
//! Each leg negotiates its own keys: the PBX decrypts with the remote's
//! key and encrypts with its own on each leg. What comes out is a
//! [`NegotiatedStream`] per accepted stream, everything the media relay
//! needs to set up its sockets and SRTP contexts.
//!
//! # Scope
//!
//! One audio stream per leg: the first acceptable `m=audio` with an RTP
//! profile (`RTP/AVP`, `RTP/AVPF`, `RTP/SAVP`, `RTP/SAVPF`) is answered,
//! every other `m=` line (video, T.38, DTLS-SRTP, a second audio) is
//! rejected with port 0.
//!
//! # Re-INVITE (hold, resume, rekey)
//!
//! [`answer`] is stateless, so a re-offer is answered like an initial
//! offer: a `sendonly` offer (hold) gets `recvonly`, `inactive` gets
//! `inactive`, `c=0.0.0.0` is read as "does not want to receive". By
//! default every answer carries a **new** key from `keygen` (RFC 4568
//! §7.1.4 allows either). A B2BUA that wants to keep the SRTP context
//! across hold/resume passes [`keep_key`], which returns the previous
//! local key when the suite is unchanged. The B2BUA bumps
//! [`SessionOrigin::session_version`] itself for every changed SDP.

use std::net::{IpAddr, SocketAddr};

use crate::attr::{Direction, RtpMap};
use crate::crypto::{CryptoAttr, KeyMaterial, Mki, SessionFlags};
use crate::sdp::{Attribute, Connection, Media, Origin, Proto, Sdp, Timing, addr_type_of};
use crate::{AcceptError, AnswerError, KeyGenError, OfferError, Suite};

/// The suites we accept by default, in our order of preference: the
/// RFC 4568 mandatory suite first, then the shorter tag, then AES-256,
/// then the AEAD suites.
pub const DEFAULT_SUITES: [Suite; 6] = [
    Suite::AesCm128HmacSha1_80,
    Suite::AesCm128HmacSha1_32,
    Suite::AesCm256HmacSha1_80,
    Suite::AesCm256HmacSha1_32,
    Suite::AeadAes128Gcm,
    Suite::AeadAes256Gcm,
];

/// An audio codec the PBX is willing to relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Encoding name; matched ASCII case-insensitively.
    pub name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channels (1 for G.711).
    pub channels: u16,
    /// The payload type to use in our offers: the static one, or a
    /// preferred dynamic one (`None`: pick a free one from 96 up).
    pub payload_type: Option<u8>,
    /// Format parameters for our offers; answers echo the offerer's and
    /// use these only when the offer has none.
    pub fmtp: Option<String>,
}

impl Codec {
    fn fixed(name: &str, clock_rate: u32, payload_type: Option<u8>, fmtp: Option<&str>) -> Codec {
        Codec {
            name: name.into(),
            clock_rate,
            channels: 1,
            payload_type,
            fmtp: fmtp.map(Into::into),
        }
    }

    /// G.711 µ-law, static payload type 0.
    pub fn pcmu() -> Codec {
        Codec::fixed("PCMU", 8000, Some(0), None)
    }

    /// G.711 A-law, static payload type 8.
    pub fn pcma() -> Codec {
        Codec::fixed("PCMA", 8000, Some(8), None)
    }

    /// G.722, static payload type 9 (RTP clock 8000 by RFC 3551's mistake).
    pub fn g722() -> Codec {
        Codec::fixed("G722", 8000, Some(9), None)
    }

    /// RFC 4733 DTMF events 0-16 at 8 kHz, payload type 101 in offers.
    pub fn telephone_event() -> Codec {
        Codec::fixed("telephone-event", 8000, Some(101), Some("0-16"))
    }

    /// True for `telephone-event` (which alone is not an audio codec).
    pub fn is_dtmf(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }

    fn matches(&self, f: &Format) -> bool {
        self.name.eq_ignore_ascii_case(&f.name) && self.clock_rate == f.clock_rate && self.channels == f.channels
    }
}

/// The `o=` fields a leg keeps across its offers and answers (RFC 3264
/// §8: same id, version increased whenever the SDP changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOrigin {
    /// User name in `o=` (`-` or a product name; no spaces).
    pub username: String,
    /// Session id, fixed for the leg.
    pub session_id: u64,
    /// Session version; bump it before building a changed SDP.
    pub session_version: u64,
}

impl SessionOrigin {
    /// A new origin with version 0.
    pub fn new(session_id: u64) -> SessionOrigin {
        SessionOrigin {
            username: "-".into(),
            session_id,
            session_version: 0,
        }
    }
}

/// What the PBX offers or answers on one leg: its relay address and
/// port, the codecs it relays, and its own direction wish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// The relay address written into `c=` (and `o=`).
    pub address: IpAddr,
    /// The relay's RTP port for this leg (RTCP on port + 1 unless muxed).
    pub rtp_port: u16,
    /// Allowed codecs, in our order of preference (used for offers;
    /// answers keep the offerer's order).
    pub codecs: Vec<Codec>,
    /// `a=ptime` to write, if any.
    pub ptime: Option<u32>,
    /// Offer and accept `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// Our own direction wish, e.g. `SendOnly` while the PBX plays music
    /// on hold; intersected with the offer's.
    pub direction: Direction,
    /// The `o=` fields.
    pub origin: SessionOrigin,
}

impl LocalMedia {
    /// PCMU, PCMA and telephone-event, `sendrecv`, rtcp-mux allowed,
    /// origin id 0 (set [`LocalMedia::origin`] per leg).
    pub fn new(address: IpAddr, rtp_port: u16) -> LocalMedia {
        LocalMedia {
            address,
            rtp_port,
            codecs: vec![Codec::pcmu(), Codec::pcma(), Codec::telephone_event()],
            ptime: None,
            rtcp_mux: true,
            direction: Direction::SendRecv,
            origin: SessionOrigin::new(0),
        }
    }
}

/// Whether a leg must, may or must not use SRTP when answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SrtpMode {
    /// SRTP or nothing: plain offers are refused with 488.
    #[default]
    Required,
    /// SRTP when offered acceptably (RTP/SAVP, or RTP/AVP with a=crypto),
    /// plain RTP otherwise.
    Optional,
    /// Plain RTP only: `a=crypto` in RTP/AVP is ignored, RTP/SAVP refused.
    Disabled,
}

/// Which acceptable offered `a=crypto` line to pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SuiteChoice {
    /// The first acceptable line in the offer (what baresip does).
    #[default]
    OffererOrder,
    /// The acceptable line whose suite comes first in [`SrtpPolicy::suites`].
    OurPreference,
}

/// The answerer's SRTP policy for one leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpPolicy {
    /// Required, optional or disabled.
    pub mode: SrtpMode,
    /// Suites we accept, in our order of preference.
    pub suites: Vec<Suite>,
    /// How to pick among several acceptable lines.
    pub choice: SuiteChoice,
    /// Accept `UNENCRYPTED_SRTCP` (RTCP in clear; media stays protected).
    /// `UNENCRYPTED_SRTP` and `UNAUTHENTICATED_SRTP` are always refused.
    pub allow_unencrypted_srtcp: bool,
}

impl Default for SrtpPolicy {
    /// SRTP required, [`DEFAULT_SUITES`], offerer's order.
    fn default() -> SrtpPolicy {
        SrtpPolicy {
            mode: SrtpMode::Required,
            suites: DEFAULT_SUITES.to_vec(),
            choice: SuiteChoice::OffererOrder,
            allow_unencrypted_srtcp: false,
        }
    }
}

impl SrtpPolicy {
    /// The default policy with another mode.
    pub fn with_mode(mode: SrtpMode) -> SrtpPolicy {
        SrtpPolicy {
            mode,
            ..SrtpPolicy::default()
        }
    }
}

/// Where the remote wants RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpTarget {
    /// RTCP shares the RTP port (RFC 5761).
    Mux,
    /// RTCP goes to this address (`a=rtcp`, else RTP port + 1).
    Addr(SocketAddr),
    /// No RTCP address can be derived (RTP port 65535 and no `a=rtcp`).
    None,
}

/// One negotiated codec: the remote's payload type and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedCodec {
    /// Payload type as the remote uses it.
    pub payload_type: u8,
    /// Encoding name as the remote wrote it.
    pub name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channels.
    pub channels: u16,
    /// The remote's format parameters.
    pub fmtp: Option<String>,
}

/// The SRTP half of a negotiated stream.
#[derive(Debug, Clone)]
pub struct SrtpParams {
    /// The negotiated suite (the same both ways).
    pub suite: Suite,
    /// The `a=crypto` tag that was agreed on.
    pub tag: u32,
    /// The remote's key: decrypts what the remote sends us.
    pub remote_key: KeyMaterial,
    /// The MKI the remote puts in its packets, if any.
    pub remote_mki: Option<Mki>,
    /// The remote key's lifetime in packets, if given.
    pub remote_lifetime: Option<u64>,
    /// The remote's key derivation rate exponent (`KDR=n`), if given.
    pub remote_kdr: Option<u8>,
    /// Our key: encrypts what we send to the remote.
    pub local_key: KeyMaterial,
    /// Negotiated session flags (only `unencrypted_srtcp` can be set, and
    /// only if the policy allows it).
    pub flags: SessionFlags,
}

/// Everything the media relay needs for one stream of one leg.
#[derive(Debug, Clone)]
pub struct NegotiatedStream {
    /// Index of the `m=` line in the offer/answer.
    pub mline: usize,
    /// Transport profile as negotiated (`RTP/SAVP`, or `RTP/AVP` with or
    /// without best-effort SRTP).
    pub proto: Proto,
    /// The remote's RTP address.
    pub remote_addr: IpAddr,
    /// The remote's RTP port.
    pub remote_port: u16,
    /// Where RTCP goes.
    pub rtcp: RtcpTarget,
    /// Codecs both sides accept, in the remote's order.
    pub codecs: Vec<NegotiatedCodec>,
    /// The remote's `a=ptime`, if given.
    pub ptime: Option<u32>,
    /// Direction from the PBX's side: `sends()` means the PBX may send to
    /// the remote, `receives()` that the remote will send to the PBX.
    pub direction: Direction,
    /// SRTP keys, `None` for plain RTP.
    pub srtp: Option<SrtpParams>,
}

impl NegotiatedStream {
    /// The remote's RTP socket address.
    pub fn remote_rtp(&self) -> SocketAddr {
        SocketAddr::new(self.remote_addr, self.remote_port)
    }

    /// True if RTCP is multiplexed on the RTP port.
    pub fn rtcp_mux(&self) -> bool {
        self.rtcp == RtcpTarget::Mux
    }
}

/// A key generator that reuses `previous` when the suite is unchanged,
/// and asks `fresh` otherwise; for answering re-INVITEs (hold/resume)
/// without rekeying.
pub fn keep_key<'a>(
    previous: Option<&'a KeyMaterial>,
    mut fresh: impl FnMut(Suite) -> Result<KeyMaterial, KeyGenError> + 'a,
) -> impl FnMut(Suite) -> Result<KeyMaterial, KeyGenError> + 'a {
    move |suite| match previous {
        Some(k) if k.suite() == suite => Ok(k.clone()),
        _ => fresh(suite),
    }
}

/// Answers an offer for one leg.
///
/// Returns the answer SDP and the accepted stream(s): exactly one audio
/// stream today. See the module docs for the rules.
///
/// # Errors
///
/// An [`AnswerError`] whose [`sip_status`](AnswerError::sip_status) is
/// the response to send: 488 when nothing acceptable was offered, 500 if
/// `keygen` failed.
pub fn answer(
    offer: &Sdp,
    local: &LocalMedia,
    policy: &SrtpPolicy,
    keygen: &mut impl FnMut(Suite) -> Result<KeyMaterial, KeyGenError>,
) -> Result<(Sdp, Vec<NegotiatedStream>), AnswerError> {
    let mut media = Vec::with_capacity(offer.media.len());
    let mut streams = Vec::new();
    let mut first_error = None;
    for (i, m) in offer.media.iter().enumerate() {
        let candidate = streams.is_empty()
            && m.media == "audio"
            && m.port != 0
            && m.port_count.is_none_or(|n| n == 1)
            && (m.proto.is_sdes_srtp() || m.proto.is_plain_rtp());
        if candidate {
            match answer_audio(offer, m, i, local, policy, keygen) {
                Ok((am, stream)) => {
                    media.push(am);
                    streams.push(stream);
                    continue;
                }
                Err(e @ AnswerError::KeyGen(_)) => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        media.push(rejected(m));
    }
    if streams.is_empty() {
        return Err(first_error.unwrap_or(AnswerError::NoAcceptableMedia));
    }
    let timings = if offer.timings.is_empty() {
        vec![Timing {
            start: 0,
            stop: 0,
            repeats: Vec::new(),
        }]
    } else {
        // RFC 3264 §6: the answer's t= equals the offer's.
        offer.timings.clone()
    };
    Ok((session(local, timings, media), streams))
}

/// What SRTP to offer to a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpOffer {
    /// `RTP/SAVP` (true) or `RTP/AVP` (false; with `a=crypto` lines this is
    /// best-effort SRTP).
    pub mandatory: bool,
    /// One `a=crypto` line per suite, tags 1, 2, ...; empty for plain RTP.
    pub suites: Vec<Suite>,
}

impl SrtpOffer {
    /// Plain `RTP/AVP`, no crypto (e.g. toward a PSTN trunk).
    pub fn plain() -> SrtpOffer {
        SrtpOffer {
            mandatory: false,
            suites: Vec::new(),
        }
    }

    /// `RTP/SAVP` with these suites (e.g. only `_32` to force it).
    pub fn mandatory(suites: &[Suite]) -> SrtpOffer {
        SrtpOffer {
            mandatory: true,
            suites: suites.to_vec(),
        }
    }

    /// `RTP/AVP` with these suites: SRTP if the answerer takes it.
    pub fn best_effort(suites: &[Suite]) -> SrtpOffer {
        SrtpOffer {
            mandatory: false,
            suites: suites.to_vec(),
        }
    }
}

/// An offer we sent and whose answer we wait for.
#[derive(Debug, Clone)]
pub struct PendingOffer {
    proto: Proto,
    codecs: Vec<(u8, Codec)>,
    crypto: Vec<(u32, KeyMaterial)>,
    mandatory: bool,
    direction: Direction,
    rtcp_mux: bool,
    media_count: usize,
}

/// Builds our offer toward a leg: one `m=audio` with `local`'s codecs and
/// address, and the SRTP lines of `srtp` with fresh keys from `keygen`.
pub fn offer(
    local: &LocalMedia,
    srtp: &SrtpOffer,
    keygen: &mut impl FnMut(Suite) -> Result<KeyMaterial, KeyGenError>,
) -> Result<(Sdp, PendingOffer), OfferError> {
    if srtp.mandatory && srtp.suites.is_empty() {
        return Err(OfferError::NoSuites);
    }
    if !local.codecs.iter().any(|c| !c.is_dtmf()) {
        return Err(OfferError::NoCodecs);
    }
    let codecs = assign_payload_types(&local.codecs);
    let proto = if srtp.mandatory { Proto::RtpSavp } else { Proto::RtpAvp };
    let mut m = Media::new(
        "audio",
        local.rtp_port,
        proto.clone(),
        codecs.iter().map(|(pt, _)| pt.to_string()).collect(),
    );
    for (pt, c) in &codecs {
        push_codec_attrs(&mut m, *pt, &c.name, c.clock_rate, c.channels, c.fmtp.as_deref());
    }
    if let Some(p) = local.ptime {
        m.attributes.push(Attribute::new("ptime", p.to_string()));
    }
    if local.rtcp_mux {
        m.attributes.push(Attribute::flag("rtcp-mux"));
    }
    let mut crypto = Vec::with_capacity(srtp.suites.len());
    for (i, &suite) in srtp.suites.iter().enumerate() {
        let key = generate(keygen, suite)?;
        let tag = u32::try_from(i + 1).unwrap_or(u32::MAX);
        m.attributes
            .push(Attribute::new("crypto", CryptoAttr::new(tag, key.clone()).to_string()));
        crypto.push((tag, key));
    }
    m.attributes.push(Attribute::flag(local.direction.as_str()));
    let sdp = session(
        local,
        vec![Timing {
            start: 0,
            stop: 0,
            repeats: Vec::new(),
        }],
        vec![m],
    );
    let pending = PendingOffer {
        proto,
        codecs,
        crypto,
        mandatory: srtp.mandatory,
        direction: local.direction,
        rtcp_mux: local.rtcp_mux,
        media_count: 1,
    };
    Ok((sdp, pending))
}

impl PendingOffer {
    /// Checks the answer to our offer and returns the negotiated stream.
    ///
    /// The answer must keep the m= line count, media type and profile,
    /// pick exactly one offered tag with its suite and a valid key of its
    /// own (not ours), and share a codec. Without `a=crypto` it is
    /// accepted as plain RTP only if our offer was not mandatory.
    pub fn accept_answer(&self, answer: &Sdp) -> Result<Vec<NegotiatedStream>, AcceptError> {
        if answer.media.len() != self.media_count {
            return Err(AcceptError::MediaCount {
                expected: self.media_count,
                got: answer.media.len(),
            });
        }
        let Some(m) = answer.media.first() else {
            return Err(AcceptError::MediaCount {
                expected: self.media_count,
                got: 0,
            });
        };
        if m.media != "audio" || m.proto != self.proto {
            return Err(AcceptError::ProtoMismatch);
        }
        if m.port == 0 {
            return Err(AcceptError::Rejected);
        }
        let conn = answer.connection_for(m).ok_or(AcceptError::NoConnectionAddress)?;
        let ip = conn.ip().ok_or(AcceptError::NoConnectionAddress)?;

        let mut codecs = Vec::new();
        for pt in m.payload_types() {
            let format = format_of(m, pt).or_else(|| {
                // An answer may leave out the rtpmap of a payload type we
                // defined in the offer.
                self.codecs.iter().find(|(p, _)| *p == pt).map(|(_, c)| Format {
                    name: c.name.clone(),
                    clock_rate: c.clock_rate,
                    channels: c.channels,
                })
            });
            if let Some(f) = format
                && self.codecs.iter().any(|(_, c)| c.matches(&f))
            {
                codecs.push(negotiated(m, pt, f));
            }
        }
        if !codecs.iter().any(|c| !c.name.eq_ignore_ascii_case("telephone-event")) {
            return Err(AcceptError::NoCommonCodec);
        }

        let srtp = if self.crypto.is_empty() {
            None
        } else {
            self.check_crypto(m)?
        };

        let answered = effective_direction(answer, m, conn);
        let direction = self.direction.intersect(answered.reverse());
        let rtcp_mux = self.rtcp_mux && m.rtcp_mux();
        Ok(vec![NegotiatedStream {
            mline: 0,
            proto: m.proto.clone(),
            remote_addr: ip,
            remote_port: m.port,
            rtcp: rtcp_target(m, ip, rtcp_mux),
            codecs,
            ptime: m.ptime(),
            direction,
            srtp,
        }])
    }

    fn check_crypto(&self, m: &Media) -> Result<Option<SrtpParams>, AcceptError> {
        let mut lines = m.attribute_values("crypto");
        let Some(line) = lines.next() else {
            return if self.mandatory {
                Err(AcceptError::MissingCrypto)
            } else {
                Ok(None)
            };
        };
        if lines.next().is_some() {
            return Err(AcceptError::TooManyCrypto);
        }
        let attr: CryptoAttr = line.parse()?;
        let ours = self
            .crypto
            .iter()
            .find(|(tag, key)| *tag == attr.tag && key.suite() == attr.suite)
            .map(|(_, key)| key)
            .ok_or(AcceptError::NotOffered)?;
        let flags = attr.flags();
        if attr.keys.len() != 1
            || flags.unencrypted_srtp
            || flags.unauthenticated_srtp
            || flags.unencrypted_srtcp
            || attr.unsupported_mandatory_param().is_some()
        {
            return Err(AcceptError::CryptoRefused);
        }
        let Some(theirs) = attr.keys.first() else {
            return Err(AcceptError::CryptoRefused);
        };
        if theirs.key().ct_eq(ours) {
            return Err(AcceptError::EchoedKey);
        }
        Ok(Some(SrtpParams {
            suite: attr.suite,
            tag: attr.tag,
            remote_key: theirs.key().clone(),
            remote_mki: theirs.mki(),
            remote_lifetime: theirs.lifetime(),
            remote_kdr: attr.kdr(),
            local_key: ours.clone(),
            flags,
        }))
    }
}

/// A payload type's meaning, from `a=rtpmap` or the static table.
struct Format {
    name: String,
    clock_rate: u32,
    channels: u16,
}

/// RFC 3551 static audio payload types: encoding name and clock rate.
pub fn static_format(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        13 => ("CN", 8000),
        18 => ("G729", 8000),
        _ => return None,
    })
}

fn format_of(m: &Media, pt: u8) -> Option<Format> {
    if let Some(RtpMap {
        encoding,
        clock_rate,
        channels,
        ..
    }) = m.rtpmap(pt)
    {
        return Some(Format {
            name: encoding,
            clock_rate,
            channels: channels.unwrap_or(1),
        });
    }
    static_format(pt).map(|(n, r)| Format {
        name: n.into(),
        clock_rate: r,
        channels: 1,
    })
}

fn negotiated(m: &Media, pt: u8, f: Format) -> NegotiatedCodec {
    NegotiatedCodec {
        payload_type: pt,
        name: f.name,
        clock_rate: f.clock_rate,
        channels: f.channels,
        fmtp: m.fmtp(pt).map(|f| f.params),
    }
}

fn push_codec_attrs(m: &mut Media, pt: u8, name: &str, clock_rate: u32, channels: u16, fmtp: Option<&str>) {
    let map = RtpMap {
        payload_type: pt,
        encoding: name.to_owned(),
        clock_rate,
        channels: (channels != 1).then_some(channels),
    };
    m.attributes.push(Attribute::new("rtpmap", map.to_string()));
    if let Some(f) = fmtp {
        m.attributes.push(Attribute::new("fmtp", format!("{pt} {f}")));
    }
}

/// Our payload types: each codec's own if free, else the first free
/// dynamic one (96..=127). Codecs that find no number are left out.
fn assign_payload_types(codecs: &[Codec]) -> Vec<(u8, Codec)> {
    let mut used = [false; 128];
    let mut out = Vec::with_capacity(codecs.len());
    let mut pending = Vec::new();
    for c in codecs {
        match c.payload_type.filter(|&pt| pt < 128) {
            Some(pt) if !used[usize::from(pt)] => {
                used[usize::from(pt)] = true;
                out.push((pt, c.clone()));
            }
            _ => pending.push(c),
        }
    }
    for c in pending {
        if let Some(pt) = (96u8..128).find(|&pt| !used[usize::from(pt)]) {
            used[usize::from(pt)] = true;
            out.push((pt, c.clone()));
        }
    }
    // Keep the caller's order of preference.
    out.sort_by_key(|(_, c)| codecs.iter().position(|x| x == c));
    out
}

fn generate(
    keygen: &mut impl FnMut(Suite) -> Result<KeyMaterial, KeyGenError>,
    suite: Suite,
) -> Result<KeyMaterial, KeyGenError> {
    let key = keygen(suite)?;
    // A generator that returns another suite's key is a bug; refuse it
    // rather than announce a key of the wrong length.
    if key.suite() != suite {
        return Err(KeyGenError);
    }
    Ok(key)
}

/// The direction the other side declared, with `c=0.0.0.0` read as
/// "does not receive" (RFC 3264 §8.4).
fn effective_direction(sdp: &Sdp, m: &Media, conn: &Connection) -> Direction {
    let d = sdp.direction(m);
    if conn.is_unspecified() {
        Direction::from_parts(d.sends(), false)
    } else {
        d
    }
}

fn rtcp_target(m: &Media, ip: IpAddr, mux: bool) -> RtcpTarget {
    if mux {
        return RtcpTarget::Mux;
    }
    if let Some(r) = m.rtcp() {
        return RtcpTarget::Addr(SocketAddr::new(r.ip().unwrap_or(ip), r.port));
    }
    match m.port.checked_add(1) {
        Some(p) => RtcpTarget::Addr(SocketAddr::new(ip, p)),
        None => RtcpTarget::None,
    }
}

/// The answer to an m= line we do not take: same media, proto and
/// formats, port 0, no attributes.
fn rejected(m: &Media) -> Media {
    Media::new(&m.media, 0, m.proto.clone(), m.formats.clone())
}

fn session(local: &LocalMedia, timings: Vec<Timing>, media: Vec<Media>) -> Sdp {
    Sdp {
        origin: Origin {
            username: local.origin.username.clone(),
            session_id: local.origin.session_id.to_string(),
            session_version: local.origin.session_version,
            net_type: "IN".into(),
            addr_type: addr_type_of(local.address).into(),
            address: local.address.to_string(),
        },
        session_name: "-".into(),
        information: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: Some(Connection::new(local.address)),
        bandwidths: Vec::new(),
        timings,
        time_zones: None,
        key: None,
        attributes: Vec::new(),
        media,
    }
}

/// Picks the offered `a=crypto` line to answer, if any is acceptable.
fn pick_crypto(m: &Media, policy: &SrtpPolicy) -> Option<CryptoAttr> {
    let mut acceptable = m.crypto().filter_map(Result::ok).filter(|a| {
        let f = a.flags();
        policy.suites.contains(&a.suite)
            && a.keys.len() == 1
            && !f.unencrypted_srtp
            && !f.unauthenticated_srtp
            && (!f.unencrypted_srtcp || policy.allow_unencrypted_srtcp)
            && a.unsupported_mandatory_param().is_none()
    });
    match policy.choice {
        SuiteChoice::OurPreference => {
            acceptable.min_by_key(|a| policy.suites.iter().position(|s| *s == a.suite).unwrap_or(usize::MAX))
        }
        _ => acceptable.next(),
    }
}

fn answer_audio(
    offer: &Sdp,
    m: &Media,
    mline: usize,
    local: &LocalMedia,
    policy: &SrtpPolicy,
    keygen: &mut impl FnMut(Suite) -> Result<KeyMaterial, KeyGenError>,
) -> Result<(Media, NegotiatedStream), AnswerError> {
    let conn = offer.connection_for(m).ok_or(AnswerError::NoConnectionAddress)?;
    let ip = conn.ip().ok_or(AnswerError::NoConnectionAddress)?;

    // Codecs: the offer's payload types (and order) that we relay.
    let mut codecs = Vec::new();
    let mut answer_fmtp = Vec::new();
    for pt in m.payload_types() {
        let Some(f) = format_of(m, pt) else { continue };
        if let Some(c) = local.codecs.iter().find(|c| c.matches(&f)) {
            let nc = negotiated(m, pt, f);
            answer_fmtp.push(nc.fmtp.clone().or_else(|| c.fmtp.clone()));
            codecs.push(nc);
        }
    }
    if !codecs.iter().any(|c| !c.name.eq_ignore_ascii_case("telephone-event")) {
        return Err(AnswerError::NoCommonCodec);
    }

    // SRTP: RFC 4568 §7.1.2 for RTP/SAVP, best effort for RTP/AVP.
    let chosen = match policy.mode {
        SrtpMode::Disabled if m.proto.is_sdes_srtp() => {
            return Err(AnswerError::NoAcceptableCrypto);
        }
        SrtpMode::Disabled => None,
        _ => pick_crypto(m, policy),
    };
    if chosen.is_none() {
        if m.proto.is_sdes_srtp() {
            return Err(AnswerError::NoAcceptableCrypto);
        }
        if policy.mode == SrtpMode::Required {
            return Err(AnswerError::SrtpRequired);
        }
    }

    let offered = effective_direction(offer, m, conn);
    let direction = offered.reverse().intersect(local.direction);
    let rtcp_mux = local.rtcp_mux && m.rtcp_mux();

    let mut am = Media::new(
        "audio",
        local.rtp_port,
        m.proto.clone(),
        codecs.iter().map(|c| c.payload_type.to_string()).collect(),
    );
    for (c, fmtp) in codecs.iter().zip(&answer_fmtp) {
        push_codec_attrs(
            &mut am,
            c.payload_type,
            &c.name,
            c.clock_rate,
            c.channels,
            fmtp.as_deref(),
        );
    }
    if let Some(p) = local.ptime {
        am.attributes.push(Attribute::new("ptime", p.to_string()));
    }
    if rtcp_mux {
        am.attributes.push(Attribute::flag("rtcp-mux"));
    }
    let srtp = match chosen {
        Some(theirs) => {
            let ours = generate(keygen, theirs.suite)?;
            let Some(remote) = theirs.keys.first() else {
                return Err(AnswerError::NoAcceptableCrypto);
            };
            let flags = SessionFlags {
                unencrypted_srtcp: theirs.flags().unencrypted_srtcp,
                ..SessionFlags::default()
            };
            let mut line = CryptoAttr::new(theirs.tag, ours.clone());
            if flags.unencrypted_srtcp {
                // A negotiated parameter: the answer carries it too (RFC 4568 §6.3).
                line.session_params.push("UNENCRYPTED_SRTCP".into());
            }
            am.attributes.push(Attribute::new("crypto", line.to_string()));
            Some(SrtpParams {
                suite: theirs.suite,
                tag: theirs.tag,
                remote_key: remote.key().clone(),
                remote_mki: remote.mki(),
                remote_lifetime: remote.lifetime(),
                remote_kdr: theirs.kdr(),
                local_key: ours,
                flags,
            })
        }
        None => None,
    };
    am.attributes.push(Attribute::flag(direction.as_str()));

    let stream = NegotiatedStream {
        mline,
        proto: m.proto.clone(),
        remote_addr: ip,
        remote_port: m.port,
        rtcp: rtcp_target(m, ip, rtcp_mux),
        codecs,
        ptime: m.ptime(),
        direction,
        srtp,
    };
    Ok((am, stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_types_keep_order_and_avoid_clashes() {
        let dyn_codec = |name: &str, pt: Option<u8>| Codec {
            payload_type: pt,
            ..Codec::fixed(name, 8000, None, None)
        };
        let codecs = vec![
            dyn_codec("A", None),
            Codec::pcmu(),
            dyn_codec("B", Some(0)),
            dyn_codec("C", Some(96)),
        ];
        let got: Vec<(u8, String)> = assign_payload_types(&codecs)
            .into_iter()
            .map(|(pt, c)| (pt, c.name))
            .collect();
        assert_eq!(
            got,
            [(97, "A".into()), (0, "PCMU".into()), (98, "B".into()), (96, "C".into())]
        );
        let many: Vec<Codec> = (0..40).map(|i| dyn_codec(&format!("X{i}"), None)).collect();
        assert_eq!(assign_payload_types(&many).len(), 32, "only 96..=127 are dynamic");
    }

    #[test]
    fn rtcp_port_derivation() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut m = Media::new("audio", 65535, Proto::RtpAvp, vec!["0".into()]);
        assert_eq!(rtcp_target(&m, ip, false), RtcpTarget::None);
        assert_eq!(rtcp_target(&m, ip, true), RtcpTarget::Mux);
        m.attributes.push(Attribute::new("rtcp", "5000"));
        assert_eq!(rtcp_target(&m, ip, false), RtcpTarget::Addr(SocketAddr::new(ip, 5000)));
    }

    #[test]
    fn static_table_fills_missing_rtpmap() {
        let m = Media::new("audio", 1, Proto::RtpAvp, vec!["8".into(), "96".into()]);
        assert_eq!(format_of(&m, 8).map(|f| f.name), Some("PCMA".into()));
        assert!(format_of(&m, 96).is_none(), "a dynamic type needs an rtpmap");
    }
}
