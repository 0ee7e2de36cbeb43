//! Shared helpers for the PBX's end-to-end tests.

use std::path::{Path, PathBuf};

/// A test guest plugin component (`tests/guests/<name>`), by crate name
/// (`guest-evil`).
pub fn guest_wasm(name: &str) -> Vec<u8> {
    let file =
        Path::new(env!("PBX_TEST_GUESTS_DIR")).join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A fresh temporary folder, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary folder")
}

/// Path of `name` inside `dir`.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
