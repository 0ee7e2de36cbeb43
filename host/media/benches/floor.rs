//! Kernel floor of UDP relaying on loopback: `cargo bench -p pbx-media --bench floor`.
//!
//! Issue 6 asks the media relay for at most 3.3 µs of CPU per packet
//! SRTP→SRTP and 2.4 µs RTP→RTP with 2000 concurrent streams of 50
//! packets/s (172-octet packets). This bench measures what the kernel alone
//! costs for that traffic on this machine: a relay thread that does nothing
//! but receive each packet on socket A_i and send it out of socket B_i (no
//! SRTP, no parsing, no latching, no bookkeeping). Whatever the relay
//! proper costs beyond these figures is ours; a target below them cannot be
//! met with kernel UDP sockets at all.
//!
//! Set-up as in `benches/relay.rs`: the relay thread is pinned to core 0,
//! the load generator (this thread) to core 1. The generator sends 172
//! octets per packet (an RTP-sized header carrying the send time, then
//! filler) from one socket with `sendmmsg`, 50 packets/s to each stream's A
//! socket, paced evenly; each B socket sends to one of a few generator
//! receive sockets, drained with `recvmmsg`. A packet counts as lost when it
//! was sent in the measured window and never came back.
//!
//! Variants (the relay's loop):
//! - `bare`: no waiting on sockets at all. Every 20 ms (one packet period of
//!   a stream) the relay sweeps all A sockets with a non-blocking `recvmmsg`
//!   and forwards what it got from B with `sendmmsg`, then sleeps to the
//!   next tick. Each visit finds about one packet, so this is the cost of
//!   the two system calls with no wake-up per packet: the floor.
//!   `empty=` says how many visits found nothing (their cost is included).
//! - `bare-1pair`: the same, with one socket pair carrying the whole load
//!   (same packet rate): warm caches and 32-packet batches.
//! - `epoll`: non-blocking A sockets in an edge-triggered epoll set;
//!   `epoll_wait`, then each ready socket drained with `recvmmsg` and
//!   forwarded with `sendmmsg` to the destination address (the realistic
//!   design, the one `pbx_media::Relay` uses, minus its coalescing).
//! - `epoll-conn`: the same with each B socket `connect()`ed to its
//!   destination, so its sends carry no address (and reuse the route).
//! - `uring`: io_uring, one `IORING_OP_RECV` outstanding per A socket; each
//!   completion submits a send (`IORING_OP_SEND` with the destination
//!   address) hard-linked to the socket's next receive into the same buffer.
//! - `uring-conn`: the same with connected B sockets.
//! - `uring-multi`: one multishot receive per A socket drawing buffers from a
//!   provided-buffer ring; each completion submits a send, whose completion
//!   gives the buffer back. Skipped, with a line saying why, on a kernel
//!   without multishot receive or buffer rings.
//!
//! Each run prints
//! `floor <variant> streams=N cpu_us_per_pkt=X loss=Y% pps=… pkts_per_wake=… core0_us_per_pkt=… core0_busy=…%`:
//! the CPU time of the relay thread (plus any io_uring worker threads; from
//! `/proc/self/task/<tid>/schedstat`, which on this kernel includes the
//! softirq work done in the thread's context, i.e. the loopback delivery of
//! what it sends) per packet forwarded in the measured window; the packets
//! lost; the packets forwarded per wake-up (per sweep for `bare`, per
//! `epoll_wait` or `io_uring_enter` that returned received packets
//! otherwise); and, as a cross-check, core 0's whole busy time per packet
//! and as a share of wall time (wall time less its idle and steal time from
//! `/proc/stat`, in 10 ms units, so rough at low rates; it counts anything
//! else run on core 0 too, interrupts included). A run whose core 0 is
//! saturated (busy near 100 %) gets a note: its relay batched more than an
//! unloaded one would.
//!
//! On a virtual machine whose host is shared, the same run can differ by
//! 20 % or more from one minute to the next: compare variants within one
//! run, and repeat a run before drawing a line from it.
//!
//! The open-file limit caps the streams: this bench holds 2 descriptors per
//! stream (the relay proper 4: RTP and RTCP on each leg); it prints both
//! maxima at start and skips stream counts above its own.
//!
//! `PBX_BENCH_SECONDS` sets the measured time per run (default 2; each run
//! adds 0.7 s of warm-up and drain); `PBX_FLOOR_ONLY=<variant>` and
//! `PBX_FLOOR_STREAMS=<n>` run one variant or one stream count.
//!
//! Linux only (epoll, io_uring, /proc); the code is in `floor/linux.rs`. It
//! holds unsafe code (libc system calls and io_uring buffers) that a bench
//! cannot borrow from `pbx_media::sys`; every block says why it is sound.

#![allow(unsafe_code)]

#[cfg(target_os = "linux")]
#[path = "floor/linux.rs"]
mod linux;

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
    #[cfg(not(target_os = "linux"))]
    println!("floor: Linux only (epoll, io_uring, /proc): nothing measured");
}
