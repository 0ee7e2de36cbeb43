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

/// A stopped [`TestPbx`]: its data folder, to start it again.
pub struct StoppedPbx {
    /// The data folder.
    pub data: PathBuf,
    _dir: tempfile::TempDir,
}

impl StoppedPbx {
    /// Start the PBX again on the same data.
    pub async fn start(self) -> TestPbx {
        let StoppedPbx { data, _dir } = self;
        let config = pbx::config::Config::load_or_init(&data).unwrap();
        let running = pbx::app::start(config).await.unwrap();
        TestPbx { running, data, _dir }
    }
}

/// The test domain.
pub const DOMAIN: &str = "example.test";

impl TestPbx {
    /// Start a PBX for [`DOMAIN`] with `extensions` (extension, password).
    pub async fn start(extensions: &[(&str, &str)]) -> TestPbx {
        Self::start_with(extensions, "", &[]).await
    }

    /// Start a PBX with `extra` appended to its `pbx.toml` right after
    /// `[media]` (so leading keys are media settings, then e.g. `[trunks]`
    /// tables) and plugin configurations written before it starts
    /// (`("dial-plan", "{...}")` becomes `plugins/dial-plan.json`).
    pub async fn start_with(extensions: &[(&str, &str)], extra: &str, plugin_configs: &[(&str, &str)]) -> TestPbx {
        let dir = tempdir();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("plugins")).unwrap();
        std::fs::write(
            data.join("pbx.toml"),
            format!(
                "[sip]\ndomain = \"{DOMAIN}\"\nudp = [\"127.0.0.1:0\"]\ntcp = [\"127.0.0.1:0\"]\ntls = [\"127.0.0.1:0\"]\nmin_expires = 2\n\
                 [media]\nbind = \"127.0.0.1\"\n{extra}"
            ),
        )
        .unwrap();
        for (name, json) in plugin_configs {
            std::fs::write(data.join("plugins").join(format!("{name}.json")), json).unwrap();
        }
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

    /// Stop this PBX as an admin would (Ctrl-C: its registrations saved),
    /// keeping its data folder.
    pub async fn stop(self) -> StoppedPbx {
        let TestPbx { running, data, _dir } = self;
        running.shutdown().await;
        StoppedPbx { data, _dir }
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

/// A port `p` free on UDP and TCP with `p + 1` free on TCP (baresip's
/// SIP and SIP-over-TLS ports), held together while checked.
pub fn free_port_pair() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = udp.local_addr().unwrap().port();
        if p == u16::MAX {
            continue;
        }
        let tcp = std::net::TcpListener::bind(("127.0.0.1", p));
        let tls = std::net::TcpListener::bind(("127.0.0.1", p + 1));
        if tcp.is_ok() && tls.is_ok() {
            return p;
        }
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
    let port = free_port(transport == "u1");
    let mut extra_with_port = vec!["-p".to_string(), port.to_string()];
    extra_with_port.extend(extra.iter().cloned());
    sipp_task(scenario, transport, target, &extra_with_port)
}

/// Run a sipp scenario whose `extra` arguments name its own port (`-p`),
/// e.g. to play a trunk at a configured address; returns its output.
pub async fn sipp_at(scenario: &Path, transport: &str, target: SocketAddr, extra: &[String]) -> Output {
    sipp_task(scenario, transport, target, extra).await.expect("sipp task")
}

fn sipp_task(
    scenario: &Path,
    transport: &str,
    target: SocketAddr,
    extra: &[String],
) -> tokio::task::JoinHandle<Output> {
    require("sipp", "sip-tester");
    let mut args: Vec<String> = vec![
        "-sf".into(),
        scenario.display().to_string(),
        "-i".into(),
        "127.0.0.1".into(),
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

/// How a [`Baresip`] phone is set up.
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    /// Extension and password.
    pub user: String,
    /// Its password.
    pub password: String,
    /// `tls` (SRTP required) or `udp` (plain RTP).
    pub transport: &'static str,
    /// baresip `mediaenc` (`srtp-mand`), or none.
    pub mediaenc: Option<&'static str>,
    /// `auto` answers at once, `manual` rings until told.
    pub answermode: &'static str,
    /// The tone it sends (Hz).
    pub tone: u32,
    /// Registration interval (seconds).
    pub regint: u32,
}

impl PhoneConfig {
    /// A TLS phone with mandatory SRTP that answers at once.
    pub fn tls(user: &str, password: &str) -> PhoneConfig {
        PhoneConfig {
            user: user.into(),
            password: password.into(),
            transport: "tls",
            mediaenc: Some("srtp-mand"),
            answermode: "auto",
            tone: 1000,
            regint: 300,
        }
    }
}

/// A test CA and certificates signed by it, made by
/// `../shared/peers/gen_certs.sh`: `ca.crt`, `server.pem` (certificate and
/// key for 127.0.0.1, ::1, localhost and example.test, baresip's format)
/// and an unrelated self-signed `selfsigned.crt`/`.pem`.
pub fn test_certs() -> tempfile::TempDir {
    let dir = tempdir();
    let out = run_with_timeout(
        60,
        "bash",
        &[
            shared_dir().join("peers/gen_certs.sh").display().to_string(),
            dir.path().display().to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "gen_certs.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// A baresip phone registered to a [`TestPbx`] (or a gateway, see
/// [`Baresip::gateway`]), with a control port; killed on drop. Its
/// received audio lands in `rec/dump-*-dec.wav`.
pub struct Baresip {
    child: std::process::Child,
    /// The ctrl_tcp port.
    pub ctrl: u16,
    /// Its SIP port (UDP and TCP); it listens for TLS on `sip + 1`.
    pub sip: u16,
    log: PathBuf,
    /// Where baresip's `sndfile` module writes its WAV dumps.
    pub rec: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Baresip {
    fn drop(&mut self) {
        // Kill baresip itself first: killing only its `timeout` wrapper
        // would leave it running, orphaned, with nothing to stop it.
        let _ = Command::new("pkill")
            .args(["-KILL", "-P", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Distinct RTP port ranges for the phones of one test process.
fn rtp_range() -> String {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % 100;
    let lo = 40_000 + n * 100;
    format!("{lo}-{}", lo + 99)
}

impl Baresip {
    /// Start a phone for `cfg` against `pbx` (over its TLS or UDP port).
    /// Its ports are picked free; should another process take one first
    /// (baresip cannot bind port 0), it is started again on others.
    pub fn start(pbx: &TestPbx, cfg: &PhoneConfig) -> Baresip {
        require("baresip", "baresip");
        for _ in 0..5 {
            if let Some(phone) = Self::try_start(pbx, cfg) {
                return phone;
            }
        }
        panic!("baresip could not bind its ports five times in a row");
    }

    /// Start a baresip playing a TLS gateway (a trunk): it registers
    /// nowhere, listens for TLS on [`Baresip::tls`] with `server_pem`
    /// (certificate and key), requires SRTP, answers calls to `number` at
    /// once sending a `tone` Hz sine, and calls out as
    /// `sip:<number>@127.0.0.1`. (baresip 1.0 answers 404 to a call for a
    /// user none of its accounts has.)
    pub fn gateway(server_pem: &Path, number: &str, tone: u32) -> Baresip {
        require("baresip", "baresip");
        let account = format!(
            "<sip:{number}@127.0.0.1;transport=tls>;regint=0;mediaenc=srtp-mand;answermode=auto;audio_codecs=PCMU"
        );
        for _ in 0..5 {
            let dir = tempdir();
            let cert = dir.path().join("server.pem");
            std::fs::copy(server_pem, &cert).unwrap();
            if let Some(gw) = Self::spawn(dir, &cert, None, account.clone(), tone) {
                return gw;
            }
        }
        panic!("baresip could not bind its ports five times in a row");
    }

    /// Its TLS listening address.
    pub fn tls(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip + 1))
    }

    fn try_start(pbx: &TestPbx, cfg: &PhoneConfig) -> Option<Baresip> {
        let dir = tempdir();
        // baresip wants one PEM with certificate and key.
        let certs = pbx.data.join("certs").join(DOMAIN);
        let mut pem = std::fs::read(certs.join("cert.pem")).unwrap();
        pem.extend(std::fs::read(certs.join("key.pem")).unwrap());
        let cert = dir.path().join("client.pem");
        std::fs::write(&cert, pem).unwrap();
        let (aor, outbound) = match cfg.transport {
            "tls" => (
                format!("<sip:{}@{DOMAIN};transport=tls>", cfg.user),
                format!("sip:{};transport=tls", pbx.tls()),
            ),
            _ => (format!("<sip:{}@{DOMAIN}>", cfg.user), format!("sip:{}", pbx.udp())),
        };
        let mediaenc = cfg.mediaenc.map(|m| format!(";mediaenc={m}")).unwrap_or_default();
        let account = format!(
            "{aor};auth_user={user};auth_pass={pw};outbound=\"{outbound}\";regint={regint}{mediaenc};answermode={answer};audio_codecs=PCMU",
            user = cfg.user,
            pw = cfg.password,
            regint = cfg.regint,
            answer = cfg.answermode,
        );
        let ca = pbx.data.join("certs").join(pbx::tls::DEV_CA_FILE);
        Self::spawn(dir, &cert, Some(&ca), account, cfg.tone)
    }

    /// Configure (`mkconf.sh`) and start one baresip in `dir` on free
    /// ports; `None` if another process took one of them first.
    fn spawn(dir: tempfile::TempDir, cert: &Path, ca: Option<&Path>, account: String, tone: u32) -> Option<Baresip> {
        let conf = dir.path().join("conf");
        let ctrl = free_port(false);
        // SIP on UDP+TCP `sip`, TLS on `sip + 1`.
        let sip = free_port_pair();
        let rec = dir.path().join("rec");
        let mut mkconf = Command::new("bash");
        mkconf
            .arg(shared_dir().join("peers/baresip/mkconf.sh"))
            .arg(&conf)
            .env("SIP_PORT", sip.to_string())
            .env("RTP_PORTS", rtp_range())
            .env("CTRL_PORT", ctrl.to_string())
            .env("AUSRC", format!("ausine,{tone}"))
            .env("REC_DIR", &rec)
            .env("CERT", cert)
            .env("ACCOUNT", account);
        if let Some(ca) = ca {
            mkconf.env("CAFILE", ca);
        }
        let status = mkconf.status().unwrap();
        assert!(status.success(), "mkconf.sh failed");
        let log = dir.path().join("baresip.log");
        let child = Command::new("timeout")
            .args(["-k", "2", "150", "baresip", "-4", "-s", "-v", "-f"])
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut phone = Baresip {
            child,
            ctrl,
            sip,
            log,
            rec,
            _dir: dir,
        };
        // Up when its control port answers; gone if a port was taken.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", ctrl)).is_ok() {
                return Some(phone);
            }
            if let Ok(Some(_)) = phone.child.try_wait() {
                let log = phone.log();
                assert!(log.contains("Address already in use"), "baresip exited:\n{log}");
                return None;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "baresip did not start:\n{}",
                phone.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Run `bctl.py` steps against this phone (blocking; at most 60 s).
    pub fn ctl(&self, steps: &[&str]) -> (bool, String) {
        let mut args = vec![
            shared_dir().join("peers/baresip/bctl.py").display().to_string(),
            "--port".into(),
            self.ctrl.to_string(),
        ];
        args.extend(steps.iter().map(|s| s.to_string()));
        let out = run_with_timeout(60, "python3", &args);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Wait (bounded) until the phone reports its registration OK.
    pub fn registered(&self) {
        let (ok, out) = self.ctl(&["poll:reginfo|\\bOK\\b|20"]);
        assert!(ok, "baresip did not register: {out}\n{}", self.log());
    }

    /// Send a signal (`STOP`, `CONT`) to the baresip process (the child
    /// of its `timeout` wrapper): `STOP` makes a phone go silent at once,
    /// as one that lost power or network.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("pkill")
            .args([&format!("-{sig}"), "-P", &self.child.id().to_string(), "baresip"])
            .status()
            .expect("pkill");
        assert!(status.success(), "no baresip process to signal");
    }

    /// Its log (SIP messages in clear, `-s`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The WAV files of received audio (`dump-*-dec.wav`).
    pub fn received_wavs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.rec)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Check with `../shared/peers/wavtone.py` that `wav`'s main tone is
/// `freq` Hz for at least `min_secs`; returns its report on failure.
pub fn wav_has_tone(wav: &Path, freq: u32, min_secs: f32) -> Result<(), String> {
    let out = run_with_timeout(
        30,
        "python3",
        &[
            shared_dir().join("peers/wavtone.py").display().to_string(),
            wav.display().to_string(),
            "--freq".into(),
            freq.to_string(),
            "--min-secs".into(),
            min_secs.to_string(),
        ],
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A live link to a baresip's `ctrl_tcp` module (JSON in netstrings).
///
/// baresip sends events only to clients already connected, so a test
/// connects to every phone *before* it makes anything happen, then awaits
/// events instead of sleeping.
pub struct Ctl {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
    token: u64,
    /// Every event received so far, in order (JSON objects).
    pub events: Vec<serde_json::Value>,
    taken: Vec<bool>,
}

impl Baresip {
    /// Connect to this phone's control port (retrying while it starts).
    pub async fn connect(&self) -> Ctl {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            match tokio::net::TcpStream::connect(("127.0.0.1", self.ctrl)).await {
                Ok(stream) => {
                    return Ctl {
                        stream,
                        buf: Vec::new(),
                        token: 0,
                        events: Vec::new(),
                        taken: Vec::new(),
                    };
                }
                Err(e) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "baresip control port {}: {e}\n{}",
                        self.ctrl,
                        self.log()
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

impl Ctl {
    async fn read_message(&mut self, until: tokio::time::Instant) -> Option<serde_json::Value> {
        use tokio::io::AsyncReadExt;
        loop {
            // netstring: <len>:<json>,
            if let Some(colon) = self.buf.iter().position(|&b| b == b':') {
                let len: usize = std::str::from_utf8(&self.buf[..colon]).ok()?.parse().ok()?;
                if self.buf.len() > colon + len + 1 {
                    let json = self.buf[colon + 1..colon + 1 + len].to_vec();
                    self.buf.drain(..colon + len + 2);
                    return serde_json::from_slice(&json).ok();
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(until, self.stream.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Run a command (e.g. `dial sip:101@example.test`); returns its
    /// response text. Panics if baresip says it failed.
    pub async fn cmd(&mut self, line: &str) -> String {
        use tokio::io::AsyncWriteExt;
        self.token += 1;
        let (command, params) = line.split_once(' ').unwrap_or((line, ""));
        let msg =
            serde_json::json!({"command": command, "params": params, "token": self.token.to_string()}).to_string();
        self.stream
            .write_all(format!("{}:{msg},", msg.len()).as_bytes())
            .await
            .expect("ctrl write");
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let m = self
                .read_message(until)
                .await
                .unwrap_or_else(|| panic!("no response to {line}"));
            if m.get("event").and_then(|v| v.as_bool()) == Some(true) {
                self.events.push(m);
                continue;
            }
            if m.get("token").and_then(|t| t.as_str()) == Some(&self.token.to_string()) {
                assert_eq!(m["ok"], serde_json::Value::Bool(true), "{line}: {m}");
                return m["data"].as_str().unwrap_or_default().to_string();
            }
        }
    }

    /// Wait up to `secs` for an event of `kind` (`CALL_ESTABLISHED`) not
    /// returned before (it may have arrived already); panics on timeout.
    pub async fn wait(&mut self, kind: &str, secs: u64) -> serde_json::Value {
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            // The first event of that kind not returned yet, wherever it
            // is (events of several kinds arrive in any order).
            self.taken.resize(self.events.len(), false);
            if let Some(i) = (0..self.events.len()).find(|&i| !self.taken[i] && self.events[i]["type"] == kind) {
                self.taken[i] = true;
                return self.events[i].clone();
            }
            match self.read_message(until).await {
                Some(m) if m.get("event").and_then(|v| v.as_bool()) == Some(true) => self.events.push(m),
                Some(_) => {}
                None => panic!("no {kind} event within {secs} s; events: {:?}", self.events),
            }
        }
    }

    /// The suite of the first `CALL_MENC` event (`AES_CM_128_HMAC_SHA1_80`).
    pub fn menc(&self) -> Option<String> {
        self.events
            .iter()
            .find(|e| e["type"] == "CALL_MENC")
            .and_then(|e| e["param"].as_str())
            .and_then(|p| p.split("audio,").nth(1))
            .map(str::to_string)
    }
}
