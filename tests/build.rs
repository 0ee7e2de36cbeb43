//! Builds the test guest plugins (`tests/guests/*`) to WebAssembly.

fn main() {
    let dir = pbx_wasm_build::build(&["guest-evil", "guest-alien", "guest-legacy"]);
    println!("cargo:rustc-env=PBX_TEST_GUESTS_DIR={}", dir.display());
}
