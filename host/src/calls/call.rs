//! One call: a task owning both legs, from the caller's INVITE to the last
//! BYE.
//!
//! Every message of either leg reaches the task through its inbox; the
//! task drives the RFC 3261 transactions of `pbx_sip::transaction` (which
//! retransmit over UDP and absorb retransmissions), and its own timers:
//! ring timeout, 2xx retransmission to the caller, media timeout.

use super::dialog::{self, Dialog};
use super::negotiate::{
    agreed_codecs, answer_policy, fresh_key, leg_config, local_media, offered_codecs, offers_srtp, srtp_offer,
};
use super::{INBOX, Input, MediaSetting, warning};
use crate::plugins::{routing, security, types};
use crate::sip::{Core, Proto, Source, new_tag};
use pbx_media::{CallMedia, Side};
use pbx_sdp::{NegotiatedStream, PendingOffer, Sdp, SrtpOffer, keep_key};
use pbx_sip::auth::ChallengeKind;
use pbx_sip::response::response_to;
use pbx_sip::transaction::{
    ClientInvite, ClientNonInvite, Event, Reliability, ServerInvite, Timers, TransactionKey, cancel_for,
};
use pbx_sip::{Header, HeaderName, Host, Message, Method, Request, Response, Uri};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Headers of the INVITE the routing and security hooks may read.
const PLUGIN_HEADERS: [&str; 5] = ["User-Agent", "Priority", "Subject", "Alert-Info", "P-Asserted-Identity"];

/// A new INVITE (no To tag, unknown Call-ID): authenticate the caller,
/// check its offer, and start the call task. Returns the response to send
/// at once when the call goes no further (challenge, 4xx).
pub(super) fn start(core: &Arc<Core>, invite: Request, source: &Source) -> Option<Response> {
    let reply = |code: u16, reason: Option<&str>| response_to(&invite, code, reason).ok();
    if invite.max_forwards() == Some(0) {
        return reply(483, None);
    }
    let calls = &core.calls;
    let (caller, domain, setting) = match calls.trunk_at(source) {
        Some(trunk) => (
            types::Caller::Trunk(trunk.name.clone()),
            trunk.domain.clone(),
            trunk.srtp,
        ),
        None => {
            let Some((domain, user)) = core.registrar.aor(invite.from()) else {
                return reply(403, Some("Not a caller of this PBX"));
            };
            if let Err(response) = core
                .registrar
                .authenticate(&invite, source, &domain, &user, ChallengeKind::Proxy)
            {
                return response.map(|r| *r);
            }
            let setting = calls
                .config
                .endpoint(&domain, &user)
                .map_or(MediaSetting::Auto, |e| e.srtp);
            (types::Caller::Extension(user), domain, setting)
        }
    };
    let refuse = |code: u16, reason: &str| {
        let mut r = response_to(&invite, code, None).ok()?;
        r.push_header(HeaderName::WARNING, &warning(reason)).ok()?;
        Some(r)
    };
    if invite.body().is_empty() {
        return refuse(488, "An INVITE without SDP (delayed offer) is not supported");
    }
    let content_type = invite.headers().get(&HeaderName::CONTENT_TYPE).unwrap_or_default();
    if !content_type.trim().to_ascii_lowercase().starts_with("application/sdp") {
        let mut r = reply(415, None)?;
        r.push_header(HeaderName::ACCEPT, "application/sdp").ok()?;
        return Some(r);
    }
    let offer = match Sdp::parse_bytes(invite.body()) {
        Ok(offer) => offer,
        Err(e) => {
            tracing::info!(%source, "INVITE with malformed SDP refused: {e}");
            return refuse(400, &format!("Malformed SDP: {e}"));
        }
    };
    // Can the caller's offer be answered at all? Refuse before ringing anyone.
    let probe = local_media(calls.advertised_ip(source), 9, offered_codecs(&offer), Some(&offer), 0);
    if let Err(e) = pbx_sdp::answer(&offer, &probe, &answer_policy(setting), &mut fresh_key) {
        tracing::info!(%source, "INVITE offer refused: {e}");
        return refuse(e.sip_status(), &format!("Unacceptable offer: {e}"));
    }
    let media = match calls.relay().allocate(invite.call_id()) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("no media ports for a new call: {e}");
            return reply(503, Some("No media ports available"));
        }
    };
    let (tx, rx) = mpsc::channel(INBOX);
    calls.register(invite.call_id(), tx);
    calls.counters.started.fetch_add(1, Ordering::Relaxed);
    calls.counters.active.fetch_add(1, Ordering::Relaxed);
    let call = Call::new(core.clone(), invite, *source, offer, caller, domain, setting, media);
    tokio::spawn(call.run(rx));
    None
}

/// Which leg a message belongs to.
fn other(side: Side) -> Side {
    match side {
        Side::A => Side::B,
        Side::B => Side::A,
    }
}

/// Why a transaction was started: what its outcome means to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The caller's INVITE (server).
    AInvite,
    /// Our INVITE to the callee (client).
    BInvite,
    /// Our CANCEL of `BInvite`.
    Cancel,
    /// Our BYE to a leg.
    Bye,
    /// A re-INVITE from a leg (server).
    ReinviteIn(Side),
    /// Our re-INVITE to a leg (client).
    ReinviteOut(Side),
}

/// A transaction of the call (boxed: the machines differ in size, and a
/// call holds only a few).
enum Txn {
    Server(Box<ServerInvite>),
    Invite(Box<ClientInvite>),
    Other(Box<ClientNonInvite>),
}

struct Tx {
    txn: Txn,
    dest: Source,
    role: Role,
    done: bool,
}

impl Tx {
    fn key(&self) -> &TransactionKey {
        match &self.txn {
            Txn::Server(t) => t.key(),
            Txn::Invite(t) => t.key(),
            Txn::Other(t) => t.key(),
        }
    }

    fn poll_event(&mut self) -> Option<Event> {
        match &mut self.txn {
            Txn::Server(t) => t.poll_event(),
            Txn::Invite(t) => t.poll_event(),
            Txn::Other(t) => t.poll_event(),
        }
    }

    fn poll_timeout(&self) -> Option<std::time::Instant> {
        match &self.txn {
            Txn::Server(t) => t.poll_timeout(),
            Txn::Invite(t) => t.poll_timeout(),
            Txn::Other(t) => t.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: std::time::Instant) {
        match &mut self.txn {
            Txn::Server(t) => t.handle_timeout(now),
            Txn::Invite(t) => t.handle_timeout(now),
            Txn::Other(t) => t.handle_timeout(now),
        }
    }

    fn transport_error(&mut self) {
        match &mut self.txn {
            Txn::Server(t) => t.transport_error(),
            Txn::Invite(t) => t.transport_error(),
            Txn::Other(t) => t.transport_error(),
        }
    }
}

fn reliability(proto: Proto) -> Reliability {
    match proto {
        Proto::Udp => Reliability::Unreliable,
        Proto::Tcp | Proto::Tls => Reliability::Reliable,
    }
}

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Asking the plugins.
    Routing,
    /// The callee's INVITE is out.
    Ringing,
    /// The caller cancelled (or nobody answered): waiting for the callee's
    /// INVITE to end.
    Cancelling,
    /// Both legs are up.
    Answered,
    /// BYEs are out.
    Ending,
    /// Over; the task ends when its last transaction does.
    Done,
}

/// A refusal of the call: the final response to the caller.
struct Refusal {
    code: u16,
    reason: String,
    /// Also say why in a `Warning` header (policy refusals, trunk failures).
    warning: Option<String>,
}

impl Refusal {
    fn new(code: u16, reason: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason: reason.into(),
            warning: None,
        }
    }

    fn policy(r: types::Reject) -> Refusal {
        Refusal {
            code: r.code,
            warning: Some(r.reason.clone()),
            reason: r.reason,
        }
    }
}

/// The caller's leg.
struct LegA {
    invite: Request,
    source: Source,
    offer: Sdp,
    tag: String,
    setting: MediaSetting,
    dialog: Dialog,
    stream: Option<NegotiatedStream>,
    media_ip: std::net::IpAddr,
    sdp_version: u64,
}

/// The callee's leg.
struct LegB {
    dialog: Dialog,
    invite: Request,
    pending: PendingOffer,
    stream: Option<NegotiatedStream>,
    setting: MediaSetting,
    media_ip: std::net::IpAddr,
    sdp_version: u64,
    provisional: bool,
    cancel_pending: bool,
    answered: bool,
    record: bool,
    /// Credentials for one digest challenge from the callee (a trunk).
    auth: Option<super::TrunkAuth>,
    /// Our tag on this leg (in our From).
    tag: String,
    /// The callee's tag, once it answered.
    remote_tag: Option<String>,
}

/// A re-INVITE being passed from one leg to the other.
struct Reinvite {
    from: Side,
    request: Request,
    offer: Sdp,
    pending: PendingOffer,
    cseq: u32,
}

/// A 2xx to an INVITE being retransmitted over UDP until its ACK.
struct Resend {
    bytes: Vec<u8>,
    dest: Source,
    next: Instant,
    interval: Duration,
    until: Instant,
}

struct Call {
    core: Arc<Core>,
    /// Short identifier for log lines.
    id: String,
    began: Instant,
    answered_at: Option<Instant>,
    phase: Phase,
    a: LegA,
    /// Boxed, like `reinvite`: the call task's size is paid for 32 s
    /// after the call, whether the leg was ever set up or not.
    b: Option<Box<LegB>>,
    txns: Vec<Tx>,
    /// The relay's half of the call; closed (ports freed, stats logged) as
    /// soon as the call is over, while transactions may linger.
    media: Option<Arc<CallMedia>>,
    ring_deadline: Option<Instant>,
    resend: Option<Resend>,
    reinvite: Option<Box<Reinvite>>,
    plugin_call: types::Call,
    session_id: u64,
    refused: bool,
}

impl Call {
    #[allow(clippy::too_many_arguments)]
    fn new(
        core: Arc<Core>,
        invite: Request,
        source: Source,
        offer: Sdp,
        caller: types::Caller,
        domain: String,
        setting: MediaSetting,
        media: CallMedia,
    ) -> Call {
        let media_ip = core.calls.advertised_ip(&source);
        let local_addr = SocketAddr::new(media_ip, source.local.port());
        let tag = new_tag();
        let to = invite.headers().get(&HeaderName::TO).unwrap_or_default();
        let target = invite
            .contacts()
            .ok()
            .flatten()
            .and_then(|c| c.into_iter().next())
            .map_or_else(|| invite.from().uri.clone(), |c| c.uri);
        let dialog = Dialog {
            call_id: invite.call_id().to_string(),
            local: format!("{to};tag={tag}"),
            remote: invite.headers().get(&HeaderName::FROM).unwrap_or_default().to_string(),
            target,
            cseq: 0,
            dest: source,
            local_addr,
            contact: dialog::contact(source.proto, local_addr),
        };
        let mut plugin_call = plugin_call(&invite, &source, &offer, caller, domain);
        // The subject of the certificate the caller's TLS connection
        // presented, verified in its handshake.
        plugin_call.client_cert_subject = source
            .flow
            .and_then(|f| core.flows.client_cert_subject(f))
            .map(|s| s.to_string());
        let mut session = [0u8; 4];
        let _ = getrandom::fill(&mut session);
        Call {
            id: new_tag()[..8].to_string(),
            began: Instant::now(),
            answered_at: None,
            phase: Phase::Routing,
            a: LegA {
                invite,
                source,
                offer,
                tag,
                setting,
                dialog,
                stream: None,
                media_ip,
                sdp_version: 0,
            },
            b: None,
            txns: Vec::new(),
            media: Some(Arc::new(media)),
            ring_deadline: None,
            resend: None,
            reinvite: None,
            plugin_call,
            session_id: u64::from(u32::from_be_bytes(session)),
            refused: false,
            core,
        }
    }

    /// The call's task. The handlers are boxed when awaited: a task's
    /// future is as large as its largest state, and the call task lives
    /// for 32 s after hang-up (Timers J/L/M), so keeping the handlers'
    /// states out of it keeps a finished call small (5.4 KiB, from 17.6).
    async fn run(mut self, mut rx: mpsc::Receiver<Input>) {
        tracing::info!(
            call = self.id,
            from = self.plugin_call.from_uri,
            to = self.plugin_call.request_uri,
            source = %self.a.source,
            "new call"
        );
        match ServerInvite::new(&self.a.invite, reliability(self.a.source.proto), Timers::default()) {
            Ok(t) => self.txns.push(Tx {
                txn: Txn::Server(Box::new(t)),
                dest: self.a.source,
                role: Role::AInvite,
                done: false,
            }),
            Err(_) => self.phase = Phase::Done,
        }
        Box::pin(self.pump()).await;
        if self.phase == Phase::Routing {
            if let Err(refusal) = Box::pin(self.route_and_dial()).await {
                Box::pin(self.fail_a(refusal)).await;
            }
            Box::pin(self.pump()).await;
        }
        loop {
            self.settle();
            if self.phase == Phase::Done && self.txns.is_empty() {
                break;
            }
            let deadline = self.next_deadline();
            let media = self.media.clone();
            let media_timeout = async move {
                match media {
                    Some(m) => m.timed_out().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                input = rx.recv() => match input {
                    Some(Input::Request(r, s)) => Box::pin(self.on_request(*r, s)).await,
                    Some(Input::Response(r)) => self.on_response(*r),
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => Box::pin(self.on_timer()).await,
                () = media_timeout, if self.phase == Phase::Answered => {
                    tracing::info!(call = self.id, "no media for {:?}: hanging up", self.core.calls.config.media_timeout);
                    Box::pin(self.hang_up(None)).await;
                }
            }
            Box::pin(self.pump()).await;
        }
        self.finish();
    }

    /// Phase changes that follow from finished transactions.
    fn settle(&mut self) {
        let has = |role: Role| self.txns.iter().any(|t| t.role == role);
        if self.phase == Phase::Ending && !has(Role::Bye) {
            self.phase = Phase::Done;
        }
        if self.phase == Phase::Cancelling && !has(Role::BInvite) {
            self.phase = Phase::Done;
        }
        if self.phase == Phase::Done {
            self.resend = None;
            self.ring_deadline = None;
            if let Some(media) = self.media.take() {
                self.ended(media);
            }
        }
    }

    /// The call is over (its transactions may still absorb
    /// retransmissions for a while): free the media ports, count, log.
    fn ended(&mut self, media: Arc<CallMedia>) {
        let calls = &self.core.calls;
        calls.counters.active.fetch_sub(1, Ordering::Relaxed);
        if self.answered_at.is_none() && !self.refused {
            calls.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        let stats = match Arc::try_unwrap(media) {
            // Only a recording is worth waiting for (its file is complete
            // when `close` returns); otherwise the worker frees the ports.
            Ok(m) if m.recording() => blocking(|| m.close()),
            Ok(m) => m.close_detached(),
            Err(m) => m.stats(),
        };
        tracing::info!(
            call = self.id,
            duration = ?self.answered_at.map(|t| t.elapsed()),
            setup = ?self.answered_at.map(|t| t - self.began),
            media = ?stats,
            "call ended"
        );
    }

    /// The task ends: its Call-IDs are forgotten.
    fn finish(&mut self) {
        if let Some(media) = self.media.take() {
            self.ended(media);
        }
        let calls = &self.core.calls;
        calls.unregister(&self.a.dialog.call_id);
        if let Some(b) = &self.b {
            calls.unregister(&b.dialog.call_id);
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut next = Instant::now() + Duration::from_secs(3600);
        for t in &self.txns {
            if let Some(d) = t.poll_timeout() {
                next = next.min(Instant::from_std(d));
            }
        }
        if let Some(d) = self.ring_deadline {
            next = next.min(d);
        }
        if let Some(r) = &self.resend {
            next = next.min(r.next.min(r.until));
        }
        next
    }

    async fn on_timer(&mut self) {
        let now = Instant::now();
        for t in &mut self.txns {
            if t.poll_timeout().is_some_and(|d| Instant::from_std(d) <= now) {
                t.handle_timeout(now.into_std());
            }
        }
        if self.ring_deadline.is_some_and(|d| d <= now) {
            self.ring_deadline = None;
            if self.phase == Phase::Ringing {
                tracing::info!(call = self.id, "no answer");
                self.respond_a(480, Some("No Answer"), None).await;
                self.cancel_b();
                self.phase = Phase::Cancelling;
            }
        }
        if let Some(r) = &mut self.resend {
            if r.until <= now {
                // RFC 3261 §13.3.1.4: no ACK for our 2xx, end the call.
                self.resend = None;
                tracing::info!(call = self.id, "no ACK for the 200: hanging up");
                self.hang_up(None).await;
            } else if r.next <= now {
                let (bytes, dest) = (r.bytes.clone(), r.dest);
                r.interval = (r.interval * 2).min(Duration::from_secs(4));
                r.next = now + r.interval;
                let _ = self.core.send(&dest, bytes).await;
            }
        }
    }

    /// Send what the transactions want sent and act on their events,
    /// until they are quiet.
    async fn pump(&mut self) {
        loop {
            let mut events = Vec::new();
            let mut sends = Vec::new();
            for (i, t) in self.txns.iter_mut().enumerate() {
                while let Some(e) = t.poll_event() {
                    match e {
                        Event::Transmit(m) => sends.push((i, t.dest, m.to_bytes())),
                        Event::Terminated => t.done = true,
                        other => events.push((t.role, other)),
                    }
                }
            }
            let mut failed = false;
            for (i, dest, bytes) in sends {
                if self.core.send(&dest, bytes).await.is_err() {
                    tracing::debug!(call = self.id, %dest, "send failed");
                    self.txns[i].transport_error();
                    failed = true;
                }
            }
            self.txns.retain(|t| !t.done);
            if events.is_empty() && !failed {
                return;
            }
            for (role, event) in events {
                self.on_event(role, event).await;
            }
        }
    }

    async fn on_event(&mut self, role: Role, event: Event) {
        match (role, event) {
            (Role::BInvite, Event::Response(r)) => self.on_b_response(r).await,
            (Role::BInvite, Event::TimedOut | Event::TransportError) if self.phase == Phase::Ringing => {
                tracing::info!(call = self.id, "the callee did not answer the INVITE");
                self.fail_a(Refusal::new(480, "Temporarily Unavailable")).await;
            }
            (Role::ReinviteOut(side), Event::Response(r)) => self.on_reinvite_response(side, r).await,
            (Role::ReinviteOut(_), Event::TimedOut | Event::TransportError) => {
                if let Some(re) = self.reinvite.take() {
                    self.respond_reinvite(re.from, &re.request, 500, None, None).await;
                }
            }
            (Role::AInvite | Role::ReinviteIn(_), Event::Request(ack)) if ack.method() == &Method::Ack => {
                self.resend = None;
            }
            (Role::Bye | Role::Cancel, _) => {}
            _ => {}
        }
    }

    async fn on_request(&mut self, request: Request, source: Source) {
        let now = std::time::Instant::now();
        let side = if request.call_id() == self.a.dialog.call_id {
            Side::A
        } else {
            Side::B
        };
        // Only the leg's own peer speaks for it: its connection (TCP/TLS)
        // or its address (UDP).
        if !self.is_peer(side, &source) {
            self.core.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::info!(call = self.id, %source, method = %request.method(), "request for a call from a stranger dropped");
            return;
        }
        let key = TransactionKey::server(&request);
        if let Some(t) = self.txns.iter_mut().find(|t| t.key() == &key)
            && let Txn::Server(s) = &mut t.txn
        {
            s.handle_request(request, now);
            return;
        }
        if request.method() == &Method::Cancel {
            let pending = self
                .txns
                .iter()
                .find(|t| t.role == Role::AInvite)
                .map(|t| t.key().clone());
            let matches = side == Side::A && TransactionKey::cancelled_invite(&request) == pending && pending.is_some();
            self.reply(&request, &source, if matches { 200 } else { 481 }).await;
            if matches {
                self.cancelled_by_a().await;
            }
            return;
        }
        // Everything else is in the leg's dialog: both tags must be its own.
        if !self.in_dialog(side, &request) {
            if request.method() == &Method::Invite && request.to().tag().is_none() {
                // Same Call-ID, another transaction: a merged request.
                self.reply(&request, &source, 482).await;
            } else if request.method() != &Method::Ack {
                self.reply(&request, &source, 481).await;
            }
            return;
        }
        match request.method() {
            Method::Ack => self.resend = None,
            Method::Bye => {
                self.reply(&request, &source, 200).await;
                tracing::info!(call = self.id, "hung up by the {}", name(side));
                self.resend = None;
                if self.phase == Phase::Ringing && side == Side::A {
                    self.cancelled_by_a().await;
                } else {
                    self.hang_up(Some(side)).await;
                }
            }
            Method::Invite => self.reinvite_from(side, request, source).await,
            _ => {}
        }
    }

    /// Does `source` belong to the peer of leg `side`?
    fn is_peer(&self, side: Side, source: &Source) -> bool {
        let dest = match side {
            Side::A => self.a.dialog.dest,
            Side::B => match &self.b {
                Some(b) => b.dialog.dest,
                None => return false,
            },
        };
        source.proto == dest.proto
            && match source.proto {
                Proto::Udp => source.remote.ip() == dest.remote.ip(),
                Proto::Tcp | Proto::Tls => source.flow.is_some() && source.flow == dest.flow,
            }
    }

    /// Are both tags of `request` those of leg `side`'s dialog?
    fn in_dialog(&self, side: Side, request: &Request) -> bool {
        let (ours, theirs) = match side {
            Side::A => (Some(self.a.tag.as_str()), self.a.invite.from().tag()),
            Side::B => match &self.b {
                Some(b) => (Some(b.tag.as_str()), b.remote_tag.as_deref()),
                None => return false,
            },
        };
        theirs.is_some() && request.to().tag() == ours && request.from().tag() == theirs
    }

    /// A stateless response to a request of the call.
    async fn reply(&self, request: &Request, source: &Source, code: u16) {
        if let Ok(r) = response_to(request, code, None) {
            let _ = self.core.send(source, r.to_bytes()).await;
        }
    }

    fn on_response(&mut self, response: Response) {
        let key = TransactionKey::for_response(&response);
        let now = std::time::Instant::now();
        if let Some(t) = self.txns.iter_mut().find(|t| t.key() == &key) {
            match &mut t.txn {
                Txn::Invite(c) => c.handle_response(response, now),
                Txn::Other(c) => c.handle_response(response, now),
                Txn::Server(_) => {}
            }
        } else if response.cseq().method == Method::Invite && (200..300).contains(&response.status()) {
            // A 2xx retransmitted after its transaction ended: ACK it again.
            let dialog = match &self.b {
                Some(b) if response.call_id() == b.dialog.call_id => &b.dialog,
                _ => &self.a.dialog,
            };
            if let Ok(ack) = dialog.ack(response.cseq().seq) {
                let (core, dest) = (self.core.clone(), dialog.dest);
                tokio::spawn(async move {
                    let _ = core.send(&dest, ack.to_bytes()).await;
                });
            }
        }
    }

    /// Routing, trunk exception and security hooks; then the callee's leg.
    async fn route_and_dial(&mut self) -> Result<(), Refusal> {
        let policy = self.core.policy.clone();
        let target = match policy.route(&self.plugin_call).await {
            routing::Decision::Reject(r) => {
                tracing::info!(
                    call = self.id,
                    code = r.code,
                    reason = r.reason,
                    "routing refused the call"
                );
                self.refused = true;
                self.core.calls.counters.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::policy(r));
            }
            routing::Decision::Target(t) => t,
        };
        let plan = self.resolve(&target).await?;
        let exempt_trunk = match &target {
            types::Target::Trunk(t) => policy.is_trunk_exempt(&t.trunk).await,
            _ => false,
        };
        let leg = security::Leg {
            target: target.clone(),
            transport: match plan.dest.proto {
                Proto::Udp => types::Transport::Udp,
                Proto::Tcp => types::Transport::Tcp,
                Proto::Tls => types::Transport::Tls,
            },
            srtp: !plan.offer.suites.is_empty(),
            exempt_trunk,
        };
        if let security::Verdict::Reject(r) = policy.check_security(&self.plugin_call, &leg).await {
            tracing::info!(
                call = self.id,
                code = r.code,
                reason = r.reason,
                "security policy refused the call"
            );
            self.refused = true;
            self.core.calls.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::policy(r));
        }
        tracing::info!(call = self.id, target = ?target, dest = %plan.dest, srtp = leg.srtp, "routing");
        self.dial(plan)
    }

    /// Where and how to reach a target (connecting to a TCP/TLS trunk).
    async fn resolve(&self, target: &types::Target) -> Result<Plan, Refusal> {
        let calls = &self.core.calls;
        let domain = &self.plugin_call.domain;
        match target {
            types::Target::Extension(ext) => {
                let binding = self
                    .core
                    .registrar
                    .lookup(domain, ext)
                    .into_iter()
                    .filter(|b| {
                        b.source.proto == Proto::Udp || b.source.flow.is_some_and(|f| self.core.flows.is_open(f))
                    })
                    .max_by_key(|b| b.expires_at)
                    .ok_or_else(|| Refusal::new(480, "Not registered"))?;
                let uri: Uri = binding
                    .contact
                    .parse()
                    .map_err(|_| Refusal::new(480, "Unusable registration"))?;
                let endpoint = calls.config.endpoint(domain, ext);
                let setting = endpoint.map_or(MediaSetting::Auto, |e| e.srtp);
                let suites = endpoint.map(|e| e.suites.clone()).unwrap_or_default();
                Ok(Plan {
                    auth: None,
                    uri,
                    to: format!("<sip:{ext}@{domain}>"),
                    dest: binding.source,
                    offer: srtp_offer(setting, binding.source.proto, &suites),
                    setting,
                    record: endpoint.and_then(|e| e.record).unwrap_or(calls.config.record_all),
                })
            }
            types::Target::Trunk(t) => {
                let trunk = calls
                    .config
                    .trunk(&t.trunk)
                    .ok_or_else(|| Refusal::new(503, format!("Trunk {} is not configured", t.trunk)))?;
                let param = super::trunk::transport_param(trunk.transport);
                let uri: Uri = format!("sip:{}@{}{param}", t.number, trunk.address)
                    .parse()
                    .map_err(|_| Refusal::new(484, "Address Incomplete"))?;
                // Fail closed: an unreachable or untrusted trunk fails the
                // call, saying why.
                let dest = super::trunk::dest(&self.core, trunk).await.map_err(|e| Refusal {
                    code: 503,
                    reason: "Service Unavailable".into(),
                    warning: Some(e.to_string()),
                })?;
                Ok(Plan {
                    auth: trunk.auth.clone(),
                    to: format!("<{uri}>"),
                    uri,
                    dest,
                    offer: srtp_offer(trunk.srtp, trunk.transport, &trunk.suites),
                    setting: trunk.srtp,
                    record: calls.config.record_all,
                })
            }
            types::Target::Uri(u) => {
                let uri: Uri = u.parse().map_err(|_| Refusal::new(484, "Address Incomplete"))?;
                let Uri::Sip(sip) = &uri else {
                    return Err(Refusal::new(416, "Unsupported URI Scheme"));
                };
                let ip = match &sip.host {
                    Host::Ipv4(ip) => std::net::IpAddr::V4(*ip),
                    Host::Ipv6(ip) => std::net::IpAddr::V6(*ip),
                    Host::Domain(_) => return Err(Refusal::new(502, "Only IP-address URIs can be called")),
                };
                let dest = self
                    .core
                    .udp_source(SocketAddr::new(ip, sip.port.unwrap_or(5060)))
                    .ok_or_else(|| Refusal::new(503, "No UDP socket"))?;
                Ok(Plan {
                    auth: None,
                    to: format!("<{uri}>"),
                    uri,
                    dest,
                    offer: SrtpOffer::plain(),
                    setting: MediaSetting::Off,
                    record: calls.config.record_all,
                })
            }
        }
    }

    /// Send the callee's INVITE.
    fn dial(&mut self, plan: Plan) -> Result<(), Refusal> {
        let core = self.core.clone();
        let calls = &core.calls;
        let media_ip = calls.advertised_ip(&plan.dest);
        let local_addr = SocketAddr::new(media_ip, plan.dest.local.port());
        let b_tag = new_tag();
        let from = {
            let display = self.a.invite.from().display_name();
            let user = match &self.a.invite.from().uri {
                Uri::Sip(u) => u.user.clone().unwrap_or_else(|| "anonymous".into()),
                _ => "anonymous".into(),
            };
            let display = display
                .map(|d| format!("\"{}\" ", d.replace(['"', '\\'], "")))
                .unwrap_or_default();
            format!("{display}<sip:{user}@{}>;tag={b_tag}", self.plugin_call.domain)
        };
        let mut dialog = Dialog {
            call_id: format!("{}@pbx", new_tag()),
            local: from,
            remote: plan.to,
            target: plan.uri,
            cseq: 0,
            dest: plan.dest,
            local_addr,
            contact: dialog::contact(plan.dest.proto, local_addr),
        };
        let local = local_media(
            media_ip,
            self.media_local(Side::B).rtp.port(),
            offered_codecs(&self.a.offer),
            Some(&self.a.offer),
            self.session_id,
        );
        let (sdp, pending) = pbx_sdp::offer(&local, &plan.offer, &mut fresh_key)
            .map_err(|e| Refusal::new(488, format!("Cannot offer to the callee: {e}")))?;
        let mut invite = dialog
            .request(Method::Invite, Some(sdp.to_bytes()))
            .map_err(|_| Refusal::new(500, "Cannot build the INVITE"))?;
        let hops = self.a.invite.max_forwards().unwrap_or(70).saturating_sub(1);
        let _ = invite.set_header(HeaderName::MAX_FORWARDS, &hops.to_string());
        calls.register(
            &dialog.call_id,
            calls
                .inbox(&self.a.dialog.call_id)
                .ok_or_else(|| Refusal::new(500, "Call gone"))?,
        );
        if !self.start_client(invite.clone(), plan.dest, Role::BInvite) {
            return Err(Refusal::new(500, "Cannot start the INVITE"));
        }
        dialog.cseq = invite.cseq().seq;
        self.b = Some(Box::new(LegB {
            dialog,
            invite,
            pending,
            stream: None,
            setting: plan.setting,
            media_ip,
            sdp_version: 0,
            provisional: false,
            cancel_pending: false,
            answered: false,
            record: plan.record,
            auth: plan.auth,
            tag: b_tag,
            remote_tag: None,
        }));
        self.phase = Phase::Ringing;
        self.ring_deadline = Some(Instant::now() + calls.config.ring_timeout);
        Ok(())
    }

    async fn on_b_response(&mut self, r: Response) {
        let status = r.status();
        let Some(b) = &mut self.b else { return };
        match status {
            100 => {}
            101..=199 => {
                b.provisional = true;
                if b.cancel_pending {
                    self.cancel_b();
                } else if self.phase == Phase::Ringing {
                    let code = if status == 183 { 183 } else { 180 };
                    self.respond_a(code, None, None).await;
                }
            }
            200..=299 => self.on_b_answer(r).await,
            401 | 407 if self.phase == Phase::Ringing && b.auth.is_some() => self.answer_b_challenge(&r).await,
            _ => {
                tracing::info!(
                    call = self.id,
                    status,
                    reason = r.reason(),
                    "the callee refused the call"
                );
                if self.phase == Phase::Ringing {
                    let (code, reason) = map_failure(status);
                    self.fail_a(Refusal::new(code, reason)).await;
                }
            }
        }
    }

    /// The trunk challenged our INVITE: send it again with credentials
    /// (once; a second challenge is a refusal).
    async fn answer_b_challenge(&mut self, r: &Response) {
        let Some(b) = &mut self.b else { return };
        let Some(auth) = b.auth.take() else { return };
        let Some((kind, challenge)) = pbx_sip::auth::ServerChallenge::from_response(r) else {
            self.fail_a(Refusal::new(502, "Bad Gateway")).await;
            return;
        };
        let uri = b.invite.uri().to_string();
        let answer = challenge.answer("INVITE", &uri, &auth.username, auth.password.expose(), &new_tag(), 1);
        let body = b.invite.body().to_vec();
        let hops = b.invite.max_forwards().unwrap_or(70);
        let Ok(mut invite) = b.dialog.request(Method::Invite, Some(body)) else {
            return;
        };
        let _ = invite.set_header(HeaderName::MAX_FORWARDS, &hops.to_string());
        if invite.push_header(kind.credentials_header(), &answer).is_err() {
            return;
        }
        let dest = b.dialog.dest;
        b.invite = invite.clone();
        self.start_client(invite, dest, Role::BInvite);
        tracing::info!(call = self.id, "answered the trunk's digest challenge");
    }

    async fn on_b_answer(&mut self, r: Response) {
        let Some(b) = &mut self.b else { return };
        if b.answered {
            if let Ok(ack) = b.dialog.ack(r.cseq().seq) {
                let _ = self.core.send(&b.dialog.dest, ack.to_bytes()).await;
            }
            return;
        }
        b.answered = true;
        if let Some(to) = r.headers().get(&HeaderName::TO) {
            b.dialog.remote = to.to_string();
        }
        b.remote_tag = r.to().tag().map(str::to_string);
        if let Some(contact) = r.contacts().ok().flatten().and_then(|c| c.into_iter().next()) {
            b.dialog.target = contact.uri;
        }
        if let Ok(ack) = b.dialog.ack(r.cseq().seq) {
            let _ = self.core.send(&b.dialog.dest, ack.to_bytes()).await;
        }
        if self.phase != Phase::Ringing {
            // Cancelled or timed out while the answer was on its way.
            self.send_bye(Side::B);
            self.phase = Phase::Ending;
            return;
        }
        let accepted = Sdp::parse_bytes(r.body())
            .map_err(|e| e.to_string())
            .and_then(|sdp| b.pending.accept_answer(&sdp).map_err(|e| e.to_string()));
        let record = b.record;
        let stream = match accepted {
            Ok(mut streams) if !streams.is_empty() => streams.remove(0),
            Ok(_) | Err(_) => {
                tracing::info!(call = self.id, "the callee's answer is unusable");
                self.send_bye(Side::B);
                self.respond_a(502, Some("Bad Gateway"), Some("the callee's SDP answer was unusable"))
                    .await;
                self.phase = Phase::Ending;
                return;
            }
        };
        let mut local = local_media(
            self.a.media_ip,
            self.media_local(Side::A).rtp.port(),
            agreed_codecs(&stream),
            None,
            self.session_id,
        );
        local.rtcp_mux = true;
        let answer = pbx_sdp::answer(&self.a.offer, &local, &answer_policy(self.a.setting), &mut fresh_key);
        let (sdp, mut a_streams) = match answer {
            Ok(x) => x,
            Err(e) => {
                self.send_bye(Side::B);
                let code = e.sip_status();
                self.respond_a(code, None, Some(&format!("no common media: {e}"))).await;
                self.phase = Phase::Ending;
                return;
            }
        };
        let a_stream = a_streams.remove(0);
        self.configure(Side::B, &stream);
        self.configure(Side::A, &a_stream);
        self.set_stream(Side::B, stream);
        self.a.stream = Some(a_stream);
        self.phase = Phase::Answered;
        self.ring_deadline = None;
        self.answered_at = Some(Instant::now());
        self.core.calls.counters.answered.fetch_add(1, Ordering::Relaxed);
        if record {
            self.start_recording();
        }
        tracing::info!(call = self.id, setup = ?self.began.elapsed(), "answered");
        let Some(mut ok) = self.a_response(200, None) else {
            return;
        };
        if ok.set_body(Some("application/sdp"), sdp.to_bytes()).is_err() {
            return;
        }
        self.respond(Role::AInvite, ok).await;
    }

    /// The relay's local RTP port for `side`.
    fn media_local(&self, side: Side) -> pbx_media::LegAddrs {
        match &self.media {
            Some(m) => m.local(side),
            None => pbx_media::LegAddrs {
                rtp: SocketAddr::from(([0, 0, 0, 0], 9)),
                rtcp: SocketAddr::from(([0, 0, 0, 0], 9)),
            },
        }
    }

    fn configure(&self, side: Side, stream: &NegotiatedStream) {
        let Some(media) = &self.media else { return };
        // Does not wait for the relay worker (no `blocking` needed).
        if let Err(e) = media.configure(side, leg_config(stream)) {
            tracing::error!(call = self.id, "media relay refused the {} leg: {e}", name(side));
        }
    }

    fn start_recording(&self) {
        let dir = &self.core.calls.config.recordings_dir;
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::error!("cannot create {}: {e}", dir.display());
            return;
        }
        let safe: String = self
            .a
            .dialog
            .call_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
            .take(48)
            .collect();
        let path = dir.join(format!("{}-{safe}.wav", utc_stamp()));
        let Some(media) = &self.media else { return };
        match blocking(|| media.record(&path)) {
            Ok(()) => tracing::info!(call = self.id, path = %path.display(), "recording"),
            Err(e) => tracing::error!(call = self.id, "cannot record to {}: {e}", path.display()),
        }
    }

    /// The caller's CANCEL (or BYE before an answer).
    async fn cancelled_by_a(&mut self) {
        match self.phase {
            Phase::Ringing => {
                tracing::info!(call = self.id, "cancelled by the caller");
                self.respond_a(487, None, None).await;
                self.cancel_b();
                self.phase = Phase::Cancelling;
            }
            Phase::Routing => {
                self.respond_a(487, None, None).await;
                self.phase = Phase::Done;
            }
            _ => {}
        }
    }

    /// CANCEL the callee's INVITE (once it has answered provisionally, as
    /// RFC 3261 §9.1 asks; until then the CANCEL waits).
    fn cancel_b(&mut self) {
        let Some(b) = &mut self.b else { return };
        if b.answered {
            return;
        }
        if !b.provisional {
            b.cancel_pending = true;
            return;
        }
        b.cancel_pending = false;
        let Ok(cancel) = cancel_for(&b.invite) else { return };
        let dest = b.dialog.dest;
        self.start_client(cancel, dest, Role::Cancel);
    }

    /// End an answered call: BYE to every leg except `by`, which hung up.
    async fn hang_up(&mut self, by: Option<Side>) {
        if !matches!(self.phase, Phase::Answered) {
            if by.is_none() && self.phase == Phase::Ringing {
                self.respond_a(480, None, None).await;
                self.cancel_b();
                self.phase = Phase::Cancelling;
            }
            return;
        }
        for side in [Side::A, Side::B] {
            if Some(side) != by {
                self.send_bye(side);
            }
        }
        self.phase = Phase::Ending;
    }

    fn send_bye(&mut self, side: Side) {
        let dialog = match side {
            Side::A => &mut self.a.dialog,
            Side::B => match &mut self.b {
                Some(b) => &mut b.dialog,
                None => return,
            },
        };
        let dest = dialog.dest;
        let Ok(bye) = dialog.request(Method::Bye, None) else {
            return;
        };
        self.start_client(bye, dest, Role::Bye);
    }

    /// Start a client transaction for `request` toward `dest`; false if
    /// the request cannot start one.
    fn start_client(&mut self, request: Request, dest: Source, role: Role) -> bool {
        let (reliability, now) = (reliability(dest.proto), std::time::Instant::now());
        let txn = if request.method() == &Method::Invite {
            ClientInvite::new(request, reliability, Timers::default(), now).map(|t| Txn::Invite(Box::new(t)))
        } else {
            ClientNonInvite::new(request, reliability, Timers::default(), now).map(|t| Txn::Other(Box::new(t)))
        };
        let Ok(txn) = txn else { return false };
        self.txns.push(Tx {
            txn,
            dest,
            role,
            done: false,
        });
        true
    }

    /// A re-INVITE from `side` (hold, resume, new keys): passed to the
    /// other leg as our own offer, answered when that leg answers.
    async fn reinvite_from(&mut self, side: Side, request: Request, source: Source) {
        let Ok(server) = ServerInvite::new(&request, reliability(source.proto), Timers::default()) else {
            return;
        };
        self.txns.push(Tx {
            txn: Txn::Server(Box::new(server)),
            dest: source,
            role: Role::ReinviteIn(side),
            done: false,
        });
        if self.phase != Phase::Answered || self.reinvite.is_some() {
            self.respond_reinvite(side, &request, 491, None, None).await;
            return;
        }
        let offer = match Sdp::parse_bytes(request.body()) {
            Ok(o) if !request.body().is_empty() => o,
            _ => {
                let why = Some("re-INVITE needs a well-formed SDP offer");
                self.respond_reinvite(side, &request, 488, why, None).await;
                return;
            }
        };
        let to = other(side);
        let (ip, port) = (self.media_ip(to), self.media_local(to).rtp.port());
        let mut local = local_media(ip, port, offered_codecs(&offer), Some(&offer), self.session_id);
        local.origin.session_version = self.bump_version(to);
        let current = self.stream(to);
        let srtp = match current.and_then(|s| s.srtp.as_ref()) {
            Some(p) if current.is_some_and(|s| s.proto.is_sdes_srtp()) => SrtpOffer::mandatory(&[p.suite]),
            Some(p) => SrtpOffer::best_effort(&[p.suite]),
            None => SrtpOffer::plain(),
        };
        let previous = current.and_then(|s| s.srtp.as_ref()).map(|p| p.local_key.clone());
        let offered = pbx_sdp::offer(&local, &srtp, &mut keep_key(previous.as_ref(), fresh_key));
        let Ok((sdp, pending)) = offered else {
            self.respond_reinvite(side, &request, 488, Some("cannot pass the offer on"), None)
                .await;
            return;
        };
        let dialog = match to {
            Side::A => &mut self.a.dialog,
            Side::B => match &mut self.b {
                Some(b) => &mut b.dialog,
                None => return,
            },
        };
        let dest = dialog.dest;
        let Ok(invite) = dialog.request(Method::Invite, Some(sdp.to_bytes())) else {
            return;
        };
        let cseq = invite.cseq().seq;
        if self.start_client(invite, dest, Role::ReinviteOut(to)) {
            self.reinvite = Some(Box::new(Reinvite {
                from: side,
                request,
                offer,
                pending,
                cseq,
            }));
            tracing::info!(call = self.id, "re-INVITE from the {} passed on", name(side));
        }
    }

    async fn on_reinvite_response(&mut self, to: Side, r: Response) {
        let status = r.status();
        if status < 200 {
            return;
        }
        if (200..300).contains(&status) {
            let dialog = match to {
                Side::A => &self.a.dialog,
                Side::B => match &self.b {
                    Some(b) => &b.dialog,
                    None => return,
                },
            };
            if let Ok(ack) = dialog.ack(r.cseq().seq) {
                let _ = self.core.send(&dialog.dest, ack.to_bytes()).await;
            }
        }
        let Some(re) = self.reinvite.take() else { return };
        if r.cseq().seq != re.cseq {
            self.reinvite = Some(re);
            return;
        }
        if status >= 300 {
            self.respond_reinvite(re.from, &re.request, status, Some(r.reason()), None)
                .await;
            return;
        }
        let stream = match Sdp::parse_bytes(r.body())
            .map_err(|e| e.to_string())
            .and_then(|sdp| re.pending.accept_answer(&sdp).map_err(|e| e.to_string()))
        {
            Ok(mut s) if !s.is_empty() => s.remove(0),
            _ => {
                let why = Some("the other party's answer was unusable");
                self.respond_reinvite(re.from, &re.request, 488, why, None).await;
                return;
            }
        };
        let from = re.from;
        let mut local = local_media(
            self.media_ip(from),
            self.media_local(from).rtp.port(),
            agreed_codecs(&stream),
            None,
            self.session_id,
        );
        local.rtcp_mux = true;
        local.origin.session_version = self.bump_version(from);
        let previous = self
            .stream(from)
            .and_then(|s| s.srtp.as_ref())
            .map(|p| p.local_key.clone());
        let setting = match from {
            Side::A => self.a.setting,
            Side::B => self.b.as_ref().map_or(MediaSetting::Off, |b| b.setting),
        };
        let answered = pbx_sdp::answer(
            &re.offer,
            &local,
            &answer_policy(setting),
            &mut keep_key(previous.as_ref(), fresh_key),
        );
        let (sdp, mut streams) = match answered {
            Ok(x) => x,
            Err(e) => {
                let why = format!("no common media: {e}");
                self.respond_reinvite(from, &re.request, e.sip_status(), Some(&why), None)
                    .await;
                return;
            }
        };
        let from_stream = streams.remove(0);
        self.configure(to, &stream);
        self.configure(from, &from_stream);
        tracing::info!(call = self.id, direction = ?from_stream.direction, "re-INVITE answered");
        self.set_stream(to, stream);
        self.set_stream(from, from_stream);
        self.respond_reinvite(from, &re.request, 200, None, Some(sdp.to_bytes()))
            .await;
    }

    fn media_ip(&self, side: Side) -> std::net::IpAddr {
        match side {
            Side::A => self.a.media_ip,
            Side::B => self.b.as_ref().map_or(self.a.media_ip, |b| b.media_ip),
        }
    }

    fn stream(&self, side: Side) -> Option<&NegotiatedStream> {
        match side {
            Side::A => self.a.stream.as_ref(),
            Side::B => self.b.as_ref().and_then(|b| b.stream.as_ref()),
        }
    }

    fn set_stream(&mut self, side: Side, stream: NegotiatedStream) {
        match side {
            Side::A => self.a.stream = Some(stream),
            Side::B => {
                if let Some(b) = &mut self.b {
                    b.stream = Some(stream);
                }
            }
        }
    }

    fn bump_version(&mut self, side: Side) -> u64 {
        let v = match side {
            Side::A => &mut self.a.sdp_version,
            Side::B => match &mut self.b {
                Some(b) => &mut b.sdp_version,
                None => return 1,
            },
        };
        *v += 1;
        *v
    }

    /// A final or provisional response to the caller's INVITE.
    async fn respond_a(&mut self, code: u16, reason: Option<&str>, warn: Option<&str>) {
        let Some(mut r) = self.a_response(code, reason) else {
            return;
        };
        if let Some(w) = warn {
            let _ = r.push_header(HeaderName::WARNING, &warning(w));
        }
        self.respond(Role::AInvite, r).await;
    }

    /// Refuse the call (the caller's INVITE gets a final response).
    async fn fail_a(&mut self, refusal: Refusal) {
        let warn = refusal.warning.as_deref();
        self.respond_a(refusal.code, Some(&refusal.reason), warn).await;
        self.ring_deadline = None;
        self.phase = Phase::Done;
    }

    fn a_response(&self, code: u16, reason: Option<&str>) -> Option<Response> {
        let mut r = response_to(&self.a.invite, code, reason).ok()?;
        if code > 100 {
            r.set_to_tag(&self.a.tag).ok()?;
        }
        if (101..300).contains(&code) {
            r.push_header(HeaderName::CONTACT, &self.a.dialog.contact).ok()?;
        }
        if (200..300).contains(&code) {
            r.push_header(HeaderName::ALLOW, crate::sip::ALLOW).ok()?;
        }
        Some(r)
    }

    /// Respond in the server transaction of `role`; a 2xx over UDP is
    /// retransmitted until its ACK (RFC 3261 §13.3.1.4).
    async fn respond(&mut self, role: Role, response: Response) {
        let now = std::time::Instant::now();
        let status = response.status();
        let Some(t) = self.txns.iter_mut().find(|t| t.role == role) else {
            return;
        };
        let dest = t.dest;
        if let Txn::Server(s) = &mut t.txn
            && s.respond(response.clone(), now).is_ok()
            && (200..300).contains(&status)
            && dest.proto == Proto::Udp
        {
            let start = Instant::now();
            self.resend = Some(Resend {
                bytes: Message::Response(response).to_bytes(),
                dest,
                next: start + Duration::from_millis(500),
                interval: Duration::from_millis(500),
                until: start + Duration::from_secs(32),
            });
        }
    }

    /// Answer the re-INVITE from `side` (a refusal says why in a
    /// `Warning`; a 2xx carries our SDP answer).
    async fn respond_reinvite(
        &mut self,
        side: Side,
        request: &Request,
        code: u16,
        warn: Option<&str>,
        sdp: Option<Vec<u8>>,
    ) {
        let Ok(mut r) = response_to(request, code, None) else {
            return;
        };
        if let Some(w) = warn {
            let _ = r.push_header(HeaderName::WARNING, &warning(w));
        }
        if (200..300).contains(&code) {
            let contact = match side {
                Side::A => self.a.dialog.contact.clone(),
                Side::B => self.b.as_ref().map(|b| b.dialog.contact.clone()).unwrap_or_default(),
            };
            let _ = r.push_header(HeaderName::CONTACT, &contact);
        }
        if let Some(body) = sdp {
            let _ = r.set_body(Some("application/sdp"), body);
        }
        self.respond(Role::ReinviteIn(side), r).await;
    }
}

/// Run `f`, which waits briefly for the relay worker, without stalling
/// the other tasks of this runtime thread (other calls, plugin deadlines).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// How to reach the callee.
struct Plan {
    /// Credentials for the callee's digest challenge (trunks).
    auth: Option<super::TrunkAuth>,
    uri: Uri,
    to: String,
    dest: Source,
    offer: SrtpOffer,
    setting: MediaSetting,
    record: bool,
}

fn name(side: Side) -> &'static str {
    match side {
        Side::A => "caller",
        Side::B => "callee",
    }
}

/// The caller's response for a callee's failure: busy stays busy, no
/// answer and unreachable become 480, the callee's server trouble a 502
/// (a 503 would tell the caller's proxy that the PBX itself is down).
fn map_failure(status: u16) -> (u16, &'static str) {
    match status {
        486 | 600 => (486, "Busy Here"),
        603 => (603, "Decline"),
        404 | 484 | 604 => (404, "Not Found"),
        487 => (487, "Request Terminated"),
        488 | 606 => (488, "Not Acceptable Here"),
        300..=399 | 408 | 480 => (480, "Temporarily Unavailable"),
        401 | 403 | 407 => (403, "Forbidden"),
        500..=599 => (502, "Bad Gateway"),
        _ => (480, "Temporarily Unavailable"),
    }
}

/// The plugin-facing view of a new call.
fn plugin_call(invite: &Request, source: &Source, offer: &Sdp, caller: types::Caller, domain: String) -> types::Call {
    let mut headers = String::new();
    for name in PLUGIN_HEADERS {
        let Ok(h) = HeaderName::new(name) else { continue };
        for v in invite.headers().get_all(&h) {
            if let Ok(h) = Header::new(h.clone(), v) {
                headers.push_str(h.name().as_str());
                headers.push_str(": ");
                headers.push_str(h.value());
                headers.push_str("\r\n");
            }
        }
    }
    types::Call {
        call_id: invite.call_id().to_string(),
        request_uri: invite.uri().to_string(),
        from_uri: invite.from().uri.to_string(),
        from_display: invite.from().display_name(),
        to_uri: invite.to().uri.to_string(),
        domain,
        caller,
        source_transport: match source.proto {
            Proto::Udp => types::Transport::Udp,
            Proto::Tcp => types::Transport::Tcp,
            Proto::Tls => types::Transport::Tls,
        },
        source_addr: source.remote.to_string(),
        client_cert_subject: None,
        caller_srtp: offers_srtp(offer),
        headers,
    }
}

/// `YYYYMMDD-HHMMSS` in UTC, for recording file names.
fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_what_a_caller_understands() {
        assert_eq!(map_failure(486).0, 486);
        assert_eq!(map_failure(600).0, 486);
        assert_eq!(map_failure(603).0, 603);
        assert_eq!(map_failure(503).0, 502);
        assert_eq!(map_failure(302).0, 480);
        assert_eq!(map_failure(407).0, 403);
    }

    #[test]
    fn utc_stamp_has_the_right_shape() {
        let s = utc_stamp();
        assert_eq!(s.len(), 15, "{s}");
        assert!(s.starts_with("20"));
        assert_eq!(&s[8..9], "-");
    }
}
