//! What a plugin can ask of the host: its configuration and a log.
//!
//! Compiled for WebAssembly these call the host. Compiled natively (for a
//! plugin's own `cargo test`) `log` prints to standard error, so plugin
//! logic is testable without any WebAssembly runtime.

use crate::Level;

/// Write a log line through the host, tagged with the plugin's name.
pub fn log(level: Level, message: &str) {
    #[cfg(target_family = "wasm")]
    crate::bindings::pbx::policy::host::log(level, message);
    #[cfg(not(target_family = "wasm"))]
    eprintln!("[plugin {level:?}] {message}");
}

/// Parse the plugin's JSON configuration text into `T`, with an error
/// message fit for an admin's log.
pub fn config_json<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, String> {
    serde_json::from_str(config).map_err(|e| format!("invalid plugin configuration: {e}"))
}

/// The configuration text the host holds for this plugin.
#[cfg(target_family = "wasm")]
pub(crate) fn host_config() -> String {
    crate::bindings::pbx::policy::host::config()
}
