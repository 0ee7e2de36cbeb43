//! SIP messages: typed values, the parser and the printer.
//!
//! [`Message::parse`] turns one complete message (a UDP datagram, or a
//! frame found by [`crate::framing::check`]) into a [`Request`] or
//! [`Response`]. The parser is strict where safety needs it (size limit,
//! one Content-Length, no control characters, mandatory headers that parse)
//! and liberal where phones need it (compact and case-insensitive names,
//! line folding, bare LF line ends, white space around separators).
//!
//! Requests and responses keep every header in order with its raw value in
//! [`Headers`]; the headers that the transaction layer relies on (Via, From,
//! To, Call-ID, CSeq) are also parsed once into typed values that can be read
//! through accessors and are kept in step by every mutator.

mod cseq;
mod error;
mod headers;
mod method;
mod name_addr;
mod params;
pub(crate) mod text;
mod uri;
pub(crate) use uri::write_ipv4;
mod via;

pub use cseq::CSeq;
pub use error::ParseError;
pub use headers::{Header, HeaderName, Headers};
pub use method::Method;
pub use name_addr::NameAddr;
pub use params::Params;
pub use uri::{Host, Scheme, SipUri, Uri};
pub use via::{MAGIC_COOKIE, Transport, Via};

use std::sync::Arc;

/// Parser limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseConfig {
    /// The largest message accepted, headers and body together. Anything
    /// larger is refused before it is looked at, which bounds the work a
    /// hostile peer can cause per message.
    pub max_size: usize,
}

impl Default for ParseConfig {
    /// 64 KiB: the largest UDP datagram, and plenty for SIP over streams.
    fn default() -> Self {
        Self { max_size: 64 * 1024 }
    }
}

/// A parsed SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// Parses one complete message.
    ///
    /// Leading CRLFs are skipped (RFC 3261 §7.5). Without Content-Length the
    /// body is the rest of `bytes` (datagram semantics); with it, extra
    /// bytes are discarded (§18.3) and missing bytes are an error.
    ///
    /// # Errors
    ///
    /// Any [`ParseError`]; for a request, pass it to
    /// [`crate::response::bad_request`] to build the 400 answer.
    pub fn parse(bytes: &[u8], config: &ParseConfig) -> Result<Message, ParseError> {
        if bytes.len() > config.max_size {
            return Err(ParseError::TooLarge);
        }
        let start = bytes
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(bytes.len());
        let bytes = &bytes[start..];
        let (head_len, body_start) = find_head_end(bytes).ok_or(ParseError::MissingHeaderEnd)?;
        let head = std::str::from_utf8(&bytes[..head_len]).map_err(|_| ParseError::NotUtf8)?;
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let start = parse_start_line(lines.next().unwrap_or(""))?;
        let headers = parse_header_lines(lines)?;
        let body = take_body(&headers, &bytes[body_start..], config)?;
        match start {
            StartLine::Request(method, uri) => Request::from_parts(method, uri, headers, body).map(Message::Request),
            StartLine::Response(status, reason) => {
                Response::from_parts(status, reason, headers, body).map(Message::Response)
            }
        }
    }

    /// The message as bytes for the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }

    /// The headers of either kind.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => r.headers(),
            Message::Response(r) => r.headers(),
        }
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: Method,
    uri: Uri,
    headers: Headers,
    body: Vec<u8>,
    core: Core,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    reason: String,
    headers: Headers,
    body: Vec<u8>,
    core: Core,
}

/// The typed copies of the headers every message must carry (RFC 3261
/// §8.1.1); always derived from `headers` by [`Core::from_headers`].
///
/// A response starts with its request's core (`response_to`), so what a
/// response does not change is shared rather than copied: only To (which
/// gets a tag) and CSeq are its own. A shared part is copied on the rare
/// write ([`Arc::make_mut`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Core {
    vias: Arc<Vec<Via>>,
    from: Arc<NameAddr>,
    to: NameAddr,
    call_id: Arc<str>,
    cseq: CSeq,
}

impl Core {
    fn from_headers(headers: &Headers) -> Result<Self, ParseError> {
        let vias = headers
            .values(&HeaderName::VIA)
            .map(str::parse)
            .collect::<Result<Vec<Via>, _>>()?;
        if vias.is_empty() {
            return Err(ParseError::MissingHeader("Via"));
        }
        let from = single(headers, &HeaderName::FROM, "From")?
            .parse()
            .map_err(|_| ParseError::BadHeader("From"))?;
        let to = single(headers, &HeaderName::TO, "To")?
            .parse()
            .map_err(|_| ParseError::BadHeader("To"))?;
        let call_id = single(headers, &HeaderName::CALL_ID, "Call-ID")?;
        if call_id.is_empty() || call_id.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(ParseError::BadHeader("Call-ID"));
        }
        let cseq = single(headers, &HeaderName::CSEQ, "CSeq")?.parse()?;
        Ok(Self {
            vias: Arc::new(vias),
            from: Arc::new(from),
            to,
            call_id: call_id.into(),
            cseq,
        })
    }
}

/// Whether the typed views (`Core`) derive from headers called `name`: a
/// change to one of those re-derives them, any other is made in place.
fn is_core(name: &HeaderName) -> bool {
    [
        HeaderName::VIA,
        HeaderName::FROM,
        HeaderName::TO,
        HeaderName::CALL_ID,
        HeaderName::CSEQ,
    ]
    .contains(name)
}

/// The one value of a header that must appear once; repeats with the same
/// value are tolerated (some stacks duplicate lines), different ones are not.
fn single<'a>(headers: &'a Headers, name: &'a HeaderName, label: &'static str) -> Result<&'a str, ParseError> {
    let mut all = headers.get_all(name);
    let first = all.next().ok_or(ParseError::MissingHeader(label))?;
    if all.any(|other| other != first) {
        return Err(ParseError::DuplicateHeader(label));
    }
    Ok(first)
}

macro_rules! common_accessors {
    () => {
        /// The Contact entries; `Ok(None)` for `Contact: *` (RFC 3261 §10.2.2).
        ///
        /// # Errors
        ///
        /// [`ParseError::BadHeader`] if an entry does not parse.
        pub fn contacts(&self) -> Result<Option<Vec<NameAddr>>, ParseError> {
            let values: Vec<&str> = self.headers.values(&HeaderName::CONTACT).collect();
            if values == ["*"] {
                return Ok(None);
            }
            values
                .iter()
                .map(|v| v.parse().map_err(|_| ParseError::BadHeader("Contact")))
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }

        /// All headers, in order, with raw values.
        pub fn headers(&self) -> &Headers {
            &self.headers
        }

        /// The body (empty if none).
        pub fn body(&self) -> &[u8] {
            &self.body
        }

        /// The Via entries, topmost first; never empty.
        pub fn vias(&self) -> &[Via] {
            &self.core.vias
        }

        /// The topmost Via, which identifies the transaction.
        pub fn top_via(&self) -> &Via {
            // `Core::from_headers` refuses an empty Via list, and `core` is
            // only ever built by it.
            &self.core.vias[0]
        }

        /// The From header.
        pub fn from(&self) -> &NameAddr {
            &self.core.from
        }

        /// The To header.
        pub fn to(&self) -> &NameAddr {
            &self.core.to
        }

        /// The Call-ID.
        pub fn call_id(&self) -> &str {
            &self.core.call_id
        }

        /// The CSeq.
        pub fn cseq(&self) -> &CSeq {
            &self.core.cseq
        }

        /// Appends a header; typed views are re-derived when it is one of
        /// Via, From, To, Call-ID or CSeq.
        ///
        /// # Errors
        ///
        /// [`ParseError::BadHeaderLine`] for control characters in `value`,
        /// [`ParseError::BadContentLength`] for Content-Length (use
        /// `set_body`, which keeps it equal to the body), or the error of
        /// the typed view; the message is then unchanged.
        pub fn push_header(&mut self, name: HeaderName, value: &str) -> Result<(), ParseError> {
            if name == HeaderName::CONTENT_LENGTH {
                return Err(ParseError::BadContentLength);
            }
            let header = Header::new(name, value)?;
            if !is_core(header.name()) {
                self.headers.push(header);
                return Ok(());
            }
            let mut headers = self.headers.clone();
            headers.push(header);
            self.replace_headers(headers)
        }

        /// Replaces all headers called `name` by one with `value`.
        ///
        /// # Errors
        ///
        /// As for [`Self::push_header`].
        pub fn set_header(&mut self, name: HeaderName, value: &str) -> Result<(), ParseError> {
            if name == HeaderName::CONTENT_LENGTH {
                return Err(ParseError::BadContentLength);
            }
            let header = Header::new(name, value)?;
            if !is_core(header.name()) {
                self.headers.set(header);
                return Ok(());
            }
            let mut headers = self.headers.clone();
            headers.set(header);
            self.replace_headers(headers)
        }

        /// Removes all headers called `name`.
        ///
        /// # Errors
        ///
        /// [`ParseError::MissingHeader`] when removing a mandatory header,
        /// [`ParseError::BadContentLength`] for Content-Length.
        pub fn remove_header(&mut self, name: &HeaderName) -> Result<(), ParseError> {
            if name == &HeaderName::CONTENT_LENGTH {
                return Err(ParseError::BadContentLength);
            }
            if !is_core(name) {
                self.headers.remove(name);
                return Ok(());
            }
            let mut headers = self.headers.clone();
            headers.remove(name);
            self.replace_headers(headers)
        }

        /// Replaces the body and sets Content-Length (and Content-Type when
        /// given) to match.
        pub fn set_body(&mut self, content_type: Option<&str>, body: Vec<u8>) -> Result<(), ParseError> {
            // Neither header is one the typed views derive from, so they
            // are set in place (both built before anything changes).
            let ct = content_type
                .map(|ct| Header::new(HeaderName::CONTENT_TYPE, ct))
                .transpose()?;
            let cl = Header::new(HeaderName::CONTENT_LENGTH, body.len().to_string())?;
            if let Some(ct) = ct {
                self.headers.set(ct);
            }
            self.headers.set(cl);
            self.body = body;
            Ok(())
        }

        fn replace_headers(&mut self, headers: Headers) -> Result<(), ParseError> {
            self.core = Core::from_headers(&headers)?;
            self.headers = headers;
            Ok(())
        }

        fn write_headers_and_body(&self, out: &mut Vec<u8>) {
            for h in self.headers.iter() {
                out.extend_from_slice(h.name().as_str().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(h.value().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&self.body);
        }
    };
}

impl Request {
    /// Builds a request from parts, checking what the parser checks: the
    /// mandatory headers parse and the CSeq method matches.
    ///
    /// # Errors
    ///
    /// The [`ParseError`] of the first header that does not.
    pub fn from_parts(method: Method, uri: Uri, headers: Headers, body: Vec<u8>) -> Result<Self, ParseError> {
        let core = Core::from_headers(&headers)?;
        check_content_length(&headers, body.len())?;
        if core.cseq.method != method {
            return Err(ParseError::CSeqMethodMismatch);
        }
        Ok(Self {
            method,
            uri,
            headers,
            body,
            core,
        })
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The Request-URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Replaces the Request-URI (a B2BUA retargets requests).
    pub fn set_uri(&mut self, uri: Uri) {
        self.uri = uri;
    }

    /// The typed views, for building a response without parsing again.
    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// The Max-Forwards value, if present and numeric.
    pub fn max_forwards(&self) -> Option<u32> {
        self.headers.get(&HeaderName::MAX_FORWARDS)?.parse().ok()
    }

    /// The request as bytes for the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        self.write_headers_and_body(&mut out);
        out
    }

    /// Changes the top Via in place and prints its header line anew
    /// (the other values of that line kept as they were).
    pub(crate) fn edit_top_via(&mut self, edit: impl FnOnce(&mut Via)) {
        let Some(line) = self.headers.first_mut(&HeaderName::VIA) else {
            return;
        };
        let via = &mut Arc::make_mut(&mut self.core.vias)[0];
        edit(via);
        let mut new = String::with_capacity(line.len() + 32);
        let _ = std::fmt::Write::write_fmt(&mut new, format_args!("{via}"));
        for rest in text::split_top_level(line, b',').skip(1) {
            new.push_str(", ");
            new.push_str(rest);
        }
        *line = new;
    }

    common_accessors!();
}

impl Response {
    /// Builds a response from parts, checking the mandatory headers.
    ///
    /// # Errors
    ///
    /// [`ParseError::BadStatusCode`] for a status outside 100..=699, a
    /// control character in `reason`, or the header's [`ParseError`].
    pub fn from_parts(status: u16, reason: String, headers: Headers, body: Vec<u8>) -> Result<Self, ParseError> {
        if !(100..=699).contains(&status) {
            return Err(ParseError::BadStatusCode);
        }
        if text::has_forbidden_control(&reason) {
            return Err(ParseError::BadStartLine);
        }
        let core = Core::from_headers(&headers)?;
        check_content_length(&headers, body.len())?;
        Ok(Self {
            status,
            reason,
            headers,
            body,
            core,
        })
    }

    /// [`Response::from_parts`] for headers whose typed views are already
    /// known (`core`, copied from the request being answered): the copy
    /// rules of `response_to` make them the same values, so they are not
    /// parsed again.
    pub(crate) fn with_core(status: u16, reason: String, headers: Headers, core: Core) -> Result<Self, ParseError> {
        if !(100..=699).contains(&status) {
            return Err(ParseError::BadStatusCode);
        }
        if text::has_forbidden_control(&reason) {
            return Err(ParseError::BadStartLine);
        }
        debug_assert_eq!(Core::from_headers(&headers).as_ref(), Ok(&core));
        Ok(Self {
            status,
            reason,
            headers,
            body: Vec::new(),
            core,
        })
    }

    /// The status code (100..=699).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// True for 1xx.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    /// Sets the To tag unless one is present (RFC 3261 §8.2.6.2).
    ///
    /// # Errors
    ///
    /// [`ParseError::BadHeader`] if `tag` is not a token.
    pub fn set_to_tag(&mut self, tag: &str) -> Result<(), ParseError> {
        if !text::is_token(tag) {
            return Err(ParseError::BadHeader("To"));
        }
        if self.core.to.tag().is_none() {
            if let Some(line) = self.headers.first_mut(&HeaderName::TO) {
                line.push_str(";tag=");
                line.push_str(tag);
            }
            self.core.to.params.set("tag", Some(tag));
        }
        Ok(())
    }

    /// The response as bytes for the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        // `status` is 100..=699 (checked when the response was made).
        let s = self.status;
        out.extend_from_slice(b"SIP/2.0 ");
        out.extend_from_slice(&[
            b'0' + (s / 100 % 10) as u8,
            b'0' + (s / 10 % 10) as u8,
            b'0' + (s % 10) as u8,
        ]);
        out.push(b' ');
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.write_headers_and_body(&mut out);
        out
    }

    common_accessors!();
}

/// A Content-Length, where present, must describe the body exactly, or
/// the printed message would be framed wrongly on a stream.
fn check_content_length(headers: &Headers, body_len: usize) -> Result<(), ParseError> {
    match headers.get(&HeaderName::CONTENT_LENGTH) {
        Some(v) if parse_content_length(v, usize::MAX)? != body_len => Err(ParseError::BadContentLength),
        _ => Ok(()),
    }
}

/// Finds the end of the header section: returns the length of the head
/// (up to the last header line's LF, exclusive) and where the body starts.
///
/// Line ends may be CRLF or bare LF; the first empty line ends the head.
pub(crate) fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(off) = find_newline(&bytes[i..]) {
        let nl = i + off;
        let rest = &bytes[nl + 1..];
        if rest.starts_with(b"\r\n") {
            return Some((nl, nl + 3));
        }
        if rest.starts_with(b"\n") {
            return Some((nl, nl + 2));
        }
        i = nl + 1;
    }
    None
}

/// Position of the first `\n` in `bytes`, eight bytes at a time (a head
/// is scanned for its end on every read of a stream connection, and again
/// when it is parsed).
pub(crate) fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = ONES * b'\n' as u64;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ NL;
        // The lowest byte of x that is zero (a `\n`) sets the lowest bit
        // here; bits above it may be spurious, bits below never are.
        let zero = x.wrapping_sub(ONES) & !x & HIGH;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks.remainder().iter().position(|&b| b == b'\n').map(|i| at + i)
}

enum StartLine {
    Request(Method, Uri),
    Response(u16, String),
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = strip_prefix_ignore_case(line, "SIP/") {
        // "SIP/2.0 200 OK": exactly one space after version and code; the
        // reason phrase may contain spaces or be empty.
        let mut parts = rest.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if version != "2.0" {
            return Err(ParseError::UnsupportedVersion);
        }
        let code = parts.next().unwrap_or("");
        let reason = parts.next().unwrap_or("");
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadStatusCode);
        }
        let status: u16 = code.parse().map_err(|_| ParseError::BadStatusCode)?;
        if !(100..=699).contains(&status) {
            return Err(ParseError::BadStatusCode);
        }
        if text::has_forbidden_control(reason) {
            return Err(ParseError::BadStartLine);
        }
        return Ok(StartLine::Response(status, reason.to_owned()));
    }
    // "METHOD SP Request-URI SP SIP-Version", single spaces only (RFC 4475
    // §3.1.2.6 and §3.1.2.8 must be rejected).
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadStartLine);
    };
    let method: Method = method.parse()?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(if version.starts_with("SIP/") {
            ParseError::UnsupportedVersion
        } else {
            ParseError::BadStartLine
        });
    }
    let uri: Uri = uri.parse()?;
    Ok(StartLine::Request(method, uri))
}

/// `s` without `prefix`, compared case-insensitively.
pub(crate) fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    match s.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => Some(&s[prefix.len()..]),
        _ => None,
    }
}

fn parse_header_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Headers, ParseError> {
    // Typical requests carry 10–20 header lines.
    let mut headers = Headers::with_capacity(16);
    let mut current: Option<(HeaderName, String)> = None;
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Folded continuation: joins the previous value with one space
            // (RFC 3261 §7.3.1).
            let (_, value) = current.as_mut().ok_or(ParseError::BadHeaderLine)?;
            value.push(' ');
            value.push_str(line.trim_ascii());
            continue;
        }
        if let Some((name, value)) = current.take() {
            headers.push(Header::new(name, value)?);
        }
        let (name, value) = text::split_once_byte(line, b':').ok_or(ParseError::BadHeaderLine)?;
        let name = HeaderName::new(trim_end_blanks(name))?;
        current = Some((name, value.trim_ascii().to_owned()));
    }
    if let Some((name, value)) = current {
        headers.push(Header::new(name, value)?);
    }
    Ok(headers)
}

/// `s` without trailing spaces and tabs (only those: a CR or other control
/// before the colon must still make the name invalid).
fn trim_end_blanks(s: &str) -> &str {
    let kept = s.bytes().rev().skip_while(|&b| b == b' ' || b == b'\t').count();
    &s[..kept]
}

/// Parses a Content-Length value: digits only, at most `max`.
pub(crate) fn parse_content_length(value: &str, max: usize) -> Result<usize, ParseError> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadContentLength);
    }
    match value.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(ParseError::BadContentLength),
    }
}

fn take_body(headers: &Headers, rest: &[u8], config: &ParseConfig) -> Result<Vec<u8>, ParseError> {
    // Conflicting Content-Length values are how request smuggling starts;
    // refuse rather than pick one.
    let len = match single(headers, &HeaderName::CONTENT_LENGTH, "Content-Length") {
        Ok(v) => Some(parse_content_length(v, config.max_size)?),
        Err(ParseError::MissingHeader(_)) => None,
        Err(e) => return Err(e),
    };
    match len {
        None => Ok(rest.to_vec()),
        Some(n) if n <= rest.len() => Ok(rest[..n].to_vec()),
        Some(_) => Err(ParseError::TruncatedBody),
    }
}

#[cfg(test)]
mod tests;
