//! TLS for SIP (and later provisioning): one certificate per domain, chosen
//! per handshake by the certificates plugin hook from the SNI name.
//!
//! - `certs`: the certificate folder (`<domain>/cert.pem` + `key.pem`), the
//!   development CA generated on first run.
//! - `acceptor`: reads the ClientHello, asks the policy which domain's
//!   certificate to present, then completes the handshake (TLS 1.2 and 1.3).
//! - `connector`: the client side, for connections the PBX opens (TLS
//!   trunks): the server certificate is verified against a CA bundle.

mod acceptor;
mod certs;
mod connector;

pub use acceptor::{Accepted, TlsAcceptor};
pub use certs::{CertError, CertStore, DEV_CA_FILE, issue_dev_cert};
pub use connector::{HandshakeError, TlsClient, load_ca};
