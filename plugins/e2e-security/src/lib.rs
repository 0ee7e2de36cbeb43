//! Default end-to-end security plugin.
//!
//! A `sips:` Request-URI asks for security end to end: the call is set up
//! only if the caller's leg and the other leg both use TLS and SRTP, except
//! toward a trunk the trunk-exception hook marked exempt. The rule is off
//! unless enabled, per domain.
//!
//! Configuration:
//! ```json
//! { "enabled": false, "domains": { "example.com": true } }
//! ```
//! `enabled` is the default for domains not listed.

use pbx_plugin_sdk::{Call, Hook, Leg, Plugin, Reject, Target, Transport, Verdict, export};
use serde::Deserialize;
use std::collections::HashMap;

/// The end-to-end security rule.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndToEnd {
    enabled: bool,
    domains: HashMap<String, bool>,
}

impl Plugin for EndToEnd {
    const HOOKS: &'static [Hook] = &[Hook::Security];

    fn new(config: &str) -> Result<Self, String> {
        let mut cfg: EndToEnd = pbx_plugin_sdk::config_json(config)?;
        cfg.domains = cfg
            .domains
            .into_iter()
            .map(|(d, on)| (d.to_ascii_lowercase(), on))
            .collect();
        Ok(cfg)
    }

    fn check(&self, call: &Call, leg: &Leg) -> Verdict {
        let enabled = *self
            .domains
            .get(&call.domain.to_ascii_lowercase())
            .unwrap_or(&self.enabled);
        if !enabled || !call.is_sips() {
            return Verdict::Allow;
        }
        if call.source_transport != Transport::Tls || !call.caller_srtp {
            return refuse("sips: end-to-end security: the calling leg is not TLS with SRTP");
        }
        if leg.transport == Transport::Tls && leg.srtp {
            return Verdict::Allow;
        }
        if matches!(leg.target, Target::Trunk(_)) && leg.exempt_trunk {
            return Verdict::Allow;
        }
        refuse("sips: end-to-end security: the called party is not reachable over TLS with SRTP")
    }
}

fn refuse(reason: &str) -> Verdict {
    Verdict::Reject(Reject::new(488, reason))
}

export!(EndToEnd);

#[cfg(test)]
mod tests {
    use super::*;
    use pbx_plugin_sdk::{Caller, TrunkCall};

    fn call(ruri: &str) -> Call {
        Call {
            call_id: "c".into(),
            request_uri: ruri.into(),
            from_uri: "sips:100@example.com".into(),
            from_display: None,
            to_uri: ruri.into(),
            domain: "Example.com".into(),
            caller: Caller::Extension("100".into()),
            source_transport: Transport::Tls,
            source_addr: "[::1]:5061".into(),
            client_cert_subject: None,
            caller_srtp: true,
            headers: String::new(),
        }
    }

    fn leg(target: Target, transport: Transport, srtp: bool, exempt: bool) -> Leg {
        Leg {
            target,
            transport,
            srtp,
            exempt_trunk: exempt,
        }
    }

    fn pstn() -> Target {
        Target::Trunk(TrunkCall {
            trunk: "pstn".into(),
            number: "123".into(),
        })
    }

    #[test]
    fn sips_needs_a_secure_other_leg_unless_exempt_trunk() {
        let p = EndToEnd::new(r#"{"domains": {"example.com": true}}"#).unwrap();
        let ext = || Target::Extension("200".into());
        let sips = call("sips:200@example.com");
        assert_eq!(p.check(&sips, &leg(ext(), Transport::Tls, true, false)), Verdict::Allow);
        assert!(
            matches!(p.check(&sips, &leg(ext(), Transport::Udp, false, false)), Verdict::Reject(r) if r.code == 488)
        );
        assert!(matches!(
            p.check(&sips, &leg(ext(), Transport::Tls, false, false)),
            Verdict::Reject(_)
        ));
        assert!(matches!(
            p.check(&sips, &leg(pstn(), Transport::Udp, false, false)),
            Verdict::Reject(_)
        ));
        assert_eq!(
            p.check(&sips, &leg(pstn(), Transport::Udp, false, true)),
            Verdict::Allow
        );
        // An exemption only applies to trunks.
        assert!(matches!(
            p.check(&sips, &leg(ext(), Transport::Udp, false, true)),
            Verdict::Reject(_)
        ));
        // A plain sip: call is not subject to the rule.
        assert_eq!(
            p.check(&call("sip:200@example.com"), &leg(ext(), Transport::Udp, false, false)),
            Verdict::Allow
        );
    }

    #[test]
    fn caller_leg_must_be_secure_too() {
        let p = EndToEnd::new(r#"{"enabled": true}"#).unwrap();
        let mut c = call("sips:200@example.com");
        c.caller_srtp = false;
        let l = leg(Target::Extension("200".into()), Transport::Tls, true, false);
        assert!(matches!(p.check(&c, &l), Verdict::Reject(_)));
    }

    #[test]
    fn off_unless_enabled() {
        let p = EndToEnd::new("{}").unwrap();
        let l = leg(Target::Extension("200".into()), Transport::Udp, false, false);
        assert_eq!(p.check(&call("sips:200@example.com"), &l), Verdict::Allow);
        let p = EndToEnd::new(r#"{"enabled": true, "domains": {"example.com": false}}"#).unwrap();
        assert_eq!(p.check(&call("sips:200@example.com"), &l), Verdict::Allow);
    }
}
