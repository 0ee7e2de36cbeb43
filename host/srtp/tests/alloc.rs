//! "Zero heap allocations per packet", measured: a counting global
//! allocator around the hot paths of every suite.
//!
//! This test binary is the only code of the crate with `unsafe`: a
//! `GlobalAlloc` impl cannot be written without it. It only forwards to
//! `System` and counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use pbx_srtp::{Context, MasterKey, Options, Suite, transcode_rtp};

struct Counting;

thread_local! {
    /// Allocations made by this thread (the test harness's own threads
    /// allocate too, and must not count).
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rtp(seq: u16, ssrc: u32, buf: &mut [u8]) -> usize {
    buf[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[12..172].fill(0x33);
    172
}

fn rtcp(ssrc: u32, buf: &mut [u8]) -> usize {
    buf[..8].copy_from_slice(&[0x81, 201, 0, 7, 0, 0, 0, 0]);
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    buf[8..32].fill(0x44);
    32
}

#[test]
fn no_allocation_per_packet() {
    for suite in Suite::ALL {
        let k = MasterKey::new(&[1; 32][..suite.key_len()], &[2; 14][..suite.salt_len()]).unwrap();
        let k2 = MasterKey::new(&[3; 32][..suite.key_len()], &[4; 14][..suite.salt_len()]).unwrap();
        let mut a_tx = Context::new(suite, &k, Options::default()).unwrap();
        let mut a_rx = Context::new(suite, &k, Options::default()).unwrap();
        let mut b_tx = Context::new(suite, &k2, Options::default()).unwrap();
        let mut b_rx = Context::new(suite, &k2, Options::default()).unwrap();
        let mut buf = [0u8; 512];
        let mut round = |seq: u16, ssrc: u32| {
            let n = rtp(seq, ssrc, &mut buf);
            let n = a_tx.protect_rtp(&mut buf, n).unwrap();
            let n = transcode_rtp(&mut a_rx, &mut b_tx, &mut buf, n).unwrap();
            b_rx.unprotect_rtp(&mut buf[..n]).unwrap();
            let n = rtcp(ssrc, &mut buf);
            let n = a_tx.protect_rtcp(&mut buf, n).unwrap();
            a_rx.unprotect_rtcp(&mut buf[..n]).unwrap();
        };
        // The first packet of each SSRC creates its streams (allowed to allocate).
        for ssrc in 1..=3 {
            round(65_000, ssrc);
        }
        let before = allocs();
        for i in 1..2000u16 {
            round(65_000u16.wrapping_add(i), 1 + u32::from(i % 3));
        }
        let after = allocs();
        assert_eq!(after - before, 0, "{suite}: allocations in the packet path");
    }
}
