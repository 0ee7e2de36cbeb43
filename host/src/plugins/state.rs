//! The per-instance host state and the host functions plugins import.

use super::bindings::{self, Level};
use std::sync::Arc;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Longest log message a plugin can write; longer ones are cut.
const MAX_LOG_BYTES: usize = 1024;
/// Log lines a plugin may write per call; the rest are dropped and counted,
/// so a hostile plugin cannot flood the PBX log.
pub(crate) const LOG_LINES_PER_CALL: u32 = 16;

/// Store data of one plugin instance.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    plugin: Arc<str>,
    config: Arc<str>,
    pub(crate) log_budget: u32,
    pub(crate) logs_dropped: u64,
}

impl State {
    pub(crate) fn new(plugin: Arc<str>, config: Arc<str>, limits: StoreLimits) -> Self {
        State {
            // An empty sandbox: no environment, no preopened directories,
            // stdio connected to nothing.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits,
            plugin,
            config,
            log_budget: LOG_LINES_PER_CALL,
            logs_dropped: 0,
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::pbx::policy::types::Host for State {}

impl bindings::pbx::policy::host::Host for State {
    fn log(&mut self, level: Level, message: String) {
        if self.log_budget == 0 {
            self.logs_dropped += 1;
            return;
        }
        self.log_budget -= 1;
        let message = sanitize(&message);
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn config(&mut self) -> String {
        self.config.to_string()
    }
}

/// Cut a plugin's log message to size and replace control characters, so a
/// plugin cannot forge log lines.
fn sanitize(message: &str) -> String {
    let mut end = message.len().min(MAX_LOG_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sanitize_cuts_and_neutralises() {
        assert_eq!(super::sanitize("a\nb\u{1b}[31m"), "a b [31m");
        let long = "é".repeat(1000);
        let s = super::sanitize(&long);
        assert!(s.len() <= 1024 && s.chars().all(|c| c == 'é'));
    }
}
