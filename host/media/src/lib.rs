//! The PBX media relay: forwards each call's RTP and RTCP between its two
//! legs, decrypting with one leg's SRTP keys and re-encrypting with the
//! other's ("SRTP transcoding": any suite to any suite, or to and from
//! plain RTP), latching each phone's address, counting everything, and
//! optionally recording the call to a WAV file.
//!
//! ```text
//!  phone A ──SRTP(KA)──► [leg A port] ─ unprotect(KA) ─┐
//!                                                       ├─ worker thread ─ record ─► recorder ─► .wav
//!  phone B ◄─SRTP(KB')── [leg B port] ◄─ protect(KB') ──┘
//! ```
//!
//! The B2BUA starts one [`Relay`], calls [`Relay::allocate`] per call to
//! get the local ports for both legs' SDP, then [`CallMedia::configure`]
//! for each leg once its offer/answer is done (and again on re-INVITE),
//! awaits [`CallMedia::timed_out`] next to its SIP events, and drops or
//! [`close`](CallMedia::close)s the [`CallMedia`] at hang-up.
//!
//! # Structure
//!
//! - `relay`: [`Relay`], [`RelayConfig`]; worker start-up, round-robin call
//!   placement, the port pool (even RTP port, RTCP = RTP + 1, busy ports
//!   skipped), control requests with acknowledgement.
//! - `call`: [`CallMedia`] and its inputs ([`Side`], [`LegConfig`],
//!   [`LegKeys`], [`Codec`]) and outputs ([`LegAddrs`]); builds SRTP
//!   contexts on the caller's thread and hands them to the worker.
//! - `worker`: the relay threads: mio (epoll) readiness, edge-triggered
//!   batched receive, the packet path (demultiplex, source check,
//!   authenticate/decrypt, latch, count, record, protect, batched send),
//!   control messages between batches, media-timeout scan, wake-up
//!   coalescing ([`RelayConfig::coalesce`]).
//! - `record`: the recorder thread and the WAV writer (placement by RTP
//!   timestamp, bounded gap fill, header patched at the end).
//! - `stats`: [`LegStats`], [`CallStats`], [`RelayCounters`] and the
//!   single-writer atomic counters behind them.
//! - `rtp`: RTP/RTCP header checks and RFC 5761 demultiplexing.
//! - `g711`: µ-law and A-law decoding tables.
//! - `sys`: the only unsafe code: `recvmmsg`/`sendmmsg` (Linux; a
//!   `recvfrom`/`sendto` loop elsewhere), CPU affinity, open-file limit.
//! - `error`: [`MediaError`].
//!
//! # Invariants
//!
//! - Each call belongs to one worker; its sockets, SRTP contexts and
//!   latches are touched only by that thread. The packet path takes no
//!   lock and allocates nothing (buffers are the worker's; recording
//!   frames go into a preallocated bounded queue).
//! - Nothing blocks the packet path: sends never wait (a full socket
//!   buffer drops and counts), a full recorder queue drops and counts.
//! - A packet that fails authentication, comes from the wrong source or is
//!   malformed is dropped and counted, never forwarded, and never moves the
//!   latch or the replay window. No input panics.
//! - A leg's address is latched from the first packet that is accepted
//!   (authenticates on an SRTP leg; is well-formed on a plain one), from
//!   any source; after that only that source is accepted, until a
//!   `configure` with a different SDP address.
//! - No key bytes appear in `Debug`, errors or logs ([`LegKeys`] prints
//!   its suite only; `pbx_srtp` keys are redacted and wiped on drop).
//! - When `configure`, `record` or `close` returns, the worker has applied
//!   it.

mod call;
mod error;
mod g711;
mod record;
mod relay;
mod rtp;
mod stats;
#[doc(hidden)]
pub mod sys;
mod worker;

pub use call::{CallMedia, Codec, LegAddrs, LegConfig, LegKeys, Side};
pub use error::MediaError;
pub use relay::{Relay, RelayConfig};
pub use stats::{CallStats, LegStats, RelayCounters};
