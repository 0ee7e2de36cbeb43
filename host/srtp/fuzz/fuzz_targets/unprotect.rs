//! Arbitrary bytes into `unprotect_rtp` / `unprotect_rtcp` of every suite.
//!
//! The first input octet picks the suite, the options and the path; the
//! rest is the packet. Besides "no panic", it checks that a rejected packet
//! leaves the buffer untouched. A genuine packet is unprotected first so
//! the stream exists and the index estimate and replay paths are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbx_srtp::{Context, MasterKey, Options, Suite};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, pkt)) = data.split_first() else {
        return;
    };
    let suite = Suite::ALL[usize::from(sel) % Suite::ALL.len()];
    let opts = Options {
        mki: (sel & 0x10 != 0).then(|| vec![0xA5, 0x5A]),
        encrypt_rtcp: sel & 0x20 == 0,
        ..Options::default()
    };
    let key = MasterKey::new(
        &[0x11; 32][..suite.key_len()],
        &[0x22; 14][..suite.salt_len()],
    )
    .unwrap();
    let mut tx = Context::new(suite, &key, opts.clone()).unwrap();
    let mut rx = Context::new(suite, &key, opts).unwrap();
    // Seed a stream so that the fuzzed SSRC 0x01020304 has state.
    let mut seed = vec![0x80, 0, 0xFF, 0xF0, 0, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9];
    tx.protect_rtp_vec(&mut seed).unwrap();
    rx.unprotect_rtp_vec(&mut seed).unwrap();

    let mut buf = pkt.to_vec();
    let r = if sel & 0x40 == 0 {
        rx.unprotect_rtp(&mut buf)
    } else {
        rx.unprotect_rtcp(&mut buf)
    };
    match r {
        Ok(n) => assert!(n <= pkt.len()),
        Err(_) => assert_eq!(buf, pkt),
    }
});
