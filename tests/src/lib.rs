//! Shared helpers for the PBX's end-to-end tests: test guest plugins, an
//! in-process PBX on loopback ports, and real SIP peers (sipp, baresip)
//! run as child processes with hard timeouts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A test guest plugin component (`tests/guests/<name>`), by crate name
/// (`guest-evil`).
pub fn guest_wasm(name: &str) -> Vec<u8> {
    let file = Path::new(env!("PBX_TEST_GUESTS_DIR")).join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A fresh temporary folder, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary folder")
}

/// The read-only `shared/` folder beside the repository (peers recipes,
/// vectors); `PBX_SHARED` overrides it.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("PBX_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// A PBX running in this process on 127.0.0.1 with OS-chosen ports.
pub struct TestPbx {
    /// The running PBX.
    pub running: pbx::app::Running,
    /// Its data folder.
    pub data: PathBuf,
    _dir: tempfile::TempDir,
}

/// The test domain.
pub const DOMAIN: &str = "example.test";

impl TestPbx {
    /// Start a PBX for [`DOMAIN`] with `extensions` (extension, password).
    pub async fn start(extensions: &[(&str, &str)]) -> TestPbx {
        let dir = tempdir();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(
            data.join("pbx.toml"),
            format!(
                "[sip]\ndomain = \"{DOMAIN}\"\nudp = [\"127.0.0.1:0\"]\ntcp = [\"127.0.0.1:0\"]\ntls = [\"127.0.0.1:0\"]\nmin_expires = 2\n"
            ),
        )
        .unwrap();
        let config = pbx::config::Config::load_or_init(&data).unwrap();
        let running = pbx::app::start(config).await.unwrap();
        for (ext, pw) in extensions {
            let existing = running.store.extension(DOMAIN, ext).unwrap();
            if existing.is_some() {
                running.store.set_password(DOMAIN, ext, pw).unwrap();
            } else {
                running
                    .store
                    .add_extension(&pbx::store::Extension {
                        domain: DOMAIN.into(),
                        extension: ext.to_string(),
                        password: pw.to_string(),
                        display_name: None,
                        provisioned: false,
                    })
                    .unwrap();
            }
        }
        TestPbx {
            running,
            data,
            _dir: dir,
        }
    }

    /// The UDP listener.
    pub fn udp(&self) -> SocketAddr {
        self.running.listeners.udp[0]
    }

    /// The TCP listener.
    pub fn tcp(&self) -> SocketAddr {
        self.running.listeners.tcp[0]
    }

    /// The TLS listener.
    pub fn tls(&self) -> SocketAddr {
        self.running.listeners.tls[0]
    }
}

/// A free local port (bound then released; good enough for peers that
/// cannot bind port 0 themselves).
pub fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

/// Fail with an install hint when a peer program is missing.
pub fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "the interop test needs `{program}`: install it with `apt-get install {package}` (.ci/run does)"
    );
}

/// Run `program args…` under `timeout -k 2 SECS` (a hard limit even if the
/// peer hangs) and return its output.
pub fn run_with_timeout(secs: u32, program: &str, args: &[String]) -> Output {
    Command::new("timeout")
        .arg("-k")
        .arg("2")
        .arg(secs.to_string())
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// Run a sipp scenario against `target`; returns its output.
pub async fn sipp(scenario: &Path, transport: &str, target: SocketAddr, extra: &[String]) -> Output {
    sipp_spawn(scenario, transport, target, extra).await.expect("sipp task")
}

/// Start a sipp scenario against `target` on a blocking thread.
pub fn sipp_spawn(
    scenario: &Path,
    transport: &str,
    target: SocketAddr,
    extra: &[String],
) -> tokio::task::JoinHandle<Output> {
    require("sipp", "sip-tester");
    let port = free_port(transport == "u1");
    let mut args: Vec<String> = vec![
        "-sf".into(),
        scenario.display().to_string(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-t".into(),
        transport.into(),
        "-nostdin".into(),
        "-timeout".into(),
        "20s".into(),
        "-timeout_error".into(),
        "-trace_err".into(),
    ];
    args.extend(extra.iter().cloned());
    args.push(target.to_string());
    let cwd = tempdir();
    tokio::task::spawn_blocking(move || {
        let mut cmd_args = vec!["-k".to_string(), "2".into(), "40".into(), "sipp".into()];
        cmd_args.extend(args);
        Command::new("timeout")
            .args(&cmd_args)
            .current_dir(cwd.path())
            .output()
            .expect("running sipp")
    })
}
