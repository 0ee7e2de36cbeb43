//! The SIP service: transports (UDP, TCP, TLS) around the sans-IO
//! `pbx_sip` core, the registrar, and request dispatch.
//!
//! - `transport`: listeners and connections; the only socket code for SIP.
//!   Stream connections are *flows* (RFC 5626): a request to a phone goes
//!   back over the connection its REGISTER came on, and the connections the
//!   PBX opens to TCP/TLS trunks are flows too.
//! - `core`: parses each message and dispatches requests in a fixed order
//!   (retransmission cache → registrar → OPTIONS → not implemented).
//! - `registrar`: REGISTER with digest authentication, bindings that
//!   survive a restart.
//! - `guard`: brute-force protection per source address.

mod core;
mod guard;
mod registrar;
mod transport;

pub use core::{ALLOW, Core, Counters, SendError, new_tag};
pub use guard::Guard;
pub use registrar::{BindingEntry, Registrar, RegistrarConfig};
pub use transport::{
    CONNECT_TIMEOUT, ConnectError, FlowId, Flows, Listeners, Proto, Source, TransportConfig, connect, serve_stream,
    serve_udp,
};
