//! The PBX configuration file (`pbx.toml` in the data folder), parsed raw
//! with serde and then validated into [`Config`].

use crate::plugins::{Hook, Limits};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The configuration written on first run.
pub const DEFAULT_TOML: &str = r#"# pbx configuration. Created on first run; edit and restart.

[sip]
# The default domain: its certificate is the default one (certs/<domain>/),
# and REGISTERs to an IP address belong to it.
domain = "localhost"
# Listening addresses; add "[::]:5060" etc. for IPv6.
udp = ["0.0.0.0:5060"]
tcp = ["0.0.0.0:5060"]
tls = ["0.0.0.0:5061"]
# Digest challenges offered to phones, in order ("MD5", "SHA-256"). Many
# phones know only MD5 and fail when any other challenge is present.
digest = ["MD5"]
# Shortest registration accepted (seconds; shorter asks get 423).
min_expires = 60

[plugins]
# Folder of the policy plugins, relative to this file's folder. Drop a new
# <name>.wasm (and optional <name>.json configuration) here to hot-swap it.
dir = "plugins"
# Runaway guard per plugin call (wall clock, milliseconds).
deadline_ms = 100
# Memory cap per plugin instance (MiB).
memory_mib = 32
# Optional deterministic CPU budget per call in wasmtime fuel units (0 = off).
fuel = 0

# Which plugin (file name without .wasm) serves which hook.
[plugins.hooks]
routing = "dial-plan"
security = "e2e-security"
trunk-exceptions = "trunk-exceptions"
certificates = "cert-per-domain"
provisioning = "provisioning-password"
"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    sip: RawSip,
    #[serde(default)]
    plugins: RawPlugins,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSip {
    domain: String,
    udp: Vec<String>,
    tcp: Vec<String>,
    tls: Vec<String>,
    digest: Vec<String>,
    min_expires: u32,
}

impl Default for RawSip {
    fn default() -> Self {
        RawSip {
            domain: "localhost".into(),
            udp: vec!["0.0.0.0:5060".into()],
            tcp: vec!["0.0.0.0:5060".into()],
            tls: vec!["0.0.0.0:5061".into()],
            digest: vec!["MD5".into()],
            min_expires: 60,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawPlugins {
    dir: PathBuf,
    deadline_ms: u64,
    memory_mib: u64,
    fuel: u64,
    hooks: RawHooks,
}

impl Default for RawPlugins {
    fn default() -> Self {
        RawPlugins {
            dir: "plugins".into(),
            deadline_ms: 100,
            memory_mib: 32,
            fuel: 0,
            hooks: RawHooks::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct RawHooks {
    routing: Option<String>,
    security: Option<String>,
    trunk_exceptions: Option<String>,
    certificates: Option<String>,
    provisioning: Option<String>,
}

/// Where the SIP service listens.
#[derive(Debug, Clone, Default)]
pub struct Listen {
    /// UDP sockets.
    pub udp: Vec<SocketAddr>,
    /// TCP listeners.
    pub tcp: Vec<SocketAddr>,
    /// TLS listeners.
    pub tls: Vec<SocketAddr>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data folder (config, plugins, later database and certificates).
    pub data_dir: PathBuf,
    /// The plugins folder.
    pub plugins_dir: PathBuf,
    /// The certificates folder (`<domain>/cert.pem` + `key.pem`).
    pub certs_dir: PathBuf,
    /// The default domain (lower-case).
    pub domain: String,
    /// SIP listening addresses.
    pub listen: Listen,
    /// Digest challenges offered, in order.
    pub digest: Vec<pbx_sip::auth::Algorithm>,
    /// Shortest registration accepted, seconds.
    pub min_expires: u32,
    /// Limits for every plugin call.
    pub limits: Limits,
    /// Plugin name per hook, in [`Hook::ALL`] order.
    pub hooks: [String; 5],
}

impl Config {
    /// Parse `text` (the contents of `data_dir/pbx.toml`).
    pub fn parse(data_dir: &Path, text: &str) -> Result<Config, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        let p = raw.plugins;
        let addrs = |what: &str, list: &[String]| -> Result<Vec<SocketAddr>, String> {
            list.iter()
                .map(|a| {
                    a.parse()
                        .map_err(|_| format!("sip.{what}: {a:?} is not an address:port"))
                })
                .collect()
        };
        let mut digest = Vec::new();
        for a in &raw.sip.digest {
            digest.push(match a.to_ascii_uppercase().as_str() {
                "MD5" => pbx_sip::auth::Algorithm::Md5,
                "SHA-256" => pbx_sip::auth::Algorithm::Sha256,
                _ => return Err(format!("sip.digest: {a:?} is not MD5 or SHA-256")),
            });
        }
        if digest.is_empty() {
            return Err("sip.digest: name at least one algorithm".into());
        }
        let listen = Listen {
            udp: addrs("udp", &raw.sip.udp)?,
            tcp: addrs("tcp", &raw.sip.tcp)?,
            tls: addrs("tls", &raw.sip.tls)?,
        };
        let domain = raw.sip.domain.trim().to_ascii_lowercase();
        if domain.is_empty() || !domain.bytes().all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b)) {
            return Err(format!("sip.domain: {domain:?} is not a domain name"));
        }
        if !(1..=10_000).contains(&p.deadline_ms) {
            return Err("plugins.deadline_ms must be 1..=10000".into());
        }
        if !(1..=4096).contains(&p.memory_mib) {
            return Err("plugins.memory_mib must be 1..=4096".into());
        }
        let names = [
            p.hooks.routing,
            p.hooks.security,
            p.hooks.trunk_exceptions,
            p.hooks.certificates,
            p.hooks.provisioning,
        ];
        let mut hooks: [String; 5] = Default::default();
        for (i, hook) in Hook::ALL.into_iter().enumerate() {
            let name = names[i]
                .clone()
                .unwrap_or_else(|| crate::bundle::for_hook(hook).name.to_string());
            if name.is_empty()
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                || name.starts_with('.')
            {
                return Err(format!("plugins.hooks.{hook}: {name:?} is not a plain file name"));
            }
            hooks[i] = name;
        }
        Ok(Config {
            data_dir: data_dir.to_path_buf(),
            plugins_dir: data_dir.join(p.dir),
            certs_dir: data_dir.join("certs"),
            domain,
            listen,
            digest,
            min_expires: raw.sip.min_expires.clamp(1, 3600),
            limits: Limits {
                deadline: Duration::from_millis(p.deadline_ms),
                memory_bytes: (p.memory_mib as usize) << 20,
                fuel: (p.fuel > 0).then_some(p.fuel),
                ..Limits::default()
            },
            hooks,
        })
    }

    /// The plugin configured for `hook`.
    pub fn plugin_for(&self, hook: Hook) -> &str {
        let i = Hook::ALL.iter().position(|h| *h == hook).unwrap_or(0);
        &self.hooks[i]
    }

    /// Load `data_dir/pbx.toml`, creating the data folder, the default
    /// configuration and the default plugin bundle first if missing.
    pub fn load_or_init(data_dir: &Path) -> Result<Config, String> {
        std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        let path = data_dir.join("pbx.toml");
        if !path.exists() {
            std::fs::write(&path, DEFAULT_TOML).map_err(|e| format!("{}: {e}", path.display()))?;
            tracing::info!("first run: wrote the default configuration {}", path.display());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let config = Config::parse(data_dir, &text).map_err(|e| format!("{}: {e}", path.display()))?;
        let installed = crate::bundle::install_missing(&config.plugins_dir)
            .map_err(|e| format!("{}: {e}", config.plugins_dir.display()))?;
        if !installed.is_empty() {
            tracing::info!("installed default plugins: {}", installed.join(", "));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses() {
        let c = Config::parse(Path::new("/d"), DEFAULT_TOML).unwrap();
        assert_eq!(c.plugin_for(Hook::TrunkExceptions), "trunk-exceptions");
        assert_eq!(c.plugins_dir, Path::new("/d/plugins"));
        assert_eq!(c.limits.deadline, Duration::from_millis(100));
        assert_eq!(c.limits.fuel, None);
    }

    #[test]
    fn bad_config_is_explained() {
        let e = Config::parse(Path::new("/d"), "[plugins.hooks]\nrouting = \"../x\"\n").unwrap_err();
        assert!(e.contains("plugins.hooks.routing"), "{e}");
        assert!(Config::parse(Path::new("/d"), "[plugins]\nbogus = 1\n").is_err());
        assert!(Config::parse(Path::new("/d"), "").is_ok());
    }
}
