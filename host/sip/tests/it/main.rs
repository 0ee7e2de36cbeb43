//! The integration tests of `pbx-sip`, one binary with a module per theme.

mod fixtures;
mod mutation;
mod tidy;
mod transactions;

use pbx_sip::message::{Message, ParseConfig};
use pbx_sip::response::bad_request;

/// Turns a readable fixture (LF line ends) into wire bytes (CRLF).
pub fn wire(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

/// Parses `input` and describes the outcome on one line, so a test is
/// one fixture and one expected line (the rust-analyzer `check` style).
///
/// A request reads `REQ <method> <uri> | vias=<n> top=<transport> <branch> |
/// from-tag=<tag> | cseq=<cseq> | call-id=<id> | body=<len>`, a response
/// `RSP <status> <reason> | ...`, and an error `ERR <text> => <first line of
/// the error response, or why there is none>`.
pub fn summary(input: &[u8]) -> String {
    match Message::parse(input, &ParseConfig::default()) {
        Ok(Message::Request(r)) => format!(
            "REQ {} {} | vias={} top={} {} | from-tag={} | cseq={} | call-id={} | body={}",
            r.method(),
            r.uri(),
            r.vias().len(),
            r.top_via().transport,
            r.top_via().branch().unwrap_or("-"),
            r.from().tag().unwrap_or("-"),
            r.cseq(),
            r.call_id(),
            r.body().len()
        ),
        Ok(Message::Response(r)) => format!(
            "RSP {} {} | vias={} | to-tag={} | cseq={} | body={}",
            r.status(),
            r.reason(),
            r.vias().len(),
            r.to().tag().unwrap_or("-"),
            r.cseq(),
            r.body().len()
        ),
        Err(e) => {
            let reply = match bad_request(input, &e, "err") {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    text.lines().next().unwrap_or_default().to_owned()
                }
                Err(no) => format!("no response: {no}"),
            };
            format!("ERR {e} => {reply}")
        }
    }
}

/// Asserts the summary of a fixture (LF line ends turned into CRLF).
#[track_caller]
pub fn check(input: &str, expected: &str) {
    assert_eq!(summary(&wire(input)), expected, "\n--- input ---\n{input}");
}

/// Asserts that a parsed message prints back to exactly its input.
#[track_caller]
pub fn check_round_trip(input: &str) {
    let bytes = wire(input);
    let msg = Message::parse(&bytes, &ParseConfig::default()).expect("fixture parses");
    assert_eq!(
        String::from_utf8_lossy(&msg.to_bytes()),
        String::from_utf8_lossy(&bytes)
    );
}
