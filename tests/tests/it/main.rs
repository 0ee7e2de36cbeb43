//! End-to-end tests. One binary, one module per theme.

mod calls;
mod plugin_defaults;
mod plugin_limits;
mod plugin_reload;
mod sip_register;
mod support;
mod tls_client_cert;
mod tls_sni;
