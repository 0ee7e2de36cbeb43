//! The CSeq header (RFC 3261 §20.16).

use std::fmt;
use std::str::FromStr;

use super::ParseError;
use super::method::Method;

/// Sequence number and method: `CSeq: 4711 INVITE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CSeq {
    /// The sequence number; RFC 3261 limits it to below 2^31.
    pub seq: u32,
    /// The method of the request (an ACK or CANCEL has its own).
    pub method: Method,
}

impl FromStr for CSeq {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = ParseError::BadHeader("CSeq");
        let mut words = s.split_whitespace();
        let (Some(num), Some(method), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad);
        };
        if num.len() > 10 || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad);
        }
        let seq: u32 = num.parse().map_err(|_| bad.clone())?;
        if seq >= 1 << 31 {
            return Err(bad);
        }
        let method = method.parse().map_err(|_| bad)?;
        Ok(Self { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!(
            "  4711   INVITE ".parse::<CSeq>(),
            Ok(CSeq {
                seq: 4711,
                method: Method::Invite
            })
        );
        for s in [
            "",
            "1",
            "INVITE",
            "x INVITE",
            "1 INVITE x",
            "2147483648 INVITE",
            "99999999999 ACK",
        ] {
            assert!(s.parse::<CSeq>().is_err(), "{s:?}");
        }
    }
}
