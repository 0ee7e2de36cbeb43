//! Build-script helper that compiles plugin crates of this workspace to
//! WebAssembly components (`wasm32-wasip2`), so that `cargo build`,
//! `cargo run` and `cargo test` need no separate plugin build step.
//!
//! Why a nested cargo: stable cargo cannot build one package for another
//! target as a dependency (artifact dependencies are nightly-only). The
//! nested build uses its own target directory (`target/plugins`), because
//! the outer cargo holds the lock on its own, and a scrubbed environment so
//! the host's `RUSTFLAGS` do not leak into the wasm build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Rust target the plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// The cargo profile for plugins (defined in the workspace `Cargo.toml`).
pub const PROFILE: &str = "plugin";

/// Builds `packages` (workspace package names) to components and returns the
/// folder holding `<lib_name>.wasm` for each. Call from a build script;
/// panics with an actionable message when the build fails, which is how a
/// build script reports errors.
pub fn build(packages: &[&str]) -> PathBuf {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("run from build.rs"));
    let root = workspace_root(&manifest_dir);
    for dir in ["plugins", "plugin-sdk", "wit", "tests/guests"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());

    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("plugins");
    ensure_target();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--quiet", "--profile", PROFILE, "--target", WASM_TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("failed to start cargo for the plugin build");
    if !status.success() {
        panic!(
            "building the WebAssembly plugins failed ({status}). If the error above says the \
             `{WASM_TARGET}` target is not installed, run `rustup toolchain install` in the \
             repository (it installs the toolchain and target named in rust-toolchain.toml)."
        );
    }
    target_dir.join(WASM_TARGET).join(PROFILE)
}

/// Install the wasm target into the active toolchain if it is missing
/// (`rustup toolchain install` does it from rust-toolchain.toml; this
/// covers a toolchain that was installed before the target was listed).
fn ensure_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()));
    let Some(sysroot) = sysroot else { return };
    if sysroot.join("lib/rustlib").join(WASM_TARGET).exists() {
        return;
    }
    println!("cargo:warning=installing the {WASM_TARGET} target with rustup (needed to build the plugins)");
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", WASM_TARGET]);
    if let Some(toolchain) = env::var_os("RUSTUP_TOOLCHAIN") {
        cmd.arg("--toolchain").arg(toolchain);
    }
    // A failure shows up as the nested build's "target may not be installed"
    // error, with the advice printed by `build`.
    let _ = cmd.status();
}

fn workspace_root(start: &Path) -> PathBuf {
    let mut dir = start;
    loop {
        if dir.join("Cargo.lock").exists() || dir.join("rust-toolchain.toml").exists() {
            return dir.to_path_buf();
        }
        match dir.parent() {
            Some(parent) => dir = parent,
            None => return start.to_path_buf(),
        }
    }
}
