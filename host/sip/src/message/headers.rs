//! Header names (with compact forms) and the ordered header collection.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};

use super::ParseError;
use super::text::{has_forbidden_control, is_token, split_top_level};

/// A header field name, compared case-insensitively.
///
/// Known names are stored in their canonical spelling and the single-letter
/// compact forms of RFC 3261 §7.3.3 (and later RFCs) are expanded, so
/// `v`, `VIA` and `Via` are all [`HeaderName::VIA`]. Unknown names keep the
/// spelling they arrived with.
#[derive(Clone)]
pub struct HeaderName(Cow<'static, str>);

macro_rules! known_headers {
    ($( $konst:ident = $name:literal, $lower:literal $(, $compact:literal)? ; )*) => {
        impl HeaderName {
            $(
                #[doc = concat!("`", $name, "`")]
                pub const $konst: HeaderName = HeaderName(Cow::Borrowed($name));
            )*

            /// Canonical spelling of a known name or compact form.
            ///
            /// Lower-cases into a stack buffer and matches byte strings,
            /// which compiles to a length switch plus a few compares; this
            /// runs for every header line.
            fn canonical(name: &str) -> Option<&'static str> {
                let mut buf = [0u8; 24];
                let lower = buf.get_mut(..name.len())?;
                lower.copy_from_slice(name.as_bytes());
                lower.make_ascii_lowercase();
                match &*lower {
                    $( $lower $(| $compact)? => Some($name), )*
                    _ => None,
                }
            }
        }

        /// Every known name with its lower-case match key, so a test can
        /// check the two spellings agree.
        #[cfg(test)]
        const KNOWN: &[(&str, &[u8])] = &[$( ($name, $lower) ),*];
    };
}

known_headers! {
    VIA = "Via", b"via", b"v";
    FROM = "From", b"from", b"f";
    TO = "To", b"to", b"t";
    CALL_ID = "Call-ID", b"call-id", b"i";
    CSEQ = "CSeq", b"cseq";
    CONTACT = "Contact", b"contact", b"m";
    MAX_FORWARDS = "Max-Forwards", b"max-forwards";
    CONTENT_LENGTH = "Content-Length", b"content-length", b"l";
    CONTENT_TYPE = "Content-Type", b"content-type", b"c";
    ROUTE = "Route", b"route";
    RECORD_ROUTE = "Record-Route", b"record-route";
    EXPIRES = "Expires", b"expires";
    AUTHORIZATION = "Authorization", b"authorization";
    PROXY_AUTHORIZATION = "Proxy-Authorization", b"proxy-authorization";
    WWW_AUTHENTICATE = "WWW-Authenticate", b"www-authenticate";
    PROXY_AUTHENTICATE = "Proxy-Authenticate", b"proxy-authenticate";
    ALLOW = "Allow", b"allow";
    SUPPORTED = "Supported", b"supported", b"k";
    REQUIRE = "Require", b"require";
    PROXY_REQUIRE = "Proxy-Require", b"proxy-require";
    UNSUPPORTED = "Unsupported", b"unsupported";
    USER_AGENT = "User-Agent", b"user-agent";
    SERVER = "Server", b"server";
    ACCEPT = "Accept", b"accept";
    TIMESTAMP = "Timestamp", b"timestamp";
    MIN_EXPIRES = "Min-Expires", b"min-expires";
    RETRY_AFTER = "Retry-After", b"retry-after";
    WARNING = "Warning", b"warning";
    DATE = "Date", b"date";
    CONTENT_ENCODING = "Content-Encoding", b"content-encoding", b"e";
    CONTENT_DISPOSITION = "Content-Disposition", b"content-disposition";
    SUBJECT = "Subject", b"subject", b"s";
    EVENT = "Event", b"event", b"o";
    ALLOW_EVENTS = "Allow-Events", b"allow-events", b"u";
    REFER_TO = "Refer-To", b"refer-to", b"r";
    REFERRED_BY = "Referred-By", b"referred-by", b"b";
    SESSION_EXPIRES = "Session-Expires", b"session-expires", b"x";
    ACCEPT_CONTACT = "Accept-Contact", b"accept-contact", b"a";
    REJECT_CONTACT = "Reject-Contact", b"reject-contact", b"j";
    REQUEST_DISPOSITION = "Request-Disposition", b"request-disposition", b"d";
    IDENTITY = "Identity", b"identity", b"y";
    IDENTITY_INFO = "Identity-Info", b"identity-info", b"n";
    PATH = "Path", b"path";
    RSEQ = "RSeq", b"rseq";
    RACK = "RAck", b"rack";
}

impl HeaderName {
    /// Parses a header name, expanding compact forms.
    pub fn new(name: &str) -> Result<Self, ParseError> {
        if !is_token(name) {
            return Err(ParseError::BadHeaderLine);
        }
        Ok(match Self::canonical(name) {
            Some(canonical) => HeaderName(Cow::Borrowed(canonical)),
            None => HeaderName(Cow::Owned(name.to_owned())),
        })
    }

    /// The name as printed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        // Known names share one canonical `&'static str`: same pointer,
        // same name, which is most lookups.
        (self.0.len() == other.0.len() && std::ptr::eq(self.0.as_ptr(), other.0.as_ptr()))
            || self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for HeaderName {}

impl Hash for HeaderName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl fmt::Debug for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One header line: a name and its raw (unfolded, trimmed) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    name: HeaderName,
    value: String,
}

impl Header {
    /// A header, refusing values that contain CR, LF or other controls.
    pub fn new(name: HeaderName, value: impl Into<String>) -> Result<Self, ParseError> {
        let mut value = value.into();
        if has_forbidden_control(&value) {
            return Err(ParseError::BadHeaderLine);
        }
        // Values from the parser are already trimmed; only copy when not.
        let trimmed = value.trim_ascii();
        if trimmed.len() != value.len() {
            value = trimmed.to_owned();
        }
        Ok(Self { name, value })
    }

    /// A header whose value comes from a parsed message, so it has
    /// passed [`Header::new`]'s checks already.
    pub(crate) fn parsed(name: HeaderName, value: &str) -> Self {
        Self {
            name,
            value: value.to_owned(),
        }
    }

    /// The header name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The raw value; may hold several comma-separated values.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// The headers of a message, in arrival order, with raw values.
///
/// Keeping order and raw text is what lets a parsed message print back
/// almost byte for byte (compact names are expanded and folded lines
/// joined); typed views are parsed on top of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty collection with room for `n` headers.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// The value of the first header called `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0.iter().find(|h| &h.name == name).map(|h| h.value.as_str())
    }

    /// The raw values of every header called `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |h| &h.name == name).map(|h| h.value.as_str())
    }

    /// Every value of `name`, splitting comma-separated lists (RFC 3261
    /// §7.3.1) outside quotes and angle brackets and skipping empty items.
    ///
    /// Only meaningful for headers whose grammar is a comma list (Via,
    /// Contact, Route, Supported...); not for WWW-Authenticate and friends,
    /// whose values contain commas of their own.
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name)
            .flat_map(|v| split_top_level(v, b','))
            .filter(|v| !v.is_empty())
    }

    /// True if at least one header called `name` is present.
    pub fn contains(&self, name: &HeaderName) -> bool {
        self.get(name).is_some()
    }

    /// Appends a header.
    pub fn push(&mut self, header: Header) {
        self.0.push(header);
    }

    /// Replaces every header called `name` by one with `value`, at the
    /// position of the first; appends if there was none.
    pub fn set(&mut self, header: Header) {
        match self.0.iter().position(|h| h.name == header.name) {
            Some(i) => {
                let name = header.name.clone();
                self.0[i] = header;
                let mut index = 0;
                self.0.retain(|h| {
                    let keep = index <= i || h.name != name;
                    index += 1;
                    keep
                });
            }
            None => self.0.push(header),
        }
    }

    /// Removes every header called `name`.
    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }

    /// Iterates over all headers in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// The number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Mutable access to the first header called `name`, for the crate's
    /// own in-place edits (top Via, To tag) that keep the value valid.
    pub(crate) fn first_mut(&mut self, name: &HeaderName) -> Option<&mut String> {
        self.0.iter_mut().find(|h| &h.name == name).map(|h| &mut h.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> Header {
        Header::new(HeaderName::new(name).unwrap(), value).unwrap()
    }

    #[test]
    fn match_keys_agree_with_names() {
        for (name, lower) in KNOWN {
            assert_eq!(name.to_ascii_lowercase().as_bytes(), *lower);
            assert!(name.len() <= 24, "{name} does not fit the lookup buffer");
            assert_eq!(HeaderName::new(name).unwrap().as_str(), *name);
        }
    }

    #[test]
    fn compact_and_case() {
        assert_eq!(HeaderName::new("v").unwrap().as_str(), "Via");
        assert_eq!(HeaderName::new("call-id").unwrap().as_str(), "Call-ID");
        assert_eq!(HeaderName::new("i").unwrap(), HeaderName::CALL_ID);
        assert_eq!(HeaderName::new("X-Foo").unwrap(), HeaderName::new("x-foo").unwrap());
        assert_eq!(HeaderName::new("X-Foo").unwrap().as_str(), "X-Foo");
        assert!(HeaderName::new("Bad Name").is_err());
        assert!(HeaderName::new("").is_err());
    }

    #[test]
    fn collection() {
        let mut hs = Headers::new();
        hs.push(h("Via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b"));
        hs.push(h("v", "SIP/2.0/UDP c"));
        hs.push(h("Supported", "path, outbound"));
        assert_eq!(hs.values(&HeaderName::VIA).count(), 3);
        assert_eq!(hs.get_all(&HeaderName::VIA).count(), 2);
        hs.set(h("via", "SIP/2.0/TCP z"));
        assert_eq!(hs.get_all(&HeaderName::VIA).collect::<Vec<_>>(), vec!["SIP/2.0/TCP z"]);
        assert_eq!(hs.iter().next().unwrap().name(), &HeaderName::VIA);
        assert!(Header::new(HeaderName::TO, "a\r\nb").is_err());
    }
}
