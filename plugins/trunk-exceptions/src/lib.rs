//! Default trunk-exception plugin: trunks named in `exempt` are exempt from
//! end-to-end security (few PSTN gateways do TLS and SRTP).
//!
//! Configuration: `{ "exempt": ["pstn"] }` (default: none).

use pbx_plugin_sdk::{Hook, Plugin, export};
use serde::Deserialize;

/// The list of exempt trunks.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrunkExceptions {
    exempt: Vec<String>,
}

impl Plugin for TrunkExceptions {
    const HOOKS: &'static [Hook] = &[Hook::TrunkExceptions];

    fn new(config: &str) -> Result<Self, String> {
        pbx_plugin_sdk::config_json(config)
    }

    fn is_exempt(&self, trunk: &str) -> bool {
        self.exempt.iter().any(|t| t == trunk)
    }
}

export!(TrunkExceptions);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_trunks_only() {
        let p = TrunkExceptions::new(r#"{"exempt": ["pstn"]}"#).unwrap();
        assert!(p.is_exempt("pstn"));
        assert!(!p.is_exempt("sbc"));
        assert!(!TrunkExceptions::new("{}").unwrap().is_exempt("pstn"));
    }
}
