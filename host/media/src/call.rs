//! One call's media as the B2BUA sees it: [`CallMedia`] and the types it
//! is configured with.
//!
//! Every method here runs on the caller's thread and reaches the call's
//! worker through its control channel. `configure`, `record` and `close`
//! wait for the worker to apply the change (one pass of its loop, well
//! under a millisecond unless it is overloaded), so when they return the
//! change is in force.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use pbx_srtp::{Context, MasterKey, Options, Suite};

use crate::MediaError;
use crate::record::{Law, RecMsg, Recording};
use crate::relay::Inner;
use crate::stats::{CallStats, LegCounters};
use crate::worker::{Crypto, Ctrl, LegSetup};

/// How long `close` waits for the recorder to finish the file.
const RECORDING_FINISH_TIMEOUT: Duration = Duration::from_secs(5);

/// A leg of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller's leg.
    A,
    /// The callee's leg.
    B,
}

impl Side {
    /// The other leg.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// The relay's local addresses for one leg: what goes into that leg's SDP
/// (`c=`/`m=` and, without `rtcp-mux`, `a=rtcp`). RTCP is always RTP + 1,
/// so `a=rtcp` may be omitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegAddrs {
    /// The RTP (and, with `rtcp-mux`, RTCP) port.
    pub rtp: SocketAddr,
    /// The RTCP port when not multiplexed.
    pub rtcp: SocketAddr,
}

/// SDES keys of one leg, from that leg's offer/answer.
///
/// `Debug` prints the suite only.
#[derive(Clone)]
pub struct LegKeys {
    /// The negotiated suite (the same both ways).
    pub suite: Suite,
    /// The key the leg's phone encrypts with: decrypts what it sends us
    /// (pbx-sdp's `SrtpParams::remote_key`).
    pub inbound: MasterKey,
    /// Our key for this leg: encrypts what we send it (pbx-sdp's
    /// `SrtpParams::local_key`).
    pub outbound: MasterKey,
    /// Options of the inbound context: the phone's MKI, key lifetime, key
    /// derivation rate, `UNENCRYPTED_SRTCP`.
    pub inbound_options: Options,
    /// Options of the outbound context.
    pub outbound_options: Options,
}

impl LegKeys {
    /// Keys with default options (no MKI, no lifetime, encrypted SRTCP).
    pub fn new(suite: Suite, inbound: MasterKey, outbound: MasterKey) -> LegKeys {
        LegKeys {
            suite,
            inbound,
            outbound,
            inbound_options: Options::default(),
            outbound_options: Options::default(),
        }
    }
}

impl fmt::Debug for LegKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// What a payload type carries, as far as recording cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// G.711 µ-law (`PCMU/8000`).
    Pcmu,
    /// G.711 A-law (`PCMA/8000`).
    Pcma,
    /// Anything else: relayed, not recorded (silence in the file).
    Other,
}

impl Codec {
    /// The codec of an SDP encoding name (`a=rtpmap`), case-insensitive.
    pub fn from_name(name: &str) -> Codec {
        if name.eq_ignore_ascii_case("PCMU") {
            Codec::Pcmu
        } else if name.eq_ignore_ascii_case("PCMA") {
            Codec::Pcma
        } else {
            Codec::Other
        }
    }
}

/// One leg's negotiated media, from its offer/answer.
#[derive(Debug, Clone, Default)]
pub struct LegConfig {
    /// The phone's RTP address from SDP: where we send until a packet
    /// from the phone latches its real address.
    pub remote_rtp: Option<SocketAddr>,
    /// The phone's RTCP address from SDP (`a=rtcp`, else RTP port + 1);
    /// unused with `rtcp_mux`.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTP and RTCP share the RTP port (RFC 5761), both ways.
    pub rtcp_mux: bool,
    /// SDES keys; `None` for plain RTP.
    pub srtp: Option<LegKeys>,
    /// Payload types as this leg's phone uses them, for recording. Empty
    /// means the static ones: 0 is PCMU, 8 is PCMA.
    pub codecs: Vec<(u8, Codec)>,
    /// The phone is not expected to send (it is held: the SDP says
    /// `sendonly` toward it, or `inactive`), so its silence does not time
    /// the call out.
    pub on_hold: bool,
}

/// State a call shares between its owner and its worker.
pub(crate) struct CallShared {
    pub(crate) legs: [LegCounters; 2],
    /// True once no packet arrived for the media timeout; reset by `configure`.
    pub(crate) timed_out: tokio::sync::watch::Sender<bool>,
    /// Frames the worker could not hand to the recorder (written by the worker).
    pub(crate) rec_dropped: AtomicU64,
    /// Frames the recorder could not place (written by the recorder).
    pub(crate) rec_late: Arc<AtomicU64>,
}

impl CallShared {
    pub(crate) fn new() -> CallShared {
        CallShared {
            legs: Default::default(),
            timed_out: tokio::sync::watch::Sender::new(false),
            rec_dropped: AtomicU64::new(0),
            rec_late: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// The media of one call: two legs, each an RTP/RTCP port pair.
///
/// Owned by the B2BUA's call. Dropping it (or [`close`](Self::close))
/// stops relaying, frees the ports, finishes the recording and logs the
/// call's statistics once.
pub struct CallMedia {
    pub(crate) relay: Arc<Inner>,
    pub(crate) worker: usize,
    pub(crate) id: u64,
    pub(crate) call_id: String,
    pub(crate) local: [LegAddrs; 2],
    pub(crate) shared: Arc<CallShared>,
    /// The keys last configured per leg: an unchanged key keeps its
    /// context (rollover counter, replay window) across re-INVITEs.
    pub(crate) keys: Mutex<[Option<LegKeys>; 2]>,
    pub(crate) recording: AtomicBool,
    pub(crate) closed: bool,
}

impl fmt::Debug for CallMedia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallMedia")
            .field("call_id", &self.call_id)
            .field("a", &self.local[0])
            .field("b", &self.local[1])
            .finish_non_exhaustive()
    }
}

impl CallMedia {
    /// The relay's addresses for one leg, to put in that leg's SDP.
    pub fn local(&self, side: Side) -> LegAddrs {
        self.local[side.index()]
    }

    /// (Re)configures one leg after its offer/answer. Until both legs are
    /// configured, packets are dropped and counted (`not_ready`).
    ///
    /// Returns without waiting for the worker (no thread round trip per
    /// call leg): the worker applies it before it reads the packets it is
    /// woken for next, and a phone only uses what was negotiated after
    /// the SDP that follows this call has reached it.
    ///
    /// On a re-INVITE: a direction whose suite, key and options are
    /// unchanged keeps its SRTP context (so its rollover counter and replay
    /// window carry on); a new key gets a fresh context, and packets still
    /// protected with the old key then fail authentication. A changed
    /// remote address forgets the leg's latched addresses, so the phone's
    /// next authenticated packet latches again. Every configure restarts the
    /// media-timeout clock.
    pub fn configure(&self, side: Side, leg: LegConfig) -> Result<(), MediaError> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let prev = &keys[side.index()];
        let srtp_err = |source| MediaError::Srtp { side, source };
        let (inbound, outbound) = match &leg.srtp {
            None => (Crypto::Plain, Crypto::Plain),
            Some(k) => {
                let same = |p: &LegKeys, inbound: bool| {
                    p.suite == k.suite
                        && if inbound {
                            same_key(&p.inbound, &k.inbound) && p.inbound_options == k.inbound_options
                        } else {
                            same_key(&p.outbound, &k.outbound) && p.outbound_options == k.outbound_options
                        }
                };
                let inbound = if prev.as_ref().is_some_and(|p| same(p, true)) {
                    Crypto::Keep
                } else {
                    let c = Context::new(k.suite, &k.inbound, k.inbound_options.clone()).map_err(srtp_err)?;
                    Crypto::Srtp(Box::new(c))
                };
                let outbound = if prev.as_ref().is_some_and(|p| same(p, false)) {
                    Crypto::Keep
                } else {
                    let c = Context::new(k.suite, &k.outbound, k.outbound_options.clone()).map_err(srtp_err)?;
                    Crypto::Srtp(Box::new(c))
                };
                (inbound, outbound)
            }
        };
        let mut codecs = [None; 128];
        if leg.codecs.is_empty() {
            codecs[0] = Some(Law::Ulaw);
            codecs[8] = Some(Law::Alaw);
        }
        for &(pt, codec) in &leg.codecs {
            if let Some(slot) = codecs.get_mut(usize::from(pt)) {
                *slot = match codec {
                    Codec::Pcmu => Some(Law::Ulaw),
                    Codec::Pcma => Some(Law::Alaw),
                    Codec::Other => None,
                };
            }
        }
        let setup = LegSetup {
            remote: [leg.remote_rtp, leg.remote_rtcp],
            rtcp_mux: leg.rtcp_mux,
            inbound,
            outbound,
            codecs,
            on_hold: leg.on_hold,
        };
        self.relay.send(
            self.worker,
            Ctrl::Configure {
                id: self.id,
                side,
                leg: Box::new(setup),
            },
        )?;
        keys[side.index()] = leg.srtp;
        // Re-armed here, not only when the worker applies it, so a caller
        // that configures and then awaits `timed_out` does not see the old
        // firing (the worker keeps its own flag until then: no double fire).
        self.shared.timed_out.send_replace(false);
        Ok(())
    }

    /// Starts recording the call to a WAV file at `path` (8 kHz, 16-bit
    /// stereo; leg A left, leg B right). G.711 payloads only; the file is
    /// written as the call goes and completed when the call is closed.
    pub fn record(&self, path: &Path) -> Result<(), MediaError> {
        if self.recording.swap(true, Relaxed) {
            return Err(MediaError::AlreadyRecording);
        }
        let started = (|| {
            let rec = Recording::create(path, self.shared.rec_late.clone(), self.relay.rec_late.clone()).map_err(
                |source| MediaError::Recording {
                    path: path.to_owned(),
                    source,
                },
            )?;
            // The recorder learns of the file before the worker sends it a
            // frame: both go through the same queue, in this order.
            self.relay
                .recorder()?
                .send(RecMsg::Start {
                    id: self.id,
                    rec: Box::new(rec),
                })
                .map_err(|_| MediaError::Stopped)?;
            let id = self.id;
            self.relay.request(self.worker, |ack| Ctrl::Record { id, ack })
        })();
        if started.is_err() {
            self.recording.store(false, Relaxed);
        }
        started
    }

    /// Whether [`record`](Self::record) started a recording.
    pub fn recording(&self) -> bool {
        self.recording.load(Relaxed)
    }

    /// The call's counters so far.
    pub fn stats(&self) -> CallStats {
        let s = &self.shared;
        CallStats {
            a: s.legs[0].snapshot(),
            b: s.legs[1].snapshot(),
            recording_dropped: s.rec_dropped.load(Relaxed) + s.rec_late.load(Relaxed),
        }
    }

    /// Resolves once a leg that should send (configured, not
    /// [`on_hold`](LegConfig::on_hold)) has had no packet accepted for the
    /// relay's `media_timeout`: a phone that died or lost its network
    /// ends the call even while the other phone keeps talking.
    ///
    /// A leg's clock starts when it is configured (never before: a call
    /// still ringing does not time out) and restarts at every accepted
    /// RTP or RTCP packet from it (authenticated, from the latched source;
    /// garbage does not keep a call alive); every `configure` restarts
    /// both legs' clocks.
    /// Once it has fired it stays resolved until the next `configure`.
    /// Cancel-safe; checked every `media_timeout / 8` (10 ms to 250 ms).
    pub async fn timed_out(&self) {
        let mut rx = self.shared.timed_out.subscribe();
        // The sender lives in `self.shared`, so this only returns when the
        // flag is set.
        let _ = rx.wait_for(|fired| *fired).await;
    }

    /// Stops the call's media and returns its final counters: the worker
    /// forgets the call, the recording is completed (this waits for the
    /// recorder, up to 5 s), the ports are freed and the counters logged.
    pub fn close(mut self) -> CallStats {
        self.shutdown(true)
    }

    fn shutdown(&mut self, wait_for_recording: bool) -> CallStats {
        self.closed = true;
        let id = self.id;
        // After the worker's acknowledgement no frame of this call can
        // follow, so the Finish below is the recording's last message.
        let _ = self.relay.request(self.worker, |ack| Ctrl::Close {
            id,
            ack: Some(ack),
            then: None,
        });
        if self.recording.load(Relaxed) {
            let (done, finished) = mpsc::channel();
            let sent = self.relay.recorder().and_then(|r| {
                r.send(RecMsg::Finish { id, done: Some(done) })
                    .map_err(|_| MediaError::Stopped)
            });
            if sent.is_ok() && wait_for_recording {
                let _ = finished.recv_timeout(RECORDING_FINISH_TIMEOUT);
            }
        }
        // The worker gave the ports back to the pool when it forgot the call.
        self.relay.call_closed();
        self.closed_stats()
    }

    /// Like [`close`](Self::close), but returns at once instead of waiting
    /// for the worker: the worker frees the ports once it has let go of
    /// the sockets. For the B2BUA's hang-up path, which has no use for the
    /// wait. A recorded call is closed with `close`, whose return promises
    /// a finished file.
    pub fn close_detached(mut self) -> CallStats {
        if self.recording.load(Relaxed) {
            return self.close();
        }
        self.closed = true;
        // The worker gives the ports back when it forgets the call, then
        // counts the call closed.
        let relay = self.relay.clone();
        let free = move || relay.call_closed();
        let msg = Ctrl::Close {
            id: self.id,
            ack: None,
            then: Some(Box::new(free)),
        };
        if self.relay.send(self.worker, msg).is_err() {
            tracing::debug!(call_id = %self.call_id, "media worker gone; ports not returned");
        }
        self.closed_stats()
    }

    /// The final counters, logged.
    fn closed_stats(&self) -> CallStats {
        let s = self.stats();
        tracing::info!(
            call_id = %self.call_id,
            a_in = s.a.packets_in,
            a_out = s.a.packets_out,
            b_in = s.b.packets_in,
            b_out = s.b.packets_out,
            rtcp_in = s.a.rtcp_packets_in + s.b.rtcp_packets_in,
            auth_failures = s.a.auth_failures + s.b.auth_failures,
            replays = s.a.replays + s.b.replays,
            wrong_source = s.a.wrong_source + s.b.wrong_source,
            malformed = s.a.malformed + s.b.malformed,
            not_ready = s.a.not_ready + s.b.not_ready,
            dropped_out = s.a.dropped_out + s.b.dropped_out,
            gaps = s.a.sequence_gaps + s.b.sequence_gaps,
            a_latched = ?s.a.latched_rtp,
            b_latched = ?s.b.latched_rtp,
            recording_dropped = s.recording_dropped,
            "call media closed"
        );
        s
    }
}

impl Drop for CallMedia {
    fn drop(&mut self) {
        if !self.closed {
            // Do not wait for the recorder here: it completes the file on
            // its own; only `close` promises a finished file on return.
            self.shutdown(false);
        }
    }
}

/// Compares two keys. Not constant-time: both are ours, already known to
/// this process, and the result only decides whether to rebuild a context.
fn same_key(a: &MasterKey, b: &MasterKey) -> bool {
    a.key() == b.key() && a.salt() == b.salt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_debug_is_redacted() {
        let k = MasterKey::new(&[0xAB; 16], &[0xCD; 14]).unwrap();
        let keys = LegKeys::new(Suite::AesCm128HmacSha1_80, k.clone(), k);
        let s = format!("{keys:?}");
        assert!(s.contains("AesCm128HmacSha1_80"), "{s}");
        assert!(
            !s.contains("171") && !s.contains("205") && !s.to_lowercase().contains("ab, "),
            "{s}"
        );
        let cfg = LegConfig {
            srtp: Some(keys),
            ..LegConfig::default()
        };
        assert!(!format!("{cfg:?}").contains("171"));
    }

    /// The B2BUA keeps calls in tokio tasks and awaits `timed_out` there.
    #[test]
    fn handles_and_futures_are_send() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<CallMedia>();
        send_sync::<crate::Relay>();
        let relay = crate::Relay::start(crate::RelayConfig::default()).unwrap();
        if let Ok(call) = relay.allocate("x") {
            send(&call.timed_out());
        }
    }

    #[test]
    fn codec_names() {
        assert_eq!(Codec::from_name("pcmu"), Codec::Pcmu);
        assert_eq!(Codec::from_name("PCMA"), Codec::Pcma);
        assert_eq!(Codec::from_name("opus"), Codec::Other);
        assert_eq!(Side::A.other(), Side::B);
    }
}
