//! Plugins built against the previous contract, `pbx:policy@0.1.0`
//! (`wit/deps/policy-0.1.0/`), keep loading: the host binds that world too,
//! finds which version a component exports (`pbx:policy/meta@0.2.0` or
//! `@0.1.0`), and converts each value at the boundary. `0.1.0`'s `call` has
//! no `client-cert-subject`; the host drops it for these plugins.

use super::bindings;
use super::state::State;

#[allow(missing_docs, clippy::all)]
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/deps/policy-0.1.0",
        world: "plugin",
        exports: { default: async },
        additional_derives: [PartialEq, Eq],
    });
}

use v0_1::exports::pbx::policy::{certificates, meta, provisioning, routing, security, trunk_exceptions};
use v0_1::pbx::policy::types;

/// Which `0.1.0` hook interfaces a component exports.
pub(crate) struct Exports {
    pub(crate) meta: meta::GuestIndices,
    pub(crate) routing: Option<routing::GuestIndices>,
    pub(crate) security: Option<security::GuestIndices>,
    pub(crate) trunk_exceptions: Option<trunk_exceptions::GuestIndices>,
    pub(crate) certificates: Option<certificates::GuestIndices>,
    pub(crate) provisioning: Option<provisioning::GuestIndices>,
}

impl Exports {
    /// The `0.1.0` exports of `pre`; `None` when it does not export
    /// `pbx:policy/meta@0.1.0`.
    pub(crate) fn of(pre: &wasmtime::component::InstancePre<State>) -> Option<Exports> {
        Some(Exports {
            meta: meta::GuestIndices::new(pre).ok()?,
            routing: routing::GuestIndices::new(pre).ok(),
            security: security::GuestIndices::new(pre).ok(),
            trunk_exceptions: trunk_exceptions::GuestIndices::new(pre).ok(),
            certificates: certificates::GuestIndices::new(pre).ok(),
            provisioning: provisioning::GuestIndices::new(pre).ok(),
        })
    }
}

/// The typed `0.1.0` exports of one instance, looked up on first use.
#[derive(Default)]
pub(crate) struct Guests {
    pub(crate) meta: Option<meta::Guest>,
    pub(crate) routing: Option<routing::Guest>,
    pub(crate) security: Option<security::Guest>,
    pub(crate) trunk_exceptions: Option<trunk_exceptions::Guest>,
    pub(crate) certificates: Option<certificates::Guest>,
    pub(crate) provisioning: Option<provisioning::Guest>,
}

// The host functions of `0.1.0` are those of `0.2.0`.
impl types::Host for State {}

impl v0_1::pbx::policy::host::Host for State {
    fn log(&mut self, level: v0_1::pbx::policy::host::Level, message: String) {
        use v0_1::pbx::policy::host::Level as Old;
        let level = match level {
            Old::Trace => bindings::Level::Trace,
            Old::Debug => bindings::Level::Debug,
            Old::Info => bindings::Level::Info,
            Old::Warn => bindings::Level::Warn,
            Old::Error => bindings::Level::Error,
        };
        bindings::pbx::policy::host::Host::log(self, level, message)
    }

    fn config(&mut self) -> String {
        bindings::pbx::policy::host::Host::config(self)
    }
}

/// The `0.1.0` view of a call: everything but `client-cert-subject`.
pub(crate) fn call(c: &bindings::types::Call) -> types::Call {
    types::Call {
        call_id: c.call_id.clone(),
        request_uri: c.request_uri.clone(),
        from_uri: c.from_uri.clone(),
        from_display: c.from_display.clone(),
        to_uri: c.to_uri.clone(),
        domain: c.domain.clone(),
        caller: match &c.caller {
            bindings::types::Caller::Extension(e) => types::Caller::Extension(e.clone()),
            bindings::types::Caller::Trunk(t) => types::Caller::Trunk(t.clone()),
            bindings::types::Caller::Anonymous => types::Caller::Anonymous,
        },
        source_transport: transport(c.source_transport),
        source_addr: c.source_addr.clone(),
        caller_srtp: c.caller_srtp,
        headers: c.headers.clone(),
    }
}

fn transport(t: bindings::types::Transport) -> types::Transport {
    use bindings::types::Transport as T;
    match t {
        T::Udp => types::Transport::Udp,
        T::Tcp => types::Transport::Tcp,
        T::Tls => types::Transport::Tls,
        T::Ws => types::Transport::Ws,
        T::Wss => types::Transport::Wss,
    }
}

fn target_to_old(t: &bindings::types::Target) -> types::Target {
    use bindings::types::Target as T;
    match t {
        T::Extension(e) => types::Target::Extension(e.clone()),
        T::Trunk(t) => types::Target::Trunk(types::TrunkCall {
            trunk: t.trunk.clone(),
            number: t.number.clone(),
        }),
        T::Uri(u) => types::Target::Uri(u.clone()),
    }
}

fn target_from_old(t: types::Target) -> bindings::types::Target {
    use bindings::types::Target as T;
    match t {
        types::Target::Extension(e) => T::Extension(e),
        types::Target::Trunk(t) => T::Trunk(bindings::types::TrunkCall {
            trunk: t.trunk,
            number: t.number,
        }),
        types::Target::Uri(u) => T::Uri(u),
    }
}

fn reject(r: types::Reject) -> bindings::types::Reject {
    bindings::types::Reject {
        code: r.code,
        reason: r.reason,
    }
}

/// A `0.1.0` routing decision as the host acts on it.
pub(crate) fn route(d: routing::Decision) -> bindings::routing::Decision {
    match d {
        routing::Decision::Target(t) => bindings::routing::Decision::Target(target_from_old(t)),
        routing::Decision::Reject(r) => bindings::routing::Decision::Reject(reject(r)),
    }
}

/// The `0.1.0` view of a candidate second leg.
pub(crate) fn leg(l: &bindings::security::Leg) -> security::Leg {
    security::Leg {
        target: target_to_old(&l.target),
        transport: transport(l.transport),
        srtp: l.srtp,
        exempt_trunk: l.exempt_trunk,
    }
}

/// A `0.1.0` security verdict as the host acts on it.
pub(crate) fn verdict(v: security::Verdict) -> bindings::security::Verdict {
    match v {
        security::Verdict::Allow => bindings::security::Verdict::Allow,
        security::Verdict::Reject(r) => bindings::security::Verdict::Reject(reject(r)),
    }
}

/// The `0.1.0` view of a ClientHello.
pub(crate) fn hello(h: &bindings::certificates::Hello) -> certificates::Hello {
    certificates::Hello {
        server_name: h.server_name.clone(),
        listener: h.listener.clone(),
        transport: transport(h.transport),
    }
}

/// The `0.1.0` view of a provisioning request.
pub(crate) fn request(r: &bindings::provisioning::Request) -> provisioning::Request {
    provisioning::Request {
        domain: r.domain.clone(),
        extension: r.extension.clone(),
        mac: r.mac.clone(),
        user_agent: r.user_agent.clone(),
        provisioned: r.provisioned,
    }
}

/// A `0.1.0` provisioning decision as the host acts on it.
pub(crate) fn password(d: provisioning::Decision) -> bindings::provisioning::Decision {
    bindings::provisioning::Decision {
        include_password: d.include_password,
        provisioned: d.provisioned,
    }
}

/// A `0.1.0` plugin's description, in the current types.
pub(crate) fn info(i: meta::PluginInfo) -> bindings::meta::PluginInfo {
    use bindings::meta::Hook as H;
    bindings::meta::PluginInfo {
        name: i.name,
        version: i.version,
        hooks: i
            .hooks
            .into_iter()
            .map(|h| match h {
                meta::Hook::Routing => H::Routing,
                meta::Hook::Security => H::Security,
                meta::Hook::TrunkExceptions => H::TrunkExceptions,
                meta::Hook::Certificates => H::Certificates,
                meta::Hook::Provisioning => H::Provisioning,
            })
            .collect(),
    }
}
