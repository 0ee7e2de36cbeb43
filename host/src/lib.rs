//! The PBX host: SIP, TLS, SDES, SRTP and media in Rust; every policy
//! decision delegated to WebAssembly plugins (see `wit/policy.wit`).
//!
//! # Layout
//! - [`plugins`]: the plugin runtime (wasmtime), the [`plugins::Policy`]
//!   the PBX asks for decisions, hot reload.
//! - [`bundle`]: the default plugin bundle embedded in the binary.
//! - [`config`]: `pbx.toml`, first-run defaults.
//! - [`admin`]: the admin socket behind `pbx plugins list`.
//! - [`app`]: [`app::run`], wiring it all together until shutdown.

pub mod admin;
pub mod app;
pub mod bundle;
pub mod calls;
pub mod config;
pub mod plugins;
pub mod sip;
pub mod store;
pub mod tls;

/// The process allocator, for the `pbx` binary and everything linking this
/// crate (benches, tests).
///
/// Why not the system one: SIP handling allocates and frees many small
/// strings on several tokio worker threads, and in the call-setup bench
/// glibc's malloc took about 16 % of the PBX's CPU (arena locks,
/// consolidation, heap growth by `mprotect`). mimalloc's thread-local free
/// lists are what the message path wants.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
