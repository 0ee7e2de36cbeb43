//! A hostile plugin for the runtime's tests. Its configuration chooses when
//! it misbehaves: `"always"` makes every call (including the host's
//! self-test at load) misbehave in the given way; otherwise it answers
//! normally (`extension(<answer>)`, default `"evil"`), except for calls
//! whose dialled number names a misbehaviour (`trap`, `loop`, `hog`,
//! `nonsense`, `stack`). Dialling `whoami` is refused with a reason naming
//! the caller's TLS client certificate subject (`client certificate:
//! CN=...` or `client certificate: none`), so tests can see what the
//! plugin was given.

use pbx_plugin_sdk::{Call, Hook, Plugin, Reject, Route, Target, export};
use serde::Deserialize;

/// The misbehaving plugin.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Evil {
    always: Option<String>,
    answer: Option<String>,
}

fn misbehave(how: &str) -> Option<Route> {
    match how {
        "trap" => panic!("deliberate trap"),
        "loop" => {
            let mut x: u64 = 1;
            loop {
                x = std::hint::black_box(x.wrapping_mul(3));
            }
        }
        "hog" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "stack" => Some(Route::Reject(Reject::new(recurse(1) as u16, "unreachable"))),
        "nonsense" => Some(Route::Reject(Reject::new(42, "not a SIP status"))),
        _ => None,
    }
}

#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 64]);
    recurse(pad[3] + 1) + pad[5]
}

impl Plugin for Evil {
    const HOOKS: &'static [Hook] = &[Hook::Routing, Hook::Certificates];

    fn new(config: &str) -> Result<Self, String> {
        pbx_plugin_sdk::config_json(config)
    }

    fn route(&self, call: &Call) -> Route {
        if let Some(r) = self.always.as_deref().and_then(misbehave) {
            return r;
        }
        if let Some(r) = call.dialled().and_then(misbehave) {
            return r;
        }
        if call.dialled() == Some("whoami") {
            let subject = call.client_cert_subject().unwrap_or("none");
            return Route::Reject(Reject::new(403, format!("client certificate: {subject}")));
        }
        let answer = self.answer.clone().unwrap_or_else(|| "evil".into());
        Route::Target(Target::Extension(answer))
    }

    fn select_certificate(&self, _hello: &pbx_plugin_sdk::Hello) -> Option<String> {
        // Not a domain name: the host must fall back to the default.
        Some("../../etc/passwd".into())
    }
}

export!(Evil);
