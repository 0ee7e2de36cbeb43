//! SIP and SIPS URIs (RFC 3261 §19.1) and other absolute URIs.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::ParseError;
use super::params::Params;
use super::text::{find_byte, has_forbidden_control, is_escaped_text, is_unreserved, split_once_byte};

/// `sip:` or `sips:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain SIP; any transport.
    Sip,
    /// Secure SIP: every hop must use TLS (RFC 3261 §26.2.2).
    Sips,
}

impl Scheme {
    /// The scheme as printed, without the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
        }
    }
}

/// The host part of a URI or Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name, as written (compare with [`Host::eq_host`]).
    Domain(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (printed in brackets).
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Host equality per RFC 3261 §19.1.4: names are case-insensitive.
    pub fn eq_host(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }

    /// The address if the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        }
    }

    /// A host name in lower case, or the IP literal; used for keys.
    pub(crate) fn normalized(&self) -> Host {
        match self {
            Host::Domain(d) => Host::Domain(d.to_ascii_lowercase()),
            other => other.clone(),
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Host::Ipv4(a),
            IpAddr::V6(a) => Host::Ipv6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write_ipv4(*a, f),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Dotted-quad `a`, as `Ipv4Addr`'s `Display` prints it, without the
/// formatting machinery (Via and Contact lines print addresses on every
/// message).
pub(crate) fn write_ipv4(a: std::net::Ipv4Addr, out: &mut impl fmt::Write) -> fmt::Result {
    let mut buf = [0u8; 15];
    let mut n = 0;
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if o >= 100 {
            buf[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            buf[n] = b'0' + (o / 10) % 10;
            n += 1;
        }
        buf[n] = b'0' + o % 10;
        n += 1;
    }
    out.write_str(std::str::from_utf8(&buf[..n]).unwrap_or_default())
}

/// Parses `host[:port]` where an IPv6 host is bracketed.
pub(crate) fn parse_host_port(s: &str) -> Result<(Host, Option<u16>), ParseError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = split_once_byte(rest, b']').ok_or(ParseError::BadUri("host"))?;
        let ip: Ipv6Addr = addr.parse().map_err(|_| ParseError::BadUri("host"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(ParseError::BadUri("port"))?),
        };
        (Host::Ipv6(ip), port)
    } else {
        let (host, port) = match split_once_byte(s, b':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        (parse_host_name(host)?, port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse().map_err(|_| ParseError::BadUri("port"))?)
        }
        Some(_) => return Err(ParseError::BadUri("port")),
    };
    Ok((host, port))
}

fn parse_host_name(s: &str) -> Result<Host, ParseError> {
    if s.is_empty() {
        return Err(ParseError::BadUri("host"));
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // All digits and dots: it must be a dotted quad, not a host name
        // (top labels cannot be numeric, RFC 3261 §25.1 `toplabel`).
        return s.parse().map(Host::Ipv4).map_err(|_| ParseError::BadUri("host"));
    }
    // Underscores are not in the RFC grammar but appear in real deployments
    // (SRV-style names); accepting them costs nothing.
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        Ok(Host::Domain(s.to_owned()))
    } else {
        Err(ParseError::BadUri("host"))
    }
}

/// A `sip:` or `sips:` URI.
///
/// User, password, parameters and headers are kept as written (still
/// %-escaped) so a parsed URI prints back unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sip` or `sips`.
    pub scheme: Scheme,
    /// The user part, still escaped (`alice`, `+4930123`, `a%40b`).
    pub user: Option<String>,
    /// The password part; deprecated by RFC 3261 but still parsed.
    pub password: Option<String>,
    /// Host name or IP literal.
    pub host: Host,
    /// Explicit port, if any.
    pub port: Option<u16>,
    /// URI parameters such as `transport=tls` or `lr`.
    pub params: Params,
    /// The raw `?h=v&...` part without the `?`.
    pub headers: Option<String>,
}

impl SipUri {
    /// A URI with just a scheme and host, for building requests.
    pub fn new(scheme: Scheme, host: Host) -> Self {
        Self {
            scheme,
            user: None,
            password: None,
            host,
            port: None,
            params: Params::new(),
            headers: None,
        }
    }

    /// The `transport` parameter, if any.
    pub fn transport(&self) -> Option<&str> {
        self.params.value("transport")
    }

    fn parse_after_scheme(scheme: Scheme, s: &str) -> Result<Self, ParseError> {
        // The user info ends at the first '@': it cannot contain one
        // unescaped, and nothing before the host can either.
        let (userinfo, rest) = match split_once_byte(s, b'@') {
            Some((u, r)) => (Some(u), r),
            None => (None, s),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, password) = match split_once_byte(u, b':') {
                    Some((user, pw)) => (user, Some(pw)),
                    None => (u, None),
                };
                if user.is_empty() || !is_escaped_text(user, is_user_char) {
                    return Err(ParseError::BadUri("user"));
                }
                if password.is_some_and(|p| !is_escaped_text(p, is_password_char)) {
                    return Err(ParseError::BadUri("password"));
                }
                (Some(user.to_owned()), password.map(str::to_owned))
            }
        };
        let (before_headers, headers) = match split_once_byte(rest, b'?') {
            Some((b, h)) => (b, Some(h)),
            None => (rest, None),
        };
        let (host_port, params) = match find_byte(before_headers, b';') {
            Some(i) => (&before_headers[..i], &before_headers[i..]),
            None => (before_headers, ""),
        };
        let (host, port) = parse_host_port(host_port)?;
        let params = Params::parse(params).ok_or(ParseError::BadUri("parameters"))?;
        if let Some(h) = headers
            && (h.is_empty() || !is_escaped_text(h, is_header_char))
        {
            return Err(ParseError::BadUri("headers"));
        }
        Ok(Self {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers: headers.map(str::to_owned),
        })
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(pw) = &self.password {
                write!(f, ":{pw}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// Any URI that can appear in a Request-URI or a name-addr.
///
/// SIP and SIPS URIs are parsed; others (`tel:`, `urn:`, `http:`...) are
/// kept as opaque text because the PBX only routes SIP, yet they must not
/// make an otherwise valid message unparsable (RFC 4475 §3.1.1.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// A `sip:` or `sips:` URI.
    Sip(SipUri),
    /// Another absolute URI, as written.
    Other(String),
}

impl Uri {
    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other(_) => None,
        }
    }
}

impl FromStr for Uri {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || has_forbidden_control(s) || s.bytes().any(|b| b == b' ' || b == b'\t' || b >= 0x80) {
            return Err(ParseError::BadUri("characters"));
        }
        let (scheme, rest) = split_once_byte(s, b':').ok_or(ParseError::BadUri("scheme"))?;
        let valid_scheme = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !valid_scheme || rest.is_empty() {
            return Err(ParseError::BadUri("scheme"));
        }
        if scheme.eq_ignore_ascii_case("sip") {
            SipUri::parse_after_scheme(Scheme::Sip, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_after_scheme(Scheme::Sips, rest).map(Uri::Sip)
        } else if s.bytes().any(|b| b"<>\"".contains(&b)) {
            Err(ParseError::BadUri("characters"))
        } else {
            Ok(Uri::Other(s.to_owned()))
        }
    }
}

impl FromStr for SipUri {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse()? {
            Uri::Sip(u) => Ok(u),
            Uri::Other(_) => Err(ParseError::BadUri("scheme")),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => write!(f, "{u}"),
            Uri::Other(s) => f.write_str(s),
        }
    }
}

/// `unreserved / escaped / user-unreserved` (RFC 3261 §25.1).
fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,;?/".contains(&b)
}

/// `unreserved / escaped / "&" / "=" / "+" / "$" / ","`.
fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,".contains(&b)
}

/// `hnv-unreserved / unreserved / escaped` plus the `=` and `&` separators.
fn is_header_char(b: u8) -> bool {
    is_unreserved(b) || b"[]/?:+$=&".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_prints_as_std_does() {
        for a in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.100.9",
            "192.168.1.20",
            "1.22.199.200",
            "127.0.0.1",
        ] {
            let ip: std::net::Ipv4Addr = a.parse().unwrap();
            let mut s = String::new();
            write_ipv4(ip, &mut s).unwrap();
            assert_eq!(s, ip.to_string());
            assert_eq!(Host::Ipv4(ip).to_string(), a);
        }
    }

    #[test]
    fn ipv6_tls() {
        let u = sip("sip:alice@[::1]:5061;transport=tls");
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.host, Host::Ipv6(Ipv6Addr::LOCALHOST));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("tls"));
        assert_eq!(u.to_string(), "sip:alice@[::1]:5061;transport=tls");
    }

    #[test]
    fn round_trips() {
        for s in [
            "sips:bob@example.com",
            "sip:example.com",
            "sip:+4930123;phone-context=+49@gw.example.com;user=phone",
            "sip:user;par=u%40example.net@example.com",
            "sip:alice:secret@10.0.0.1:5060;lr;maddr=10.0.0.2?Subject=hi&Priority=urgent",
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:[2001:db8::10]",
        ] {
            assert_eq!(sip(s).to_string(), s);
        }
        assert_eq!(
            "tel:+1-201-555-0123".parse::<Uri>().unwrap(),
            Uri::Other("tel:+1-201-555-0123".into())
        );
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "sip:",
            "sip:@host",
            "sip:a b@host",
            "sip:alice@",
            "sip:alice@host:99999",
            "sip:alice@host:",
            "sip:alice@[::1",
            "sip:alice@[zz]",
            "sip:alice@ho st",
            "sip:al%2ice@host",
            "sip:alice@1.2.3.256",
            "sip:alice@host;=x",
            "sip:alice@host?",
            "1sip:alice@host",
            "sip:alice@host\r\nVia: x",
            "http:<x>",
        ] {
            assert!(s.parse::<Uri>().is_err(), "{s:?} should be rejected");
        }
    }
}
