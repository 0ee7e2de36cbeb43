//! TLS for SIP (and later provisioning): one certificate per domain, chosen
//! per handshake by the certificates plugin hook from the SNI name.
//!
//! - `certs`: the certificate folder (`<domain>/cert.pem` + `key.pem`), the
//!   development CA generated on first run.
//! - `acceptor`: reads the ClientHello, asks the policy which domain's
//!   certificate to present, then completes the handshake (TLS 1.2 and 1.3);
//!   asks for an optional client certificate, verified against a CA bundle.
//! - `subject`: a client certificate's subject as an RFC 4514 string.
//! - `connector`: the client side, for connections the PBX opens (TLS
//!   trunks): the server certificate is verified against a CA bundle.

mod acceptor;
mod certs;
mod connector;
mod subject;

pub use acceptor::{Accepted, TlsAcceptor};
pub use certs::{CertError, CertStore, DEV_CA_FILE, issue_dev_cert, issue_dev_client_cert};
pub use connector::{HandshakeError, TlsClient, load_ca};
pub use subject::subject_rfc4514;
