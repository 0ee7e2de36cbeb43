//! The bench proper (Linux only: epoll, io_uring, /proc); see `../floor.rs`.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use pbx_media::sys::{self, BATCH, BUF_LEN, Batch};

const PPS_PER_STREAM: u64 = 50;
/// RTP header (12) + 20 ms of G.711 (160): the packet of issue 6.
const PACKET: usize = 172;
const RX_SOCKETS: usize = 4;
const WARMUP: Duration = Duration::from_millis(500);
const DRAIN: Duration = Duration::from_millis(200);
const RELAY_CORE: usize = 0;
const GEN_CORE: usize = 1;
/// The `bare` relay's sweep period: one packet period of a stream.
const SWEEP: Duration = Duration::from_millis(1000 / PPS_PER_STREAM);
/// How long a waiting relay sleeps at most before it looks at the stop flag.
const WAIT_MS: i32 = 50;
/// Descriptors kept aside for everything that is not a stream's socket.
const SPARE_FDS: u64 = 64;
const STREAM_COUNTS: [usize; 4] = [100, 500, 1000, 2000];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Bare,
    Bare1Pair,
    Epoll,
    EpollConn,
    Uring,
    UringConn,
    UringMulti,
}

const VARIANTS: [Variant; 7] = [
    Variant::Bare,
    Variant::Bare1Pair,
    Variant::Epoll,
    Variant::EpollConn,
    Variant::Uring,
    Variant::UringConn,
    Variant::UringMulti,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::Bare1Pair => "bare-1pair",
            Variant::Epoll => "epoll",
            Variant::EpollConn => "epoll-conn",
            Variant::Uring => "uring",
            Variant::UringConn => "uring-conn",
            Variant::UringMulti => "uring-multi",
        }
    }

    fn connected(self) -> bool {
        matches!(self, Variant::EpollConn | Variant::UringConn)
    }

    fn pairs(self, streams: usize) -> usize {
        if self == Variant::Bare1Pair { 1 } else { streams }
    }
}

// ---------------------------------------------------------------------------
// Sockets

/// The relay's sockets: A_i receives from the generator, B_i sends to
/// `dest[i]` (a generator receive socket).
struct Pairs {
    a: Vec<UdpSocket>,
    b: Vec<UdpSocket>,
    dest: Vec<libc::sockaddr_in>,
    connected: bool,
}

fn sockaddr_in(addr: SocketAddr) -> io::Result<libc::sockaddr_in> {
    let SocketAddr::V4(a) = addr else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "IPv4 only"));
    };
    // SAFETY: all-zero is a valid sockaddr_in.
    let mut s: libc::sockaddr_in = unsafe { zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = a.port().to_be();
    s.sin_addr = libc::in_addr {
        s_addr: u32::from_ne_bytes(a.ip().octets()),
    };
    Ok(s)
}

fn udp(buffers: Option<usize>) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.set_nonblocking(true)?;
    if let Some(bytes) = buffers {
        // Best effort: without it the generator or a 1-pair relay may drop.
        let _ = sys::set_socket_buffers(s.as_raw_fd(), bytes);
    }
    Ok(s)
}

impl Pairs {
    fn new(n: usize, rx: &[UdpSocket], connected: bool) -> io::Result<Pairs> {
        // One pair carrying every stream needs room for a sweep's packets.
        let buffers = (n == 1).then_some(16 << 20);
        let mut p = Pairs {
            a: Vec::with_capacity(n),
            b: Vec::with_capacity(n),
            dest: Vec::with_capacity(n),
            connected,
        };
        for i in 0..n {
            let to = rx[i % rx.len()].local_addr()?;
            let a = udp(buffers)?;
            let b = udp(buffers)?;
            if connected {
                b.connect(to)?;
            }
            p.a.push(a);
            p.b.push(b);
            p.dest.push(sockaddr_in(to)?);
        }
        Ok(p)
    }

    fn a_fds(&self) -> Vec<RawFd> {
        self.a.iter().map(|s| s.as_raw_fd()).collect()
    }

    fn b_fds(&self) -> Vec<RawFd> {
        self.b.iter().map(|s| s.as_raw_fd()).collect()
    }

    /// B_i's destination for an unconnected send; `None` when connected.
    fn dest(&self, i: usize) -> Option<&libc::sockaddr_in> {
        (!self.connected).then(|| &self.dest[i])
    }
}

// ---------------------------------------------------------------------------
// What the relay thread shares with the generator

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Packets sent on by the relay.
    pkts: AtomicU64,
    /// Sweeps (`bare`), or waits that returned work.
    wakes: AtomicU64,
    /// `bare`: socket visits, and visits that found nothing.
    visits: AtomicU64,
    empty: AtomicU64,
}

/// The relay's own counts, published with plain stores (one writer).
#[derive(Default)]
struct Local {
    pkts: u64,
    wakes: u64,
    visits: u64,
    empty: u64,
}

impl Local {
    fn publish(&self, sh: &Shared) {
        sh.pkts.store(self.pkts, Ordering::Relaxed);
        sh.wakes.store(self.wakes, Ordering::Relaxed);
        sh.visits.store(self.visits, Ordering::Relaxed);
        sh.empty.store(self.empty, Ordering::Relaxed);
    }
}

enum Msg {
    Ready(libc::pid_t),
    Failed(String),
    Done,
}

// ---------------------------------------------------------------------------
// recvmmsg + sendmmsg with no source address and an optional destination

/// `BATCH` buffers with receive and send headers pointing into them. Holds
/// raw pointers into its own heap allocations (which never move), so it is
/// neither `Send` nor `Sync`: the relay thread builds its own.
struct Mmsg {
    _bufs: Vec<[u8; BUF_LEN]>,
    riov: Vec<libc::iovec>,
    siov: Vec<libc::iovec>,
    rhdr: Vec<libc::mmsghdr>,
    shdr: Vec<libc::mmsghdr>,
}

impl Mmsg {
    fn new() -> Mmsg {
        let mut bufs = vec![[0u8; BUF_LEN]; BATCH];
        let base: Vec<*mut libc::c_void> = bufs.iter_mut().map(|b| b.as_mut_ptr().cast()).collect();
        let iov = |i: usize| libc::iovec {
            iov_base: base[i],
            iov_len: BUF_LEN,
        };
        let mut m = Mmsg {
            riov: (0..BATCH).map(iov).collect(),
            siov: (0..BATCH).map(iov).collect(),
            // SAFETY: mmsghdr is a C struct of integers and pointers, for
            // which all-zero is valid (null pointers, zero lengths).
            rhdr: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            // SAFETY: as above.
            shdr: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            _bufs: bufs,
        };
        for i in 0..BATCH {
            m.rhdr[i].msg_hdr.msg_iov = ptr::from_mut(&mut m.riov[i]);
            m.rhdr[i].msg_hdr.msg_iovlen = 1;
            m.shdr[i].msg_hdr.msg_iov = ptr::from_mut(&mut m.siov[i]);
            m.shdr[i].msg_hdr.msg_iovlen = 1;
        }
        m
    }

    /// Receives up to `BATCH` datagrams from `a` without waiting and sends
    /// them from `b` to `dest` (or to `b`'s peer). Returns (received, sent).
    fn forward(&mut self, a: RawFd, b: RawFd, dest: Option<&libc::sockaddr_in>) -> io::Result<(usize, usize)> {
        let n = loop {
            // SAFETY: rhdr[i] points at riov[i] (msg_iovlen 1), which points
            // at a BUF_LEN buffer; all owned by `self` and alive across the
            // call. No name is asked for (msg_name is null).
            let n = unsafe {
                libc::recvmmsg(
                    a,
                    self.rhdr.as_mut_ptr(),
                    BATCH as _,
                    libc::MSG_DONTWAIT as _,
                    ptr::null_mut(),
                )
            };
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok((0, 0)),
                _ => return Err(e),
            }
        };
        let (name, namelen) = match dest {
            Some(d) => (
                ptr::from_ref(d).cast_mut().cast::<libc::c_void>(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ),
            None => (ptr::null_mut(), 0),
        };
        for i in 0..n {
            self.siov[i].iov_len = self.rhdr[i].msg_len as usize;
            let h = &mut self.shdr[i].msg_hdr;
            h.msg_name = name;
            h.msg_namelen = namelen;
        }
        let mut at = 0;
        while at < n {
            // SAFETY: shdr[at..n] point at siov entries (into the buffers
            // just received into, within their lengths) and at `dest`, which
            // outlives the call; the kernel only reads them (and msg_len).
            let r = unsafe { libc::sendmmsg(b, self.shdr[at..].as_mut_ptr(), (n - at) as _, libc::MSG_DONTWAIT as _) };
            if r > 0 {
                at += r as usize;
            } else if r == 0 {
                break;
            } else if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            } else {
                // Full buffer or a refusal: this datagram is lost.
                return Ok((n, at));
            }
        }
        Ok((n, at))
    }
}

// ---------------------------------------------------------------------------
// Relay loops

fn bare(p: &Pairs, sh: &Shared, ready: &dyn Fn()) -> Result<(), String> {
    let (a, b) = (p.a_fds(), p.b_fds());
    let mut m = Mmsg::new();
    let mut l = Local::default();
    ready();
    let mut next = Instant::now();
    while !sh.stop.load(Ordering::Relaxed) {
        for i in 0..a.len() {
            l.visits += 1;
            let mut first = true;
            loop {
                let (r, s) = m.forward(a[i], b[i], p.dest(i)).map_err(|e| format!("recvmmsg: {e}"))?;
                l.pkts += s as u64;
                // A long drain must not hide its packets from a snapshot.
                sh.pkts.store(l.pkts, Ordering::Relaxed);
                if first && r == 0 {
                    l.empty += 1;
                }
                first = false;
                if r < BATCH {
                    break;
                }
            }
        }
        l.wakes += 1;
        l.publish(sh);
        next += SWEEP;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            // Behind (a sweep took longer than the period): carry on at once.
            next = now;
        }
    }
    Ok(())
}

fn epoll(p: &Pairs, sh: &Shared, ready: &dyn Fn()) -> Result<(), String> {
    let (a, b) = (p.a_fds(), p.b_fds());
    // SAFETY: plain system call; the descriptor is checked and owned below.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(format!("epoll_create1: {}", io::Error::last_os_error()));
    }
    // SAFETY: `ep` is a fresh descriptor that nothing else owns.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    for (i, &fd) in a.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: i as u64,
        };
        // SAFETY: `ev` is a valid epoll_event that lives across the call.
        if unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
            return Err(format!("epoll_ctl: {}", io::Error::last_os_error()));
        }
    }
    let mut m = Mmsg::new();
    let mut l = Local::default();
    let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
    ready();
    while !sh.stop.load(Ordering::Relaxed) {
        // SAFETY: `evs` has room for the number of events passed.
        let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), evs.as_mut_ptr(), evs.len() as i32, WAIT_MS) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("epoll_wait: {e}"));
        }
        if n == 0 {
            continue;
        }
        l.wakes += 1;
        for ev in &evs[..n as usize] {
            let i = { ev.u64 } as usize;
            loop {
                let (r, s) = m.forward(a[i], b[i], p.dest(i)).map_err(|e| format!("recvmmsg: {e}"))?;
                l.pkts += s as u64;
                // A long drain must not hide its packets from a snapshot.
                sh.pkts.store(l.pkts, Ordering::Relaxed);
                if r < BATCH {
                    break;
                }
            }
        }
        l.publish(sh);
    }
    Ok(())
}

// io_uring user_data: kind in the top two bits, buffer id in bits 32..48,
// pair index in the low 32.
const UD_RECV: u64 = 0;
const UD_SEND: u64 = 1 << 62;
const UD_MRECV: u64 = 2 << 62;
const UD_KIND: u64 = 3 << 62;
const BGID: u16 = 7;

fn ud(kind: u64, bid: u16, i: usize) -> u64 {
    kind | (u64::from(bid) << 32) | i as u64
}

/// Provided-buffer ring: page-aligned entries the kernel reads, freed on
/// drop (after the ring that uses it: see `UringState`).
struct BufRing {
    entries: *mut types::BufRingEntry,
    layout: std::alloc::Layout,
    mask: u16,
    tail: u16,
}

impl BufRing {
    fn new(entries: u16) -> Result<BufRing, String> {
        let layout = std::alloc::Layout::from_size_align(entries as usize * size_of::<types::BufRingEntry>(), 4096)
            .map_err(|e| e.to_string())?;
        // SAFETY: the layout has a non-zero size (entries ≥ 1).
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        if p.is_null() {
            return Err("cannot allocate the buffer ring".into());
        }
        Ok(BufRing {
            entries: p.cast(),
            layout,
            mask: entries - 1,
            tail: 0,
        })
    }

    /// Stages buffer `bid` (at `addr`, `len` octets); visible to the kernel
    /// after [`publish`](Self::publish).
    fn add(&mut self, bid: u16, addr: *mut u8, len: u32) {
        // SAFETY: the index is masked into the ring's `mask + 1` entries,
        // and the kernel only reads entries up to the published tail.
        let e = unsafe { &mut *self.entries.add((self.tail & self.mask) as usize) };
        e.set_addr(addr as u64);
        e.set_len(len);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lives in entry 0's reserved field, inside
        // the allocation, suitably aligned for a u16; the kernel reads it
        // concurrently, hence the atomic release store.
        unsafe {
            let t = types::BufRingEntry::tail(self.entries).cast_mut();
            (*t.cast::<AtomicU16>()).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.entries.cast(), self.layout) };
    }
}

/// The ring and the memory its requests point into. Fields drop in order:
/// the ring (cancelling its requests) before the buffers.
struct UringState {
    ring: IoUring,
    bufring: Option<BufRing>,
    bufs: Vec<u8>,
}

impl UringState {
    fn buf(&mut self, slot: usize) -> *mut u8 {
        self.bufs[slot * BUF_LEN..].as_mut_ptr()
    }

    /// Queues SQEs together (all or none), submitting first if the queue
    /// lacks room.
    fn push(&mut self, entries: &[squeue::Entry]) -> Result<(), String> {
        loop {
            // SAFETY: the buffers, sockets and addresses the entries point
            // at (`self.bufs`, the Pairs, their `dest`) outlive the ring.
            if unsafe { self.ring.submission().push_multiple(entries) }.is_ok() {
                return Ok(());
            }
            self.ring.submit().map_err(|e| format!("io_uring_enter: {e}"))?;
        }
    }
}

fn uring(p: &Pairs, sh: &Shared, ready: &dyn Fn(), multi: bool) -> Result<(), String> {
    let (a, b) = (p.a_fds(), p.b_fds());
    let n = a.len();
    let entries = ((2 * n + 64) as u32).next_power_of_two().min(32768);
    let ring = IoUring::builder().build(entries).map_err(|e| {
        format!("io_uring_setup: {e} (io_uring unavailable: kernel, sysctl kernel.io_uring_disabled or seccomp)")
    })?;
    if !ring.params().is_feature_ext_arg() {
        return Err("kernel lacks IORING_FEAT_EXT_ARG (5.11), needed for a timed wait".into());
    }
    // Multishot: enough buffers for a few packets queued per socket.
    let nbufs = if multi {
        (4 * n).next_power_of_two().clamp(256, 32768)
    } else {
        n
    };
    let mut st = UringState {
        ring,
        bufring: None,
        bufs: vec![0u8; nbufs * BUF_LEN],
    };
    if multi {
        let mut br = BufRing::new(nbufs as u16)?;
        // SAFETY: the ring memory is page-aligned, `nbufs` entries long and
        // outlives the ring (UringState's field order).
        unsafe {
            st.ring
                .submitter()
                .register_buf_ring_with_flags(br.entries as u64, nbufs as u16, BGID, 0)
        }
        .map_err(|e| format!("kernel lacks provided-buffer rings (IORING_REGISTER_PBUF_RING, 5.19): {e}"))?;
        for bid in 0..nbufs {
            br.add(bid as u16, st.buf(bid), BUF_LEN as u32);
        }
        br.publish();
        st.bufring = Some(br);
    }
    let recv = |st: &mut UringState, i: usize| -> squeue::Entry {
        if multi {
            opcode::RecvMulti::new(types::Fd(a[i]), BGID)
                .build()
                .user_data(ud(UD_MRECV, 0, i))
        } else {
            opcode::Recv::new(types::Fd(a[i]), st.buf(i), BUF_LEN as u32)
                .build()
                .user_data(ud(UD_RECV, 0, i))
        }
    };
    let send = |i: usize, buf: *const u8, len: u32, bid: u16| -> squeue::Entry {
        let mut s = opcode::Send::new(types::Fd(b[i]), buf, len);
        if let Some(d) = p.dest(i) {
            s = s
                .dest_addr(ptr::from_ref(d).cast())
                .dest_addr_len(size_of::<libc::sockaddr_in>() as libc::socklen_t);
        }
        s.build().user_data(ud(UD_SEND, bid, i))
    };
    for i in 0..n {
        let e = recv(&mut st, i);
        st.push(&[e])?;
    }
    st.ring.submit().map_err(|e| format!("io_uring_enter: {e}"))?;
    let mut cqes: Vec<(u64, i32, u32)> = Vec::with_capacity(st.ring.params().cq_entries() as usize);
    cqes.extend(st.ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
    // A request the kernel does not know fails at once.
    if let Some(&(_, res, _)) = cqes.iter().find(|c| c.0 & UD_KIND != UD_SEND && c.1 == -libc::EINVAL) {
        let what = if multi {
            "multishot receive (IORING_RECV_MULTISHOT, 6.0)"
        } else {
            "IORING_OP_RECV (5.6)"
        };
        return Err(format!("kernel lacks {what}: {}", io::Error::from_raw_os_error(-res)));
    }
    let mut l = Local::default();
    let (mut recv_errors, mut send_errors, mut nobufs) = (0u64, 0u64, 0u64);
    let ts = types::Timespec::new().nsec(WAIT_MS as u32 * 1_000_000);
    let args = types::SubmitArgs::new().timespec(&ts);
    ready();
    loop {
        // A wake-up is a wait that returned received packets (a send's
        // completion is there at once, without sleeping).
        if cqes.iter().any(|c| c.0 & UD_KIND != UD_SEND) {
            l.wakes += 1;
        }
        for &(data, res, flags) in &cqes {
            let i = (data & 0xffff_ffff) as usize;
            match data & UD_KIND {
                UD_RECV => {
                    if res > 0 {
                        // Send, then (hard-linked: only once the send is
                        // done with the buffer) receive into it again.
                        let s = send(i, st.buf(i), res as u32, 0).flags(squeue::Flags::IO_HARDLINK);
                        let r = recv(&mut st, i);
                        st.push(&[s, r])?;
                    } else {
                        recv_errors += 1;
                        let r = recv(&mut st, i);
                        st.push(&[r])?;
                    }
                }
                UD_MRECV => {
                    let bid = cqueue::buffer_select(flags);
                    match bid {
                        Some(bid) if res > 0 => {
                            let buf = st.buf(bid as usize);
                            st.push(&[send(i, buf, res as u32, bid)])?;
                        }
                        Some(bid) => {
                            let buf = st.buf(bid as usize);
                            if let Some(br) = &mut st.bufring {
                                br.add(bid, buf, BUF_LEN as u32);
                            }
                        }
                        None => {}
                    }
                    if res == -libc::ENOBUFS {
                        nobufs += 1;
                    } else if res <= 0 {
                        recv_errors += 1;
                    }
                    if !cqueue::more(flags) {
                        // The multishot request ended (out of buffers, or
                        // an error): arm it again.
                        let r = recv(&mut st, i);
                        st.push(&[r])?;
                    }
                }
                _ => {
                    if res >= 0 {
                        l.pkts += 1;
                    } else if res == -libc::EINVAL {
                        return Err(format!(
                            "kernel lacks IORING_OP_SEND with a destination address (6.0): {}",
                            io::Error::from_raw_os_error(-res)
                        ));
                    } else {
                        send_errors += 1;
                    }
                    if multi {
                        let bid = (data >> 32) as u16;
                        let buf = st.buf(bid as usize);
                        if let Some(br) = &mut st.bufring {
                            br.add(bid, buf, BUF_LEN as u32);
                        }
                    }
                }
            }
        }
        if let Some(br) = &st.bufring {
            br.publish();
        }
        l.publish(sh);
        if recv_errors > 1_000_000 {
            return Err(format!("receives keep failing ({recv_errors} errors)"));
        }
        if sh.stop.load(Ordering::Relaxed) {
            break;
        }
        match st.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY)) => {}
            Err(e) => return Err(format!("io_uring_enter: {e}")),
        }
        cqes.clear();
        cqes.extend(st.ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
    }
    if send_errors + nobufs > 0 {
        eprintln!("note: {send_errors} failed sends, {nobufs} multishot receives out of buffers");
    }
    // The ring goes (cancelling the receives still armed) before its
    // buffers, by UringState's field order.
    drop(st);
    Ok(())
}

/// Starts the relay thread for `variant` over `pairs`. Its messages: Ready
/// (with its thread id) once it is waiting for packets, or Failed; then
/// Done (or Failed) after `stop`.
fn start_relay(
    variant: Variant,
    pairs: Pairs,
    sh: Arc<Shared>,
) -> io::Result<(mpsc::Receiver<Msg>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new().name("floor-relay".into()).spawn(move || {
        if let Err(e) = sys::pin_current_thread(RELAY_CORE) {
            eprintln!("note: cannot pin the relay to core {RELAY_CORE}: {e}");
        }
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let ready_tx = tx.clone();
        let ready = move || {
            let _ = ready_tx.send(Msg::Ready(tid));
        };
        let r = match variant {
            Variant::Bare | Variant::Bare1Pair => bare(&pairs, &sh, &ready),
            Variant::Epoll | Variant::EpollConn => epoll(&pairs, &sh, &ready),
            Variant::Uring | Variant::UringConn => uring(&pairs, &sh, &ready, false),
            Variant::UringMulti => uring(&pairs, &sh, &ready, true),
        };
        let _ = tx.send(match r {
            Ok(()) => Msg::Done,
            Err(e) => Msg::Failed(e),
        });
    })?;
    Ok((rx, handle))
}

// ---------------------------------------------------------------------------
// CPU time

/// Nanoseconds a task of this process has run on a CPU.
fn task_cpu_ns(tid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The relay thread's CPU time plus that of any io_uring helper threads
/// (`iou-wrk-*`, `iou-sqp-*`), which do relay work outside it.
fn relay_cpu_ns(relay_tid: libc::pid_t) -> u64 {
    let relay = relay_tid.to_string();
    let mut total = task_cpu_ns(&relay);
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            let tid = e.file_name().to_string_lossy().into_owned();
            if tid == relay {
                continue;
            }
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            if comm.starts_with("iou-") {
                total += task_cpu_ns(&tid);
            }
        }
    }
    total
}

/// Core `core`'s time not spent running anything (idle and iowait) and
/// its steal time (the hypervisor running something else), in
/// microseconds, from /proc/stat. On a tickless kernel idle time is
/// measured at idle entry and exit, not sampled by the tick (which misses
/// short bursts of work), so wall time minus both is the core's busy time.
fn core_times_us(core: usize) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let label = format!("cpu{core}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label.as_str()))?;
    // user nice system idle iowait irq softirq steal ...
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 8 {
        return None;
    }
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(((v[3] + v[4]) * 1_000_000 / hz, v[7] * 1_000_000 / hz))
}

// ---------------------------------------------------------------------------
// One run

struct Outcome {
    sent: u64,
    received: u64,
    relayed: u64,
    cpu_ns: u64,
    wall_us: u64,
    /// Core 0's busy and steal time.
    core_us: Option<(u64, u64)>,
    wakes: u64,
    visits: u64,
    empty: u64,
}

#[derive(Clone, Copy)]
struct Snapshot {
    pkts: u64,
    wakes: u64,
    visits: u64,
    empty: u64,
    cpu_ns: u64,
    core_times_us: Option<(u64, u64)>,
    at: Instant,
}

fn snapshot(sh: &Shared, tid: libc::pid_t) -> Snapshot {
    Snapshot {
        pkts: sh.pkts.load(Ordering::Relaxed),
        wakes: sh.wakes.load(Ordering::Relaxed),
        visits: sh.visits.load(Ordering::Relaxed),
        empty: sh.empty.load(Ordering::Relaxed),
        cpu_ns: relay_cpu_ns(tid),
        core_times_us: core_times_us(RELAY_CORE),
        at: Instant::now(),
    }
}

fn run(variant: Variant, streams: usize, measure: Duration) -> Result<Outcome, String> {
    let tx = udp(Some(4 << 20)).map_err(|e| format!("generator socket: {e}"))?;
    let rx: Vec<UdpSocket> = (0..RX_SOCKETS)
        .map(|_| udp(Some(8 << 20)))
        .collect::<io::Result<_>>()
        .map_err(|e| format!("generator socket: {e}"))?;
    let pairs = Pairs::new(variant.pairs(streams), &rx, variant.connected())
        .map_err(|e| format!("relay sockets: {e} (open-file limit?)"))?;
    let targets: Vec<SocketAddr> = pairs
        .a
        .iter()
        .map(|s| s.local_addr())
        .collect::<io::Result<_>>()
        .map_err(|e| e.to_string())?;

    let sh = Arc::new(Shared::default());
    let (msgs, handle) =
        start_relay(variant, pairs, sh.clone()).map_err(|e| format!("cannot start the relay thread: {e}"))?;
    let stop = |handle: std::thread::JoinHandle<()>| -> Result<(), String> {
        sh.stop.store(true, Ordering::Relaxed);
        let r = match msgs.recv_timeout(Duration::from_secs(10)) {
            Ok(Msg::Done) => Ok(()),
            Ok(Msg::Failed(e)) => Err(e),
            Ok(Msg::Ready(_)) => Err("relay thread sent Ready twice".into()),
            Err(_) => {
                // A thread stuck in the kernel: nothing safe to do but leave.
                eprintln!("error: {} relay thread did not stop within 10 s", variant.name());
                std::process::exit(2);
            }
        };
        let _ = handle.join();
        r
    };
    let tid = match msgs.recv_timeout(Duration::from_secs(30)) {
        Ok(Msg::Ready(tid)) => tid,
        Ok(Msg::Failed(e)) => {
            let _ = handle.join();
            return Err(e);
        }
        Ok(Msg::Done) => return Err("relay thread ended before it was ready".into()),
        Err(_) => {
            stop(handle)?;
            return Err("relay thread not ready within 30 s".into());
        }
    };

    let mut batch = Batch::new();
    let interval_ns = 1e9 / (PPS_PER_STREAM as f64 * streams as f64);
    let start = Instant::now();
    let (m_start, m_end) = (WARMUP, WARMUP + measure);
    let (mut g, mut sent, mut received) = (0u64, 0u64, 0u64);
    let mut s0 = None;
    let mut s1 = None;
    loop {
        let now = start.elapsed();
        if s0.is_none() && now >= m_start {
            s0 = Some(snapshot(&sh, tid));
        }
        if s1.is_none() && now >= m_end {
            s1 = Some(snapshot(&sh, tid));
        }
        if now >= m_end + DRAIN {
            break;
        }
        // Send what is due (stream g % N is due at g * interval).
        let mut queued = 0;
        while now < m_end && (g as f64 * interval_ns) as u128 <= now.as_nanos() && queued < BATCH {
            let stream = (g % streams as u64) as usize;
            let t_us = start.elapsed().as_micros() as u32;
            let b = batch.buf(queued);
            b[0] = 0x80;
            b[1] = 0;
            b[2..4].copy_from_slice(&((g / streams as u64) as u16).to_be_bytes());
            b[4..8].copy_from_slice(&t_us.to_be_bytes());
            b[8..12].copy_from_slice(&(stream as u32 + 1).to_be_bytes());
            b[12..PACKET].fill(0x55);
            batch.queue(queued, PACKET, targets[stream % targets.len()]);
            queued += 1;
            if (m_start..m_end).contains(&now) {
                sent += 1;
            }
            g += 1;
        }
        if queued > 0 {
            let failed = batch.send(tx.as_raw_fd());
            if (m_start..m_end).contains(&now) {
                sent -= u64::from(failed.count_ones());
            }
        }
        // Receive what is there.
        for s in &rx {
            loop {
                let n = batch.recv(s.as_raw_fd()).unwrap_or(0);
                for i in 0..n {
                    let p = batch.received(i);
                    if p.len < 8 {
                        continue;
                    }
                    let t = u32::from_be_bytes([p.buf[4], p.buf[5], p.buf[6], p.buf[7]]);
                    if (m_start..m_end).contains(&Duration::from_micros(u64::from(t))) {
                        received += 1;
                    }
                }
                if n < BATCH {
                    break;
                }
            }
        }
    }
    stop(handle)?;
    let (Some(s0), Some(s1)) = (s0, s1) else {
        return Err("no measurement window".into());
    };
    let wall_us = s1.at.duration_since(s0.at).as_micros() as u64;
    Ok(Outcome {
        sent,
        received,
        relayed: s1.pkts - s0.pkts,
        cpu_ns: s1.cpu_ns.saturating_sub(s0.cpu_ns),
        wall_us,
        core_us: s0.core_times_us.zip(s1.core_times_us).map(|((i0, t0), (i1, t1))| {
            let (idle, steal) = (i1.saturating_sub(i0), t1.saturating_sub(t0));
            (wall_us.saturating_sub(idle + steal), steal)
        }),
        wakes: s1.wakes - s0.wakes,
        visits: s1.visits - s0.visits,
        empty: s1.empty - s0.empty,
    })
}

fn print(variant: Variant, streams: usize, o: &Outcome) {
    let relayed = o.relayed.max(1) as f64;
    let loss = if o.sent == 0 {
        1.0
    } else {
        1.0 - o.received.min(o.sent) as f64 / o.sent as f64
    };
    let cpu_us = o.cpu_ns as f64 / 1000.0;
    let (core, steal) = match o.core_us {
        Some((busy, steal)) => (
            format!("{:.2}", busy as f64 / relayed),
            format!(
                " core0_busy={:.0}% core0_steal={:.1}%",
                100.0 * busy as f64 / o.wall_us.max(1) as f64,
                100.0 * steal as f64 / o.wall_us.max(1) as f64
            ),
        ),
        None => ("n/a".to_string(), String::new()),
    };
    let empty = if o.visits > 0 {
        format!(" empty={:.1}%", 100.0 * o.empty as f64 / o.visits as f64)
    } else {
        String::new()
    };
    println!(
        "floor {} streams={} cpu_us_per_pkt={:.2} loss={:.3}% pps={} pkts_per_wake={:.1} core0_us_per_pkt={}{}{}",
        variant.name(),
        streams,
        cpu_us / relayed,
        100.0 * loss,
        streams as u64 * PPS_PER_STREAM,
        o.relayed as f64 / o.wakes.max(1) as f64,
        core,
        steal,
        empty,
    );
    if (o.relayed as f64) < 0.9 * o.sent as f64 {
        println!(
            "# note: the relay sent on {} of {} packets in the window",
            o.relayed, o.sent
        );
    }
    if let Some((busy, _)) = o.core_us
        && busy as f64 > 1.5 * cpu_us + relayed
    {
        println!("# note: core 0 was busy with more than the relay: other load on the machine? (figures unreliable)");
    }
    if let Some((busy, _)) = o.core_us
        && busy as f64 > 0.95 * o.wall_us as f64
    {
        println!(
            "# note: core 0 saturated: the relay had no idle time left, so it batched more per wake-up than it would below saturation"
        );
    }
}

pub fn main() {
    let measure = Duration::from_secs_f64(
        std::env::var("PBX_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&s: &f64| s > 0.0 && s < 3600.0)
            .unwrap_or(2.0),
    );
    let only = std::env::var("PBX_FLOOR_ONLY").ok();
    let variants: Vec<Variant> = match &only {
        Some(name) => match VARIANTS.iter().find(|v| v.name() == name.as_str()) {
            Some(&v) => vec![v],
            None => {
                let names: Vec<&str> = VARIANTS.iter().map(|v| v.name()).collect();
                eprintln!("PBX_FLOOR_ONLY={name}: unknown variant; one of {}", names.join(", "));
                std::process::exit(2);
            }
        },
        None => VARIANTS.to_vec(),
    };
    let counts: Vec<usize> = match std::env::var("PBX_FLOOR_STREAMS") {
        Ok(s) => match s.parse() {
            Ok(n) if n > 0 => vec![n],
            _ => {
                eprintln!("PBX_FLOOR_STREAMS={s}: not a positive number");
                std::process::exit(2);
            }
        },
        Err(_) => STREAM_COUNTS.to_vec(),
    };

    // Two descriptors per stream here (A, B); four in the relay proper.
    let (max_streams, limit) = match sys::raise_nofile_limit(60_000) {
        Ok((soft, hard)) => (
            (soft.saturating_sub(SPARE_FDS) / 2) as usize,
            format!("soft {soft}, hard {hard}"),
        ),
        Err(e) => {
            println!("note: cannot read or raise the open-file limit: {e}");
            (1000, "unknown".to_string())
        }
    };
    println!(
        "# open files: {limit}: at most {max_streams} streams in this bench (2 sockets each), {} in the relay proper (4 each: RTP+RTCP per leg)",
        max_streams / 2
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        println!("note: one CPU only: generator and relay share it; figures are pessimistic");
    } else if let Err(e) = sys::pin_current_thread(GEN_CORE) {
        println!("note: cannot pin the generator to core {GEN_CORE}: {e}");
    }
    println!(
        "# floor: relay thread on core {RELAY_CORE}, generator on core {GEN_CORE}; {PACKET}-octet UDP at {PPS_PER_STREAM} pps per stream, A->B, no SRTP; {:.1} s per run; bare sweeps every {} ms",
        measure.as_secs_f64(),
        SWEEP.as_millis()
    );

    for &variant in &variants {
        for &streams in &counts {
            if variant.pairs(streams) > max_streams {
                println!(
                    "floor {} streams={streams} skipped: the open-file limit allows {max_streams} streams",
                    variant.name()
                );
                continue;
            }
            match run(variant, streams, measure) {
                Ok(o) => print(variant, streams, &o),
                Err(e) => {
                    println!("floor {} streams={streams} skipped: {e}", variant.name());
                    // A missing kernel feature is missing at every size.
                    if e.starts_with("kernel lacks") || e.starts_with("io_uring_setup") {
                        break;
                    }
                }
            }
        }
    }
}
