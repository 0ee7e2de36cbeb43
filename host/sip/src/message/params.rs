//! `;name=value` parameter lists of URIs and header values.

use std::fmt;

use super::text::{is_token, quoted_len, split_once_byte, split_top_level};

/// An ordered list of `;name[=value]` parameters.
///
/// Order and spelling are kept so that printing gives back what was parsed;
/// lookups compare names case-insensitively as RFC 3261 §7.3.1 requires.
/// Values are kept raw (a quoted value keeps its quotes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// `Some(value)` if the parameter is present: `Some(None)` for a flag
    /// such as `;rport` or `;lr`, `Some(Some(v))` for `;name=v`.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The value of `;name=value`, or `None` if absent or a bare flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }

    /// True if the parameter is present, with or without a value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets (replacing in place) or appends a parameter.
    ///
    /// Names and values come from our own code, not the network; they are
    /// still checked so a caller mistake cannot break the printed message.
    /// Returns `false` (and changes nothing) if they are not valid.
    pub fn set(&mut self, name: &str, value: Option<&str>) -> bool {
        if !is_token(name) || value.is_some_and(|v| !is_param_value(v)) {
            return false;
        }
        let value = value.map(str::to_owned);
        match self.0.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
        true
    }

    /// Removes every parameter called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Iterates over `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses `;a=b;c` (the leading `;` is required unless `s` is empty).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let s = s.trim_ascii();
        if s.is_empty() {
            return Some(Self::new());
        }
        let rest = s.strip_prefix(';')?;
        let mut list = Vec::new();
        for piece in split_top_level(rest, b';') {
            let (name, value) = match split_once_byte(piece, b'=') {
                Some((n, v)) => (n.trim_ascii(), Some(v.trim_ascii())),
                None => (piece, None),
            };
            if !is_token(name) || value.is_some_and(|v| !is_param_value(v)) {
                return None;
            }
            list.push((name.to_owned(), value.map(str::to_owned)));
        }
        Some(Self(list))
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            f.write_str(";")?;
            f.write_str(name)?;
            if let Some(v) = value {
                f.write_str("=")?;
                f.write_str(v)?;
            }
        }
        Ok(())
    }
}

/// A parameter value: a complete quoted string, or a run of printable
/// characters without the delimiters that would end or confuse it.
///
/// This is wider than RFC 3261's `token / host / quoted-string` (it admits
/// the `paramchar`s of URI parameters and bare IPv6 `received` values) but
/// never admits white space, controls, `;`, `,`, `"`, `<` or `>`.
fn is_param_value(v: &str) -> bool {
    if v.starts_with('"') {
        return quoted_len(v) == Some(v.len());
    }
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic() && !b";,\"<>".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let p = Params::parse(";branch=z9hG4bK1 ; rport;received=2001:db8::1;x=\"a;b\"").unwrap();
        assert_eq!(p.value("BRANCH"), Some("z9hG4bK1"));
        assert_eq!(p.get("rport"), Some(None));
        assert_eq!(p.value("received"), Some("2001:db8::1"));
        assert_eq!(p.value("x"), Some("\"a;b\""));
        assert_eq!(p.to_string(), ";branch=z9hG4bK1;rport;received=2001:db8::1;x=\"a;b\"");
        assert!(Params::parse("branch=1").is_none());
        assert!(Params::parse(";a=").is_none());
        assert!(Params::parse(";a b=1").is_none());
    }

    #[test]
    fn set_rejects_injection() {
        let mut p = Params::new();
        assert!(!p.set("tag", Some("x\r\nVia: evil")));
        assert!(p.set("tag", Some("abc")));
        assert!(p.set("TAG", Some("def")));
        assert_eq!(p.to_string(), ";tag=def");
    }
}
