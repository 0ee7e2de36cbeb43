//! The error types of the crate.
//!
//! No variant carries key material: an error can be logged as it is.
//! Line numbers are 1-based and count the lines of the SDP body.

use crate::Suite;

/// Why an SDP body was refused by [`Sdp::parse`](crate::Sdp::parse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The body is longer than [`Limits::max_bytes`](crate::Limits::max_bytes).
    #[error("SDP body of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Length of the body.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The body has more lines than [`Limits::max_lines`](crate::Limits::max_lines).
    #[error("SDP body has more than {max} lines")]
    TooManyLines {
        /// The limit in force.
        max: usize,
    },
    /// One line is longer than [`Limits::max_line_len`](crate::Limits::max_line_len).
    #[error("line {line}: longer than {max} bytes")]
    LineTooLong {
        /// The line number.
        line: usize,
        /// The limit in force.
        max: usize,
    },
    /// More `m=` sections than [`Limits::max_media`](crate::Limits::max_media).
    #[error("line {line}: more than {max} media sections")]
    TooManyMedia {
        /// The line number.
        line: usize,
        /// The limit in force.
        max: usize,
    },
    /// The body is not UTF-8 (RFC 8866 §5 default charset).
    #[error("SDP body is not valid UTF-8")]
    NotUtf8,
    /// A line holds a control character (NUL, a lone CR, ESC, ...).
    #[error("line {line}: control character")]
    ControlChar {
        /// The line number.
        line: usize,
    },
    /// A line is not of the form `<letter>=<value>`.
    #[error("line {line}: not a `<type>=<value>` line")]
    Syntax {
        /// The line number.
        line: usize,
    },
    /// The body is empty or does not start with `v=`.
    #[error("SDP body does not start with v=")]
    MissingVersion,
    /// `v=` is not `0`.
    #[error("unsupported SDP version")]
    UnsupportedVersion,
    /// A mandatory session line (`o=` or `s=`) is missing.
    #[error("missing mandatory {0}= line")]
    Missing(char),
    /// A line type RFC 8866 does not define (parsers must refuse them).
    #[error("line {line}: unknown line type {ty}=")]
    UnknownType {
        /// The line number.
        line: usize,
        /// The type letter.
        ty: char,
    },
    /// A line that may appear once appears again, or appears in the wrong
    /// section (e.g. `t=` inside a media section).
    #[error("line {line}: {ty}= not allowed here")]
    Unexpected {
        /// The line number.
        line: usize,
        /// The type letter.
        ty: char,
    },
    /// The `o=` line is malformed.
    #[error("line {line}: invalid o= line")]
    InvalidOrigin {
        /// The line number.
        line: usize,
    },
    /// The `c=` line is malformed or its address does not fit its type.
    #[error("line {line}: invalid c= line")]
    InvalidConnection {
        /// The line number.
        line: usize,
    },
    /// The `b=` line is not `<bwtype>:<number>`.
    #[error("line {line}: invalid b= line")]
    InvalidBandwidth {
        /// The line number.
        line: usize,
    },
    /// The `t=` or `r=` line is malformed.
    #[error("line {line}: invalid t= or r= line")]
    InvalidTiming {
        /// The line number.
        line: usize,
    },
    /// The `m=` line is malformed (media, proto or formats).
    #[error("line {line}: invalid m= line")]
    InvalidMedia {
        /// The line number.
        line: usize,
    },
    /// The `m=` port or port count is not a number in 0..=65535.
    #[error("line {line}: invalid m= port")]
    InvalidPort {
        /// The line number.
        line: usize,
    },
    /// The `a=` line has an empty or non-token attribute name.
    #[error("line {line}: invalid a= line")]
    InvalidAttribute {
        /// The line number.
        line: usize,
    },
    /// A section has more attributes than
    /// [`Limits::max_attributes`](crate::Limits::max_attributes).
    #[error("line {line}: too many attributes in one section")]
    TooManyAttributes {
        /// The line number.
        line: usize,
    },
    /// [`Sdp::validate`](crate::Sdp::validate): a field prints as text that
    /// parses to something else (e.g. a line break inside a value).
    #[error("SDP fields do not print back to the same description")]
    NotCanonical,
}

/// Why one `a=crypto` line (RFC 4568 §9.1) was refused.
///
/// One bad crypto line does not spoil an offer: negotiation skips it and
/// looks at the next one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The tag is not 1 to 9 decimal digits.
    #[error("invalid crypto tag")]
    InvalidTag,
    /// The line has no crypto-suite or no key parameters.
    #[error("crypto attribute is truncated")]
    Truncated,
    /// The crypto-suite is not one we implement (e.g. `F8_128_HMAC_SHA1_80`).
    #[error("unsupported crypto suite {0:?}")]
    UnknownSuite(String),
    /// The key method is not `inline`.
    #[error("unsupported key method")]
    UnsupportedKeyMethod,
    /// The key‖salt is not canonical base64.
    #[error("key-salt is not valid base64")]
    InvalidBase64,
    /// The decoded key‖salt has the wrong length for the suite.
    #[error("key-salt of {got} octets, {suite} needs {expected}")]
    KeyLength {
        /// The suite of the line.
        suite: Suite,
        /// Key plus salt octets the suite needs.
        expected: usize,
        /// Octets decoded.
        got: usize,
    },
    /// The lifetime is not `2^n` or a decimal in 1..=2^48 packets.
    #[error("invalid key lifetime")]
    InvalidLifetime,
    /// The MKI is not `<value>:<length>` with a length of 1..=128 octets
    /// that the value fits in.
    #[error("invalid MKI")]
    InvalidMki,
    /// More key parameters than we accept (more than 16).
    #[error("too many key parameters")]
    TooManyKeys,
    /// Several key parameters, but not every one has an MKI (RFC 4568 §6.1)
    /// or two share an MKI value.
    #[error("several keys need distinct MKIs")]
    MkiRequired,
    /// A known session parameter has a bad value (e.g. `KDR=99`).
    #[error("invalid session parameter {0:?}")]
    InvalidSessionParam(String),
}

/// Why [`answer`](crate::answer) could not accept an offer. Every variant
/// except [`AnswerError::KeyGen`] maps to SIP `488 Not Acceptable Here`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The offer has no audio stream we could accept at all.
    #[error("no acceptable media stream")]
    NoAcceptableMedia,
    /// An SRTP stream (RTP/SAVP) was offered but no `a=crypto` line is
    /// acceptable (unknown suites, bad keys, refused session parameters).
    #[error("no acceptable crypto attribute")]
    NoAcceptableCrypto,
    /// Our policy requires SRTP and the offer is plain RTP without an
    /// acceptable `a=crypto`.
    #[error("SRTP required but not offered")]
    SrtpRequired,
    /// The offer and our codec list have no audio codec in common.
    #[error("no common codec")]
    NoCommonCodec,
    /// The stream has no usable `c=` address (missing, or not an IP).
    #[error("no usable connection address")]
    NoConnectionAddress,
    /// The key generator failed (maps to SIP 500).
    #[error(transparent)]
    KeyGen(#[from] KeyGenError),
}

impl AnswerError {
    /// The SIP status code to reject the offer with.
    pub fn sip_status(&self) -> u16 {
        match self {
            AnswerError::KeyGen(_) => 500,
            _ => 488,
        }
    }
}

/// Why [`PendingOffer::accept_answer`](crate::PendingOffer::accept_answer)
/// refused an answer. The B2BUA should end the leg (ACK then BYE, or
/// CANCEL the other leg) on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// The answer does not have one m= line per offered m= line.
    #[error("answer has {got} media sections, the offer had {expected}")]
    MediaCount {
        /// Media sections offered.
        expected: usize,
        /// Media sections answered.
        got: usize,
    },
    /// The answerer rejected our audio stream (port 0).
    #[error("audio stream rejected")]
    Rejected,
    /// The answer changed the media type or transport protocol.
    #[error("answer changed the media type or transport")]
    ProtoMismatch,
    /// SRTP was mandatory and the answer has no `a=crypto`.
    #[error("answer has no crypto attribute")]
    MissingCrypto,
    /// The answer has more than one `a=crypto` (RFC 4568 §7.1.2 allows one).
    #[error("answer has more than one crypto attribute")]
    TooManyCrypto,
    /// The answer's tag or suite is not one we offered.
    #[error("answer picked a crypto tag or suite that was not offered")]
    NotOffered,
    /// The answer's `a=crypto` is malformed.
    #[error("invalid crypto attribute in answer: {0}")]
    Crypto(#[from] CryptoError),
    /// The answer's crypto line is one our policy refuses (several keys,
    /// UNENCRYPTED_SRTP, UNAUTHENTICATED_SRTP, an unknown mandatory
    /// session parameter).
    #[error("answer's crypto attribute is not acceptable")]
    CryptoRefused,
    /// The answerer sent back our own key: both directions would share a
    /// keystream.
    #[error("answer echoes the offered key")]
    EchoedKey,
    /// The answer has no audio codec that we offered.
    #[error("no common codec")]
    NoCommonCodec,
    /// The answer has no usable `c=` address.
    #[error("no usable connection address")]
    NoConnectionAddress,
}

/// Why [`offer`](crate::offer) could not build an offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OfferError {
    /// SRTP is mandatory but no suite was given.
    #[error("SRTP offer without suites")]
    NoSuites,
    /// [`LocalMedia::codecs`](crate::LocalMedia::codecs) has no audio codec.
    #[error("no codec to offer")]
    NoCodecs,
    /// The key generator failed.
    #[error(transparent)]
    KeyGen(#[from] KeyGenError),
}

/// The key generator could not produce a key (the OS random source
/// failed). A unit struct so that custom generators can return it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("key generation failed")]
pub struct KeyGenError;
