//! Batches: several packets through one context per call, two at a time.
//!
//! Why: the HMAC-SHA1 of one packet is a chain of dependent SHA-1 blocks
//! that runs at the SHA instructions' latency; two packets' chains
//! interleaved run at their throughput (`sha1_x2`), which on the project's
//! EPYC makes the MAC about a third cheaper per packet. A media relay gets
//! packets in batches anyway (`recvmmsg`), so it can hand them over
//! together.
//!
//! The results are exactly those of calling the one-packet methods on the
//! packets in order: the second packet of a pair is re-checked after the
//! first one committed (a duplicate of the first is then refused as a
//! replay, and an index that moved to another rollover counter gets its MAC
//! recomputed). Contexts the pairing does not cover (GCM, a key derivation
//! rate) run the one-packet methods in a loop.

use crate::context::{Begun, Checked};
use crate::{Context, Error};

/// One packet of a batch: its buffer, the length of the packet in it, and
/// the outcome of the last batch call.
///
/// For protection the buffer needs [`Context::rtp_overhead`] spare octets
/// past the packet. A packet whose outcome is an error is skipped by later
/// calls, so a failed unprotect is not forwarded by
/// [`transcode_rtp_batch`].
#[derive(Debug)]
pub struct Packet<'a> {
    buf: &'a mut [u8],
    len: usize,
    result: Result<(), Error>,
}

impl<'a> Packet<'a> {
    /// The packet `buf[..len]`, not yet processed.
    pub fn new(buf: &'a mut [u8], len: usize) -> Packet<'a> {
        Packet {
            buf,
            len,
            result: Ok(()),
        }
    }

    /// The outcome: the packet's current length, or why it was refused.
    pub fn result(&self) -> Result<usize, Error> {
        self.result.map(|()| self.len)
    }

    /// The packet's current bytes (empty after an error).
    pub fn bytes(&self) -> &[u8] {
        match self.result {
            Ok(()) => self.buf.get(..self.len).unwrap_or_default(),
            Err(_) => &[],
        }
    }

    fn pending(&self) -> bool {
        self.result.is_ok()
    }

    fn settle(&mut self, r: Result<usize, Error>) {
        match r {
            Ok(n) => self.len = n,
            Err(e) => self.result = Err(e),
        }
    }
}

impl Context {
    /// [`protect_rtp`](Self::protect_rtp) on every pending packet of
    /// `packets`, in order, two packets' MACs at a time.
    pub fn protect_rtp_batch(&mut self, packets: &mut [Packet<'_>]) {
        if !self.pairable() {
            for p in packets.iter_mut().filter(|p| p.pending()) {
                let r = self.protect_rtp(p.buf, p.len);
                p.settle(r);
            }
            return;
        }
        let mut begun: Option<(&mut Packet<'_>, Begun)> = None;
        for p in packets.iter_mut().filter(|p| p.pending()) {
            let b = match self.protect_rtp_begin(p.buf, p.len) {
                Ok(b) => b,
                Err(e) => {
                    p.result = Err(e);
                    continue;
                }
            };
            match begun.take() {
                None => begun = Some((p, b)),
                Some((q, qb)) => self.protect_pair_end(q, &qb, p, &b),
            }
        }
        if let Some((q, qb)) = begun {
            let r = self
                .rtp_cm_hmac(qb.key())
                .map(|c| c.hmac().mac(&q.buf[..qb.len], &qb.roc.to_be_bytes()));
            let r = r
                .ok_or(Error::UnknownMki)
                .and_then(|tag| self.protect_rtp_end(q.buf, &qb, &tag));
            q.settle(r);
        }
    }

    fn protect_pair_end(&self, a: &mut Packet<'_>, ab: &Begun, b: &mut Packet<'_>, bb: &Begun) {
        let (Some(ca), Some(cb)) = (self.rtp_cm_hmac(ab.key()), self.rtp_cm_hmac(bb.key())) else {
            a.result = Err(Error::UnknownMki);
            b.result = Err(Error::UnknownMki);
            return;
        };
        let (ta, tb) = ca.hmac().mac2(
            (&a.buf[..ab.len], &ab.roc.to_be_bytes()),
            cb.hmac(),
            (&b.buf[..bb.len], &bb.roc.to_be_bytes()),
        );
        let ra = self.protect_rtp_end(a.buf, ab, &ta);
        a.settle(ra);
        let rb = self.protect_rtp_end(b.buf, bb, &tb);
        b.settle(rb);
    }

    /// [`unprotect_rtp`](Self::unprotect_rtp) on every pending packet of
    /// `packets` (each exactly `buf[..len]`), in order, two packets' MACs
    /// at a time. A refused packet's bytes are left as they were.
    pub fn unprotect_rtp_batch(&mut self, packets: &mut [Packet<'_>]) {
        if !self.pairable() {
            for p in packets.iter_mut().filter(|p| p.pending()) {
                let r = match p.buf.get_mut(..p.len) {
                    Some(pkt) => self.unprotect_rtp(pkt),
                    None => Err(Error::BufferTooSmall { needed: p.len }),
                };
                p.settle(r);
            }
            return;
        }
        let mut checked: Option<(&mut Packet<'_>, Checked)> = None;
        for p in packets.iter_mut().filter(|p| p.pending()) {
            let c = match p.buf.get(..p.len).ok_or(Error::BufferTooSmall { needed: p.len }) {
                Ok(pkt) => self.unprotect_rtp_check(pkt),
                Err(e) => Err(e),
            };
            let c = match c {
                Ok(c) => c,
                Err(e) => {
                    p.result = Err(e);
                    continue;
                }
            };
            match checked.take() {
                None => checked = Some((p, c)),
                Some((q, qc)) => self.unprotect_pair(q, &qc, p, &c),
            }
        }
        if let Some((q, qc)) = checked {
            let r = self.unprotect_one(q, &qc);
            q.settle(r);
        }
    }

    fn unprotect_one(&mut self, p: &mut Packet<'_>, c: &Checked) -> Result<usize, Error> {
        let pkt = &mut p.buf[..p.len];
        let mac = self
            .rtp_cm_hmac(c.key())
            .ok_or(Error::UnknownMki)?
            .hmac()
            .mac(&pkt[..c.body_end], &c.roc().to_be_bytes());
        self.unprotect_rtp_end(pkt, c, &mac)
    }

    fn unprotect_pair(&mut self, a: &mut Packet<'_>, ac: &Checked, b: &mut Packet<'_>, bc: &Checked) {
        let (Some(ka), Some(kb)) = (self.rtp_cm_hmac(ac.key()), self.rtp_cm_hmac(bc.key())) else {
            a.result = Err(Error::UnknownMki);
            b.result = Err(Error::UnknownMki);
            return;
        };
        let (ma, mb) = ka.hmac().mac2(
            (&a.buf[..ac.body_end], &ac.roc().to_be_bytes()),
            kb.hmac(),
            (&b.buf[..bc.body_end], &bc.roc().to_be_bytes()),
        );
        let ra = self.unprotect_rtp_end(&mut a.buf[..a.len], ac, &ma);
        a.settle(ra);
        // `b` was checked against the state before `a` committed: check it
        // again, and reuse its MAC only if key and index are unchanged.
        let rb = match self.unprotect_rtp_check(&b.buf[..b.len]) {
            Ok(again) if again.same_as(bc) => self.unprotect_rtp_end(&mut b.buf[..b.len], &again, &mb),
            Ok(again) => self.unprotect_one(b, &again),
            Err(e) => Err(e),
        };
        b.settle(rb);
    }
}

/// [`transcode_rtp`](crate::transcode_rtp) for a batch: unprotects every
/// pending packet with `inbound`, then protects the ones that passed with
/// `outbound`, each step two MACs at a time. Each buffer needs
/// `outbound.rtp_overhead()` spare octets past its RTP packet.
pub fn transcode_rtp_batch(inbound: &mut Context, outbound: &mut Context, packets: &mut [Packet<'_>]) {
    inbound.unprotect_rtp_batch(packets);
    outbound.protect_rtp_batch(packets);
}
