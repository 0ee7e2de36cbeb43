//! SIP transports: UDP sockets, TCP/TLS listeners whose connections are
//! flows, and the connections the PBX opens itself ([`connect`], toward
//! TCP/TLS trunks), which become flows the same way. This is the only code
//! that touches SIP sockets.
//!
//! A stream connection reads in two phases (`pbx_sip::framing::check`,
//! then parse): CRLF keep-alive pings get a pong, a message that does not
//! complete within [`TransportConfig::message_timeout`] is cut off (only
//! that connection is closed), an idle accepted connection is closed after
//! [`TransportConfig::idle_timeout`] (an idle outbound one is pinged every
//! [`TransportConfig::keepalive`] instead), and at most
//! [`TransportConfig::max_connections`] accepted ones are open at once.

use super::Core;
use crate::tls::{HandshakeError, TlsAcceptor, TlsClient};
use pbx_sip::framing::{self, FrameError, Framed};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

/// A SIP transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Proto {
    /// The name used in Via headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
            Proto::Tls => "TLS",
        }
    }
}

/// A stream connection's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowId(pub u64);

/// Where a message came from, and how to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// Its transport.
    pub proto: Proto,
    /// The peer's address.
    pub remote: SocketAddr,
    /// Our address it arrived at.
    pub local: SocketAddr,
    /// The connection, for TCP and TLS.
    pub flow: Option<FlowId>,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.proto {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Tls => "tls",
        };
        write!(f, "{proto}:{}", self.remote)
    }
}

/// Limits of the transports.
#[derive(Debug, Clone, Copy)]
pub struct TransportConfig {
    /// Largest message accepted.
    pub max_message: usize,
    /// Open TCP/TLS connections at most.
    pub max_connections: usize,
    /// A started message must complete within this time.
    pub message_timeout: Duration,
    /// An accepted connection with no traffic is closed after this time.
    pub idle_timeout: Duration,
    /// A connection the PBX opened is sent a CRLF keep-alive ping (RFC 5626
    /// §4.4.1) after this long without traffic, instead of being closed:
    /// the peer reaches the PBX over it.
    pub keepalive: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            max_message: 64 * 1024,
            max_connections: 10_000,
            message_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(900),
            keepalive: Duration::from_secs(60),
        }
    }
}

struct FlowHandle {
    tx: mpsc::Sender<Vec<u8>>,
    remote: SocketAddr,
    /// The subject (RFC 4514) of the verified client certificate the peer
    /// presented in the TLS handshake, if any.
    client_cert_subject: Option<Arc<str>>,
}

/// The open stream connections, to send on a flow by its id.
#[derive(Default)]
pub struct Flows {
    next: AtomicU64,
    open: Mutex<HashMap<FlowId, FlowHandle>>,
}

impl Flows {
    /// Queue `bytes` on `flow`; false if the connection is gone or its
    /// queue is full (a stalled peer must not stall the PBX).
    pub fn send(&self, flow: FlowId, bytes: Vec<u8>) -> bool {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&flow).is_some_and(|h| h.tx.try_send(bytes).is_ok())
    }

    /// Is `flow` still open?
    pub fn is_open(&self, flow: FlowId) -> bool {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&flow)
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// No open connections.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The remote address of `flow`.
    pub fn remote(&self, flow: FlowId) -> Option<SocketAddr> {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&flow)
            .map(|h| h.remote)
    }

    /// The subject (RFC 4514) of the verified TLS client certificate the
    /// peer of `flow` presented; `None` for TCP, for a TLS peer that
    /// presented none, and for a closed flow.
    pub fn client_cert_subject(&self, flow: FlowId) -> Option<Arc<str>> {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&flow)
            .and_then(|h| h.client_cert_subject.clone())
    }

    fn open(&self, remote: SocketAddr, client_cert_subject: Option<Arc<str>>) -> (FlowId, mpsc::Receiver<Vec<u8>>) {
        let id = FlowId(self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let (tx, rx) = mpsc::channel(256);
        self.open.lock().unwrap_or_else(|p| p.into_inner()).insert(
            id,
            FlowHandle {
                tx,
                remote,
                client_cert_subject,
            },
        );
        (id, rx)
    }

    fn close(&self, id: FlowId) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

/// The bound listeners of a running PBX.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    /// UDP sockets.
    pub udp: Vec<SocketAddr>,
    /// TCP listeners.
    pub tcp: Vec<SocketAddr>,
    /// TLS listeners.
    pub tls: Vec<SocketAddr>,
}

/// Receive datagrams on `socket` until the task is dropped.
pub async fn serve_udp(socket: Arc<UdpSocket>, core: Arc<Core>) {
    let local = socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, remote) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP port unreachable and the like surface here on some
                // systems; they concern one peer, not the socket.
                tracing::debug!("udp receive: {e}");
                continue;
            }
        };
        let datagram = &buf[..n];
        if datagram.iter().all(|b| *b == b'\r' || *b == b'\n') {
            continue; // keep-alive
        }
        let source = Source {
            proto: Proto::Udp,
            remote,
            local,
            flow: None,
        };
        if let Some(reply) = core.handle(datagram, &source).await
            && let Err(e) = socket.send_to(&reply, remote).await
        {
            tracing::debug!(%remote, "udp send: {e}");
        }
    }
}

/// Accept TCP (or, with `tls`, TLS) connections until the task is dropped.
pub async fn serve_stream(
    listener: TcpListener,
    tls: Option<Arc<TlsAcceptor>>,
    core: Arc<Core>,
    limit: Arc<Semaphore>,
) {
    let local = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut backoff = Duration::from_millis(1);
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(c) => {
                backoff = Duration::from_millis(1);
                c
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, retry.
                tracing::warn!("accept on {local}: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            core.counters.connections_refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%remote, "connection refused: too many open connections");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let core = core.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(tcp, flow_source(&core, Proto::Tcp, remote, local, None), core, false).await,
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(accepted) => {
                        if let Some(subject) = &accepted.client_cert_subject {
                            tracing::debug!(%remote, subject = &**subject, "TLS client certificate verified");
                        }
                        let flow = flow_source(&core, Proto::Tls, remote, local, accepted.client_cert_subject);
                        connection(accepted.stream, flow, core, false).await;
                    }
                    Err(e) => {
                        core.counters.tls_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%remote, "TLS handshake failed: {e}");
                    }
                },
            }
        });
    }
}

/// How long opening a connection may take: TCP, then the TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why [`connect`] could not open a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Nothing listens at the address.
    #[error("connection refused")]
    Refused,
    /// No TCP connection or TLS handshake within [`CONNECT_TIMEOUT`].
    #[error("connection timed out")]
    TimedOut,
    /// Another socket error (unreachable network, ...).
    #[error("connection failed: {0}")]
    Io(String),
    /// The TLS handshake failed; the certificate checks say which one.
    #[error(transparent)]
    Tls(#[from] HandshakeError),
}

/// Open a connection to `remote` (TLS with `tls`, else TCP) and serve it
/// as a flow like an accepted one: what the peer sends over it reaches
/// [`Core::handle`]. Returns the flow's source, to send on.
pub async fn connect(core: &Arc<Core>, remote: SocketAddr, tls: Option<&TlsClient>) -> Result<Source, ConnectError> {
    let attempt = async {
        let tcp = TcpStream::connect(remote).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => ConnectError::Refused,
            _ => ConnectError::Io(e.to_string()),
        })?;
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_err(|e| ConnectError::Io(e.to_string()))?;
        Ok(match tls {
            None => {
                let flow = flow_source(core, Proto::Tcp, remote, local, None);
                let source = flow.0;
                tokio::spawn(connection(tcp, flow, core.clone(), true));
                source
            }
            Some(client) => {
                let stream = client.connect(tcp).await?;
                let flow = flow_source(core, Proto::Tls, remote, local, None);
                let source = flow.0;
                tokio::spawn(connection(stream, flow, core.clone(), true));
                source
            }
        })
    };
    let outcome = tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .unwrap_or(Err(ConnectError::TimedOut));
    if outcome.is_err() {
        core.counters.connect_failures.fetch_add(1, Ordering::Relaxed);
    }
    outcome
}

/// A new flow for a connection, and the queue of what is sent on it.
fn flow_source(
    core: &Core,
    proto: Proto,
    remote: SocketAddr,
    local: SocketAddr,
    client_cert_subject: Option<Arc<str>>,
) -> (Source, mpsc::Receiver<Vec<u8>>) {
    let (flow, outbound) = core.flows.open(remote, client_cert_subject);
    let source = Source {
        proto,
        remote,
        local,
        flow: Some(flow),
    };
    (source, outbound)
}

/// Serve one stream connection: read, frame, dispatch, write. An
/// `opened` connection (one the PBX opened) is kept up with keep-alive
/// pings when idle; an accepted one is closed.
///
/// One task does both directions: the replies to what was read, and what
/// other parts of the PBX queued on the flow, are written from here, in
/// the order they were made, without a hop to a writer task. A peer that
/// does not take what is written within
/// [`TransportConfig::message_timeout`] is cut off.
///
/// A message must complete within [`TransportConfig::message_timeout`] of
/// its first bytes, however slowly the rest trickles in. The deadlines
/// share one timer that is only moved earlier as they come and go: when
/// it fires before the real deadline it is set again, so a busy
/// connection costs no timer work per message.
async fn connection<S>(
    stream: S,
    (source, mut outbound): (Source, mpsc::Receiver<Vec<u8>>),
    core: Arc<Core>,
    opened: bool,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut stream = stream;
    let Some(flow) = source.flow else { return };
    let config = core.transport;
    let parse = pbx_sip::ParseConfig {
        max_size: config.max_message,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    // What is to be written next: replies and queued messages, in order.
    let mut out: Vec<u8> = Vec::new();
    let idle = if opened { config.keepalive } else { config.idle_timeout };
    // When the connection last carried something, and when the partial
    // message in `buf` (if any) began.
    let mut active = Instant::now();
    let mut started: Option<Instant> = None;
    let timer = tokio::time::sleep_until(active + idle);
    tokio::pin!(timer);
    'conn: loop {
        // Take every complete frame out of the buffer.
        let mut took = false;
        loop {
            match framing::check(&buf, &parse) {
                Ok(Framed::Message { len }) => {
                    took = true;
                    let reply = core.handle(&buf[..len], &source).await;
                    buf.drain(..len);
                    // What handling queued on this flow went out first.
                    while let Ok(queued) = outbound.try_recv() {
                        out.extend_from_slice(&queued);
                    }
                    if let Some(reply) = reply {
                        out.extend_from_slice(&reply);
                    }
                }
                Ok(Framed::Ping { len }) => {
                    took = true;
                    buf.drain(..len);
                    out.extend_from_slice(b"\r\n");
                }
                Ok(Framed::KeepAlive { len }) => {
                    took = true;
                    buf.drain(..len);
                }
                Err(FrameError::Incomplete) => break,
                Err(e) => {
                    core.counters.stream_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%source, "closing the connection: {e}");
                    break 'conn;
                }
            }
        }
        while let Ok(queued) = outbound.try_recv() {
            out.extend_from_slice(&queued);
        }
        if !out.is_empty() {
            let written = async {
                stream.write_all(&out).await?;
                stream.flush().await
            };
            match tokio::time::timeout(config.message_timeout, written).await {
                Ok(Ok(())) => {
                    out.clear();
                    if out.capacity() > 64 * 1024 {
                        out = Vec::new();
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(%source, "closing the connection: {e}");
                    break;
                }
                Err(_) => {
                    core.counters.stream_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%source, "closing a connection that does not take what is sent");
                    break;
                }
            }
        }
        // A partial message left after a complete one began with the
        // read that brought it.
        if buf.is_empty() {
            started = None;
        } else if took || started.is_none() {
            started = Some(active);
        }
        let deadline = match started {
            Some(t) => t + config.message_timeout,
            None => active + idle,
        };
        if deadline < timer.deadline() {
            timer.as_mut().reset(deadline);
        }
        if buf.capacity() - buf.len() < 2048 {
            buf.reserve(4096);
        }
        tokio::select! {
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => active = Instant::now(),
            },
            () = &mut timer => {
                let now = Instant::now();
                if now < deadline {
                    // Armed for an earlier deadline that has passed.
                    timer.as_mut().reset(deadline);
                } else if started.is_some() {
                    core.counters.stream_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%source, bytes = buf.len(), "cutting off a message that did not complete in time");
                    break;
                } else if opened {
                    out.extend_from_slice(b"\r\n\r\n");
                    active = now;
                    timer.as_mut().reset(now + idle);
                } else {
                    tracing::debug!(%source, "closing an idle connection");
                    break;
                }
            }
            // The flow's sender lives in `core.flows` until the close
            // below, so this never ends the loop by itself.
            Some(queued) = outbound.recv() => {
                out.extend_from_slice(&queued);
                active = Instant::now();
            }
        }
    }
    core.flows.close(flow);
    core.on_flow_closed(flow);
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
}
