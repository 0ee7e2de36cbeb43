//! Host-side bindings generated from `wit/policy.wit` (`pbx:policy@0.2.0`).
//!
//! One world, `plugin`, describes every export; a given plugin need only
//! export `meta` and the hooks it serves, because each hook's exports are
//! looked up on their own (`GuestIndices`) rather than through the world.
//! Exports are async so WASI's async host functions (a plugin's `println!`
//! lands in a sink) work from inside the tokio runtime.
//!
//! Plugins built against the previous contract, `pbx:policy@0.1.0`
//! (`wit/deps/policy-0.1.0/`), are served through `compat`.

// The file, not the folder: the folder's `deps/` holds older versions of
// this package, whose presence would suffix every module with its version.
wasmtime::component::bindgen!({
    path: "../wit/policy.wit",
    world: "plugin",
    exports: { default: async },
    additional_derives: [PartialEq, Eq],
});

pub use self::exports::pbx::policy::{certificates, meta, provisioning, routing, security, trunk_exceptions};
pub use self::pbx::policy::host::Level;
pub use self::pbx::policy::types;
