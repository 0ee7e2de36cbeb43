//! Real-phone messages and RFC 4475-style torture cases, checked through
//! [`check`]. The fixtures are written for this crate in the style of RFC
//! 4475 (addresses from the documentation ranges), not copied from it.

use crate::{check, check_round_trip, wire};
use pbx_sip::framing::{self, Framed};
use pbx_sip::message::{HeaderName, Message, ParseConfig, Uri};

const BARESIP_REGISTER: &str = "REGISTER sip:example.test SIP/2.0
Via: SIP/2.0/TLS 192.0.2.20:40123;branch=z9hG4bK4b1e3a7f1c2d;rport;alias
Contact: <sip:100-0x55d2c1@192.0.2.20:40123;transport=tls>;expires=3600;+sip.instance=\"<urn:uuid:0f1e2d3c-0000-4000-8000-000000000001>\";reg-id=1
Max-Forwards: 70
To: <sip:100@example.test>
From: <sip:100@example.test>;tag=8a4b2f36c1d0e9a7
Call-ID: 6d1a5f0e9c3b2a41
CSeq: 36042 REGISTER
User-Agent: baresip v1.0.0 (x86_64/linux)
Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE
Supported: outbound,path,replaces
Content-Length: 0

";

const SNOM_REGISTER: &str = "REGISTER sips:pbx.example.test SIP/2.0
Via: SIP/2.0/TLS 192.0.2.31:1031;branch=z9hG4bK-x7zcmxg2b0k1;rport
From: \"Reception\" <sips:201@pbx.example.test>;tag=vaqrjt2ot7
To: \"Reception\" <sips:201@pbx.example.test>
Call-ID: 3c2e6e1f7d6b-ssu1h6yc8xqe
CSeq: 2 REGISTER
Max-Forwards: 70
Contact: <sips:201@192.0.2.31:1031;transport=tls;line=k9w2x0mf>;reg-id=1;q=1.0;+sip.instance=\"<urn:uuid:a1b2c3d4-0001-0002-0003-000413acd001>\";audio;mobility=\"fixed\";duplex=\"full\";description=\"snom D785\";actions=\"broadcast\";events=\"dialog\"
User-Agent: snom D785/10.1.159.12
Supported: path, gruu
Allow-Events: dialog
X-Real-IP: 192.0.2.31
Authorization: Digest username=\"201\",realm=\"pbx.example.test\",nonce=\"AAAAAGcF3xAAAAAAAAAAAQ\",uri=\"sips:pbx.example.test\",response=\"4f1c6b5dbd1f4fd2a3b0e2e1c7d8a9b0\",algorithm=MD5,qop=auth,cnonce=\"3a0c1f2e\",nc=00000001
Expires: 3600
Content-Length: 0

";

const POLYCOM_INVITE: &str = "INVITE sip:202@pbx.example.test;user=phone SIP/2.0
Via: SIP/2.0/TLS 192.0.2.40:5061;branch=z9hG4bKe7c2b5a91E1A8B5C
From: \"Lab 201\" <sip:201@pbx.example.test>;tag=C8F1A5B2-9E3D4F60
To: <sip:202@pbx.example.test;user=phone>
CSeq: 1 INVITE
Call-ID: 5e9a1d3c-7b2f4e80-9c0d1a2b@192.0.2.40
Contact: <sip:201@192.0.2.40:5061;transport=tls>
Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE, SUBSCRIBE, NOTIFY, PRACK, UPDATE, REFER
User-Agent: PolycomVVX-VVX_450-UA/6.4.3.5018
Accept-Language: en
Supported: 100rel,replaces
Allow-Events: conference,talk,hold
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: 332

v=0
o=- 1701234567 1701234567 IN IP4 192.0.2.40
s=Polycom IP Phone
c=IN IP4 192.0.2.40
t=0 0
m=audio 2222 RTP/SAVP 9 0 8 101
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzcyAo
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
";

#[test]
fn real_phones() {
    check(
        BARESIP_REGISTER,
        "REQ REGISTER sip:example.test | vias=1 top=TLS z9hG4bK4b1e3a7f1c2d | from-tag=8a4b2f36c1d0e9a7 | cseq=36042 REGISTER | call-id=6d1a5f0e9c3b2a41 | body=0",
    );
    check(
        SNOM_REGISTER,
        "REQ REGISTER sips:pbx.example.test | vias=1 top=TLS z9hG4bK-x7zcmxg2b0k1 | from-tag=vaqrjt2ot7 | cseq=2 REGISTER | call-id=3c2e6e1f7d6b-ssu1h6yc8xqe | body=0",
    );
    check(
        POLYCOM_INVITE,
        "REQ INVITE sip:202@pbx.example.test;user=phone | vias=1 top=TLS z9hG4bKe7c2b5a91E1A8B5C | from-tag=C8F1A5B2-9E3D4F60 | cseq=1 INVITE | call-id=5e9a1d3c-7b2f4e80-9c0d1a2b@192.0.2.40 | body=332",
    );
    for fixture in [BARESIP_REGISTER, SNOM_REGISTER, POLYCOM_INVITE] {
        check_round_trip(fixture);
    }
}

#[test]
fn real_phone_details() {
    let Ok(Message::Request(r)) = Message::parse(&wire(SNOM_REGISTER), &ParseConfig::default()) else {
        panic!()
    };
    let contacts = r.contacts().unwrap().unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].params.value("description"), Some("\"snom D785\""));
    assert!(contacts[0].params.contains("audio"));
    assert_eq!(r.from().display_name().as_deref(), Some("Reception"));
    assert_eq!(
        r.headers().values(&HeaderName::SUPPORTED).collect::<Vec<_>>(),
        ["path", "gruu"]
    );
    let Uri::Sip(uri) = r.uri() else { panic!() };
    assert_eq!(uri.scheme, pbx_sip::Scheme::Sips);

    // The same INVITE arriving on a TLS stream in two pieces.
    let bytes = wire(POLYCOM_INVITE);
    let cfg = ParseConfig::default();
    assert_eq!(
        framing::check(&bytes[..bytes.len() - 10], &cfg),
        Err(framing::FrameError::Incomplete)
    );
    assert_eq!(framing::check(&bytes, &cfg), Ok(Framed::Message { len: bytes.len() }));
}

#[test]
fn responses() {
    check(
        "SIP/2.0 200 OK
Via: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bKb2b;received=192.0.2.1;rport=5061
Via: SIP/2.0/TLS 192.0.2.40:5061;branch=z9hG4bKe7c2
Record-Route: <sips:192.0.2.1;lr>
From: <sip:201@pbx.example.test>;tag=C8F1
To: <sip:202@pbx.example.test>;tag=as5f
Call-ID: abc
CSeq: 1 INVITE
Content-Length: 0

",
        "RSP 200 OK | vias=2 | to-tag=as5f | cseq=1 INVITE | body=0",
    );
    check(
        "SIP/2.0 401 Unauthorized
Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1
From: <sip:a@b>;tag=1
To: <sip:a@b>;tag=2
Call-ID: c
CSeq: 1 REGISTER
WWW-Authenticate: Digest realm=\"b\", nonce=\"n\", qop=\"auth\", algorithm=SHA-256
WWW-Authenticate: Digest realm=\"b\", nonce=\"n\", qop=\"auth\", algorithm=MD5
Content-Length: 0

",
        "RSP 401 Unauthorized | vias=1 | to-tag=2 | cseq=1 REGISTER | body=0",
    );
    // An empty reason phrase is allowed.
    check(
        "SIP/2.0 180 \nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:a@b>;tag=1\nTo: <sip:a@b>\nCall-ID: c\nCSeq: 1 INVITE\n\n",
        "RSP 180  | vias=1 | to-tag=- | cseq=1 INVITE | body=0",
    );
    // A malformed response is dropped, never answered.
    check(
        "SIP/2.0 2000 OK\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n\n",
        "ERR Malformed Status Code => no response: malformed response",
    );
}

/// A short, well-formed message whose headers the torture cases vary.
const BASE_HEADERS: &str = "Via: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bKt1
From: <sip:caller@example.test>;tag=ft
To: <sip:callee@example.test>
Call-ID: torture-1
CSeq: 1 OPTIONS
Max-Forwards: 70
";

fn options(headers: &str) -> String {
    format!("OPTIONS sip:callee@example.test SIP/2.0\n{headers}\n")
}

#[test]
fn torture_valid() {
    // White space everywhere it is allowed, folding, odd case, compact forms
    // (in the spirit of RFC 4475 §3.1.1.1 "wsinv").
    check(
        "INVITE sip:vivekg@chair-dnrc.example.test;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.test ;   tag    = 1918181833n
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.test>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 150
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;rport;branch=z9hG4bKkdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.test;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.test   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.test> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
",
        "REQ INVITE sip:vivekg@chair-dnrc.example.test;unknownparam | vias=3 top=UDP z9hG4bKkdjuw | from-tag=98asjd8 | cseq=9 INVITE | call-id=wsinv.ndaksdj@192.0.2.1 | body=150",
    );
    // Compact forms for every mandatory header.
    check(
        "MESSAGE sip:bob@example.test SIP/2.0
v: SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKc1;rport
f: <sip:alice@[::1]:5061;transport=tls>;tag=c1
t: sip:bob@example.test
i: compact-1
CSeq: 1 MESSAGE
k: path
m: <sip:alice@[::1]:5061;transport=tls>
c: text/plain
l: 5

hello",
        "REQ MESSAGE sip:bob@example.test | vias=1 top=TLS z9hG4bKc1 | from-tag=c1 | cseq=1 MESSAGE | call-id=compact-1 | body=5",
    );
    // IPv6 everywhere, sips, URI headers, and a Via list split over two
    // lines with the received/rport a proxy added.
    check(
        "INVITE sips:alice@[::1]:5061;transport=tls SIP/2.0
Via: SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKv6a;received=2001:db8::1;rport=5061
Via: SIP/2.0/TLS [2001:db8::2];branch=z9hG4bKv6b,SIP/2.0/TCP 192.0.2.9;branch=z9hG4bKv6c
From: Bob <sips:bob@[2001:db8::2]>;tag=v6
To: \"Alice\" <sips:alice@[::1]:5061;transport=tls>
Call-ID: v6@[2001:db8::2]
CSeq: 10 INVITE
Contact: <sips:bob@[2001:db8::2]?Subject=call%20me&Priority=urgent>
Content-Length: 0

",
        "REQ INVITE sips:alice@[::1]:5061;transport=tls | vias=3 top=TLS z9hG4bKv6a | from-tag=v6 | cseq=10 INVITE | call-id=v6@[2001:db8::2] | body=0",
    );
    // Escaped characters and a ';' in the user part (RFC 4475 §3.1.1.2/3).
    check(
        &options(BASE_HEADERS).replace(
            "OPTIONS sip:callee@example.test",
            "OPTIONS sip:%63allee;par=u%40example.net@example.test",
        ),
        "REQ OPTIONS sip:%63allee;par=u%40example.net@example.test | vias=1 top=UDP z9hG4bKt1 | from-tag=ft | cseq=1 OPTIONS | call-id=torture-1 | body=0",
    );
    // Unknown URI schemes in header fields and in the Request-URI.
    check(
        &options(&BASE_HEADERS.replace("To: <sip:callee@example.test>", "To: <urn:service:sos>"))
            .replace("sip:callee@example.test SIP", "tel:+15555550123 SIP"),
        "REQ OPTIONS tel:+15555550123 | vias=1 top=UDP z9hG4bKt1 | from-tag=ft | cseq=1 OPTIONS | call-id=torture-1 | body=0",
    );
    // Unknown method with matching CSeq, and bare-LF line ends.
    let bare_lf = "NEWMETHOD sip:x@example.test SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bKlf\nFrom: <sip:a@b>;tag=1\nTo: <sip:x@example.test>\nCall-ID: lf\nCSeq: 3 NEWMETHOD\n\n";
    assert_eq!(
        crate::summary(bare_lf.as_bytes()),
        "REQ NEWMETHOD sip:x@example.test | vias=1 top=UDP z9hG4bKlf | from-tag=1 | cseq=3 NEWMETHOD | call-id=lf | body=0"
    );
    // Leading CRLFs before the start line are ignored (RFC 3261 §7.5).
    check(
        &format!("\n\n{}", options(BASE_HEADERS)),
        "REQ OPTIONS sip:callee@example.test | vias=1 top=UDP z9hG4bKt1 | from-tag=ft | cseq=1 OPTIONS | call-id=torture-1 | body=0",
    );
    // An identical repeated header is tolerated.
    check(
        &options(&format!("{BASE_HEADERS}Call-ID: torture-1\n")),
        "REQ OPTIONS sip:callee@example.test | vias=1 top=UDP z9hG4bKt1 | from-tag=ft | cseq=1 OPTIONS | call-id=torture-1 | body=0",
    );
}

#[test]
fn torture_invalid() {
    let cases: &[(&str, &str)] = &[
        // RFC 4475 §3.1.2.6-style: extra spaces in the request line.
        (
            "OPTIONS  sip:callee@example.test SIP/2.0",
            "ERR Malformed Start Line => SIP/2.0 400 Malformed Start Line",
        ),
        // White space inside the Request-URI.
        (
            "OPTIONS sip:callee@example.test; unknownparam=4 SIP/2.0",
            "ERR Malformed Start Line => SIP/2.0 400 Malformed Start Line",
        ),
        (
            "OPTIONS sip:callee@example.test SIP/7.0",
            "ERR Version Not Supported => SIP/2.0 505 Version Not Supported",
        ),
        (
            "OPTIONS sip:callee@exa%mple.test SIP/2.0",
            "ERR Malformed URI: host => SIP/2.0 400 Malformed URI: host",
        ),
        (
            "OPTIONS <sip:callee@example.test> SIP/2.0",
            "ERR Malformed URI: scheme => SIP/2.0 400 Malformed URI: scheme",
        ),
    ];
    for (start, expected) in cases {
        check(
            &options(BASE_HEADERS).replace("OPTIONS sip:callee@example.test SIP/2.0", start),
            expected,
        );
    }
    let header_cases: &[(&str, &str, &str)] = &[
        (
            "Call-ID: torture-1\n",
            "",
            "ERR Missing Call-ID Header => SIP/2.0 400 Missing Call-ID Header",
        ),
        (
            "CSeq: 1 OPTIONS",
            "CSeq: 1 INVITE",
            "ERR CSeq Method Does Not Match Request => SIP/2.0 400 CSeq Method Does Not Match Request",
        ),
        (
            "CSeq: 1 OPTIONS",
            "CSeq: 36893488147419103232 OPTIONS",
            "ERR Malformed CSeq Header => SIP/2.0 400 Malformed CSeq Header",
        ),
        (
            "CSeq: 1 OPTIONS",
            "CSeq: 1 OPTIONS\nCSeq: 2 OPTIONS",
            "ERR Duplicate CSeq Header => SIP/2.0 400 Duplicate CSeq Header",
        ),
        (
            "From: <sip:caller@example.test>;tag=ft",
            "From: \"Caller <sip:caller@example.test>;tag=ft",
            "ERR Malformed From Header => SIP/2.0 400 Malformed From Header",
        ),
        (
            "To: <sip:callee@example.test>",
            "To: <sip:callee@example.test",
            "ERR Malformed To Header => SIP/2.0 400 Malformed To Header",
        ),
        (
            "Max-Forwards: 70\n",
            "Max-Forwards: 70\nContent-Length: 99999999999\n",
            "ERR Malformed Content-Length => SIP/2.0 400 Malformed Content-Length",
        ),
        (
            "Max-Forwards: 70\n",
            "Max-Forwards: 70\nContent-Length: 10\n",
            "ERR Body Shorter Than Content-Length => SIP/2.0 400 Body Shorter Than Content-Length",
        ),
        (
            "Max-Forwards: 70\n",
            "Max-Forwards: 70\nX-Nul: a\0b\n",
            "ERR Malformed Header Line => SIP/2.0 400 Malformed Header Line",
        ),
        (
            "Max-Forwards: 70\n",
            "Max-Forwards: 70\nNo colon here\n",
            "ERR Malformed Header Line => SIP/2.0 400 Malformed Header Line",
        ),
        (
            "Via: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bKt1",
            "Via: SIP/2.0/UDP",
            "ERR Malformed Via Header => no response: no usable Via",
        ),
        (
            "Via: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bKt1\n",
            "",
            "ERR Missing Via Header => no response: no usable Via",
        ),
    ];
    for (from, to, expected) in header_cases {
        check(&options(&BASE_HEADERS.replace(from, to)), expected);
    }
    // A malformed ACK is never answered.
    check(
        &options(&BASE_HEADERS.replace("Call-ID: torture-1\n", "")).replace("OPTIONS sip", "ACK sip"),
        "ERR Missing Call-ID Header => no response: malformed ACK",
    );
    // Non-UTF-8 in the header section.
    let mut bytes = wire(&options(BASE_HEADERS));
    let at = bytes.len() - 4;
    bytes.insert(at, 0xff);
    assert_eq!(
        crate::summary(&bytes),
        "ERR Header Section Not UTF-8 => SIP/2.0 400 Header Section Not UTF-8"
    );
    // Too large: 513.
    let huge = options(&format!("{BASE_HEADERS}X-Pad: {}\n", "a".repeat(70_000)));
    check(&huge, "ERR Message Too Large => SIP/2.0 513 Message Too Large");
    // No end of headers at all.
    check(
        "OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1",
        "ERR Missing End of Headers => SIP/2.0 400 Missing End of Headers",
    );
}
