//! Default certificate plugin: one certificate per domain, chosen by SNI.
//!
//! The SNI name selects the certificate of the domain of that name (the host
//! presents the default certificate when it holds none for it). `aliases`
//! maps other names to a domain; `default_domain` names the domain whose
//! certificate a handshake without SNI gets (else the host's default).
//!
//! Configuration: `{ "aliases": { "sip.a.example": "a.example" }, "default_domain": null }`

use pbx_plugin_sdk::{Hello, Hook, Plugin, export};
use serde::Deserialize;
use std::collections::HashMap;

/// The certificate selector.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CertPerDomain {
    aliases: HashMap<String, String>,
    default_domain: Option<String>,
}

impl Plugin for CertPerDomain {
    const HOOKS: &'static [Hook] = &[Hook::Certificates];

    fn new(config: &str) -> Result<Self, String> {
        let mut cfg: CertPerDomain = pbx_plugin_sdk::config_json(config)?;
        cfg.aliases = cfg
            .aliases
            .into_iter()
            .map(|(a, d)| (a.to_ascii_lowercase(), d.to_ascii_lowercase()))
            .collect();
        Ok(cfg)
    }

    fn select_certificate(&self, hello: &Hello) -> Option<String> {
        match &hello.server_name {
            Some(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                Some(self.aliases.get(&name).cloned().unwrap_or(name))
            }
            None => self.default_domain.clone(),
        }
    }
}

export!(CertPerDomain);

#[cfg(test)]
mod tests {
    use super::*;
    use pbx_plugin_sdk::Transport;

    fn hello(sni: Option<&str>) -> Hello {
        Hello {
            server_name: sni.map(Into::into),
            listener: "sip-tls".into(),
            transport: Transport::Tls,
        }
    }

    #[test]
    fn sni_picks_the_domain() {
        let p = CertPerDomain::new(r#"{"aliases": {"SIP.A.example": "a.example"}}"#).unwrap();
        assert_eq!(
            p.select_certificate(&hello(Some("b.example"))).as_deref(),
            Some("b.example")
        );
        assert_eq!(
            p.select_certificate(&hello(Some("sip.a.example."))).as_deref(),
            Some("a.example")
        );
        assert_eq!(p.select_certificate(&hello(None)), None);
    }
}
