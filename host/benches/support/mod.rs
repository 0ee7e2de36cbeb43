//! What the register and calls benches share: reading a server's CPU time
//! and memory from `/proc`, and the other server to load instead of the
//! PBX (`benches/anchors/`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A server already running, named by the environment: `PBX_BENCH_PEER`
/// (its TLS address), `PBX_BENCH_PEER_PIDS` (its processes,
/// comma-separated) and `PBX_BENCH_PEER_CA` (the CA of its certificate for
/// `example.test`).
pub struct Peer {
    pub tls: SocketAddr,
    pub pids: Vec<u32>,
    pub ca: PathBuf,
}

/// The peer to load, if `PBX_BENCH_PEER` is set.
pub fn peer_from_env() -> Option<Peer> {
    let tls = std::env::var("PBX_BENCH_PEER").ok()?;
    let pids = std::env::var("PBX_BENCH_PEER_PIDS").expect("PBX_BENCH_PEER_PIDS");
    Some(Peer {
        tls: tls.parse().expect("PBX_BENCH_PEER: an address"),
        pids: pids.split(',').map(|p| p.trim().parse().expect("a pid")).collect(),
        ca: std::env::var("PBX_BENCH_PEER_CA").expect("PBX_BENCH_PEER_CA").into(),
    })
}

/// utime + stime of `pids` (every thread of each) together.
pub fn cpu_time(pids: &[u32]) -> Duration {
    let ticks: u64 = pids
        .iter()
        .map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let fields: Vec<&str> = after.split_whitespace().collect();
            fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
        })
        .sum();
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

/// Resident set size of `pids` together, KiB.
pub fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        })
        .sum()
}
