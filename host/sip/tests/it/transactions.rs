//! A client and a server transaction talking through an in-memory lossy
//! "UDP" link, in virtual time: bytes out of one side are parsed and fed to
//! the other, like rustls-test's `transfer`.

use std::time::{Duration, Instant};

use pbx_sip::message::{Message, ParseConfig, Request};
use pbx_sip::response::response_to;
use pbx_sip::transaction::{ClientNonInvite, Event, Reliability, ServerNonInvite, Timers, TransactionKey};

use crate::wire;

fn options() -> Request {
    let text = "OPTIONS sip:pbx.example.test SIP/2.0
Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKlossy
From: <sip:monitor@example.test>;tag=m1
To: <sip:pbx.example.test>
Call-ID: lossy-1
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0

";
    match Message::parse(&wire(text), &ParseConfig::default()) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

/// Serialises what a side wants to send, as the transport would.
fn outgoing(events: impl Iterator<Item = Event>, up: &mut Vec<Event>) -> Vec<Vec<u8>> {
    let mut wire = Vec::new();
    for e in events {
        match e {
            Event::Transmit(m) => wire.push(m.to_bytes()),
            other => up.push(other),
        }
    }
    wire
}

#[test]
fn options_survives_a_lost_request_and_a_lost_response() {
    let t0 = Instant::now();
    let cfg = ParseConfig::default();
    let mut client = ClientNonInvite::new(options(), Reliability::Unreliable, Timers::default(), t0).unwrap();
    let mut server: Option<ServerNonInvite> = None;
    let mut client_up = Vec::new();
    let mut server_up = Vec::new();
    // Datagrams 0 (first request) and the first response are lost.
    let mut requests_seen = 0;
    let mut responses_seen = 0;

    let mut now = t0;
    for _ in 0..20 {
        for datagram in outgoing(std::iter::from_fn(|| client.poll_event()), &mut client_up) {
            requests_seen += 1;
            if requests_seen == 1 {
                continue;
            }
            let Ok(Message::Request(req)) = Message::parse(&datagram, &cfg) else {
                panic!()
            };
            match &mut server {
                Some(tx) => {
                    assert_eq!(tx.key(), &TransactionKey::server(&req));
                    tx.handle_request(&req, now);
                }
                None => {
                    let mut tx = ServerNonInvite::new(&req, Reliability::Unreliable, Timers::default()).unwrap();
                    let mut ok = response_to(&req, 200, None).unwrap();
                    ok.set_to_tag("s1").unwrap();
                    tx.respond(ok, now).unwrap();
                    server = Some(tx);
                }
            }
        }
        if let Some(tx) = &mut server {
            for datagram in outgoing(std::iter::from_fn(|| tx.poll_event()), &mut server_up) {
                responses_seen += 1;
                if responses_seen == 1 {
                    continue;
                }
                let Ok(Message::Response(resp)) = Message::parse(&datagram, &cfg) else {
                    panic!()
                };
                assert_eq!(client.key(), &TransactionKey::for_response(&resp));
                client.handle_response(resp, now);
            }
        }
        let next = [
            client.poll_timeout(),
            server.as_ref().and_then(ServerNonInvite::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { break };
        now = next.max(now);
        client.handle_timeout(now);
        if let Some(tx) = &mut server {
            tx.handle_timeout(now);
        }
    }
    // The client retransmitted twice (0.5 s, 1.5 s); the second
    // retransmission drew the 200 again from the server's Completed state.
    assert_eq!(requests_seen, 3);
    assert_eq!(responses_seen, 2);
    assert!(matches!(client_up.first(), Some(Event::Response(r)) if r.status() == 200));
    assert!(client_up.ends_with(&[Event::Terminated]));
    assert!(server_up.ends_with(&[Event::Terminated]));
    assert!(now - t0 >= Duration::from_secs(32), "server lingered for Timer J");
}
