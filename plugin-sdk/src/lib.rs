#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

extern crate self as pbx_plugin_sdk;

mod call;
mod context;
#[doc(hidden)]
pub mod export;

/// The bindings generated from `wit/policy.wit` (world `plugin`). Plugin
/// authors normally use the re-exports at the crate root instead.
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings {
    // The file, not the folder: the folder's `deps/` holds older versions of
    // this package, whose presence would suffix every module with its version.
    wit_bindgen::generate!({
        path: "../wit/policy.wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "pbx_plugin_sdk::bindings",
        runtime_path: "pbx_plugin_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq, Eq],
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

pub use bindings::exports::pbx::policy::certificates::Hello;
pub use bindings::exports::pbx::policy::meta::Hook;
pub use bindings::exports::pbx::policy::provisioning::{Decision as PasswordDecision, Request as ProvisioningRequest};
pub use bindings::exports::pbx::policy::routing::Decision as Route;
pub use bindings::exports::pbx::policy::security::{Leg, Verdict};
pub use bindings::pbx::policy::host::Level;
pub use bindings::pbx::policy::types::{Call, Caller, Reject, Target, Transport, TrunkCall};
pub use call::{uri_host, uri_is_sips, uri_user};
pub use context::{config_json, log};

/// A policy plugin: implement the hooks you serve, list them in
/// [`Plugin::HOOKS`], and hand the type to [`export!`].
///
/// The host creates the plugin once per WebAssembly instance with
/// [`Plugin::new`] (passing the plugin's JSON configuration) and then calls
/// the hook methods. Instances are recycled at any time (after a trap, on a
/// reload, after many calls), so keep no state that must outlive one call.
///
/// Every hook has a default body that answers the host's fail-closed
/// default, so a hook you do not serve can never widen access.
pub trait Plugin: Sized + Send + Sync + 'static {
    /// The hooks this plugin serves. The host refuses to let the plugin
    /// serve any other.
    const HOOKS: &'static [Hook];

    /// Build the plugin from its JSON configuration (`{}` when the admin
    /// gave none). An error makes every call trap, so the host refuses to
    /// load a plugin whose configuration is wrong and keeps the previous
    /// version serving.
    fn new(config: &str) -> Result<Self, String>;

    /// Routing: where does `call` go?
    fn route(&self, call: &Call) -> Route {
        let _ = call;
        Route::Reject(Reject::new(503, "Routing policy unavailable"))
    }

    /// End-to-end security: may `call` proceed over `leg`?
    fn check(&self, call: &Call, leg: &Leg) -> Verdict {
        let _ = (call, leg);
        Verdict::Reject(Reject::new(503, "Security policy unavailable"))
    }

    /// Trunk exceptions: is `trunk` exempt from end-to-end security?
    fn is_exempt(&self, trunk: &str) -> bool {
        let _ = trunk;
        false
    }

    /// Certificates: which domain's certificate does this handshake get?
    /// `None` means the default certificate.
    fn select_certificate(&self, hello: &Hello) -> Option<String> {
        let _ = hello;
        None
    }

    /// Provisioning: may this provisioning file carry the SIP password?
    fn provisioning_password(&self, request: &ProvisioningRequest) -> PasswordDecision {
        PasswordDecision {
            include_password: false,
            provisioned: request.provisioned,
        }
    }
}

impl Reject {
    /// A refusal with SIP status `code` (400–699) and a reason phrase.
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Reject {
            code,
            reason: reason.into(),
        }
    }
}
