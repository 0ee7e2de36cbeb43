//! Broken and hostile plugins: each is refused or stopped within its limit,
//! the previous version or the fail-closed default serves, the PBX lives.

use crate::support::{bundled, call, policy, policy_with};
use pbx::plugins::routing::Decision as Route;
use pbx::plugins::types::{Target, Transport};
use pbx::plugins::{CallError, Hook, Limits, LoadError, certificates};
use pbx_tests::guest_wasm;
use std::time::{Duration, Instant};

fn ext(e: &str) -> Route {
    Route::Target(Target::Extension(e.into()))
}

fn evil(config: &str) -> (Vec<u8>, String) {
    (guest_wasm("guest-evil"), config.to_string())
}

/// A policy with the bundled dial plan serving routing.
async fn serving_dial_plan() -> std::sync::Arc<pbx::plugins::Policy> {
    let policy = policy();
    policy
        .install("routing", bundled(Hook::Routing), "{}".into())
        .await
        .unwrap();
    assert_eq!(policy.route(&call("sip:200@example.com")).await, ext("200"));
    policy
}

fn self_test_error(e: LoadError) -> CallError {
    match e {
        LoadError::SelfTest { error, .. } => error,
        other => panic!("expected a self-test failure, got {other}"),
    }
}

#[tokio::test]
async fn garbage_truncated_and_alien_files_are_refused_and_the_old_version_serves() {
    let policy = serving_dial_plan().await;
    let good = bundled(Hook::Routing);

    let e = policy
        .install("routing", b"MZ\x90\0 this is not wasm".to_vec(), "{}".into())
        .await
        .unwrap_err();
    assert_eq!(e, LoadError::NotWasm);
    let e = policy.install("routing", Vec::new(), "{}".into()).await.unwrap_err();
    assert_eq!(e, LoadError::NotWasm);
    let e = policy
        .install("routing", good[..good.len() / 2].to_vec(), "{}".into())
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::Compile(_)), "{e}");
    let e = policy
        .install("routing", guest_wasm("guest-alien"), "{}".into())
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::WrongWorld(_)), "{e}");
    // Valid plugin, invalid JSON configuration.
    let e = policy
        .install("routing", good.clone(), "{not json".into())
        .await
        .unwrap_err();
    assert!(matches!(e, LoadError::Config(_)), "{e}");
    // Valid JSON the plugin rejects: its `new` fails, so the self-test traps.
    let e = policy
        .install("routing", good.clone(), r#"{"bogus": 1}"#.into())
        .await
        .unwrap_err();
    assert!(matches!(self_test_error(e), CallError::Trap(_)));
    // A plugin configured for a hook it does not serve.
    let e = policy.install("security", good.clone(), "{}".into()).await.unwrap_err();
    assert_eq!(e, LoadError::HookNotServed(Hook::Security));

    assert_eq!(policy.route(&call("sip:200@example.com")).await, ext("200"));
    let routing = &policy.status()[0];
    assert_eq!(routing.failures, 0);
    assert_eq!(routing.plugin.as_ref().unwrap().sha256, crate::support::sha256(&good));
}

#[tokio::test]
async fn plugins_that_always_trap_loop_or_hog_memory_are_refused_at_load() {
    let policy = serving_dial_plan().await;
    let deadline = Limits::default().deadline;

    let (wasm, cfg) = evil(r#"{"always": "trap"}"#);
    let e = policy.install("routing", wasm, cfg).await.unwrap_err();
    assert!(matches!(self_test_error(e), CallError::Trap(_)));

    let (wasm, cfg) = evil(r#"{"always": "loop"}"#);
    let started = Instant::now();
    let e = policy.install("routing", wasm, cfg).await.unwrap_err();
    assert_eq!(self_test_error(e), CallError::Deadline);
    // Stopped by its deadline, not by anything slower (generous bound for a
    // busy 2-core machine; compile time is included).
    assert!(started.elapsed() < deadline * 50, "took {:?}", started.elapsed());

    let (wasm, cfg) = evil(r#"{"always": "hog"}"#);
    let e = policy.install("routing", wasm, cfg).await.unwrap_err();
    assert_eq!(self_test_error(e), CallError::MemoryLimit);

    assert_eq!(policy.route(&call("sip:200@example.com")).await, ext("200"));
}

#[tokio::test]
async fn a_plugin_misbehaving_during_calls_gets_the_fail_closed_default_and_recovers() {
    let policy = policy();
    let (wasm, cfg) = evil("{}");
    policy.install("routing", wasm, cfg).await.unwrap();
    assert_eq!(policy.route(&call("sip:200@example.com")).await, ext("evil"));

    for bad in ["trap", "loop", "hog", "stack", "nonsense"] {
        let answer = policy.route(&call(&format!("sip:{bad}@example.com"))).await;
        assert!(
            matches!(&answer, Route::Reject(r) if r.code == 503),
            "{bad}: expected the fail-closed 503, got {answer:?}"
        );
        // The next call gets a healthy instance.
        assert_eq!(
            policy.route(&call("sip:200@example.com")).await,
            ext("evil"),
            "after {bad}"
        );
    }
    let status = &policy.status()[0];
    assert_eq!(status.failures, 5);
    assert!(
        status.last_error.as_deref().unwrap().contains("malformed"),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_malformed_certificate_name_gives_the_default_certificate() {
    let policy = policy();
    let (wasm, cfg) = evil("{}");
    policy.install("certificates", wasm, cfg).await.unwrap();
    let hello = certificates::Hello {
        server_name: Some("a.example".into()),
        listener: "sip-tls".into(),
        transport: Transport::Tls,
    };
    assert_eq!(policy.select_certificate(&hello).await, None);
    assert_eq!(policy.status()[3].failures, 1);
}

#[tokio::test]
async fn hooks_without_a_plugin_answer_their_fail_closed_defaults() {
    let policy = policy();
    assert!(matches!(policy.route(&call("sip:200@example.com")).await, Route::Reject(r) if r.code == 503));
    assert!(!policy.is_trunk_exempt("pstn").await);
    let req = pbx::plugins::provisioning::Request {
        domain: "example.com".into(),
        extension: "100".into(),
        mac: None,
        user_agent: None,
        provisioned: true,
    };
    let d = policy.provisioning_password(&req).await;
    assert!(!d.include_password && d.provisioned);
}

#[tokio::test]
async fn fuel_bounds_cpu_deterministically() {
    let policy = policy_with(Limits {
        fuel: Some(50_000_000),
        deadline: Duration::from_secs(10),
        ..Limits::default()
    });
    let (wasm, cfg) = evil("{}");
    policy.install("routing", wasm, cfg).await.unwrap();
    assert_eq!(policy.route(&call("sip:200@example.com")).await, ext("evil"));
    let answer = policy.route(&call("sip:loop@example.com")).await;
    assert!(matches!(answer, Route::Reject(r) if r.code == 503));
    assert!(policy.status()[0].last_error.as_deref().unwrap().contains("fuel"));
}
