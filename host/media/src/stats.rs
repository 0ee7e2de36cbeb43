//! Statistics: the public snapshots and the atomic counters behind them.
//!
//! Each counter has exactly one writer, the worker thread that owns the
//! call, so an increment is a relaxed load and store (no locked
//! read-modify-write on the packet path); any thread may read a snapshot
//! at any time. The control-side counters of [`RelayCounters`] (calls,
//! port exhaustion) have many writers and use `fetch_add`.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::Side;

/// Counters of one leg of a call, as seen from the relay.
///
/// "In" is what the leg's phone sent us and we accepted (authenticated
/// SRTP, or well-formed RTP on a plain leg, from the latched source);
/// "out" is what we sent to the leg's phone. Bytes are datagram sizes on
/// the wire (with SRTP tags). Drops are counted on the leg the packet
/// came from, except `dropped_out`, counted on the leg it was going to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LegStats {
    /// RTP packets accepted from this leg.
    pub packets_in: u64,
    /// RTCP packets accepted from this leg.
    pub rtcp_packets_in: u64,
    /// Bytes of the accepted RTP and RTCP datagrams.
    pub bytes_in: u64,
    /// RTP packets sent to this leg.
    pub packets_out: u64,
    /// RTCP packets sent to this leg.
    pub rtcp_packets_out: u64,
    /// Bytes of the RTP and RTCP datagrams sent to this leg.
    pub bytes_out: u64,
    /// Packets whose SRTP/SRTCP authentication failed (wrong key, forged
    /// or corrupted, unknown MKI, unencrypted SRTCP where encryption was
    /// negotiated).
    pub auth_failures: u64,
    /// SRTP/SRTCP packets refused by the replay window (replayed or too old).
    pub replays: u64,
    /// Packets from an address other than the latched one.
    pub wrong_source: u64,
    /// Datagrams that are not RTP/RTCP (too short, wrong version,
    /// inconsistent lengths, too large, RTCP on a port where it is not
    /// expected).
    pub malformed: u64,
    /// Packets that arrived before both legs were configured.
    pub not_ready: u64,
    /// Packets for this leg that could not be sent: no destination known
    /// yet, SRTP protection refused, or the socket buffer was full.
    pub dropped_out: u64,
    /// RTP sequence numbers skipped in what this leg sent (forward jumps
    /// of up to 1000; reordered packets are not credited back).
    pub sequence_gaps: u64,
    /// The RTP source address latched for this leg, if any (also the
    /// RTCP source when `rtcp-mux` is in use).
    pub latched_rtp: Option<SocketAddr>,
    /// The RTCP source address latched for this leg (separate port only).
    pub latched_rtcp: Option<SocketAddr>,
}

/// Counters of one call: both legs, and the recording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallStats {
    /// Leg A, the caller's.
    pub a: LegStats,
    /// Leg B, the callee's.
    pub b: LegStats,
    /// Audio frames the recording lost because the recorder fell behind
    /// (its queue was full), came too late to place, or were too large.
    pub recording_dropped: u64,
}

impl CallStats {
    /// The counters of one leg.
    pub fn leg(&self, side: Side) -> &LegStats {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }
}

/// Relay-wide counters, summed over all workers and calls (closed calls
/// included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayCounters {
    /// Calls allocated and not yet closed.
    pub calls_active: u64,
    /// Calls allocated since start.
    pub calls_total: u64,
    /// `allocate` calls that found no free port pair.
    pub port_exhaustion: u64,
    /// RTP and RTCP packets sent on to the other leg.
    pub packets_relayed: u64,
    /// Bytes of those packets, as sent.
    pub bytes_relayed: u64,
    /// Drops before both legs were configured.
    pub dropped_not_ready: u64,
    /// Drops of datagrams that are not RTP/RTCP.
    pub dropped_malformed: u64,
    /// Drops for failed SRTP/SRTCP authentication.
    pub dropped_auth: u64,
    /// Drops by the replay window.
    pub dropped_replay: u64,
    /// Drops of packets from a source other than the latched one.
    pub dropped_wrong_source: u64,
    /// Drops on the way out (no destination, protection refused, socket
    /// buffer full).
    pub dropped_out: u64,
    /// Recording frames lost (recorder queue full, too late, too large).
    pub recording_dropped: u64,
    /// Calls whose media timed out.
    pub media_timeouts: u64,
}

/// Adds `n` to a counter that only the calling thread writes.
#[inline]
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Index of a leg counter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum L {
    PacketsIn,
    RtcpIn,
    BytesIn,
    PacketsOut,
    RtcpOut,
    BytesOut,
    Auth,
    Replay,
    WrongSource,
    Malformed,
    NotReady,
    DroppedOut,
    SeqGaps,
}
const LEG_COUNTERS: usize = L::SeqGaps as usize + 1;

/// The live counters of one leg.
#[derive(Debug, Default)]
pub(crate) struct LegCounters {
    c: [AtomicU64; LEG_COUNTERS],
    /// Latched RTP and RTCP sources; written on latching only.
    latched: Mutex<[Option<SocketAddr>; 2]>,
}

impl LegCounters {
    #[inline]
    pub(crate) fn add(&self, k: L, n: u64) {
        bump(&self.c[k as usize], n);
    }

    pub(crate) fn set_latched(&self, rtcp: bool, addr: Option<SocketAddr>) {
        if let Ok(mut l) = self.latched.lock() {
            l[usize::from(rtcp)] = addr;
        }
    }

    pub(crate) fn snapshot(&self) -> LegStats {
        let g = |k: L| self.c[k as usize].load(Relaxed);
        let latched = self.latched.lock().map(|l| *l).unwrap_or_default();
        LegStats {
            packets_in: g(L::PacketsIn),
            rtcp_packets_in: g(L::RtcpIn),
            bytes_in: g(L::BytesIn),
            packets_out: g(L::PacketsOut),
            rtcp_packets_out: g(L::RtcpOut),
            bytes_out: g(L::BytesOut),
            auth_failures: g(L::Auth),
            replays: g(L::Replay),
            wrong_source: g(L::WrongSource),
            malformed: g(L::Malformed),
            not_ready: g(L::NotReady),
            dropped_out: g(L::DroppedOut),
            sequence_gaps: g(L::SeqGaps),
            latched_rtp: latched[0],
            latched_rtcp: latched[1],
        }
    }
}

/// Index of a worker counter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum W {
    Relayed,
    BytesRelayed,
    NotReady,
    Malformed,
    Auth,
    Replay,
    WrongSource,
    DroppedOut,
    RecDropped,
    Timeouts,
}
const WORKER_COUNTERS: usize = W::Timeouts as usize + 1;

/// The counters of one worker, on their own cache lines so that workers
/// do not slow each other down.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct WorkerCounters {
    c: [AtomicU64; WORKER_COUNTERS],
}

impl WorkerCounters {
    #[inline]
    pub(crate) fn add(&self, k: W, n: u64) {
        bump(&self.c[k as usize], n);
    }

    /// Adds this worker's counters into `r`.
    pub(crate) fn sum_into(&self, r: &mut RelayCounters) {
        let g = |k: W| self.c[k as usize].load(Relaxed);
        r.packets_relayed += g(W::Relayed);
        r.bytes_relayed += g(W::BytesRelayed);
        r.dropped_not_ready += g(W::NotReady);
        r.dropped_malformed += g(W::Malformed);
        r.dropped_auth += g(W::Auth);
        r.dropped_replay += g(W::Replay);
        r.dropped_wrong_source += g(W::WrongSource);
        r.dropped_out += g(W::DroppedOut);
        r.recording_dropped += g(W::RecDropped);
        r.media_timeouts += g(W::Timeouts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reads_what_was_added() {
        let c = LegCounters::default();
        c.add(L::PacketsIn, 2);
        c.add(L::PacketsIn, 3);
        c.add(L::SeqGaps, 7);
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        c.set_latched(false, Some(a));
        let s = c.snapshot();
        assert_eq!(s.packets_in, 5);
        assert_eq!(s.sequence_gaps, 7);
        assert_eq!(s.latched_rtp, Some(a));
        assert_eq!(s.latched_rtcp, None);

        let w = WorkerCounters::default();
        w.add(W::Relayed, 4);
        w.add(W::Timeouts, 1);
        let mut r = RelayCounters::default();
        w.sum_into(&mut r);
        w.sum_into(&mut r);
        assert_eq!((r.packets_relayed, r.media_timeouts), (8, 2));
    }
}
