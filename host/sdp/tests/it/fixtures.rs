//! Data-driven tests over real and broken SDP bodies in `tests/fixtures/`.
//!
//! Each `X.sdp` is parsed, printed, re-parsed and answered under the three
//! SRTP modes; the summary is compared with `X.expected`. After an
//! intended change, regenerate with `UPDATE_EXPECT=1 cargo test -p pbx-sdp`
//! and review the diff.

use std::fmt::Write as _;
use std::path::Path;

use pbx_sdp::{Sdp, SrtpMode, SrtpPolicy, answer};

use crate::support::{det_keygen, local_v4};

fn summarize(bytes: &[u8]) -> String {
    let mut out = String::new();
    let sdp = match Sdp::parse_bytes(bytes) {
        Ok(s) => s,
        Err(e) => return format!("parse: Err({e:?})\n"),
    };
    let printed = sdp.to_string();
    let reparsed = Sdp::parse(&printed).expect("printed SDP parses");
    assert_eq!(reparsed, sdp, "parse -> print -> parse is the identity");
    assert_eq!(reparsed.to_string(), printed, "printing is stable");
    let normalized = String::from_utf8_lossy(bytes)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    writeln!(out, "parse: Ok, prints back exactly: {}", printed == normalized).unwrap();
    for (i, m) in sdp.media.iter().enumerate() {
        writeln!(
            out,
            "m[{i}] {} {} {} dir={}",
            m.media,
            m.port,
            m.proto,
            sdp.direction(m)
        )
        .unwrap();
        for c in m.crypto() {
            match c {
                Ok(c) => writeln!(out, "  crypto tag={} {} params={:?}", c.tag, c.suite, c.session_params).unwrap(),
                Err(e) => writeln!(out, "  crypto Err({e:?})").unwrap(),
            }
        }
    }
    for mode in [SrtpMode::Required, SrtpMode::Optional, SrtpMode::Disabled] {
        let policy = SrtpPolicy::with_mode(mode);
        match answer(&sdp, &local_v4(40000), &policy, &mut det_keygen(0)) {
            Err(e) => writeln!(out, "answer {mode:?}: Err({e:?}) -> SIP {}", e.sip_status()).unwrap(),
            Ok((a, streams)) => {
                writeln!(out, "answer {mode:?}: Ok").unwrap();
                for s in &streams {
                    let pts: Vec<String> = s
                        .codecs
                        .iter()
                        .map(|c| format!("{}:{}", c.payload_type, c.name))
                        .collect();
                    let srtp = s
                        .srtp
                        .as_ref()
                        .map(|k| format!("{} tag {} {:?}", k.suite, k.tag, k.flags));
                    writeln!(
                        out,
                        "  stream m[{}] to {} rtcp={:?} dir={} codecs=[{}] ptime={:?} srtp={:?}",
                        s.mline,
                        s.remote_rtp(),
                        s.rtcp,
                        s.direction,
                        pts.join(" "),
                        s.ptime,
                        srtp
                    )
                    .unwrap();
                    if let Some(k) = &s.srtp {
                        // The answer must never echo the offerer's key.
                        assert!(!k.local_key.ct_eq(&k.remote_key));
                    }
                }
                for line in a.to_string().lines() {
                    writeln!(out, "  | {line}").unwrap();
                }
            }
        }
    }
    out
}

#[test]
fn fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sdp"))
        .collect();
    names.sort();
    assert!(names.len() >= 15, "fixtures missing");
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failed = Vec::new();
    for path in names {
        let got = summarize(&std::fs::read(&path).unwrap());
        let expected_path = path.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != want {
            eprintln!("--- {} ---\n{got}", path.display());
            failed.push(path);
        }
    }
    assert!(
        failed.is_empty(),
        "summaries differ (UPDATE_EXPECT=1 to regenerate): {failed:?}"
    );
}
