//! The SDP session description (RFC 8866): data model, parser, printer.
//!
//! The model keeps what it does not interpret: attributes stay in their
//! order with their values verbatim, `r=`, `z=` and `k=` stay raw. So a
//! parsed body prints back to the same lines (in RFC 8866 order, with
//! CRLF line ends), and a B2BUA can pass through what it does not know.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::str::FromStr;

use zeroize::Zeroize;

use crate::attr::{Direction, Fmtp, Rtcp, RtpMap, parse_pt};
use crate::crypto::CryptoAttr;
use crate::parse::split_once_byte;
use crate::{CryptoError, ParseError};

/// Size limits applied while parsing, against hostile or broken peers.
///
/// The defaults are far above any real offer (a baresip offer is about
/// 400 bytes and 15 lines) and small enough that parsing stays cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest body in bytes (default 64 KiB).
    pub max_bytes: usize,
    /// Most lines in a body (default 1024).
    pub max_lines: usize,
    /// Longest line in bytes (default 4096).
    pub max_line_len: usize,
    /// Most `m=` sections (default 32).
    pub max_media: usize,
    /// Most `a=` lines in one section (default 256).
    pub max_attributes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 64 * 1024,
            max_lines: 1024,
            max_line_len: 4096,
            max_media: 32,
            max_attributes: 256,
        }
    }
}

/// A parsed session description.
///
/// Fields are public plain data. Printing ([`fmt::Display`]) does not
/// re-check them: code that puts outside text into a field should call
/// [`Sdp::validate`] before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// `o=`.
    pub origin: Origin,
    /// `s=` (a single space when the sender has no name, `-` is common).
    pub session_name: String,
    /// `i=`.
    pub information: Option<String>,
    /// `u=`.
    pub uri: Option<String>,
    /// `e=` lines.
    pub emails: Vec<String>,
    /// `p=` lines.
    pub phones: Vec<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines, each with its `r=` lines.
    pub timings: Vec<Timing>,
    /// `z=`, raw.
    pub time_zones: Option<String>,
    /// Session-level `k=` (obsolete), raw.
    pub key: Option<String>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// `m=` sections, in order.
    pub media: Vec<Media>,
}

/// The `o=` line: `<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name (`-` when none).
    pub username: String,
    /// Session id, decimal digits (kept as text: some stacks exceed 64 bits).
    pub session_id: String,
    /// Session version; RFC 3264 §8 wants it increased with every change.
    pub session_version: u64,
    /// Network type, `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Address or host name of the originator.
    pub address: String,
}

/// A `c=` line: `<nettype> <addrtype> <connection-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type, `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// The address as written (may carry `/ttl[/n]` for multicast, or be
    /// a host name).
    pub address: String,
}

/// A `b=<bwtype>:<bandwidth>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// Bandwidth type (`AS`, `CT`, `TIAS`, ...).
    pub bw_type: String,
    /// The value (kbit/s for AS and CT, bit/s for TIAS).
    pub bandwidth: u64,
}

/// A `t=<start> <stop>` line with its `r=` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Start time (NTP seconds, 0 = unbounded).
    pub start: u64,
    /// Stop time (NTP seconds, 0 = unbounded).
    pub stop: u64,
    /// `r=` lines, raw.
    pub repeats: Vec<String>,
}

/// An `a=<name>[:<value>]` line; the value is kept verbatim.
///
/// `Debug` hides the key of `a=crypto` lines, and dropping a crypto
/// attribute wipes its value. `Display` prints it as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute name (a token, case kept).
    pub name: String,
    /// Value after the first `:`, verbatim; `None` for a property
    /// attribute such as `a=sendrecv`.
    pub value: Option<String>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Media type: `audio`, `video`, `image`, ...
    pub media: String,
    /// Transport port; 0 means the stream is rejected or disabled.
    pub port: u16,
    /// The `/<number of ports>` suffix, if any.
    pub port_count: Option<u16>,
    /// Transport protocol.
    pub proto: Proto,
    /// Formats (RTP payload type numbers for RTP profiles), as written.
    pub formats: Vec<String>,
    /// Media-level `i=`.
    pub information: Option<String>,
    /// Media-level `c=` lines (usually zero or one).
    pub connections: Vec<Connection>,
    /// Media-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// Media-level `k=`, raw.
    pub key: Option<String>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

/// The transport protocol of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Proto {
    /// `RTP/AVP` (RFC 3551): plain RTP, or best-effort SRTP with `a=crypto`.
    RtpAvp,
    /// `RTP/AVPF` (RFC 4585).
    RtpAvpf,
    /// `RTP/SAVP` (RFC 3711): SRTP.
    RtpSavp,
    /// `RTP/SAVPF` (RFC 5124): SRTP with feedback.
    RtpSavpf,
    /// `UDP/TLS/RTP/SAVP` (RFC 5764): DTLS-SRTP.
    UdpTlsRtpSavp,
    /// `UDP/TLS/RTP/SAVPF` (RFC 5764): DTLS-SRTP with feedback.
    UdpTlsRtpSavpf,
    /// Anything else, as written (`udptl`, `TCP/MSRP`, ...).
    Other(String),
}

impl Proto {
    /// The protocol as written in SDP.
    pub fn as_str(&self) -> &str {
        match self {
            Proto::RtpAvp => "RTP/AVP",
            Proto::RtpAvpf => "RTP/AVPF",
            Proto::RtpSavp => "RTP/SAVP",
            Proto::RtpSavpf => "RTP/SAVPF",
            Proto::UdpTlsRtpSavp => "UDP/TLS/RTP/SAVP",
            Proto::UdpTlsRtpSavpf => "UDP/TLS/RTP/SAVPF",
            Proto::Other(s) => s,
        }
    }

    /// True for the SDES-SRTP profiles `RTP/SAVP` and `RTP/SAVPF`.
    pub fn is_sdes_srtp(&self) -> bool {
        matches!(self, Proto::RtpSavp | Proto::RtpSavpf)
    }

    /// True for the plain RTP profiles `RTP/AVP` and `RTP/AVPF`.
    pub fn is_plain_rtp(&self) -> bool {
        matches!(self, Proto::RtpAvp | Proto::RtpAvpf)
    }

    /// True for the DTLS-SRTP profiles (not supported by negotiation).
    pub fn is_dtls_srtp(&self) -> bool {
        matches!(self, Proto::UdpTlsRtpSavp | Proto::UdpTlsRtpSavpf)
    }

    /// True if the formats are RTP payload type numbers.
    pub fn is_rtp(&self) -> bool {
        self.is_sdes_srtp() || self.is_plain_rtp() || self.is_dtls_srtp()
    }
}

impl FromStr for Proto {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Proto, Self::Err> {
        Ok(match s {
            "RTP/AVP" => Proto::RtpAvp,
            "RTP/AVPF" => Proto::RtpAvpf,
            "RTP/SAVP" => Proto::RtpSavp,
            "RTP/SAVPF" => Proto::RtpSavpf,
            "UDP/TLS/RTP/SAVP" => Proto::UdpTlsRtpSavp,
            "UDP/TLS/RTP/SAVPF" => Proto::UdpTlsRtpSavpf,
            other => Proto::Other(other.to_owned()),
        })
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Connection {
    /// A unicast `c=IN IP4|IP6 <ip>` line for `ip`.
    pub fn new(ip: IpAddr) -> Connection {
        Connection {
            net_type: "IN".into(),
            addr_type: addr_type_of(ip).into(),
            address: ip.to_string(),
        }
    }

    /// The unicast IP address, if the address is a literal IP without a
    /// `/ttl` suffix and matches the address type.
    pub fn ip(&self) -> Option<IpAddr> {
        match (self.net_type.as_str(), self.addr_type.as_str()) {
            ("IN", "IP4") => self.address.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
            ("IN", "IP6") => self.address.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
            _ => None,
        }
    }

    /// True for the RFC 2543 hold address `0.0.0.0` (or `::`): the sender
    /// does not want to receive media (RFC 3264 §8.4).
    pub fn is_unspecified(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// `IP4` or `IP6` for an address.
pub(crate) fn addr_type_of(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IP4" } else { "IP6" }
}

impl Attribute {
    /// A property attribute `a=<name>`.
    pub fn flag(name: &str) -> Attribute {
        Attribute {
            name: name.to_owned(),
            value: None,
        }
    }

    /// A value attribute `a=<name>:<value>`.
    pub fn new(name: &str, value: impl Into<String>) -> Attribute {
        Attribute {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }

    fn is_crypto(&self) -> bool {
        self.name.eq_ignore_ascii_case("crypto")
    }
}

impl Drop for Attribute {
    fn drop(&mut self) {
        // The value of an `a=crypto` line holds a master key in base64.
        if self.is_crypto()
            && let Some(v) = self.value.as_mut()
        {
            v.zeroize();
        }
    }
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Attribute");
        d.field("name", &self.name);
        match &self.value {
            Some(v) if self.is_crypto() => {
                // Keep tag and suite, which help debugging; hide the keys.
                let shown: Vec<&str> = v.split_ascii_whitespace().take(2).collect();
                d.field("value", &format_args!("\"{} <redacted>\"", shown.join(" ")));
            }
            v => {
                d.field("value", v);
            }
        }
        d.finish()
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "a={}:{}\r\n", self.name, v),
            None => write!(f, "a={}\r\n", self.name),
        }
    }
}

/// Finds the values of the attributes named `name` (ASCII case-insensitive).
fn values<'a, 'n>(attrs: &'a [Attribute], name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    attrs
        .iter()
        .filter(move |a| a.name.eq_ignore_ascii_case(name))
        .filter_map(|a| a.value.as_deref())
}

fn has_flag(attrs: &[Attribute], name: &str) -> bool {
    attrs.iter().any(|a| a.name.eq_ignore_ascii_case(name))
}

fn direction_in(attrs: &[Attribute]) -> Option<Direction> {
    // The last direction attribute wins if a sender writes several.
    attrs.iter().rev().find_map(|a| {
        if a.value.is_none() {
            Direction::from_attr(&a.name)
        } else {
            None
        }
    })
}

impl Media {
    /// A new section with no attributes.
    pub fn new(media: &str, port: u16, proto: Proto, formats: Vec<String>) -> Media {
        Media {
            media: media.to_owned(),
            port,
            port_count: None,
            proto,
            formats,
            information: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            // A phone's audio section carries a handful of rtpmap, fmtp,
            // crypto and direction lines.
            attributes: Vec::with_capacity(8),
        }
    }

    /// The values of all `a=<name>` lines of this section, in order.
    pub fn attribute_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        values(&self.attributes, name)
    }

    /// The first value of `a=<name>`, if any.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        values(&self.attributes, name).next()
    }

    /// True if the section has an attribute of that name (with or without value).
    pub fn has_attribute(&self, name: &str) -> bool {
        has_flag(&self.attributes, name)
    }

    /// The formats as RTP payload types; formats that are not numbers in
    /// 0..=127 are skipped.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok().filter(|&pt| pt < 128))
    }

    /// All parseable `a=rtpmap` lines (malformed ones are skipped).
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap> + '_ {
        self.attribute_values("rtpmap").filter_map(|v| v.parse().ok())
    }

    /// The `a=rtpmap` of one payload type.
    ///
    /// Only lines whose first word is `pt` are parsed in full: the answer
    /// looks up every offered codec, and parsing every line each time (with
    /// its allocations) was a good part of building an answer.
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap> {
        self.attribute_values("rtpmap")
            .filter(|v| split_once_byte(v, b' ').is_some_and(|(w, _)| parse_pt(w) == Ok(pt)))
            .find_map(|v| v.parse::<RtpMap>().ok())
    }

    /// The `a=fmtp` of one payload type.
    pub fn fmtp(&self, pt: u8) -> Option<Fmtp> {
        self.attribute_values("fmtp")
            .filter(|v| first_word_is(v, pt))
            .find_map(|v| v.parse::<Fmtp>().ok())
    }

    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime").and_then(crate::attr::parse_ms)
    }

    /// `a=maxptime` in milliseconds.
    pub fn maxptime(&self) -> Option<u32> {
        self.attribute("maxptime").and_then(crate::attr::parse_ms)
    }

    /// The direction attribute of this section, if it has one (see
    /// [`Sdp::direction`] for the effective one).
    pub fn direction_attr(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// Replaces every direction attribute with `dir`, at the position of
    /// the first one (or at the end).
    pub fn set_direction(&mut self, dir: Direction) {
        let pos = self
            .attributes
            .iter()
            .position(|a| a.value.is_none() && Direction::from_attr(&a.name).is_some());
        self.attributes
            .retain(|a| !(a.value.is_none() && Direction::from_attr(&a.name).is_some()));
        let at = pos.unwrap_or(self.attributes.len()).min(self.attributes.len());
        self.attributes.insert(at, Attribute::flag(dir.as_str()));
    }

    /// `a=rtcp` (RFC 3605), if present and well-formed.
    pub fn rtcp(&self) -> Option<Rtcp> {
        self.attribute("rtcp").and_then(|v| v.parse().ok())
    }

    /// True if the section has `a=rtcp-mux` (RFC 5761).
    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// Every `a=crypto` line, parsed; bad lines come back as errors so the
    /// caller can skip them and log why.
    pub fn crypto(&self) -> impl Iterator<Item = Result<CryptoAttr, CryptoError>> + '_ {
        self.attribute_values("crypto").map(str::parse)
    }

    /// Removes every `a=<name>` line.
    pub fn remove_attributes(&mut self, name: &str) {
        self.attributes.retain(|a| !a.name.eq_ignore_ascii_case(name));
    }
}

impl Sdp {
    /// Parses a body with the default [`Limits`].
    pub fn parse(text: &str) -> Result<Sdp, ParseError> {
        Sdp::parse_with_limits(text, &Limits::default())
    }

    /// Parses raw body bytes (as they come off a SIP message) with the
    /// default [`Limits`].
    pub fn parse_bytes(bytes: &[u8]) -> Result<Sdp, ParseError> {
        let limits = Limits::default();
        if bytes.len() > limits.max_bytes {
            return Err(ParseError::TooLarge {
                len: bytes.len(),
                max: limits.max_bytes,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ParseError::NotUtf8)?;
        Sdp::parse_with_limits(text, &limits)
    }

    /// Parses a body. Lines may end in CRLF or LF; blank lines are ignored.
    pub fn parse_with_limits(text: &str, limits: &Limits) -> Result<Sdp, ParseError> {
        crate::parse::parse(text, limits)
    }

    /// Checks that the printed form parses back to this value: no field
    /// holds a line break or control character (which could smuggle in
    /// lines), addresses fit their types, and so on.
    pub fn validate(&self) -> Result<(), ParseError> {
        if Sdp::parse(&self.to_string())? == *self {
            Ok(())
        } else {
            Err(ParseError::NotCanonical)
        }
    }

    /// The session-level direction attribute, if any.
    pub fn session_direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// The effective direction of `media`: its own attribute, else the
    /// session's, else `sendrecv` (RFC 8866 §6.7).
    pub fn direction(&self, media: &Media) -> Direction {
        media
            .direction_attr()
            .or_else(|| self.session_direction())
            .unwrap_or(Direction::SendRecv)
    }

    /// The effective connection of `media`: its first `c=`, else the
    /// session's.
    pub fn connection_for<'a>(&'a self, media: &'a Media) -> Option<&'a Connection> {
        media.connections.first().or(self.connection.as_ref())
    }

    /// The values of all session-level `a=<name>` lines.
    pub fn attribute_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        values(&self.attributes, name)
    }
}

impl FromStr for Sdp {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Sdp, ParseError> {
        Sdp::parse(s)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username, self.session_id, self.session_version, self.net_type, self.addr_type, self.address
        )
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.bw_type, self.bandwidth)
    }
}

impl fmt::Display for Media {
    /// Prints the section, `m=` line first, CRLF line ends.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt in &self.formats {
            write!(f, " {fmt}")?;
        }
        f.write_str("\r\n")?;
        if let Some(i) = &self.information {
            write!(f, "i={i}\r\n")?;
        }
        for c in &self.connections {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={b}\r\n")?;
        }
        if let Some(k) = &self.key {
            write!(f, "k={k}\r\n")?;
        }
        for a in &self.attributes {
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Sdp {
    /// Prints the body in RFC 8866 order with CRLF line ends.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("v=0\r\n")?;
        write!(f, "o={}\r\n", self.origin)?;
        write!(f, "s={}\r\n", self.session_name)?;
        if let Some(i) = &self.information {
            write!(f, "i={i}\r\n")?;
        }
        if let Some(u) = &self.uri {
            write!(f, "u={u}\r\n")?;
        }
        for e in &self.emails {
            write!(f, "e={e}\r\n")?;
        }
        for p in &self.phones {
            write!(f, "p={p}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={b}\r\n")?;
        }
        for t in &self.timings {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}\r\n")?;
            }
        }
        if let Some(z) = &self.time_zones {
            write!(f, "z={z}\r\n")?;
        }
        if let Some(k) = &self.key {
            write!(f, "k={k}\r\n")?;
        }
        for a in &self.attributes {
            write!(f, "{a}")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl Sdp {
    /// The printed body as bytes, ready for a SIP message
    /// (`Content-Type: application/sdp`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(512);
        // Writing into a String cannot fail.
        let _ = write!(s, "{self}");
        s.into_bytes()
    }
}

/// True when `v` starts with `pt` in decimal and a space (an `fmtp`
/// value's format), compared without formatting `pt` into a String.
fn first_word_is(v: &str, pt: u8) -> bool {
    let mut digits = [0u8; 3];
    let mut start = digits.len();
    let mut n = pt;
    loop {
        start -= 1;
        digits[start] = b'0' + n % 10;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    split_once_byte(v, b' ').is_some_and(|(w, _)| w.as_bytes() == &digits[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_lookups_by_payload_type() {
        let mut m = Media::new(
            "audio",
            4000,
            "RTP/AVP".parse().unwrap(),
            vec!["0".into(), "96".into(), "101".into()],
        );
        for (name, value) in [
            ("rtpmap", "96 opus/48000/2"),
            ("rtpmap", "0 PCMU/8000"),
            ("fmtp", "101 0-16"),
            ("fmtp", "9 bitrate=64000"),
            ("rtpmap", "101 telephone-event/8000"),
        ] {
            m.attributes.push(Attribute::new(name, value));
        }
        assert_eq!(m.rtpmap(96).unwrap().encoding, "opus");
        assert_eq!(m.rtpmap(101).unwrap().clock_rate, 8000);
        assert!(m.rtpmap(9).is_none());
        assert_eq!(m.fmtp(101).unwrap().params, "0-16");
        assert!(m.fmtp(10).is_none() && m.fmtp(1).is_none());
        assert!(first_word_is("0 x", 0) && first_word_is("127 x", 127));
        assert!(!first_word_is("12 x", 127) && !first_word_is("127", 127) && !first_word_is("1270 x", 127));
    }

    const FULL: &str = "v=0\r\n\
        o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1\r\n\
        s=Call to John Smith\r\n\
        i=SDP Offer #1\r\n\
        u=http://www.jdoe.example.com/home.html\r\n\
        e=Jane Doe <jane@jdoe.example.com>\r\n\
        p=+1 617 555-6011\r\n\
        c=IN IP4 198.51.100.1\r\n\
        b=AS:128\r\n\
        t=0 0\r\n\
        r=604800 3600 0 90000\r\n\
        z=2882844526 -1h 2898848070 0\r\n\
        k=prompt\r\n\
        a=recvonly\r\n\
        a=tool:x y z\r\n\
        m=audio 49170/2 RTP/AVP 0 101\r\n\
        i=voice\r\n\
        c=IN IP6 2001:db8::1\r\n\
        b=TIAS:64000\r\n\
        k=prompt\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\n\
        a=ptime:20\r\n\
        a=rtcp:53021 IN IP4 126.16.64.4\r\n\
        a=x-unknown:keep  this   verbatim \r\n\
        a=sendonly\r\n\
        m=video 51372 RTP/AVPF 99\r\n\
        a=rtpmap:99 h263-1998/90000\r\n\
        m=application 9 TCP/MSRP *\r\n\
        a=accept-types:text/plain\r\n";

    #[test]
    fn every_line_type_round_trips() {
        let sdp = Sdp::parse(FULL).unwrap();
        assert_eq!(sdp.to_string(), FULL);
        assert_eq!(sdp.origin.session_version, 3_724_394_405);
        assert_eq!(sdp.timings[0].repeats, ["604800 3600 0 90000"]);
        assert_eq!(sdp.session_direction(), Some(Direction::RecvOnly));
        let audio = &sdp.media[0];
        assert_eq!(
            (audio.port, audio.port_count, &audio.proto),
            (49170, Some(2), &Proto::RtpAvp)
        );
        assert_eq!(
            sdp.connection_for(audio).and_then(Connection::ip),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(sdp.direction(audio), Direction::SendOnly);
        assert_eq!(audio.rtpmap(101).map(|m| m.clock_rate), Some(8000));
        assert_eq!(audio.fmtp(101).map(|f| f.params), Some("0-15".into()));
        assert_eq!(audio.ptime(), Some(20));
        assert_eq!(audio.rtcp().map(|r| r.port), Some(53021));
        assert_eq!(audio.attribute("x-unknown"), Some("keep  this   verbatim "));
        let video = &sdp.media[1];
        assert_eq!(sdp.direction(video), Direction::RecvOnly, "session default applies");
        assert_eq!(
            sdp.connection_for(video).and_then(Connection::ip),
            Some("198.51.100.1".parse().unwrap())
        );
        assert_eq!(sdp.media[2].proto, Proto::Other("TCP/MSRP".into()));
        assert_eq!(sdp.media[2].formats, ["*"]);
    }

    #[test]
    fn lf_only_and_trailing_blank_lines() {
        let lf = FULL.replace("\r\n", "\n") + "\n\n";
        assert_eq!(Sdp::parse(&lf).unwrap().to_string(), FULL);
    }

    #[test]
    fn relaxed_order_but_strict_structure() {
        // a= before t=, c= after b=: seen in the wild, harmless.
        let s = "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nb=AS:1\nc=IN IP4 1.2.3.4\na=x\nt=0 0\n";
        assert!(Sdp::parse(s).is_ok());
        let err = |s: &str| Sdp::parse(s).unwrap_err();
        let head = "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\n";
        assert_eq!(err(""), ParseError::MissingVersion);
        assert_eq!(err("\r\n"), ParseError::MissingVersion);
        assert_eq!(err("o=- 1 1 IN IP4 1.2.3.4\n"), ParseError::MissingVersion);
        assert_eq!(err("v=1\n"), ParseError::UnsupportedVersion);
        assert_eq!(err("v=0\ns=-\n"), ParseError::Missing('o'));
        assert_eq!(err("v=0\no=- 1 1 IN IP4 1.2.3.4\n"), ParseError::Missing('s'));
        assert_eq!(
            err(&format!("{head}x=1\n")),
            ParseError::UnknownType { line: 4, ty: 'x' }
        );
        assert_eq!(
            err(&format!("{head}s=again\n")),
            ParseError::Unexpected { line: 4, ty: 's' }
        );
        assert_eq!(
            err(&format!("{head}v=0\n")),
            ParseError::Unexpected { line: 4, ty: 'v' }
        );
        assert_eq!(
            err(&format!("{head}r=1 2 3\n")),
            ParseError::Unexpected { line: 4, ty: 'r' }
        );
        assert_eq!(
            err(&format!("{head}m=audio 1 RTP/AVP 0\nt=0 0\n")),
            ParseError::Unexpected { line: 5, ty: 't' }
        );
        assert_eq!(
            err(&format!("{head}m=audio 1 RTP/AVP 0\ni=a\ni=b\n")),
            ParseError::Unexpected { line: 6, ty: 'i' }
        );
        assert_eq!(err(&format!("{head}a =x\n")), ParseError::Syntax { line: 4 });
        assert_eq!(err(&format!("{head}A=x\n")), ParseError::Syntax { line: 4 });
        assert_eq!(err(&format!("{head}a=x\0y\n")), ParseError::ControlChar { line: 4 });
        assert_eq!(err(&format!("{head}a=x\ry\n")), ParseError::ControlChar { line: 4 });
        assert_eq!(err(&format!("{head}a=\n")), ParseError::InvalidAttribute { line: 4 });
        assert_eq!(
            err(&format!("{head}a=na me\n")),
            ParseError::InvalidAttribute { line: 4 }
        );
        assert_eq!(Sdp::parse_bytes(b"v=0\n\xff\n"), Err(ParseError::NotUtf8));
    }

    #[test]
    fn field_syntax() {
        let head = "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\n";
        let err = |l: &str| Sdp::parse(&format!("{head}{l}\n")).unwrap_err();
        for (line, want) in [
            ("m=audio 65536 RTP/AVP 0", ParseError::InvalidPort { line: 4 }),
            ("m=audio -1 RTP/AVP 0", ParseError::InvalidPort { line: 4 }),
            ("m=audio 1/0 RTP/AVP 0", ParseError::InvalidPort { line: 4 }),
            ("m=audio x RTP/AVP 0", ParseError::InvalidPort { line: 4 }),
            ("m=audio 1 RTP/AVP", ParseError::InvalidMedia { line: 4 }),
            ("m=audio 1 RTP/AVP 128", ParseError::InvalidMedia { line: 4 }),
            ("m=audio 1 RTP/AVP pcmu", ParseError::InvalidMedia { line: 4 }),
            ("m=audio 1 RTP//AVP 0", ParseError::InvalidMedia { line: 4 }),
            ("m=audio", ParseError::InvalidMedia { line: 4 }),
            ("c=IN IP4 300.1.1.1", ParseError::InvalidConnection { line: 4 }),
            ("c=IN IP4 1.2.3.4 extra", ParseError::InvalidConnection { line: 4 }),
            ("c=IN IP6 2001:db8::1/1/1", ParseError::InvalidConnection { line: 4 }),
            ("c=IN IP4", ParseError::InvalidConnection { line: 4 }),
            ("b=AS", ParseError::InvalidBandwidth { line: 4 }),
            ("b=AS:-1", ParseError::InvalidBandwidth { line: 4 }),
            ("t=0", ParseError::InvalidTiming { line: 4 }),
            ("t=0 x", ParseError::InvalidTiming { line: 4 }),
        ] {
            assert_eq!(err(line), want, "{line}");
        }
        assert!(Sdp::parse(&format!("{head}o=- 1 1 IN IP4 1.2.3.4\n")).is_err());
        let bad_origin = Sdp::parse("v=0\no=- x 1 IN IP4 1.2.3.4\ns=-\n").unwrap_err();
        assert_eq!(bad_origin, ParseError::InvalidOrigin { line: 2 });
        // Multicast, host names and IPv6 are accepted as written.
        for c in [
            "c=IN IP4 224.2.1.1/127/3",
            "c=IN IP4 host.example.com",
            "c=IN IP6 ff15::101/3",
            "c=IN IP6 ::",
        ] {
            let sdp = Sdp::parse(&format!("{head}{c}\n")).unwrap();
            assert_eq!(sdp.to_string().lines().nth(3), Some(c));
        }
    }

    #[test]
    fn connection_helpers() {
        let c = Connection::new("2001:db8::5".parse().unwrap());
        assert_eq!(c.to_string(), "IN IP6 2001:db8::5");
        assert!(!c.is_unspecified());
        let hold = Connection {
            net_type: "IN".into(),
            addr_type: "IP4".into(),
            address: "0.0.0.0".into(),
        };
        assert!(hold.is_unspecified());
        let mismatch = Connection {
            net_type: "IN".into(),
            addr_type: "IP6".into(),
            address: "1.2.3.4".into(),
        };
        assert_eq!(mismatch.ip(), None);
    }

    #[test]
    fn set_direction_replaces_in_place() {
        let mut m = Media::new("audio", 1, Proto::RtpAvp, vec!["0".into()]);
        m.attributes = vec![
            Attribute::flag("rtcp-mux"),
            Attribute::flag("sendrecv"),
            Attribute::new("ptime", "20"),
            Attribute::flag("recvonly"),
        ];
        m.set_direction(Direction::Inactive);
        let names: Vec<&str> = m.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["rtcp-mux", "inactive", "ptime"]);
        m.remove_attributes("PTIME");
        assert_eq!(m.attributes.len(), 2);
    }

    #[test]
    fn crypto_attribute_debug_is_redacted() {
        let a = Attribute::new(
            "crypto",
            "1 AES_CM_128_HMAC_SHA1_80 inline:pUUBiPfLKi6qR8ZSe2Db6r5slrJD8Kaz1WfHbZSt",
        );
        let d = format!("{a:?}");
        assert!(
            !d.contains("pUUB") && d.contains("AES_CM_128_HMAC_SHA1_80 <redacted>"),
            "{d}"
        );
        assert!(format!("{:?}", Attribute::new("ptime", "20")).contains("\"20\""));
        assert!(a.to_string().contains("pUUB"), "Display is the wire form");
    }

    #[test]
    fn validate_catches_injected_line_breaks() {
        let mut sdp = Sdp::parse("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\n").unwrap();
        assert!(sdp.validate().is_ok());
        sdp.session_name = "x\r\na=injected".into();
        assert!(sdp.validate().is_err());
    }
}
