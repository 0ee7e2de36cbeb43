//! Media relay load test: `cargo bench -p pbx-media --bench relay`.
//!
//! The relay alone (no SIP) with one worker pinned to core 0, and a load
//! generator on this thread pinned to core 1, over loopback. Each stream
//! is a call whose leg A receives 172-octet RTP packets (12 header + 160
//! payload, SRTP adds its tag) at 50 packets/s from the generator, and
//! whose leg B sends them on to the generator: one direction, A → B.
//!
//! The generator sends from one socket with `sendmmsg` (every call latches
//! that address) and receives on a few sockets with `recvmmsg`, so its own
//! cost per packet stays small. The send time travels in the RTP
//! timestamp field (in microseconds): the relay leaves RTP headers as they
//! are, so the receiver reads it without decrypting.
//!
//! Per run it prints
//! `relay <scenario> streams=N pps=… cpu_us_per_pkt=… loss=…% p50_ms=… p99_ms=… gen=…%`:
//! the worker thread's CPU time (from `/proc/self/task/<tid>/schedstat`)
//! per relayed packet, the packets not received, latency percentiles, and
//! the share of the offered load the generator managed to send (below
//! 100 % the generator, not the relay, is the limit). Then it steps the
//! SRTP→SRTP load up until loss reaches 0.1 % and prints the most streams
//! one core sustained.
//!
//! `PBX_BENCH_SECONDS` sets the measured time per run (default 2.5);
//! `PBX_BENCH_ONLY=N` runs only SRTP→SRTP at N streams (for profiling);
//! `PBX_BENCH_COALESCE_US` sets the relay's `coalesce` (default 500).

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use pbx_media::sys::{self, BATCH, Batch};
use pbx_media::{CallMedia, LegConfig, LegKeys, Relay, RelayConfig, Side};
use pbx_srtp::{Context, MasterKey, Options, Suite};

const PPS_PER_STREAM: u64 = 50;
const PAYLOAD: usize = 160;
const RX_SOCKETS: usize = 4;
const WARMUP: Duration = Duration::from_millis(500);
const DRAIN: Duration = Duration::from_millis(200);
/// Latency histogram: 10 µs buckets up to 500 ms.
const BUCKET_US: u64 = 10;
const BUCKETS: usize = 50_000;
const RELAY_CORE: usize = 0;
const GEN_CORE: usize = 1;

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    SrtpSrtp,
    SrtpRtp,
    RtpRtp,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::SrtpSrtp => "srtp->srtp",
            Scenario::SrtpRtp => "srtp->rtp",
            Scenario::RtpRtp => "rtp->rtp",
        }
    }
    fn a_srtp(self) -> bool {
        self != Scenario::RtpRtp
    }
    fn b_srtp(self) -> bool {
        self == Scenario::SrtpSrtp
    }
}

struct Outcome {
    sent: u64,
    received: u64,
    cpu_us_per_pkt: f64,
    p50_ms: f64,
    p99_ms: f64,
    gen_share: f64,
}

impl Outcome {
    fn loss(&self) -> f64 {
        if self.sent == 0 {
            return 1.0;
        }
        1.0 - self.received.min(self.sent) as f64 / self.sent as f64
    }
}

const SUITE: Suite = Suite::AesCm128HmacSha1_80;

fn key(seed: u8) -> MasterKey {
    let k: Vec<u8> = (0..16).map(|i| seed.wrapping_mul(29).wrapping_add(i)).collect();
    let s: Vec<u8> = (0..14).map(|i| seed.wrapping_add(3 * i)).collect();
    MasterKey::new(&k, &s).expect("key")
}

/// Thread id of the relay worker, found by its name.
fn worker_tid() -> Option<String> {
    std::fs::read_dir("/proc/self/task").ok()?.flatten().find_map(|e| {
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "pbx-media-0").then(|| e.file_name().to_string_lossy().into_owned())
    })
}

/// Nanoseconds the thread has run on a CPU.
fn cpu_ns(tid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn run(scenario: Scenario, streams: usize, measure: Duration) -> Outcome {
    let relay = Relay::start(RelayConfig {
        port_min: 10000,
        port_max: 65000,
        workers: 1,
        media_timeout: Duration::from_secs(600),
        cpu_affinity: vec![RELAY_CORE],
        coalesce: std::env::var("PBX_BENCH_COALESCE_US")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(RelayConfig::default().coalesce, Duration::from_micros),
        ..RelayConfig::default()
    })
    .expect("relay");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    tx.set_nonblocking(true).expect("nonblocking");
    let _ = sys::set_socket_buffers(tx.as_raw_fd(), 4 << 20);
    let rx: Vec<UdpSocket> = (0..RX_SOCKETS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
            s.set_nonblocking(true).expect("nonblocking");
            if let Err(e) = sys::set_socket_buffers(s.as_raw_fd(), 8 << 20) {
                eprintln!("note: cannot enlarge generator socket buffers: {e}");
            }
            s
        })
        .collect();
    let (ka_in, ka_out, kb_out) = (key(1), key(2), key(3));
    let mut calls: Vec<CallMedia> = Vec::with_capacity(streams);
    let mut dests: Vec<SocketAddr> = Vec::with_capacity(streams);
    for i in 0..streams {
        let call = relay
            .allocate(&format!("bench-{i}"))
            .expect("allocate (ports or descriptors exhausted?)");
        let keys = |srtp: bool, out: &MasterKey| srtp.then(|| LegKeys::new(SUITE, ka_in.clone(), out.clone()));
        call.configure(
            Side::A,
            LegConfig {
                remote_rtp: Some(tx.local_addr().expect("addr")),
                srtp: keys(scenario.a_srtp(), &ka_out),
                ..LegConfig::default()
            },
        )
        .expect("configure A");
        call.configure(
            Side::B,
            LegConfig {
                remote_rtp: Some(rx[i % RX_SOCKETS].local_addr().expect("addr")),
                // B's inbound key is unused (B sends nothing); its outbound differs from A's.
                srtp: keys(scenario.b_srtp(), &kb_out),
                ..LegConfig::default()
            },
        )
        .expect("configure B");
        dests.push(call.local(Side::A).rtp);
        calls.push(call);
    }
    let tid = worker_tid().expect("relay worker thread");
    let mut srtp = scenario.a_srtp().then(|| {
        Context::new(
            SUITE,
            &ka_in,
            Options {
                max_streams: streams.max(1),
                ..Options::default()
            },
        )
        .expect("context")
    });

    let mut batch = Batch::new();
    let mut hist = vec![0u64; BUCKETS];
    let interval_ns = 1e9 / (PPS_PER_STREAM as f64 * streams as f64);
    let start = Instant::now();
    let (m_start, m_end) = (WARMUP, WARMUP + measure);
    let (mut g, mut sent, mut received) = (0u64, 0u64, 0u64);
    let (mut cpu0, mut relayed0) = (0, 0);
    let mut measuring = false;
    loop {
        let now = start.elapsed();
        if !measuring && now >= m_start {
            measuring = true;
            cpu0 = cpu_ns(&tid);
            relayed0 = relay.counters().packets_relayed;
        }
        if now >= m_end + DRAIN {
            break;
        }
        // Send what is due (stream g % N is due at g * interval).
        let mut queued = 0;
        while now < m_end && (g as f64 * interval_ns) as u128 <= now.as_nanos() && queued < BATCH {
            let stream = (g % streams as u64) as usize;
            let seq = (g / streams as u64) as u16;
            let t_us = (start.elapsed().as_micros() as u64) as u32;
            let b = batch.buf(queued);
            b[0] = 0x80;
            b[1] = 0;
            b[2..4].copy_from_slice(&seq.to_be_bytes());
            b[4..8].copy_from_slice(&t_us.to_be_bytes());
            b[8..12].copy_from_slice(&(stream as u32 + 1).to_be_bytes());
            b[12..12 + PAYLOAD].fill(0x55);
            let len = match &mut srtp {
                Some(c) => c.protect_rtp(b, 12 + PAYLOAD).expect("protect"),
                None => 12 + PAYLOAD,
            };
            batch.queue(queued, len, dests[stream]);
            queued += 1;
            if (m_start..m_end).contains(&now) {
                sent += 1;
            }
            g += 1;
        }
        if queued > 0 {
            let failed = batch.send(tx.as_raw_fd());
            if (m_start..m_end).contains(&now) {
                sent -= u64::from(failed.count_ones());
            }
        }
        // Receive what is there.
        for s in &rx {
            loop {
                let n = batch.recv(s.as_raw_fd()).unwrap_or(0);
                let now_us = start.elapsed().as_micros() as u64 as u32;
                for i in 0..n {
                    let p = batch.received(i);
                    if p.len < 12 {
                        continue;
                    }
                    let t = u32::from_be_bytes([p.buf[4], p.buf[5], p.buf[6], p.buf[7]]);
                    let sent_at = Duration::from_micros(u64::from(t));
                    if (m_start..m_end).contains(&sent_at) {
                        received += 1;
                        let lat = u64::from(now_us.wrapping_sub(t));
                        hist[((lat / BUCKET_US) as usize).min(BUCKETS - 1)] += 1;
                    }
                }
                if n < BATCH {
                    break;
                }
            }
        }
    }
    let cpu = cpu_ns(&tid).saturating_sub(cpu0);
    let relayed = relay.counters().packets_relayed.saturating_sub(relayed0).max(1);
    let pct = |q: f64| {
        let target = (received as f64 * q).ceil() as u64;
        let mut acc = 0;
        for (i, c) in hist.iter().enumerate() {
            acc += c;
            if acc >= target.max(1) {
                return (i as u64 * BUCKET_US + BUCKET_US / 2) as f64 / 1000.0;
            }
        }
        f64::NAN
    };
    let offered = PPS_PER_STREAM as f64 * streams as f64 * measure.as_secs_f64();
    let out = Outcome {
        sent,
        received,
        cpu_us_per_pkt: cpu as f64 / 1000.0 / relayed as f64,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        gen_share: sent as f64 / offered,
    };
    for c in calls {
        drop(c);
    }
    drop(relay);
    out
}

fn print(scenario: Scenario, streams: usize, o: &Outcome) {
    println!(
        "relay {} streams={} pps={} cpu_us_per_pkt={:.2} loss={:.3}% p50_ms={:.2} p99_ms={:.2} sent={} gen={:.1}%",
        scenario.name(),
        streams,
        streams as u64 * PPS_PER_STREAM,
        o.cpu_us_per_pkt,
        100.0 * o.loss(),
        o.p50_ms,
        o.p99_ms,
        o.sent,
        100.0 * o.gen_share,
    );
}

fn main() {
    let measure = Duration::from_secs_f64(
        std::env::var("PBX_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2.5),
    );
    // Four sockets per stream, up to 12000 streams.
    let max_streams = match sys::raise_nofile_limit(60_000) {
        Ok((soft, hard)) => {
            if soft < 60_000 {
                println!(
                    "note: open-file limit is {soft} (hard {hard}, not raisable here): at most {} streams; raise the hard limit (ulimit -Hn) for more",
                    (soft as usize - 64) / 4
                );
            }
            (soft as usize).saturating_sub(64) / 4
        }
        Err(e) => {
            println!("note: cannot read or raise the open-file limit: {e}");
            1000
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        println!("note: one CPU only: generator and relay share it; figures are pessimistic");
    } else if let Err(e) = sys::pin_current_thread(GEN_CORE) {
        println!("note: cannot pin the generator to core {GEN_CORE}: {e}");
    }
    println!(
        "# relay worker on core {RELAY_CORE}, generator on core {GEN_CORE}; {PAYLOAD}+12-octet RTP at {PPS_PER_STREAM} pps per stream, A->B; {:.1} s per run",
        measure.as_secs_f64()
    );

    // PBX_BENCH_ONLY=streams runs one SRTP->SRTP run (for profiling).
    if let Some(n) = std::env::var("PBX_BENCH_ONLY").ok().and_then(|s| s.parse().ok()) {
        let o = run(Scenario::SrtpSrtp, n, measure);
        print(Scenario::SrtpSrtp, n, &o);
        return;
    }

    for scenario in [Scenario::SrtpSrtp, Scenario::SrtpRtp, Scenario::RtpRtp] {
        for streams in [100, 500, 1000, 2000].into_iter().filter(|&n| n <= max_streams) {
            let o = run(scenario, streams, measure);
            print(scenario, streams, &o);
        }
    }

    // The most SRTP->SRTP streams one core relays with < 0.1 % loss.
    let mut best: Option<(usize, Outcome)> = None;
    let mut capped = true;
    for streams in [3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 11000, 12000] {
        if streams > max_streams {
            break;
        }
        let o = run(Scenario::SrtpSrtp, streams, measure);
        print(Scenario::SrtpSrtp, streams, &o);
        let ok = o.loss() < 0.001;
        let generator_bound = o.gen_share < 0.99;
        if ok && !generator_bound {
            best = Some((streams, o));
        } else {
            capped = false;
            if generator_bound {
                println!(
                    "# the generator could not offer the full load at {streams} streams: the limit found is the generator's"
                );
            }
            break;
        }
    }
    if capped {
        println!("# the search stopped at the open-file limit, not at a loss");
    }
    match best {
        Some((n, o)) => println!(
            "relay srtp->srtp max_streams_per_core={n} (loss<0.1%) cpu_us_per_pkt={:.2} p99_ms={:.2}",
            o.cpu_us_per_pkt, o.p99_ms
        ),
        None if capped => {
            println!("relay srtp->srtp max_streams_per_core not measured (open-file limit below 3000 streams)")
        }
        None => println!("relay srtp->srtp max_streams_per_core<3000 (see the 3000-stream line for why)"),
    }
}
