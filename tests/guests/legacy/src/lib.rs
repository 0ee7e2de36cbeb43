//! A routing plugin built with wit-bindgen directly against
//! `pbx:policy@0.1.0` (`wit/deps/policy-0.1.0/`, world `router`), as a
//! plugin compiled before `0.2.0` was. The host must keep loading it and
//! converting its calls. It sends a call to the dialled extension, except
//! that dialling `legacy` is refused with a reason naming what the plugin
//! saw, so a test can tell its answer reached the caller.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    path: "../../../wit/deps/policy-0.1.0",
    world: "router",
});

use exports::pbx::policy::meta::{Guest as Meta, Hook, PluginInfo};
use exports::pbx::policy::routing::{Decision, Guest as Routing};
use pbx::policy::types::{Call, Reject, Target, Transport};

#[allow(dead_code)]
struct Legacy;

impl Meta for Legacy {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "legacy".into(),
            version: "0.1.0".into(),
            hooks: vec![Hook::Routing],
        }
    }
}

impl Routing for Legacy {
    fn route(call: Call) -> Decision {
        let user = call
            .request_uri
            .split_once(':')
            .and_then(|(_, rest)| rest.split_once('@'))
            .map(|(user, _)| user.to_string());
        match user.as_deref() {
            Some("legacy") => {
                let transport = match call.source_transport {
                    Transport::Udp => "udp",
                    Transport::Tcp => "tcp",
                    Transport::Tls => "tls",
                    Transport::Ws => "ws",
                    Transport::Wss => "wss",
                };
                Decision::Reject(Reject {
                    code: 403,
                    reason: format!("legacy plugin saw {} over {transport}", call.request_uri),
                })
            }
            Some(user) if !user.is_empty() => Decision::Target(Target::Extension(user.into())),
            _ => Decision::Reject(Reject {
                code: 404,
                reason: "Nothing dialled".into(),
            }),
        }
    }
}

#[cfg(target_family = "wasm")]
export!(Legacy);
