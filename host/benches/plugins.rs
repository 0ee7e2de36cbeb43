//! Plugin runtime figures (issue 2): decision latency on a warm runtime,
//! plugin compile time, file-write-to-swap time, memory per instance.
//!
//! `cargo bench -p pbx --bench plugins` prints one line per figure:
//! `plugins <figure> <value> <unit>`.

use pbx::bundle::BUNDLE;
use pbx::plugins::types::{Call, Caller, Transport};
use pbx::plugins::{Hook, Limits, Outcome, Policy, Runtime, Watcher};
use std::time::{Duration, Instant};

fn call() -> Call {
    Call {
        call_id: "a84b4c76e66710@pc33.example.com".into(),
        request_uri: "sips:200@example.com;user=phone".into(),
        from_uri: "sips:100@example.com".into(),
        from_display: Some("Alice Example".into()),
        to_uri: "sips:200@example.com".into(),
        domain: "example.com".into(),
        caller: Caller::Extension("100".into()),
        source_transport: Transport::Tls,
        source_addr: "192.0.2.10:50611".into(),
        client_cert_subject: None,
        caller_srtp: true,
        headers: (0..8)
            .map(|i| format!("X-Header-{i}: value number {i}"))
            .collect::<Vec<_>>()
            .join("\r\n"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The component with a custom section appended: same code, new hash, so
/// the runtime's compiled-component cache cannot answer.
fn variant(wasm: &[u8], n: u32) -> Vec<u8> {
    let name = b"bench";
    let payload = n.to_le_bytes();
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    out.push((1 + name.len() + payload.len()) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dial_plan = BUNDLE.iter().find(|p| p.hook == Hook::Routing).unwrap().wasm;

        // Compile time: a fresh runtime each time, so nothing is cached.
        // (`PBX_BENCH_ROUTE_ONLY=1` skips to the decision loop, for profiling.)
        let route_only = std::env::var_os("PBX_BENCH_ROUTE_ONLY").is_some();
        let mut compiles = Vec::new();
        for i in 0..if route_only { 1 } else { 10 } {
            let runtime = Runtime::new(Limits::default()).unwrap();
            let bytes = variant(dial_plan, i);
            let t = Instant::now();
            runtime.compile("routing", &bytes, "{}").unwrap();
            compiles.push(t.elapsed());
        }
        compiles.sort();
        println!(
            "plugins compile_dial_plan_{}KiB {:.1} ms (median of 10)",
            dial_plan.len() / 1024,
            percentile(&compiles, 0.5).as_secs_f64() * 1e3
        );

        // Decision latency on a warm runtime.
        let runtime = Runtime::new(Limits {
            warm_instances: 1000,
            ..Limits::default()
        })
        .unwrap();
        let policy = Policy::new(runtime, |h| h.name().to_string());
        policy
            .install("routing", dial_plan.to_vec(), "{}".into())
            .await
            .unwrap();
        let c = call();
        for _ in 0..20_000 {
            std::hint::black_box(policy.route(&c).await);
        }
        let n = if route_only { 2_000_000 } else { 200_000 };
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            std::hint::black_box(policy.route(&c).await);
            lat.push(t.elapsed());
        }
        lat.sort();
        println!("plugins route_p50 {:.2} us", percentile(&lat, 0.50).as_secs_f64() * 1e6);
        println!("plugins route_p99 {:.2} us", percentile(&lat, 0.99).as_secs_f64() * 1e6);
        println!(
            "plugins route_p999 {:.2} us",
            percentile(&lat, 0.999).as_secs_f64() * 1e6
        );
        let t = Instant::now();
        for _ in 0..100_000 {
            std::hint::black_box(policy.is_trunk_exempt("pstn").await);
        }
        println!(
            "plugins trivial_call_mean {:.2} us",
            t.elapsed().as_secs_f64() * 1e6 / 100_000.0
        );

        // Memory per live instance.
        let plugin = policy.current(Hook::Routing).unwrap();
        let before = rss_kib();
        plugin.prewarm(500).await.unwrap();
        let live = plugin.warm_instances();
        for _ in 0..live {
            // Touch each instance once, as a call would.
            std::hint::black_box(policy.route(&c).await);
        }
        println!(
            "plugins memory_per_instance {:.1} KiB ({live} live instances)",
            (rss_kib().saturating_sub(before)) as f64 / live as f64
        );

        // File write -> swapped in, through the folder watcher.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("routing.wasm");
        let mut events = policy.subscribe();
        std::fs::write(&file, dial_plan).unwrap();
        let _watcher = Watcher::spawn(policy.clone(), dir.path().to_path_buf()).unwrap();
        let mut swaps = Vec::new();
        for i in 0..20 {
            let bytes = variant(dial_plan, 1000 + i);
            let want = pbx::plugins::sha256_hex(&bytes);
            let tmp = dir.path().join("routing.tmp");
            let t = Instant::now();
            std::fs::write(&tmp, &bytes).unwrap();
            std::fs::rename(&tmp, &file).unwrap();
            loop {
                let ev = events.recv().await.unwrap();
                if matches!(&ev.outcome, Outcome::Loaded { sha256, .. } if *sha256 == want) {
                    break;
                }
            }
            swaps.push(t.elapsed());
        }
        swaps.sort();
        println!(
            "plugins write_to_swap_p50 {:.1} ms (p90 {:.1} ms; includes the {} ms debounce)",
            percentile(&swaps, 0.5).as_secs_f64() * 1e3,
            percentile(&swaps, 0.9).as_secs_f64() * 1e3,
            pbx::plugins::DEBOUNCE.as_millis()
        );
    });
}
