//! Replay protection (RFC 3711 §3.3.2): a sliding bitmap of the last
//! `size` packet indices below the highest one accepted.
//!
//! [`ReplayWindow::check`] and [`ReplayWindow::accept`] are split on
//! purpose: `check` runs before authentication and changes nothing,
//! `accept` runs only once the packet authenticated. A forged packet can
//! thus never move the window or mark an index as seen.

use crate::Error;

/// Smallest window RFC 3711 allows.
pub const MIN_WINDOW: usize = 64;
/// Largest window: beyond 2^15 the RTP index estimate (§3.3.1) could no
/// longer tell "old" from "next roll-over".
pub const MAX_WINDOW: usize = 0x7FFF;

/// A replay window over 64-bit packet indices.
///
/// The bitmap is a ring of 64-bit words, at least one spare word wide, so
/// sliding forward clears whole words and never shifts (the RFC 6479
/// layout). The word count is a power of two, so a slot is a mask, not a
/// division (a 64-bit `div` costs more than the rest of a check).
#[derive(Debug, Clone)]
pub(crate) struct ReplayWindow {
    /// Highest accepted index; meaningless until `started`.
    top: u64,
    started: bool,
    size: u64,
    bits: Box<[u64]>,
}

impl ReplayWindow {
    /// A window remembering `size` indices (checked by `Options`).
    pub(crate) fn new(size: usize) -> ReplayWindow {
        let words = (size.div_ceil(64) + 1).next_power_of_two();
        ReplayWindow {
            top: 0,
            started: false,
            size: size as u64,
            bits: vec![0; words].into_boxed_slice(),
        }
    }

    /// The highest accepted index, if any packet was accepted.
    pub(crate) fn top(&self) -> Option<u64> {
        self.started.then_some(self.top)
    }

    #[inline]
    fn slot(&self, index: u64) -> (usize, u64) {
        let block = index >> 6;
        ((block & (self.bits.len() as u64 - 1)) as usize, 1u64 << (index & 63))
    }

    /// Whether `index` may be accepted: new, or inside the window and not
    /// seen yet. Changes nothing.
    #[inline]
    pub(crate) fn check(&self, index: u64) -> Result<(), Error> {
        if !self.started || index > self.top {
            return Ok(());
        }
        if self.top - index >= self.size {
            return Err(Error::TooOld);
        }
        let (w, bit) = self.slot(index);
        if self.bits[w] & bit != 0 {
            Err(Error::Replayed)
        } else {
            Ok(())
        }
    }

    /// Marks `index` as seen and slides the window if it is the new
    /// highest. Call only after `check` passed and the packet authenticated.
    #[inline]
    pub(crate) fn accept(&mut self, index: u64) {
        if !self.started {
            self.started = true;
            self.bits.fill(0);
            self.top = index;
        } else if index > self.top {
            let old_block = self.top >> 6;
            let new_block = index >> 6;
            let words = self.bits.len() as u64;
            if new_block - old_block >= words {
                self.bits.fill(0);
            } else {
                for b in old_block + 1..=new_block {
                    self.bits[(b & (words - 1)) as usize] = 0;
                }
            }
            self.top = index;
        }
        let (w, bit) = self.slot(index);
        self.bits[w] |= bit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic() {
        let mut w = ReplayWindow::new(128);
        assert_eq!(w.check(1000), Ok(()));
        w.accept(1000);
        assert_eq!(w.check(1000), Err(Error::Replayed));
        assert_eq!(w.check(999), Ok(()));
        assert_eq!(w.check(1000 - 127), Ok(()));
        assert_eq!(w.check(1000 - 128), Err(Error::TooOld));
        w.accept(999);
        assert_eq!(w.check(999), Err(Error::Replayed));
        w.accept(1001);
        assert_eq!(w.check(999), Err(Error::Replayed));
        assert_eq!(w.check(1002), Ok(()));
    }

    #[test]
    fn large_jump_clears() {
        let mut w = ReplayWindow::new(64);
        for i in 0..200 {
            w.accept(i);
        }
        w.accept(100_000);
        assert_eq!(w.check(100_000 - 63), Ok(()));
        assert_eq!(w.check(100_000 - 64), Err(Error::TooOld));
    }

    /// Compares the bitmap against a plain set model over a pseudo-random walk.
    #[test]
    fn matches_model() {
        for size in [64usize, 100, 128, 1000, 1500] {
            let mut w = ReplayWindow::new(size);
            let mut seen = std::collections::BTreeSet::new();
            let mut top: Option<u64> = None;
            let mut x: u64 = 0x1234_5678;
            let mut base = 500u64;
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                base += x % 3;
                let idx = (base + x % 40).saturating_sub((x >> 8) % (size as u64 + 50));
                let want = match top {
                    Some(t) if idx <= t && t - idx >= size as u64 => Err(Error::TooOld),
                    Some(t) if idx <= t && seen.contains(&idx) => Err(Error::Replayed),
                    _ => Ok(()),
                };
                assert_eq!(w.check(idx), want, "size {size} idx {idx} top {top:?}");
                if want.is_ok() && !x.is_multiple_of(5) {
                    w.accept(idx);
                    seen.insert(idx);
                    top = Some(top.map_or(idx, |t| t.max(idx)));
                }
            }
        }
    }
}
