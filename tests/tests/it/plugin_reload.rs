//! Hot reload through the plugins folder, under load.

use crate::support::{await_event, bundled, call, policy, sha256, write_in_place, write_renamed};
use pbx::plugins::routing::Decision as Route;
use pbx::plugins::types::Target;
use pbx::plugins::{Hook, Outcome, Watcher};
use pbx_tests::{guest_wasm, tempdir};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_swapped_50_times_under_load_without_a_failed_decision() {
    let dir = tempdir();
    let policy = policy();
    let file = dir.path().join("routing.wasm");
    let dial_plan = bundled(Hook::Routing);
    let evil = guest_wasm("guest-evil");
    let mut events = policy.subscribe();

    write_renamed(&file, &dial_plan);
    policy.load_dir(dir.path()).await;
    let _watcher = Watcher::spawn(policy.clone(), dir.path().to_path_buf()).unwrap();

    // Callers decide continuously from several tasks.
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let mut callers = Vec::new();
    for _ in 0..4 {
        let (policy, stop, counts) = (policy.clone(), stop.clone(), counts.clone());
        callers.push(tokio::spawn(async move {
            let c = call("sip:200@example.com");
            while !stop.load(Ordering::Relaxed) {
                let i = match policy.route(&c).await {
                    Route::Target(Target::Extension(e)) if e == "200" => 0,
                    Route::Target(Target::Extension(e)) if e == "evil" => 1,
                    _ => 2,
                };
                counts[i].fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }));
    }

    let swaps = 60;
    for i in 0..swaps {
        let (bytes, expect) = if i % 2 == 0 {
            (&evil, "evil")
        } else {
            (&dial_plan, "200")
        };
        if i % 4 < 2 {
            write_renamed(&file, bytes);
        } else {
            write_in_place(&file, bytes);
        }
        let want = sha256(bytes);
        await_event(
            &mut events,
            "routing",
            |o| matches!(o, Outcome::Loaded { sha256, .. } if *sha256 == want),
        )
        .await;
        // The very next decision comes from the new version.
        assert_eq!(
            policy.route(&call("sip:200@example.com")).await,
            Route::Target(Target::Extension(expect.into())),
            "swap {i}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.await.unwrap();
    }
    let [old, new, failed] = [0, 1, 2].map(|i| counts[i].load(Ordering::Relaxed));
    assert_eq!(failed, 0, "failed decisions during {swaps} swaps");
    assert!(old > 0 && new > 0, "answers from both versions: {old} / {new}");
    assert_eq!(policy.status()[0].failures, 0);
}

#[tokio::test]
async fn a_garbage_file_dropped_in_is_refused_and_a_removed_file_unloads() {
    let dir = tempdir();
    let policy = policy();
    let file = dir.path().join("routing.wasm");
    let mut events = policy.subscribe();
    write_renamed(&file, &bundled(Hook::Routing));
    std::fs::write(dir.path().join("routing.json"), r#"{"e164_trunk": "sbc"}"#).unwrap();
    policy.load_dir(dir.path()).await;
    let _watcher = Watcher::spawn(policy.clone(), dir.path().to_path_buf()).unwrap();

    write_renamed(&file, b"\0asm garbage that is not a component");
    await_event(&mut events, "routing", |o| matches!(o, Outcome::Refused(_))).await;
    assert_eq!(
        policy.route(&call("sip:200@example.com")).await,
        Route::Target(Target::Extension("200".into()))
    );

    // A configuration change alone reloads the plugin.
    write_renamed(&file, &bundled(Hook::Routing));
    std::fs::write(
        dir.path().join("routing.json"),
        r#"{"extension_digits": {"min": 4, "max": 4}}"#,
    )
    .unwrap();
    await_event(&mut events, "routing", |o| matches!(o, Outcome::Loaded { .. })).await;
    // Poll the answer: the JSON write may land after the .wasm reload.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while policy.route(&call("sip:200@example.com")).await == Route::Target(Target::Extension("200".into())) {
        assert!(std::time::Instant::now() < deadline, "configuration change not applied");
        await_event(&mut events, "routing", |o| matches!(o, Outcome::Loaded { .. })).await;
    }
    assert!(matches!(policy.route(&call("sip:200@example.com")).await, Route::Reject(r) if r.code == 404));

    std::fs::remove_file(&file).unwrap();
    await_event(&mut events, "routing", |o| *o == Outcome::Unloaded).await;
    assert!(matches!(policy.route(&call("sip:200@example.com")).await, Route::Reject(r) if r.code == 503));
}
