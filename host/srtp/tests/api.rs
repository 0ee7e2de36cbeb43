//! Behaviour through the public API: round trips for every suite and odd
//! packet shapes, forgeries, replays, state that must not move, limits,
//! and a quick deterministic fuzz of the unprotect paths.

use pbx_srtp::{Context, Error, MasterKey, Options, Suite, transcode_rtp};

fn key(suite: Suite, seed: u8) -> MasterKey {
    let k: Vec<u8> = (0..suite.key_len())
        .map(|i| seed ^ (i as u8).wrapping_mul(29))
        .collect();
    let s: Vec<u8> = (0..suite.salt_len()).map(|i| seed.wrapping_add(i as u8 * 3)).collect();
    MasterKey::new(&k, &s).unwrap()
}

fn pair(suite: Suite, opts: Options) -> (Context, Context) {
    let k = key(suite, 0x42);
    (
        Context::new(suite, &k, opts.clone()).unwrap(),
        Context::new(suite, &k, opts).unwrap(),
    )
}

/// An RTP packet of the given shape.
fn rtp(seq: u16, ssrc: u32, payload: usize, csrcs: usize, ext_words: Option<u16>, pad: u8) -> Vec<u8> {
    let mut p = vec![0x80 | csrcs as u8, 0x60, 0, 0, 0, 0, 0x12, 0x34];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for c in 0..csrcs {
        p.extend_from_slice(&(0xC000 + c as u32).to_be_bytes());
    }
    if let Some(w) = ext_words {
        p[0] |= 0x10;
        p.extend_from_slice(&[0xBE, 0xDE]);
        p.extend_from_slice(&w.to_be_bytes());
        p.extend((0..w * 4).map(|i| i as u8));
    }
    p.extend((0..payload).map(|i| (i * 7) as u8));
    if pad > 0 {
        p[0] |= 0x20;
        p.extend(std::iter::repeat_n(0, pad as usize - 1));
        p.push(pad);
    }
    p
}

/// An RTCP RR with `blocks` report blocks.
fn rtcp(ssrc: u32, blocks: usize) -> Vec<u8> {
    let words = 1 + 6 * blocks;
    let mut p = vec![0x80 | blocks as u8, 201];
    p.extend_from_slice(&(words as u16).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..24 * blocks).map(|i| i as u8));
    p
}

fn protect(tx: &mut Context, pkt: &[u8]) -> Vec<u8> {
    let mut v = pkt.to_vec();
    tx.protect_rtp_vec(&mut v).unwrap();
    v
}

fn all_options() -> Vec<Options> {
    vec![
        Options::default(),
        Options {
            mki: Some(vec![0xA5]),
            ..Options::default()
        },
        Options {
            mki: Some(vec![1, 2, 3, 4]),
            encrypt_rtcp: false,
            ..Options::default()
        },
        Options {
            key_derivation_rate: 4,
            replay_window: 1024,
            ..Options::default()
        },
    ]
}

#[test]
fn round_trip_every_suite_and_shape() {
    for suite in Suite::ALL {
        for opts in all_options() {
            let (mut tx, mut rx) = pair(suite, opts.clone());
            let mut seq = 65_500u16;
            for payload in [0usize, 1, 15, 16, 17, 160, 1200] {
                for (csrcs, ext, pad) in [
                    (0, None, 0),
                    (15, None, 0),
                    (0, Some(0), 0),
                    (2, Some(3), 0),
                    (1, Some(1), 4),
                    (0, None, 1),
                ] {
                    let pkt = rtp(seq, 0xDEAD_BEEF, payload, csrcs, ext, pad);
                    seq = seq.wrapping_add(1);
                    let mut buf = vec![0u8; pkt.len() + 200];
                    buf[..pkt.len()].copy_from_slice(&pkt);
                    let n = tx.protect_rtp(&mut buf, pkt.len()).unwrap();
                    assert_eq!(n, pkt.len() + tx.rtp_overhead(), "{suite} {opts:?}");
                    if payload >= 4 {
                        assert_ne!(&buf[..pkt.len()], &pkt[..], "{suite}: payload not encrypted");
                    }
                    let m = rx
                        .unprotect_rtp(&mut buf[..n])
                        .unwrap_or_else(|e| panic!("{suite} {opts:?} {payload}: {e}"));
                    assert_eq!(&buf[..m], &pkt[..], "{suite} {opts:?}");
                }
            }
            assert_eq!(rx.roc(0xDEAD_BEEF), Some(1), "{suite}: sequence wrapped");
            for blocks in [0usize, 1, 2, 31] {
                let pkt = rtcp(0xDEAD_BEEF, blocks);
                let mut v = pkt.clone();
                tx.protect_rtcp_vec(&mut v).unwrap();
                assert_eq!(v.len(), pkt.len() + tx.rtcp_overhead());
                rx.unprotect_rtcp_vec(&mut v)
                    .unwrap_or_else(|e| panic!("{suite} {opts:?} rtcp: {e}"));
                assert_eq!(v, pkt);
            }
        }
    }
}

#[test]
fn forged_packets_rejected_and_change_nothing() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(suite, Options::default());
        let first = protect(&mut tx, &rtp(65_535, 7, 160, 1, Some(1), 0));
        rx.unprotect_rtp(&mut first.clone()).unwrap();
        let genuine = protect(&mut tx, &rtp(0, 7, 160, 1, Some(1), 0));
        // Flip every bit of every octet except the version bits.
        for i in 0..genuine.len() {
            for bit in 0..8 {
                if i == 0 && bit >= 6 {
                    continue;
                }
                let mut bad = genuine.clone();
                bad[i] ^= 1 << bit;
                let before = bad.clone();
                assert!(
                    rx.unprotect_rtp(&mut bad).is_err(),
                    "{suite}: flipped octet {i} bit {bit} accepted"
                );
                assert_eq!(bad, before, "{suite}: rejected packet modified");
            }
        }
        // Truncations are refused too.
        for cut in 1..genuine.len() {
            assert!(rx.unprotect_rtp(&mut genuine[..genuine.len() - cut].to_vec()).is_err());
        }
        // Nothing moved: the ROC is still 0, and no stream was created for
        // SSRCs that only forgeries carried.
        assert_eq!(rx.roc(7), Some(0), "{suite}: a forgery advanced the ROC");
        assert_eq!(rx.rtp_index(7), Some(65_535));
        assert_eq!(rx.stream_count(), 1);
        // The genuine packet still passes, with ROC 1.
        let mut g = genuine.clone();
        rx.unprotect_rtp_vec(&mut g).unwrap();
        assert_eq!(g, rtp(0, 7, 160, 1, Some(1), 0));
        assert_eq!(rx.roc(7), Some(1));
    }
}

#[test]
fn forged_first_packet_creates_no_stream() {
    let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80, Options::default());
    let mut p = protect(&mut tx, &rtp(100, 99, 20, 0, None, 0));
    let last = p.len() - 1;
    p[last] ^= 1;
    assert_eq!(rx.unprotect_rtp(&mut p.clone()), Err(Error::AuthFailed));
    assert_eq!(rx.stream_count(), 0);
    let mut r = rtcp(99, 1);
    tx.protect_rtcp_vec(&mut r).unwrap();
    r[9] ^= 0x10;
    assert_eq!(rx.unprotect_rtcp(&mut r), Err(Error::AuthFailed));
    assert_eq!(rx.stream_count(), 0);
    p[last] ^= 1;
    rx.unprotect_rtp(&mut p).unwrap();
    assert_eq!(rx.stream_count(), 1);
}

#[test]
fn replays_and_too_old_rejected() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(suite, Options::default());
        let pkts: Vec<Vec<u8>> = (0..400u16)
            .map(|s| protect(&mut tx, &rtp(s, 1, 30, 0, None, 0)))
            .collect();
        rx.unprotect_rtp(&mut pkts[0].clone()).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut pkts[0].clone()), Err(Error::Replayed));
        rx.unprotect_rtp(&mut pkts[300].clone()).unwrap();
        // 300 - 0 >= 128: too old for the window.
        assert_eq!(rx.unprotect_rtp(&mut pkts[100].clone()), Err(Error::TooOld));
        // Inside the window, out of order: accepted once.
        rx.unprotect_rtp(&mut pkts[250].clone()).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut pkts[250].clone()), Err(Error::Replayed));
        rx.unprotect_rtp(&mut pkts[173].clone()).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut pkts[172].clone()), Err(Error::TooOld));
        // A forged replay of a not-yet-seen index does not mark it.
        let mut forged = pkts[260].clone();
        let l = forged.len() - 1;
        forged[l] ^= 0x80;
        assert_eq!(rx.unprotect_rtp(&mut forged), Err(Error::AuthFailed));
        rx.unprotect_rtp(&mut pkts[260].clone()).unwrap();

        // SRTCP has its own index and window.
        let r: Vec<Vec<u8>> = (0..3)
            .map(|_| {
                let mut v = rtcp(1, 1);
                tx.protect_rtcp_vec(&mut v).unwrap();
                v
            })
            .collect();
        rx.unprotect_rtcp(&mut r[1].clone()).unwrap();
        rx.unprotect_rtcp(&mut r[0].clone()).unwrap();
        assert_eq!(rx.unprotect_rtcp(&mut r[1].clone()), Err(Error::Replayed));
        rx.unprotect_rtcp(&mut r[2].clone()).unwrap();
    }
}

#[test]
fn reordering_across_the_wrap() {
    let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80, Options::default());
    let seqs = [65_530u16, 65_531, 65_532, 65_533, 65_534, 65_535, 0, 1, 2, 3];
    let pkts: Vec<_> = seqs
        .iter()
        .map(|&s| (s, protect(&mut tx, &rtp(s, 5, 40, 0, None, 0))))
        .collect();
    for &i in &[0usize, 1, 6, 2, 3, 8, 5, 4, 7, 9] {
        let (s, p) = &pkts[i];
        let mut b = p.clone();
        rx.unprotect_rtp_vec(&mut b).unwrap_or_else(|e| panic!("seq {s}: {e}"));
        assert_eq!(b, rtp(*s, 5, 40, 0, None, 0));
    }
    assert_eq!(rx.rtp_index(5), Some(65_536 + 3));
}

#[test]
fn long_random_reordering_within_window() {
    let (mut tx, mut rx) = pair(
        Suite::AeadAes128Gcm,
        Options {
            replay_window: 256,
            ..Options::default()
        },
    );
    let n = 5000usize;
    let mut pkts: Vec<(u16, Vec<u8>)> = (0..n)
        .map(|i| {
            let s = (60_000 + i) as u16;
            (s, protect(&mut tx, &rtp(s, 9, 10, 0, None, 0)))
        })
        .collect();
    // Shuffle within blocks of 100 (displacement < 100 < window) with a
    // fixed xorshift.
    let mut x = 0x9E37_79B9u32;
    for chunk in pkts.chunks_mut(100) {
        for i in (1..chunk.len()).rev() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            chunk.swap(i, x as usize % (i + 1));
        }
    }
    for (s, p) in &pkts {
        let mut b = p.clone();
        rx.unprotect_rtp_vec(&mut b).unwrap_or_else(|e| panic!("seq {s}: {e}"));
        assert_eq!(&b[2..4], &s.to_be_bytes());
        assert_eq!(rx.unprotect_rtp(&mut p.clone()), Err(Error::Replayed));
    }
}

#[test]
fn sender_refuses_to_reuse_an_index() {
    let (mut tx, _) = pair(Suite::AesCm128HmacSha1_80, Options::default());
    protect(&mut tx, &rtp(10, 1, 10, 0, None, 0));
    let mut again = rtp(10, 1, 10, 0, None, 0);
    assert_eq!(tx.protect_rtp_vec(&mut again), Err(Error::Replayed));
    assert_eq!(again, rtp(10, 1, 10, 0, None, 0));
}

#[test]
fn unencrypted_srtcp() {
    for suite in Suite::ALL {
        let opts = Options {
            encrypt_rtcp: false,
            ..Options::default()
        };
        let (mut tx, mut rx) = pair(suite, opts);
        let pkt = rtcp(3, 1);
        let mut v = pkt.clone();
        tx.protect_rtcp_vec(&mut v).unwrap();
        assert_eq!(&v[..pkt.len()], &pkt[..], "{suite}: sent in the clear");
        // A receiver that requires encryption refuses it.
        let (_, mut strict) = pair(suite, Options::default());
        assert_eq!(strict.unprotect_rtcp(&mut v.clone()), Err(Error::UnencryptedRtcp));
        rx.unprotect_rtcp_vec(&mut v).unwrap();
        assert_eq!(v, pkt);
    }
}

#[test]
fn gcm_unencrypted_srtcp_forgery_leaves_buffer() {
    let (mut tx, mut rx) = pair(
        Suite::AeadAes256Gcm,
        Options {
            encrypt_rtcp: false,
            ..Options::default()
        },
    );
    let mut v = rtcp(3, 2);
    tx.protect_rtcp_vec(&mut v).unwrap();
    v[12] ^= 1;
    let before = v.clone();
    assert_eq!(rx.unprotect_rtcp(&mut v), Err(Error::AuthFailed));
    assert_eq!(v, before);
}

#[test]
fn key_lifetime_enforced() {
    let (mut tx, mut rx) = pair(
        Suite::AesCm128HmacSha1_32,
        Options {
            key_lifetime: Some(3),
            ..Options::default()
        },
    );
    let pkts: Vec<_> = (0..3u16)
        .map(|s| protect(&mut tx, &rtp(s, 1, 10, 0, None, 0)))
        .collect();
    assert_eq!(
        tx.protect_rtp_vec(&mut rtp(3, 1, 10, 0, None, 0)),
        Err(Error::KeyExhausted)
    );
    for p in &pkts {
        rx.unprotect_rtp(&mut p.clone()).unwrap();
    }
    // The receiver's key is used up as well.
    let (mut tx2, _) = pair(Suite::AesCm128HmacSha1_32, Options::default());
    (0..3u16).for_each(|s| drop(protect(&mut tx2, &rtp(s, 1, 10, 0, None, 0))));
    let p = protect(&mut tx2, &rtp(3, 1, 10, 0, None, 0));
    assert_eq!(rx.unprotect_rtp(&mut p.clone()), Err(Error::KeyExhausted));
}

#[test]
fn srtcp_index_exhaustion() {
    let (mut tx, _) = pair(Suite::AesCm128HmacSha1_80, Options::default());
    tx.set_next_srtcp_index(1, 0x7FFF_FFFF).unwrap();
    tx.protect_rtcp_vec(&mut rtcp(1, 0)).unwrap();
    assert_eq!(tx.protect_rtcp_vec(&mut rtcp(1, 0)), Err(Error::KeyExhausted));
}

#[test]
fn mki_checked() {
    let (mut tx, _) = pair(
        Suite::AesCm128HmacSha1_80,
        Options {
            mki: Some(vec![0, 0, 0, 1]),
            ..Options::default()
        },
    );
    let (_, mut rx) = pair(
        Suite::AesCm128HmacSha1_80,
        Options {
            mki: Some(vec![0, 0, 0, 2]),
            ..Options::default()
        },
    );
    let p = protect(&mut tx, &rtp(1, 1, 10, 0, None, 0));
    assert_eq!(rx.unprotect_rtp(&mut p.clone()), Err(Error::UnknownMki));
}

#[test]
fn ssrc_policy_and_stream_limit() {
    let (mut tx, mut rx) = pair(
        Suite::AesCm128HmacSha1_80,
        Options {
            accept_unknown_ssrc: false,
            max_streams: 2,
            ..Options::default()
        },
    );
    assert_eq!(
        tx.protect_rtp_vec(&mut rtp(1, 1, 10, 0, None, 0)),
        Err(Error::UnknownSsrc(1))
    );
    tx.add_stream(1).unwrap();
    tx.add_stream(2).unwrap();
    assert_eq!(tx.add_stream(3), Err(Error::TooManyStreams));
    let p = protect(&mut tx, &rtp(1, 1, 10, 0, None, 0));
    assert_eq!(rx.unprotect_rtp(&mut p.clone()), Err(Error::UnknownSsrc(1)));
    rx.add_stream(1).unwrap();
    rx.unprotect_rtp(&mut p.clone()).unwrap();
    assert!(rx.remove_stream(1));

    let (mut tx, mut rx) = pair(
        Suite::AesCm128HmacSha1_80,
        Options {
            max_streams: 1,
            ..Options::default()
        },
    );
    let a = protect(&mut tx, &rtp(1, 1, 10, 0, None, 0));
    assert_eq!(
        tx.protect_rtp_vec(&mut rtp(1, 2, 10, 0, None, 0)),
        Err(Error::TooManyStreams)
    );
    rx.unprotect_rtp(&mut a.clone()).unwrap();
}

#[test]
fn buffer_and_option_errors() {
    let (mut tx, _) = pair(Suite::AesCm128HmacSha1_80, Options::default());
    let pkt = rtp(1, 1, 10, 0, None, 0);
    let mut buf = pkt.clone();
    assert_eq!(
        tx.protect_rtp(&mut buf, pkt.len()),
        Err(Error::BufferTooSmall { needed: pkt.len() + 10 })
    );
    assert_eq!(
        tx.protect_rtp(&mut buf, pkt.len() + 1),
        Err(Error::BufferTooSmall { needed: pkt.len() + 1 })
    );
    let k = key(Suite::AesCm128HmacSha1_80, 1);
    for bad in [
        Options {
            replay_window: 63,
            ..Options::default()
        },
        Options {
            replay_window: 40_000,
            ..Options::default()
        },
        Options {
            key_derivation_rate: 3,
            ..Options::default()
        },
        Options {
            mki: Some(vec![]),
            ..Options::default()
        },
        Options {
            max_streams: 0,
            ..Options::default()
        },
    ] {
        assert!(matches!(
            Context::new(Suite::AesCm128HmacSha1_80, &k, bad),
            Err(Error::InvalidOption(_))
        ));
    }
    assert!(matches!(
        Context::new(Suite::AesCm256HmacSha1_80, &k, Options::default()),
        Err(Error::InvalidKeyLength(_))
    ));
}

#[test]
fn key_derivation_rate_rekeys() {
    let opts = Options {
        key_derivation_rate: 2,
        ..Options::default()
    };
    let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80, opts);
    let (_, mut no_kdr) = pair(Suite::AesCm128HmacSha1_80, Options::default());
    for s in 0..10u16 {
        let p = protect(&mut tx, &rtp(s, 1, 10, 0, None, 0));
        rx.unprotect_rtp(&mut p.clone()).unwrap();
        // Indices 0 and 1 use the keys of r = 0; later ones differ.
        assert_eq!(no_kdr.unprotect_rtp(&mut p.clone()).is_ok(), s < 2, "seq {s}");
    }
}

#[test]
fn transcoding_between_suites() {
    let ka = key(Suite::AesCm128HmacSha1_80, 1);
    let kb = key(Suite::AeadAes256Gcm, 2);
    let mut a_tx = Context::new(Suite::AesCm128HmacSha1_80, &ka, Options::default()).unwrap();
    let mut a_rx = Context::new(Suite::AesCm128HmacSha1_80, &ka, Options::default()).unwrap();
    let mut b_tx = Context::new(Suite::AeadAes256Gcm, &kb, Options::default()).unwrap();
    let mut b_rx = Context::new(Suite::AeadAes256Gcm, &kb, Options::default()).unwrap();
    for s in 0..50u16 {
        let pkt = rtp(s, 77, 160, 0, None, 0);
        let mut buf = vec![0u8; 1500];
        buf[..pkt.len()].copy_from_slice(&pkt);
        let n = a_tx.protect_rtp(&mut buf, pkt.len()).unwrap();
        let n = transcode_rtp(&mut a_rx, &mut b_tx, &mut buf, n).unwrap();
        let m = b_rx.unprotect_rtp(&mut buf[..n]).unwrap();
        assert_eq!(&buf[..m], &pkt[..]);
    }
}

#[test]
fn debug_output_has_no_key_bytes() {
    let k = MasterKey::new(&[0xAB; 16], &[0xCD; 14]).unwrap();
    let c = Context::new(Suite::AesCm128HmacSha1_80, &k, Options::default()).unwrap();
    for s in [
        format!("{c:?}"),
        format!("{k:?}"),
        format!("{:?}", pbx_srtp::kdf::kdf_iv(&[0; 14], 0, 0, 0).is_ok()),
    ] {
        assert!(!s.contains("171") && !s.contains("ab, ") && !s.contains("AB"), "{s}");
    }
}

/// A deterministic fuzz loop: random bytes and mutated genuine packets
/// into every unprotect path of every suite. Nothing may panic, and a
/// mutated packet may only pass if the mutation changed nothing.
#[test]
fn quick_fuzz_unprotect() {
    let mut x: u64 = 0x0123_4567_89AB_CDEF;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for suite in Suite::ALL {
        for opts in [
            Options::default(),
            Options {
                mki: Some(vec![9, 9]),
                encrypt_rtcp: false,
                ..Options::default()
            },
        ] {
            let (mut tx, mut rx) = pair(suite, opts);
            let mut seeds = Vec::new();
            for s in 0..20u16 {
                seeds.push((
                    true,
                    protect(
                        &mut tx,
                        &rtp(
                            s.wrapping_mul(3000),
                            1 + u32::from(s % 3),
                            (s * 37) as usize % 300,
                            (s % 4) as usize,
                            (s % 2 == 0).then_some(s % 3),
                            (s % 5) as u8,
                        ),
                    ),
                ));
                let mut r = rtcp(1 + u32::from(s % 3), (s % 4) as usize);
                tx.protect_rtcp_vec(&mut r).unwrap();
                seeds.push((false, r));
            }
            for round in 0..3000 {
                let (is_rtp, mut pkt) = if round % 4 == 0 {
                    let len = (next() % 120) as usize;
                    let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                    if len > 0 && next() % 2 == 0 {
                        p[0] = 0x80 | (p[0] & 0x3F);
                    }
                    (next() % 2 == 0, p)
                } else {
                    let (is_rtp, orig) = &seeds[(next() as usize) % seeds.len()];
                    let mut p = orig.clone();
                    let changes = 1 + next() % 4;
                    for _ in 0..changes {
                        match next() % 4 {
                            0 if !p.is_empty() => {
                                let i = next() as usize % p.len();
                                p[i] ^= 1 << (next() % 8);
                            }
                            1 if !p.is_empty() => {
                                let l = next() as usize % p.len();
                                p.truncate(l);
                            }
                            2 => p.push(next() as u8),
                            _ if !p.is_empty() => {
                                let i = next() as usize % p.len();
                                p[i] = next() as u8;
                            }
                            _ => {}
                        }
                    }
                    let unchanged = &p == orig;
                    let r = if *is_rtp {
                        rx.unprotect_rtp(&mut p.clone())
                    } else {
                        rx.unprotect_rtcp(&mut p.clone())
                    };
                    if r.is_ok() {
                        assert!(unchanged, "{suite}: mutated packet accepted");
                    }
                    continue;
                };
                let _ = if is_rtp {
                    rx.unprotect_rtp(&mut pkt)
                } else {
                    rx.unprotect_rtcp(&mut pkt)
                };
                // The plaintext side is untrusted too (the other leg sent
                // it): protect must not panic on junk either.
                let len = pkt.len();
                pkt.resize(len + (next() % 40) as usize, 0);
                let _ = if is_rtp {
                    tx.protect_rtp(&mut pkt, len)
                } else {
                    tx.protect_rtcp(&mut pkt, len)
                };
                let _ = tx.protect_rtp(&mut pkt, len + 100);
            }
        }
    }
}

#[test]
fn rekey_with_several_master_keys() {
    for suite in Suite::ALL {
        let k1 = key(suite, 1);
        let k2 = key(suite, 2);
        let opts = Options {
            mki: Some(vec![0, 1]),
            ..Options::default()
        };
        let mut tx = Context::new(suite, &k1, opts.clone()).unwrap();
        let mut rx = Context::new(suite, &k1, opts).unwrap();
        assert!(tx.add_master_key(&k2, &[0, 1], None).is_err(), "duplicate MKI");
        assert!(tx.add_master_key(&k2, &[2], None).is_err(), "MKI length");
        tx.add_master_key(&k2, &[0, 2], None).unwrap();
        rx.add_master_key(&k2, &[0, 2], Some(1000)).unwrap();
        let old = protect(&mut tx, &rtp(1, 4, 50, 0, None, 0));
        tx.use_master_key(&[0, 2]).unwrap();
        let new = protect(&mut tx, &rtp(2, 4, 50, 0, None, 0));
        let mut r = rtcp(4, 1);
        tx.protect_rtcp_vec(&mut r).unwrap();
        // The MKI names the key; both decrypt, in either order.
        rx.unprotect_rtp_vec(&mut new.clone()).unwrap();
        rx.unprotect_rtp_vec(&mut old.clone()).unwrap();
        rx.unprotect_rtcp_vec(&mut r).unwrap();
        // An MKI nobody has is refused; so is a packet whose MKI was
        // switched to the other key.
        let mut unknown = new.clone();
        let at = if suite.is_aead() {
            unknown.len() - 1
        } else {
            unknown.len() - suite.srtp_tag_len() - 1
        };
        unknown[at] = 9;
        assert_eq!(rx.unprotect_rtp(&mut unknown), Err(Error::UnknownMki));
        let mut swapped = protect(&mut tx, &rtp(3, 4, 50, 0, None, 0));
        swapped[at] = 1;
        assert_eq!(rx.unprotect_rtp(&mut swapped), Err(Error::AuthFailed));
        // Retire the old key.
        assert!(tx.remove_master_key(&[0, 2]).is_err(), "key in use");
        tx.remove_master_key(&[0, 1]).unwrap();
        // A context always has a current (sending) key, even one that
        // only receives: move it before retiring the old key.
        rx.use_master_key(&[0, 2]).unwrap();
        rx.remove_master_key(&[0, 1]).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut old.clone()), Err(Error::UnknownMki));
        let p = protect(&mut tx, &rtp(4, 4, 50, 0, None, 0));
        rx.unprotect_rtp_vec(&mut p.clone()).unwrap();
    }
    // Contexts without an MKI have exactly one key.
    let (mut tx, _) = pair(Suite::AesCm128HmacSha1_80, Options::default());
    assert!(
        tx.add_master_key(&key(Suite::AesCm128HmacSha1_80, 3), &[1], None)
            .is_err()
    );
}
