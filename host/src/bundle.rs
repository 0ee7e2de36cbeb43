//! The default plugin bundle, embedded in the binary and installed into
//! the plugins folder on first run.

use crate::plugins::Hook;
use std::io;
use std::path::Path;

/// One plugin of the bundle.
pub struct BundledPlugin {
    /// File name without `.wasm`.
    pub name: &'static str,
    /// The hook it serves by default.
    pub hook: Hook,
    /// The component.
    pub wasm: &'static [u8],
    /// Its default configuration, written as `<name>.json`.
    pub config: &'static str,
}

macro_rules! bundled {
    ($file:literal) => {
        include_bytes!(concat!(env!("PBX_BUNDLE_DIR"), "/", $file))
    };
}

/// The default bundle: one plugin per hook.
pub const BUNDLE: [BundledPlugin; 5] = [
    BundledPlugin {
        name: "dial-plan",
        hook: Hook::Routing,
        wasm: bundled!("plugin_dial_plan.wasm"),
        config: r#"{
  "extension_digits": { "min": 2, "max": 6 },
  "named_extensions": true,
  "trunk_prefixes": [],
  "e164_trunk": null,
  "inbound": {}
}
"#,
    },
    BundledPlugin {
        name: "e2e-security",
        hook: Hook::Security,
        wasm: bundled!("plugin_e2e_security.wasm"),
        config: "{\n  \"enabled\": false,\n  \"domains\": {}\n}\n",
    },
    BundledPlugin {
        name: "trunk-exceptions",
        hook: Hook::TrunkExceptions,
        wasm: bundled!("plugin_trunk_exceptions.wasm"),
        config: "{\n  \"exempt\": []\n}\n",
    },
    BundledPlugin {
        name: "cert-per-domain",
        hook: Hook::Certificates,
        wasm: bundled!("plugin_cert_per_domain.wasm"),
        config: "{\n  \"aliases\": {},\n  \"default_domain\": null\n}\n",
    },
    BundledPlugin {
        name: "provisioning-password",
        hook: Hook::Provisioning,
        wasm: bundled!("plugin_provisioning_password.wasm"),
        config: "{\n  \"policy\": \"once\",\n  \"domains\": {}\n}\n",
    },
];

/// The bundled plugin for `hook`.
pub fn for_hook(hook: Hook) -> &'static BundledPlugin {
    BUNDLE
        .iter()
        .find(|p| p.hook == hook)
        .expect("the bundle covers every hook")
}

/// Write every bundled plugin (and its default configuration) that is not
/// in `dir` yet. Existing files are never overwritten: they are the admin's.
/// Each file is written under a temporary name and renamed into place, so
/// a running watcher never sees half a file.
pub fn install_missing(dir: &Path) -> io::Result<Vec<&'static str>> {
    std::fs::create_dir_all(dir)?;
    let mut installed = Vec::new();
    for p in &BUNDLE {
        let wasm = dir.join(format!("{}.wasm", p.name));
        if !wasm.exists() {
            write_atomically(&dir.join(format!("{}.json", p.name)), p.config.as_bytes(), false)?;
            write_atomically(&wasm, p.wasm, true)?;
            installed.push(p.name);
        }
    }
    Ok(installed)
}

fn write_atomically(path: &Path, bytes: &[u8], overwrite: bool) -> io::Result<()> {
    if !overwrite && path.exists() {
        return Ok(());
    }
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
