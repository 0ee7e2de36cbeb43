//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5, with the
//! Accepted state of RFC 6026).

use std::time::Instant;

use super::{Event, Outbox, Reliability, Retransmit, Timers, TransactionError, TransactionKey, earliest};
use crate::message::{Header, HeaderName, Headers, Message, Method, ParseError, Request, Response};

/// The states of Figure 5 (plus Accepted), each with its timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent, nothing heard yet.
    Calling {
        /// Timer A: retransmit the INVITE (unreliable transports only).
        timer_a: Option<Retransmit>,
        /// Timer B: give up.
        timer_b: Instant,
    },
    /// A provisional response arrived; waiting (without timers) for the
    /// final one, or for the TU to CANCEL.
    Proceeding,
    /// A 300-699 arrived and was ACKed; re-ACKing its retransmissions.
    Completed {
        /// Timer D: stop absorbing.
        timer_d: Instant,
    },
    /// A 2xx arrived; later 2xx retransmissions go to the TU, which ACKs
    /// them (RFC 6026 §8.4).
    Accepted {
        /// Timer M: stop forwarding.
        timer_m: Instant,
    },
    /// Done.
    Terminated,
}

/// Sends an INVITE and collects its responses.
#[derive(Debug)]
pub struct ClientInvite {
    request: Request,
    key: TransactionKey,
    reliability: Reliability,
    timers: Timers,
    state: ClientInviteState,
    /// The ACK sent for a non-2xx final response, resent on its
    /// retransmissions.
    ack: Option<Request>,
    out: Outbox,
}

impl ClientInvite {
    /// Starts the transaction; the first event is the INVITE to send.
    ///
    /// # Errors
    ///
    /// [`TransactionError::WrongMethod`] unless the request is an INVITE.
    pub fn new(
        request: Request,
        reliability: Reliability,
        timers: Timers,
        now: Instant,
    ) -> Result<Self, TransactionError> {
        if request.method() != &Method::Invite {
            return Err(TransactionError::WrongMethod);
        }
        let mut out = Outbox::default();
        out.push(Event::Transmit(Message::Request(request.clone())));
        Ok(Self {
            key: TransactionKey::client(&request),
            state: ClientInviteState::Calling {
                timer_a: reliability.retransmit(now, timers.t1),
                timer_b: now + timers.t1x64(),
            },
            request,
            reliability,
            timers,
            ack: None,
            out,
        })
    }

    /// The key responses are matched with.
    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    /// The current state.
    pub fn state(&self) -> &ClientInviteState {
        &self.state
    }

    /// The INVITE this transaction sends (to build a CANCEL with
    /// [`cancel_for`]).
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// A response whose [`TransactionKey::for_response`] equals
    /// [`Self::key`].
    pub fn handle_response(&mut self, response: Response, now: Instant) {
        use ClientInviteState::*;
        let status = response.status();
        match &self.state {
            Calling { .. } | Proceeding => {
                if status < 200 {
                    self.state = Proceeding;
                } else if status < 300 {
                    self.state = Accepted {
                        timer_m: now + self.timers.t1x64(),
                    };
                } else {
                    // The transaction ACKs non-2xx finals itself (§17.1.1.3).
                    match ack_for(&self.request, &response) {
                        Ok(ack) => {
                            self.out.push(Event::Transmit(Message::Request(ack.clone())));
                            self.ack = Some(ack);
                        }
                        // A response that parsed has a valid To, so this
                        // cannot happen; without an ACK the server simply
                        // retransmits until its Timer H.
                        Err(_) => self.ack = None,
                    }
                    self.state = Completed {
                        timer_d: now + self.reliability.wait(self.timers.timer_d()),
                    };
                }
                self.out.push(Event::Response(response));
                self.handle_timeout(now);
            }
            Completed { .. } => {
                if status >= 300
                    && let Some(ack) = &self.ack
                {
                    self.out.push(Event::Transmit(Message::Request(ack.clone())));
                }
            }
            Accepted { .. } => {
                if (200..300).contains(&status) {
                    self.out.push(Event::Response(response));
                }
            }
            Terminated => {}
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ClientInviteState::*;
        match self.state.clone() {
            Calling { timer_b, .. } if timer_b <= now => {
                self.out.push(Event::TimedOut);
                self.terminate();
            }
            Calling {
                timer_a: Some(a),
                timer_b,
            } if a.due(now) => {
                self.out.push(Event::Transmit(Message::Request(self.request.clone())));
                // Timer A doubles without the T2 cap (§17.1.1.2).
                self.state = Calling {
                    timer_a: Some(a.backoff(now, None)),
                    timer_b,
                };
            }
            Completed { timer_d } if timer_d <= now => self.terminate(),
            Accepted { timer_m } if timer_m <= now => self.terminate(),
            _ => {}
        }
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        use ClientInviteState::*;
        match &self.state {
            Calling { timer_a, timer_b } => earliest(&[timer_a.map(|a| a.at), Some(*timer_b)]),
            Completed { timer_d } => Some(*timer_d),
            Accepted { timer_m } => Some(*timer_m),
            Proceeding | Terminated => None,
        }
    }

    /// The transport could not send this transaction's message (RFC 3261
    /// §17.1.4, §17.2.4): the TU is told and the transaction ends.
    pub fn transport_error(&mut self) {
        if self.state != ClientInviteState::Terminated {
            self.out.push(Event::TransportError);
            self.terminate();
        }
    }

    /// The next event for the caller.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.pop()
    }

    fn terminate(&mut self) {
        self.state = ClientInviteState::Terminated;
        self.out.push(Event::Terminated);
    }
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): the
/// INVITE's Request-URI, top Via, From, Call-ID, CSeq number and Routes,
/// with the response's To (carrying the server's tag).
///
/// # Errors
///
/// The [`ParseError`] of a header that does not fit, which cannot happen
/// for messages that parsed.
pub fn ack_for(invite: &Request, response: &Response) -> Result<Request, ParseError> {
    let to = response.headers().get(&HeaderName::TO).unwrap_or_default();
    like_invite(invite, Method::Ack, to)
}

/// A CANCEL for a pending INVITE (RFC 3261 §9.1): same Request-URI, top
/// Via, From, To, Call-ID, CSeq number and Routes. It is sent in its own
/// [`super::ClientNonInvite`] transaction.
///
/// # Errors
///
/// As for [`ack_for`].
pub fn cancel_for(invite: &Request) -> Result<Request, ParseError> {
    let to = invite.headers().get(&HeaderName::TO).unwrap_or_default();
    like_invite(invite, Method::Cancel, to)
}

fn like_invite(invite: &Request, method: Method, to: &str) -> Result<Request, ParseError> {
    let mut h = Headers::new();
    h.push(Header::new(HeaderName::VIA, invite.top_via().to_string())?);
    for route in invite.headers().get_all(&HeaderName::ROUTE) {
        h.push(Header::new(HeaderName::ROUTE, route)?);
    }
    h.push(Header::new(HeaderName::MAX_FORWARDS, "70")?);
    h.push(Header::new(
        HeaderName::FROM,
        invite.headers().get(&HeaderName::FROM).unwrap_or_default(),
    )?);
    h.push(Header::new(HeaderName::TO, to)?);
    h.push(Header::new(HeaderName::CALL_ID, invite.call_id())?);
    h.push(Header::new(
        HeaderName::CSEQ,
        format!("{} {}", invite.cseq().seq, method),
    )?);
    h.push(Header::new(HeaderName::CONTENT_LENGTH, "0")?);
    Request::from_parts(method, invite.uri().clone(), h, Vec::new())
}
