//! A relay worker: one thread, one epoll instance (through mio), the calls
//! it owns, and the packet path.
//!
//! The loop: wait for readiness (or the next timeout scan), drain each
//! ready socket with batched receives, transform every packet in place in
//! the worker's buffers (authenticate and decrypt with the source leg's
//! inbound context, protect with the other leg's outbound context) and
//! send it with one batched send per destination socket; then apply the
//! control messages queued since the last pass; then, every scan period,
//! check media timeouts.
//!
//! Wake-ups are rate-limited to one per `RelayConfig::coalesce` (500 µs by
//! default): under light load a wake-up per packet would cost more than the
//! packet, so the worker sleeps out the rest of the interval and serves
//! everything that arrived meanwhile in one pass; under load it never
//! sleeps.
//!
//! Nothing on the packet path locks, allocates or blocks: the buffers are
//! the worker's, counters are single-writer atomics, recording frames go
//! out with `try_send`, sends never wait (a full socket buffer drops).
//! Sockets are edge-triggered; a socket still readable after
//! [`MAX_ROUNDS`] batches is revisited after the other ready sockets, so
//! one flooded port cannot starve the rest.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use pbx_srtp::Context;

use crate::call::CallShared;
use crate::record::{Frame, Law, MAX_FRAME, RecMsg};
use crate::relay::{PortPool, RelayConfig, lock};
use crate::rtp;
use crate::stats::{L, LegCounters, W, WorkerCounters, bump};
use crate::sys::{BATCH, Batch};
use crate::{MediaError, Side};

/// The waker's token; socket tokens are `slot * 4 + socket`.
const WAKE: Token = Token(usize::MAX);
/// Batches read from one socket before moving on to the other ready ones.
const MAX_ROUNDS: usize = 4;
/// A forward sequence jump larger than this is a restart, not loss.
const MAX_SEQ_GAP: u16 = 1000;

/// A control message, applied by the worker between batches.
pub(crate) enum Ctrl {
    Add(Box<NewCall>),
    /// Not acknowledged: the worker applies control messages before it
    /// reads packets (see `run`), so the caller need not wait.
    Configure {
        id: u64,
        side: Side,
        leg: Box<LegSetup>,
    },
    Record {
        id: u64,
        ack: mpsc::Sender<()>,
    },
    /// Forgets the call; then runs `then` (frees the ports) and
    /// acknowledges, each if given.
    Close {
        id: u64,
        ack: Option<mpsc::Sender<()>>,
        then: Option<Box<dyn FnOnce() + Send>>,
    },
    Shutdown,
}

/// A freshly allocated call: the bound sockets of both legs (RTP, RTCP).
pub(crate) struct NewCall {
    pub(crate) id: u64,
    /// The RTP ports of the two pairs, to give them back at close.
    pub(crate) ports: [u16; 2],
    pub(crate) call_id: Arc<str>,
    pub(crate) sockets: [[std::net::UdpSocket; 2]; 2],
    pub(crate) shared: Arc<CallShared>,
}

/// A leg's configuration, contexts already built by the caller's thread
/// (key derivation stays off the packet path).
pub(crate) struct LegSetup {
    pub(crate) remote: [Option<SocketAddr>; 2],
    pub(crate) rtcp_mux: bool,
    pub(crate) inbound: Crypto,
    pub(crate) outbound: Crypto,
    pub(crate) codecs: [Option<Law>; 128],
    pub(crate) on_hold: bool,
}

/// What to do with one direction's SRTP context on (re)configure.
pub(crate) enum Crypto {
    /// Plain RTP.
    Plain,
    /// The same key as before: keep the context and its state.
    Keep,
    /// A new key.
    Srtp(Box<Context>),
}

/// The relay's handle on a worker.
pub(crate) struct WorkerHandle {
    pub(crate) tx: mpsc::Sender<Ctrl>,
    pub(crate) waker: Arc<Waker>,
    pub(crate) counters: Arc<WorkerCounters>,
    pub(crate) thread: Option<JoinHandle<()>>,
}

/// Starts worker `index`.
pub(crate) fn spawn(
    index: usize,
    config: &RelayConfig,
    rec: SyncSender<RecMsg>,
    pool: Arc<Mutex<PortPool>>,
) -> Result<WorkerHandle, MediaError> {
    let poll = Poll::new().map_err(MediaError::Thread)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE).map_err(MediaError::Thread)?);
    let (tx, rx) = mpsc::channel();
    let counters = Arc::new(WorkerCounters::default());
    let core = (!config.cpu_affinity.is_empty()).then(|| config.cpu_affinity[index % config.cpu_affinity.len()]);
    let scan_every = (config.media_timeout / 8).clamp(Duration::from_millis(10), Duration::from_millis(250));
    let worker = Worker {
        poll,
        rx,
        calls: Vec::new(),
        free: Vec::new(),
        ids: HashMap::new(),
        counters: counters.clone(),
        rec,
        timeout: config.media_timeout,
        scan_every,
        coalesce: config.coalesce,
        pool,
    };
    let thread = std::thread::Builder::new()
        .name(format!("pbx-media-{index}"))
        .spawn(move || {
            if let Some(core) = core
                && let Err(e) = crate::sys::pin_current_thread(core)
            {
                tracing::warn!(worker = index, core, error = %e, "cannot pin media worker");
            }
            worker.run();
        })
        .map_err(MediaError::Thread)?;
    Ok(WorkerHandle {
        tx,
        waker,
        counters,
        thread: Some(thread),
    })
}

struct Worker {
    poll: Poll,
    rx: Receiver<Ctrl>,
    /// Calls by slot; a slot's tokens are `slot * 4 ..= slot * 4 + 3`.
    calls: Vec<Option<Call>>,
    free: Vec<usize>,
    ids: HashMap<u64, usize>,
    counters: Arc<WorkerCounters>,
    rec: SyncSender<RecMsg>,
    timeout: Duration,
    scan_every: Duration,
    coalesce: Duration,
    /// Where a closed call's sockets go, still bound, for a later call.
    pool: Arc<Mutex<PortPool>>,
}

struct Call {
    id: u64,
    ports: [u16; 2],
    call_id: Arc<str>,
    legs: [Leg; 2],
    shared: Arc<CallShared>,
    recording: bool,
    /// Per leg: configured and expected to send, so the media timeout
    /// runs for it.
    armed: [bool; 2],
    fired: bool,
    /// Per leg: last configure or accepted packet.
    last_rx: [Instant; 2],
}

struct Leg {
    /// RTP and RTCP sockets.
    socks: [UdpSocket; 2],
    cfg: Option<LegCfg>,
    /// The phone's source address per socket, learned from its first
    /// accepted packet.
    latch: [Option<SocketAddr>; 2],
    /// (SSRC, highest sequence number) of the phone's RTP, for gap counting.
    seq: Option<(u32, u16)>,
}

struct LegCfg {
    remote: [Option<SocketAddr>; 2],
    mux: bool,
    inbound: Option<Box<Context>>,
    outbound: Option<Box<Context>>,
    codecs: [Option<Law>; 128],
}

/// Why an incoming packet was dropped.
#[derive(Debug, Clone, Copy)]
enum Reject {
    NotReady,
    Malformed,
    Auth,
    Replay,
    WrongSource,
}

impl Reject {
    fn counters(self) -> (L, W) {
        match self {
            Reject::NotReady => (L::NotReady, W::NotReady),
            Reject::Malformed => (L::Malformed, W::Malformed),
            Reject::Auth => (L::Auth, W::Auth),
            Reject::Replay => (L::Replay, W::Replay),
            Reject::WrongSource => (L::WrongSource, W::WrongSource),
        }
    }

    fn of(e: pbx_srtp::Error) -> Reject {
        use pbx_srtp::Error as E;
        match e {
            E::Replayed | E::TooOld => Reject::Replay,
            E::Malformed(_) | E::BufferTooSmall { .. } => Reject::Malformed,
            _ => Reject::Auth,
        }
    }
}

impl Worker {
    fn run(mut self) {
        // Built here: the batch holds raw pointers and stays on this thread.
        let mut batch = Batch::new();
        let mut events = Events::with_capacity(1024);
        let mut pending: Vec<usize> = Vec::with_capacity(64);
        let mut revisit: Vec<usize> = Vec::with_capacity(64);
        let mut next_scan = Instant::now() + self.scan_every;
        let mut now = Instant::now();
        loop {
            // At most one wake-up per `coalesce`: what arrives meanwhile
            // waits in the socket buffers and is served by the next one.
            let since = now.elapsed();
            if since < self.coalesce && pending.is_empty() {
                std::thread::sleep(self.coalesce - since);
            }
            let wait = if pending.is_empty() {
                next_scan.saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                tracing::error!(error = %e, "media worker cannot poll; stopping");
                return;
            }
            now = Instant::now();
            // Control first: a call added or configured before a packet
            // for it was sent is set up before that packet is read, which
            // is what lets `configure` return without an acknowledgement.
            if !self.control(now) {
                return;
            }
            std::mem::swap(&mut pending, &mut revisit);
            for token in revisit.drain(..).chain(events.iter().map(|e| e.token().0)) {
                if token != WAKE.0 && self.drain(&mut batch, token, now) {
                    pending.push(token);
                }
            }
            if now >= next_scan {
                self.scan(now);
                next_scan = now + self.scan_every;
            }
        }
    }

    /// Reads and relays what socket `token` has queued, up to MAX_ROUNDS
    /// batches. Returns true if it may have more.
    fn drain(&mut self, batch: &mut Batch, token: usize, now: Instant) -> bool {
        let (slot, sock) = (token / 4, token % 4);
        let Some(Some(call)) = self.calls.get_mut(slot) else {
            return false;
        };
        let (side, rtcp_sock) = (sock / 2, sock % 2 == 1);
        let fd = call.legs[side].socks[usize::from(rtcp_sock)].as_raw_fd();
        for _ in 0..MAX_ROUNDS {
            let n = match batch.recv(fd) {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(call_id = %call.call_id, error = %e, "media receive error");
                    return false;
                }
            };
            if n == 0 {
                return false;
            }
            call.relay(batch, n, side, rtcp_sock, now, &self.counters, &self.rec);
            if n < BATCH {
                // A short batch emptied the queue; a later datagram raises
                // a new edge.
                return false;
            }
        }
        true
    }

    /// Applies queued control messages. Returns false when told to stop.
    fn control(&mut self, now: Instant) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(Ctrl::Add(c)) => self.add(*c, now),
                Ok(Ctrl::Configure { id, side, leg }) => {
                    if let Some(call) = self.call_mut(id) {
                        call.configure(side, *leg, now);
                    }
                }
                Ok(Ctrl::Record { id, ack }) => {
                    if let Some(call) = self.call_mut(id) {
                        call.recording = true;
                    }
                    let _ = ack.send(());
                }
                Ok(Ctrl::Close { id, ack, then }) => {
                    self.remove(id);
                    if let Some(then) = then {
                        then();
                    }
                    if let Some(ack) = ack {
                        let _ = ack.send(());
                    }
                }
                Ok(Ctrl::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn call_mut(&mut self, id: u64) -> Option<&mut Call> {
        let slot = *self.ids.get(&id)?;
        self.calls.get_mut(slot)?.as_mut()
    }

    fn add(&mut self, c: NewCall, now: Instant) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.calls.push(None);
            self.calls.len() - 1
        });
        let [[a_rtp, a_rtcp], [b_rtp, b_rtcp]] = c.sockets.map(|pair| pair.map(UdpSocket::from_std));
        let mut legs = [a_rtp, a_rtcp, b_rtp, b_rtcp].into_iter();
        let mut leg = || Leg {
            socks: [legs.next().expect("four sockets"), legs.next().expect("four sockets")],
            cfg: None,
            latch: [None, None],
            seq: None,
        };
        let mut call = Call {
            id: c.id,
            ports: c.ports,
            call_id: c.call_id,
            legs: [leg(), leg()],
            shared: c.shared,
            recording: false,
            armed: [false; 2],
            fired: false,
            last_rx: [now; 2],
        };
        let registry = self.poll.registry();
        for (s, leg) in call.legs.iter_mut().enumerate() {
            for (k, sock) in leg.socks.iter_mut().enumerate() {
                let token = Token(slot * 4 + s * 2 + k);
                if let Err(e) = registry.register(sock, token, Interest::READABLE) {
                    tracing::error!(call_id = %call.call_id, error = %e, "cannot register media socket");
                }
            }
        }
        self.ids.insert(call.id, slot);
        self.calls[slot] = Some(call);
    }

    /// Forgets a call and gives its port pairs back to the pool, bound.
    fn remove(&mut self, id: u64) {
        let Some(slot) = self.ids.remove(&id) else { return };
        if let Some(call) = self.calls.get_mut(slot).and_then(Option::take) {
            let mut pool = lock(&self.pool);
            for (leg, port) in call.legs.into_iter().zip(call.ports) {
                let [mut rtp, mut rtcp] = leg.socks;
                let _ = self.poll.registry().deregister(&mut rtp);
                let _ = self.poll.registry().deregister(&mut rtcp);
                pool.give_back(port, [rtp.into(), rtcp.into()]);
            }
            self.free.push(slot);
        }
    }

    fn scan(&mut self, now: Instant) {
        for call in self.calls.iter_mut().flatten() {
            let silent =
                (0..2).any(|i| call.armed[i] && now.saturating_duration_since(call.last_rx[i]) >= self.timeout);
            if silent && !call.fired {
                call.fired = true;
                // Counted before the owner is woken, so it sees the count.
                self.counters.add(W::Timeouts, 1);
                call.shared.timed_out.send_replace(true);
                tracing::info!(call_id = %call.call_id, timeout = ?self.timeout, "media timeout");
            }
        }
    }
}

impl Call {
    fn configure(&mut self, side: Side, setup: LegSetup, now: Instant) {
        let leg = &mut self.legs[side.index()];
        let old = leg.cfg.take();
        let (old_in, old_out, old_remote) = match old {
            Some(c) => (c.inbound, c.outbound, Some(c.remote)),
            None => (None, None, None),
        };
        let pick = |new: Crypto, old: Option<Box<Context>>| match new {
            Crypto::Plain => None,
            Crypto::Keep => old,
            Crypto::Srtp(c) => Some(c),
        };
        if old_remote != Some(setup.remote) {
            leg.latch = [None, None];
            self.shared.legs[side.index()].set_latched(false, None);
            self.shared.legs[side.index()].set_latched(true, None);
        }
        leg.cfg = Some(LegCfg {
            remote: setup.remote,
            mux: setup.rtcp_mux,
            inbound: pick(setup.inbound, old_in),
            outbound: pick(setup.outbound, old_out),
            codecs: setup.codecs,
        });
        self.armed[side.index()] = !setup.on_hold;
        self.last_rx = [now; 2];
        if self.fired {
            self.fired = false;
            self.shared.timed_out.send_replace(false);
        }
    }

    /// The packet path: relays datagrams `0..n` of `batch`, received on
    /// leg `side`'s RTP or RTCP socket.
    #[allow(clippy::too_many_arguments)]
    fn relay(
        &mut self,
        batch: &mut Batch,
        n: usize,
        side: usize,
        rtcp_sock: bool,
        now: Instant,
        wc: &WorkerCounters,
        rec: &SyncSender<RecMsg>,
    ) {
        let [a, b] = &mut self.legs;
        let (x, y) = if side == 0 { (a, b) } else { (b, a) };
        let xs = &self.shared.legs[side];
        let ys = &self.shared.legs[1 - side];
        let dropped = |k: Reject| {
            let (l, w) = k.counters();
            xs.add(l, 1);
            wc.add(w, 1);
        };
        let dropped_out = || {
            ys.add(L::DroppedOut, 1);
            wc.add(W::DroppedOut, 1);
        };
        // What is queued for sending: through which of y's sockets, and
        // per datagram whether it is RTCP and its size.
        let mut out_sock = 0usize;
        let mut meta = [(false, 0usize); BATCH];
        for i in 0..n {
            let (len, from) = {
                let p = batch.received(i);
                match p.from {
                    Some(from) if !p.truncated => (p.len, from),
                    _ => {
                        dropped(Reject::Malformed);
                        continue;
                    }
                }
            };
            let (Some(xc), Some(yc)) = (x.cfg.as_mut(), y.cfg.as_mut()) else {
                dropped(Reject::NotReady);
                continue;
            };
            let buf = batch.buf(i);
            // RFC 5761: on a multiplexed RTP port, tell RTCP by its type.
            // RTCP on the RTP port without rtcp-mux, or on the RTCP port
            // with it, is not where the leg negotiated it: dropped.
            let rtcp = rtcp_sock || rtp::looks_like_rtcp(&buf[..len]);
            let misplaced = if rtcp_sock { xc.mux } else { rtcp && !xc.mux };
            if misplaced {
                dropped(Reject::Malformed);
                continue;
            }
            let li = usize::from(rtcp_sock);
            if x.latch[li].is_some_and(|l| l != from) {
                dropped(Reject::WrongSource);
                continue;
            }
            let accepted = match (rtcp, xc.inbound.as_deref_mut()) {
                (false, Some(c)) => c.unprotect_rtp(&mut buf[..len]).map_err(Reject::of),
                (true, Some(c)) => c.unprotect_rtcp(&mut buf[..len]).map_err(Reject::of),
                (false, None) => rtp::parse_rtp(&buf[..len]).map(|_| len).ok_or(Reject::Malformed),
                (true, None) => rtp::is_rtcp(&buf[..len]).then_some(len).ok_or(Reject::Malformed),
            };
            let plain = match accepted {
                Ok(m) => m,
                Err(k) => {
                    dropped(k);
                    continue;
                }
            };
            if x.latch[li].is_none() {
                x.latch[li] = Some(from);
                xs.set_latched(rtcp_sock, Some(from));
                tracing::debug!(call_id = %self.call_id, side, rtcp = rtcp_sock, %from, "latched");
            }
            self.last_rx[side] = now;
            xs.add(if rtcp { L::RtcpIn } else { L::PacketsIn }, 1);
            xs.add(L::BytesIn, len as u64);
            if !rtcp && let Some(info) = rtp::parse_rtp(&buf[..plain]) {
                x.seq = Some(match x.seq {
                    Some((ssrc, last)) if ssrc == info.ssrc => {
                        let d = info.seq.wrapping_sub(last);
                        if d >= 0x8000 {
                            (ssrc, last) // older than the highest: reordered or late
                        } else {
                            if (2..=MAX_SEQ_GAP + 1).contains(&d) {
                                xs.add(L::SeqGaps, u64::from(d - 1));
                            }
                            (ssrc, info.seq)
                        }
                    }
                    _ => (info.ssrc, info.seq),
                });
                if self.recording
                    && let Some(law) = xc.codecs.get(usize::from(info.pt)).copied().flatten()
                {
                    let payload = &buf[info.payload.clone()];
                    let frame_ok = payload.len() <= MAX_FRAME && {
                        let mut f = Frame {
                            id: self.id,
                            channel: side,
                            law,
                            ssrc: info.ssrc,
                            ts: info.ts,
                            at: now,
                            len: payload.len() as u16,
                            data: [0; MAX_FRAME],
                        };
                        f.data[..payload.len()].copy_from_slice(payload);
                        match rec.try_send(RecMsg::Frame(f)) {
                            Ok(()) => true,
                            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
                        }
                    };
                    if !frame_ok {
                        bump(&self.shared.rec_dropped, 1);
                        wc.add(W::RecDropped, 1);
                    }
                }
            }
            // Out to the other leg: RTCP through its RTCP socket unless it
            // multiplexes; to its latched address, else its SDP one.
            let via = usize::from(rtcp && !yc.mux);
            let Some(to) = y.latch[via].or(yc.remote[via]) else {
                dropped_out();
                continue;
            };
            let sent_len = match (rtcp, yc.outbound.as_deref_mut()) {
                (false, Some(c)) => c.protect_rtp(buf, plain),
                (true, Some(c)) => c.protect_rtcp(buf, plain),
                (_, None) => Ok(plain),
            };
            let Ok(sent_len) = sent_len else {
                dropped_out();
                continue;
            };
            if batch.queued() > 0 && via != out_sock {
                flush(batch, &y.socks[out_sock], &meta, ys, wc);
            }
            out_sock = via;
            meta[batch.queued()] = (rtcp, sent_len);
            if !batch.queue(i, sent_len, to) {
                dropped_out();
            }
        }
        if batch.queued() > 0 {
            flush(batch, &y.socks[out_sock], &meta, ys, wc);
        }
    }
}

/// Sends what `batch` has queued through `sock` and counts the outcome.
fn flush(batch: &mut Batch, sock: &UdpSocket, meta: &[(bool, usize); BATCH], ys: &LegCounters, wc: &WorkerCounters) {
    let count = batch.queued();
    let failed = batch.send(sock.as_raw_fd());
    let (mut rtp, mut rtcp, mut bytes, mut lost) = (0, 0, 0, 0);
    for (q, &(is_rtcp, len)) in meta.iter().enumerate().take(count) {
        if failed & (1 << q) != 0 {
            lost += 1;
        } else {
            if is_rtcp {
                rtcp += 1;
            } else {
                rtp += 1;
            }
            bytes += len as u64;
        }
    }
    ys.add(L::PacketsOut, rtp);
    ys.add(L::RtcpOut, rtcp);
    ys.add(L::BytesOut, bytes);
    wc.add(W::Relayed, rtp + rtcp);
    wc.add(W::BytesRelayed, bytes);
    if lost > 0 {
        ys.add(L::DroppedOut, lost);
        wc.add(W::DroppedOut, lost);
    }
}
