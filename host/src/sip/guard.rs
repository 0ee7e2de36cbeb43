//! Brute-force protection: a source address that fails authentication
//! too often is refused (`403`) for a cooling-off time, without the cost
//! of checking its credentials, and without slowing anyone else down.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per window before a source is blocked.
const MAX_FAILURES: u32 = 10;
/// The window failures are counted in.
const WINDOW: Duration = Duration::from_secs(60);
/// How long a blocked source stays blocked.
const COOL_OFF: Duration = Duration::from_secs(120);
/// Sources tracked at most (memory bound under a distributed attack).
const MAX_TRACKED: usize = 100_000;

struct Entry {
    first: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
    refused: u64,
}

/// Failure counts per source IP address.
#[derive(Default)]
pub struct Guard {
    sources: Mutex<HashMap<IpAddr, Entry>>,
}

impl Guard {
    /// Is `ip` blocked at `now`? Counts the refusal.
    pub fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let mut map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(&ip) {
            Some(e) if e.blocked_until.is_some_and(|t| t > now) => {
                e.refused += 1;
                true
            }
            _ => false,
        }
    }

    /// Record a failed authentication from `ip`; true when this failure
    /// starts a block (the caller logs once per burst).
    pub fn failed(&self, ip: IpAddr, now: Instant) -> bool {
        let mut map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            map.retain(|_, e| e.blocked_until.is_some_and(|t| t > now) || now.duration_since(e.first) < WINDOW);
            if map.len() >= MAX_TRACKED {
                return false;
            }
        }
        let e = map.entry(ip).or_insert(Entry {
            first: now,
            failures: 0,
            blocked_until: None,
            refused: 0,
        });
        if now.duration_since(e.first) > WINDOW && e.blocked_until.is_none_or(|t| t <= now) {
            e.first = now;
            e.failures = 0;
            e.blocked_until = None;
        }
        e.failures += 1;
        if e.failures >= MAX_FAILURES && e.blocked_until.is_none_or(|t| t <= now) {
            e.blocked_until = Some(now + COOL_OFF);
            e.refused = 0;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_repeated_failures_then_cools_off() {
        let g = Guard::default();
        let (bad, good): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        let started: Vec<bool> = (0..MAX_FAILURES).map(|_| g.failed(bad, t0)).collect();
        assert_eq!(started.iter().filter(|b| **b).count(), 1);
        assert!(g.is_blocked(bad, t0));
        assert!(!g.is_blocked(good, t0));
        assert!(!g.is_blocked(bad, t0 + COOL_OFF + Duration::from_secs(1)));
    }
}
