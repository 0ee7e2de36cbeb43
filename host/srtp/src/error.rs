//! The one error type of the crate.
//!
//! Every variant is a fact about the input or the state, never about key
//! material: no variant carries key, salt or plaintext bytes, so an error
//! can be logged as it is.

/// What went wrong while setting up a context or processing a packet.
///
/// Packet errors leave the context unchanged: a rejected packet never
/// creates a stream, moves a rollover counter or marks the replay window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The authentication tag (HMAC-SHA1 or GCM tag) did not verify: the
    /// packet was forged, corrupted, or protected with another key.
    #[error("authentication failed")]
    AuthFailed,
    /// The packet index is inside the replay window and was already accepted.
    #[error("replayed packet")]
    Replayed,
    /// The packet index is older than the replay window can tell apart.
    #[error("packet too old for the replay window")]
    TooOld,
    /// The bytes are not a well-formed (S)RTP or (S)RTCP packet; the reason
    /// names the rule that failed.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The caller's buffer has no room for the tag (and MKI) protect appends.
    #[error("buffer too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Bytes the buffer must hold for the operation to succeed.
        needed: usize,
    },
    /// The master key reached its lifetime (2^48 SRTP / 2^31 SRTCP packets,
    /// or the SDES lifetime) or the packet index space is used up: rekey.
    #[error("master key exhausted")]
    KeyExhausted,
    /// The SSRC has no stream and the context does not create streams for
    /// unknown SSRCs (`Options::accept_unknown_ssrc` is false).
    #[error("unknown SSRC {0:#010x}")]
    UnknownSsrc(u32),
    /// Creating one more stream would exceed `Options::max_streams`.
    #[error("too many streams")]
    TooManyStreams,
    /// The packet's MKI is not the one of this context's master key.
    #[error("unknown MKI")]
    UnknownMki,
    /// The SRTCP packet has the E flag clear but this context requires
    /// encrypted SRTCP (no `UNENCRYPTED_SRTCP` was negotiated).
    #[error("unencrypted SRTCP refused")]
    UnencryptedRtcp,
    /// A master key or salt has the wrong length for the suite.
    #[error("invalid key length: {0}")]
    InvalidKeyLength(&'static str),
    /// An option is outside its allowed range; the text names it.
    #[error("invalid option: {0}")]
    InvalidOption(&'static str),
    /// An SDES `a=crypto` key parameter could not be parsed.
    #[error("invalid SDES key parameter: {0}")]
    InvalidSdes(&'static str),
    /// The crypto-suite name is not one this crate implements.
    #[error("unsupported crypto suite")]
    UnsupportedSuite,
}
