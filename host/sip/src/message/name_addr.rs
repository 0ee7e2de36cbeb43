//! `name-addr` / `addr-spec` values of From, To, Contact, Route and friends.

use std::fmt;
use std::str::FromStr;

use super::ParseError;
use super::params::Params;
use super::text::{find_byte, has_forbidden_control, quoted_len, split_once_byte, unquote};
use super::uri::Uri;

/// An address with optional display name and header parameters, such as
/// `"Bob" <sip:bob@example.com>;tag=1`.
///
/// Both forms of RFC 3261 §20.10 parse into this type. In the `addr-spec`
/// form (no angle brackets) everything after the first `;` belongs to the
/// header, not the URI, which is why the printer always uses brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name as written, quotes included (`"Bob"` or `Bob`).
    pub display: Option<String>,
    /// The address.
    pub uri: Uri,
    /// Header parameters such as `tag` or `expires`.
    pub params: Params,
}

impl NameAddr {
    /// An address without display name or parameters.
    pub fn new(uri: Uri) -> Self {
        Self {
            display: None,
            uri,
            params: Params::new(),
        }
    }

    /// The `tag` parameter (From/To, RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    /// The display name without quotes and escapes.
    pub fn display_name(&self) -> Option<String> {
        self.display.as_deref().map(unquote)
    }
}

impl FromStr for NameAddr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim_ascii();
        let bad = ParseError::BadUri("name-addr");
        let (display, rest) = if s.starts_with('"') {
            let len = quoted_len(s).ok_or(bad.clone())?;
            (Some(&s[..len]), s[len..].trim_start())
        } else if let Some(lt) = find_byte(s, b'<') {
            let name = s[..lt].trim_ascii();
            // RFC 3261 wants tokens here, but phones send names such as
            // `Müller (Office) <sip:...>`; anything that cannot confuse the
            // parser or a printer is accepted.
            if name.contains(['"', '>']) || has_forbidden_control(name) {
                return Err(bad);
            }
            (Some(name).filter(|n| !n.is_empty()), &s[lt..])
        } else {
            (None, s)
        };
        let (uri, params) = if let Some(inner) = rest.strip_prefix('<') {
            let (uri, after) = split_once_byte(inner, b'>').ok_or(bad.clone())?;
            (uri, after)
        } else {
            if display.is_some() {
                return Err(bad);
            }
            match find_byte(rest, b';') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            }
        };
        let uri = uri.trim_ascii().parse()?;
        let params = Params::parse(params).ok_or(ParseError::BadUri("parameters"))?;
        Ok(Self {
            display: display.map(str::to_owned),
            uri,
            params,
        })
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a: NameAddr = "\"Bob\" <sip:bob@x>;tag=1".parse().unwrap();
        assert_eq!(a.display.as_deref(), Some("\"Bob\""));
        assert_eq!(a.display_name().as_deref(), Some("Bob"));
        assert_eq!(a.tag(), Some("1"));
        assert_eq!(a.to_string(), "\"Bob\" <sip:bob@x>;tag=1");

        let b: NameAddr = "sip:bob@x;tag=2".parse().unwrap();
        assert_eq!(b.tag(), Some("2"));
        assert!(b.uri.as_sip().unwrap().params.is_empty());
        assert_eq!(b.to_string(), "<sip:bob@x>;tag=2");

        let c: NameAddr = "Bob Smith <sips:bob@x;transport=tls>;expires=60".parse().unwrap();
        assert_eq!(c.display.as_deref(), Some("Bob Smith"));
        assert_eq!(c.uri.as_sip().unwrap().transport(), Some("tls"));
        assert_eq!(c.params.value("expires"), Some("60"));

        let m: NameAddr = "Müller (Büro) <sip:m@y>".parse().unwrap();
        assert_eq!(m.display_name().as_deref(), Some("Müller (Büro)"));
        let d: NameAddr = "<sip:x@y>".parse().unwrap();
        assert!(d.display.is_none());
        let e: NameAddr = "\"\\\"Q\\\" <x>\"<sip:q@y>".parse().unwrap();
        assert_eq!(e.display_name().as_deref(), Some("\"Q\" <x>"));
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "\"Bob <sip:bob@x>",
            "Bob <sip:bob@x",
            "Bob sip:bob@x",
            "<sip:bob@x> junk",
            "B>b <sip:x@y>",
        ] {
            assert!(s.parse::<NameAddr>().is_err(), "{s:?}");
        }
    }
}
