//! The line parser behind [`Sdp::parse`](crate::Sdp::parse).
//!
//! One pass over the lines with a two-state machine (session, media).
//! Order rules are relaxed where breaking them is harmless (real stacks
//! put `a=` before `t=`, or `c=` after `b=`), and strict where the result
//! would be ambiguous: `v=` first, unknown line types refused (RFC 8866
//! §5), single-valued lines at most once, session-only lines never inside
//! a media section. All slicing is on `str` boundaries found by `split`,
//! so no input can panic.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ParseError;
use crate::sdp::{Attribute, Bandwidth, Connection, Limits, Media, Origin, Proto, Sdp, Timing};

pub(crate) fn parse(text: &str, limits: &Limits) -> Result<Sdp, ParseError> {
    if text.len() > limits.max_bytes {
        return Err(ParseError::TooLarge {
            len: text.len(),
            max: limits.max_bytes,
        });
    }
    let mut sdp: Option<Sdp> = None;
    let mut seen_version = false;
    // Which single-valued session lines were seen: o s i u c z k.
    let mut once = [false; 26];
    let mut in_media = false;
    let mut media_once = [false; 26];

    for (idx, raw) in text.split('\n').enumerate() {
        let line = idx + 1;
        if line > limits.max_lines {
            return Err(ParseError::TooManyLines { max: limits.max_lines });
        }
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        if l.len() > limits.max_line_len {
            return Err(ParseError::LineTooLong {
                line,
                max: limits.max_line_len,
            });
        }
        // No early exit: without a branch per byte the check vectorises.
        if l.bytes()
            .fold(false, |bad, b| bad | ((b < 0x20) & (b != b'\t')) | (b == 0x7f))
        {
            return Err(ParseError::ControlChar { line });
        }
        if l.is_empty() {
            continue;
        }
        let b = l.as_bytes();
        if b.len() < 2 || b[1] != b'=' || !b[0].is_ascii_lowercase() {
            if !seen_version {
                return Err(ParseError::MissingVersion);
            }
            return Err(ParseError::Syntax { line });
        }
        let ty = b[0] as char;
        // `b[1]` is the ASCII '=', so index 2 is a char boundary.
        let value = &l[2..];

        if !seen_version {
            if ty != 'v' {
                return Err(ParseError::MissingVersion);
            }
            if value != "0" {
                return Err(ParseError::UnsupportedVersion);
            }
            seen_version = true;
            sdp = Some(empty_sdp());
            continue;
        }
        let Some(s) = sdp.as_mut() else {
            return Err(ParseError::MissingVersion);
        };

        if !matches!(
            ty,
            'v' | 'o' | 's' | 'i' | 'u' | 'e' | 'p' | 'c' | 'b' | 't' | 'r' | 'z' | 'k' | 'a' | 'm'
        ) {
            return Err(ParseError::UnknownType { line, ty });
        }

        if ty == 'm' {
            if s.media.len() >= limits.max_media {
                return Err(ParseError::TooManyMedia {
                    line,
                    max: limits.max_media,
                });
            }
            s.media.push(parse_media(value, line)?);
            in_media = true;
            media_once = [false; 26];
            continue;
        }

        let slot = usize::from(b[0] - b'a');
        if in_media {
            let Some(m) = s.media.last_mut() else {
                return Err(ParseError::Unexpected { line, ty });
            };
            match ty {
                'i' | 'k' => {
                    if std::mem::replace(&mut media_once[slot], true) {
                        return Err(ParseError::Unexpected { line, ty });
                    }
                    if ty == 'i' {
                        m.information = Some(value.to_owned());
                    } else {
                        m.key = Some(value.to_owned());
                    }
                }
                'c' => m.connections.push(parse_connection(value, line)?),
                'b' => m.bandwidths.push(parse_bandwidth(value, line)?),
                'a' => {
                    if m.attributes.len() >= limits.max_attributes {
                        return Err(ParseError::TooManyAttributes { line });
                    }
                    m.attributes.push(parse_attribute(value, line)?);
                }
                _ => return Err(ParseError::Unexpected { line, ty }),
            }
            continue;
        }

        match ty {
            'o' | 's' | 'i' | 'u' | 'c' | 'z' | 'k' => {
                if std::mem::replace(&mut once[slot], true) {
                    return Err(ParseError::Unexpected { line, ty });
                }
                match ty {
                    'o' => s.origin = parse_origin(value, line)?,
                    's' => s.session_name = value.to_owned(),
                    'i' => s.information = Some(value.to_owned()),
                    'u' => s.uri = Some(value.to_owned()),
                    'c' => s.connection = Some(parse_connection(value, line)?),
                    'z' => s.time_zones = Some(value.to_owned()),
                    _ => s.key = Some(value.to_owned()),
                }
            }
            'e' => s.emails.push(value.to_owned()),
            'p' => s.phones.push(value.to_owned()),
            'b' => s.bandwidths.push(parse_bandwidth(value, line)?),
            't' => s.timings.push(parse_timing(value, line)?),
            'r' => {
                let Some(t) = s.timings.last_mut() else {
                    return Err(ParseError::Unexpected { line, ty });
                };
                if value.split_ascii_whitespace().count() < 3 {
                    return Err(ParseError::InvalidTiming { line });
                }
                t.repeats.push(value.to_owned());
            }
            'a' => {
                if s.attributes.len() >= limits.max_attributes {
                    return Err(ParseError::TooManyAttributes { line });
                }
                s.attributes.push(parse_attribute(value, line)?);
            }
            // `v=` again.
            _ => return Err(ParseError::Unexpected { line, ty }),
        }
    }

    let sdp = sdp.ok_or(ParseError::MissingVersion)?;
    if !once[usize::from(b'o' - b'a')] {
        return Err(ParseError::Missing('o'));
    }
    if !once[usize::from(b's' - b'a')] {
        return Err(ParseError::Missing('s'));
    }
    Ok(sdp)
}

fn empty_sdp() -> Sdp {
    Sdp {
        origin: Origin {
            username: String::new(),
            session_id: String::new(),
            session_version: 0,
            net_type: String::new(),
            addr_type: String::new(),
            address: String::new(),
        },
        session_name: String::new(),
        information: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: None,
        bandwidths: Vec::new(),
        timings: Vec::new(),
        time_zones: None,
        key: None,
        attributes: Vec::new(),
        media: Vec::new(),
    }
}

/// RFC 8866 `token-char`: visible ASCII except the separators.
pub(crate) fn is_token_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D..=0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Exactly `N` white-space separated fields, without collecting a Vec.
fn fields<const N: usize>(v: &str) -> Option<[&str; N]> {
    let mut it = v.split_ascii_whitespace();
    let mut out = [""; N];
    for slot in &mut out {
        *slot = it.next()?;
    }
    it.next().is_none().then_some(out)
}

/// `s` split around the first `b` (ASCII). A plain loop on purpose: SDP
/// fields are short, where `str::split_once`'s `memchr` set-up costs more
/// than it saves.
pub(crate) fn split_once_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    debug_assert!(b.is_ascii());
    let i = s.bytes().position(|c| c == b)?;
    Some((&s[..i], &s[i + 1..]))
}

/// Decimal digits only (no sign, no spaces), 1 to `max` of them.
pub(crate) fn is_digits(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_origin(v: &str, line: usize) -> Result<Origin, ParseError> {
    let err = ParseError::InvalidOrigin { line };
    let Some([username, id, version, net, addr_type, address]) = fields(v) else {
        return Err(err);
    };
    if username.is_empty()
        || !is_digits(id, 64)
        || !is_digits(version, 20)
        || !is_token(net)
        || !is_token(addr_type)
        || address.is_empty()
    {
        return Err(err);
    }
    Ok(Origin {
        username: username.to_owned(),
        session_id: id.to_owned(),
        session_version: version.parse().map_err(|_| err.clone())?,
        net_type: net.to_owned(),
        addr_type: addr_type.to_owned(),
        address: address.to_owned(),
    })
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
}

fn parse_connection(v: &str, line: usize) -> Result<Connection, ParseError> {
    let err = ParseError::InvalidConnection { line };
    let Some([net, addr_type, address]) = fields(v) else {
        return Err(err);
    };
    if !is_token(net) || !is_token(addr_type) || address.is_empty() {
        return Err(err);
    }
    if net == "IN" {
        let mut parts = address.split('/');
        let host = parts.next().unwrap_or_default();
        let (mut suffixes, mut ok_suffix) = (0, true);
        for s in parts {
            suffixes += 1;
            ok_suffix &= is_digits(s, 5);
        }
        ok_suffix &= suffixes <= 2;
        let ok = match addr_type {
            "IP4" => (host.parse::<Ipv4Addr>().is_ok() || is_host_name(host)) && ok_suffix,
            "IP6" => (host.parse::<Ipv6Addr>().is_ok() || is_host_name(host)) && suffixes <= 1 && ok_suffix,
            _ => is_token(host),
        };
        if !ok {
            return Err(err);
        }
    } else if !address.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(err);
    }
    Ok(Connection {
        net_type: net.to_owned(),
        addr_type: addr_type.to_owned(),
        address: address.to_owned(),
    })
}

fn parse_bandwidth(v: &str, line: usize) -> Result<Bandwidth, ParseError> {
    let err = ParseError::InvalidBandwidth { line };
    let (ty, n) = split_once_byte(v, b':').ok_or(err.clone())?;
    if !is_token(ty) || !is_digits(n, 20) {
        return Err(err);
    }
    Ok(Bandwidth {
        bw_type: ty.to_owned(),
        bandwidth: n.parse().map_err(|_| err)?,
    })
}

fn parse_timing(v: &str, line: usize) -> Result<Timing, ParseError> {
    let err = ParseError::InvalidTiming { line };
    let Some([a, b]) = fields(v) else {
        return Err(err);
    };
    if !is_digits(a, 20) || !is_digits(b, 20) {
        return Err(err);
    }
    Ok(Timing {
        start: a.parse().map_err(|_| err.clone())?,
        stop: b.parse().map_err(|_| err)?,
        repeats: Vec::new(),
    })
}

fn parse_media(v: &str, line: usize) -> Result<Media, ParseError> {
    let err = ParseError::InvalidMedia { line };
    let mut f = v.split_ascii_whitespace();
    let media = f.next().filter(|s| is_token(s)).ok_or(err.clone())?;
    let port_field = f.next().ok_or(err.clone())?;
    let (port, count) = match split_once_byte(port_field, b'/') {
        Some((p, c)) => (p, Some(c)),
        None => (port_field, None),
    };
    let bad_port = || ParseError::InvalidPort { line };
    if !is_digits(port, 5) {
        return Err(bad_port());
    }
    let port: u16 = port.parse().map_err(|_| bad_port())?;
    let port_count = match count {
        Some(c) if is_digits(c, 5) => Some(c.parse::<u16>().ok().filter(|&n| n >= 1).ok_or_else(bad_port)?),
        Some(_) => return Err(bad_port()),
        None => None,
    };
    let proto_text = f.next().ok_or(err.clone())?;
    if !proto_text.split('/').all(is_token) {
        return Err(err);
    }
    let proto: Proto = match proto_text.parse() {
        Ok(p) => p,
        Err(never) => match never {},
    };
    let formats: Vec<String> = f.map(str::to_owned).collect();
    if formats.is_empty() || formats.len() > 128 || !formats.iter().all(|s| is_token(s)) {
        return Err(err);
    }
    if proto.is_rtp()
        && !formats
            .iter()
            .all(|s| is_digits(s, 3) && s.parse::<u8>().is_ok_and(|pt| pt < 128))
    {
        return Err(err);
    }
    let mut m = Media::new(media, port, proto, formats);
    m.port_count = port_count;
    Ok(m)
}

fn parse_attribute(v: &str, line: usize) -> Result<Attribute, ParseError> {
    let (name, value) = match split_once_byte(v, b':') {
        Some((n, val)) => (n, Some(val.to_owned())),
        None => (v, None),
    };
    if !is_token(name) {
        return Err(ParseError::InvalidAttribute { line });
    }
    Ok(Attribute {
        name: name.to_owned(),
        value,
    })
}
