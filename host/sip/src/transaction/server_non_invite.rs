//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).

use std::time::Instant;

use super::{Event, Outbox, Reliability, Timers, TransactionError, TransactionKey};
use crate::message::{Message, Method, Request, Response};

/// The states of Figure 8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// Request received, the TU has not answered; retransmissions are
    /// absorbed silently.
    Trying,
    /// The TU sent a provisional response, resent on retransmissions.
    Proceeding {
        /// The last provisional response.
        last: Response,
    },
    /// The TU sent a final response, resent on retransmissions.
    Completed {
        /// The final response.
        last: Response,
        /// Timer J: stop absorbing.
        timer_j: Instant,
    },
    /// Done.
    Terminated,
}

/// Answers one received non-INVITE request.
#[derive(Debug)]
pub struct ServerNonInvite {
    key: TransactionKey,
    reliability: Reliability,
    timers: Timers,
    state: ServerNonInviteState,
    out: Outbox,
}

impl ServerNonInvite {
    /// Creates the transaction for a received request; the caller passes
    /// the request itself to the TU.
    ///
    /// # Errors
    ///
    /// [`TransactionError::WrongMethod`] for INVITE and ACK.
    pub fn new(request: &Request, reliability: Reliability, timers: Timers) -> Result<Self, TransactionError> {
        if matches!(request.method(), Method::Invite | Method::Ack) {
            return Err(TransactionError::WrongMethod);
        }
        Ok(Self {
            key: TransactionKey::server(request),
            reliability,
            timers,
            state: ServerNonInviteState::Trying,
            out: Outbox::default(),
        })
    }

    /// The key retransmissions are matched with.
    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    /// The current state.
    pub fn state(&self) -> &ServerNonInviteState {
        &self.state
    }

    /// A retransmission of the request (same [`TransactionKey::server`]).
    pub fn handle_request(&mut self, _request: &Request, _now: Instant) {
        match &self.state {
            ServerNonInviteState::Proceeding { last } | ServerNonInviteState::Completed { last, .. } => {
                self.out.push(Event::Transmit(Message::Response(last.clone())));
            }
            ServerNonInviteState::Trying | ServerNonInviteState::Terminated => {}
        }
    }

    /// A response from the TU.
    ///
    /// # Errors
    ///
    /// [`TransactionError::ResponseNotAllowed`] once a final response has
    /// been sent.
    pub fn respond(&mut self, response: Response, now: Instant) -> Result<(), TransactionError> {
        match &self.state {
            ServerNonInviteState::Trying | ServerNonInviteState::Proceeding { .. } => {
                self.out.push(Event::Transmit(Message::Response(response.clone())));
                if response.is_provisional() {
                    self.state = ServerNonInviteState::Proceeding { last: response };
                } else {
                    self.state = ServerNonInviteState::Completed {
                        last: response,
                        timer_j: now + self.reliability.wait(self.timers.t1x64()),
                    };
                    self.handle_timeout(now);
                }
                Ok(())
            }
            ServerNonInviteState::Completed { .. } | ServerNonInviteState::Terminated => {
                Err(TransactionError::ResponseNotAllowed)
            }
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let ServerNonInviteState::Completed { timer_j, .. } = &self.state
            && *timer_j <= now
        {
            self.terminate();
        }
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            ServerNonInviteState::Completed { timer_j, .. } => Some(*timer_j),
            _ => None,
        }
    }

    /// The transport could not send this transaction's response (RFC 3261
    /// §17.2.4): the TU is told and the transaction ends.
    pub fn transport_error(&mut self) {
        if self.state != ServerNonInviteState::Terminated {
            self.out.push(Event::TransportError);
            self.terminate();
        }
    }

    /// The next event for the caller.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.pop()
    }

    fn terminate(&mut self) {
        self.state = ServerNonInviteState::Terminated;
        self.out.push(Event::Terminated);
    }
}
