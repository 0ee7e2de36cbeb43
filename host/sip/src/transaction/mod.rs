//! The RFC 3261 §17 transaction layer, sans-IO.
//!
//! One file per transaction kind, as the RFC splits them:
//!
//! | kind | file | RFC 3261 | states |
//! | --- | --- | --- | --- |
//! | client INVITE | `client_invite.rs` | §17.1.1 | Calling, Proceeding, Completed, Accepted, Terminated |
//! | client non-INVITE | `client_non_invite.rs` | §17.1.2 | Trying, Proceeding, Completed, Terminated |
//! | server INVITE | `server_invite.rs` | §17.2.1 | Proceeding, Completed, Confirmed, Accepted, Terminated |
//! | server non-INVITE | `server_non_invite.rs` | §17.2.2 | Trying, Proceeding, Completed, Terminated |
//!
//! The Accepted states are RFC 6026's fix to RFC 3261: after a 2xx the
//! INVITE transactions linger for 64·T1 to absorb retransmitted INVITEs
//! and pass retransmitted 2xx/ACKs to the dialog layer.
//!
//! # Driving a transaction
//!
//! Every state is an enum variant that holds exactly the timers running
//! in it, named after the RFC (Timer A...M). A transaction is driven by:
//!
//! - inputs: `handle_response` / `handle_request` (from the transport),
//!   `respond` (server side, from the TU), `handle_timeout(now)`, and
//!   `transport_error()` when a send failed;
//! - outputs: [`Event`]s taken with `poll_event` (messages to send,
//!   responses or requests for the TU, timeouts, termination);
//! - `poll_timeout()`: the earliest deadline, at which the caller calls
//!   `handle_timeout`.
//!
//! Time only enters as `now: Instant` arguments, so tests run in virtual
//! time by passing `start + Duration::from_secs(n)`.
//!
//! On reliable transports ([`Reliability::Reliable`]) Timers A, E and G
//! never run and Timers D, I, J and K are zero, which means the
//! transaction terminates as soon as it enters the state that would wait
//! for them.

mod client_invite;
mod client_non_invite;
mod key;
mod server_invite;
mod server_non_invite;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use client_invite::{ClientInvite, ClientInviteState, ack_for, cancel_for};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use key::TransactionKey;
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};

use crate::message::{Message, Request, Response};

/// Whether the transport retransmits by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    /// TCP, TLS, WebSocket: no retransmission timers, no waiting states.
    Reliable,
    /// UDP: the transaction retransmits and absorbs retransmissions.
    Unreliable,
}

impl Reliability {
    /// `d` on unreliable transports, zero on reliable ones (Timers D, I,
    /// J, K).
    fn wait(self, d: Duration) -> Duration {
        match self {
            Reliability::Reliable => Duration::ZERO,
            Reliability::Unreliable => d,
        }
    }

    /// A retransmission timer starting at `interval`, only on unreliable
    /// transports (Timers A, E, G).
    fn retransmit(self, now: Instant, interval: Duration) -> Option<Retransmit> {
        match self {
            Reliability::Reliable => None,
            Reliability::Unreliable => Some(Retransmit {
                at: now + interval,
                interval,
            }),
        }
    }
}

/// The base timer values of RFC 3261 §17.1.1.1 and Table 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// T1, the RTT estimate: 500 ms.
    pub t1: Duration,
    /// T2, the longest retransmit interval for non-INVITE requests and
    /// INVITE responses: 4 s.
    pub t2: Duration,
    /// T4, the longest time a message stays in the network: 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64·T1: Timers B, F, H, J (unreliable), L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: at least 32 s on unreliable transports.
    pub fn timer_d(&self) -> Duration {
        Duration::from_secs(32).max(self.t1x64() / 2)
    }
}

/// What a transaction asks its caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Send this message to the peer (first send or retransmission).
    Transmit(Message),
    /// Pass this response up to the TU (client transactions).
    Response(Response),
    /// Pass this request up to the TU (an ACK for a 2xx reaching a server
    /// INVITE transaction in the Accepted state).
    Request(Request),
    /// Timer B, F or H fired: the peer never answered (or never sent an
    /// ACK); the TU treats it as a 408.
    TimedOut,
    /// The transport failed to send (after `transport_error`): the TU
    /// treats it as a 503 on the client side (RFC 3261 §8.1.3.1).
    TransportError,
    /// The transaction is over; the caller drops it.
    Terminated,
}

/// Why the TU's input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The request's method needs the other transaction kind (INVITE vs
    /// non-INVITE), or is an ACK, which has no transaction of its own.
    #[error("request method does not fit this transaction kind")]
    WrongMethod,
    /// A final response was already sent; only the Accepted state of a
    /// server INVITE transaction takes further (2xx) responses.
    #[error("transaction no longer accepts responses")]
    ResponseNotAllowed,
}

/// A running retransmission timer: when it fires next, and the interval
/// that got it there (doubled on each firing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retransmit {
    /// When the timer fires.
    pub at: Instant,
    /// The current interval.
    pub interval: Duration,
}

impl Retransmit {
    /// Due at `now`?
    fn due(&self, now: Instant) -> bool {
        self.at <= now
    }

    /// The next timer after this one fired: interval doubled, capped.
    fn backoff(self, now: Instant, cap: Option<Duration>) -> Self {
        let doubled = self.interval * 2;
        let interval = cap.map_or(doubled, |c| doubled.min(c));
        Self {
            at: now + interval,
            interval,
        }
    }
}

/// The queue of events a transaction has produced.
#[derive(Debug, Default)]
struct Outbox(VecDeque<Event>);

impl Outbox {
    fn push(&mut self, e: Event) {
        self.0.push_back(e);
    }

    fn pop(&mut self) -> Option<Event> {
        self.0.pop_front()
    }
}

/// The earliest of some optional deadlines.
fn earliest(deadlines: &[Option<Instant>]) -> Option<Instant> {
    deadlines.iter().flatten().min().copied()
}

#[cfg(test)]
mod tests;
