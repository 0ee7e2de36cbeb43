//! Stream framing for SIP over TCP and TLS, in two phases.
//!
//! A stream carries messages back to back, so the transport must know
//! where one ends before it can parse it. [`check`] looks at the bytes
//! buffered so far and says how many belong to the next frame, or that more
//! are needed; only then does the transport call
//! [`Message::parse`](crate::message::Message::parse) on exactly that slice
//! and drain it from the buffer. This is the `check`/`parse` split of
//! mini-redis's `Frame`.
//!
//! RFC 5626 §3.5.1 keep-alives are frames too: a client's `CRLF CRLF`
//! *ping* is reported as [`Framed::Ping`] so that the transport answers it
//! with a `CRLF` *pong*, and a lone `CRLF` (a pong, or a stray line end
//! before a message) as [`Framed::KeepAlive`] to be discarded.

use crate::message::{ParseConfig, find_head_end, find_newline, parse_content_length};

/// What the start of a stream buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed {
    /// A complete message of `len` bytes: parse `&buf[..len]`.
    Message {
        /// Bytes of headers and body together.
        len: usize,
    },
    /// A `CRLF CRLF` keep-alive ping: drain `len` bytes and send `CRLF`.
    Ping {
        /// Always 4.
        len: usize,
    },
    /// A lone line end (a pong or stray CRLF): drain `len` bytes.
    KeepAlive {
        /// 1 or 2.
        len: usize,
    },
}

/// Why no frame can be taken from the buffer.
///
/// Every variant but [`FrameError::Incomplete`] means the stream cannot be
/// resynchronised: the transport should close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// More bytes are needed; read again and call [`check`] once more.
    #[error("incomplete frame")]
    Incomplete,
    /// The frame would exceed the configured size limit.
    #[error("frame larger than the size limit")]
    TooLarge,
    /// Content-Length is mandatory on streams (RFC 3261 §18.3) and absent.
    #[error("Content-Length missing on a stream transport")]
    MissingContentLength,
    /// Content-Length is malformed, or given twice with different values.
    #[error("malformed Content-Length")]
    BadContentLength,
}

/// Finds the first frame in `buf`; see the [module docs](self).
///
/// Runs in time linear in `min(buf.len(), config.max_size)` and never
/// allocates.
///
/// # Errors
///
/// [`FrameError::Incomplete`] until a whole frame has arrived; the other
/// variants when the stream is broken.
pub fn check(buf: &[u8], config: &ParseConfig) -> Result<Framed, FrameError> {
    match buf {
        [] | [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => {
            return Err(FrameError::Incomplete);
        }
        [b'\r', b'\n', b'\r', b'\n', ..] => return Ok(Framed::Ping { len: 4 }),
        [b'\r', b'\n', ..] => return Ok(Framed::KeepAlive { len: 2 }),
        [b'\n', ..] => return Ok(Framed::KeepAlive { len: 1 }),
        _ => {}
    }
    let window = &buf[..buf.len().min(config.max_size)];
    let Some((head_len, body_start)) = find_head_end(window) else {
        return Err(if buf.len() >= config.max_size {
            FrameError::TooLarge
        } else {
            FrameError::Incomplete
        });
    };
    let body_len = content_length(&buf[..head_len], config.max_size)?;
    let len = body_start + body_len;
    if len > config.max_size {
        return Err(FrameError::TooLarge);
    }
    if buf.len() < len {
        return Err(FrameError::Incomplete);
    }
    Ok(Framed::Message { len })
}

/// The Content-Length of a header section, accepting the compact `l` form
/// and insisting that repeated values agree.
fn content_length(head: &[u8], max: usize) -> Result<usize, FrameError> {
    let mut found = None;
    // Skip the start line; folded continuation lines start with white space
    // and therefore never look like a Content-Length line.
    for line in lines(head).skip(1) {
        // Only `Content-Length` and `l` can match: skip other lines early.
        if !matches!(line.first(), Some(b'C' | b'c' | b'L' | b'l')) {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii_end();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = std::str::from_utf8(&line[colon + 1..]).map_err(|_| FrameError::BadContentLength)?;
        let n = parse_content_length(value, max).map_err(|_| FrameError::BadContentLength)?;
        if found.is_some_and(|prev| prev != n) {
            return Err(FrameError::BadContentLength);
        }
        found = Some(n);
    }
    found.ok_or(FrameError::MissingContentLength)
}

/// The `\n`-separated lines of `bytes`, as `split(|b| *b == b'\n')` gives
/// them, each newline found once.
fn lines(mut rest: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        Some(match find_newline(rest) {
            Some(nl) => {
                let line = &rest[..nl];
                rest = &rest[nl + 1..];
                line
            }
            None => {
                done = true;
                rest
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_default(buf: &[u8]) -> Result<Framed, FrameError> {
        check(buf, &ParseConfig::default())
    }

    #[test]
    fn lines_split_as_std_does() {
        for s in [
            &b""[..],
            b"a",
            b"\n",
            b"a\n",
            b"\na",
            b"ab\ncd\r\n\nlonger than eight\nx",
        ] {
            let want: Vec<&[u8]> = s.split(|b| *b == b'\n').collect();
            assert_eq!(lines(s).collect::<Vec<_>>(), want, "{s:?}");
        }
    }

    const MSG: &[u8] = b"MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\nVia: SIP/2.0/TCP h\r\n\r\nhello";

    #[test]
    fn keep_alives() {
        assert_eq!(check_default(b""), Err(FrameError::Incomplete));
        assert_eq!(check_default(b"\r\n"), Err(FrameError::Incomplete));
        assert_eq!(check_default(b"\r\n\r"), Err(FrameError::Incomplete));
        assert_eq!(check_default(b"\r\n\r\n"), Ok(Framed::Ping { len: 4 }));
        assert_eq!(check_default(b"\r\nINVITE"), Ok(Framed::KeepAlive { len: 2 }));
    }

    #[test]
    fn message_arrives_in_pieces() {
        for cut in 0..MSG.len() {
            assert_eq!(check_default(&MSG[..cut]), Err(FrameError::Incomplete), "cut at {cut}");
        }
        assert_eq!(check_default(MSG), Ok(Framed::Message { len: MSG.len() }));
        let mut two = MSG.to_vec();
        two.extend_from_slice(MSG);
        assert_eq!(check_default(&two), Ok(Framed::Message { len: MSG.len() }));
    }

    #[test]
    fn broken_streams() {
        assert_eq!(
            check_default(b"OPTIONS sip:a SIP/2.0\r\n\r\n"),
            Err(FrameError::MissingContentLength)
        );
        assert_eq!(
            check_default(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n"),
            Err(FrameError::BadContentLength)
        );
        assert_eq!(
            check_default(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n"),
            Err(FrameError::BadContentLength)
        );
        let small = ParseConfig { max_size: 64 };
        assert_eq!(check(&[b'a'; 64], &small), Err(FrameError::TooLarge));
        assert_eq!(check(&[b'a'; 63], &small), Err(FrameError::Incomplete));
        assert_eq!(
            check(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 60\r\n\r\n", &small),
            Err(FrameError::TooLarge)
        );
    }
}
