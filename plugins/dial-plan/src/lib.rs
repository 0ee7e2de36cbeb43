//! Default routing plugin: a dial plan.
//!
//! In order: a call from a trunk is mapped by its dialled number (DID) to an
//! extension; a dialled user that looks like an extension goes to that
//! extension of the call's domain; a trunk prefix sends the rest of the
//! number to that trunk; an E.164 number (`+…`) goes to the E.164 trunk;
//! anything else is refused with `404`.
//!
//! Configuration (all optional):
//! ```json
//! {
//!   "extension_digits": { "min": 2, "max": 6 },
//!   "named_extensions": true,
//!   "trunk_prefixes": [ { "prefix": "9", "trunk": "pstn" } ],
//!   "e164_trunk": "pstn",
//!   "inbound": { "pstn": { "default": "100", "dids": { "+4930123456": "200" } } }
//! }
//! ```

use pbx_plugin_sdk::{Call, Caller, Hook, Plugin, Reject, Route, Target, TrunkCall, export};
use serde::Deserialize;
use std::collections::HashMap;

/// The dial plan.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialPlan {
    extension_digits: Digits,
    named_extensions: bool,
    trunk_prefixes: Vec<TrunkPrefix>,
    e164_trunk: Option<String>,
    inbound: HashMap<String, Inbound>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Digits {
    min: usize,
    max: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrunkPrefix {
    prefix: String,
    trunk: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Inbound {
    default: Option<String>,
    dids: HashMap<String, String>,
}

impl Default for DialPlan {
    fn default() -> Self {
        DialPlan {
            extension_digits: Digits { min: 2, max: 6 },
            named_extensions: true,
            trunk_prefixes: Vec::new(),
            e164_trunk: None,
            inbound: HashMap::new(),
        }
    }
}

impl Plugin for DialPlan {
    const HOOKS: &'static [Hook] = &[Hook::Routing];

    fn new(config: &str) -> Result<Self, String> {
        let plan: DialPlan = pbx_plugin_sdk::config_json(config)?;
        if plan.extension_digits.min == 0 || plan.extension_digits.min > plan.extension_digits.max {
            return Err("extension_digits: need 1 <= min <= max".into());
        }
        if plan.trunk_prefixes.iter().any(|p| p.prefix.is_empty()) {
            return Err("trunk_prefixes: a prefix must not be empty".into());
        }
        Ok(plan)
    }

    fn route(&self, call: &Call) -> Route {
        let Some(dialled) = call.dialled() else {
            return reject(404, "No number dialled");
        };
        if let Caller::Trunk(trunk) = &call.caller
            && let Some(inbound) = self.inbound.get(trunk)
            && let Some(ext) = inbound.dids.get(dialled).or(inbound.default.as_ref())
        {
            return Route::Target(Target::Extension(ext.clone()));
        }
        if self.is_extension(dialled) {
            return Route::Target(Target::Extension(dialled.to_string()));
        }
        for p in &self.trunk_prefixes {
            if let Some(number) = dialled.strip_prefix(p.prefix.as_str())
                && !number.is_empty()
            {
                return trunk(&p.trunk, number);
            }
        }
        if let (Some(trunk_name), Some(digits)) = (&self.e164_trunk, dialled.strip_prefix('+'))
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            return trunk(trunk_name, dialled);
        }
        reject(404, "No route for the dialled number")
    }
}

impl DialPlan {
    fn is_extension(&self, user: &str) -> bool {
        if user.bytes().all(|b| b.is_ascii_digit()) {
            (self.extension_digits.min..=self.extension_digits.max).contains(&user.len())
        } else {
            self.named_extensions
                && user.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && user.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        }
    }
}

fn trunk(name: &str, number: &str) -> Route {
    Route::Target(Target::Trunk(TrunkCall {
        trunk: name.to_string(),
        number: number.to_string(),
    }))
}

fn reject(code: u16, reason: &str) -> Route {
    Route::Reject(Reject::new(code, reason))
}

export!(DialPlan);

#[cfg(test)]
mod tests {
    use super::*;
    use pbx_plugin_sdk::Transport;

    pub(crate) fn call(ruri: &str, caller: Caller) -> Call {
        Call {
            call_id: "c1".into(),
            request_uri: ruri.into(),
            from_uri: "sip:100@example.com".into(),
            from_display: None,
            to_uri: ruri.into(),
            domain: "example.com".into(),
            caller,
            source_transport: Transport::Tls,
            source_addr: "127.0.0.1:5555".into(),
            client_cert_subject: None,
            caller_srtp: true,
            headers: String::new(),
        }
    }

    fn ext(e: &str) -> Route {
        Route::Target(Target::Extension(e.into()))
    }

    const CONFIG: &str = r#"{
        "trunk_prefixes": [{"prefix": "9", "trunk": "pstn"}],
        "e164_trunk": "sbc",
        "inbound": {"pstn": {"default": "100", "dids": {"+4930123": "200"}}}
    }"#;

    #[test]
    fn routes_extensions_prefixes_and_e164() {
        let plan = DialPlan::new(CONFIG).unwrap();
        let me = || Caller::Extension("100".into());
        assert_eq!(plan.route(&call("sips:200@example.com", me())), ext("200"));
        assert_eq!(plan.route(&call("sip:alice@example.com", me())), ext("alice"));
        assert_eq!(
            plan.route(&call("sip:90301234567@example.com", me())),
            trunk("pstn", "0301234567")
        );
        assert_eq!(
            plan.route(&call("sip:+4930999@example.com", me())),
            trunk("sbc", "+4930999")
        );
        assert!(matches!(plan.route(&call("sip:1@example.com", me())), Route::Reject(r) if r.code == 404));
        assert!(matches!(plan.route(&call("sip:example.com", me())), Route::Reject(r) if r.code == 404));
    }

    #[test]
    fn inbound_calls_map_dids() {
        let plan = DialPlan::new(CONFIG).unwrap();
        let pstn = || Caller::Trunk("pstn".into());
        assert_eq!(plan.route(&call("sip:+4930123@pbx", pstn())), ext("200"));
        assert_eq!(plan.route(&call("sip:+4930777@pbx", pstn())), ext("100"));
    }

    #[test]
    fn bad_config_is_refused() {
        assert!(DialPlan::new(r#"{"extension_digits": {"min": 5, "max": 2}}"#).is_err());
        assert!(DialPlan::new(r#"{"no_such_key": 1}"#).is_err());
        assert!(DialPlan::new("not json").is_err());
        assert!(DialPlan::new("{}").is_ok());
    }
}
