//! Transaction tests in virtual time: `now` is `start + offset`, and the
//! driver jumps from one `poll_timeout` deadline to the next.

use std::time::{Duration, Instant};

use super::*;
use crate::message::{Message, ParseConfig, Request, Response};
use crate::response::response_to;

const UDP: Reliability = Reliability::Unreliable;
const TCP: Reliability = Reliability::Reliable;

fn request(method: &str, branch: &str) -> Request {
    let text = format!(
        "{method} sip:bob@example.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}\r\n\
Route: <sip:proxy.example.test;lr>\r\n\
From: <sip:alice@example.test>;tag=a\r\n\
To: <sip:bob@example.test>\r\n\
Call-ID: tx-1\r\n\
CSeq: 5 {method}\r\n\
Content-Length: 0\r\n\r\n"
    );
    match Message::parse(text.as_bytes(), &ParseConfig::default()) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn response(to: &Request, status: u16) -> Response {
    let mut r = response_to(to, status, None).unwrap();
    if status > 100 {
        r.set_to_tag("b").unwrap();
    }
    r
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Short names for events so expectations read like a trace.
fn describe(e: Event) -> String {
    match e {
        Event::Transmit(Message::Request(r)) => format!("send {}", r.method()),
        Event::Transmit(Message::Response(r)) => format!("send {}", r.status()),
        Event::Response(r) => format!("up {}", r.status()),
        Event::Request(r) => format!("up {}", r.method()),
        Event::TimedOut => "timeout".into(),
        Event::TransportError => "transport error".into(),
        Event::Terminated => "terminated".into(),
    }
}

/// The four kinds share this driving surface.
trait Drive {
    fn timeout(&self) -> Option<Instant>;
    fn fire(&mut self, now: Instant);
    fn event(&mut self) -> Option<Event>;

    fn events(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.event()).map(describe).collect()
    }

    /// Runs timers until `until` (or termination), returning each event
    /// with the offset from `start` at which it happened, in ms.
    fn run(&mut self, start: Instant, until: Duration) -> Vec<(u128, String)> {
        let mut trace = Vec::new();
        while let Some(at) = self.timeout() {
            if at > start + until {
                break;
            }
            self.fire(at);
            for e in self.events() {
                trace.push(((at - start).as_millis(), e));
            }
        }
        trace
    }
}

macro_rules! drive {
    ($t:ty) => {
        impl Drive for $t {
            fn timeout(&self) -> Option<Instant> {
                self.poll_timeout()
            }
            fn fire(&mut self, now: Instant) {
                self.handle_timeout(now)
            }
            fn event(&mut self) -> Option<Event> {
                self.poll_event()
            }
        }
    };
}
drive!(ClientInvite);
drive!(ClientNonInvite);
drive!(ServerInvite);
drive!(ServerNonInvite);

fn sends_at(trace: &[(u128, String)]) -> Vec<u128> {
    trace
        .iter()
        .filter(|(_, e)| e.starts_with("send"))
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn client_non_invite_timer_e_and_f() {
    let t0 = Instant::now();
    let mut tx = ClientNonInvite::new(request("OPTIONS", "z9hG4bK1"), UDP, Timers::default(), t0).unwrap();
    assert_eq!(tx.events(), ["send OPTIONS"]);
    let trace = tx.run(t0, Duration::from_secs(60));
    // Timer E doubles from T1 and is capped at T2 (§17.1.2.2).
    assert_eq!(
        sends_at(&trace),
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(
        trace[trace.len() - 2..],
        [(32000, "timeout".into()), (32000, "terminated".into())]
    );
    assert_eq!(tx.state(), &ClientNonInviteState::Terminated);
}

#[test]
fn client_non_invite_responses() {
    let t0 = Instant::now();
    let req = request("REGISTER", "z9hG4bK2");
    let mut tx = ClientNonInvite::new(req.clone(), UDP, Timers::default(), t0).unwrap();
    tx.events();
    // A provisional moves retransmissions to T2 intervals.
    tx.handle_response(response(&req, 100), t0 + ms(100));
    assert_eq!(tx.events(), ["up 100"]);
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(4100)));
    tx.handle_response(response(&req, 200), t0 + ms(200));
    assert_eq!(tx.events(), ["up 200"]);
    // Retransmitted finals are absorbed in Completed; Timer K is T4.
    tx.handle_response(response(&req, 200), t0 + ms(300));
    assert!(tx.events().is_empty());
    assert_eq!(tx.run(t0, Duration::from_secs(10)), [(5200, "terminated".into())]);

    // Over TCP: no Timer E, and Timer K is zero.
    let mut tx = ClientNonInvite::new(req.clone(), TCP, Timers::default(), t0).unwrap();
    tx.events();
    assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    tx.handle_response(response(&req, 404), t0 + ms(50));
    assert_eq!(tx.events(), ["up 404", "terminated"]);
    assert!(ClientNonInvite::new(request("INVITE", "z9hG4bK"), UDP, Timers::default(), t0).is_err());
}

#[test]
fn client_invite_timer_a_and_b() {
    let t0 = Instant::now();
    let mut tx = ClientInvite::new(request("INVITE", "z9hG4bK3"), UDP, Timers::default(), t0).unwrap();
    assert_eq!(tx.events(), ["send INVITE"]);
    let trace = tx.run(t0, Duration::from_secs(60));
    // Timer A doubles without a cap (§17.1.1.2); Timer B is 64*T1.
    assert_eq!(sends_at(&trace), [500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(
        trace[trace.len() - 2..],
        [(32000, "timeout".into()), (32000, "terminated".into())]
    );
}

#[test]
fn client_invite_failure_is_acked() {
    let t0 = Instant::now();
    let invite = request("INVITE", "z9hG4bK4");
    let mut tx = ClientInvite::new(invite.clone(), UDP, Timers::default(), t0).unwrap();
    tx.events();
    tx.handle_response(response(&invite, 180), t0 + ms(100));
    assert_eq!(tx.events(), ["up 180"]);
    assert_eq!(tx.state(), &ClientInviteState::Proceeding);
    assert_eq!(tx.poll_timeout(), None);
    let busy = response(&invite, 486);
    tx.handle_response(busy.clone(), t0 + ms(200));
    assert_eq!(tx.events(), ["send ACK", "up 486"]);
    // A retransmitted 486 is ACKed again but not passed up.
    tx.handle_response(busy.clone(), t0 + ms(700));
    assert_eq!(tx.events(), ["send ACK"]);
    assert_eq!(tx.run(t0, Duration::from_secs(60)), [(32200, "terminated".into())]);

    // The ACK follows §17.1.1.3.
    let ack = ack_for(&invite, &busy).unwrap();
    assert_eq!(ack.to().tag(), Some("b"));
    assert_eq!(ack.cseq().to_string(), "5 ACK");
    assert_eq!(ack.top_via(), invite.top_via());
    assert_eq!(
        ack.headers().get(&crate::HeaderName::ROUTE),
        Some("<sip:proxy.example.test;lr>")
    );
    assert_eq!(TransactionKey::server(&ack), TransactionKey::server(&invite));

    // Over TCP the transaction ends right after the ACK (Timer D is zero).
    let mut tx = ClientInvite::new(invite.clone(), TCP, Timers::default(), t0).unwrap();
    tx.events();
    tx.handle_response(busy, t0 + ms(10));
    assert_eq!(tx.events(), ["send ACK", "up 486", "terminated"]);
}

#[test]
fn client_invite_success_is_accepted() {
    let t0 = Instant::now();
    let invite = request("INVITE", "z9hG4bK5");
    let mut tx = ClientInvite::new(invite.clone(), TCP, Timers::default(), t0).unwrap();
    tx.events();
    tx.handle_response(response(&invite, 200), t0 + ms(100));
    assert_eq!(tx.events(), ["up 200"]);
    // 2xx retransmissions reach the TU, which ACKs them (RFC 6026).
    tx.handle_response(response(&invite, 200), t0 + ms(600));
    assert_eq!(tx.events(), ["up 200"]);
    assert_eq!(tx.run(t0, Duration::from_secs(60)), [(32100, "terminated".into())]);
}

#[test]
fn server_non_invite() {
    let t0 = Instant::now();
    let req = request("BYE", "z9hG4bK6");
    let mut tx = ServerNonInvite::new(&req, UDP, Timers::default()).unwrap();
    tx.handle_request(&req, t0);
    assert!(tx.events().is_empty(), "retransmissions in Trying are absorbed");
    tx.respond(response(&req, 200), t0 + ms(10)).unwrap();
    assert_eq!(tx.events(), ["send 200"]);
    tx.handle_request(&req, t0 + ms(500));
    assert_eq!(tx.events(), ["send 200"]);
    assert_eq!(
        tx.respond(response(&req, 500), t0),
        Err(TransactionError::ResponseNotAllowed)
    );
    assert_eq!(tx.run(t0, Duration::from_secs(60)), [(32010, "terminated".into())]);

    let mut tx = ServerNonInvite::new(&req, TCP, Timers::default()).unwrap();
    tx.respond(response(&req, 180), t0).unwrap();
    tx.handle_request(&req, t0);
    tx.respond(response(&req, 200), t0).unwrap();
    assert_eq!(tx.events(), ["send 180", "send 180", "send 200", "terminated"]);
}

#[test]
fn server_invite_failure_waits_for_ack() {
    let t0 = Instant::now();
    let invite = request("INVITE", "z9hG4bK7");
    let mut tx = ServerInvite::new(&invite, UDP, Timers::default()).unwrap();
    assert_eq!(tx.events(), ["send 100"]);
    tx.handle_request(invite.clone(), t0 + ms(500));
    assert_eq!(tx.events(), ["send 100"]);
    tx.respond(response(&invite, 180), t0 + ms(600)).unwrap();
    tx.respond(response(&invite, 486), t0 + ms(1000)).unwrap();
    assert_eq!(tx.events(), ["send 180", "send 486"]);
    // Timer G retransmits the 486, doubling up to T2, until Timer H.
    let trace = tx.run(t0, Duration::from_secs(60));
    assert_eq!(
        sends_at(&trace),
        [1500, 2500, 4500, 8500, 12500, 16500, 20500, 24500, 28500, 32500]
    );
    assert_eq!(
        trace[trace.len() - 2..],
        [(33000, "timeout".into()), (33000, "terminated".into())]
    );

    // With an ACK: Confirmed, then Timer I (T4).
    let mut tx = ServerInvite::new(&invite, UDP, Timers::default()).unwrap();
    tx.respond(response(&invite, 603), t0).unwrap();
    tx.events();
    let ack = ack_for(&invite, &response(&invite, 603)).unwrap();
    tx.handle_request(ack.clone(), t0 + ms(100));
    tx.handle_request(ack, t0 + ms(200));
    assert!(tx.events().is_empty());
    assert!(matches!(tx.state(), ServerInviteState::Confirmed { .. }));
    assert_eq!(tx.run(t0, Duration::from_secs(60)), [(5100, "terminated".into())]);
}

#[test]
fn server_invite_success_is_accepted() {
    let t0 = Instant::now();
    let invite = request("INVITE", "z9hG4bK8");
    let mut tx = ServerInvite::new(&invite, TCP, Timers::default()).unwrap();
    tx.respond(response(&invite, 200), t0).unwrap();
    assert_eq!(tx.events(), ["send 100", "send 200"]);
    // INVITE retransmissions are absorbed; the TU's 2xx retransmissions and
    // the ACK pass through.
    tx.handle_request(invite.clone(), t0 + ms(500));
    tx.respond(response(&invite, 200), t0 + ms(500)).unwrap();
    let mut ack = request("ACK", "z9hG4bK8");
    ack.set_header(crate::HeaderName::TO, "<sip:bob@example.test>;tag=b")
        .unwrap();
    tx.handle_request(ack, t0 + ms(600));
    assert_eq!(tx.events(), ["send 200", "up ACK"]);
    assert_eq!(
        tx.respond(response(&invite, 486), t0),
        Err(TransactionError::ResponseNotAllowed)
    );
    assert_eq!(tx.run(t0, Duration::from_secs(60)), [(32000, "terminated".into())]);
}

#[test]
fn keys() {
    let invite = request("INVITE", "z9hG4bK9");
    let ok = response(&invite, 200);
    assert_eq!(TransactionKey::client(&invite), TransactionKey::for_response(&ok));
    // A CANCEL shares the branch but is its own transaction.
    let cancel = cancel_for(&invite).unwrap();
    assert_ne!(TransactionKey::server(&cancel), TransactionKey::server(&invite));
    assert_eq!(
        TransactionKey::cancelled_invite(&cancel),
        Some(TransactionKey::server(&invite))
    );
    assert_eq!(TransactionKey::cancelled_invite(&invite), None);
    // The same branch from another sent-by is another transaction; the
    // default port and host case do not matter.
    let mut other = invite.clone();
    other
        .set_header(crate::HeaderName::VIA, "SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK9")
        .unwrap();
    assert_ne!(TransactionKey::server(&other), TransactionKey::server(&invite));
    let mut a = invite.clone();
    a.set_header(crate::HeaderName::VIA, "SIP/2.0/UDP Host.Example;branch=z9hG4bK9")
        .unwrap();
    let mut b = invite.clone();
    b.set_header(crate::HeaderName::VIA, "SIP/2.0/UDP host.example:5060;branch=z9hG4bK9")
        .unwrap();
    assert_eq!(TransactionKey::server(&a), TransactionKey::server(&b));
    // RFC 2543 peers without the magic cookie fall back to dialog fields.
    let old = request("INVITE", "1234");
    let mut old2 = old.clone();
    old2.set_header(crate::HeaderName::CALL_ID, "tx-2").unwrap();
    assert_ne!(TransactionKey::server(&old), TransactionKey::server(&old2));
}

#[test]
fn transport_errors_end_every_kind() {
    let t0 = Instant::now();
    let invite = request("INVITE", "z9hG4bK10");
    let bye = request("BYE", "z9hG4bK11");
    let mut a = ClientInvite::new(invite.clone(), TCP, Timers::default(), t0).unwrap();
    let mut b = ClientNonInvite::new(bye.clone(), TCP, Timers::default(), t0).unwrap();
    let mut c = ServerInvite::new(&invite, TCP, Timers::default()).unwrap();
    let mut d = ServerNonInvite::new(&bye, TCP, Timers::default()).unwrap();
    a.transport_error();
    b.transport_error();
    c.transport_error();
    d.transport_error();
    // A second report after termination adds nothing.
    d.transport_error();
    assert_eq!(a.events(), ["send INVITE", "transport error", "terminated"]);
    assert_eq!(b.events(), ["send BYE", "transport error", "terminated"]);
    assert_eq!(c.events(), ["send 100", "transport error", "terminated"]);
    assert_eq!(d.events(), ["transport error", "terminated"]);
    assert_eq!(a.poll_timeout(), None);
    assert_eq!(b.poll_timeout(), None);
}
