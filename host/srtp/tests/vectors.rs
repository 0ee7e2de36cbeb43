//! Known-answer tests: the libsrtp-generated golden vectors (every `*.json`
//! of `$PBX_SRTP_VECTORS`, default `../shared/vectors/srtp` beside the
//! repo) and the RFC 3711 / RFC 6188 / RFC 7714 vectors in its `rfc/`.

use std::path::{Path, PathBuf};

use pbx_srtp::{Context, MasterKey, Options, SessionKeys, Suite, kdf};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    match std::env::var_os("PBX_SRTP_VECTORS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/srtp"),
    }
}

fn rfc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/srtp/rfc")
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("field {k} missing or not a string"))
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("field {k} missing or not an integer"))
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a Vec<Value> {
    v[k].as_array()
        .unwrap_or_else(|| panic!("field {k} missing or not an array"))
}

/// Runs one golden-vector file; returns (sent packets, receive steps) checked.
fn run_golden(path: &Path) -> (usize, usize) {
    let v = load(path);
    let name = path.display().to_string();
    assert_eq!(s(&v, "format"), "srtp-golden-vectors/2", "{name}");
    let suite = Suite::from_sdes_name(s(&v, "profile")).expect("known profile");
    let key = MasterKey::new(&hex(s(&v, "master_key")), &hex(s(&v, "master_salt"))).expect("key");
    assert_eq!(suite.is_aead(), v["aead"].as_bool().unwrap(), "{name}");
    assert_eq!(suite.srtp_tag_len() as u64, u(&v, "srtp_tag_len"), "{name}");
    assert_eq!(suite.srtcp_tag_len() as u64, u(&v, "srtcp_tag_len"), "{name}");
    let kdr = u(&v, "key_derivation_rate");

    // SDES inline parses to the same key.
    let kp = pbx_srtp::KeyParams::parse(suite, &format!("inline:{}", s(&v, "sdes_inline"))).expect("sdes");
    assert_eq!(kp.key.key(), key.key());
    assert_eq!(kp.key.salt(), key.salt());

    // Session keys (KDF at index 0).
    for (dir, base) in [("srtp", 0u8), ("srtcp", 3u8)] {
        let sk = &v["session_keys"][dir];
        let mut ck = vec![0; suite.key_len()];
        kdf::derive(key.key(), key.salt(), base, 0, kdr, &mut ck).unwrap();
        assert_eq!(to_hex(&ck), s(sk, "cipher_key"), "{name} {dir} cipher_key");
        let mut salt = vec![0; suite.salt_len()];
        kdf::derive(key.key(), key.salt(), base + 2, 0, kdr, &mut salt).unwrap();
        assert_eq!(to_hex(&salt), s(sk, "cipher_salt"), "{name} {dir} cipher_salt");
        if !suite.is_aead() {
            let mut ak = [0u8; 20];
            kdf::derive(key.key(), key.salt(), base + 1, 0, kdr, &mut ak).unwrap();
            assert_eq!(to_hex(&ak), s(sk, "auth_key"), "{name} {dir} auth_key");
        }
    }

    let send_rtcp = arr(&v, "send_rtcp");
    let encrypt_rtcp = send_rtcp.iter().all(|p| p["e_flag"].as_bool() == Some(true));
    let opts = Options {
        key_derivation_rate: kdr,
        encrypt_rtcp,
        ..Options::default()
    };

    // Sender check.
    let mut tx = Context::new(suite, &key, opts.clone()).expect("sender");
    let mut sent = 0;
    for p in arr(&v, "send_rtp") {
        let id = s(p, "id");
        let mut buf = hex(s(p, "plaintext"));
        tx.protect_rtp_vec(&mut buf)
            .unwrap_or_else(|e| panic!("{name} {id}: {e}"));
        assert_eq!(to_hex(&buf), s(p, "protected"), "{name} sender {id}");
        let ssrc = u32::from_str_radix(s(p, "ssrc"), 16).unwrap();
        assert!(
            tx.rtp_index(ssrc).is_some_and(|i| i >= u(p, "index")),
            "{name} index {id}"
        );
        sent += 1;
    }
    for p in send_rtcp {
        let id = s(p, "id");
        let ssrc = u32::from_str_radix(s(p, "ssrc"), 16).unwrap();
        tx.set_next_srtcp_index(ssrc, u(p, "srtcp_index") as u32).unwrap();
        let mut buf = hex(s(p, "plaintext"));
        tx.protect_rtcp_vec(&mut buf)
            .unwrap_or_else(|e| panic!("{name} {id}: {e}"));
        assert_eq!(to_hex(&buf), s(p, "protected"), "{name} sender {id}");
        sent += 1;
    }

    // Receiver check, with the file's window and with the 64 and 1500
    // that the README says give the same verdicts.
    let file_window = (u(&v, "replay_window") as usize).clamp(pbx_srtp::MIN_WINDOW, pbx_srtp::MAX_WINDOW);
    let steps = arr(&v, "receive");
    for window in [file_window, 64, 1500] {
        let mut rx = Context::new(
            suite,
            &key,
            Options {
                replay_window: window,
                ..opts.clone()
            },
        )
        .expect("receiver");
        for (i, st) in steps.iter().enumerate() {
            assert_eq!(u(st, "step") as usize, i, "{name}: steps out of order");
            let packet = hex(s(st, "packet"));
            let mut buf = packet.clone();
            let r = match s(st, "kind") {
                "rtp" => rx.unprotect_rtp(&mut buf),
                "rtcp" => rx.unprotect_rtcp(&mut buf),
                k => panic!("{name}: unknown kind {k}"),
            };
            match s(st, "expect") {
                "accept" => {
                    let n = r.unwrap_or_else(|e| panic!("{name} step {i} ({}): rejected: {e}", s(st, "comment")));
                    assert_eq!(to_hex(&buf[..n]), s(st, "plaintext"), "{name} step {i}");
                }
                "reject" => {
                    assert!(r.is_err(), "{name} step {i} ({}): accepted", s(st, "comment"));
                    assert_eq!(buf, packet, "{name} step {i}: rejected packet changed the buffer");
                }
                e => panic!("{name}: unknown expect {e}"),
            }
        }
    }
    (sent, steps.len())
}

#[test]
fn golden_vectors() {
    let dir = vectors_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("vector folder {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.json vector file in {}", dir.display());
    for f in &files {
        let (sent, steps) = run_golden(f);
        println!("{}: {sent} protected packets, {steps} receive steps OK", f.display());
    }
}

#[test]
fn rfc3711_b2_keystream() {
    let v = load(&rfc_dir().join("rfc3711_B2_aes_cm_keystream.json"));
    let key = hex(s(&v, "session_key"));
    let offset: [u8; 16] = hex(s(&v, "offset")).try_into().unwrap();
    let mut ks = vec![0u8; u(&v, "keystream_segment_octets") as usize];
    kdf::aes_cm_keystream(&key, &offset, &mut ks).unwrap();
    let base = u128::from_be_bytes(offset);
    let blocks = arr(&v, "blocks");
    assert!(!blocks.is_empty());
    for b in blocks {
        let ctr = u128::from_be_bytes(hex(s(b, "counter")).try_into().unwrap());
        let at = ((ctr - base) * 16) as usize;
        assert_eq!(to_hex(&ks[at..at + 16]), s(b, "keystream"));
    }
}

#[test]
fn rfc3711_b3_key_derivation() {
    let v = load(&rfc_dir().join("rfc3711_B3_key_derivation.json"));
    let key = hex(s(&v, "master_key"));
    let salt = hex(s(&v, "master_salt"));
    let index = u64::from_str_radix(s(&v, "packet_index"), 16).unwrap();
    let kdr = u(&v, "key_derivation_rate");
    for d in arr(&v, "derivations") {
        let label = u(d, "label") as u8;
        assert_eq!(
            to_hex(&kdf::kdf_iv(&salt, label, index, kdr).unwrap()),
            s(d, "aes_cm_iv")
        );
        let want = hex(s(d, "output"));
        let mut out = vec![0u8; want.len()];
        kdf::derive(&key, &salt, label, index, kdr, &mut out).unwrap();
        assert_eq!(out, want, "label {label}");
    }
}

#[test]
fn rfc6188_aes_192_256() {
    let v = load(&rfc_dir().join("rfc6188_aes_192_256_cm.json"));
    for k in arr(&v, "keystream") {
        let key = hex(s(k, "session_key"));
        let offset: [u8; 16] = hex(s(k, "offset")).try_into().unwrap();
        let mut ks = vec![0u8; u(k, "keystream_segment_octets") as usize];
        kdf::aes_cm_keystream(&key, &offset, &mut ks).unwrap();
        assert_eq!(to_hex(&ks[..48]), s(k, "first_3_blocks"), "{}", s(k, "section"));
        assert_eq!(
            to_hex(&ks[ks.len() - 48..]),
            s(k, "last_3_blocks"),
            "{}",
            s(k, "section")
        );
    }
    for d in arr(&v, "key_derivation") {
        let key = hex(s(d, "master_key"));
        let salt = hex(s(d, "master_salt"));
        let index = u64::from_str_radix(s(d, "packet_index"), 16).unwrap();
        let kdr = u(d, "key_derivation_rate");
        for (label, field) in [(0u8, "cipher_key"), (2, "cipher_salt"), (1, "auth_key")] {
            let want = hex(s(d, field));
            let mut out = vec![0u8; want.len()];
            kdf::derive(&key, &salt, label, index, kdr, &mut out).unwrap();
            assert_eq!(out, want, "{} {field}", s(d, "section"));
        }
    }
}

fn gcm_suite(profile: &str, key_len: usize) -> Suite {
    match key_len {
        16 => Suite::AeadAes128Gcm,
        32 => Suite::AeadAes256Gcm,
        _ => panic!("{profile}: key length {key_len}"),
    }
}

#[test]
fn rfc7714_gcm() {
    use aes_gcm::aead::AeadInPlace;
    use aes_gcm::{Aes128Gcm, KeyInit, Nonce};

    let v = load(&rfc_dir().join("rfc7714_aes_gcm.json"));
    let salt = hex(s(&v, "session_salt"));
    for p in arr(&v, "rtp") {
        let key = hex(s(p, "session_key"));
        let suite = gcm_suite(s(p, "profile"), key.len());
        let pt = hex(s(p, "plaintext"));
        let ssrc = &pt[8..12];
        // IV = (00 00 ‖ SSRC ‖ ROC ‖ SEQ) XOR salt.
        let mut iv = vec![0u8, 0];
        iv.extend_from_slice(ssrc);
        iv.extend_from_slice(&(u(p, "roc") as u32).to_be_bytes());
        iv.extend_from_slice(&pt[2..4]);
        let iv: Vec<u8> = iv.iter().zip(&salt).map(|(a, b)| a ^ b).collect();
        assert_eq!(to_hex(&iv), s(p, "iv"), "{}", s(p, "section"));
        if let Some(tag) = p["tag"].as_str() {
            // 16.1.3, authentication only (not an SRTP suite): the tag over
            // the whole packet as AAD, checked against the GCM primitive.
            let g = Aes128Gcm::new_from_slice(&key).unwrap();
            let t = g
                .encrypt_in_place_detached(Nonce::from_slice(&iv), &pt, &mut [])
                .unwrap();
            assert_eq!(to_hex(&t), tag);
            continue;
        }
        let keys = SessionKeys::new(&key, &salt, &[]).unwrap();
        let mut tx = Context::from_session_keys(suite, &keys, &keys, Options::default()).unwrap();
        let mut buf = pt.clone();
        tx.protect_rtp_vec(&mut buf).unwrap();
        assert_eq!(to_hex(&buf), s(p, "protected"), "{}", s(p, "section"));
        let mut rx = Context::from_session_keys(suite, &keys, &keys, Options::default()).unwrap();
        rx.unprotect_rtp_vec(&mut buf).unwrap();
        assert_eq!(buf, pt);
    }
    for p in arr(&v, "rtcp") {
        let key = hex(s(p, "session_key"));
        let suite = gcm_suite(s(p, "profile"), key.len());
        let keys = SessionKeys::new(&key, &salt, &[]).unwrap();
        let opts = Options {
            encrypt_rtcp: p["e_flag"].as_bool().unwrap(),
            ..Options::default()
        };
        let pt = hex(s(p, "plaintext"));
        let ssrc = u32::from_be_bytes(pt[4..8].try_into().unwrap());
        let mut tx = Context::from_session_keys(suite, &keys, &keys, opts.clone()).unwrap();
        tx.set_next_srtcp_index(ssrc, u(p, "srtcp_index") as u32).unwrap();
        let mut buf = pt.clone();
        tx.protect_rtcp_vec(&mut buf).unwrap();
        assert_eq!(to_hex(&buf), s(p, "protected"), "{}", s(p, "section"));
        let mut rx = Context::from_session_keys(suite, &keys, &keys, opts).unwrap();
        rx.unprotect_rtcp_vec(&mut buf).unwrap();
        assert_eq!(buf, pt, "{}", s(p, "section"));
    }
}
