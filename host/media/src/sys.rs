//! The crate's only unsafe code, on libc: batched UDP I/O (`recvmmsg` and
//! `sendmmsg` on Linux, a `recvfrom`/`sendto` loop elsewhere), thread CPU
//! affinity and the open-file limit.
//!
//! Public but hidden from the docs because the benchmark's load generator
//! drives its sockets with the same [`Batch`]; not part of the relay's API.
//!
//! A [`Batch`] owns `BATCH` packet buffers and the C structures that point
//! into them. They live in one heap allocation that never moves, so the
//! pointers wired once in [`Batch::new`] stay valid; the type holds raw
//! pointers and is therefore neither `Send` nor `Sync`: each thread builds
//! its own.

#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::ptr;

/// Datagrams moved per system call at most.
pub const BATCH: usize = 32;
/// Size of each packet buffer.
pub const BUF_LEN: usize = 2048;
/// Largest datagram accepted; the rest of the buffer (448 octets) is room
/// for what SRTP(C) protection appends (tag, E‖index, MKI of up to 128).
pub const MAX_DATAGRAM: usize = 1600;

/// Packet buffers plus the receive and send descriptors pointing into them.
pub struct Batch {
    inner: Box<Inner>,
}

struct Inner {
    bufs: Box<[[u8; BUF_LEN]]>,
    lens: [usize; BATCH],
    from: [Option<SocketAddr>; BATCH],
    truncated: [bool; BATCH],
    rnames: [libc::sockaddr_storage; BATCH],
    riov: [libc::iovec; BATCH],
    #[cfg(target_os = "linux")]
    rhdr: [libc::mmsghdr; BATCH],
    snames: [libc::sockaddr_storage; BATCH],
    snamelen: [libc::socklen_t; BATCH],
    siov: [libc::iovec; BATCH],
    #[cfg(target_os = "linux")]
    shdr: [libc::mmsghdr; BATCH],
    queued: usize,
}

/// One received datagram.
pub struct Received<'a> {
    /// The whole buffer: the datagram is `buf[..len]`, the rest is spare
    /// room for in-place protection.
    pub buf: &'a mut [u8; BUF_LEN],
    /// Datagram length.
    pub len: usize,
    /// Source address (`None` if the OS gave an address family we do not
    /// speak).
    pub from: Option<SocketAddr>,
    /// The datagram was longer than [`MAX_DATAGRAM`] and was cut.
    pub truncated: bool,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch::new()
    }
}

impl Batch {
    /// Buffers and descriptors, wired together.
    pub fn new() -> Batch {
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs of
        // integers and raw pointers, for which all-zero bytes are a valid
        // value (null pointers, zero lengths).
        let (rnames, riov, snames, siov) = unsafe { (zeroed(), zeroed(), zeroed(), zeroed()) };
        let mut inner = Box::new(Inner {
            bufs: vec![[0u8; BUF_LEN]; BATCH].into_boxed_slice(),
            lens: [0; BATCH],
            from: [None; BATCH],
            truncated: [false; BATCH],
            rnames,
            riov,
            #[cfg(target_os = "linux")]
            // SAFETY: as above.
            rhdr: unsafe { zeroed() },
            snames,
            snamelen: [0; BATCH],
            siov,
            #[cfg(target_os = "linux")]
            // SAFETY: as above.
            shdr: unsafe { zeroed() },
            queued: 0,
        });
        let s = &mut *inner;
        for i in 0..BATCH {
            s.riov[i] = libc::iovec {
                iov_base: s.bufs[i].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            #[cfg(target_os = "linux")]
            {
                let h = &mut s.rhdr[i].msg_hdr;
                h.msg_name = ptr::from_mut(&mut s.rnames[i]).cast();
                h.msg_iov = ptr::from_mut(&mut s.riov[i]);
                h.msg_iovlen = 1;
                let h = &mut s.shdr[i].msg_hdr;
                h.msg_name = ptr::from_mut(&mut s.snames[i]).cast();
                h.msg_iov = ptr::from_mut(&mut s.siov[i]);
                h.msg_iovlen = 1;
            }
        }
        Batch { inner }
    }

    /// Receives up to [`BATCH`] datagrams from the non-blocking socket
    /// `fd` without waiting. `Ok(0)` when none is queued. Fewer than
    /// `BATCH` means the socket's queue was empty at that moment, so with
    /// edge-triggered readiness no further read is needed.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        return self.recv_mmsg(fd);
        #[cfg(not(target_os = "linux"))]
        return self.recv_single(fd);
    }

    #[cfg(target_os = "linux")]
    fn recv_mmsg(&mut self, fd: RawFd) -> io::Result<usize> {
        let s = &mut *self.inner;
        for h in &mut s.rhdr {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        let n = loop {
            // SAFETY: every rhdr[i] points at rnames[i] (msg_namelen octets)
            // and riov[i], which points at bufs[i][..MAX_DATAGRAM]; all are
            // owned by `s`, live across the call and are not otherwise
            // borrowed. The kernel writes only within those lengths.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    s.rhdr.as_mut_ptr(),
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
                io::ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(e),
            }
        };
        for i in 0..n {
            let h = &s.rhdr[i];
            s.lens[i] = (h.msg_len as usize).min(MAX_DATAGRAM);
            s.truncated[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            s.from[i] = read_sockaddr(&s.rnames[i], h.msg_hdr.msg_namelen);
        }
        Ok(n)
    }

    /// The portable path: one `recvfrom` per datagram until the socket
    /// would block or the batch is full. Compiled everywhere so that the
    /// Linux tests cover it too.
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    pub(crate) fn recv_single(&mut self, fd: RawFd) -> io::Result<usize> {
        let s = &mut *self.inner;
        let mut n = 0;
        while n < BATCH {
            let mut namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: the buffer has BUF_LEN > MAX_DATAGRAM + 1 octets and
            // the address storage `namelen` octets; both are owned by `s`.
            // One more octet than MAX_DATAGRAM is asked for, to tell a cut
            // datagram.
            let r = unsafe {
                libc::recvfrom(
                    fd,
                    s.bufs[n].as_mut_ptr().cast(),
                    MAX_DATAGRAM + 1,
                    libc::MSG_DONTWAIT,
                    ptr::from_mut(&mut s.rnames[n]).cast(),
                    &mut namelen,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => break,
                    _ if n > 0 => break,
                    _ => return Err(e),
                }
            }
            let r = r as usize;
            s.lens[n] = r.min(MAX_DATAGRAM);
            s.truncated[n] = r > MAX_DATAGRAM;
            s.from[n] = read_sockaddr(&s.rnames[n], namelen);
            n += 1;
        }
        Ok(n)
    }

    /// Datagram `i` of the last [`recv`](Self::recv).
    pub fn received(&mut self, i: usize) -> Received<'_> {
        let s = &mut *self.inner;
        Received {
            buf: &mut s.bufs[i],
            len: s.lens[i],
            from: s.from[i],
            truncated: s.truncated[i],
        }
    }

    /// Buffer `i`, for writing a datagram to [`queue`](Self::queue).
    pub fn buf(&mut self, i: usize) -> &mut [u8; BUF_LEN] {
        &mut self.inner.bufs[i]
    }

    /// Queues `buf(i)[..len]` for `to`. Returns false (and queues nothing)
    /// when [`BATCH`] datagrams are already queued. The buffer must not be
    /// received into before [`send`](Self::send).
    pub fn queue(&mut self, i: usize, len: usize, to: SocketAddr) -> bool {
        let s = &mut *self.inner;
        let q = s.queued;
        if q >= BATCH || i >= BATCH || len > BUF_LEN {
            return false;
        }
        s.siov[q] = libc::iovec {
            iov_base: s.bufs[i].as_mut_ptr().cast(),
            iov_len: len,
        };
        s.snamelen[q] = write_sockaddr(&to, &mut s.snames[q]);
        s.queued = q + 1;
        true
    }

    /// Datagrams queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.inner.queued
    }

    /// Sends everything queued from the non-blocking socket `fd`, never
    /// waiting, and empties the queue. Returns a bit mask of the queue
    /// positions that were not sent (bit `q` for the `q`-th queued
    /// datagram): a full socket buffer drops the rest, any other error
    /// drops only the datagram it names.
    pub fn send(&mut self, fd: RawFd) -> u64 {
        #[cfg(target_os = "linux")]
        return self.send_mmsg(fd);
        #[cfg(not(target_os = "linux"))]
        return self.send_single(fd);
    }

    #[cfg(target_os = "linux")]
    fn send_mmsg(&mut self, fd: RawFd) -> u64 {
        let s = &mut *self.inner;
        let total = std::mem::take(&mut s.queued);
        for q in 0..total {
            s.shdr[q].msg_hdr.msg_namelen = s.snamelen[q];
            s.shdr[q].msg_len = 0;
        }
        let mut failed = 0u64;
        let mut at = 0;
        while at < total {
            // SAFETY: shdr[at..total] point at snames/siov entries filled
            // by `queue`, whose iovecs point into `bufs` within BUF_LEN;
            // all owned by `s` and alive across the call. The kernel only
            // reads them (and writes msg_len).
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    s.shdr[at..].as_mut_ptr(),
                    (total - at) as _,
                    libc::MSG_DONTWAIT as _,
                )
            };
            if n > 0 {
                at += n as usize;
                continue;
            }
            if n == 0 {
                // Nothing sent and no error: give up on this one datagram.
                failed |= 1 << at;
                at += 1;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    failed |= mask_from(at, total);
                    break;
                }
                _ => {
                    // This datagram is refused (bad address, unreachable):
                    // drop it and carry on with the next.
                    failed |= 1 << at;
                    at += 1;
                }
            }
        }
        failed
    }

    /// The portable path: one `sendto` per datagram.
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    pub(crate) fn send_single(&mut self, fd: RawFd) -> u64 {
        let s = &mut *self.inner;
        let total = std::mem::take(&mut s.queued);
        let mut failed = 0u64;
        let mut q = 0;
        while q < total {
            // SAFETY: siov[q] points into `bufs` within BUF_LEN and
            // snames[q] holds snamelen[q] octets of address, as `queue` set
            // them; all owned by `s`. The kernel only reads them.
            let r = unsafe {
                libc::sendto(
                    fd,
                    s.siov[q].iov_base,
                    s.siov[q].iov_len,
                    libc::MSG_DONTWAIT,
                    ptr::from_ref(&s.snames[q]).cast(),
                    s.snamelen[q],
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => {
                        failed |= mask_from(q, total);
                        break;
                    }
                    _ => failed |= 1 << q,
                }
            }
            q += 1;
        }
        failed
    }
}

/// Bits `from..to` set.
fn mask_from(from: usize, to: usize) -> u64 {
    let all = if to >= 64 { u64::MAX } else { (1u64 << to) - 1 };
    all & !((1u64 << from) - 1)
}

fn read_sockaddr(s: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(s.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for any sockaddr.
            let a = unsafe { &*ptr::from_ref(s).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*ptr::from_ref(s).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn write_sockaddr(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: all-zero is a valid sockaddr_in (it also zeroes the
            // BSD `sin_len` and `sin_zero`).
            let mut sin: libc::sockaddr_in = unsafe { zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            // SAFETY: sockaddr_storage is large and aligned enough for a
            // sockaddr_in; `out` is a unique reference.
            unsafe { ptr::from_mut(out).cast::<libc::sockaddr_in>().write(sin) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: all-zero is a valid sockaddr_in6.
            let mut sin6: libc::sockaddr_in6 = unsafe { zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { ptr::from_mut(out).cast::<libc::sockaddr_in6>().write(sin6) };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Sets a socket's receive and send buffer sizes (as root beyond the
/// `rmem_max`/`wmem_max` caps, with the `FORCE` options on Linux).
pub fn set_socket_buffers(fd: RawFd, bytes: usize) -> io::Result<()> {
    let v = bytes.min(i32::MAX as usize) as libc::c_int;
    #[cfg(target_os = "linux")]
    let opts = [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ];
    #[cfg(not(target_os = "linux"))]
    let opts = [(libc::SO_RCVBUF, libc::SO_RCVBUF), (libc::SO_SNDBUF, libc::SO_SNDBUF)];
    for (forced, plain) in opts {
        let set = |opt| {
            // SAFETY: `v` is a c_int that lives across the call and its
            // size is passed; setsockopt only reads it.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    ptr::from_ref(&v).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            }
        };
        if set(forced) != 0 && set(plain) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Pins the calling thread to CPU `core` (Linux; elsewhere unsupported).
pub fn pin_current_thread(core: usize) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { zeroed() };
        if core >= 8 * size_of::<libc::cpu_set_t>() {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: `core` is within the set (checked above); CPU_SET writes
        // one bit of `set`, and sched_setaffinity reads size_of bytes of it
        // for the calling thread (pid 0).
        let r = unsafe {
            libc::CPU_SET(core, &mut set);
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = core;
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Raises the open-file limit to at least `want` descriptors if it can
/// (both limits when privileged, else the soft limit up to the hard one).
/// Returns the (soft, hard) limits in force afterwards.
pub fn raise_nofile_limit(want: u64) -> io::Result<(u64, u64)> {
    // SAFETY: rlimit is two integers; getrlimit fills it.
    let mut lim: libc::rlimit = unsafe { zeroed() };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let want = want as libc::rlim_t;
    if lim.rlim_cur < want {
        let both = libc::rlimit {
            rlim_cur: want.max(lim.rlim_cur),
            rlim_max: want.max(lim.rlim_max),
        };
        let soft = libc::rlimit {
            rlim_cur: want.min(lim.rlim_max),
            rlim_max: lim.rlim_max,
        };
        // SAFETY: both point at valid rlimit values.
        let ok = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &both) } == 0
            || unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) } == 0;
        // SAFETY: as for the first getrlimit.
        if !ok || unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((lim.rlim_cur as u64, lim.rlim_max as u64))
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    use super::*;

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    /// Waits (bounded) until `sock` has a datagram queued.
    fn readable(sock: &UdpSocket) {
        sock.set_nonblocking(false).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 1];
        sock.peek_from(&mut b).unwrap();
        sock.set_nonblocking(true).unwrap();
    }

    fn round_trip(single: bool) {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let mut tx = Batch::new();
        for i in 0..5 {
            tx.buf(i)[..3].copy_from_slice(&[i as u8; 3]);
            assert!(tx.queue(i, 3 + i, to));
        }
        let failed = if single {
            tx.send_single(a.as_raw_fd())
        } else {
            tx.send(a.as_raw_fd())
        };
        assert_eq!(failed, 0);
        assert_eq!(tx.queued(), 0);
        let mut rx = Batch::new();
        let mut got = Vec::new();
        while got.len() < 5 {
            readable(&b);
            let n = if single {
                rx.recv_single(b.as_raw_fd())
            } else {
                rx.recv(b.as_raw_fd())
            }
            .unwrap();
            for i in 0..n {
                let p = rx.received(i);
                assert_eq!(p.from, Some(a.local_addr().unwrap()));
                assert!(!p.truncated);
                got.push(p.buf[..p.len].to_vec());
            }
        }
        for (i, g) in got.iter().enumerate() {
            assert_eq!(g.len(), 3 + i);
            assert_eq!(g[..3], [i as u8; 3]);
        }
        assert_eq!(rx.recv(b.as_raw_fd()).unwrap(), 0, "drained");
    }

    #[test]
    fn batched_round_trip() {
        round_trip(false);
    }

    #[test]
    fn single_round_trip() {
        round_trip(true);
    }

    #[test]
    fn oversized_datagram_is_marked_truncated() {
        let (a, b) = pair();
        a.send_to(&[0x80; MAX_DATAGRAM + 10], b.local_addr().unwrap()).unwrap();
        readable(&b);
        let mut rx = Batch::new();
        assert_eq!(rx.recv(b.as_raw_fd()).unwrap(), 1);
        let p = rx.received(0);
        assert!(p.truncated);
        assert_eq!(p.len, MAX_DATAGRAM);
    }

    #[test]
    fn queue_is_bounded_and_masks_compose() {
        let mut tx = Batch::new();
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for i in 0..BATCH {
            assert!(tx.queue(i, 1, to));
        }
        assert!(!tx.queue(0, 1, to));
        assert_eq!(mask_from(2, 4), 0b1100);
        assert_eq!(mask_from(0, 64), u64::MAX);
    }

    #[test]
    fn ipv6_addresses_round_trip() {
        let mut st: libc::sockaddr_storage = unsafe { zeroed() };
        let a: SocketAddr = "[::1]:4242".parse().unwrap();
        let n = write_sockaddr(&a, &mut st);
        assert_eq!(read_sockaddr(&st, n), Some(a));
        let a: SocketAddr = "192.0.2.1:5".parse().unwrap();
        let n = write_sockaddr(&a, &mut st);
        assert_eq!(read_sockaddr(&st, n), Some(a));
        assert_eq!(read_sockaddr(&st, 2), None);
    }
}
