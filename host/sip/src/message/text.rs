//! Lexical helpers shared by the header parsers (RFC 3261 §25.1).
//!
//! Everything here works on `&str` slices of an already UTF-8-checked header
//! section and never panics: indices come from `char_indices`/`find` or are
//! byte positions of ASCII delimiters.

/// Byte position of the first `b` in `s`; `b` must be ASCII, so the
/// position is a character boundary.
///
/// A plain loop on purpose: the strings searched here are a few dozen
/// bytes, where `str::find`'s `memchr` set-up costs more than it saves.
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    debug_assert!(b.is_ascii());
    s.bytes().position(|c| c == b)
}

/// `s` split around the first `b` (ASCII), like `str::split_once`.
pub(crate) fn split_once_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = find_byte(s, b)?;
    Some((&s[..i], &s[i + 1..]))
}

/// Byte classes, one bit each, looked up per byte instead of testing a
/// list of punctuation: the parsers run these over every header.
const TOKEN: u8 = 1;
const UNRESERVED: u8 = 2;

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            table[b] = TOKEN | UNRESERVED;
        }
        b += 1;
    }
    let token_marks = b"-.!%*_+`'~";
    let mut i = 0;
    while i < token_marks.len() {
        table[token_marks[i] as usize] |= TOKEN;
        i += 1;
    }
    let unreserved_marks = b"-_.!~*'()";
    let mut i = 0;
    while i < unreserved_marks.len() {
        table[unreserved_marks[i] as usize] |= UNRESERVED;
        i += 1;
    }
    table
}

static CLASSES: [u8; 256] = classes();

/// `token` characters (RFC 3261 §25.1): alphanumerics and `-.!%*_+`'~`.
pub(crate) fn is_token_char(b: u8) -> bool {
    CLASSES[usize::from(b)] & TOKEN != 0
}

/// True when `s` is a non-empty RFC 3261 `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Splits `s` at every `sep` that is outside a quoted string and outside
/// `<...>`, trimming linear white space around each piece.
///
/// Quoted strings honour backslash escapes, so `"a\",b"` stays one piece.
/// An unterminated quote or bracket keeps the rest of the input in the last
/// piece; the callers' own validation then rejects it. An iterator, so the
/// common single-piece case allocates nothing.
pub(crate) fn split_top_level(s: &str, sep: u8) -> TopLevel<'_> {
    TopLevel {
        s,
        at: 0,
        sep,
        done: false,
    }
}

/// The pieces of [`split_top_level`].
pub(crate) struct TopLevel<'a> {
    s: &'a str,
    at: usize,
    sep: u8,
    done: bool,
}

impl<'a> Iterator for TopLevel<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let bytes = self.s.as_bytes();
        let start = self.at;
        let mut in_quotes = false;
        let mut in_angle = false;
        let mut i = start;
        while i < bytes.len() {
            let b = bytes[i];
            if in_quotes {
                if b == b'\\' {
                    // Skip the escaped character; `i + 1` may be past the
                    // end, which simply ends the loop.
                    i += 1;
                } else if b == b'"' {
                    in_quotes = false;
                }
            } else if b == b'"' {
                in_quotes = true;
            } else if b == b'<' {
                in_angle = true;
            } else if b == b'>' {
                in_angle = false;
            } else if b == self.sep && !in_angle {
                self.at = i + 1;
                return Some(self.s[start..i].trim_ascii());
            }
            i += 1;
        }
        self.done = true;
        Some(self.s[start..].trim_ascii())
    }
}

/// Returns the byte length of the quoted string at the start of `s`
/// (including both quotes), or `None` if `s` does not start with a complete
/// quoted string.
pub(crate) fn quoted_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Removes the quotes and backslash escapes of a quoted string; returns the
/// input unchanged if it is not quoted.
pub(crate) fn unquote(s: &str) -> String {
    unquote_cow(s).into_owned()
}

/// [`unquote`] without a copy when there is no escape to undo.
pub(crate) fn unquote_cow(s: &str) -> std::borrow::Cow<'_, str> {
    match quoted_len(s) {
        Some(len) if len == s.len() && find_byte(&s[1..len - 1], b'\\').is_none() => {
            std::borrow::Cow::Borrowed(&s[1..len - 1])
        }
        Some(len) if len == s.len() => {
            let inner = &s[1..len - 1];
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                } else {
                    out.push(c);
                }
            }
            std::borrow::Cow::Owned(out)
        }
        _ => std::borrow::Cow::Borrowed(s),
    }
}

/// True when `s` contains a byte that may never appear in a header value we
/// store or print: CR, LF, NUL and the other controls except HT.
///
/// Rejecting these at the boundary is what makes re-printing a parsed or
/// caller-built value safe against header injection.
pub(crate) fn has_forbidden_control(s: &str) -> bool {
    // No early exit: without a branch per byte the loop vectorises, and
    // values almost never hold a control.
    s.bytes()
        .fold(false, |found, b| found | ((b < 0x20) & (b != b'\t')) | (b == 0x7f))
}

/// Checks the `%HH` escapes of a URI component and that every other
/// character is allowed by `allowed` (non-ASCII UTF-8 is refused: URIs are
/// ASCII on the wire).
pub(crate) fn is_escaped_text(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let ok = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return false;
            }
            i += 3;
        } else if allowed(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// RFC 3986/3261 `unreserved`: alphanumerics and the marks `-_.!~*'()`.
pub(crate) fn is_unreserved(b: u8) -> bool {
    CLASSES[usize::from(b)] & UNRESERVED != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_brackets() {
        assert_eq!(
            split_top_level(r#""Doe, \"J\"" <sip:a@b;x=1,2>, <sip:c@d>"#, b',').collect::<Vec<_>>(),
            vec![r#""Doe, \"J\"" <sip:a@b;x=1,2>"#, "<sip:c@d>"]
        );
        assert_eq!(
            split_top_level("a ; b=1 ;c", b';').collect::<Vec<_>>(),
            vec!["a", "b=1", "c"]
        );
        assert_eq!(
            split_top_level("\"unterminated, x", b',').collect::<Vec<_>>(),
            vec!["\"unterminated, x"]
        );
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(quoted_len(r#""a\"b" rest"#), Some(6));
        assert_eq!(quoted_len("\"open"), None);
        assert_eq!(unquote(r#""a\"b""#), "a\"b");
        assert_eq!(quoted_len("\"\\"), None);
    }

    #[test]
    fn byte_classes_match_the_grammar() {
        for b in 0..=255u8 {
            let alnum = b.is_ascii_alphanumeric();
            assert_eq!(is_token_char(b), alnum || b"-.!%*_+`'~".contains(&b), "token {b}");
            assert_eq!(is_unreserved(b), alnum || b"-_.!~*'()".contains(&b), "unreserved {b}");
        }
    }

    #[test]
    fn byte_search_and_controls() {
        assert_eq!(find_byte("ab;c;d", b';'), Some(2));
        assert_eq!(split_once_byte("héllo:x", b':'), Some(("héllo", "x")));
        assert_eq!(split_once_byte("abc", b':'), None);
        for (s, bad) in [
            ("fine\tvalue", false),
            ("a\rb", true),
            ("x\u{7f}", true),
            ("\0", true),
            ("ü", false),
        ] {
            assert_eq!(has_forbidden_control(s), bad, "{s:?}");
        }
    }

    #[test]
    fn escapes() {
        assert!(is_escaped_text("a%20b", is_unreserved));
        assert!(!is_escaped_text("a%2", is_unreserved));
        assert!(!is_escaped_text("a b", is_unreserved));
    }
}
