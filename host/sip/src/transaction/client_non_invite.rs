//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).

use std::time::Instant;

use super::{Event, Outbox, Reliability, Retransmit, Timers, TransactionError, TransactionKey, earliest};
use crate::message::{Message, Method, Request, Response};

/// The states of Figure 6, each with the timers running in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Request sent, nothing heard yet.
    Trying {
        /// Timer E: retransmit the request (unreliable transports only).
        timer_e: Option<Retransmit>,
        /// Timer F: give up.
        timer_f: Instant,
    },
    /// A provisional response arrived.
    Proceeding {
        /// Timer E, now at T2 intervals.
        timer_e: Option<Retransmit>,
        /// Timer F.
        timer_f: Instant,
    },
    /// A final response arrived; absorbing its retransmissions.
    Completed {
        /// Timer K: stop absorbing.
        timer_k: Instant,
    },
    /// Done.
    Terminated,
}

/// Sends a non-INVITE request and collects its responses.
#[derive(Debug)]
pub struct ClientNonInvite {
    request: Request,
    key: TransactionKey,
    reliability: Reliability,
    timers: Timers,
    state: ClientNonInviteState,
    out: Outbox,
}

impl ClientNonInvite {
    /// Starts the transaction; the first event is the request to send.
    ///
    /// # Errors
    ///
    /// [`TransactionError::WrongMethod`] for INVITE and ACK.
    pub fn new(
        request: Request,
        reliability: Reliability,
        timers: Timers,
        now: Instant,
    ) -> Result<Self, TransactionError> {
        if matches!(request.method(), Method::Invite | Method::Ack) {
            return Err(TransactionError::WrongMethod);
        }
        let mut out = Outbox::default();
        out.push(Event::Transmit(Message::Request(request.clone())));
        Ok(Self {
            key: TransactionKey::client(&request),
            state: ClientNonInviteState::Trying {
                timer_e: reliability.retransmit(now, timers.t1),
                timer_f: now + timers.t1x64(),
            },
            request,
            reliability,
            timers,
            out,
        })
    }

    /// The key responses are matched with.
    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    /// The current state.
    pub fn state(&self) -> &ClientNonInviteState {
        &self.state
    }

    /// A response whose [`TransactionKey::for_response`] equals
    /// [`Self::key`].
    pub fn handle_response(&mut self, response: Response, now: Instant) {
        use ClientNonInviteState::*;
        match &self.state {
            Trying { timer_f, .. } | Proceeding { timer_f, .. } => {
                let timer_f = *timer_f;
                if response.is_provisional() {
                    // Once the server is known to be alive, retransmit at T2
                    // only (§17.1.2.2).
                    self.state = Proceeding {
                        timer_e: self.reliability.retransmit(now, self.timers.t2),
                        timer_f,
                    };
                } else {
                    self.state = Completed {
                        timer_k: now + self.reliability.wait(self.timers.t4),
                    };
                }
                self.out.push(Event::Response(response));
                self.handle_timeout(now);
            }
            // Retransmitted final responses are absorbed.
            Completed { .. } | Terminated => {}
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ClientNonInviteState::*;
        match self.state.clone() {
            Trying { timer_f, .. } | Proceeding { timer_f, .. } if timer_f <= now => {
                self.out.push(Event::TimedOut);
                self.terminate();
            }
            Trying {
                timer_e: Some(e),
                timer_f,
            } if e.due(now) => {
                self.retransmit();
                self.state = Trying {
                    timer_e: Some(e.backoff(now, Some(self.timers.t2))),
                    timer_f,
                };
            }
            Proceeding {
                timer_e: Some(e),
                timer_f,
            } if e.due(now) => {
                self.retransmit();
                self.state = Proceeding {
                    timer_e: Some(Retransmit {
                        at: now + self.timers.t2,
                        interval: self.timers.t2,
                    }),
                    timer_f,
                };
            }
            Completed { timer_k } if timer_k <= now => self.terminate(),
            _ => {}
        }
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        use ClientNonInviteState::*;
        match &self.state {
            Trying { timer_e, timer_f } | Proceeding { timer_e, timer_f } => {
                earliest(&[timer_e.map(|e| e.at), Some(*timer_f)])
            }
            Completed { timer_k } => Some(*timer_k),
            Terminated => None,
        }
    }

    /// The transport could not send this transaction's message (RFC 3261
    /// §17.1.4, §17.2.4): the TU is told and the transaction ends.
    pub fn transport_error(&mut self) {
        if self.state != ClientNonInviteState::Terminated {
            self.out.push(Event::TransportError);
            self.terminate();
        }
    }

    /// The next event for the caller.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.pop()
    }

    fn retransmit(&mut self) {
        self.out.push(Event::Transmit(Message::Request(self.request.clone())));
    }

    fn terminate(&mut self) {
        self.state = ClientNonInviteState::Terminated;
        self.out.push(Event::Terminated);
    }
}
