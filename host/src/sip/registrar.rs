//! The registrar: REGISTER with digest authentication (MD5 and SHA-256,
//! `qop=auth`), Expires/Min-Expires, several contacts, `*` removal, and
//! bindings kept in memory and in the store so they survive a restart.
//!
//! A binding remembers the flow its REGISTER arrived on: requests to the
//! phone go back over that connection (never a new one to its port, which
//! NAT would block). A binding whose flow has closed is unreachable until
//! the phone registers again.

use super::guard::Guard;
use super::transport::{FlowId, Proto, Source};
use crate::store::{Binding, BindingChange, Store};
use pbx_sip::auth::{Algorithm, AuthError, Authenticator, ChallengeKind, Credential, DigestResponse};
use pbx_sip::response::response_to;
use pbx_sip::{HeaderName, Host, Request, Response, Uri};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Registrar settings.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// The domain a REGISTER to an IP address belongs to.
    pub default_domain: String,
    /// Shortest registration accepted (`423` below it), seconds.
    pub min_expires: u32,
    /// Longest registration granted, seconds.
    pub max_expires: u32,
    /// Registration time when the phone asks for none, seconds.
    pub default_expires: u32,
    /// The digest challenges offered, in this order. Responses with any
    /// supported algorithm are verified. The default is MD5 only: many
    /// phones (baresip 1.0 among them) know only MD5 and give up when a
    /// challenge with another algorithm is present at all.
    pub algorithms: Vec<Algorithm>,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            default_domain: "localhost".into(),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            algorithms: vec![Algorithm::Md5],
        }
    }
}

/// One registered contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingEntry {
    /// The Contact URI.
    pub contact: String,
    /// RFC 5626 instance and reg-id, when the phone supports outbound.
    pub instance: Option<String>,
    /// RFC 5626 reg-id.
    pub reg_id: Option<u32>,
    /// Expiry, UNIX seconds.
    pub expires_at: u64,
    /// Where the REGISTER came from (its flow, for TCP and TLS).
    pub source: Source,
    /// The Call-ID of the REGISTER.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
}

type Aor = (String, String);

/// The registrar.
pub struct Registrar {
    store: Arc<dyn Store>,
    config: RegistrarConfig,
    guard: Guard,
    realms: Mutex<HashMap<String, Authenticator>>,
    bindings: Mutex<HashMap<Aor, Vec<BindingEntry>>>,
    /// Binding changes on their way to the store (written by a background
    /// thread, so a REGISTER never waits for the database).
    persist: std::sync::mpsc::Sender<Persist>,
}

/// How long the binding writer gathers changes before writing them in one
/// transaction. Bindings reach the disk at most this much later; a burst
/// of registrations costs one database commit instead of one each.
const PERSIST_GATHER: std::time::Duration = std::time::Duration::from_millis(20);

/// What the registrar tells its binding writer.
enum Persist {
    /// The new bindings of an address-of-record (turned into store rows
    /// by the writer, once per gathered batch rather than per REGISTER).
    Change(Aor, Vec<BindingEntry>),
    /// Write everything sent before this now, then answer.
    Sync(std::sync::mpsc::SyncSender<()>),
}

/// Write binding changes to the store, coalescing bursts: of several
/// changes to one address-of-record only the last is written, and what
/// arrives within [`PERSIST_GATHER`] is written in one transaction.
fn spawn_persister(store: Arc<dyn Store>) -> std::sync::mpsc::Sender<Persist> {
    let (tx, rx) = std::sync::mpsc::channel::<Persist>();
    let spawned = std::thread::Builder::new()
        .name("registrar-store".into())
        .spawn(move || {
            let mut batch: HashMap<Aor, Vec<BindingEntry>> = HashMap::new();
            let mut waiting = Vec::new();
            while let Ok(first) = rx.recv() {
                // Sleep through the gathering time rather than wait on the
                // channel: a waiting receiver costs each sender a wake-up.
                if !matches!(first, Persist::Sync(_)) {
                    std::thread::sleep(PERSIST_GATHER);
                }
                for msg in std::iter::once(first).chain(rx.try_iter()) {
                    match msg {
                        Persist::Change(aor, rows) => {
                            batch.insert(aor, rows);
                        }
                        Persist::Sync(ack) => waiting.push(ack),
                    }
                }
                if !batch.is_empty() {
                    let rows: Vec<(&Aor, Vec<Binding>)> = batch
                        .iter()
                        .map(|(aor, entries)| (aor, store_rows(aor, entries)))
                        .collect();
                    let changes: Vec<BindingChange<'_>> = rows
                        .iter()
                        .map(|((domain, extension), rows)| BindingChange {
                            domain,
                            extension,
                            bindings: rows,
                        })
                        .collect();
                    if let Err(e) = store.save_bindings(&changes) {
                        tracing::error!(count = changes.len(), "saving registrations: {e}");
                    }
                    drop(changes);
                    drop(rows);
                    batch.clear();
                }
                for ack in waiting.drain(..) {
                    let _ = ack.send(());
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the registration writer, registrations will not survive a restart: {e}");
    }
    tx
}

impl Registrar {
    /// A registrar over `store`, with the unexpired bindings it holds.
    pub fn new(store: Arc<dyn Store>, config: RegistrarConfig) -> Registrar {
        let mut bindings: HashMap<Aor, Vec<BindingEntry>> = HashMap::new();
        match store.bindings(unix_now()) {
            Ok(saved) => {
                for b in saved {
                    let Some(source) = parse_source(&b.source) else {
                        continue;
                    };
                    bindings
                        .entry((b.domain.clone(), b.extension.clone()))
                        .or_default()
                        .push(BindingEntry {
                            contact: b.contact,
                            instance: b.instance,
                            reg_id: b.reg_id,
                            expires_at: b.expires_at,
                            source,
                            call_id: b.call_id,
                            cseq: b.cseq,
                        });
                }
            }
            Err(e) => tracing::error!("cannot load saved registrations: {e}"),
        }
        Registrar {
            persist: spawn_persister(store.clone()),
            store,
            config,
            guard: Guard::default(),
            realms: Mutex::new(HashMap::new()),
            bindings: Mutex::new(bindings),
        }
    }

    /// The current bindings of `extension@domain`.
    pub fn lookup(&self, domain: &str, extension: &str) -> Vec<BindingEntry> {
        let now = unix_now();
        let map = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(domain.to_ascii_lowercase(), extension.to_string()))
            .map(|v| v.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default()
    }

    /// Forget the flow of bindings made over `flow`: they stay registered
    /// but are unreachable until the phone registers again.
    pub fn flow_closed(&self, flow: FlowId) {
        let mut map = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        for b in map.values_mut().flatten() {
            if b.source.flow == Some(flow) {
                b.source.flow = None;
            }
        }
    }

    /// Handle a REGISTER.
    pub async fn register(&self, req: &Request, source: &Source) -> Option<Response> {
        let reply = |code: u16, reason: Option<&str>| response_to(req, code, reason).ok();
        let Some((domain, user)) = self.aor(req.to()) else {
            return reply(404, Some("Not a registrable address"));
        };
        if let Err(reply) = self.authenticate(req, source, &domain, &user, ChallengeKind::Www) {
            return reply.map(|r| *r);
        }

        // Update the bindings.
        let contacts = match req.contacts() {
            Ok(c) => c,
            Err(_) => return reply(400, Some("Bad Contact header")),
        };
        let header_expires = req
            .headers()
            .get(&HeaderName::EXPIRES)
            .and_then(|v| v.trim().parse::<u32>().ok());
        let aor = (domain.clone(), user.clone());
        let now_secs = unix_now();
        let cseq = req.cseq().seq;
        let call_id = req.call_id().to_string();
        // What a contact asks for: its own expires parameter, else the
        // Expires header, else the default.
        let asked_expires = |c: &pbx_sip::NameAddr| {
            c.params
                .value("expires")
                .and_then(|v| v.trim().parse::<u32>().ok())
                .or(header_expires)
                .unwrap_or(self.config.default_expires)
        };
        let current = {
            let mut map = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
            let list = map.entry(aor.clone()).or_default();
            list.retain(|b| b.expires_at > now_secs);
            match contacts {
                None => {
                    if header_expires != Some(0) {
                        return reply(400, Some("Contact: * needs Expires: 0"));
                    }
                    list.clear();
                }
                Some(contacts) => {
                    for c in &contacts {
                        let asked = asked_expires(c);
                        if asked != 0 && asked < self.config.min_expires {
                            let mut r = reply(423, None)?;
                            r.push_header(HeaderName::MIN_EXPIRES, &self.config.min_expires.to_string())
                                .ok()?;
                            return Some(r);
                        }
                    }
                    for c in contacts {
                        let asked = asked_expires(&c).min(self.config.max_expires);
                        let contact = c.uri.to_string();
                        let instance = c.params.value("+sip.instance").map(str::to_string);
                        let reg_id = c.params.value("reg-id").and_then(|v| v.parse().ok());
                        let same = |b: &BindingEntry| match (&instance, reg_id, &b.instance, b.reg_id) {
                            (Some(i), Some(r), Some(bi), Some(br)) => i == bi && r == br,
                            _ => b.contact == contact,
                        };
                        if let Some(old) = list.iter().find(|b| same(b))
                            && old.call_id == call_id
                            && old.cseq >= cseq
                        {
                            return reply(500, Some("Out of order CSeq"));
                        }
                        list.retain(|b| !same(b));
                        if asked > 0 {
                            list.push(BindingEntry {
                                contact,
                                instance,
                                reg_id,
                                expires_at: now_secs + u64::from(asked),
                                source: *source,
                                call_id: call_id.clone(),
                                cseq,
                            });
                        }
                    }
                }
            }
            let current = list.clone();
            if list.is_empty() {
                map.remove(&aor);
            }
            current
        };
        tracing::debug!(extension = %user, %domain, %source, bindings = current.len(), "registered");
        let ok = reply(200, None).and_then(|mut ok| {
            for b in &current {
                let contact = format!("<{}>;expires={}", b.contact, b.expires_at.saturating_sub(now_secs));
                ok.push_header(HeaderName::CONTACT, &contact).ok()?;
            }
            Some(ok)
        });
        let _ = self.persist.send(Persist::Change(aor, current));
        ok
    }

    /// Digest authentication of `req` as `user@domain`: `Ok` when its
    /// credentials are right, else the response to send (a challenge, `403`
    /// or `500`). REGISTER is challenged with `401`, calls with `407`.
    pub fn authenticate(
        &self,
        req: &Request,
        source: &Source,
        domain: &str,
        user: &str,
        kind: ChallengeKind,
    ) -> Result<(), Option<Box<Response>>> {
        let reply = |code: u16, reason: Option<&str>| response_to(req, code, reason).ok().map(Box::new);
        let ip = source.remote.ip();
        if self.guard.is_blocked(ip, Instant::now()) {
            return Err(reply(403, Some("Too many failed authentication attempts")));
        }
        let now = SystemTime::now();
        let credentials = req
            .headers()
            .get_all(&kind.credentials_header())
            .filter_map(|v| DigestResponse::parse(v).ok())
            .find(|d| d.realm.eq_ignore_ascii_case(domain));
        let Some(credentials) = credentials else {
            if req.headers().contains(&kind.credentials_header()) {
                self.failed(ip, source, user, domain, "unusable credentials");
            }
            return Err(self.challenge(req, domain, false, kind).map(Box::new));
        };
        let extension = match self.store.extension(domain, user) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("registrar store: {e}");
                return Err(reply(500, Some("Database unavailable")));
            }
        };
        // Unknown extensions are checked against a throwaway password so
        // the answer does not reveal whether the extension exists.
        let password = extension
            .as_ref()
            .map_or_else(crate::store::random_password, |e| e.password.clone());
        let verdict = {
            let mut realms = self.realms.lock().unwrap_or_else(|p| p.into_inner());
            match realm(&mut realms, domain) {
                Some(auth) => auth.verify(&credentials, req.method(), &Credential::Password(password), now),
                None => return Err(reply(500, Some("No randomness for nonces"))),
            }
        };
        match verdict {
            Ok(()) if credentials.username == user && extension.is_some() => Ok(()),
            Err(AuthError::StaleNonce) => Err(self.challenge(req, domain, true, kind).map(Box::new)),
            Err(AuthError::InvalidNonce | AuthError::OpaqueMismatch) => {
                self.failed(ip, source, user, domain, "nonce not ours");
                Err(self.challenge(req, domain, false, kind).map(Box::new))
            }
            _ => {
                self.failed(ip, source, user, domain, "wrong credentials");
                Err(reply(403, Some("Forbidden")))
            }
        }
    }

    /// A `401` (or `407`) with the configured digest challenges.
    fn challenge(&self, req: &Request, domain: &str, stale: bool, kind: ChallengeKind) -> Option<Response> {
        let (status, header) = (kind.status(), kind.challenge_header());
        let mut r = response_to(req, status, None).ok()?;
        let mut realms = self.realms.lock().unwrap_or_else(|p| p.into_inner());
        let auth = realm(&mut realms, domain)?;
        let now = SystemTime::now();
        for c in self.config.algorithms.iter().map(|a| auth.challenge(*a, stale, now)) {
            r.push_header(header.clone(), &c.to_string()).ok()?;
        }
        Some(r)
    }

    fn failed(&self, ip: std::net::IpAddr, source: &Source, user: &str, domain: &str, why: &str) {
        if self.guard.failed(ip, Instant::now()) {
            tracing::warn!(%source, "authentication failures from {ip}: refusing it for a while");
        }
        tracing::debug!(%source, extension = user, domain, "authentication failed: {why}");
    }

    /// Waits until every binding change made so far is in the store (at
    /// shutdown, so a restart finds them). Blocks for at most one
    /// database commit; returns false if the writer is gone.
    pub fn sync(&self) -> bool {
        let (ack, done) = std::sync::mpsc::sync_channel(1);
        self.persist.send(Persist::Sync(ack)).is_ok() && done.recv().is_ok()
    }

    /// The address-of-record of a To header: (domain, extension). A
    /// REGISTER to an IP address belongs to the default domain.
    pub fn aor(&self, to: &pbx_sip::NameAddr) -> Option<(String, String)> {
        let Uri::Sip(uri) = &to.uri else { return None };
        let user = uri.user.clone().filter(|u| !u.is_empty() && u.len() <= 64)?;
        let domain = match &uri.host {
            Host::Domain(d) => d.to_ascii_lowercase(),
            Host::Ipv4(_) | Host::Ipv6(_) => self.config.default_domain.clone(),
        };
        Some((domain, user))
    }
}

/// The store's rows for the bindings of `aor`.
fn store_rows(aor: &Aor, entries: &[BindingEntry]) -> Vec<Binding> {
    entries
        .iter()
        .map(|b| Binding {
            domain: aor.0.clone(),
            extension: aor.1.clone(),
            contact: b.contact.clone(),
            instance: b.instance.clone(),
            reg_id: b.reg_id,
            source: b.source.to_string(),
            expires_at: b.expires_at,
            call_id: b.call_id.clone(),
            cseq: b.cseq,
        })
        .collect()
}

fn realm<'a>(realms: &'a mut HashMap<String, Authenticator>, domain: &str) -> Option<&'a mut Authenticator> {
    if !realms.contains_key(domain) {
        let auth = Authenticator::with_random_key(domain).ok()?;
        realms.insert(domain.to_string(), auth);
    }
    realms.get_mut(domain)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `tls:1.2.3.4:5061` back into a [`Source`] (without a flow: a restart
/// closed every connection).
fn parse_source(s: &str) -> Option<Source> {
    let (proto, addr) = s.split_once(':')?;
    let proto = match proto {
        "udp" => Proto::Udp,
        "tcp" => Proto::Tcp,
        "tls" => Proto::Tls,
        _ => return None,
    };
    let remote: SocketAddr = addr.parse().ok()?;
    Some(Source {
        proto,
        remote,
        local: SocketAddr::from(([0, 0, 0, 0], 0)),
        flow: None,
    })
}
