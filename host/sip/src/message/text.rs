//! Lexical helpers shared by the header parsers (RFC 3261 §25.1).
//!
//! Everything here works on `&str` slices of an already UTF-8-checked header
//! section and never panics: indices come from `char_indices`/`find` or are
//! byte positions of ASCII delimiters.

/// `token` characters (RFC 3261 §25.1): alphanumerics and `-.!%*_+`'~`.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
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
/// piece; the callers' own validation then rejects it.
pub(crate) fn split_top_level(s: &str, sep: u8) -> Vec<&str> {
    let bytes = s.as_bytes();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            if b == b'\\' {
                // Skip the escaped character; `i + 1` may be past the end,
                // which simply ends the loop.
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
        } else if b == sep && !in_angle {
            pieces.push(s[start..i].trim());
            start = i + 1;
        }
        i += 1;
    }
    pieces.push(s[start..].trim());
    pieces
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
    match quoted_len(s) {
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
            out
        }
        _ => s.to_owned(),
    }
}

/// True when `s` contains a byte that may never appear in a header value we
/// store or print: CR, LF, NUL and the other controls except HT.
///
/// Rejecting these at the boundary is what makes re-printing a parsed or
/// caller-built value safe against header injection.
pub(crate) fn has_forbidden_control(s: &str) -> bool {
    s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
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
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_brackets() {
        assert_eq!(
            split_top_level(r#""Doe, \"J\"" <sip:a@b;x=1,2>, <sip:c@d>"#, b','),
            vec![r#""Doe, \"J\"" <sip:a@b;x=1,2>"#, "<sip:c@d>"]
        );
        assert_eq!(split_top_level("a ; b=1 ;c", b';'), vec!["a", "b=1", "c"]);
        assert_eq!(split_top_level("\"unterminated, x", b','), vec!["\"unterminated, x"]);
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(quoted_len(r#""a\"b" rest"#), Some(6));
        assert_eq!(quoted_len("\"open"), None);
        assert_eq!(unquote(r#""a\"b""#), "a\"b");
        assert_eq!(quoted_len("\"\\"), None);
    }

    #[test]
    fn escapes() {
        assert!(is_escaped_text("a%20b", is_unreserved));
        assert!(!is_escaped_text("a%2", is_unreserved));
        assert!(!is_escaped_text("a b", is_unreserved));
    }
}
