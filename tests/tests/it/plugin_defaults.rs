//! The default bundle decides the product brief's cases, through the real
//! runtime and the real compiled plugins.

use crate::support::{bundled, call, policy};
use pbx::plugins::provisioning::Request;
use pbx::plugins::routing::Decision as Route;
use pbx::plugins::security::{Leg, Verdict};
use pbx::plugins::types::{Target, Transport, TrunkCall};
use pbx::plugins::{Hook, certificates};

async fn loaded() -> std::sync::Arc<pbx::plugins::Policy> {
    let policy = policy();
    let configs = [
        (
            Hook::Routing,
            r#"{"trunk_prefixes": [{"prefix": "9", "trunk": "pstn"}], "e164_trunk": "sbc"}"#,
        ),
        (
            Hook::Security,
            r#"{"enabled": false, "domains": {"example.com": true}}"#,
        ),
        (Hook::TrunkExceptions, r#"{"exempt": ["pstn"]}"#),
        (Hook::Certificates, r#"{"aliases": {"sip.a.example": "a.example"}}"#),
        (
            Hook::Provisioning,
            r#"{"policy": "once", "domains": {"never.example": "never", "always.example": "always"}}"#,
        ),
    ];
    for (hook, config) in configs {
        policy
            .install(hook.name(), bundled(hook), config.to_string())
            .await
            .unwrap_or_else(|e| panic!("{hook}: {e}"));
    }
    policy
}

/// What the B2BUA does before setting up a second leg: ask the trunk
/// exception hook for trunk targets, then the security hook.
async fn second_leg_allowed(
    policy: &pbx::plugins::Policy,
    ruri: &str,
    target: Target,
    transport: Transport,
    srtp: bool,
) -> Verdict {
    let exempt_trunk = match &target {
        Target::Trunk(t) => policy.is_trunk_exempt(&t.trunk).await,
        _ => false,
    };
    let leg = Leg {
        target,
        transport,
        srtp,
        exempt_trunk,
    };
    policy.check_security(&call(ruri), &leg).await
}

fn trunk(name: &str) -> Target {
    Target::Trunk(TrunkCall {
        trunk: name.into(),
        number: "0301234".into(),
    })
}

#[tokio::test]
async fn sips_to_an_insecure_target_is_rejected_except_to_exempt_trunks() {
    let policy = loaded().await;
    let ext = || Target::Extension("200".into());
    let sips = "sips:200@example.com";

    let v = second_leg_allowed(&policy, sips, ext(), Transport::Udp, false).await;
    assert!(
        matches!(&v, Verdict::Reject(r) if r.code == 488 && r.reason.contains("TLS")),
        "{v:?}"
    );
    assert_eq!(
        second_leg_allowed(&policy, sips, ext(), Transport::Tls, true).await,
        Verdict::Allow
    );
    // The same insecure leg toward a trunk marked as an exception is allowed...
    assert_eq!(
        second_leg_allowed(&policy, sips, trunk("pstn"), Transport::Udp, false).await,
        Verdict::Allow
    );
    // ...but not toward a trunk that is not.
    assert!(matches!(
        second_leg_allowed(&policy, sips, trunk("sbc"), Transport::Udp, false).await,
        Verdict::Reject(_)
    ));
    // A plain sip: call is not subject to the rule.
    assert_eq!(
        second_leg_allowed(&policy, "sip:200@example.com", ext(), Transport::Udp, false).await,
        Verdict::Allow
    );
}

#[tokio::test]
async fn end_to_end_security_is_off_unless_enabled() {
    let policy = loaded().await;
    // other.example is not listed and the default is off.
    let v = second_leg_allowed(
        &policy,
        "sips:200@other.example",
        Target::Extension("200".into()),
        Transport::Udp,
        false,
    )
    .await;
    assert_eq!(v, Verdict::Allow);
}

#[tokio::test]
async fn the_dial_plan_routes() {
    let policy = loaded().await;
    assert_eq!(
        policy.route(&call("sips:200@example.com")).await,
        Route::Target(Target::Extension("200".into()))
    );
    assert_eq!(
        policy.route(&call("sip:90301234@example.com")).await,
        Route::Target(Target::Trunk(TrunkCall {
            trunk: "pstn".into(),
            number: "0301234".into()
        }))
    );
    assert!(matches!(policy.route(&call("sip:1@example.com")).await, Route::Reject(r) if r.code == 404));
}

#[tokio::test]
async fn sni_chooses_the_domain_certificate_else_the_default() {
    let policy = loaded().await;
    let held = ["a.example", "b.example"];
    let has = |d: &str| held.contains(&d);
    let hello = |sni: Option<&str>| certificates::Hello {
        server_name: sni.map(Into::into),
        listener: "sip-tls".into(),
        transport: Transport::Tls,
    };
    assert_eq!(
        policy.certificate_for(&hello(Some("a.example")), has).await.as_deref(),
        Some("a.example")
    );
    assert_eq!(
        policy.certificate_for(&hello(Some("B.Example")), has).await.as_deref(),
        Some("b.example")
    );
    assert_eq!(
        policy
            .certificate_for(&hello(Some("sip.a.example")), has)
            .await
            .as_deref(),
        Some("a.example")
    );
    // An unknown name, or no SNI at all, gets the default certificate.
    assert_eq!(policy.certificate_for(&hello(Some("unknown.example")), has).await, None);
    assert_eq!(policy.certificate_for(&hello(None), has).await, None);
}

#[tokio::test]
async fn provisioning_password_policies_never_once_always() {
    let policy = loaded().await;
    let ask = |domain: &str, provisioned: bool| Request {
        domain: domain.into(),
        extension: "100".into(),
        mac: Some("000413aabbcc".into()),
        user_agent: Some("snom D785".into()),
        provisioned,
    };
    // once: a password, then none, then after the admin resets the flag a password again.
    let mut flag = false;
    let mut sent = Vec::new();
    for reset in [false, false, true, false] {
        if reset {
            flag = false;
        }
        let d = policy.provisioning_password(&ask("example.com", flag)).await;
        sent.push(d.include_password);
        flag = d.provisioned;
    }
    assert_eq!(sent, [true, false, true, false]);
    for provisioned in [false, true] {
        assert!(
            !policy
                .provisioning_password(&ask("never.example", provisioned))
                .await
                .include_password
        );
        assert!(
            policy
                .provisioning_password(&ask("always.example", provisioned))
                .await
                .include_password
        );
    }
    let status = policy.status();
    assert!(status.iter().all(|h| h.failures == 0), "{status:?}");
}

#[tokio::test]
async fn the_bundle_is_built_against_policy_0_2_0_and_a_0_1_0_plugin_still_serves() {
    let policy = loaded().await;
    for hook in Hook::ALL {
        assert_eq!(policy.current(hook).unwrap().contract_version(), "0.2.0", "{hook}");
    }
    let legacy = crate::support::policy();
    legacy
        .install("routing", pbx_tests::guest_wasm("guest-legacy"), "{}".to_string())
        .await
        .expect("a 0.1.0 plugin loads");
    assert_eq!(legacy.current(Hook::Routing).unwrap().contract_version(), "0.1.0");
    // The new field is dropped on the way; the rest of the call arrives.
    let mut c = call("sips:200@example.com");
    c.client_cert_subject = Some("CN=phone-100,O=Example".into());
    assert_eq!(legacy.route(&c).await, Route::Target(Target::Extension("200".into())));
    let refused = legacy.route(&call("sips:legacy@example.com")).await;
    assert_eq!(
        refused,
        Route::Reject(pbx::plugins::types::Reject {
            code: 403,
            reason: "legacy plugin saw sips:legacy@example.com over tls".into(),
        })
    );
    assert_eq!(legacy.status()[0].failures, 0);
}
