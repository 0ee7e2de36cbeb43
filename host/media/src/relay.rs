//! The relay: configuration, worker threads, port allocation.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::MediaError;
use crate::call::{CallMedia, CallShared, LegAddrs};
use crate::record::{self, RecMsg};
use crate::stats::RelayCounters;
use crate::worker::{self, Ctrl, NewCall, WorkerHandle};

/// How long a control call waits for the worker's acknowledgement before
/// deciding the worker is gone.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Relay settings.
///
/// Build with struct update syntax so that new fields keep their
/// defaults: `RelayConfig { workers: 2, ..RelayConfig::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Address the media sockets bind to, and the one [`CallMedia::local`]
    /// reports. Bind a concrete address (the one the SDP advertises),
    /// not `0.0.0.0`: replies then leave from the address the phone sent
    /// to. Default 127.0.0.1.
    pub bind_ip: IpAddr,
    /// Lowest port of the media range (default 20000).
    pub port_min: u16,
    /// Highest port of the media range (default 29999). Each leg takes an
    /// even RTP port and the odd one above it for RTCP; ports other
    /// processes hold are skipped.
    pub port_max: u16,
    /// Worker threads (default 1). Calls are spread round-robin; each
    /// call's four sockets belong to one worker.
    pub workers: usize,
    /// How long without any accepted packet before
    /// [`CallMedia::timed_out`] resolves (default 30 s).
    pub media_timeout: Duration,
    /// CPU cores to pin the workers to (worker `i` on
    /// `cpu_affinity[i % len]`); empty (the default) leaves them to the
    /// scheduler. Linux only; elsewhere a warning is logged.
    pub cpu_affinity: Vec<usize>,
    /// Shortest time between two wake-ups of a worker (default 500 µs;
    /// zero wakes for every packet). Under light load a worker would wake
    /// once per packet, and a wake-up costs more than relaying the packet;
    /// sleeping until this much time has passed since the last wake-up lets
    /// one wake-up serve every packet that arrived meanwhile, at the price
    /// of at most this much added latency. Under heavy load the worker
    /// never sleeps.
    pub coalesce: Duration,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_min: 20000,
            port_max: 29999,
            workers: 1,
            media_timeout: Duration::from_secs(30),
            cpu_affinity: Vec::new(),
            coalesce: Duration::from_micros(500),
        }
    }
}

impl RelayConfig {
    fn validate(&self) -> Result<(), MediaError> {
        if self.port_min == 0 || self.port_min > self.port_max {
            return Err(MediaError::Config(
                "port range must be 1 ..= 65535 with port_min <= port_max",
            ));
        }
        if PortPool::first_even(self.port_min).saturating_add(1) > self.port_max {
            return Err(MediaError::Config("port range holds no even/odd port pair"));
        }
        if self.workers == 0 {
            return Err(MediaError::Config("workers must be at least 1"));
        }
        if self.media_timeout.is_zero() {
            return Err(MediaError::Config("media_timeout must not be zero"));
        }
        Ok(())
    }
}

/// The media relay: worker threads forwarding (S)RTP between call legs,
/// and a recorder thread. Cheap to clone; the threads stop when the last
/// clone and the last [`CallMedia`] are dropped.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Starts the workers and the recorder.
    pub fn start(config: RelayConfig) -> Result<Relay, MediaError> {
        config.validate()?;
        let (rec_tx, rec_thread) = record::spawn().map_err(MediaError::Thread)?;
        let ports = Arc::new(Mutex::new(PortPool::new(config.port_min, config.port_max)));
        let workers = (0..config.workers)
            .map(|i| worker::spawn(i, &config, rec_tx.clone(), ports.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Relay {
            inner: Arc::new(Inner {
                config,
                workers,
                next_worker: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
                ports,
                rec_tx: Some(rec_tx),
                rec_thread: Some(rec_thread),
                rec_late: Arc::new(AtomicU64::new(0)),
                calls_active: AtomicU64::new(0),
                calls_total: AtomicU64::new(0),
                port_exhaustion: AtomicU64::new(0),
            }),
        })
    }

    /// Allocates the media of a call: an RTP/RTCP port pair (even RTP
    /// port, RTCP = RTP + 1) for each leg, bound and handed to a worker.
    /// `call_id` only labels logs.
    pub fn allocate(&self, call_id: &str) -> Result<CallMedia, MediaError> {
        let inner = &self.inner;
        let ip = inner.config.bind_ip;
        let pairs = {
            let mut pool = inner.ports();
            pool.take(ip).and_then(|a| match pool.take(ip) {
                Ok(b) => Ok((a, b)),
                Err(e) => {
                    pool.release(a.0);
                    Err(e)
                }
            })
        };
        let (pa, pb) = match pairs {
            Ok(p) => p,
            Err(MediaError::NoPorts { .. }) => {
                inner.port_exhaustion.fetch_add(1, Relaxed);
                return Err(MediaError::NoPorts {
                    min: inner.config.port_min,
                    max: inner.config.port_max,
                });
            }
            Err(e) => return Err(e),
        };
        let local = [pa.0, pb.0].map(|port| LegAddrs {
            rtp: SocketAddr::new(ip, port),
            rtcp: SocketAddr::new(ip, port + 1),
        });
        let worker = inner.next_worker.fetch_add(1, Relaxed) % inner.workers.len();
        let id = inner.next_id.fetch_add(1, Relaxed);
        let shared = Arc::new(CallShared::new());
        let call = NewCall {
            id,
            ports: [pa.0, pb.0],
            call_id: call_id.into(),
            sockets: [pa.1, pb.1],
            shared: shared.clone(),
        };
        // The call is usable at once: `configure` goes through the same
        // channel, behind this message.
        if inner.send(worker, Ctrl::Add(Box::new(call))).is_err() {
            inner.release(pa.0, pb.0);
            return Err(MediaError::Stopped);
        }
        inner.calls_active.fetch_add(1, Relaxed);
        inner.calls_total.fetch_add(1, Relaxed);
        Ok(CallMedia {
            relay: inner.clone(),
            worker,
            id,
            call_id: call_id.to_owned(),
            local,
            shared,
            keys: Mutex::new([None, None]),
            recording: Default::default(),
            closed: false,
        })
    }

    /// A snapshot of the relay-wide counters.
    pub fn counters(&self) -> RelayCounters {
        let inner = &self.inner;
        let mut r = RelayCounters {
            calls_active: inner.calls_active.load(Relaxed),
            calls_total: inner.calls_total.load(Relaxed),
            port_exhaustion: inner.port_exhaustion.load(Relaxed),
            recording_dropped: inner.rec_late.load(Relaxed),
            ..RelayCounters::default()
        };
        for w in &inner.workers {
            w.counters.sum_into(&mut r);
        }
        r
    }
}

/// What the relay handle and every call share.
pub(crate) struct Inner {
    config: RelayConfig,
    workers: Vec<WorkerHandle>,
    next_worker: AtomicUsize,
    next_id: AtomicU64,
    ports: Arc<Mutex<PortPool>>,
    rec_tx: Option<SyncSender<RecMsg>>,
    rec_thread: Option<JoinHandle<()>>,
    /// Frames the recorder could not place, all calls (written by the recorder).
    pub(crate) rec_late: Arc<AtomicU64>,
    calls_active: AtomicU64,
    calls_total: AtomicU64,
    port_exhaustion: AtomicU64,
}

impl Inner {
    fn ports(&self) -> MutexGuard<'_, PortPool> {
        lock(&self.ports)
    }

    /// Returns the port pairs starting at `a` and `b` to the pool.
    pub(crate) fn release(&self, a: u16, b: u16) {
        let mut pool = self.ports();
        pool.release(a);
        pool.release(b);
    }

    /// Counts a call as closed.
    pub(crate) fn call_closed(&self) {
        self.calls_active.fetch_sub(1, Relaxed);
    }

    pub(crate) fn recorder(&self) -> Result<&SyncSender<RecMsg>, MediaError> {
        self.rec_tx.as_ref().ok_or(MediaError::Stopped)
    }

    pub(crate) fn send(&self, worker: usize, msg: Ctrl) -> Result<(), MediaError> {
        let w = self.workers.get(worker).ok_or(MediaError::Stopped)?;
        w.tx.send(msg).map_err(|_| MediaError::Stopped)?;
        w.waker.wake().map_err(|_| MediaError::Stopped)
    }

    /// Sends a control message built around an acknowledgement sender and
    /// waits for the worker to acknowledge it.
    pub(crate) fn request(&self, worker: usize, msg: impl FnOnce(mpsc::Sender<()>) -> Ctrl) -> Result<(), MediaError> {
        let (ack, acked) = mpsc::channel();
        self.send(worker, msg(ack))?;
        acked.recv_timeout(ACK_TIMEOUT).map_err(|_| MediaError::Stopped)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for w in &self.workers {
            let _ = w.tx.send(Ctrl::Shutdown);
            let _ = w.waker.wake();
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
        // The workers have dropped their senders; dropping ours lets the
        // recorder finish what is open and exit.
        self.rec_tx = None;
        if let Some(t) = self.rec_thread.take() {
            let _ = t.join();
        }
    }
}

/// Locks the port pool. It stays consistent even if a holder panicked:
/// every update is a single assignment or a queue push/pop.
pub(crate) fn lock(pool: &Mutex<PortPool>) -> MutexGuard<'_, PortPool> {
    pool.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long a pair a call gave back rests before another call gets it,
/// so the old call's late packets have stopped (whatever arrived
/// meanwhile is discarded at reuse).
const QUARANTINE: Duration = Duration::from_secs(1);

/// Most pairs kept bound between calls; beyond that the oldest are closed.
const MAX_IDLE: usize = 2048;

/// The relay's ports: the range as even/odd RTP/RTCP pairs, bound on
/// first use and kept bound between calls.
///
/// Why keep them: binding a pair costs four system calls and closing it
/// two more, on every call (about 4 % of the PBX's CPU per call setup).
pub(crate) struct PortPool {
    /// First even port of the range.
    base: u16,
    /// Per pair: held by a call, or bound and waiting in `idle`.
    used: Vec<bool>,
    /// Where the next search for an unbound pair starts: the range is
    /// walked round robin.
    next: usize,
    /// Pairs given back by finished calls, oldest first.
    idle: VecDeque<IdlePair>,
    /// [`QUARANTINE`], shorter in tests.
    quarantine: Duration,
}

struct IdlePair {
    port: u16,
    socks: [UdpSocket; 2],
    since: Instant,
}

impl PortPool {
    fn first_even(min: u16) -> u16 {
        min.saturating_add(min & 1)
    }

    fn new(min: u16, max: u16) -> PortPool {
        PortPool::with_quarantine(min, max, QUARANTINE)
    }

    fn with_quarantine(min: u16, max: u16, quarantine: Duration) -> PortPool {
        let base = PortPool::first_even(min);
        let pairs = (usize::from(max) + 1 - usize::from(base)) / 2;
        PortPool {
            base,
            used: vec![false; pairs],
            next: 0,
            idle: VecDeque::new(),
            quarantine,
        }
    }

    /// A pair for a new call: returns the RTP port and both sockets
    /// (non-blocking). A pair given back more than [`QUARANTINE`] ago comes
    /// first, then a newly bound one (pairs another process holds are
    /// skipped), and only when the range is used up one still resting.
    fn take(&mut self, ip: IpAddr) -> Result<(u16, [UdpSocket; 2]), MediaError> {
        if self.idle.front().is_some_and(|p| p.since.elapsed() >= self.quarantine) {
            return Ok(self.reuse());
        }
        match self.bind_free(ip) {
            Err(MediaError::NoPorts { .. }) if !self.idle.is_empty() => Ok(self.reuse()),
            other => other,
        }
    }

    /// The oldest idle pair, emptied of what arrived while it rested.
    fn reuse(&mut self) -> (u16, [UdpSocket; 2]) {
        let p = self.idle.pop_front().expect("caller checked idle is not empty");
        let mut scratch = [0u8; 2048];
        for s in &p.socks {
            while s.recv_from(&mut scratch).is_ok() {}
        }
        (p.port, p.socks)
    }

    fn bind_free(&mut self, ip: IpAddr) -> Result<(u16, [UdpSocket; 2]), MediaError> {
        let pairs = self.used.len();
        for _ in 0..pairs {
            let k = self.next;
            self.next = (k + 1) % pairs;
            if self.used[k] {
                continue;
            }
            let port = self.base + 2 * k as u16;
            let rtp = match bind(ip, port) {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(source) => return Err(bind_error(ip, port, source)),
            };
            let rtcp = match bind(ip, port + 1) {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(source) => return Err(bind_error(ip, port + 1, source)),
            };
            self.used[k] = true;
            return Ok((port, [rtp, rtcp]));
        }
        Err(MediaError::NoPorts { min: 0, max: 0 })
    }

    /// A finished call's pair, still bound, for a later call.
    pub(crate) fn give_back(&mut self, port: u16, socks: [UdpSocket; 2]) {
        self.idle.push_back(IdlePair {
            port,
            socks,
            since: Instant::now(),
        });
        if self.idle.len() > MAX_IDLE
            && let Some(old) = self.idle.pop_front()
        {
            self.release(old.port);
        }
    }

    /// Frees a pair whose sockets are closed (dropped).
    fn release(&mut self, port: u16) {
        if let Some(u) = port
            .checked_sub(self.base)
            .and_then(|d| self.used.get_mut(usize::from(d / 2)))
        {
            *u = false;
        }
    }
}

fn bind(ip: IpAddr, port: u16) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind(SocketAddr::new(ip, port))?;
    s.set_nonblocking(true)?;
    Ok(s)
}

fn bind_error(ip: IpAddr, port: u16, source: io::Error) -> MediaError {
    MediaError::Bind {
        addr: SocketAddr::new(ip, port),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated() {
        let bad = |c: RelayConfig| Relay::start(c).map(drop).unwrap_err();
        assert!(matches!(
            bad(RelayConfig {
                port_min: 3001,
                port_max: 3001,
                ..RelayConfig::default()
            }),
            MediaError::Config(_)
        ));
        assert!(matches!(
            bad(RelayConfig {
                workers: 0,
                ..RelayConfig::default()
            }),
            MediaError::Config(_)
        ));
        assert!(matches!(
            bad(RelayConfig {
                media_timeout: Duration::ZERO,
                ..RelayConfig::default()
            }),
            MediaError::Config(_)
        ));
    }

    #[test]
    fn pool_skips_busy_ports_and_reports_exhaustion() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        // Find a free even port with its neighbours, hold its RTCP port.
        let (port, busy) = loop {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            let p = s.local_addr().unwrap().port();
            if p.is_multiple_of(2)
                && p < 65000
                && let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", p + 1))
            {
                drop(s);
                break (p, rtcp);
            }
        };
        let mut pool = PortPool::new(port - 1, port + 3);
        let (got, socks) = pool.take(ip).unwrap();
        assert_eq!(got, port + 2, "the pair with a busy RTCP port is skipped");
        assert!(matches!(pool.take(ip), Err(MediaError::NoPorts { .. })));
        drop(busy);
        let (again, _s2) = pool.take(ip).unwrap();
        assert_eq!(again, port);
        drop(socks);
        pool.release(port + 2);
        assert_eq!(pool.take(ip).unwrap().0, port + 2);
    }

    #[test]
    fn given_back_pairs_rest_then_are_reused_emptied() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let free_block = |quarantine| {
            (0..50)
                .find_map(|i| {
                    let min = 44000 + 8 * i;
                    let mut pool = PortPool::with_quarantine(min, min + 3, quarantine);
                    let a = pool.take(ip).ok()?;
                    let b = pool.take(ip).ok()?;
                    Some((pool, a, b))
                })
                .expect("a free block of 4 ports")
        };
        // Resting pairs are used only once the range is used up.
        let (mut pool, (pa, sa), (pb, sb)) = free_block(Duration::from_secs(3600));
        pool.give_back(pa, sa);
        let (again, sa) = pool.take(ip).unwrap();
        assert_eq!(again, pa, "the range is used up: the resting pair is reused");
        pool.give_back(pb, sb);
        pool.give_back(again, sa);
        assert_eq!(pool.take(ip).unwrap().0, pb, "oldest first");

        // Past the quarantine a pair is reused before anything is bound,
        // and what arrived while it rested is gone.
        let (mut pool, (pa, sa), (pb, sb)) = free_block(Duration::ZERO);
        drop((pb, sb));
        let late = UdpSocket::bind("127.0.0.1:0").unwrap();
        late.send_to(b"late packet", (ip, pa)).unwrap();
        // Wait until it is queued (a zero-timeout peek would race).
        sa[0].set_nonblocking(false).unwrap();
        let mut peek = [0u8; 16];
        assert_eq!(sa[0].peek(&mut peek).unwrap(), 11);
        sa[0].set_nonblocking(true).unwrap();
        pool.give_back(pa, sa);
        let (again, sa) = pool.take(ip).unwrap();
        assert_eq!(again, pa);
        assert!(sa[0].recv(&mut peek).is_err(), "emptied at reuse");
    }

    #[test]
    fn allocation_failure_is_typed() {
        let relay = Relay::start(RelayConfig {
            bind_ip: "192.0.2.1".parse().unwrap(), // not a local address
            ..RelayConfig::default()
        })
        .unwrap();
        assert!(matches!(relay.allocate("x"), Err(MediaError::Bind { .. })));
    }
}
