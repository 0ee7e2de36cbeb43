//! The error type of the message parser.

/// Why bytes could not be turned into a SIP message or a typed header value.
///
/// The `Display` text of every variant is static (it never echoes input), is
/// a single line, and is written to be usable as the reason phrase of the
/// `400 Bad Request` sent back for a malformed request; see
/// [`crate::response::bad_request`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The message is larger than the configured size limit.
    #[error("Message Too Large")]
    TooLarge,
    /// No empty line ends the header section.
    #[error("Missing End of Headers")]
    MissingHeaderEnd,
    /// The start line and headers are not valid UTF-8.
    #[error("Header Section Not UTF-8")]
    NotUtf8,
    /// The request line or status line does not have the required shape.
    #[error("Malformed Start Line")]
    BadStartLine,
    /// The protocol version is not `SIP/2.0`.
    #[error("Version Not Supported")]
    UnsupportedVersion,
    /// The method is not a valid token.
    #[error("Malformed Method")]
    BadMethod,
    /// The status code is not three digits between 100 and 699.
    #[error("Malformed Status Code")]
    BadStatusCode,
    /// A URI could not be parsed; the text says which part was wrong.
    #[error("Malformed URI: {0}")]
    BadUri(&'static str),
    /// A header line has no colon, an invalid name, or forbidden characters.
    #[error("Malformed Header Line")]
    BadHeaderLine,
    /// A header required by RFC 3261 §8.1.1 is absent.
    #[error("Missing {0} Header")]
    MissingHeader(&'static str),
    /// A header that must appear once appears with different values.
    #[error("Duplicate {0} Header")]
    DuplicateHeader(&'static str),
    /// A header value does not follow its grammar.
    #[error("Malformed {0} Header")]
    BadHeader(&'static str),
    /// Content-Length is not a number, or is larger than the size limit.
    #[error("Malformed Content-Length")]
    BadContentLength,
    /// The body is shorter than Content-Length says.
    #[error("Body Shorter Than Content-Length")]
    TruncatedBody,
    /// The CSeq method differs from the request method.
    #[error("CSeq Method Does Not Match Request")]
    CSeqMethodMismatch,
}
