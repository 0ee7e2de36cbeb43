//! Trunks: how the PBX reaches them, and its registration at them.
//!
//! A UDP trunk is reached from one of the PBX's UDP sockets. A TCP or TLS
//! trunk is reached over one connection the PBX opens on demand (the first
//! call or REGISTER), reuses for every later request, and opens again after
//! it dropped ([`TrunkLinks`]); it is a flow like an accepted connection, so
//! responses and the trunk's own requests (its inbound calls, recognised by
//! that connection) arrive through the SIP core. A TLS trunk's certificate
//! is verified against its CA bundle; a failure fails the request, never
//! falls back to anything less.
//!
//! Outbound registration: the PBX registers itself at a gateway (with
//! digest credentials) and refreshes the registration before it expires,
//! so the provider routes inbound calls to it; over TCP/TLS it registers
//! again as soon as the connection drops.

use super::{Input, StartError, TrunkConfig};
use crate::sip::{ConnectError, Core, FlowId, Proto, Source, new_tag};
use crate::tls::TlsClient;
use pbx_sip::auth::ServerChallenge;
use pbx_sip::transaction::{ClientNonInvite, Event, Reliability, Timers};
use pbx_sip::{Header, HeaderName, Headers, Method, Request, Response, Uri};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// Why a trunk cannot be reached. The text is what the caller is told
/// (in a `Warning`) and what the log says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrunkError {
    /// No UDP socket of the trunk's address family.
    #[error("no UDP socket toward the trunk")]
    NoUdpSocket,
    /// The connection to a TCP/TLS trunk could not be opened.
    #[error("trunk {0}")]
    Connect(#[from] ConnectError),
}

/// The PBX's connections to its TCP/TLS trunks, one per trunk.
pub(super) struct TrunkLinks {
    links: HashMap<String, Link>,
}

struct Link {
    address: SocketAddr,
    /// The certificate check, for a TLS trunk.
    tls: Option<TlsClient>,
    /// Held while connecting, so that concurrent first requests share one
    /// connection.
    connecting: tokio::sync::Mutex<()>,
    /// The open connection.
    current: Mutex<Option<Source>>,
    /// Told when the connection closes (a registering trunk registers
    /// again at once).
    closed: Notify,
}

impl TrunkLinks {
    /// A link per TCP/TLS trunk; a TLS trunk's CA bundle is loaded now.
    pub(super) fn new(trunks: &[TrunkConfig]) -> Result<TrunkLinks, StartError> {
        let mut links = HashMap::new();
        for t in trunks.iter().filter(|t| t.transport != Proto::Udp) {
            let tls = match (&t.tls, t.transport) {
                (Some(tls), Proto::Tls) => Some(TlsClient::new(&tls.ca, tls.server_name.clone()).map_err(
                    |source| StartError::TrunkCa {
                        trunk: t.name.clone(),
                        source,
                    },
                )?),
                (None, Proto::Tls) => return Err(StartError::TrunkTls { trunk: t.name.clone() }),
                _ => None,
            };
            links.insert(
                t.name.clone(),
                Link {
                    address: t.address,
                    tls,
                    connecting: tokio::sync::Mutex::new(()),
                    current: Mutex::new(None),
                    closed: Notify::new(),
                },
            );
        }
        Ok(TrunkLinks { links })
    }

    /// The open connection to trunk `name`.
    pub(super) fn current(&self, name: &str) -> Option<Source> {
        *self.links.get(name)?.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The trunk whose connection is `flow`.
    pub(super) fn trunk_of(&self, flow: FlowId) -> Option<String> {
        self.links
            .iter()
            .find(|(_, l)| l.current.lock().unwrap_or_else(|p| p.into_inner()).and_then(|s| s.flow) == Some(flow))
            .map(|(name, _)| name.clone())
    }

    /// `flow` closed: if it was a trunk's connection, forget it.
    pub(super) fn closed(&self, flow: FlowId) {
        for (name, link) in &self.links {
            let mut current = link.current.lock().unwrap_or_else(|p| p.into_inner());
            if current.and_then(|s| s.flow) == Some(flow) {
                *current = None;
                link.closed.notify_one();
                tracing::info!(trunk = name, address = %link.address, "the connection to the trunk closed");
            }
        }
    }
}

/// How to send to `trunk` now: from a UDP socket, or over its connection,
/// opened first if there is none (or it dropped).
pub(super) async fn dest(core: &Arc<Core>, trunk: &TrunkConfig) -> Result<Source, TrunkError> {
    let Some(link) = core.calls.links.links.get(&trunk.name) else {
        return core.udp_source(trunk.address).ok_or(TrunkError::NoUdpSocket);
    };
    let open = |link: &Link| {
        let current = *link.current.lock().unwrap_or_else(|p| p.into_inner());
        current.filter(|s| s.flow.is_some_and(|f| core.flows.is_open(f)))
    };
    if let Some(source) = open(link) {
        return Ok(source);
    }
    let _connecting = link.connecting.lock().await;
    if let Some(source) = open(link) {
        return Ok(source);
    }
    match crate::sip::connect(core, link.address, link.tls.as_ref()).await {
        Ok(source) => {
            *link.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(source);
            if !source.flow.is_some_and(|f| core.flows.is_open(f)) {
                // Closed before it was recorded: `closed` did not see it.
                *link.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
                return Err(TrunkError::Connect(ConnectError::Io("closed at once".into())));
            }
            tracing::info!(trunk = trunk.name, %source, local = %source.local, "connected to the trunk");
            Ok(source)
        }
        Err(e) => {
            let e = TrunkError::from(e);
            tracing::warn!(trunk = trunk.name, address = %trunk.address, "cannot reach the trunk: {e}");
            Err(e)
        }
    }
}

/// Where a trunk registration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrunkStatus {
    /// Registered until about this many seconds after the last refresh.
    Registered {
        /// The expiry the trunk granted.
        expires: u32,
    },
    /// The last attempt failed (`reason`); retried after a back-off.
    Failed {
        /// Why (a status line or "no answer").
        reason: String,
    },
}

/// Register at `trunk` and refresh forever (the task is aborted with the
/// PBX). Over TCP/TLS, the registration goes over the trunk's connection
/// (opening it if needed), and a dropped connection is registered again
/// at once: the provider reaches the PBX only over it.
pub(super) async fn keep_registered(core: Arc<Core>, trunk: TrunkConfig) {
    let (Some(auth), Some(expires)) = (&trunk.auth, trunk.register) else {
        return;
    };
    let call_id = format!("{}@pbx", new_tag());
    let (tx, mut rx) = mpsc::channel(16);
    core.calls.register(&call_id, tx);
    let tag = new_tag();
    let mut cseq = 0u32;
    let mut backoff = Duration::from_secs(5);
    loop {
        let outcome = match dest(&core, &trunk).await {
            Ok(dest) => {
                let local = SocketAddr::new(core.calls.advertised_ip(&dest), dest.local.port());
                register_once(
                    &core, &trunk, auth, expires, dest, local, &call_id, &tag, &mut cseq, &mut rx,
                )
                .await
            }
            Err(e) => Err(e.to_string()),
        };
        let registered = outcome.is_ok();
        let wait = match outcome {
            Ok(granted) => {
                tracing::info!(trunk = trunk.name, expires = granted, "registered to the trunk");
                core.calls
                    .set_trunk_status(&trunk.name, TrunkStatus::Registered { expires: granted });
                backoff = Duration::from_secs(5);
                // Refresh well before expiry.
                Duration::from_secs(u64::from(granted) * 4 / 5).max(Duration::from_secs(10))
            }
            Err(reason) => {
                tracing::warn!(trunk = trunk.name, "trunk registration failed: {reason}");
                core.calls.set_trunk_status(&trunk.name, TrunkStatus::Failed { reason });
                backoff = (backoff * 2).min(Duration::from_secs(300));
                backoff
            }
        };
        let dropped = async {
            match core.calls.links.links.get(&trunk.name) {
                Some(link) if registered => link.closed.notified().await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = dropped => {
                tracing::info!(trunk = trunk.name, "registering again over a new connection");
                // A peer that closes every connection must not be hammered.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One REGISTER, answering at most one challenge; the expiry granted.
#[allow(clippy::too_many_arguments)]
async fn register_once(
    core: &Arc<Core>,
    trunk: &TrunkConfig,
    auth: &super::TrunkAuth,
    expires: u32,
    dest: Source,
    local: SocketAddr,
    call_id: &str,
    tag: &str,
    cseq: &mut u32,
    rx: &mut mpsc::Receiver<Input>,
) -> Result<u32, String> {
    let host = trunk.address.to_string();
    let param = transport_param(dest.proto);
    let uri: Uri = format!("sip:{host}{param}")
        .parse()
        .map_err(|_| "bad trunk address".to_string())?;
    let mut credentials: Option<(HeaderName, String)> = None;
    for _ in 0..2 {
        *cseq += 1;
        let mut h = Headers::new();
        let header = |name: HeaderName, v: String| Header::new(name, v).map_err(|e| e.to_string());
        h.push(header(HeaderName::VIA, super::dialog::via(dest.proto, local))?);
        h.push(header(HeaderName::MAX_FORWARDS, "70".into())?);
        let aor = format!("<sip:{}@{host}>", auth.username);
        h.push(header(HeaderName::FROM, format!("{aor};tag={tag}"))?);
        h.push(header(HeaderName::TO, aor)?);
        h.push(header(HeaderName::CALL_ID, call_id.to_string())?);
        h.push(header(HeaderName::CSEQ, format!("{cseq} REGISTER"))?);
        h.push(header(
            HeaderName::CONTACT,
            format!("<sip:{}@{local}{param}>", auth.username),
        )?);
        h.push(header(HeaderName::EXPIRES, expires.to_string())?);
        if let Some((name, value)) = &credentials {
            h.push(header(name.clone(), value.clone())?);
        }
        h.push(header(HeaderName::CONTENT_LENGTH, "0".into())?);
        let request = Request::from_parts(Method::Register, uri.clone(), h, Vec::new()).map_err(|e| e.to_string())?;
        let response = transact(core, dest, request, rx)
            .await
            .ok_or_else(|| "no answer".to_string())?;
        match response.status() {
            200..=299 => return Ok(granted(&response, expires)),
            status @ (401 | 407) if credentials.is_none() => {
                let (kind, challenge) = ServerChallenge::from_response(&response)
                    .ok_or_else(|| format!("{status} without a usable challenge"))?;
                let answer = challenge.answer(
                    "REGISTER",
                    &uri.to_string(),
                    &auth.username,
                    auth.password.expose(),
                    &new_tag(),
                    1,
                );
                credentials = Some((kind.credentials_header(), answer));
            }
            status => return Err(format!("{status} {}", response.reason())),
        }
    }
    Err("credentials refused".into())
}

/// The URI parameter naming a stream transport (`;transport=tls`); none
/// for UDP, the default.
pub(super) fn transport_param(proto: Proto) -> &'static str {
    match proto {
        Proto::Udp => "",
        Proto::Tcp => ";transport=tcp",
        Proto::Tls => ";transport=tls",
    }
}

/// The expiry the registrar granted: our Contact's `expires`, else the
/// `Expires` header, else what we asked for.
fn granted(response: &Response, asked: u32) -> u32 {
    let from_contact = response.contacts().ok().flatten().and_then(|c| {
        c.into_iter()
            .find_map(|c| c.params.value("expires").and_then(|v| v.parse().ok()))
    });
    let from_header = response
        .headers()
        .get(&HeaderName::EXPIRES)
        .and_then(|v| v.trim().parse().ok());
    from_contact.or(from_header).unwrap_or(asked).max(1)
}

/// Run one non-INVITE client transaction to its final response.
async fn transact(
    core: &Arc<Core>,
    dest: Source,
    request: Request,
    rx: &mut mpsc::Receiver<Input>,
) -> Option<Response> {
    let now = std::time::Instant::now();
    let reliability = if dest.proto == Proto::Udp {
        Reliability::Unreliable
    } else {
        Reliability::Reliable
    };
    let mut t = ClientNonInvite::new(request, reliability, Timers::default(), now).ok()?;
    loop {
        while let Some(e) = t.poll_event() {
            match e {
                Event::Transmit(m) => {
                    if core.send(&dest, m.to_bytes()).await.is_err() {
                        t.transport_error();
                    }
                }
                Event::Response(r) if r.status() >= 200 => return Some(r),
                Event::Response(_) => {}
                _ => return None,
            }
        }
        let deadline = t.poll_timeout().map_or_else(
            || tokio::time::Instant::now() + Duration::from_secs(32),
            tokio::time::Instant::from_std,
        );
        tokio::select! {
            input = rx.recv() => match input {
                Some(Input::Response(r)) => t.handle_response(*r, std::time::Instant::now()),
                Some(Input::Request(..)) => {}
                None => return None,
            },
            () = tokio::time::sleep_until(deadline) => t.handle_timeout(std::time::Instant::now()),
        }
    }
}
