//! Request dispatch: every SIP message from every transport comes here.

use super::registrar::Registrar;
use super::transport::{FlowId, Flows, Source, TransportConfig};
use pbx_sip::response::{bad_request, fill_received, response_to};
use pbx_sip::{HeaderName, Message, Method, ParseConfig, Request};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Connections refused at the connection cap.
    pub connections_refused: AtomicU64,
    /// Failed TLS handshakes (garbage, timeouts, protocol errors).
    pub tls_failures: AtomicU64,
    /// Stream connections closed for framing errors or timeouts.
    pub stream_errors: AtomicU64,
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
}

impl Core {
    /// A core with `registrar`.
    pub fn new(registrar: Registrar, transport: TransportConfig, flows: Arc<Flows>) -> Arc<Core> {
        Arc::new(Core {
            flows,
            registrar,
            counters: Counters::default(),
            parse: ParseConfig {
                max_size: transport.max_message,
            },
            transport,
            answered: Mutex::new(HashMap::new()),
        })
    }

    /// Handle one message; returns the response to send back the way it
    /// came, if any.
    pub async fn handle(&self, bytes: &[u8], source: &Source) -> Option<Vec<u8>> {
        let request = match Message::parse(bytes, &self.parse) {
            Ok(Message::Request(r)) => r,
            Ok(Message::Response(_)) => {
                // No client transactions yet: nothing expects a response.
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
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
        let key = (source.proto == super::Proto::Udp && *request.method() != Method::Invite)
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

    async fn dispatch(&self, mut request: Request, source: &Source) -> Option<Vec<u8>> {
        fill_received(&mut request, source.remote);
        let method = request.method().clone();
        let response = match method {
            Method::Register => self.registrar.register(&request, source).await,
            Method::Options => {
                let mut r = response_to(&request, 200, None).ok()?;
                r.push_header(HeaderName::ALLOW, ALLOW).ok()?;
                r.push_header(HeaderName::ACCEPT, "application/sdp").ok()?;
                r.push_header(HeaderName::SUPPORTED, "outbound, path").ok()?;
                Some(r)
            }
            Method::Ack => None,
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

    /// A stream connection closed: its registrations become unreachable.
    pub fn on_flow_closed(&self, flow: FlowId) {
        self.registrar.flow_closed(flow);
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
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
