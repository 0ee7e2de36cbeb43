//! Building responses: the RFC 3261 §8.2.6 copy rules, the RFC 3581
//! `received`/`rport` fill-in, and the `400` for requests that did not
//! parse.

use std::fmt;
use std::net::SocketAddr;

use crate::message::text::{has_forbidden_control, split_once_byte};
use crate::message::{Header, HeaderName, Headers, Host, Method, ParseError, Request, Response, Via};

/// Builds a response to `request` with the headers RFC 3261 §8.2.6.2 says
/// to copy: every Via (in order), From, To, Call-ID and CSeq, plus
/// Timestamp on a 100 (§8.2.6.1) and Record-Route on dialog-creating
/// responses (§12.1.1). Content-Length is 0; use `set_body` for a body.
///
/// The To tag is left as the request had it: call
/// [`Response::set_to_tag`] for anything but a 100, because only the
/// caller knows the dialog's tag.
///
/// # Errors
///
/// [`ParseError::BadStatusCode`] if `status` is outside 100..=699, or
/// [`ParseError::BadStartLine`] if `reason` contains control characters.
pub fn response_to(request: &Request, status: u16, reason: Option<&str>) -> Result<Response, ParseError> {
    let mut headers = Headers::with_capacity(10);
    let copy = |headers: &mut Headers, name: &HeaderName| {
        for value in request.headers().get_all(name) {
            // The values come from a parsed request, so they are valid.
            headers.push(Header::parsed(name.clone(), value));
        }
    };
    copy(&mut headers, &HeaderName::VIA);
    if (101..300).contains(&status) {
        copy(&mut headers, &HeaderName::RECORD_ROUTE);
    }
    copy(&mut headers, &HeaderName::FROM);
    copy(&mut headers, &HeaderName::TO);
    copy(&mut headers, &HeaderName::CALL_ID);
    copy(&mut headers, &HeaderName::CSEQ);
    if status == 100 {
        copy(&mut headers, &HeaderName::TIMESTAMP);
    }
    headers.push(Header::new(HeaderName::CONTENT_LENGTH, "0")?);
    let reason = reason.unwrap_or_else(|| reason_phrase(status));
    // Via, From, To, Call-ID and CSeq are the request's: so are their
    // typed views, no need to parse them again.
    Response::with_core(status, reason.to_owned(), headers, request.core().clone())
}

/// Records where a request really came from in its top Via (RFC 3261
/// §18.2.1, RFC 3581 §4), so responses go back through the NAT binding.
///
/// `received` is added when the sent-by host differs from the source
/// address, or whenever the client asked for `rport`; a bare `rport` is
/// filled in with the source port.
pub fn fill_received(request: &mut Request, source: SocketAddr) {
    let ip = source.ip().to_canonical();
    request.edit_top_via(|via| {
        let wants_rport = via.params.contains("rport");
        if wants_rport {
            via.params.set("rport", Some(&source.port().to_string()));
        }
        if wants_rport || !via.host.eq_host(&Host::from(ip)) {
            // RFC 3261's grammar puts IPv6 `received` values without brackets.
            let mut received = String::with_capacity(39);
            let _ = match ip {
                std::net::IpAddr::V4(v4) => crate::message::write_ipv4(v4, &mut received),
                std::net::IpAddr::V6(v6) => fmt::Write::write_fmt(&mut received, format_args!("{v6}")),
            };
            via.params.set("received", Some(&received));
        }
    });
}

/// Why no response can be sent to a message that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoResponse {
    /// It was (or looked like) a response: drop it and count it.
    #[error("malformed response")]
    NotARequest,
    /// It was an ACK, which is never answered (RFC 3261 §17.2.1).
    #[error("malformed ACK")]
    Ack,
    /// No usable Via, so there is nowhere to send a response.
    #[error("no usable Via")]
    MissingVia,
}

/// Builds the error response for a request that [`Message::parse`]
/// refused, from whatever headers can be salvaged.
///
/// The status is 513 for [`ParseError::TooLarge`], 505 for
/// [`ParseError::UnsupportedVersion`] and 400 otherwise, with the error's
/// text as reason phrase (`400 Missing Call-ID Header`). Via, From, To,
/// Call-ID and CSeq are copied raw when present and free of control
/// characters; `to_tag` is added to To unless it has a tag.
///
/// Returns bytes rather than a [`Response`] because the copied headers may
/// be the very ones that did not parse. The transport sends them back the
/// way the request came (same connection, or the datagram's source).
///
/// [`Message::parse`]: crate::message::Message::parse
///
/// # Errors
///
/// [`NoResponse`] when no response may or can be sent.
pub fn bad_request(bytes: &[u8], error: &ParseError, to_tag: &str) -> Result<Vec<u8>, NoResponse> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches(['\r', '\n']);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or("");
    if crate::message::strip_prefix_ignore_case(start_line, "SIP/").is_some() {
        return Err(NoResponse::NotARequest);
    }
    if start_line.split(' ').next().is_some_and(|m| m == Method::Ack.as_str()) {
        return Err(NoResponse::Ack);
    }
    let salvaged = salvage_headers(lines);
    let Some(top_via) = salvaged.iter().find(|(n, _)| n == &HeaderName::VIA) else {
        return Err(NoResponse::MissingVia);
    };
    let mut vias = crate::message::text::split_top_level(&top_via.1, b',');
    if vias.next().is_none_or(|v| v.parse::<Via>().is_err()) {
        return Err(NoResponse::MissingVia);
    }
    let (status, reason) = match error {
        ParseError::TooLarge => (513, "Message Too Large".to_owned()),
        ParseError::UnsupportedVersion => (505, "Version Not Supported".to_owned()),
        other => (400, other.to_string()),
    };
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    for (name, value) in &salvaged {
        out.push_str(name.as_str());
        out.push_str(": ");
        out.push_str(value);
        let has_tag = value.to_ascii_lowercase().replace(' ', "").contains(";tag=");
        if name == &HeaderName::TO && !has_tag && crate::message::text::is_token(to_tag) {
            out.push_str(";tag=");
            out.push_str(to_tag);
        }
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Ok(out.into_bytes())
}

/// The Via, From, To, Call-ID and CSeq lines of a header section, unfolded,
/// stopping at the first empty line; anything unreadable is skipped.
fn salvage_headers<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(HeaderName, String)> {
    const WANTED: [HeaderName; 5] = [
        HeaderName::VIA,
        HeaderName::FROM,
        HeaderName::TO,
        HeaderName::CALL_ID,
        HeaderName::CSEQ,
    ];
    let mut out: Vec<(HeaderName, String)> = Vec::new();
    let mut current: Option<(HeaderName, String)> = None;
    let mut flush = |current: &mut Option<(HeaderName, String)>| {
        if let Some((name, value)) = current.take() {
            let value = value.trim_ascii().to_owned();
            let single_valued = name != HeaderName::VIA;
            let seen = out.iter().any(|(n, _)| n == &name);
            let duplicate = single_valued && seen;
            if !(value.is_empty() || has_forbidden_control(&value) || duplicate) {
                out.push((name, value));
            }
        }
    };
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.as_mut() {
                value.push(' ');
                value.push_str(line.trim_ascii());
            }
            continue;
        }
        flush(&mut current);
        let Some((name, value)) = split_once_byte(line, b':') else {
            continue;
        };
        if let Ok(name) = HeaderName::new(name.trim_end())
            && WANTED.contains(&name)
        {
            current = Some((name, value.to_owned()));
        }
    }
    flush(&mut current);
    out
}

/// The RFC 3261 §21 reason phrase for common status codes, or a generic
/// one for the class.
pub fn reason_phrase(status: u16) -> &'static str {
    let known = match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "",
    };
    if !known.is_empty() {
        return known;
    }
    match status {
        100..=199 => "Provisional",
        200..=299 => "Success",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        500..=599 => "Server Error",
        _ => "Global Failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, ParseConfig};

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKabc;rport\r\n\
Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1\r\n\
Record-Route: <sip:proxy.example.com;lr>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=f1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: call-1\r\n\
CSeq: 7 INVITE\r\n\
Timestamp: 54\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";

    fn invite() -> Request {
        match Message::parse(INVITE.as_bytes(), &ParseConfig::default()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn copies_headers() {
        let req = invite();
        let mut ok = response_to(&req, 200, None).unwrap();
        ok.set_to_tag("t9").unwrap();
        assert_eq!(
            String::from_utf8(ok.to_bytes()).unwrap(),
            "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKabc;rport\r\n\
Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1\r\n\
Record-Route: <sip:proxy.example.com;lr>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=f1\r\n\
To: <sip:bob@example.com>;tag=t9\r\n\
Call-ID: call-1\r\n\
CSeq: 7 INVITE\r\n\
Content-Length: 0\r\n\r\n"
        );
        assert_eq!(ok.to().tag(), Some("t9"));
        let trying = response_to(&req, 100, None).unwrap();
        assert_eq!(trying.headers().get(&HeaderName::TIMESTAMP), Some("54"));
        assert!(!trying.headers().contains(&HeaderName::RECORD_ROUTE));
        assert!(response_to(&req, 99, None).is_err());
        assert!(response_to(&req, 486, Some("Busy\r\nX: y")).is_err());
    }

    #[test]
    fn received_and_rport() {
        let mut req = invite();
        fill_received(&mut req, "198.51.100.7:40000".parse().unwrap());
        assert_eq!(req.top_via().rport(), Some(Some(40000)));
        assert_eq!(req.top_via().received(), Some("198.51.100.7"));
        assert_eq!(
            req.headers().get(&HeaderName::VIA),
            Some("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKabc;rport=40000;received=198.51.100.7")
        );
        // Same address and no rport: nothing to add.
        let mut req = invite();
        req.set_header(HeaderName::VIA, "SIP/2.0/TLS [2001:db8::5]:5061;branch=z9hG4bKx")
            .unwrap();
        fill_received(&mut req, "[2001:db8::5]:5061".parse().unwrap());
        assert_eq!(req.top_via().received(), None);
        fill_received(&mut req, "[2001:db8::6]:5061".parse().unwrap());
        assert_eq!(req.top_via().received(), Some("2001:db8::6"));
        // A dual-stack socket reports IPv4 peers as mapped addresses.
        let mut req = invite();
        fill_received(&mut req, "[::ffff:10.0.0.5]:5060".parse().unwrap());
        assert_eq!(req.top_via().received(), Some("10.0.0.5"));
    }

    #[test]
    fn bad_request_salvages() {
        let broken = INVITE.replace("Call-ID: call-1\r\n", "");
        let err = Message::parse(broken.as_bytes(), &ParseConfig::default()).unwrap_err();
        let reply = String::from_utf8(bad_request(broken.as_bytes(), &err, "x1").unwrap()).unwrap();
        assert!(reply.starts_with("SIP/2.0 400 Missing Call-ID Header\r\n"), "{reply}");
        assert!(reply.contains("\r\nTo: <sip:bob@example.com>;tag=x1\r\n"));
        assert!(reply.contains("\r\nCSeq: 7 INVITE\r\n"));
        assert_eq!(reply.matches("Via:").count(), 2);
        assert!(reply.ends_with("Content-Length: 0\r\n\r\n"));

        let no_via = INVITE.replace("Via:", "X-Via:");
        assert_eq!(bad_request(no_via.as_bytes(), &err, "x"), Err(NoResponse::MissingVia));
        let ack = INVITE.replace("INVITE", "ACK");
        assert_eq!(bad_request(ack.as_bytes(), &err, "x"), Err(NoResponse::Ack));
        assert_eq!(
            bad_request(b"SIP/2.0 200 OK\r\n\r\n", &err, "x"),
            Err(NoResponse::NotARequest)
        );
        assert_eq!(
            bad_request(b"sip/2.0 2000 OK\r\n\r\n", &err, "x"),
            Err(NoResponse::NotARequest)
        );
        // A To that already has a tag (in any spelling) keeps it.
        let tagged = broken.replace("To: <sip:bob@example.com>", "To: <sip:bob@example.com> ; TAG=old");
        let reply = String::from_utf8(bad_request(tagged.as_bytes(), &err, "x1").unwrap()).unwrap();
        assert!(reply.contains("\r\nTo: <sip:bob@example.com> ; TAG=old\r\n"), "{reply}");
        let v7 = INVITE.replace(
            "INVITE sip:bob@example.com SIP/2.0",
            "INVITE sip:bob@example.com SIP/7.0",
        );
        let err = Message::parse(v7.as_bytes(), &ParseConfig::default()).unwrap_err();
        assert!(
            bad_request(v7.as_bytes(), &err, "x")
                .unwrap()
                .starts_with(b"SIP/2.0 505 ")
        );
    }
}
