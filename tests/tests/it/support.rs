//! Helpers shared by the plugin tests.

use pbx::bundle::BUNDLE;
use pbx::plugins::types::{Call, Caller, Transport};
use pbx::plugins::{Hook, Limits, Outcome, Policy, ReloadEvent, Runtime};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::broadcast;

/// A policy whose hooks are served by plugins named after the hooks
/// (`routing`, `security`, ...), none loaded yet.
pub fn policy() -> Arc<Policy> {
    policy_with(Limits::default())
}

pub fn policy_with(limits: Limits) -> Arc<Policy> {
    // Tests with default limits share one runtime (one engine, one compiled
    // component cache), as a PBX process does.
    static SHARED: OnceLock<Arc<Runtime>> = OnceLock::new();
    let runtime = if limits == Limits::default() {
        SHARED.get_or_init(|| Runtime::new(limits).expect("runtime")).clone()
    } else {
        Runtime::new(limits).expect("runtime")
    };
    Policy::new(runtime, |hook| hook.name().to_string())
}

/// The bundled plugin serving `hook`, as bytes.
pub fn bundled(hook: Hook) -> Vec<u8> {
    BUNDLE.iter().find(|p| p.hook == hook).unwrap().wasm.to_vec()
}

/// A call from extension 100 over TLS with SRTP to `ruri`.
pub fn call(ruri: &str) -> Call {
    Call {
        call_id: "test-call@pbx".into(),
        request_uri: ruri.into(),
        from_uri: "sips:100@example.com".into(),
        from_display: Some("Alice".into()),
        to_uri: ruri.into(),
        domain: pbx_domain(ruri),
        caller: Caller::Extension("100".into()),
        source_transport: Transport::Tls,
        source_addr: "127.0.0.1:40000".into(),
        client_cert_subject: None,
        caller_srtp: true,
        headers: String::new(),
    }
}

fn pbx_domain(ruri: &str) -> String {
    ruri.split('@')
        .nth(1)
        .unwrap_or("example.com")
        .split([';', ':'])
        .next()
        .unwrap()
        .to_string()
}

/// Write `bytes` to `path` through a temporary file and a rename (how an
/// admin should deploy).
pub fn write_renamed(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Overwrite `path` in place (truncate, then write), as `cp` does.
pub fn write_in_place(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(true)
        .open(path)
        .unwrap();
    // Two writes, so a reader can see a half-written file.
    let half = bytes.len() / 2;
    f.write_all(&bytes[..half]).unwrap();
    f.flush().unwrap();
    f.write_all(&bytes[half..]).unwrap();
}

/// Wait for the reload event of `plugin` that matches `want`, skipping
/// others (e.g. a refused half-written file before the whole one loads).
pub async fn await_event(
    rx: &mut broadcast::Receiver<ReloadEvent>,
    plugin: &str,
    want: impl Fn(&Outcome) -> bool,
) -> ReloadEvent {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(ev) if ev.plugin == plugin && want(&ev.outcome) => return ev,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("reload events closed: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("no matching reload event within 30 s")
}

pub fn sha256(bytes: &[u8]) -> String {
    pbx::plugins::sha256_hex(bytes)
}
