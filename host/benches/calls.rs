//! Call figures (issue 5): call setups per second and the PBX's CPU time
//! per call for full secure two-leg calls, and the time the policy hooks
//! add to each call.
//!
//! The PBX runs as a child process (this binary with `PBX_BENCH_SERVER`
//! set), so its CPU time is read from `/proc/<pid>/stat` alone; the load
//! client runs here on one thread. It plays [`PAIRS`] caller phones and as
//! many callee phones, every one with its own TLS connection; each pair
//! has one call in flight at a time, so [`PAIRS`] calls are always in
//! progress. A call is what a desk phone does:
//!
//! ```text
//! caller                     PBX                      callee
//!   INVITE (SDP, SDES) ──────►
//!   ◄──────────────── 407
//!   ACK ─────────────────────►
//!   INVITE + Proxy-Authorization ─►
//!   ◄──────────────── 100     INVITE (PBX's own SDES offer) ─►
//!                            ◄───────────────────────── 180
//!   ◄──────────────── 180    ◄──────────── 200 (SDP answer, fresh key)
//!                            ACK ──────────────────────────►
//!   ◄──────────────── 200 (SDP answer, the PBX's key)
//!   ACK (to the 200's Contact) ─►
//!   BYE ─────────────────────►
//!   ◄──────────────── 200    BYE ──────────────────────────►
//!                            ◄────────────────────────── 200
//! ```
//!
//! The callees keep their registration connection for the whole run (a
//! request to a registered phone travels over the flow its REGISTER came
//! on). The callers either keep one connection for all their calls (the
//! normal case for TLS phones, and the figure to compare with a proxy) or
//! open a new one, with a full handshake, for every call.
//!
//! A third run, `persistent_nonce_reuse`, has each caller keep the nonce
//! of its first 407 and answer every later INVITE with it at once (`nc`
//! counting up), as many desk phones do: the unauthenticated INVITE, the
//! 407 and its ACK drop out of every call but the first.
//!
//! A finished call's task lingers for 64·T1 (32 s: RFC 6026 Timers L and
//! M) before it is dropped; that deferred work falls outside the
//! measurement windows, so it is measured on its own afterwards
//! (`deferred_cpu_us_per_call`), while the hook timing runs in-process.
//!
//! Prints `calls <figure> <value> <unit>`. For profiling (`perf record -p`
//! on the `server_pid` printed first), `PBX_BENCH_CALLS=<n>` sets the
//! number of calls of the persistent run (and lets it run up to 60 s), and
//! `PBX_BENCH_PERSISTENT_ONLY=1` skips the new-connection and nonce-reuse
//! runs, `PBX_BENCH_NONCE_REUSE=1` makes the persistent run reuse nonces; the line
//! `calls: persistent run starts` goes to standard error.
//!
//! The same load can be pointed at a SIP proxy to compare (see
//! `benches/anchors/kamailio.sh`): `PBX_BENCH_PEER` is its TLS address,
//! `PBX_BENCH_PEER_PIDS` its processes (comma-separated; their CPU times
//! are summed) and `PBX_BENCH_PEER_CA` the CA that signed its certificate
//! for `example.test`. The hook timing and the PBX's counters are then
//! left out.

mod support;

use pbx::plugins::types::{Call, Caller, Target, Transport};
use pbx::plugins::{Limits, Policy, Runtime, routing, security};
use pbx_sdp::{CryptoAttr, KeyMaterial, LocalMedia, Sdp, SrtpPolicy, Suite};
use pbx_sip::auth::{ChallengeKind, ServerChallenge};
use pbx_sip::framing::{self, FrameError, Framed};
use pbx_sip::response::response_to;
use pbx_sip::{HeaderName, Message, Method, ParseConfig, Request, Response};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls_pki_types::pem::PemObject;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use support::{cpu_time, rss_kib};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DOMAIN: &str = "example.test";
/// Caller/callee pairs: the number of calls in flight.
const PAIRS: u32 = 100;
/// Callers are extensions 1000.., callees 2000.. (the default dial plan
/// routes 2–6 digit numbers to extensions).
const CALLER_BASE: u32 = 1000;
const CALLEE_BASE: u32 = 2000;
/// Any single read or write of the load client.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a finished call's transactions linger in the PBX (64·T1).
const LINGER: Duration = Duration::from_secs(32);
/// Hook timing: iterations measured (after as many again to warm up).
const HOOK_ITERATIONS: usize = 20_000;

/// One measured load.
struct Scenario {
    name: &'static str,
    calls: u64,
    /// Stop starting calls after this long even if `calls` is not reached.
    limit: Duration,
    new_connection: bool,
    /// Callers keep the nonce of their first 407 and send credentials with
    /// every later INVITE (nc counting up), as many desk phones do, so a
    /// call skips the unauthenticated INVITE, the 407 and its ACK.
    nonce_reuse: bool,
}

fn main() {
    if let Some(data) = std::env::var_os("PBX_BENCH_SERVER") {
        return server(data.into());
    }
    let persistent_calls: Option<u64> = std::env::var("PBX_BENCH_CALLS").ok().and_then(|v| v.parse().ok());
    let persistent_only = std::env::var_os("PBX_BENCH_PERSISTENT_ONLY").is_some();
    let reuse_only = std::env::var_os("PBX_BENCH_NONCE_REUSE").is_some();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, tls, pids, ca) = match support::peer_from_env() {
        Some(peer) => (None, peer.tls, peer.pids, peer.ca),
        None => {
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(
                data.join("pbx.toml"),
                format!(
                    "[sip]\ndomain = \"{DOMAIN}\"\nudp = []\ntcp = []\ntls = [\"127.0.0.1:0\"]\n\n[media]\nbind = \"127.0.0.1\"\n"
                ),
            )
            .unwrap();
            let child = Child::spawn(&data);
            let tls: SocketAddr = child.expect_line("READY ", Duration::from_secs(120)).parse().unwrap();
            let pid = child.pid();
            println!("calls server_pid {pid}");
            (
                Some(child),
                tls,
                vec![pid],
                data.join("certs").join(pbx::tls::DEV_CA_FILE),
            )
        }
    };
    let pids = &pids[..];

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let figures = rt.block_on(async {
        let env = Env::new(&ca, tls, pids.to_vec());
        let callees = env.start_callees().await;

        // Idle baseline: what the PBX burns with nothing to do (epoch
        // ticker, timers), to correct the long deferred-work window.
        let idle = {
            let (c0, t0) = (cpu_time(pids), Instant::now());
            tokio::time::sleep(Duration::from_secs(2)).await;
            (cpu_time(pids) - c0).as_secs_f64() / t0.elapsed().as_secs_f64()
        };
        println!("calls server_idle_cpu {:.2} %", idle * 100.0);

        let began = Instant::now();
        let warm = Scenario {
            name: "warm_up",
            calls: 300,
            limit: Duration::from_secs(5),
            new_connection: false,
            nonce_reuse: false,
        };
        let warm = env.run(&warm, &callees).await;
        let fresh = Scenario {
            name: "new_tls_connection_per_call",
            calls: if persistent_only { 0 } else { 2000 },
            limit: Duration::from_secs(8),
            new_connection: true,
            nonce_reuse: false,
        };
        let fresh = env.run(&fresh, &callees).await;
        if !persistent_only {
            fresh.print();
        }
        let persistent = Scenario {
            name: "persistent",
            calls: persistent_calls.unwrap_or(5000),
            limit: Duration::from_secs(if persistent_calls.is_some() { 60 } else { 12 }),
            new_connection: false,
            nonce_reuse: reuse_only,
        };
        eprintln!("calls: persistent run starts");
        let persistent = env.run(&persistent, &callees).await;
        persistent.print();
        if !persistent_only {
            let reuse = Scenario {
                name: "persistent_nonce_reuse",
                calls: 5000,
                limit: Duration::from_secs(12),
                new_connection: false,
                nonce_reuse: true,
            };
            env.run(&reuse, &callees).await.print();
        }

        // Deferred work: every call so far ends its lingering transactions
        // within LINGER of its end; measure from now until the last has,
        // minus the idle rate. The hooks are timed meanwhile, on another
        // thread (another process's CPU time is not disturbed by it).
        let hooks = child.is_some().then(|| std::thread::spawn(hook_figures));
        let (c0, t0) = (cpu_time(pids), Instant::now());
        let span = LINGER + Duration::from_millis(1500);
        let clean = began.elapsed() + Duration::from_secs(1) < LINGER;
        tokio::time::sleep(span).await;
        let tail = (cpu_time(pids) - c0).as_secs_f64() - idle * t0.elapsed().as_secs_f64();
        let calls = (warm.answered + fresh.answered + persistent.answered).max(1);
        let deferred = clean.then_some(tail * 1e6 / calls as f64);
        let hooks = hooks.map(|h| wait_thread(h, Duration::from_secs(60)));
        callees.stop();
        (persistent, deferred, hooks)
    });
    let (persistent, deferred, hooks) = figures;
    match deferred {
        Some(us) => println!("calls deferred_cpu_us_per_call {us:.0} us (Timers L/M 32 s after each call)"),
        None => println!("calls deferred_cpu_us_per_call unmeasured (the runs took longer than 64*T1)"),
    }
    let per_call = persistent.cpu_us_per_call();
    if let Some(hooks) = hooks {
        for (name, h) in [("hooks", &hooks.extension), ("hooks_trunk", &hooks.trunk)] {
            println!("calls {name}_us_per_call_p50 {:.1} us", h.p50);
            println!("calls {name}_us_per_call_p99 {:.1} us", h.p99);
            println!("calls {name}_us_per_call_mean {:.1} us", h.mean);
        }
        println!(
            "calls hooks_share_of_cpu_per_call {:.1} % (hooks p50 / persistent cpu per call)",
            hooks.extension.p50 * 100.0 / per_call
        );
    }
    if let Some(child) = &mut child {
        child.send("stats");
        let stats = child.expect_line("STATS ", Duration::from_secs(10));
        println!("calls server_counters {stats}");
    }
    let rss = rss_kib(pids);
    println!("calls server_VmRSS: {rss} kB");
    drop(child);
}

/// The PBX child process; killed when dropped (also while a panic unwinds).
struct Child {
    process: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Child {
    fn spawn(data: &std::path::Path) -> Child {
        let mut process = std::process::Command::new(std::env::current_exe().unwrap())
            .env("PBX_BENCH_SERVER", data)
            .env("PBX_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = process.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        // A reader thread, so that every wait for a line can time out.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Child {
            stdin: process.stdin.take(),
            process,
            lines,
        }
    }

    fn pid(&self) -> u32 {
        self.process.id()
    }

    /// The rest of the first line starting with `prefix`.
    fn expect_line(&self, prefix: &str, wait: Duration) -> String {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_string();
                    }
                }
                Err(e) => panic!("no `{prefix}` line from the PBX within {wait:?}: {e}"),
            }
        }
    }

    fn send(&mut self, command: &str) {
        if let Some(stdin) = &mut self.stdin {
            let _ = writeln!(stdin, "{command}");
            let _ = stdin.flush();
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn wait_thread<T: Send + 'static>(handle: std::thread::JoinHandle<T>, wait: Duration) -> T {
    let until = Instant::now() + wait;
    while !handle.is_finished() {
        assert!(Instant::now() < until, "a bench thread did not finish within {wait:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.join().unwrap()
}

/// What the load client needs everywhere.
struct Env {
    connector: tokio_rustls::TlsConnector,
    /// Without session resumption: a new connection is a full handshake.
    connector_full: tokio_rustls::TlsConnector,
    tls: SocketAddr,
    /// The server's processes.
    pids: Vec<u32>,
}

/// Counters of one run, shared by its caller tasks.
#[derive(Default)]
struct Tally {
    /// Calls not started yet.
    left: AtomicI64,
    /// Calls that went exactly as expected.
    completed: AtomicU64,
    /// Calls answered and hung up by the caller (the callee must see a BYE).
    answered: AtomicU64,
    /// Responses belonging to no pending request.
    stray: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
    setup: Mutex<Vec<Duration>>,
}

impl Tally {
    fn fail(&self, why: impl Into<String>) {
        *self.failures.lock().unwrap().entry(why.into()).or_default() += 1;
    }
}

/// Counters of the callee phones (they live across runs).
#[derive(Default)]
struct CalleeTally {
    byes: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
}

struct Callees {
    tally: Arc<CalleeTally>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Callees {
    fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// The figures of one run.
struct Figures {
    name: &'static str,
    completed: u64,
    answered: u64,
    failures: BTreeMap<String, u64>,
    stray: u64,
    setup: Vec<Duration>,
    wall: Duration,
    cpu: Duration,
    client_cpu: Duration,
}

impl Figures {
    fn cpu_us_per_call(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.completed.max(1) as f64
    }

    fn print(&self) {
        let n = self.name;
        let failed: u64 = self.failures.values().sum();
        let wall = self.wall.as_secs_f64();
        println!("calls {n}_calls {} completed in {wall:.2} s", self.completed);
        println!("calls {n}_setups_per_s {:.1} /s", self.completed as f64 / wall);
        println!("calls {n}_cpu_us_per_call {:.0} us", self.cpu_us_per_call());
        println!(
            "calls {n}_server_cpu_cores {:.2} (client {:.2})",
            self.cpu.as_secs_f64() / wall,
            self.client_cpu.as_secs_f64() / wall
        );
        println!("calls {n}_failures {failed}");
        for (why, count) in &self.failures {
            println!("calls {n}_failure {count} x {why}");
        }
        if self.stray > 0 {
            println!("calls {n}_stray_responses {}", self.stray);
        }
        let mut setup = self.setup.clone();
        setup.sort();
        if !setup.is_empty() {
            for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
                println!(
                    "calls {n}_setup_{label}_ms {:.2} ms",
                    percentile(&setup, p).as_secs_f64() * 1e3
                );
            }
        }
    }
}

impl Env {
    fn new(ca: &std::path::Path, tls: SocketAddr, pids: Vec<u32>) -> Arc<Env> {
        Arc::new(Env {
            connector: connector(ca, true),
            connector_full: connector(ca, false),
            tls,
            pids,
        })
    }

    /// Connect and register every callee, and serve its calls until stopped.
    async fn start_callees(self: &Arc<Env>) -> Callees {
        let tally = Arc::new(CalleeTally::default());
        let mut tasks = Vec::new();
        for i in 0..PAIRS {
            let ext = CALLEE_BASE + i;
            let mut conn = Conn::connect(&self.connector, self.tls).await.unwrap();
            register(&mut conn, ext).await.unwrap();
            tasks.push(tokio::spawn(callee(conn, ext, tally.clone())));
        }
        Callees { tally, tasks }
    }

    /// Run `sc` and measure it: from the first INVITE until the callees
    /// have answered the last BYE.
    async fn run(self: &Arc<Env>, sc: &Scenario, callees: &Callees) -> Figures {
        let tally = Arc::new(Tally::default());
        tally.left.store(sc.calls as i64, Ordering::SeqCst);
        let byes0 = callees.tally.byes.load(Ordering::SeqCst);
        let callee_failures0 = callees.tally.failures.lock().unwrap().clone();
        let (cpu0, client0, t0) = (cpu_time(&self.pids), cpu_time(&[std::process::id()]), Instant::now());
        let deadline = t0 + sc.limit;
        let run = run_tag();
        let mut tasks = Vec::new();
        for pair in 0..PAIRS {
            let (env, tally) = (self.clone(), tally.clone());
            let (new_connection, nonce_reuse) = (sc.new_connection, sc.nonce_reuse);
            tasks.push(tokio::spawn(async move {
                caller(&env, pair, run, new_connection, nonce_reuse, &tally, deadline).await;
            }));
        }
        // Each task stops starting calls at the deadline; a call in
        // progress is bounded by IO_TIMEOUT per step (at most 8 steps).
        for t in tasks {
            let left = deadline.saturating_duration_since(Instant::now()) + IO_TIMEOUT * 10;
            tokio::time::timeout(left, t)
                .await
                .expect("a caller task hung")
                .unwrap();
        }
        // The callee gets its BYE a moment after the caller's 200.
        let answered = tally.answered.load(Ordering::SeqCst);
        let until = Instant::now() + IO_TIMEOUT;
        while callees.tally.byes.load(Ordering::SeqCst) - byes0 < answered && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (wall, cpu, client_cpu) = (
            t0.elapsed(),
            cpu_time(&self.pids) - cpu0,
            cpu_time(&[std::process::id()]) - client0,
        );
        let byes = callees.tally.byes.load(Ordering::SeqCst) - byes0;
        let mut failures = tally.failures.lock().unwrap().clone();
        if byes < answered {
            *failures.entry("callee got no BYE".into()).or_default() += answered - byes;
        }
        for (why, count) in callees.tally.failures.lock().unwrap().iter() {
            let before = callee_failures0.get(why).copied().unwrap_or(0);
            if *count > before {
                *failures.entry(format!("callee: {why}")).or_default() += count - before;
            }
        }
        let setup = std::mem::take(&mut *tally.setup.lock().unwrap());
        Figures {
            name: sc.name,
            completed: tally.completed.load(Ordering::SeqCst),
            answered,
            failures,
            stray: tally.stray.load(Ordering::SeqCst),
            setup,
            wall,
            cpu,
            client_cpu,
        }
    }
}

/// A letter for the Call-IDs of a run, so runs never share one (a Call-ID
/// the PBX still knows would reach that call instead of starting one).
fn run_tag() -> char {
    static RUN: AtomicU64 = AtomicU64::new(0);
    char::from(b'a' + (RUN.fetch_add(1, Ordering::Relaxed) % 26) as u8)
}

/// One caller phone: calls its callee until the run's calls are all
/// started or the deadline passes.
async fn caller(
    env: &Env,
    pair: u32,
    run: char,
    new_connection: bool,
    nonce_reuse: bool,
    tally: &Tally,
    deadline: Instant,
) {
    let ext = CALLER_BASE + pair;
    let callee = CALLEE_BASE + pair;
    let mut conn: Option<Conn> = None;
    let mut nonce: Option<Nonce> = None;
    let mut n = 0u32;
    while Instant::now() < deadline && tally.left.fetch_sub(1, Ordering::SeqCst) > 0 {
        n += 1;
        let mut c = match conn.take() {
            Some(c) => c,
            None => {
                let connector = if new_connection {
                    &env.connector_full
                } else {
                    &env.connector
                };
                match Conn::connect(connector, env.tls).await {
                    Ok(c) => c,
                    Err(e) => {
                        tally.fail(format!("connect: {e}"));
                        continue;
                    }
                }
            }
        };
        let call_id = format!("{run}{n}-{ext}@bench");
        if !nonce_reuse {
            nonce = None;
        }
        match place_call(&mut c, ext, callee, &call_id, &mut nonce, tally).await {
            Ok(setup) => {
                tally.completed.fetch_add(1, Ordering::SeqCst);
                tally.setup.lock().unwrap().push(setup);
            }
            Err(f) => {
                tally.fail(f.why);
                if !f.in_sync {
                    continue; // The connection is dropped: its stream may hold leftovers.
                }
            }
        }
        if new_connection {
            c.close().await;
        } else {
            conn = Some(c);
        }
    }
}

/// Why a call did not go as expected.
struct Failure {
    why: String,
    /// The call was still hung up cleanly: the connection can be reused.
    in_sync: bool,
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure { why, in_sync: false }
    }
}

/// A challenge kept for answering later INVITEs without a new 407.
struct Nonce {
    kind: ChallengeKind,
    challenge: ServerChallenge,
    /// Requests answered with this nonce so far.
    nc: u32,
}

impl Nonce {
    fn from_407(challenge: &Response) -> Result<Nonce, String> {
        let (kind, challenge) = ServerChallenge::from_response(challenge).ok_or("407 without a usable challenge")?;
        Ok(Nonce { kind, challenge, nc: 0 })
    }

    /// The credentials header line for the next request with this nonce.
    fn next_header(&mut self, ext: u32, uri: &str) -> String {
        self.nc += 1;
        let user = ext.to_string();
        let cnonce = format!("{:08x}", self.nc.wrapping_mul(0x9e37_79b9));
        let value = self
            .challenge
            .answer("INVITE", uri, &user, &format!("pw-{user}"), &cnonce, self.nc);
        format!("{}: {value}\r\n", self.kind.credentials_header())
    }
}

/// One call, from the first INVITE to the 200 for the BYE. Returns the
/// setup time: authenticated INVITE sent → 200 received.
///
/// A kept `nonce` answers the INVITE at once (a `407` with a new nonce,
/// e.g. `stale=true`, is ACKed and answered once more); without one, the
/// call starts with an unauthenticated INVITE and its 407, whose nonce is
/// kept in `nonce`.
async fn place_call(
    c: &mut Conn,
    ext: u32,
    callee: u32,
    call_id: &str,
    nonce: &mut Option<Nonce>,
    tally: &Tally,
) -> Result<Duration, Failure> {
    let ruri = format!("sip:{callee}@{DOMAIN}");
    // Tags, branches and the SDP session id, unique per call.
    let id = short_hash(call_id);
    let from = format!("<sip:{ext}@{DOMAIN}>;tag=f{id:x}");
    let key = KeyMaterial::random(Suite::AesCm128HmacSha1_80).map_err(|e| format!("keygen: {e}"))?;
    let crypto = CryptoAttr::new(1, key).to_string();
    let sdp = format!(
        "v=0\r\no=- {n} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\na=crypto:{crypto}\r\n",
        n = id as u32,
        port = 30000 + (ext - CALLER_BASE) * 2,
    );
    let invite = |cseq: u32, branch: &str, auth: &str| {
        format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: <{ruri}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n\
             Contact: <sip:{ext}@127.0.0.1:5999;transport=tls>\r\n{auth}User-Agent: pbx-bench\r\n\
             Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
    };

    // INVITE without credentials (unless a kept nonce answers at once):
    // 407, which the caller ACKs in its transaction (same branch).
    let mut cseq = 1;
    let mut auth = nonce.as_mut().map(|n| n.next_header(ext, &ruri));
    let (ok, branch, setup, seen) = loop {
        let branch = format!("{id:x}{cseq}");
        let credentials = auth.take();
        // With credentials: 100, 180, 200 with the PBX's SDP answer.
        c.send(invite(cseq, &branch, credentials.as_deref().unwrap_or("")).as_bytes())
            .await?;
        let sent = Instant::now();
        let mut seen = Vec::new();
        let ok = loop {
            let r = c.response(call_id, cseq, tally).await?;
            if r.status() >= 200 {
                break r;
            }
            seen.push(r.status());
        };
        let setup = sent.elapsed();
        // A 407 to the INVITE without credentials, or to the first one
        // (credentials at CSeq 1 come from a kept nonce, which expired):
        // take its nonce, once.
        if ok.status() == 407 && (credentials.is_none() || cseq == 1) {
            ack_final(c, &ok, &ruri, &from, call_id, &branch, cseq).await?;
            let kept = nonce.insert(Nonce::from_407(&ok)?);
            auth = Some(kept.next_header(ext, &ruri));
            cseq += 1;
            continue;
        }
        if credentials.is_none() {
            return Err(format!("first INVITE answered {} (want 407)", ok.status()).into());
        }
        break (ok, branch, setup, seen);
    };
    if ok.status() != 200 {
        ack_final(c, &ok, &ruri, &from, call_id, &branch, cseq).await?;
        return Err(Failure {
            why: format!("INVITE answered {} {}", ok.status(), ok.reason()),
            in_sync: true,
        });
    }
    let mut deviation = check_answer(&ok, &crypto).err();
    if seen != [100, 180] {
        deviation.get_or_insert(format!("provisional responses {seen:?} (want [100, 180])"));
    }

    // ACK to the 200's Contact, then BYE at once.
    let target = ok
        .contacts()
        .ok()
        .flatten()
        .and_then(|c| c.into_iter().next())
        .map(|c| c.uri.to_string())
        .ok_or_else(|| "200 without Contact".to_string())?;
    let to = ok.headers().get(&HeaderName::TO).unwrap_or_default().to_string();
    let in_dialog = |method: &str, cseq: u32, suffix: char| {
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK{id:x}{suffix};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    c.send(in_dialog("ACK", cseq, 'c').as_bytes()).await?;
    c.send(in_dialog("BYE", cseq + 1, 'd').as_bytes()).await?;
    tally.answered.fetch_add(1, Ordering::SeqCst);
    let bye_ok = c.response(call_id, cseq + 1, tally).await?;
    if bye_ok.status() != 200 {
        deviation.get_or_insert(format!("BYE answered {}", bye_ok.status()));
    }
    match deviation {
        None => Ok(setup),
        Some(why) => Err(Failure { why, in_sync: true }),
    }
}

/// The 200's SDP must be an SDES-SRTP answer with the PBX's own key.
fn check_answer(ok: &Response, offered: &str) -> Result<(), String> {
    let sdp = Sdp::parse_bytes(ok.body()).map_err(|e| format!("200 SDP: {e}"))?;
    let audio = sdp
        .media
        .iter()
        .find(|m| m.media == "audio" && m.port != 0)
        .ok_or("200 SDP without audio")?;
    if !audio.proto.is_sdes_srtp() {
        return Err(format!("200 SDP proto {}", audio.proto));
    }
    let crypto: Vec<_> = audio.crypto().collect();
    match crypto.as_slice() {
        [Ok(a)] if a.suite == Suite::AesCm128HmacSha1_80 && a.to_string() != offered => Ok(()),
        _ => Err("200 SDP crypto line missing, wrong suite or our own key".into()),
    }
}

/// ACKs a non-2xx final response to an INVITE, in its transaction.
async fn ack_final(
    c: &mut Conn,
    r: &Response,
    ruri: &str,
    from: &str,
    call_id: &str,
    branch: &str,
    cseq: u32,
) -> Result<(), Failure> {
    let to = r.headers().get(&HeaderName::TO).unwrap_or_default();
    let ack = format!(
        "ACK {ruri} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\n\
         From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n"
    );
    Ok(c.send(ack.as_bytes()).await?)
}

/// A short stable number from a string (tags and branches unique per call).
fn short_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// One callee phone: 180 and 200 (with a fresh SDES answer) to every
/// INVITE, 200 to every BYE.
async fn callee(mut c: Conn, ext: u32, tally: Arc<CalleeTally>) {
    let fail = |why: String| *tally.failures.lock().unwrap().entry(why).or_default() += 1;
    let contact = format!("<sip:{ext}@127.0.0.1:5999;transport=tls>");
    let mut n = 0u64;
    loop {
        // Idle between runs is normal: a timeout just waits again (the
        // task is aborted at the end).
        let msg = match c.read(Duration::from_secs(60)).await {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                fail(format!("connection lost: {e}"));
                return;
            }
        };
        let Message::Request(req) = msg else { continue };
        let replies = match req.method() {
            Method::Invite => {
                n += 1;
                answer_invite(&req, ext, n, &contact).unwrap_or_else(|why| {
                    fail(why);
                    vec![response_to(&req, 488, None).unwrap()]
                })
            }
            Method::Ack => continue,
            Method::Bye => {
                tally.byes.fetch_add(1, Ordering::SeqCst);
                vec![response_to(&req, 200, None).unwrap()]
            }
            other => {
                fail(format!("unexpected {other}"));
                vec![response_to(&req, 501, None).unwrap()]
            }
        };
        for r in replies {
            if let Err(e) = c.send(&r.to_bytes()).await {
                fail(format!("send: {e}"));
                return;
            }
        }
    }
}

/// 180 and 200 for the PBX's INVITE, answering its SDES offer.
fn answer_invite(req: &Request, ext: u32, n: u64, contact: &str) -> Result<Vec<Response>, String> {
    let offer = Sdp::parse_bytes(req.body()).map_err(|e| format!("INVITE SDP: {e}"))?;
    let local = LocalMedia::new([127, 0, 0, 1].into(), 40000 + ((ext - CALLEE_BASE) * 2) as u16);
    let (answer, _) = pbx_sdp::answer(&offer, &local, &SrtpPolicy::default(), &mut KeyMaterial::random)
        .map_err(|e| format!("cannot answer the PBX's offer: {e}"))?;
    let tag = format!("t{ext}x{n}");
    let mut ringing = response_to(req, 180, None).map_err(|e| e.to_string())?;
    ringing.set_to_tag(&tag).map_err(|e| e.to_string())?;
    ringing
        .push_header(HeaderName::CONTACT, contact)
        .map_err(|e| e.to_string())?;
    let mut ok = response_to(req, 200, None).map_err(|e| e.to_string())?;
    ok.set_to_tag(&tag).map_err(|e| e.to_string())?;
    ok.push_header(HeaderName::CONTACT, contact)
        .map_err(|e| e.to_string())?;
    ok.set_body(Some("application/sdp"), answer.to_bytes())
        .map_err(|e| e.to_string())?;
    Ok(vec![ringing, ok])
}

/// REGISTER with digest over `c`; expect 200.
async fn register(c: &mut Conn, ext: u32) -> Result<(), String> {
    let user = ext.to_string();
    let call_id = format!("reg-{user}@bench");
    let msg = |seq: u32, auth: &str| {
        format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKr{seq}x{user};rport\r\n\
             From: <sip:{user}@{DOMAIN}>;tag=r{user}\r\nTo: <sip:{user}@{DOMAIN}>\r\nCall-ID: {call_id}\r\n\
             CSeq: {seq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:5999;transport=tls>\r\n{auth}Expires: 3600\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let tally = Tally::default();
    c.send(msg(1, "").as_bytes()).await?;
    let challenge = c.response(&call_id, 1, &tally).await?;
    if challenge.status() != 401 {
        return Err(format!("REGISTER answered {}", challenge.status()));
    }
    let (kind, offer) = ServerChallenge::from_response(&challenge).ok_or("401 without a usable challenge")?;
    let value = offer.answer(
        "REGISTER",
        &format!("sip:{DOMAIN}"),
        &user.to_string(),
        &format!("pw-{user}"),
        "c0ffee",
        1,
    );
    let auth = format!("{}: {value}\r\n", kind.credentials_header());
    c.send(msg(2, &auth).as_bytes()).await?;
    let ok = c.response(&call_id, 2, &tally).await?;
    if ok.status() != 200 {
        return Err(format!("REGISTER with credentials answered {}", ok.status()));
    }
    Ok(())
}

/// A phone's TLS connection, framed like the PBX frames it
/// (`framing::check`, then `Message::parse`).
struct Conn {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    async fn connect(connector: &tokio_rustls::TlsConnector, addr: SocketAddr) -> Result<Conn, String> {
        let connect = async {
            let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            tcp.set_nodelay(true).map_err(|e| e.to_string())?;
            connector
                .connect(ServerName::try_from(DOMAIN).unwrap(), tcp)
                .await
                .map_err(|e| e.to_string())
        };
        let stream = tokio::time::timeout(IO_TIMEOUT, connect)
            .await
            .map_err(|_| "TLS connect timed out".to_string())??;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(IO_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write: {e}")),
            Err(_) => Err("write timed out".into()),
        }
    }

    /// Close cleanly (close_notify, FIN), as a phone dropping its
    /// connection would.
    async fn close(mut self) {
        let _ = tokio::time::timeout(IO_TIMEOUT, self.stream.shutdown()).await;
    }

    /// The next message; `None` if nothing arrived within `wait`.
    async fn read(&mut self, wait: Duration) -> Result<Option<Message>, String> {
        let config = ParseConfig::default();
        let until = tokio::time::Instant::now() + wait;
        loop {
            match framing::check(&self.buf, &config) {
                Ok(Framed::Message { len }) => {
                    let message = Message::parse(&self.buf[..len], &config).map_err(|e| format!("parse: {e}"));
                    self.buf.drain(..len);
                    return message.map(Some);
                }
                Ok(Framed::Ping { len } | Framed::KeepAlive { len }) => {
                    self.buf.drain(..len);
                    continue;
                }
                Err(FrameError::Incomplete) => {}
                Err(e) => return Err(format!("framing: {e}")),
            }
            if self.buf.capacity() - self.buf.len() < 2048 {
                self.buf.reserve(4096);
            }
            match tokio::time::timeout_at(until, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) => return Err("connection closed by the PBX".into()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("read: {e}")),
                Err(_) => return Ok(None),
            }
        }
    }

    /// The next response to the request `cseq` of `call_id`, skipping
    /// stray ones.
    async fn response(&mut self, call_id: &str, cseq: u32, tally: &Tally) -> Result<Response, String> {
        loop {
            match self.read(IO_TIMEOUT).await? {
                Some(Message::Response(r)) if r.call_id() == call_id && r.cseq().seq == cseq => return Ok(r),
                Some(Message::Response(_)) => {
                    tally.stray.fetch_add(1, Ordering::Relaxed);
                }
                Some(Message::Request(r)) => return Err(format!("unexpected {} from the PBX", r.method())),
                None => return Err(format!("no response to CSeq {cseq} within {IO_TIMEOUT:?}")),
            }
        }
    }
}

fn connector(ca: &std::path::Path, resume: bool) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca).unwrap()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Per-call hook latency, in microseconds.
struct HookLatency {
    p50: f64,
    p99: f64,
    mean: f64,
}

struct HookFigures {
    /// An extension call with the bundled defaults (what the child runs):
    /// routing + security.
    extension: HookLatency,
    /// A trunk call (dial plan with a `9` prefix): routing + trunk
    /// exception + security.
    trunk: HookLatency,
}

/// Time the hooks a call runs, in-process, with the bundled plugins.
fn hook_figures() -> HookFigures {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let runtime = Runtime::new(Limits::default()).unwrap();
        let defaults = bundled_policy(&runtime, None).await;
        let extension = time_hooks(&defaults, &call("2000")).await;
        let dial_plan = r#"{ "extension_digits": { "min": 2, "max": 6 }, "named_extensions": true,
            "trunk_prefixes": [ { "prefix": "9", "trunk": "pstn" } ], "e164_trunk": null, "inbound": {} }"#;
        let trunks = bundled_policy(&runtime, Some(dial_plan)).await;
        let trunk = time_hooks(&trunks, &call("9030123456")).await;
        HookFigures { extension, trunk }
    })
}

/// A policy with the routing, security and trunk-exception plugins of the
/// bundle (optionally another dial-plan configuration).
async fn bundled_policy(runtime: &Arc<Runtime>, dial_plan: Option<&str>) -> Arc<Policy> {
    let policy = Policy::new(runtime.clone(), |hook| pbx::bundle::for_hook(hook).name.to_string());
    for p in &pbx::bundle::BUNDLE {
        let config = match (p.name, dial_plan) {
            ("dial-plan", Some(c)) => c,
            _ => p.config,
        };
        policy
            .install(p.name, p.wasm.to_vec(), config.to_string())
            .await
            .unwrap();
    }
    policy
}

/// The plugin view of a bench call (as `calls::call::plugin_call` builds it).
fn call(to: &str) -> Call {
    Call {
        call_id: "p17-1000@bench".into(),
        request_uri: format!("sip:{to}@{DOMAIN}"),
        from_uri: format!("sip:1000@{DOMAIN}"),
        from_display: None,
        to_uri: format!("sip:{to}@{DOMAIN}"),
        domain: DOMAIN.into(),
        caller: Caller::Extension("1000".into()),
        source_transport: Transport::Tls,
        source_addr: "127.0.0.1:40312".into(),
        client_cert_subject: None,
        caller_srtp: true,
        headers: "User-Agent: pbx-bench\r\n".into(),
    }
}

/// The hook sequence of `Call::route_and_dial`: route, the trunk-exception
/// hook for a trunk target, then security for the chosen leg.
async fn time_hooks(policy: &Policy, call: &Call) -> HookLatency {
    let mut lat = Vec::with_capacity(HOOK_ITERATIONS);
    for i in 0..HOOK_ITERATIONS * 2 {
        let t = Instant::now();
        let target = match policy.route(call).await {
            routing::Decision::Target(t) => t,
            routing::Decision::Reject(r) => panic!("routing refused the bench call: {} {}", r.code, r.reason),
        };
        let exempt_trunk = match &target {
            Target::Trunk(t) => policy.is_trunk_exempt(&t.trunk).await,
            _ => false,
        };
        let leg = security::Leg {
            target,
            transport: Transport::Tls,
            srtp: true,
            exempt_trunk,
        };
        let verdict = policy.check_security(call, &leg).await;
        let elapsed = t.elapsed();
        assert!(
            matches!(verdict, security::Verdict::Allow),
            "security refused the bench call"
        );
        if i >= HOOK_ITERATIONS {
            lat.push(elapsed);
        }
    }
    let mean = lat.iter().sum::<Duration>().as_secs_f64() * 1e6 / lat.len() as f64;
    lat.sort();
    HookLatency {
        p50: percentile(&lat, 0.5).as_secs_f64() * 1e6,
        p99: percentile(&lat, 0.99).as_secs_f64() * 1e6,
        mean,
    }
}

/// The PBX side: start it, create the phones' extensions, print the TLS
/// port, answer `stats` on standard input, run until standard input closes.
fn server(data: std::path::PathBuf) {
    let filter = std::env::var("PBX_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = pbx::config::Config::load_or_init(&data).unwrap();
        let running = pbx::app::start(config).await.unwrap();
        for ext in (0..PAIRS).flat_map(|i| [CALLER_BASE + i, CALLEE_BASE + i]) {
            running
                .store
                .add_extension(&pbx::store::Extension {
                    domain: DOMAIN.into(),
                    extension: ext.to_string(),
                    password: format!("pw-{ext}"),
                    display_name: None,
                    provisioned: false,
                })
                .unwrap();
        }
        println!("READY {}", running.listeners.tls[0]);
        std::io::stdout().flush().unwrap();
        let core = running.sip.clone();
        let stats = move || {
            let c = &core.calls.counters;
            let s = &core.counters;
            let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
            format!(
                "STATS started={} answered={} refused={} failed={} active={} dropped={} tls_failures={} \
                 stream_errors={} bad_requests={}",
                get(&c.started),
                get(&c.answered),
                get(&c.refused),
                get(&c.failed),
                get(&c.active),
                get(&s.dropped),
                get(&s.tls_failures),
                get(&s.stream_errors),
                get(&s.bad_requests),
            )
        };
        tokio::task::spawn_blocking(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if line.trim() == "stats" {
                    println!("{}", stats());
                    let _ = std::io::stdout().flush();
                }
            }
        })
        .await
        .unwrap();
        drop(running);
    });
}
