//! Glue behind [`export!`](crate::export): one `OnceLock` holds the plugin
//! built from its configuration; the WIT exports forward to it.

use crate::{Hook, Plugin};

/// The plugin instance of this WebAssembly instance, built on first use.
/// A configuration error is logged and turned into a trap (a panic), which
/// the host reports and answers with its fail-closed default.
pub fn instance<P: Plugin>(cell: &'static std::sync::OnceLock<P>) -> &'static P {
    cell.get_or_init(|| {
        #[cfg(target_family = "wasm")]
        let config = crate::context::host_config();
        #[cfg(not(target_family = "wasm"))]
        let config = String::from("{}");
        match P::new(&config) {
            Ok(p) => p,
            Err(e) => {
                crate::log(crate::Level::Error, &e);
                panic!("plugin configuration rejected");
            }
        }
    })
}

/// The hooks list as the WIT `meta.info` wants it.
pub fn hooks<P: Plugin>() -> Vec<Hook> {
    P::HOOKS.to_vec()
}

/// Implements the WIT exports of world `plugin` for `$plugin`.
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        const _: () = {
            use $crate::bindings::exports::pbx::policy as __wit;
            static __PLUGIN: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();
            fn __get() -> &'static $plugin {
                $crate::export::instance::<$plugin>(&__PLUGIN)
            }
            #[allow(dead_code)]
            struct __Export;
            impl __wit::meta::Guest for __Export {
                fn info() -> __wit::meta::PluginInfo {
                    __wit::meta::PluginInfo {
                        name: ::std::string::String::from(env!("CARGO_PKG_NAME")),
                        version: ::std::string::String::from(env!("CARGO_PKG_VERSION")),
                        hooks: $crate::export::hooks::<$plugin>(),
                    }
                }
            }
            impl __wit::routing::Guest for __Export {
                fn route(call: $crate::Call) -> $crate::Route {
                    <$plugin as $crate::Plugin>::route(__get(), &call)
                }
            }
            impl __wit::security::Guest for __Export {
                fn check(call: $crate::Call, leg: $crate::Leg) -> $crate::Verdict {
                    <$plugin as $crate::Plugin>::check(__get(), &call, &leg)
                }
            }
            impl __wit::trunk_exceptions::Guest for __Export {
                fn is_exempt(trunk: ::std::string::String) -> bool {
                    <$plugin as $crate::Plugin>::is_exempt(__get(), &trunk)
                }
            }
            impl __wit::certificates::Guest for __Export {
                fn select(hello: $crate::Hello) -> ::std::option::Option<::std::string::String> {
                    <$plugin as $crate::Plugin>::select_certificate(__get(), &hello)
                }
            }
            impl __wit::provisioning::Guest for __Export {
                fn password(request: $crate::ProvisioningRequest) -> $crate::PasswordDecision {
                    <$plugin as $crate::Plugin>::provisioning_password(__get(), &request)
                }
            }
            // Native builds (a plugin's own `cargo test`) export nothing:
            // component export names are not valid native symbol names.
            #[cfg(target_family = "wasm")]
    $crate::bindings::__export_plugin_world!(__Export with_types_in $crate::bindings);
        };
    };
}
