//! Default provisioning-password plugin: the three policies of the product
//! brief, per domain.
//!
//! * `never`: provisioning files never carry the SIP password; it is entered
//!   on the phone (or its own web UI over HTTPS).
//! * `once`: the password goes out once; later requests skip it until an
//!   admin resets the extension's "provisioned" flag.
//! * `always`: the password is always included (convenient, least secure).
//!
//! Configuration: `{ "policy": "once", "domains": { "example.com": "never" } }`

use pbx_plugin_sdk::{Hook, PasswordDecision, Plugin, ProvisioningRequest, export};
use serde::Deserialize;
use std::collections::HashMap;

/// A password policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Never send the password.
    Never,
    /// Send it once, until an admin resets the flag.
    Once,
    /// Always send it.
    Always,
}

/// The policy per domain.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    policy: Policy,
    domains: HashMap<String, Policy>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            policy: Policy::Once,
            domains: HashMap::new(),
        }
    }
}

impl Plugin for PasswordPolicy {
    const HOOKS: &'static [Hook] = &[Hook::Provisioning];

    fn new(config: &str) -> Result<Self, String> {
        let mut cfg: PasswordPolicy = pbx_plugin_sdk::config_json(config)?;
        cfg.domains = cfg
            .domains
            .into_iter()
            .map(|(d, p)| (d.to_ascii_lowercase(), p))
            .collect();
        Ok(cfg)
    }

    fn provisioning_password(&self, req: &ProvisioningRequest) -> PasswordDecision {
        let policy = *self
            .domains
            .get(&req.domain.to_ascii_lowercase())
            .unwrap_or(&self.policy);
        let (include_password, provisioned) = match policy {
            Policy::Never => (false, req.provisioned),
            Policy::Once => (!req.provisioned, true),
            Policy::Always => (true, true),
        };
        PasswordDecision {
            include_password,
            provisioned,
        }
    }
}

export!(PasswordPolicy);

#[cfg(test)]
mod tests {
    use super::*;

    fn req(domain: &str, provisioned: bool) -> ProvisioningRequest {
        ProvisioningRequest {
            domain: domain.into(),
            extension: "100".into(),
            mac: Some("000413aabbcc".into()),
            user_agent: None,
            provisioned,
        }
    }

    #[test]
    fn three_policies() {
        let p = PasswordPolicy::new(
            r#"{"policy": "never", "domains": {"once.example": "once", "always.example": "always"}}"#,
        )
        .unwrap();
        let d = |dom, prov| p.provisioning_password(&req(dom, prov));
        assert_eq!(
            d("x.example", false),
            PasswordDecision {
                include_password: false,
                provisioned: false
            }
        );
        assert_eq!(
            d("once.example", false),
            PasswordDecision {
                include_password: true,
                provisioned: true
            }
        );
        assert_eq!(
            d("once.example", true),
            PasswordDecision {
                include_password: false,
                provisioned: true
            }
        );
        assert_eq!(
            d("always.example", true),
            PasswordDecision {
                include_password: true,
                provisioned: true
            }
        );
        assert!(PasswordPolicy::new(r#"{"policy": "sometimes"}"#).is_err());
    }
}
