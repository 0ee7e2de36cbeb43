//! Sans-IO SDP for the PBX: parse and print session descriptions
//! (RFC 8866), read and write SDES `a=crypto` lines (RFC 4568), and run
//! offer/answer for one B2BUA leg (RFC 3264) with SRTP.
//!
//! The crate does no I/O, keeps no clock and holds no state between
//! calls: SIP hands it a body, it hands back an answer body and the
//! [`NegotiatedStream`]s the media relay needs. Randomness comes in
//! through a key-generator closure, so tests are deterministic and
//! production passes [`KeyMaterial::random`].
//!
//! ```
//! use pbx_sdp::{answer, KeyMaterial, LocalMedia, Sdp, SrtpPolicy};
//!
//! let offer = Sdp::parse(
//!     "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
//!      m=audio 30004 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
//!      a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:pUUBiPfLKi6qR8ZSe2Db6r5slrJD8Kaz1WfHbZSt\r\n",
//! )?;
//! let local = LocalMedia::new("198.51.100.1".parse()?, 40000);
//! let (reply, streams) = answer(&offer, &local, &SrtpPolicy::default(), &mut KeyMaterial::random)?;
//! assert!(reply.to_string().contains("m=audio 40000 RTP/SAVP 0 101\r\n"));
//! let srtp = streams[0].srtp.as_ref().expect("SRTP negotiated");
//! assert_eq!(srtp.suite.sdes_name(), "AES_CM_128_HMAC_SHA1_80");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Structure
//!
//! - `sdp`: the model ([`Sdp`], [`Media`], [`Attribute`], [`Connection`],
//!   [`Proto`], ...), [`Limits`], and the printer (`Display`, CRLF).
//! - `parse`: the line parser behind [`Sdp::parse`]; limits, control
//!   characters, line order and field syntax are checked here.
//! - `attr`: typed attribute values: [`RtpMap`], [`Fmtp`], [`Rtcp`],
//!   [`Direction`]; read through accessors on [`Media`].
//! - `crypto`: [`CryptoAttr`], [`KeyParam`], [`Mki`], [`SessionFlags`] and
//!   [`KeyMaterial`] (wiped on drop, redacted `Debug`).
//! - `negotiate`: [`answer`], [`offer`], [`PendingOffer::accept_answer`]
//!   and their inputs ([`LocalMedia`], [`Codec`], [`SrtpPolicy`],
//!   [`SrtpOffer`]) and output ([`NegotiatedStream`], [`SrtpParams`]).
//! - `error`: [`ParseError`], [`CryptoError`], [`AnswerError`],
//!   [`AcceptError`], [`OfferError`], [`KeyGenError`].
//!
//! The suite table is `pbx_srtp::Suite`, re-exported as [`Suite`], so the
//! SDP and SRTP sides agree on names and key lengths.
//!
//! # Invariants
//!
//! - No input panics: parsing uses `split`/`get`, never unchecked
//!   indexing on input (a property test mutates real offers to check).
//! - Key bytes never appear in `Debug` or error output: [`KeyMaterial`]
//!   and `a=crypto` [`Attribute`]s are redacted. Only `Display` of an
//!   [`Sdp`], [`CryptoAttr`] or [`KeyParam`] prints keys, because that is
//!   what goes on the wire.
//! - An answer never echoes the offerer's key: every answered `a=crypto`
//!   carries a key from the caller's generator.
//! - A parsed body prints back to the same lines when its lines were in
//!   RFC 8866 order with single spaces; parse → print → parse is always
//!   the identity.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod attr;
mod crypto;
mod error;
mod negotiate;
mod parse;
mod sdp;

pub use attr::{AttrError, Direction, Fmtp, Rtcp, RtpMap};
pub use crypto::{CryptoAttr, KeyMaterial, KeyParam, Mki, SessionFlags};
pub use error::{AcceptError, AnswerError, CryptoError, KeyGenError, OfferError, ParseError};
pub use negotiate::{
    Codec, DEFAULT_SUITES, LocalMedia, NegotiatedCodec, NegotiatedStream, PendingOffer, RtcpTarget, SessionOrigin,
    SrtpMode, SrtpOffer, SrtpParams, SrtpPolicy, SuiteChoice, answer, keep_key, offer, static_format,
};
pub use pbx_srtp::Suite;
pub use sdp::{Attribute, Bandwidth, Connection, Limits, Media, Origin, Proto, Sdp, Timing};
