//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7, with the
//! Accepted state of RFC 6026).

use std::time::Instant;

use super::{Event, Outbox, Reliability, Retransmit, Timers, TransactionError, TransactionKey, earliest};
use crate::message::{Message, Method, Request, Response};
use crate::response::response_to;

/// The states of Figure 7 (plus Accepted), each with its timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerInviteState {
    /// Waiting for the TU's final response; INVITE retransmissions get the
    /// last provisional response again.
    Proceeding {
        /// The last provisional response sent (at first the 100 Trying).
        last: Response,
    },
    /// A 300-699 was sent; retransmitting it until the ACK comes.
    Completed {
        /// The final response.
        last: Response,
        /// Timer G: retransmit the response (unreliable transports only).
        timer_g: Option<Retransmit>,
        /// Timer H: give up waiting for the ACK.
        timer_h: Instant,
    },
    /// The ACK arrived; absorbing ACK retransmissions.
    Confirmed {
        /// Timer I: stop absorbing.
        timer_i: Instant,
    },
    /// A 2xx was sent; INVITE retransmissions are absorbed, ACKs and the
    /// TU's 2xx retransmissions pass through (RFC 6026 §8.7).
    Accepted {
        /// Timer L: stop.
        timer_l: Instant,
    },
    /// Done.
    Terminated,
}

/// Answers one received INVITE.
#[derive(Debug)]
pub struct ServerInvite {
    key: TransactionKey,
    reliability: Reliability,
    timers: Timers,
    state: ServerInviteState,
    out: Outbox,
}

impl ServerInvite {
    /// Creates the transaction for a received INVITE and queues a
    /// `100 Trying` at once: a B2BUA rarely answers within 200 ms, and
    /// the 100 stops the caller's INVITE retransmissions (§17.2.1).
    ///
    /// # Errors
    ///
    /// [`TransactionError::WrongMethod`] unless the request is an INVITE.
    pub fn new(request: &Request, reliability: Reliability, timers: Timers) -> Result<Self, TransactionError> {
        if request.method() != &Method::Invite {
            return Err(TransactionError::WrongMethod);
        }
        // Building a 100 from a parsed request copies valid headers and a
        // valid status, so it cannot fail.
        let trying = response_to(request, 100, None).map_err(|_| TransactionError::WrongMethod)?;
        let mut out = Outbox::default();
        out.push(Event::Transmit(Message::Response(trying.clone())));
        Ok(Self {
            key: TransactionKey::server(request),
            reliability,
            timers,
            state: ServerInviteState::Proceeding { last: trying },
            out,
        })
    }

    /// The key retransmissions and the ACK are matched with.
    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    /// The current state.
    pub fn state(&self) -> &ServerInviteState {
        &self.state
    }

    /// A request matching [`Self::key`]: an INVITE retransmission or an
    /// ACK.
    pub fn handle_request(&mut self, request: Request, now: Instant) {
        use ServerInviteState::*;
        let is_ack = request.method() == &Method::Ack;
        match &self.state {
            Proceeding { last } | Completed { last, .. } if !is_ack => {
                self.out.push(Event::Transmit(Message::Response(last.clone())));
            }
            Completed { .. } => {
                self.state = Confirmed {
                    timer_i: now + self.reliability.wait(self.timers.t4),
                };
                self.handle_timeout(now);
            }
            Accepted { .. } if is_ack => self.out.push(Event::Request(request)),
            _ => {}
        }
    }

    /// A response from the TU.
    ///
    /// # Errors
    ///
    /// [`TransactionError::ResponseNotAllowed`] after a 300-699, or for
    /// anything but a 2xx in the Accepted state.
    pub fn respond(&mut self, response: Response, now: Instant) -> Result<(), TransactionError> {
        use ServerInviteState::*;
        let status = response.status();
        match &self.state {
            Proceeding { .. } => {
                self.out.push(Event::Transmit(Message::Response(response.clone())));
                self.state = match status {
                    100..=199 => Proceeding { last: response },
                    200..=299 => Accepted {
                        timer_l: now + self.timers.t1x64(),
                    },
                    _ => Completed {
                        last: response,
                        timer_g: self.reliability.retransmit(now, self.timers.t1),
                        timer_h: now + self.timers.t1x64(),
                    },
                };
                Ok(())
            }
            Accepted { .. } if (200..300).contains(&status) => {
                self.out.push(Event::Transmit(Message::Response(response)));
                Ok(())
            }
            _ => Err(TransactionError::ResponseNotAllowed),
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ServerInviteState::*;
        match self.state.clone() {
            Completed { timer_h, .. } if timer_h <= now => {
                self.out.push(Event::TimedOut);
                self.terminate();
            }
            Completed {
                last,
                timer_g: Some(g),
                timer_h,
            } if g.due(now) => {
                self.out.push(Event::Transmit(Message::Response(last.clone())));
                self.state = Completed {
                    last,
                    timer_g: Some(g.backoff(now, Some(self.timers.t2))),
                    timer_h,
                };
            }
            Confirmed { timer_i } if timer_i <= now => self.terminate(),
            Accepted { timer_l } if timer_l <= now => self.terminate(),
            _ => {}
        }
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        use ServerInviteState::*;
        match &self.state {
            Completed { timer_g, timer_h, .. } => earliest(&[timer_g.map(|g| g.at), Some(*timer_h)]),
            Confirmed { timer_i } => Some(*timer_i),
            Accepted { timer_l } => Some(*timer_l),
            Proceeding { .. } | Terminated => None,
        }
    }

    /// The transport could not send this transaction's message (RFC 3261
    /// §17.1.4, §17.2.4): the TU is told and the transaction ends.
    pub fn transport_error(&mut self) {
        if self.state != ServerInviteState::Terminated {
            self.out.push(Event::TransportError);
            self.terminate();
        }
    }

    /// The next event for the caller.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.pop()
    }

    fn terminate(&mut self) {
        self.state = ServerInviteState::Terminated;
        self.out.push(Event::Terminated);
    }
}
