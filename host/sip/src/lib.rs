//! The sans-IO SIP core of the PBX: messages, stream framing, transactions
//! and digest authentication.
//!
//! # Structure
//!
//! - [`message`]: typed SIP values ([`Request`], [`Response`], [`Uri`],
//!   [`NameAddr`], [`Via`], [`CSeq`], [`Headers`]) with the parser
//!   ([`Message::parse`]) and printer (`to_bytes`).
//! - [`framing`]: finds message boundaries on TCP/TLS streams
//!   ([`framing::check`]) and reports RFC 5626 keep-alive pings.
//! - [`response`]: builds responses to requests (RFC 3261 §8.2.6), fills in
//!   `received`/`rport` (RFC 3581), and turns a parse failure into a `400`.
//! - [`auth`]: server-side digest authentication (RFC 7616/8760): challenges,
//!   self-validating expiring nonces, verification and `nc` replay checks.
//! - [`transaction`]: the four RFC 3261 §17 transaction state machines, one
//!   file each, plus the transaction key used to match messages to them.
//!
//! # No I/O here
//!
//! This crate never opens a socket, reads a clock or spawns a task. Bytes go
//! in and typed values come out; time is passed in as `now: Instant` (or
//! `SystemTime` where it must survive restarts, as in nonces), and the
//! transaction machines hand back events and their next deadline
//! (`poll_timeout`). The transport layer that owns sockets and timers is
//! built on top, in the `pbx` host crate.
//!
//! # Example
//!
//! A REGISTER arrives on a TLS connection; frame it, parse it, record the
//! source address and answer it.
//!
//! ```
//! use pbx_sip::framing::{self, Framed};
//! use pbx_sip::message::{Message, ParseConfig};
//! use pbx_sip::response::{fill_received, response_to};
//!
//! let bytes = b"REGISTER sips:example.test SIP/2.0\r\n\
//! Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK-1;rport\r\n\
//! f: <sips:100@example.test>;tag=a1\r\n\
//! t: <sips:100@example.test>\r\n\
//! i: reg-1\r\n\
//! CSeq: 1 REGISTER\r\n\
//! l: 0\r\n\r\n";
//! let cfg = ParseConfig::default();
//! let Ok(Framed::Message { len }) = framing::check(bytes, &cfg) else { panic!() };
//! let Ok(Message::Request(mut register)) = Message::parse(&bytes[..len], &cfg) else { panic!() };
//! fill_received(&mut register, "198.51.100.4:40312".parse().unwrap());
//! assert_eq!(register.top_via().rport(), Some(Some(40312)));
//!
//! let mut ok = response_to(&register, 200, None).unwrap();
//! ok.set_to_tag("srv1").unwrap();
//! assert!(ok.to_bytes().starts_with(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK-1;rport=40312;received=198.51.100.4\r\n"));
//! ```
//!
//! # Errors
//!
//! Each module has its own `#[non_exhaustive]` error enum:
//! [`ParseError`], [`framing::FrameError`], [`response::NoResponse`],
//! [`auth::AuthError`], [`transaction::TransactionError`]. Malformed
//! network input is always an error value, never a panic.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod framing;
pub mod message;
pub mod response;
pub mod transaction;

pub use message::{
    CSeq, Header, HeaderName, Headers, Host, Message, Method, NameAddr, Params, ParseConfig, ParseError, Request,
    Response, Scheme, SipUri, Transport, Uri, Via,
};
