//! [`Policy`]: the PBX asks its plugins for decisions here.
//!
//! One slot per [`Hook`] holds the plugin currently serving it in an
//! `ArcSwapOption`: a decision loads the `Arc` once, so a swap never
//! disturbs a decision already running (it finishes on the old version,
//! which is freed when its last call returns). Loading compiles and
//! self-tests the new version before the swap; on any failure the previous
//! version keeps serving.

use super::bindings::types::{Call, Caller, Target, Transport, TrunkCall};
use super::runtime::{CURRENT_CONTRACT, Plugin, PluginInfo, Runtime};
use super::{CallError, Hook, LoadError, certificates, provisioning, routing, security};
use arc_swap::ArcSwapOption;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, UNIX_EPOCH};
use tokio::sync::broadcast;

/// What happened when a plugin file was (re)loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new version was compiled, self-tested and swapped in.
    Loaded {
        /// SHA-256 of the new `.wasm`.
        sha256: String,
        /// Its generation number.
        generation: u64,
    },
    /// The file and its configuration are the same as the serving version.
    Unchanged,
    /// The new version was refused; the previous one (if any) keeps serving.
    Refused(LoadError),
    /// The file was removed; its hooks answer their fail-closed defaults.
    Unloaded,
}

/// A (re)load of one plugin, as broadcast by [`Policy::subscribe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadEvent {
    /// The plugin's name (file name without `.wasm`).
    pub plugin: String,
    /// What happened.
    pub outcome: Outcome,
}

/// The plugin serving a hook, for status displays.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginStatus {
    /// File name without `.wasm`.
    pub file: String,
    /// What the plugin says it is.
    pub info: PluginInfo,
    /// SHA-256 of the `.wasm`.
    pub sha256: String,
    /// Load time, seconds since the UNIX epoch.
    pub loaded_at: u64,
    /// Generation number (increases with every load).
    pub generation: u64,
}

/// One hook's state, for `pbx plugins list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HookStatus {
    /// The hook.
    pub hook: Hook,
    /// The plugin configured for it.
    pub configured: String,
    /// The version serving it, if one is loaded.
    pub plugin: Option<PluginStatus>,
    /// Decisions asked.
    pub calls: u64,
    /// Decisions that fell back to the fail-closed default.
    pub failures: u64,
    /// The most recent failure.
    pub last_error: Option<String>,
}

struct Slot {
    configured: String,
    current: ArcSwapOption<Plugin>,
    calls: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Milliseconds (since `Policy::started`) of the last failure log line,
    /// so a broken plugin under load logs once a second, not per call.
    last_logged: AtomicU64,
}

/// The policy plugins of one PBX.
pub struct Policy {
    runtime: Arc<Runtime>,
    slots: [Slot; 5],
    events: broadcast::Sender<ReloadEvent>,
    loading: tokio::sync::Mutex<()>,
    started: Instant,
}

impl Policy {
    /// A policy whose hooks are served by the named plugins (file names
    /// without `.wasm`). Nothing is loaded yet: every hook answers its
    /// fail-closed default until [`Policy::load_dir`] or [`Policy::install`].
    pub fn new(runtime: Arc<Runtime>, assignment: impl Fn(Hook) -> String) -> Arc<Self> {
        let slot = |hook| Slot {
            configured: assignment(hook),
            current: ArcSwapOption::empty(),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
            last_logged: AtomicU64::new(0),
        };
        Arc::new(Policy {
            runtime,
            slots: Hook::ALL.map(slot),
            events: broadcast::channel(256).0,
            loading: tokio::sync::Mutex::new(()),
            started: Instant::now(),
        })
    }

    /// The runtime plugins run in.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The names of the configured plugins.
    pub fn plugin_names(&self) -> BTreeSet<String> {
        self.slots.iter().map(|s| s.configured.clone()).collect()
    }

    /// The plugin version now serving `hook`.
    pub fn current(&self, hook: Hook) -> Option<Arc<Plugin>> {
        self.slots[hook.index()].current.load_full()
    }

    /// Reload events: every load, refusal and unload.
    pub fn subscribe(&self) -> broadcast::Receiver<ReloadEvent> {
        self.events.subscribe()
    }

    /// (Re)load every configured plugin from `dir`.
    pub async fn load_dir(&self, dir: &Path) -> Vec<ReloadEvent> {
        let mut events = Vec::new();
        for name in self.plugin_names() {
            events.push(self.reload_from(dir, &name).await);
        }
        events
    }

    /// (Re)load plugin `name` from `dir/<name>.wasm` and its optional
    /// configuration `dir/<name>.json`; a missing `.wasm` unloads it.
    pub async fn reload_from(&self, dir: &Path, name: &str) -> ReloadEvent {
        let wasm_path = dir.join(format!("{name}.wasm"));
        let outcome = match read_plugin_files(&wasm_path, &dir.join(format!("{name}.json"))) {
            Ok(Some((wasm, config))) => match self.install(name, wasm, config).await {
                Ok(Some(p)) => {
                    if p.contract_version() != CURRENT_CONTRACT {
                        tracing::info!(
                            plugin = name,
                            contract = p.contract_version(),
                            "plugin built against an older pbx:policy: served through conversions, \
                             it does not see the fields added since"
                        );
                    }
                    Outcome::Loaded {
                        sha256: p.sha256.clone(),
                        generation: p.generation,
                    }
                }
                Ok(None) => Outcome::Unchanged,
                Err(e) => Outcome::Refused(e),
            },
            Ok(None) => {
                self.unload(name);
                Outcome::Unloaded
            }
            Err(e) => Outcome::Refused(e),
        };
        match &outcome {
            Outcome::Loaded { sha256, generation } => {
                tracing::info!(plugin = name, sha256 = &sha256[..12], generation, "plugin loaded")
            }
            Outcome::Unchanged => tracing::debug!(plugin = name, "plugin unchanged"),
            Outcome::Refused(e) => tracing::error!(
                plugin = name,
                file = %wasm_path.display(),
                "plugin refused, the previous version keeps serving: {e}"
            ),
            Outcome::Unloaded => tracing::warn!(
                plugin = name,
                "plugin file removed: its hooks now answer their fail-closed defaults"
            ),
        }
        let event = ReloadEvent {
            plugin: name.to_string(),
            outcome,
        };
        let _ = self.events.send(event.clone());
        event
    }

    /// Compile, self-test and swap in plugin `name` for every hook assigned
    /// to it. `Ok(None)` when the same bytes and configuration already serve.
    pub async fn install(&self, name: &str, wasm: Vec<u8>, config: String) -> Result<Option<Arc<Plugin>>, LoadError> {
        let hooks: Vec<Hook> = Hook::ALL
            .into_iter()
            .filter(|h| self.slots[h.index()].configured == name)
            .collect();
        // Serialise loads so two quick changes to one file cannot swap in
        // out of order.
        let _guard = self.loading.lock().await;
        if let Some(first) = hooks.first()
            && let Some(cur) = self.current(*first)
            && cur.sha256 == sha256_hex(&wasm)
            && *cur.config == *config
        {
            return Ok(None);
        }
        let plugin = Arc::new(prepare(&self.runtime, name, wasm, config, Some(&hooks)).await?);
        for hook in &hooks {
            self.slots[hook.index()].current.store(Some(plugin.clone()));
        }
        Ok(Some(plugin))
    }

    /// Stop using plugin `name`: its hooks answer their fail-closed defaults.
    pub fn unload(&self, name: &str) {
        for slot in self.slots.iter().filter(|s| s.configured == name) {
            slot.current.store(None);
        }
    }

    /// Status of every hook.
    pub fn status(&self) -> Vec<HookStatus> {
        Hook::ALL
            .into_iter()
            .map(|hook| {
                let slot = &self.slots[hook.index()];
                HookStatus {
                    hook,
                    configured: slot.configured.clone(),
                    plugin: slot.current.load_full().map(|p| PluginStatus {
                        file: p.name.to_string(),
                        info: p.info.clone(),
                        sha256: p.sha256.clone(),
                        loaded_at: p.loaded_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                        generation: p.generation,
                    }),
                    calls: slot.calls.load(Ordering::Relaxed),
                    failures: slot.failures.load(Ordering::Relaxed),
                    last_error: slot.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                }
            })
            .collect()
    }

    /// Routing: where does `call` go? Fail-closed default: `503`.
    pub async fn route(&self, call: &Call) -> routing::Decision {
        let answer = match self.begin(Hook::Routing) {
            Some(p) => p.route(call).await.and_then(check_route),
            None => Err(CallError::NoPlugin),
        };
        self.finish(Hook::Routing, answer, || {
            routing::Decision::Reject(reject(503, "Routing policy unavailable"))
        })
    }

    /// End-to-end security: may `call` proceed over `leg`? Fail-closed
    /// default: reject with `503`.
    pub async fn check_security(&self, call: &Call, leg: &security::Leg) -> security::Verdict {
        let answer = match self.begin(Hook::Security) {
            Some(p) => p.check(call, leg).await.and_then(|v| match v {
                security::Verdict::Reject(r) => check_reject(&r).map(|()| security::Verdict::Reject(r)),
                allow => Ok(allow),
            }),
            None => Err(CallError::NoPlugin),
        };
        self.finish(Hook::Security, answer, || {
            security::Verdict::Reject(reject(503, "Security policy unavailable"))
        })
    }

    /// Trunk exceptions: is `trunk` exempt from end-to-end security?
    /// Fail-closed default: no.
    pub async fn is_trunk_exempt(&self, trunk: &str) -> bool {
        let answer = match self.begin(Hook::TrunkExceptions) {
            Some(p) => p.is_exempt(trunk).await,
            None => Err(CallError::NoPlugin),
        };
        self.finish(Hook::TrunkExceptions, answer, || false)
    }

    /// Certificates: the domain whose certificate this handshake gets, or
    /// `None` for the default. The name is checked to be a plain DNS name
    /// (lower-cased); the caller still checks it holds a certificate for
    /// it. Fail-closed default: `None`.
    pub async fn select_certificate(&self, hello: &certificates::Hello) -> Option<String> {
        let answer = match self.begin(Hook::Certificates) {
            Some(p) => p.select(hello).await.and_then(|name| match name {
                Some(n) if is_dns_name(&n) => Ok(Some(n.to_ascii_lowercase())),
                Some(_) => Err(CallError::Malformed("certificate name is not a DNS name".into())),
                None => Ok(None),
            }),
            None => Err(CallError::NoPlugin),
        };
        self.finish(Hook::Certificates, answer, || None)
    }

    /// The certificate a TLS handshake gets: the domain the certificates
    /// hook names if `held` says a certificate for it exists, else `None`
    /// (the default certificate).
    pub async fn certificate_for(&self, hello: &certificates::Hello, held: impl Fn(&str) -> bool) -> Option<String> {
        self.select_certificate(hello).await.filter(|d| held(d))
    }

    /// Provisioning: may this file carry the password, and the new
    /// "provisioned" flag. Fail-closed default: no password, flag unchanged.
    pub async fn provisioning_password(&self, request: &provisioning::Request) -> provisioning::Decision {
        let answer = match self.begin(Hook::Provisioning) {
            Some(p) => p.password(request).await,
            None => Err(CallError::NoPlugin),
        };
        self.finish(Hook::Provisioning, answer, || provisioning::Decision {
            include_password: false,
            provisioned: request.provisioned,
        })
    }

    fn begin(&self, hook: Hook) -> Option<Arc<Plugin>> {
        let slot = &self.slots[hook.index()];
        slot.calls.fetch_add(1, Ordering::Relaxed);
        slot.current.load_full()
    }

    fn finish<T>(&self, hook: Hook, answer: Result<T, CallError>, default: impl FnOnce() -> T) -> T {
        match answer {
            Ok(v) => v,
            Err(e) => {
                let slot = &self.slots[hook.index()];
                let n = slot.failures.fetch_add(1, Ordering::Relaxed) + 1;
                *slot.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                let now = self.started.elapsed().as_millis() as u64 + 1;
                let last = slot.last_logged.load(Ordering::Relaxed);
                if (last == 0 || now.saturating_sub(last) >= 1000)
                    && slot
                        .last_logged
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::error!(
                        hook = hook.name(),
                        plugin = %slot.configured,
                        failures = n,
                        "plugin gave no usable answer, using the fail-closed default: {e}"
                    );
                }
                default()
            }
        }
    }
}

/// Compile `wasm`, ask it what it is and self-test every hook in `hooks`
/// (`None`: every hook the plugin says it serves).
async fn prepare(
    runtime: &Arc<Runtime>,
    name: &str,
    wasm: Vec<u8>,
    config: String,
    hooks: Option<&[Hook]>,
) -> Result<Plugin, LoadError> {
    let rt = runtime.clone();
    let owned_name = name.to_string();
    // Compiling takes tens of milliseconds of CPU: keep it off the
    // runtime's worker threads.
    let mut plugin = tokio::task::spawn_blocking(move || rt.compile(&owned_name, &wasm, &config))
        .await
        .map_err(|e| LoadError::Compile(format!("compiler task failed: {e}")))??;
    plugin.describe().await.map_err(|error| LoadError::SelfTest {
        hook: "meta.info".into(),
        error,
    })?;
    let hooks = hooks.map_or_else(|| plugin.info.hooks.clone(), <[Hook]>::to_vec);
    for hook in hooks {
        if !plugin.exports_hook(hook) || !plugin.info.hooks.contains(&hook) {
            return Err(LoadError::HookNotServed(hook));
        }
        self_test(&plugin, hook).await.map_err(|error| LoadError::SelfTest {
            hook: hook.name().into(),
            error,
        })?;
    }
    Ok(plugin)
}

/// Load and self-test a plugin file without serving it (`pbx plugins
/// check`): every hook the plugin lists is exercised.
pub async fn check_file(runtime: &Arc<Runtime>, wasm: Vec<u8>, config: String) -> Result<Plugin, LoadError> {
    prepare(runtime, "check", wasm, config, None).await
}

/// One golden call per hook: it must answer, in time, well-formed.
async fn self_test(plugin: &Plugin, hook: Hook) -> Result<(), CallError> {
    let call = Call {
        call_id: "self-test@pbx".into(),
        request_uri: "sips:200@self-test.invalid".into(),
        from_uri: "sips:100@self-test.invalid".into(),
        from_display: Some("Self Test".into()),
        to_uri: "sips:200@self-test.invalid".into(),
        domain: "self-test.invalid".into(),
        caller: Caller::Extension("100".into()),
        source_transport: Transport::Tls,
        source_addr: "127.0.0.1:5061".into(),
        client_cert_subject: Some("CN=self-test,O=pbx".into()),
        caller_srtp: true,
        headers: String::new(),
    };
    match hook {
        Hook::Routing => plugin.route(&call).await.and_then(check_route).map(drop),
        Hook::Security => {
            let leg = security::Leg {
                target: Target::Trunk(TrunkCall {
                    trunk: "self-test".into(),
                    number: "200".into(),
                }),
                transport: Transport::Udp,
                srtp: false,
                exempt_trunk: false,
            };
            plugin.check(&call, &leg).await.and_then(|v| match v {
                security::Verdict::Reject(r) => check_reject(&r),
                security::Verdict::Allow => Ok(()),
            })
        }
        Hook::TrunkExceptions => plugin.is_exempt("self-test").await.map(drop),
        Hook::Certificates => {
            let hello = certificates::Hello {
                server_name: Some("self-test.invalid".into()),
                listener: "sip-tls".into(),
                transport: Transport::Tls,
            };
            plugin.select(&hello).await.map(drop)
        }
        Hook::Provisioning => {
            let request = provisioning::Request {
                domain: "self-test.invalid".into(),
                extension: "100".into(),
                mac: Some("000000000000".into()),
                user_agent: None,
                provisioned: false,
            };
            plugin.password(&request).await.map(drop)
        }
    }
}

fn reject(code: u16, reason: &str) -> super::types::Reject {
    super::types::Reject {
        code,
        reason: reason.into(),
    }
}

/// A routing answer must be something the SIP layer can act on safely.
fn check_route(route: routing::Decision) -> Result<routing::Decision, CallError> {
    match &route {
        routing::Decision::Reject(r) => check_reject(r)?,
        routing::Decision::Target(Target::Extension(e)) => {
            if !is_token(e, 64, b".-_+*#") {
                return Err(CallError::Malformed("extension is not a valid SIP user".into()));
            }
        }
        routing::Decision::Target(Target::Trunk(t)) => {
            if !is_token(&t.trunk, 64, b".-_") || !is_token(&t.number, 64, b"+*#-.") {
                return Err(CallError::Malformed("trunk name or number is not valid".into()));
            }
        }
        routing::Decision::Target(Target::Uri(u)) => {
            let lower = u.to_ascii_lowercase();
            let ok = (lower.starts_with("sip:") || lower.starts_with("sips:"))
                && u.len() <= 512
                && !u.bytes().any(|b| b <= b' ' || b"<>\"\x7f".contains(&b));
            if !ok {
                return Err(CallError::Malformed("target URI is not a plain SIP URI".into()));
            }
        }
    }
    Ok(route)
}

/// A refusal must be a final SIP failure status with a printable reason
/// (it becomes a status line and a `Warning` header: no CR/LF injection).
fn check_reject(r: &super::types::Reject) -> Result<(), CallError> {
    if !(400..=699).contains(&r.code) {
        return Err(CallError::Malformed(format!("reject code {} is not 400-699", r.code)));
    }
    if r.reason.len() > 256 || r.reason.chars().any(|c| c.is_control()) {
        return Err(CallError::Malformed("reject reason too long or not printable".into()));
    }
    Ok(())
}

fn is_token(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

fn is_dns_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// SHA-256 of `bytes` in lower-case hex: how plugin versions are named.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Read `<name>.wasm` and its optional `<name>.json`; `Ok(None)` when the
/// `.wasm` does not exist.
fn read_plugin_files(wasm: &Path, json: &Path) -> Result<Option<(Vec<u8>, String)>, LoadError> {
    let bytes = match std::fs::read(wasm) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Io(format!("{}: {e}", wasm.display()))),
    };
    let config = match std::fs::read_to_string(json) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "{}".to_string(),
        Err(e) => return Err(LoadError::Io(format!("{}: {e}", json.display()))),
    };
    Ok(Some((bytes, config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_checks() {
        assert!(is_dns_name("a.example") && is_dns_name("localhost"));
        assert!(!is_dns_name("../../etc/passwd") && !is_dns_name("a..b") && !is_dns_name("-a.b"));
        assert!(check_reject(&reject(488, "Not secure")).is_ok());
        assert!(check_reject(&reject(200, "OK")).is_err());
        assert!(check_reject(&reject(403, "x\r\nVia: evil")).is_err());
        let uri = |u: &str| check_route(routing::Decision::Target(Target::Uri(u.into())));
        assert!(uri("sips:bob@example.com;transport=tls").is_ok());
        assert!(uri("http://x").is_err());
        assert!(uri("sip:a b@x").is_err());
        let ext = |e: &str| check_route(routing::Decision::Target(Target::Extension(e.into())));
        assert!(ext("200").is_ok() && ext("alice.smith").is_ok());
        assert!(ext("").is_err() && ext("a@b").is_err());
    }
}
