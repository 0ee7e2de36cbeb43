//! Calls: the back-to-back user agent.
//!
//! A new INVITE becomes a [`call`] task that owns both legs: the caller's
//! ("A": its INVITE server transaction and dialog) and the one the PBX
//! places ("B": its own Call-ID, tags, Via and Contact — topology hiding).
//! The task asks the routing hook where the call goes, the trunk-exception
//! and security hooks whether it may go there, negotiates SDES keys on
//! each leg separately ([`negotiate`]: fresh keys per leg and direction)
//! and hands them to the media relay (`pbx-media`), which decrypts each
//! leg's SRTP and re-encrypts it for the other.
//!
//! - `mod.rs` (this file): configuration types, the table of live calls by
//!   Call-ID, and the entry points the SIP core calls ([`Calls::on_request`],
//!   [`Calls::on_response`]).
//! - `call.rs`: one task per call — routing, policy, the two legs'
//!   transactions, answer, hold/resume, hangup, timers.
//! - `dialog.rs`: a dialog's identifiers and the requests sent in it.
//! - `trunk.rs`: how trunks are reached (UDP, or one connection per TCP/TLS
//!   trunk with its certificate verified) and registration at them.
//! - `negotiate.rs`: SDP between the legs: offers toward B from A's offer,
//!   answers to A from B's answer, per-leg SRTP settings, relay keys.

mod call;
mod dialog;
mod negotiate;
mod trunk;

pub use trunk::{TrunkError, TrunkStatus};

use crate::sip::{Core, FlowId, Proto, Source};
use pbx_sip::response::response_to;
use pbx_sip::{HeaderName, Method, Request, Response};
use pbx_srtp::Suite;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Whether a leg uses SRTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaSetting {
    /// SRTP only (`RTP/SAVP`); plain offers are refused with `488`.
    Required,
    /// SRTP when the other side takes it.
    Optional,
    /// Plain RTP only.
    Off,
    /// For extensions: SRTP required toward phones registered over TLS
    /// (the keys travel encrypted), plain RTP otherwise (SDES keys must
    /// never cross an unencrypted transport); calls from the phone are
    /// answered with SRTP when offered.
    Auto,
}

/// Media settings of one extension (`[extensions."<ext>"]`).
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// SRTP use toward this phone.
    pub srtp: MediaSetting,
    /// Suites offered to this phone, in order (empty: AES_CM_128_HMAC_SHA1_80
    /// then _32).
    pub suites: Vec<Suite>,
    /// Record this extension's calls (overrides `[media] record`).
    pub record: Option<bool>,
}

/// A configured trunk (gateway).
#[derive(Debug, Clone)]
pub struct TrunkConfig {
    /// Its name, as routing plugins name it.
    pub name: String,
    /// Where calls to it go; over UDP also where its calls come from.
    pub address: SocketAddr,
    /// SIP transport toward it. Over TCP and TLS the PBX opens one
    /// connection to the trunk and the trunk's calls come over it.
    pub transport: Proto,
    /// How the trunk's certificate is checked (TLS trunks only).
    pub tls: Option<TrunkTls>,
    /// SRTP toward it (`Off`: plain `RTP/AVP`).
    pub srtp: MediaSetting,
    /// Suites offered when SRTP is on.
    pub suites: Vec<Suite>,
    /// The PBX domain its inbound calls belong to.
    pub domain: String,
    /// Credentials for the trunk's digest challenges (registration and
    /// calls).
    pub auth: Option<TrunkAuth>,
    /// Keep a registration at the trunk with this expiry (seconds).
    pub register: Option<u32>,
}

/// The certificate check of a TLS trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkTls {
    /// PEM file of the CA certificates the trunk's chain must lead to.
    pub ca: PathBuf,
    /// The name its certificate must be valid for (DNS name or IP address).
    pub server_name: rustls_pki_types::ServerName<'static>,
}

/// A trunk account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkAuth {
    /// User name.
    pub username: String,
    /// Password (never printed).
    pub password: Secret,
}

/// A secret string: `Debug` prints `<redacted>`, there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Calls and media configuration (`[media]`, `[calls]`, `[extensions]`,
/// `[trunks]` in `pbx.toml`).
#[derive(Debug, Clone)]
pub struct CallsConfig {
    /// Address the relay's sockets bind to.
    pub media_bind: IpAddr,
    /// Address written into SDP and Contact headers, if not the one the
    /// peer reached us at.
    pub media_advertise: Option<IpAddr>,
    /// Lowest relay port.
    pub port_min: u16,
    /// Highest relay port.
    pub port_max: u16,
    /// Relay worker threads.
    pub workers: usize,
    /// Hang up after this long without media.
    pub media_timeout: Duration,
    /// Record every call.
    pub record_all: bool,
    /// Where recordings go.
    pub recordings_dir: PathBuf,
    /// Cancel unanswered calls after this long.
    pub ring_timeout: Duration,
    /// Per-extension settings, keyed `ext@domain`.
    pub endpoints: BTreeMap<String, EndpointConfig>,
    /// Trunks.
    pub trunks: Vec<TrunkConfig>,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            media_bind: IpAddr::from([0, 0, 0, 0]),
            media_advertise: None,
            port_min: 20000,
            port_max: 29999,
            workers: 1,
            media_timeout: Duration::from_secs(30),
            record_all: false,
            recordings_dir: PathBuf::from("recordings"),
            ring_timeout: Duration::from_secs(60),
            endpoints: BTreeMap::new(),
            trunks: Vec::new(),
        }
    }
}

impl CallsConfig {
    /// The settings of `ext@domain`, if configured.
    pub fn endpoint(&self, domain: &str, ext: &str) -> Option<&EndpointConfig> {
        self.endpoints.get(&format!("{ext}@{domain}"))
    }

    /// The trunk named `name`.
    pub fn trunk(&self, name: &str) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.name == name)
    }

    /// The UDP trunk a datagram from `source` comes from: its configured
    /// address and port exactly (gateways send from the port they listen
    /// on; matching the IP alone would let every phone behind the same
    /// address skip authentication). TCP and TLS trunks are known by
    /// their connection instead ([`Calls::trunk_at`]).
    pub fn trunk_at(&self, source: &Source) -> Option<&TrunkConfig> {
        if source.proto != Proto::Udp {
            return None;
        }
        self.trunks
            .iter()
            .find(|t| t.transport == Proto::Udp && t.address == source.remote)
    }
}

/// Counters of the call service.
#[derive(Debug, Default)]
pub struct CallCounters {
    /// Calls that reached routing (authenticated or from a trunk).
    pub started: AtomicU64,
    /// Calls answered.
    pub answered: AtomicU64,
    /// Calls refused by a policy hook (routing or security).
    pub refused: AtomicU64,
    /// Calls that ended without an answer (busy, no answer, cancelled, ...).
    pub failed: AtomicU64,
    /// Calls currently up (routing, ringing or answered).
    pub active: AtomicU64,
}

/// Why the call service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The media relay could not start.
    #[error("starting the media relay: {0}")]
    Media(#[from] pbx_media::MediaError),
    /// A TLS trunk has no CA bundle to check its certificate with.
    #[error("trunks.{trunk}: a TLS trunk needs a CA bundle (ca)")]
    TrunkTls {
        /// The trunk.
        trunk: String,
    },
    /// A TLS trunk's CA bundle is unusable.
    #[error("trunks.{trunk}.ca: {source}")]
    TrunkCa {
        /// The trunk.
        trunk: String,
        /// What is wrong with the file.
        source: crate::tls::CertError,
    },
}

/// A message for a call task.
#[derive(Debug)]
enum Input {
    Request(Box<Request>, Source),
    Response(Box<Response>),
}

/// The live calls.
pub struct Calls {
    /// Configuration.
    pub config: CallsConfig,
    /// Counters.
    pub counters: CallCounters,
    relay: pbx_media::Relay,
    /// Call task inboxes by the Call-ID of either leg (and of trunk
    /// registrations).
    index: Mutex<HashMap<String, mpsc::Sender<Input>>>,
    /// Trunk registrations by trunk name.
    trunk_status: Mutex<HashMap<String, TrunkStatus>>,
    /// The PBX's connections to its TCP/TLS trunks.
    links: trunk::TrunkLinks,
}

/// How many messages may wait for one call task before more are dropped
/// (a flood on one call must not grow memory).
const INBOX: usize = 64;

impl Calls {
    /// The call service, with its media relay started and the TLS trunks'
    /// CA bundles loaded.
    pub fn new(config: CallsConfig) -> Result<Calls, StartError> {
        let links = trunk::TrunkLinks::new(&config.trunks)?;
        let relay = pbx_media::Relay::start(pbx_media::RelayConfig {
            bind_ip: config.media_bind,
            port_min: config.port_min,
            port_max: config.port_max,
            workers: config.workers,
            media_timeout: config.media_timeout,
            ..pbx_media::RelayConfig::default()
        })?;
        Ok(Calls {
            config,
            counters: CallCounters::default(),
            relay,
            index: Mutex::new(HashMap::new()),
            trunk_status: Mutex::new(HashMap::new()),
            links,
        })
    }

    /// The media relay.
    pub fn relay(&self) -> &pbx_media::Relay {
        &self.relay
    }

    /// Start keeping the registrations of the trunks that ask for one.
    pub fn start_trunk_registrations(core: &Arc<Core>) -> Vec<tokio::task::JoinHandle<()>> {
        core.calls
            .config
            .trunks
            .iter()
            .filter(|t| t.register.is_some())
            .map(|t| tokio::spawn(trunk::keep_registered(core.clone(), t.clone())))
            .collect()
    }

    /// The registration state of trunk `name`, if it registers.
    pub fn trunk_status(&self, name: &str) -> Option<TrunkStatus> {
        self.trunk_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn set_trunk_status(&self, name: &str, status: TrunkStatus) {
        self.trunk_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), status);
    }

    /// The trunk a request from `source` comes from: a UDP trunk by its
    /// address and port, a TCP/TLS trunk by the connection the PBX opened
    /// to it (never by address: anyone can connect from the trunk's IP).
    pub fn trunk_at(&self, source: &Source) -> Option<&TrunkConfig> {
        match (source.proto, source.flow) {
            (Proto::Udp, _) => self.config.trunk_at(source),
            (_, Some(flow)) => self
                .links
                .trunk_of(flow)
                .and_then(|name| self.config.trunk(&name))
                .filter(|t| t.transport == source.proto),
            (_, None) => None,
        }
    }

    /// The open connection to TCP/TLS trunk `name`, if any (its flow and
    /// local address).
    pub fn trunk_connection(&self, name: &str) -> Option<Source> {
        self.links.current(name)
    }

    /// A stream connection closed; if it led to a trunk, the trunk is
    /// connected again on its next request.
    pub fn flow_closed(&self, flow: FlowId) {
        self.links.closed(flow);
    }

    /// Calls in progress.
    pub fn active(&self) -> u64 {
        self.counters.active.load(Ordering::Relaxed)
    }

    fn inbox(&self, call_id: &str) -> Option<mpsc::Sender<Input>> {
        self.index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(call_id)
            .cloned()
    }

    fn register(&self, call_id: &str, tx: mpsc::Sender<Input>) {
        self.index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(call_id.to_string(), tx);
    }

    fn unregister(&self, call_id: &str) {
        self.index.lock().unwrap_or_else(|p| p.into_inner()).remove(call_id);
    }

    /// Is `call_id` a leg of a live call?
    pub fn knows(&self, call_id: &str) -> bool {
        self.inbox(call_id).is_some()
    }

    /// A request for the call service (INVITE, ACK, CANCEL, BYE, and
    /// in-dialog OPTIONS). Returns the response to send back at once, if
    /// any; the call task sends the others.
    pub fn on_request(core: &Arc<Core>, request: Request, source: &Source) -> Option<Response> {
        let calls = &core.calls;
        let inbox = calls.inbox(request.call_id());
        let method = request.method().clone();
        let Some(inbox) = inbox else {
            return match method {
                Method::Invite if request.to().tag().is_none() => call::start(core, request, source),
                Method::Ack => None,
                _ => response_to(&request, 481, None).ok(),
            };
        };
        let immediate = match method {
            // The call task answers these once it has checked that they
            // come from the leg's own peer and dialog: a Call-ID alone
            // (visible on the wire for UDP phones) must not end or
            // re-route a call.
            Method::Bye | Method::Cancel => None,
            Method::Options => {
                let mut r = response_to(&request, 200, None).ok()?;
                r.push_header(HeaderName::ALLOW, crate::sip::ALLOW).ok()?;
                return Some(r);
            }
            Method::Invite | Method::Ack => None,
            _ => {
                let mut r = response_to(&request, 501, None).ok()?;
                r.push_header(HeaderName::ALLOW, crate::sip::ALLOW).ok()?;
                return Some(r);
            }
        };
        if inbox.try_send(Input::Request(Box::new(request), *source)).is_err() {
            core.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%source, "call busy: request dropped");
        }
        immediate
    }

    /// A response: passed to its call, or handed back (`Some`) when it
    /// belongs to no call.
    pub fn on_response(&self, response: Response) -> Option<Response> {
        match self.inbox(response.call_id()) {
            Some(inbox) => {
                let _ = inbox.try_send(Input::Response(Box::new(response)));
                None
            }
            None => Some(response),
        }
    }

    /// The address written into SDP and Contact toward a peer reached via
    /// `source`: the configured one, else the local address the peer
    /// reached, else the one the OS routes toward it from.
    pub fn advertised_ip(&self, source: &Source) -> IpAddr {
        if let Some(ip) = self.config.media_advertise {
            return ip;
        }
        if !source.local.ip().is_unspecified() {
            return source.local.ip();
        }
        let any: SocketAddr = if source.remote.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        std::net::UdpSocket::bind(any)
            .and_then(|s| {
                s.connect(source.remote)?;
                s.local_addr()
            })
            .map(|a| a.ip())
            .unwrap_or(source.local.ip())
    }
}

/// A `Warning` header value (RFC 3261 §20.43) carrying a policy's reason.
fn warning(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '\''
            } else {
                c
            }
        })
        .collect();
    format!("399 pbx \"{clean}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_text_is_quoted_safely() {
        assert_eq!(warning("no \"TLS\"\r\n"), "399 pbx \"no 'TLS'''\"");
    }

    #[test]
    fn trunks_are_found_by_ip() {
        let mut c = CallsConfig::default();
        c.trunks.push(TrunkConfig {
            name: "pstn".into(),
            address: "192.0.2.1:5060".parse().unwrap(),
            transport: Proto::Udp,
            tls: None,
            srtp: MediaSetting::Off,
            suites: vec![],
            domain: "example.test".into(),
            auth: None,
            register: None,
        });
        let src = Source {
            proto: Proto::Udp,
            remote: "192.0.2.1:5060".parse().unwrap(),
            local: "0.0.0.0:5060".parse().unwrap(),
            flow: None,
        };
        assert_eq!(c.trunk_at(&src).map(|t| t.name.as_str()), Some("pstn"));
        let phone = Source {
            remote: "192.0.2.1:40000".parse().unwrap(),
            ..src
        };
        assert!(
            c.trunk_at(&phone).is_none(),
            "a phone behind the trunk's IP is not the trunk"
        );
        assert!(c.trunk("nope").is_none());
        let tcp = Source {
            proto: Proto::Tcp,
            flow: Some(FlowId(7)),
            ..src
        };
        assert!(
            c.trunk_at(&tcp).is_none(),
            "a TCP connection from a UDP trunk's address is not the trunk"
        );
    }
}
