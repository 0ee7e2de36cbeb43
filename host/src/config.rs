//! The PBX configuration file (`pbx.toml` in the data folder), parsed raw
//! with serde and then validated into [`Config`].

use crate::calls::{CallsConfig, EndpointConfig, MediaSetting, Secret, TrunkAuth, TrunkConfig, TrunkTls};
use crate::plugins::{Hook, Limits};
use crate::sip::Proto;
use pbx_srtp::Suite;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
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

[tls]
# Phones may present a TLS client certificate (none is required). One that
# verifies against these CA certificates (PEM, relative to this folder) gets
# its subject passed to the policy plugins (e.g. "CN=phone-100,O=Example");
# one that does not fails the handshake. Default: the PBX's development CA,
# certs/ca/ca.pem, so phones given certificates from it are recognised.
# client_ca = "certs/phones-ca.pem"

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

[media]
# Address the relay's RTP sockets bind to, and the address written into SDP
# (default: the address the phone reached the PBX at).
bind = "0.0.0.0"
# advertise = "203.0.113.10"
# RTP port range (RTP on even ports, RTCP on the next odd one).
ports = [20000, 29999]
# Relay worker threads.
workers = 1
# A call whose media stopped for this long is hung up (seconds).
timeout_secs = 30
# Record every call (WAV, caller left, callee right) into this folder;
# per extension with [extensions."<ext>"] record = true.
record = false
recordings = "recordings"

[calls]
# An unanswered call is cancelled after this many seconds (480 to the caller).
ring_timeout_secs = 60

# Per-extension settings (key "<ext>" or "<ext>@<domain>"):
# [extensions."101"]
# srtp = "required"        # required | optional | off | auto (auto: SRTP over TLS, plain otherwise)
# srtp_suites = ["AES_CM_128_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_80"]   # offered to this phone, in order
# record = true

# Trunks (gateways). Over UDP, requests from `address` (IP and port) are the
# trunk's inbound calls. Over TCP or TLS the PBX opens one connection to
# `address` (on the first call or REGISTER), reuses it for every request and
# reconnects when it drops; the trunk's inbound calls must come over that
# connection (use register = true so it is opened at start and kept up).
# [trunks.pstn]
# address = "192.0.2.1:5060"
# transport = "udp"        # udp | tcp | tls
# srtp = "off"             # off | optional | required
# domain = "localhost"     # the PBX domain inbound calls belong to
# username = "pbx"         # digest credentials the PBX answers the trunk's challenges with
# password = "secret"
# register = true          # keep a registration at the trunk (register_expires = 300)
#
# A TLS trunk's certificate is always verified (TLS 1.2 or 1.3); a call to
# a trunk whose certificate fails the check fails with 503 and a Warning.
# [trunks.carrier]
# address = "192.0.2.2:5061"
# transport = "tls"
# srtp = "required"
# ca = "certs/carrier-ca.pem"    # PEM, one or more CA certificates (relative to this folder);
#                                # default: the PBX's development CA, certs/ca/ca.pem (lab setups)
# server_name = "sip.carrier.example"   # the name its certificate must be valid for;
#                                # default: `domain` if set, else the address's IP
"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    sip: RawSip,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    plugins: RawPlugins,
    #[serde(default)]
    media: RawMedia,
    #[serde(default)]
    calls: RawCalls,
    #[serde(default)]
    extensions: BTreeMap<String, RawEndpoint>,
    #[serde(default)]
    trunks: BTreeMap<String, RawTrunk>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawMedia {
    bind: String,
    advertise: Option<String>,
    ports: [u16; 2],
    workers: usize,
    timeout_secs: u64,
    record: bool,
    recordings: PathBuf,
}

impl Default for RawMedia {
    fn default() -> Self {
        RawMedia {
            bind: "0.0.0.0".into(),
            advertise: None,
            ports: [20000, 29999],
            workers: 1,
            timeout_secs: 30,
            record: false,
            recordings: "recordings".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawCalls {
    ring_timeout_secs: u64,
}

impl Default for RawCalls {
    fn default() -> Self {
        RawCalls { ring_timeout_secs: 60 }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawEndpoint {
    srtp: Option<String>,
    srtp_suites: Vec<String>,
    record: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrunk {
    address: String,
    #[serde(default)]
    transport: Option<String>,
    #[serde(default)]
    srtp: Option<String>,
    #[serde(default)]
    srtp_suites: Vec<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    register: bool,
    #[serde(default)]
    register_expires: Option<u32>,
    #[serde(default)]
    ca: Option<PathBuf>,
    #[serde(default)]
    server_name: Option<String>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawTls {
    client_ca: Option<PathBuf>,
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
    /// The CA certificates (PEM) a phone's TLS client certificate is
    /// verified against: `[tls] client_ca`, checked to be readable, or by
    /// default the development CA (`certs/ca/ca.pem`, created on first run).
    pub client_ca: PathBuf,
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
    /// Calls, media, extensions' media settings and trunks.
    pub calls: CallsConfig,
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
        let client_ca = match raw.tls.client_ca {
            Some(path) => {
                let path = data_dir.join(path);
                crate::tls::load_ca(&path).map_err(|e| format!("tls.client_ca: {e}"))?;
                path
            }
            None => data_dir.join("certs").join(crate::tls::DEV_CA_FILE),
        };
        let calls = calls_config(data_dir, &domain, raw.media, raw.calls, raw.extensions, raw.trunks)?;
        Ok(Config {
            client_ca,
            calls,
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

fn media_setting(what: &str, s: Option<&str>, default: MediaSetting) -> Result<MediaSetting, String> {
    Ok(match s {
        None => default,
        Some("required") => MediaSetting::Required,
        Some("optional") => MediaSetting::Optional,
        Some("off") => MediaSetting::Off,
        Some("auto") => MediaSetting::Auto,
        Some(other) => return Err(format!("{what}: {other:?} is not required, optional, off or auto")),
    })
}

fn suites(what: &str, names: &[String]) -> Result<Vec<Suite>, String> {
    names
        .iter()
        .map(|n| Suite::from_sdes_name(n).map_err(|_| format!("{what}: {n:?} is not an SRTP suite")))
        .collect()
}

fn calls_config(
    data_dir: &Path,
    domain: &str,
    media: RawMedia,
    calls: RawCalls,
    extensions: BTreeMap<String, RawEndpoint>,
    trunks: BTreeMap<String, RawTrunk>,
) -> Result<CallsConfig, String> {
    let ip = |what: &str, s: &str| -> Result<IpAddr, String> {
        s.parse()
            .map_err(|_| format!("media.{what}: {s:?} is not an IP address"))
    };
    let [port_min, port_max] = media.ports;
    if port_min < 1024 || port_min >= port_max {
        return Err("media.ports: need [low, high] with 1024 <= low < high".into());
    }
    if !(1..=64).contains(&media.workers) {
        return Err("media.workers must be 1..=64".into());
    }
    let mut endpoints = BTreeMap::new();
    for (key, e) in extensions {
        let what = format!("extensions.{key:?}");
        let key = if key.contains('@') {
            key.to_ascii_lowercase()
        } else {
            format!("{key}@{domain}")
        };
        endpoints.insert(
            key,
            EndpointConfig {
                srtp: media_setting(&format!("{what}.srtp"), e.srtp.as_deref(), MediaSetting::Auto)?,
                suites: suites(&format!("{what}.srtp_suites"), &e.srtp_suites)?,
                record: e.record,
            },
        );
    }
    let mut trunk_list = Vec::new();
    for (name, t) in trunks {
        let what = format!("trunks.{name}");
        let address: SocketAddr = t
            .address
            .parse()
            .map_err(|_| format!("{what}.address: {:?} is not an address:port", t.address))?;
        let transport = match t.transport.as_deref().unwrap_or("udp") {
            "udp" => Proto::Udp,
            "tcp" => Proto::Tcp,
            "tls" => Proto::Tls,
            other => return Err(format!("{what}.transport: {other:?} is not udp, tcp or tls")),
        };
        let tls = match transport {
            Proto::Tls => Some(trunk_tls(&what, data_dir, &t, address)?),
            _ if t.ca.is_some() || t.server_name.is_some() => {
                return Err(format!("{what}: ca and server_name are for transport = \"tls\""));
            }
            _ => None,
        };
        let srtp = media_setting(&format!("{what}.srtp"), t.srtp.as_deref(), MediaSetting::Off)?;
        if srtp == MediaSetting::Auto {
            return Err(format!(
                "{what}.srtp: auto is for extensions; use off, optional or required"
            ));
        }
        let auth = match (t.username, t.password) {
            (Some(username), Some(password)) if !username.is_empty() => Some(TrunkAuth {
                username,
                password: Secret::new(password),
            }),
            (None, None) => None,
            _ => return Err(format!("{what}: set both username and password, or neither")),
        };
        if t.register && auth.is_none() {
            return Err(format!("{what}.register needs username and password"));
        }
        trunk_list.push(TrunkConfig {
            auth,
            register: t.register.then(|| t.register_expires.unwrap_or(300).clamp(30, 3600)),
            name,
            address,
            transport,
            tls,
            srtp,
            suites: suites(&format!("{what}.srtp_suites"), &t.srtp_suites)?,
            domain: t.domain.map_or_else(|| domain.to_string(), |d| d.to_ascii_lowercase()),
        });
    }
    Ok(CallsConfig {
        media_bind: ip("bind", &media.bind)?,
        media_advertise: media.advertise.as_deref().map(|a| ip("advertise", a)).transpose()?,
        port_min,
        port_max,
        workers: media.workers,
        media_timeout: Duration::from_secs(media.timeout_secs.clamp(1, 3600)),
        record_all: media.record,
        recordings_dir: data_dir.join(media.recordings),
        ring_timeout: Duration::from_secs(calls.ring_timeout_secs.clamp(1, 600)),
        endpoints,
        trunks: trunk_list,
    })
}

/// A TLS trunk's certificate check: its CA bundle (given and readable, or
/// the development CA, loaded at start) and the name to check.
fn trunk_tls(what: &str, data_dir: &Path, t: &RawTrunk, address: SocketAddr) -> Result<TrunkTls, String> {
    let ca = match &t.ca {
        Some(path) => {
            let path = data_dir.join(path);
            crate::tls::load_ca(&path).map_err(|e| format!("{what}.ca: {e}"))?;
            path
        }
        None => data_dir.join("certs").join(crate::tls::DEV_CA_FILE),
    };
    let name = t
        .server_name
        .clone()
        .or_else(|| t.domain.clone())
        .unwrap_or_else(|| address.ip().to_string());
    let server_name = rustls_pki_types::ServerName::try_from(name.to_ascii_lowercase())
        .map_err(|_| format!("{what}.server_name: {name:?} is not a DNS name or IP address"))?;
    Ok(TrunkTls { ca, server_name })
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
    fn calls_media_extensions_and_trunks_parse() {
        let c = Config::parse(
            Path::new("/d"),
            "[sip]\ndomain = \"example.test\"\n[media]\nbind = \"127.0.0.1\"\nports = [30000, 30099]\n\
             timeout_secs = 5\n[calls]\nring_timeout_secs = 7\n\
             [extensions.\"101\"]\nsrtp = \"required\"\nsrtp_suites = [\"AES_CM_128_HMAC_SHA1_32\"]\nrecord = true\n\
             [trunks.pstn]\naddress = \"192.0.2.1:5060\"\n",
        )
        .unwrap();
        let calls = &c.calls;
        assert_eq!((calls.port_min, calls.port_max), (30000, 30099));
        assert_eq!(calls.media_timeout, Duration::from_secs(5));
        assert_eq!(calls.ring_timeout, Duration::from_secs(7));
        let e = calls.endpoint("example.test", "101").unwrap();
        assert_eq!(e.srtp, MediaSetting::Required);
        assert_eq!(e.suites, [Suite::AesCm128HmacSha1_32]);
        assert_eq!(e.record, Some(true));
        let t = calls.trunk("pstn").unwrap();
        assert_eq!(
            (t.transport, t.srtp, t.domain.as_str()),
            (Proto::Udp, MediaSetting::Off, "example.test")
        );
        assert_eq!(calls.recordings_dir, Path::new("/d/recordings"));
    }

    #[test]
    fn bad_calls_config_is_explained() {
        let bad = [
            ("[extensions.\"1\"]\nsrtp_suites = [\"ROT13\"]\n", "srtp_suites"),
            (
                "[trunks.x]\naddress = \"192.0.2.1:5060\"\ntransport = \"sctp\"\n",
                "trunks.x.transport",
            ),
            (
                "[trunks.x]\naddress = \"192.0.2.1:5061\"\ntransport = \"tls\"\nca = \"/nonexistent/ca.pem\"\n",
                "trunks.x.ca",
            ),
            (
                "[trunks.x]\naddress = \"192.0.2.1:5061\"\ntransport = \"tls\"\nserver_name = \"not a name\"\n",
                "trunks.x.server_name",
            ),
            (
                "[trunks.x]\naddress = \"192.0.2.1:5060\"\nca = \"ca.pem\"\n",
                "transport = \"tls\"",
            ),
            ("[trunks.x]\naddress = \"nowhere\"\n", "address"),
            ("[media]\nports = [5000, 4000]\n", "media.ports"),
            ("[extensions.\"1\"]\nsrtp = \"maybe\"\n", "srtp"),
        ];
        for (text, what) in bad {
            let e = Config::parse(Path::new("/d"), text).unwrap_err();
            assert!(e.contains(what), "{text}: {e}");
        }
    }

    #[test]
    fn tcp_and_tls_trunks_parse_with_their_certificate_check() {
        let dir = tempfile::tempdir().unwrap();
        crate::tls::issue_dev_cert(&dir.path().join("certs"), "example.test").unwrap();
        std::fs::copy(
            dir.path().join("certs").join(crate::tls::DEV_CA_FILE),
            dir.path().join("carrier-ca.pem"),
        )
        .unwrap();
        let c = Config::parse(
            dir.path(),
            "[trunks.a]\naddress = \"192.0.2.1:5060\"\ntransport = \"tcp\"\n\
             [trunks.b]\naddress = \"192.0.2.2:5061\"\ntransport = \"tls\"\n\
             [trunks.c]\naddress = \"192.0.2.3:5061\"\ntransport = \"tls\"\ndomain = \"Carrier.example\"\n\
             [trunks.d]\naddress = \"192.0.2.4:5061\"\ntransport = \"tls\"\nca = \"carrier-ca.pem\"\n\
             server_name = \"sip.carrier.example\"\n",
        )
        .unwrap();
        let t = |n: &str| c.calls.trunk(n).unwrap();
        assert_eq!((t("a").transport, t("a").tls.is_none()), (Proto::Tcp, true));
        let tls = |n: &str| t(n).tls.clone().unwrap();
        assert_eq!(t("b").transport, Proto::Tls);
        // The lab default: the PBX's own development CA, the address's IP.
        assert_eq!(tls("b").ca, dir.path().join("certs/ca/ca.pem"));
        assert_eq!(tls("b").server_name.to_str(), "192.0.2.2");
        assert_eq!(tls("c").server_name.to_str(), "carrier.example");
        assert_eq!(tls("d").ca, dir.path().join("carrier-ca.pem"));
        assert_eq!(tls("d").server_name.to_str(), "sip.carrier.example");
    }

    #[test]
    fn bad_config_is_explained() {
        let e = Config::parse(Path::new("/d"), "[plugins.hooks]\nrouting = \"../x\"\n").unwrap_err();
        assert!(e.contains("plugins.hooks.routing"), "{e}");
        assert!(Config::parse(Path::new("/d"), "[plugins]\nbogus = 1\n").is_err());
        assert!(Config::parse(Path::new("/d"), "").is_ok());
    }

    #[test]
    fn client_ca_defaults_to_the_dev_ca_and_a_configured_one_must_load() {
        let c = Config::parse(Path::new("/d"), DEFAULT_TOML).unwrap();
        assert_eq!(c.client_ca, Path::new("/d/certs/ca/ca.pem"));
        let e = Config::parse(Path::new("/d"), "[tls]\nclient_ca = \"phones.pem\"\n").unwrap_err();
        assert!(e.contains("tls.client_ca") && e.contains("/d/phones.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        crate::tls::issue_dev_cert(&dir.path().join("certs"), "example.test").unwrap();
        std::fs::copy(
            dir.path().join("certs").join(crate::tls::DEV_CA_FILE),
            dir.path().join("phones.pem"),
        )
        .unwrap();
        let c = Config::parse(dir.path(), "[tls]\nclient_ca = \"phones.pem\"\n").unwrap();
        assert_eq!(c.client_ca, dir.path().join("phones.pem"));
        assert!(Config::parse(Path::new("/d"), "[tls]\nbogus = 1\n").is_err());
    }
}
