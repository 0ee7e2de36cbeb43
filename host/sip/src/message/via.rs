//! The Via header (RFC 3261 §20.42) and transports.

use std::fmt;
use std::str::FromStr;

use super::ParseError;
use super::params::Params;
use super::text::{find_byte, is_token};
use super::uri::{Host, parse_host_port};

/// The branch prefix that marks an RFC 3261 branch (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// A transport named in a Via header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// UDP: unreliable, so the transaction layer retransmits.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
    /// Any other transport token, upper-cased.
    Other(String),
}

impl Transport {
    /// The name as printed in a Via (`UDP`, `TLS`...).
    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(s) => s,
        }
    }

    /// Whether the transport itself retransmits (everything but UDP).
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }

    fn parse(s: &str) -> Option<Self> {
        if !is_token(s) {
            return None;
        }
        let known = [
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Sctp,
            Transport::Ws,
            Transport::Wss,
        ];
        Some(
            known
                .into_iter()
                .find(|t| t.as_str().eq_ignore_ascii_case(s))
                .unwrap_or_else(|| Transport::Other(s.to_ascii_uppercase())),
        )
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Via entry: `SIP/2.0/TLS host:port;branch=z9hG4bK...;rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The transport the request was sent over.
    pub transport: Transport,
    /// The sent-by host.
    pub host: Host,
    /// The sent-by port, if given.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, `maddr`, `ttl`...).
    pub params: Params,
}

impl Via {
    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// True when the branch starts with the RFC 3261 magic cookie, so the
    /// branch alone identifies the transaction (§17.2.3).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }

    /// The `received` parameter (RFC 3261 §18.2.1).
    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// `None` if there is no `rport`; `Some(None)` for a bare `;rport`
    /// (a request to fill it in, RFC 3581); `Some(Some(port))` if filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }
}

impl FromStr for Via {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = ParseError::BadHeader("Via");
        // The first ';' cannot be inside a quoted string: quoted values only
        // appear in the parameters that it starts.
        let (first, params) = match find_byte(s, b';') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        };
        // "SIP / 2.0 / UDP host:port": white space is allowed around the
        // slashes (RFC 4475 §3.1.1.1), and required before sent-by.
        let mut parts = first.splitn(3, '/');
        let name = parts.next().unwrap_or("").trim_ascii();
        let version = parts.next().unwrap_or("").trim_ascii();
        let rest = parts.next().unwrap_or("").trim_ascii();
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(bad);
        }
        let split = rest.find([' ', '\t']).ok_or(bad.clone())?;
        let transport = Transport::parse(&rest[..split]).ok_or(bad.clone())?;
        let (host, port) = parse_host_port(rest[split..].trim_ascii()).map_err(|_| bad.clone())?;
        let params = Params::parse(params).ok_or(bad)?;
        Ok(Self {
            transport,
            host,
            port,
            params,
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} ", self.transport)?;
        fmt::Display::fmt(&self.host, f)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        fmt::Display::fmt(&self.params, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_print() {
        let v: Via = "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK776;rport;received=192.0.2.1"
            .parse()
            .unwrap();
        assert_eq!(v.transport, Transport::Tls);
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.branch(), Some("z9hG4bK776"));
        assert!(v.has_rfc3261_branch());
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("192.0.2.1"));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK776;rport;received=192.0.2.1"
        );
        let w: Via = "SIP / 2.0 / udp host.example.com ; branch = 1 ; rport=5070"
            .parse()
            .unwrap();
        assert_eq!(w.transport, Transport::Udp);
        assert_eq!(w.rport(), Some(Some(5070)));
        assert!(!w.has_rfc3261_branch());
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "SIP/2.0/UDP",
            "SIP/3.0/UDP h",
            "SIP/2.0/UDPh",
            "SIP/2.0/UDP h:x",
            "SIP/2.0/U/DP h",
            "SIP/2.0/UDP h;",
        ] {
            assert!(s.parse::<Via>().is_err(), "{s:?}");
        }
    }
}
