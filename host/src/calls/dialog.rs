//! One leg's dialog (RFC 3261 §12): the identifiers and state needed to
//! send requests inside it (BYE, re-INVITE, ACK for a 2xx).

use crate::sip::{Proto, Source};
use pbx_sip::{Header, HeaderName, Headers, Method, ParseError, Request, Uri};
use std::net::SocketAddr;

/// A dialog as seen from the PBX's side of one leg.
#[derive(Debug, Clone)]
pub(super) struct Dialog {
    /// The leg's Call-ID.
    pub call_id: String,
    /// Our name-addr with our tag (`From` of our requests).
    pub local: String,
    /// Their name-addr with their tag (`To` of our requests).
    pub remote: String,
    /// Their Contact: the Request-URI of our requests.
    pub target: Uri,
    /// The last CSeq number we used.
    pub cseq: u32,
    /// How to reach the peer (its flow for TCP/TLS).
    pub dest: Source,
    /// Our address as written in Via and Contact.
    pub local_addr: SocketAddr,
    /// Our Contact header value.
    pub contact: String,
}

impl Dialog {
    /// A new request in this dialog with the next CSeq number.
    pub fn request(&mut self, method: Method, sdp: Option<Vec<u8>>) -> Result<Request, ParseError> {
        self.cseq += 1;
        let cseq = self.cseq;
        self.build(method, cseq, sdp)
    }

    /// The ACK for a 2xx to our INVITE with CSeq `cseq` (its own branch:
    /// it is a transaction of its own, §13.2.2.4).
    pub fn ack(&self, cseq: u32) -> Result<Request, ParseError> {
        self.build(Method::Ack, cseq, None)
    }

    fn build(&self, method: Method, cseq: u32, sdp: Option<Vec<u8>>) -> Result<Request, ParseError> {
        let mut h = Headers::new();
        h.push(Header::new(HeaderName::VIA, via(self.dest.proto, self.local_addr))?);
        h.push(Header::new(HeaderName::MAX_FORWARDS, "70")?);
        h.push(Header::new(HeaderName::FROM, self.local.clone())?);
        h.push(Header::new(HeaderName::TO, self.remote.clone())?);
        h.push(Header::new(HeaderName::CALL_ID, self.call_id.clone())?);
        h.push(Header::new(HeaderName::CSEQ, format!("{cseq} {method}"))?);
        if method == Method::Invite {
            h.push(Header::new(HeaderName::CONTACT, self.contact.clone())?);
            h.push(Header::new(HeaderName::ALLOW, crate::sip::ALLOW)?);
        }
        h.push(Header::new(HeaderName::CONTENT_LENGTH, "0")?);
        let mut r = Request::from_parts(method, self.target.clone(), h, Vec::new())?;
        if let Some(body) = sdp {
            r.set_body(Some("application/sdp"), body)?;
        }
        Ok(r)
    }
}

/// A Via header value with a fresh RFC 3261 branch.
pub(super) fn via(proto: Proto, local: SocketAddr) -> String {
    format!(
        "SIP/2.0/{} {local};branch=z9hG4bK{};rport",
        proto.as_str(),
        crate::sip::new_tag()
    )
}

/// Our Contact toward a peer reached over `proto`.
///
/// A TLS leg gets `sip:…;transport=tls` even when the call was `sips:`
/// (RFC 3261 §8.1.1.8 asks for a SIPS Contact then): libre-based phones
/// (baresip 1.0) cannot send in-dialog requests to a `sips:` Contact, and
/// the leg's requests travel over its TLS flow either way.
pub(super) fn contact(proto: Proto, local: SocketAddr) -> String {
    match proto {
        Proto::Udp => format!("<sip:pbx@{local}>"),
        Proto::Tcp => format!("<sip:pbx@{local};transport=tcp>"),
        Proto::Tls => format!("<sip:pbx@{local};transport=tls>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog() -> Dialog {
        Dialog {
            call_id: "c1@pbx".into(),
            local: "<sip:100@example.test>;tag=ours".into(),
            remote: "<sip:200@example.test>;tag=theirs".into(),
            target: "sip:200@192.0.2.7:5061;transport=tls".parse().unwrap(),
            cseq: 1,
            dest: Source {
                proto: Proto::Tls,
                remote: "192.0.2.7:40000".parse().unwrap(),
                local: "192.0.2.1:5061".parse().unwrap(),
                flow: None,
            },
            local_addr: "192.0.2.1:5061".parse().unwrap(),
            contact: contact(Proto::Tls, "192.0.2.1:5061".parse().unwrap()),
        }
    }

    #[test]
    fn in_dialog_requests_count_cseq_and_keep_the_tags() {
        let mut d = dialog();
        let bye = d.request(Method::Bye, None).unwrap();
        assert_eq!(bye.cseq().seq, 2);
        assert_eq!(bye.from().tag(), Some("ours"));
        assert_eq!(bye.to().tag(), Some("theirs"));
        assert_eq!(bye.uri().to_string(), "sip:200@192.0.2.7:5061;transport=tls");
        assert!(bye.top_via().has_rfc3261_branch());
        let reinvite = d.request(Method::Invite, Some(b"v=0\r\n".to_vec())).unwrap();
        assert_eq!(reinvite.cseq().seq, 3);
        assert_eq!(reinvite.body(), b"v=0\r\n");
        assert!(reinvite.headers().get(&HeaderName::CONTACT).is_some());
        let ack = d.ack(3).unwrap();
        assert_eq!(ack.cseq().seq, 3);
        assert_ne!(ack.top_via().branch(), reinvite.top_via().branch());
    }
}
