//! Matching messages to transactions (RFC 3261 §17.1.3 and §17.2.3).

use crate::message::{Host, MAGIC_COOKIE, Method, Request, Response, Transport, Via};

/// Identifies a transaction so a transport can find it in a map.
///
/// For RFC 3261 peers (branch starting with `z9hG4bK`) the key is the top
/// Via branch plus the method, and on the server side also the sent-by,
/// because two clients could pick the same branch. An ACK is keyed as the
/// INVITE it acknowledges, so it finds the INVITE server transaction; a
/// CANCEL keeps its own method and so gets its own transaction (see
/// [`TransactionKey::cancelled_invite`]).
///
/// For RFC 2543 peers (no magic cookie) the server key falls back to
/// Call-ID, From tag, CSeq number and the top Via, a simplification of
/// §17.2.3's rules that is enough to absorb retransmissions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    role: Role,
    branch: String,
    method: Method,
    sent_by: Option<(Host, u16)>,
    legacy: Option<(String, Option<String>, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Client,
    Server,
}

impl TransactionKey {
    /// The key of the client transaction that sends `request`.
    pub fn client(request: &Request) -> Self {
        Self::client_key(request.top_via(), request.method())
    }

    /// The key of the client transaction a received response belongs to:
    /// top Via branch and CSeq method (§17.1.3).
    pub fn for_response(response: &Response) -> Self {
        Self::client_key(response.top_via(), &response.cseq().method)
    }

    /// The key of the server transaction for a received request (§17.2.3).
    pub fn server(request: &Request) -> Self {
        let method = match request.method() {
            Method::Ack => Method::Invite,
            m => m.clone(),
        };
        Self::server_key(request, method)
    }

    /// For a received CANCEL, the key of the INVITE server transaction it
    /// cancels (same branch and sent-by, method INVITE; RFC 3261 §9.2).
    pub fn cancelled_invite(cancel: &Request) -> Option<Self> {
        (cancel.method() == &Method::Cancel).then(|| Self::server_key(cancel, Method::Invite))
    }

    fn client_key(via: &Via, method: &Method) -> Self {
        Self {
            role: Role::Client,
            branch: via.branch().unwrap_or_default().to_owned(),
            method: method.clone(),
            sent_by: None,
            legacy: None,
        }
    }

    fn server_key(request: &Request, method: Method) -> Self {
        let via = request.top_via();
        let sent_by = Some((
            via.host.normalized(),
            via.port.unwrap_or_else(|| default_port(&via.transport)),
        ));
        let branch = via.branch().unwrap_or_default();
        let legacy = (!branch.starts_with(MAGIC_COOKIE)).then(|| {
            (
                request.call_id().to_owned(),
                request.from().tag().map(str::to_owned),
                request.cseq().seq,
            )
        });
        Self {
            role: Role::Server,
            branch: branch.to_owned(),
            method,
            sent_by,
            legacy,
        }
    }
}

/// The port a sent-by without one means (RFC 3261 §18.1.1, §26.2).
fn default_port(transport: &Transport) -> u16 {
    match transport {
        Transport::Tls | Transport::Wss => 5061,
        _ => 5060,
    }
}
