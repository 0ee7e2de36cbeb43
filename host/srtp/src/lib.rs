//! Sans-IO SRTP and SRTCP (RFC 3711) with the AES-CM/HMAC-SHA1 suites of
//! RFC 3711 and RFC 6188 and the AES-GCM suites of RFC 7714, on RustCrypto.
//!
//! The crate does no I/O and keeps no clock: the media relay hands it a
//! packet in a buffer and gets the same buffer back, transformed in place.
//! A B2BUA leg that re-keys ("SRTP transcoding") runs
//! [`Context::unprotect_rtp`] with leg A's inbound context and
//! [`Context::protect_rtp`] with leg B's outbound context on one buffer
//! ([`transcode_rtp`] does both).
//!
//! ```
//! use pbx_srtp::{Context, MasterKey, Options, Suite};
//!
//! let key = MasterKey::new(&[7; 16], &[9; 14])?;
//! let mut tx = Context::new(Suite::AesCm128HmacSha1_80, &key, Options::default())?;
//! let mut rx = Context::new(Suite::AesCm128HmacSha1_80, &key, Options::default())?;
//!
//! let mut buf = [0u8; 1500];
//! let rtp = [0x80, 0, 0, 1, 0, 0, 0, 0, 0xCA, 0xFE, 0xBA, 0xBE, 1, 2, 3];
//! buf[..rtp.len()].copy_from_slice(&rtp);
//! let n = tx.protect_rtp(&mut buf, rtp.len())?;     // header ‖ E(payload) ‖ tag
//! let m = rx.unprotect_rtp(&mut buf[..n])?;         // back to the RTP packet
//! assert_eq!(&buf[..m], &rtp);
//! # Ok::<(), pbx_srtp::Error>(())
//! ```
//!
//! # Structure
//!
//! - `suite`: [`Suite`], the protection profiles and their key, salt and
//!   tag lengths and SDES names.
//! - `key`: [`MasterKey`] and [`SessionKeys`]; redacted `Debug`, wiped on drop.
//! - [`kdf`]: the RFC 3711 §4.3 key derivation (AES-CM PRF), with key
//!   derivation rate.
//! - `cipher`: the packet transforms, `aes_cm_hmac` (AES-CM + HMAC-SHA1,
//!   the HMAC in `hmac_sha1` with its pads absorbed once) and `aead_gcm`
//!   (AES-GCM), behind one `Cipher`; key schedules are built once per
//!   master key.
//! - `cipher::aesni`, `cipher::ghash` (x86_64): AES-NI CTR, PCLMULQDQ GCM.
//! - `rtp`: header parsing and the §3.3.1 packet-index estimate.
//! - `replay`: the replay window, split into `check` (before
//!   authentication) and `accept` (after).
//! - `context`: [`Context`] and [`Options`]: per-SSRC streams, the
//!   protect/unprotect entry points, key lifetime, master keys by MKI.
//! - `batch`: [`Packet`] and the `*_batch` methods: several packets per
//!   call with two HMACs computed at once (`cipher::sha1_x2`, SHA-NI),
//!   with the same results as the one-packet calls in order.
//! - [`sdes`]: the `a=crypto` `inline:` key parameters.
//! - `error`: [`Error`].
//!
//! # Invariants
//!
//! - Nothing that fails changes state: an unauthenticated packet never
//!   creates a stream, advances the rollover counter or the replay window.
//! - No input bytes panic; all parsing uses checked slicing.
//! - No per-packet heap allocation; tags are compared in constant time.
//! - No key bytes in `Debug` or error output.
//! - `unsafe` only in `aesni`, `ghash` and `sha1_x2` (intrinsics), entered
//!   after CPU feature detection.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod batch;
mod cipher;
mod context;
mod error;
pub mod kdf;
mod key;
mod replay;
mod rtp;
pub mod sdes;
mod suite;

pub use batch::{Packet, transcode_rtp_batch};
pub use context::{Context, Options, SRTCP_MAX_PACKETS, SRTP_MAX_PACKETS, transcode_rtcp, transcode_rtp};
pub use error::Error;
pub use key::{MasterKey, SessionKeys};
pub use replay::{MAX_WINDOW, MIN_WINDOW};
pub use sdes::{CryptoAttribute, KeyParams};
pub use suite::Suite;
