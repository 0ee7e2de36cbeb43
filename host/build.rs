//! Builds the default plugin bundle (`plugins/`) to WebAssembly so the
//! `pbx` binary can embed it and install it on first run.

fn main() {
    let dir = pbx_wasm_build::build(&[
        "plugin-dial-plan",
        "plugin-e2e-security",
        "plugin-trunk-exceptions",
        "plugin-cert-per-domain",
        "plugin-provisioning-password",
    ]);
    println!("cargo:rustc-env=PBX_BUNDLE_DIR={}", dir.display());
}
