use super::*;

/// Turns a readable fixture (LF line ends) into wire bytes (CRLF).
fn wire(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

fn parse(s: &str) -> Result<Message, ParseError> {
    Message::parse(&wire(s), &ParseConfig::default())
}

const REGISTER: &str = "REGISTER sips:example.com SIP/2.0
Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK-1;rport
From: <sips:100@example.com>;tag=a1
To: <sips:100@example.com>
Call-ID: reg-1@192.0.2.10
CSeq: 1 REGISTER
Contact: <sips:100@192.0.2.10:5061;transport=tls>;expires=300
Max-Forwards: 70
Content-Length: 0

";

#[test]
fn register_typed_views() {
    let Ok(Message::Request(r)) = parse(REGISTER) else {
        panic!()
    };
    assert_eq!(r.method(), &Method::Register);
    assert_eq!(r.top_via().transport, Transport::Tls);
    assert_eq!(r.from().tag(), Some("a1"));
    assert_eq!(r.to().tag(), None);
    assert_eq!(r.call_id(), "reg-1@192.0.2.10");
    assert_eq!(r.cseq().seq, 1);
    assert_eq!(r.max_forwards(), Some(70));
    let contacts = r.contacts().unwrap().unwrap();
    assert_eq!(contacts[0].params.value("expires"), Some("300"));
    assert_eq!(r.to_bytes(), wire(REGISTER));
}

#[test]
fn body_framing_on_datagrams() {
    let base = "OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:a@h>;tag=1\nTo: <sip:x>\nCall-ID: c\nCSeq: 1 OPTIONS\n";
    // No Content-Length: the body is the rest of the datagram.
    let Ok(Message::Request(r)) = parse(&format!("{base}\nabc")) else {
        panic!()
    };
    assert_eq!(r.body(), b"abc");
    // Extra bytes past Content-Length are discarded (RFC 3261 §18.3).
    let Ok(Message::Request(r)) = parse(&format!("{base}Content-Length: 2\n\nabc")) else {
        panic!()
    };
    assert_eq!(r.body(), b"ab");
    assert_eq!(
        parse(&format!("{base}Content-Length: 9\n\nabc")),
        Err(ParseError::TruncatedBody)
    );
    assert_eq!(
        parse(&format!("{base}Content-Length: 2\nl: 3\n\nabc")),
        Err(ParseError::DuplicateHeader("Content-Length"))
    );
    assert_eq!(
        parse(&format!("{base}Content-Length: -1\n\n")),
        Err(ParseError::BadContentLength)
    );
    let big = ParseConfig { max_size: 100 };
    assert_eq!(Message::parse(&wire(base), &big), Err(ParseError::TooLarge));
}

#[test]
fn builders_keep_typed_views_in_step() {
    let Ok(Message::Request(mut r)) = parse(REGISTER) else {
        panic!()
    };
    r.set_header(HeaderName::CALL_ID, "other").unwrap();
    assert_eq!(r.call_id(), "other");
    assert_eq!(
        r.remove_header(&HeaderName::CALL_ID),
        Err(ParseError::MissingHeader("Call-ID"))
    );
    assert_eq!(r.call_id(), "other");
    assert!(r.push_header(HeaderName::SUBJECT, "a\r\nVia: x").is_err());
    assert_eq!(
        r.set_header(HeaderName::CONTENT_LENGTH, "9"),
        Err(ParseError::BadContentLength)
    );
    r.set_body(Some("text/plain"), b"hi".to_vec()).unwrap();
    assert_eq!(r.headers().get(&HeaderName::CONTENT_LENGTH), Some("2"));
    assert!(r.to_bytes().ends_with(b"\r\n\r\nhi"));
    // Headers outside the typed views change in place; a bad Content-Type
    // leaves body and headers as they were.
    r.push_header(HeaderName::SUBJECT, "one").unwrap();
    r.set_header(HeaderName::SUBJECT, "two").unwrap();
    assert_eq!(r.headers().get_all(&HeaderName::SUBJECT).collect::<Vec<_>>(), ["two"]);
    r.remove_header(&HeaderName::SUBJECT).unwrap();
    assert_eq!(r.headers().get(&HeaderName::SUBJECT), None);
    assert!(r.set_body(Some("bad\r\nVia: x"), b"longer".to_vec()).is_err());
    assert_eq!(
        (r.body(), r.headers().get(&HeaderName::CONTENT_LENGTH)),
        (&b"hi"[..], Some("2"))
    );
    // A Via pushed in is seen by the typed view.
    r.push_header(HeaderName::VIA, "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKextra")
        .unwrap();
    assert_eq!(r.vias().len(), 2);
    let again = Message::parse(&r.to_bytes(), &ParseConfig::default()).unwrap();
    assert_eq!(again, Message::Request(r));
}

#[test]
fn head_end() {
    assert_eq!(find_head_end(b"A\r\n\r\nB"), Some((2, 5)));
    assert_eq!(find_head_end(b"A\n\nB"), Some((1, 3)));
    assert_eq!(find_head_end(b"A\r\nB\r\n"), None);
    assert_eq!(find_head_end(b""), None);
}

#[test]
fn find_newline_agrees_with_a_plain_search() {
    // Every length up to three words, a newline at every place, with bytes
    // around it that trip a careless zero-byte trick (0x0a ± 1, 0x8a, 0x00).
    for len in 0..24 {
        for at in 0..=len {
            for filler in [b'a', 0x0b, 0x09, 0x8a, 0x00, 0xff] {
                let mut bytes = vec![filler; len];
                if at < len {
                    bytes[at] = b'\n';
                }
                if at + 3 < len {
                    bytes[at + 3] = b'\n';
                }
                let want = bytes.iter().position(|&b| b == b'\n');
                assert_eq!(find_newline(&bytes), want, "{bytes:?}");
            }
        }
    }
}

#[test]
fn header_name_ends_at_blanks_only() {
    // Space or tab before the colon is tolerated; a CR or form feed there
    // is not white space to trim but a control in the name.
    assert!(parse(&REGISTER.replace("Max-Forwards:", "Max-Forwards \t:")).is_ok());
    for bad in ["Max-Forwards\r:", "Max-Forwards\x0c:"] {
        let text = REGISTER.replace("Max-Forwards:", bad);
        assert_eq!(
            Message::parse(text.replace('\n', "\r\n").as_bytes(), &ParseConfig::default()).err(),
            Some(ParseError::BadHeaderLine),
            "{bad:?}"
        );
    }
}
