//! Small helpers over the URIs a [`Call`](crate::Call) carries, so plugins
//! need no URI parser of their own.

use crate::Call;

/// True when `uri` has the `sips:` scheme (case-insensitive): the caller
/// asks for security end-to-end.
pub fn uri_is_sips(uri: &str) -> bool {
    uri.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
}

/// The user part of a SIP URI (`200` in `sips:200@example.com;user=phone`),
/// percent-escapes left as they are. `None` when the URI has no user part.
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = strip_scheme(uri)?;
    let at = rest.find('@')?;
    let user = &rest[..at];
    // A user part may carry a password (`user:pw@host`) or parameters
    // (`user;tgrp=x@host`); neither is part of the user.
    let end = user.find([':', ';']).unwrap_or(user.len());
    Some(&user[..end]).filter(|u| !u.is_empty())
}

/// The host part of a SIP URI, lower-cased by the caller if needed
/// (`example.com` in `sip:200@example.com:5061;transport=tls`, `[::1]` for
/// an IPv6 reference).
pub fn uri_host(uri: &str) -> Option<&str> {
    let rest = strip_scheme(uri)?;
    let hostport = match rest.find('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let hostport = &hostport[..hostport.find([';', '?', '>']).unwrap_or(hostport.len())];
    let host = if hostport.starts_with('[') {
        &hostport[..hostport.find(']').map_or(hostport.len(), |i| i + 1)]
    } else {
        &hostport[..hostport.find(':').unwrap_or(hostport.len())]
    };
    Some(host).filter(|h| !h.is_empty())
}

fn strip_scheme(uri: &str) -> Option<&str> {
    let uri = uri.trim();
    if uri_is_sips(uri) {
        Some(&uri[5..])
    } else if uri.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("sip:")) {
        Some(&uri[4..])
    } else {
        None
    }
}

impl Call {
    /// True when the Request-URI is `sips:`.
    pub fn is_sips(&self) -> bool {
        uri_is_sips(&self.request_uri)
    }

    /// The user part of the Request-URI: usually the dialled number.
    pub fn dialled(&self) -> Option<&str> {
        uri_user(&self.request_uri)
    }

    /// The passed headers as (name, value) pairs.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim(), v.trim()))
    }

    /// The subject of the verified TLS client certificate the caller's
    /// connection presented, as an RFC 4514 string (`CN=phone-100,O=Example`);
    /// `None` over UDP and TCP and when the phone presented no certificate.
    /// The host verified the certificate against its client-CA bundle.
    pub fn client_cert_subject(&self) -> Option<&str> {
        self.client_cert_subject.as_deref()
    }

    /// The first passed header called `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_block() {
        let call = Call {
            call_id: "c".into(),
            request_uri: "sip:1@x".into(),
            from_uri: "sip:2@x".into(),
            from_display: None,
            to_uri: "sip:1@x".into(),
            domain: "x".into(),
            caller: crate::Caller::Anonymous,
            source_transport: crate::Transport::Udp,
            source_addr: "127.0.0.1:5060".into(),
            client_cert_subject: None,
            caller_srtp: false,
            headers: "User-Agent: snom D785\r\nPriority: emergency".into(),
        };
        assert_eq!(call.client_cert_subject(), None);
        assert_eq!(call.header("user-agent"), Some("snom D785"));
        assert_eq!(call.header("Priority"), Some("emergency"));
        assert_eq!(call.header("Subject"), None);
        assert_eq!(call.headers().count(), 2);
    }

    #[test]
    fn user_and_host() {
        assert_eq!(uri_user("sips:200@example.com;user=phone"), Some("200"));
        assert_eq!(uri_user("sip:+4930123:pw@gw"), Some("+4930123"));
        assert_eq!(uri_user("sip:example.com"), None);
        assert_eq!(uri_user("tel:+1"), None);
        assert_eq!(uri_host("sip:200@Example.com:5061;transport=tls"), Some("Example.com"));
        assert_eq!(uri_host("sip:[::1]:5060"), Some("[::1]"));
        assert_eq!(uri_host("sip:gw.example"), Some("gw.example"));
        assert!(uri_is_sips("SIPS:1@x"));
        assert!(!uri_is_sips("sip:1@x"));
        assert!(!uri_is_sips("sip"));
    }
}
