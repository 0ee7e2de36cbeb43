//! Request dispatch: every SIP message from every transport comes here.

use super::registrar::{BindingEntry, Registrar};
use super::transport::{FlowId, Flows, Proto, Source, TransportConfig};
use crate::calls::Calls;
use crate::plugins::Policy;
use pbx_sip::response::{bad_request, fill_received, response_to};
use pbx_sip::{HeaderName, Message, Method, ParseConfig, Request};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Methods the PBX answers (the `Allow` header).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER";
/// How long a response to a non-INVITE request over UDP is kept to answer
/// retransmissions (Timer J, 64·T1).
const RETRANSMIT_WINDOW: Duration = Duration::from_secs(32);

/// Counters of the SIP service (drops of bad input among them).
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests that could not be parsed (answered 400 where possible).
    pub bad_requests: AtomicU64,
    /// Responses or other messages dropped (malformed, unexpected).
    pub dropped: AtomicU64,
    /// Retransmissions answered from the cache.
    pub retransmissions: AtomicU64,
    /// Registered phones that answered an OPTIONS qualify.
    pub qualify_answers: AtomicU64,
    /// Connections refused at the connection cap.
    pub connections_refused: AtomicU64,
    /// Failed TLS handshakes (garbage, timeouts, protocol errors).
    pub tls_failures: AtomicU64,
    /// Stream connections closed for framing errors or timeouts.
    pub stream_errors: AtomicU64,
    /// Connections the PBX failed to open (refused, timed out, TLS
    /// certificate or handshake failures).
    pub connect_failures: AtomicU64,
}

/// The SIP service's shared state.
pub struct Core {
    /// Open stream connections.
    pub flows: Arc<Flows>,
    /// The registrar.
    pub registrar: Registrar,
    /// Counters.
    pub counters: Counters,
    /// Transport limits.
    pub transport: TransportConfig,
    parse: ParseConfig,
    /// Responses to recent UDP non-INVITE requests, by transaction key.
    answered: Mutex<HashMap<String, (Instant, Vec<u8>)>>,
    /// UDP sockets by local address, to send requests to UDP phones.
    udp: Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>,
    /// OPTIONS sent to registered phones, by Call-ID.
    qualifying: Mutex<HashMap<String, (String, Instant)>>,
    /// The calls (B2BUA) and their media relay.
    pub calls: Calls,
    /// The policy plugins.
    pub policy: Arc<Policy>,
}

/// Why a request could not be sent to a registered phone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection the phone registered over is gone (or its queue is
    /// full); the phone must register again.
    #[error("the phone's connection is gone")]
    FlowGone,
    /// No socket for the binding's local address.
    #[error("no socket for the binding")]
    NoSocket,
}

impl Core {
    /// A core with `registrar`.
    pub fn new(
        registrar: Registrar,
        transport: TransportConfig,
        flows: Arc<Flows>,
        calls: Calls,
        policy: Arc<Policy>,
    ) -> Arc<Core> {
        Arc::new(Core {
            calls,
            policy,
            flows,
            registrar,
            counters: Counters::default(),
            parse: ParseConfig {
                max_size: transport.max_message,
            },
            transport,
            answered: Mutex::new(HashMap::new()),
            udp: Mutex::new(HashMap::new()),
            qualifying: Mutex::new(HashMap::new()),
        })
    }

    /// Handle one message; returns the response to send back the way it
    /// came, if any.
    pub async fn handle(self: &Arc<Self>, bytes: &[u8], source: &Source) -> Option<Vec<u8>> {
        let request = match Message::parse(bytes, &self.parse) {
            Ok(Message::Request(r)) => r,
            Ok(Message::Response(r)) => {
                // Responses to calls go to their call task.
                let r = self.calls.on_response(r)?;
                let asked = self
                    .qualifying
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(r.call_id());
                match asked {
                    Some((aor, sent)) if r.status() >= 200 => {
                        self.counters.qualify_answers.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%source, aor, status = r.status(), rtt = ?sent.elapsed(), "qualify answered");
                    }
                    _ => {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                return None;
            }
            Err(e) => {
                return match bad_request(bytes, &e, &new_tag()) {
                    Ok(reply) => {
                        self.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%source, "malformed request answered with an error: {e}");
                        Some(reply)
                    }
                    Err(why) => {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%source, "malformed message dropped ({why}): {e}");
                        None
                    }
                };
            }
        };
        let key = (source.proto == Proto::Udp && *request.method() != Method::Invite)
            .then(|| transaction_key(&request, source));
        if let Some(key) = &key
            && let Some(reply) = self.cached(key)
        {
            self.counters.retransmissions.fetch_add(1, Ordering::Relaxed);
            return Some(reply);
        }
        let reply = self.dispatch(request, source).await;
        if let (Some(key), Some(reply)) = (key, &reply) {
            self.remember(key, reply.clone());
        }
        reply
    }

    async fn dispatch(self: &Arc<Self>, mut request: Request, source: &Source) -> Option<Vec<u8>> {
        fill_received(&mut request, source.remote);
        let method = request.method().clone();
        let in_dialog = request.to().tag().is_some() && self.calls.knows(request.call_id());
        let response = match method {
            Method::Register => self.registrar.register(&request, source).await,
            Method::Invite | Method::Ack | Method::Cancel | Method::Bye => Calls::on_request(self, request, source),
            Method::Options if in_dialog => Calls::on_request(self, request, source),
            Method::Options => {
                let mut r = response_to(&request, 200, None).ok()?;
                r.push_header(HeaderName::ALLOW, ALLOW).ok()?;
                r.push_header(HeaderName::ACCEPT, "application/sdp").ok()?;
                r.push_header(HeaderName::SUPPORTED, "outbound, path").ok()?;
                Some(r)
            }
            _ => {
                let mut r = response_to(&request, 501, None).ok()?;
                r.push_header(HeaderName::ALLOW, ALLOW).ok()?;
                Some(r)
            }
        }?;
        let mut response = response;
        if response.to().tag().is_none() && response.status() != 100 {
            let _ = response.set_to_tag(&new_tag());
        }
        let _ = response.push_header(HeaderName::SERVER, concat!("pbx/", env!("CARGO_PKG_VERSION")));
        Some(response.to_bytes())
    }

    /// Remember a UDP socket, so requests can leave from it.
    pub fn add_udp_socket(&self, socket: Arc<UdpSocket>) {
        if let Ok(local) = socket.local_addr() {
            self.udp.lock().unwrap_or_else(|p| p.into_inner()).insert(local, socket);
        }
    }

    /// Send `bytes` to a registered phone the way it registered: over its
    /// flow for TCP and TLS (never a new connection, which NAT would
    /// block), from the socket it registered to for UDP.
    pub async fn send_to_binding(&self, binding: &BindingEntry, bytes: Vec<u8>) -> Result<(), SendError> {
        self.send(&binding.source, bytes).await
    }

    /// Send `bytes` back the way `dest` came: over its flow for TCP and
    /// TLS, from the UDP socket it arrived at for UDP.
    pub async fn send(&self, dest: &Source, bytes: Vec<u8>) -> Result<(), SendError> {
        match dest.proto {
            Proto::Udp => {
                let socket = self
                    .udp
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&dest.local)
                    .cloned();
                let socket = socket.ok_or(SendError::NoSocket)?;
                socket
                    .send_to(&bytes, dest.remote)
                    .await
                    .map_err(|_| SendError::NoSocket)?;
                Ok(())
            }
            Proto::Tcp | Proto::Tls => match dest.flow {
                Some(flow) if self.flows.send(flow, bytes) => Ok(()),
                _ => Err(SendError::FlowGone),
            },
        }
    }

    /// A UDP "source" toward `remote` (a trunk): one of our UDP sockets of
    /// the same address family.
    pub fn udp_source(&self, remote: SocketAddr) -> Option<Source> {
        let udp = self.udp.lock().unwrap_or_else(|p| p.into_inner());
        let local = udp
            .keys()
            .filter(|l| l.is_ipv4() == remote.is_ipv4())
            .min_by_key(|l| (l.ip().is_loopback() != remote.ip().is_loopback(), l.port()))?;
        Some(Source {
            proto: Proto::Udp,
            remote,
            local: *local,
            flow: None,
        })
    }

    /// Send an OPTIONS to every binding of `extension@domain` (a "qualify":
    /// is the phone alive, and is its NAT binding kept open). Returns how
    /// many were sent; answers are counted in
    /// [`Counters::qualify_answers`].
    pub async fn qualify(&self, domain: &str, extension: &str) -> usize {
        let mut sent = 0;
        for b in self.registrar.lookup(domain, extension) {
            let call_id = format!("{}@pbx", new_tag());
            let request = format!(
                "OPTIONS {contact} SIP/2.0\r\nVia: SIP/2.0/{proto} {local};branch=z9hG4bK{branch};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:pbx@{domain}>;tag={tag}\r\nTo: <{contact}>\r\nCall-ID: {call_id}\r\n\
                 CSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n",
                contact = b.contact,
                proto = b.source.proto.as_str(),
                local = b.source.local,
                branch = new_tag(),
                tag = new_tag(),
            );
            self.qualifying
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(call_id, (format!("{extension}@{domain}"), Instant::now()));
            if self.send_to_binding(&b, request.into_bytes()).await.is_ok() {
                sent += 1;
            }
        }
        sent
    }

    /// A stream connection closed: its registrations become unreachable,
    /// and a trunk it led to is connected again on its next request.
    pub fn on_flow_closed(&self, flow: FlowId) {
        self.registrar.flow_closed(flow);
        self.calls.flow_closed(flow);
    }

    fn cached(&self, key: &str) -> Option<Vec<u8>> {
        let map = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(t, _)| t.elapsed() < RETRANSMIT_WINDOW)
            .map(|(_, r)| r.clone())
    }

    fn remember(&self, key: String, reply: Vec<u8>) {
        let mut map = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= 4096 {
            map.retain(|_, (t, _)| t.elapsed() < RETRANSMIT_WINDOW);
        }
        if map.len() < 65_536 {
            map.insert(key, (Instant::now(), reply));
        }
    }
}

/// RFC 3261 §17.2.3 server transaction key: branch, sent-by and method.
fn transaction_key(request: &Request, source: &Source) -> String {
    let via = request.top_via();
    format!(
        "{}|{}|{}|{}",
        via.branch().unwrap_or(""),
        source.remote,
        request.cseq().method,
        request.call_id()
    )
}

/// A random tag or identifier (RFC 3261 §19.3: at least 32 random bits).
pub fn new_tag() -> String {
    // Operating-system randomness, fetched 512 bytes at a time: a tag per
    // response must not cost a system call each.
    thread_local! {
        static POOL: std::cell::RefCell<([u8; 512], usize)> = const { std::cell::RefCell::new(([0; 512], 512)) };
    }
    let mut b = [0u8; 8];
    POOL.with_borrow_mut(|(pool, used)| {
        if *used + b.len() > pool.len() {
            if getrandom::fill(pool).is_err() {
                // No OS randomness: fall back to a fresh call per tag.
                let _ = getrandom::fill(&mut b);
                return;
            }
            *used = 0;
        }
        b.copy_from_slice(&pool[*used..*used + 8]);
        // Each byte handed out once.
        pool[*used..*used + 8].fill(0);
        *used += 8;
    });
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut tag = String::with_capacity(16);
    for x in b {
        tag.push(char::from(HEX[usize::from(x >> 4)]));
        tag.push(char::from(HEX[usize::from(x & 15)]));
    }
    tag
}

#[cfg(test)]
mod tests {
    use super::new_tag;

    #[test]
    fn tags_are_hex_and_distinct_across_pool_refills() {
        let tags: std::collections::HashSet<String> = (0..1000).map(|_| new_tag()).collect();
        assert_eq!(tags.len(), 1000);
        assert!(
            tags.iter()
                .all(|t| t.len() == 16 && t.bytes().all(|c| c.is_ascii_hexdigit()))
        );
    }
}
