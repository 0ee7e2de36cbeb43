//! Typed views of the media attributes the PBX reads: `rtpmap`, `fmtp`,
//! `ptime`, the direction attributes and `rtcp`.
//!
//! They parse from an attribute value and print back to one, so a B2BUA
//! can read them from an offer and write them into an answer.

use crate::parse::split_once_byte;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::parse::{is_digits, is_token};
use crate::sdp::Connection;

/// A media direction (RFC 8866 §6.7, RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// Parses a direction attribute name (`sendrecv`, `sendonly`,
    /// `recvonly`, `inactive`).
    pub fn from_attr(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction from its two halves.
    pub fn from_parts(send: bool, recv: bool) -> Direction {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// True if this side sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// True if this side receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other end: `sendonly` ↔ `recvonly`.
    pub fn reverse(self) -> Direction {
        Direction::from_parts(self.receives(), self.sends())
    }

    /// Both constraints at once: sends only if both send, receives only
    /// if both receive.
    pub fn intersect(self, other: Direction) -> Direction {
        Direction::from_parts(self.sends() && other.sends(), self.receives() && other.receives())
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The attribute value could not be parsed into the typed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed attribute value")]
#[non_exhaustive]
pub struct AttrError;

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RtpMap {
    /// RTP payload type, 0..=127.
    pub payload_type: u8,
    /// Encoding name as written (`PCMU`, `telephone-event`, `opus`).
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channels (audio only); `None` means 1.
    pub channels: Option<u16>,
}

impl FromStr for RtpMap {
    type Err = AttrError;

    fn from_str(v: &str) -> Result<RtpMap, AttrError> {
        let (pt, rest) = split_once_byte(v, b' ').ok_or(AttrError)?;
        let payload_type = parse_pt(pt)?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next().filter(|e| is_token(e)).ok_or(AttrError)?;
        let clock = parts.next().filter(|c| is_digits(c, 10)).ok_or(AttrError)?;
        let clock_rate = clock.parse().map_err(|_| AttrError)?;
        let channels = match parts.next() {
            Some(c) if is_digits(c, 5) => Some(c.parse().map_err(|_| AttrError)?),
            Some(_) => return Err(AttrError),
            None => None,
        };
        if parts.next().is_some() || clock_rate == 0 {
            return Err(AttrError);
        }
        Ok(RtpMap {
            payload_type,
            encoding: encoding.to_owned(),
            clock_rate,
            channels,
        })
    }
}

impl fmt::Display for RtpMap {
    /// Prints the attribute value (without `a=rtpmap:`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.payload_type, self.encoding, self.clock_rate)?;
        if let Some(c) = self.channels {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}

/// `a=fmtp:<format> <format specific parameters>`; the parameters stay
/// raw because each codec defines its own syntax.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fmtp {
    /// The format (payload type number for RTP), as written.
    pub format: String,
    /// Everything after the first space, verbatim.
    pub params: String,
}

impl Fmtp {
    /// The `key=value` pairs of a `;`-separated parameter list (the common
    /// form, e.g. `mode=20;annexb=no`), trimmed; entries without `=`
    /// come back with an empty value.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match split_once_byte(p, b'=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (p, ""),
            })
    }
}

impl FromStr for Fmtp {
    type Err = AttrError;

    fn from_str(v: &str) -> Result<Fmtp, AttrError> {
        let (format, params) = split_once_byte(v, b' ').ok_or(AttrError)?;
        if !is_token(format) {
            return Err(AttrError);
        }
        Ok(Fmtp {
            format: format.to_owned(),
            params: params.to_owned(),
        })
    }
}

impl fmt::Display for Fmtp {
    /// Prints the attribute value (without `a=fmtp:`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.format, self.params)
    }
}

/// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address, if it differs from the stream's `c=`.
    pub connection: Option<Connection>,
}

impl Rtcp {
    /// The explicit RTCP IP address, if one is given and is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.connection.as_ref().and_then(Connection::ip)
    }
}

impl FromStr for Rtcp {
    type Err = AttrError;

    fn from_str(v: &str) -> Result<Rtcp, AttrError> {
        let f: Vec<&str> = v.split_ascii_whitespace().collect();
        let (port, conn) = match f.as_slice() {
            [p] => (*p, None),
            [p, net, at, addr] => (
                *p,
                Some(Connection {
                    net_type: (*net).into(),
                    addr_type: (*at).into(),
                    address: (*addr).into(),
                }),
            ),
            _ => return Err(AttrError),
        };
        if !is_digits(port, 5) {
            return Err(AttrError);
        }
        let port = port.parse().map_err(|_| AttrError)?;
        if let Some(c) = &conn
            && c.ip().is_none()
        {
            return Err(AttrError);
        }
        Ok(Rtcp { port, connection: conn })
    }
}

impl fmt::Display for Rtcp {
    /// Prints the attribute value (without `a=rtcp:`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some(c) = &self.connection {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

/// A payload type: 1 to 3 digits, value below 128.
pub(crate) fn parse_pt(s: &str) -> Result<u8, AttrError> {
    if !is_digits(s, 3) {
        return Err(AttrError);
    }
    s.parse::<u8>().ok().filter(|&pt| pt < 128).ok_or(AttrError)
}

/// A `ptime`-style millisecond value: digits, optionally with a decimal
/// fraction (RFC 8866 allows `a=ptime:20.0`), rounded down; 1..=10000.
pub(crate) fn parse_ms(v: &str) -> Option<u32> {
    let v = v.trim();
    let int = match split_once_byte(v, b'.') {
        Some((i, frac)) if frac.bytes().all(|b| b.is_ascii_digit()) => i,
        Some(_) => return None,
        None => v,
    };
    if !is_digits(int, 5) {
        return None;
    }
    int.parse().ok().filter(|&ms| (1..=10_000).contains(&ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_algebra() {
        use Direction::*;
        assert_eq!(SendOnly.reverse(), RecvOnly);
        assert_eq!(Inactive.reverse(), Inactive);
        assert_eq!(SendRecv.intersect(RecvOnly), RecvOnly);
        assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
        for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(Direction::from_attr(d.as_str()), Some(d));
            assert_eq!(d.reverse().reverse(), d);
        }
        assert_eq!(Direction::from_attr("SENDRECV"), None);
    }

    #[test]
    fn rtpmap() {
        let m: RtpMap = "101 telephone-event/8000".parse().unwrap();
        assert_eq!(
            (m.payload_type, m.encoding.as_str(), m.clock_rate, m.channels),
            (101, "telephone-event", 8000, None)
        );
        assert_eq!(m.to_string(), "101 telephone-event/8000");
        let o: RtpMap = "111 opus/48000/2".parse().unwrap();
        assert_eq!(o.channels, Some(2));
        assert_eq!(o.to_string(), "111 opus/48000/2");
        for bad in [
            "",
            "101",
            "128 x/8000",
            "1 x",
            "1 x/0",
            "1 x/8000/2/3",
            "-1 x/8000",
            "1 x/abc",
            "1 /8000",
        ] {
            assert!(bad.parse::<RtpMap>().is_err(), "{bad}");
        }
    }

    #[test]
    fn fmtp_pairs() {
        let f: Fmtp = "18 annexb=no; foo".parse().unwrap();
        assert_eq!(f.pairs().collect::<Vec<_>>(), [("annexb", "no"), ("foo", "")]);
        assert_eq!(f.to_string(), "18 annexb=no; foo");
        assert!("18".parse::<Fmtp>().is_err());
    }

    #[test]
    fn rtcp() {
        let r: Rtcp = "53021".parse().unwrap();
        assert_eq!((r.port, r.connection.is_none()), (53021, true));
        let r: Rtcp = "53021 IN IP6 2001:db8::1".parse().unwrap();
        assert_eq!(r.ip(), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(r.to_string(), "53021 IN IP6 2001:db8::1");
        for bad in ["", "x", "70000", "1 IN IP4", "1 IN IP4 host.example"] {
            assert!(bad.parse::<Rtcp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ptime() {
        assert_eq!(parse_ms("20"), Some(20));
        assert_eq!(parse_ms("20.0"), Some(20));
        assert_eq!(parse_ms("0"), None);
        assert_eq!(parse_ms("x"), None);
        assert_eq!(parse_ms("99999999999"), None);
    }
}
