//! Policy plugins: every decision of the PBX is asked of a WebAssembly
//! component plugin built against `wit/policy.wit`.
//!
//! # Structure
//! - `bindings`: host-side types generated from the WIT, `pbx:policy@0.2.0`
//!   (re-exported as [`types`], [`routing`], [`security`], [`certificates`],
//!   [`provisioning`]).
//! - `compat`: plugins built against `pbx:policy@0.1.0` keep loading; their
//!   values are converted at the boundary.
//! - `state`: per-instance store data and the host functions (`log`, `config`).
//! - `runtime`: the `Engine`, compiling a `.wasm` into a [`Plugin`], warm
//!   instance pools, limits (deadline, memory, fuel).
//! - `policy`: [`Policy`], the PBX's entry point: one slot per [`Hook`],
//!   atomic swaps, fail-closed defaults, answer checks, counters.
//! - `watch`: the plugins folder watcher that hot-reloads.
//!
//! Architecture invariant: a plugin failure never fails the PBX. Every
//! [`Policy`] method returns an answer: the plugin's if it gave a
//! well-formed one in time, else the hook's fail-closed default.

mod bindings;
mod compat;
mod policy;
mod runtime;
mod state;
mod watch;

pub use bindings::{certificates, provisioning, routing, security, types};
pub use policy::{HookStatus, Outcome, PluginStatus, Policy, ReloadEvent, check_file, sha256_hex};
pub use runtime::{Limits, Plugin, PluginInfo, Runtime};
pub use watch::{DEBOUNCE, Watcher};

use std::fmt;

/// A decision the PBX delegates to a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hook {
    /// Where a call goes.
    Routing,
    /// Whether a `sips:` call may proceed to its target.
    Security,
    /// Which trunks are exempt from end-to-end security.
    TrunkExceptions,
    /// Which certificate a TLS handshake presents.
    Certificates,
    /// Whether a provisioning file may carry the SIP password.
    Provisioning,
}

impl Hook {
    /// Every hook, in a fixed order.
    pub const ALL: [Hook; 5] = [
        Hook::Routing,
        Hook::Security,
        Hook::TrunkExceptions,
        Hook::Certificates,
        Hook::Provisioning,
    ];

    /// The WIT interface name (`trunk-exceptions`).
    pub fn name(self) -> &'static str {
        match self {
            Hook::Routing => "routing",
            Hook::Security => "security",
            Hook::TrunkExceptions => "trunk-exceptions",
            Hook::Certificates => "certificates",
            Hook::Provisioning => "provisioning",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a plugin was refused at load time. The previous version (if any)
/// keeps serving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The wasmtime engine could not be set up (e.g. address space limits).
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The file could not be read.
    #[error("cannot read the plugin file: {0}")]
    Io(String),
    /// The file is larger than the configured cap.
    #[error("the plugin is {0} bytes, more than the {1}-byte limit")]
    TooLarge(usize, usize),
    /// The file does not start with the WebAssembly magic number (garbage,
    /// an empty or a truncated file).
    #[error("not a WebAssembly file (wrong magic number; empty, truncated or garbage)")]
    NotWasm,
    /// The bytes are not a valid component (e.g. half-written).
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    /// The component imports something the host does not provide.
    #[error("the component imports what the PBX does not provide: {0}")]
    Imports(String),
    /// The component exports neither `pbx:policy/meta@0.2.0` nor `@0.1.0`.
    #[error("not a PBX policy plugin (wrong world): {0}")]
    WrongWorld(String),
    /// The plugin's JSON configuration file is not valid JSON.
    #[error("the plugin's configuration is not valid JSON: {0}")]
    Config(String),
    /// The plugin is configured for a hook it does not export or list.
    #[error("the plugin does not serve the {0} hook")]
    HookNotServed(Hook),
    /// The self-test call failed.
    #[error("self-test of {hook} failed: {error}")]
    SelfTest {
        /// The hook whose self-test failed (`None`: `meta.info`).
        hook: String,
        /// What went wrong.
        error: CallError,
    },
}

/// Why a plugin call gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No plugin is loaded for the hook.
    #[error("no plugin is loaded for this hook")]
    NoPlugin,
    /// The plugin does not export the hook's interface.
    #[error("the plugin does not export the {0} interface")]
    NotExported(Hook),
    /// A fresh instance could not be created (pool exhausted, start-up trap).
    #[error("cannot instantiate the plugin: {0}")]
    Instantiate(String),
    /// The call ran past its deadline and was interrupted.
    #[error("the call ran past its deadline and was stopped")]
    Deadline,
    /// The call used up its fuel budget.
    #[error("the call used up its fuel budget")]
    OutOfFuel,
    /// The plugin tried to grow its memory past the cap.
    #[error("the plugin exceeded its memory limit")]
    MemoryLimit,
    /// The plugin trapped (a panic, `unreachable`, a stack overflow, ...).
    #[error("the plugin trapped: {0}")]
    Trap(String),
    /// The plugin answered, but the answer is not acceptable.
    #[error("malformed answer: {0}")]
    Malformed(String),
}
