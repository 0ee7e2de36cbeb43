//! Offer/answer scenarios of a B2BUA leg: baresip as the offerer, the PBX
//! as the offerer toward a phone or a trunk, hold/resume, and every way
//! an answer can be refused.

use pbx_sdp::{
    AcceptError, AnswerError, Codec, Direction, KeyGenError, KeyMaterial, LocalMedia, OfferError, Proto, RtcpTarget,
    Sdp, SrtpMode, SrtpOffer, SrtpPolicy, Suite, SuiteChoice, answer, keep_key, offer,
};

use crate::support::{det_keygen, local_v4};

const BARESIP_KEY: &str = "pUUBiPfLKi6qR8ZSe2Db6r5slrJD8Kaz1WfHbZSt";

fn baresip_offer(proto: &str, dir: &str) -> Sdp {
    Sdp::parse(&format!(
        "v=0\r\no=- 1969409542 2059419155 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 30004 {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\na={dir}\r\na=ptime:20\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{BARESIP_KEY}\r\n"
    ))
    .unwrap()
}

fn fixture(name: &str) -> Sdp {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    Sdp::parse_bytes(&std::fs::read(path).unwrap()).unwrap()
}

/// The answer a "phone" (our own `answer` with its policy) gives to `sdp`.
fn phone_answers(sdp: &Sdp, policy: &SrtpPolicy, seed: u8) -> Sdp {
    let phone = LocalMedia::new("192.0.2.77".parse().unwrap(), 30026);
    answer(sdp, &phone, policy, &mut det_keygen(seed)).unwrap().0
}

#[test]
fn baresip_offer_gets_fresh_key_and_relay_address() {
    let offer = baresip_offer("RTP/SAVP", "sendrecv");
    let (ans, streams) = answer(&offer, &local_v4(40000), &SrtpPolicy::default(), &mut det_keygen(1)).unwrap();
    let text = ans.to_string();
    assert!(text.contains("c=IN IP4 198.51.100.1\r\n"), "{text}");
    assert!(text.contains("m=audio 40000 RTP/SAVP 0 101\r\n"), "{text}");
    assert!(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"), "{text}");
    assert!(!text.contains(BARESIP_KEY), "the offerer's key must never be echoed");
    assert!(
        text.contains("a=fmtp:101 0-15\r\n"),
        "offered fmtp passes through: {text}"
    );

    let [s] = streams.as_slice() else { panic!("one stream") };
    assert_eq!(s.remote_rtp(), "127.0.0.1:30004".parse().unwrap());
    assert_eq!(s.rtcp, RtcpTarget::Addr("127.0.0.1:30005".parse().unwrap()));
    assert_eq!(s.direction, Direction::SendRecv);
    assert_eq!(s.ptime, Some(20));
    let k = s.srtp.as_ref().unwrap();
    assert_eq!((k.suite, k.tag), (Suite::AesCm128HmacSha1_80, 1));
    // The remote key is baresip's; ours is what the answer announces.
    let offered = offer.media[0].crypto().next().unwrap().unwrap();
    assert!(k.remote_key.ct_eq(offered.key().unwrap()));
    let announced = ans.media[0].crypto().next().unwrap().unwrap();
    assert!(k.local_key.ct_eq(announced.key().unwrap()));
    assert!(!k.local_key.ct_eq(&k.remote_key));
}

#[test]
fn debug_output_has_no_key_bytes() {
    let offer = baresip_offer("RTP/SAVP", "sendrecv");
    let (ans, streams) = answer(&offer, &local_v4(40000), &SrtpPolicy::default(), &mut det_keygen(1)).unwrap();
    let our_key = ans.media[0].crypto().next().unwrap().unwrap().to_string();
    let our_b64 = our_key.split("inline:").nth(1).unwrap().to_owned();
    let dbg = format!("{streams:?} {ans:?} {offer:?}");
    assert!(!dbg.contains(BARESIP_KEY) && !dbg.contains(&our_b64), "{dbg}");
    assert!(
        dbg.contains("KeyMaterial { suite: AES_CM_128_HMAC_SHA1_80, .. }"),
        "{dbg}"
    );
    assert!(dbg.contains("1 AES_CM_128_HMAC_SHA1_80 <redacted>"), "{dbg}");
    // The raw key octets must not appear as a Debug byte list either.
    let k = &streams[0].srtp.as_ref().unwrap().local_key;
    assert!(!dbg.contains(&format!("{:?}", &k.key()[..4])[1..12]), "{dbg}");
}

#[test]
fn pbx_offers_only_32_and_accepts_the_answer() {
    let local = local_v4(41000);
    let (ours, pending) = offer(
        &local,
        &SrtpOffer::mandatory(&[Suite::AesCm128HmacSha1_32]),
        &mut det_keygen(9),
    )
    .unwrap();
    let text = ours.to_string();
    assert!(text.contains("m=audio 41000 RTP/SAVP 0 8 101\r\n"), "{text}");
    assert_eq!(text.matches("a=crypto:").count(), 1);
    assert!(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:"), "{text}");
    assert!(
        text.contains("a=rtcp-mux\r\n") && text.contains("a=sendrecv\r\n"),
        "{text}"
    );

    // The phone takes the first suite it supports (as baresip does).
    let reply = phone_answers(&Sdp::parse(&text).unwrap(), &SrtpPolicy::default(), 50);
    let streams = pending.accept_answer(&reply).unwrap();
    let [s] = streams.as_slice() else { panic!("one stream") };
    let k = s.srtp.as_ref().unwrap();
    assert_eq!((k.suite, k.tag), (Suite::AesCm128HmacSha1_32, 1));
    let ours_line = ours.media[0].crypto().next().unwrap().unwrap();
    let theirs_line = reply.media[0].crypto().next().unwrap().unwrap();
    assert!(k.local_key.ct_eq(ours_line.key().unwrap()));
    assert!(k.remote_key.ct_eq(theirs_line.key().unwrap()));
    assert_eq!(s.remote_rtp(), "192.0.2.77:30026".parse().unwrap());
    assert!(s.rtcp_mux());
    assert_eq!(s.codecs.iter().map(|c| c.payload_type).collect::<Vec<_>>(), [0, 8, 101]);
}

#[test]
fn b2bua_two_legs_have_independent_keys() {
    // Leg A: baresip offers _80; leg B: the PBX offers _32 only.
    let offer_a = baresip_offer("RTP/SAVP", "sendrecv");
    let mut keys = det_keygen(100);
    let (_, leg_a) = answer(&offer_a, &local_v4(40000), &SrtpPolicy::default(), &mut keys).unwrap();
    let (offer_b, pending) = offer(
        &local_v4(40002),
        &SrtpOffer::mandatory(&[Suite::AesCm128HmacSha1_32]),
        &mut keys,
    )
    .unwrap();
    let reply_b = phone_answers(&offer_b, &SrtpPolicy::default(), 200);
    let leg_b = pending.accept_answer(&reply_b).unwrap();
    let (a, b) = (leg_a[0].srtp.as_ref().unwrap(), leg_b[0].srtp.as_ref().unwrap());
    assert_eq!(a.suite, Suite::AesCm128HmacSha1_80);
    assert_eq!(b.suite, Suite::AesCm128HmacSha1_32);
    let all = [&a.remote_key, &a.local_key, &b.remote_key, &b.local_key];
    for (i, x) in all.iter().enumerate() {
        for y in &all[i + 1..] {
            assert!(!x.ct_eq(y), "every direction of every leg has its own key");
        }
    }
}

#[test]
fn plain_offer_toward_a_trunk() {
    let (ours, pending) = offer(&local_v4(42000), &SrtpOffer::plain(), &mut det_keygen(1)).unwrap();
    let text = ours.to_string();
    assert!(
        text.contains("m=audio 42000 RTP/AVP 0 8 101\r\n") && !text.contains("crypto"),
        "{text}"
    );
    let reply = phone_answers(&ours, &SrtpPolicy::with_mode(SrtpMode::Disabled), 3);
    let s = pending.accept_answer(&reply).unwrap();
    assert!(s[0].srtp.is_none());
    assert_eq!(s[0].proto, Proto::RtpAvp);
}

#[test]
fn best_effort_offer_falls_back_or_upgrades() {
    let srtp = SrtpOffer::best_effort(&[Suite::AesCm128HmacSha1_80]);
    let (ours, pending) = offer(&local_v4(42000), &srtp, &mut det_keygen(1)).unwrap();
    assert!(ours.to_string().contains("m=audio 42000 RTP/AVP 0 8 101\r\n"));
    let plain = phone_answers(&ours, &SrtpPolicy::with_mode(SrtpMode::Disabled), 3);
    assert!(pending.accept_answer(&plain).unwrap()[0].srtp.is_none());
    let secure = phone_answers(&ours, &SrtpPolicy::with_mode(SrtpMode::Optional), 3);
    assert_eq!(
        pending.accept_answer(&secure).unwrap()[0].srtp.as_ref().unwrap().suite,
        Suite::AesCm128HmacSha1_80
    );
}

#[test]
fn best_effort_answer_modes() {
    let offer = baresip_offer("RTP/AVP", "sendrecv");
    let only_gcm = SrtpPolicy {
        suites: vec![Suite::AeadAes128Gcm],
        ..SrtpPolicy::with_mode(SrtpMode::Optional)
    };
    // Crypto not acceptable: optional falls back to plain, required refuses.
    let (ans, s) = answer(&offer, &local_v4(40000), &only_gcm, &mut det_keygen(1)).unwrap();
    assert!(s[0].srtp.is_none() && !ans.to_string().contains("crypto"));
    let required = SrtpPolicy {
        mode: SrtpMode::Required,
        ..only_gcm
    };
    let e = answer(&offer, &local_v4(40000), &required, &mut det_keygen(1)).unwrap_err();
    assert_eq!((e.clone(), e.sip_status()), (AnswerError::SrtpRequired, 488));
    // Acceptable crypto in RTP/AVP: answered with crypto, profile kept.
    let (ans, s) = answer(&offer, &local_v4(40000), &SrtpPolicy::default(), &mut det_keygen(1)).unwrap();
    assert!(s[0].srtp.is_some());
    assert!(ans.to_string().contains("m=audio 40000 RTP/AVP 0 101\r\n"));
}

#[test]
fn savp_without_acceptable_crypto_is_488() {
    let offer = baresip_offer("RTP/SAVP", "sendrecv");
    let only_32 = SrtpPolicy {
        suites: vec![Suite::AesCm128HmacSha1_32],
        ..SrtpPolicy::default()
    };
    for policy in [only_32, SrtpPolicy::with_mode(SrtpMode::Disabled)] {
        let e = answer(&offer, &local_v4(40000), &policy, &mut det_keygen(1)).unwrap_err();
        assert_eq!((e.clone(), e.sip_status()), (AnswerError::NoAcceptableCrypto, 488));
    }
}

#[test]
fn suite_choice() {
    let polycom = fixture("polycom_offer.sdp");
    let mut policy = SrtpPolicy {
        allow_unencrypted_srtcp: true,
        ..SrtpPolicy::default()
    };
    let (ans, s) = answer(&polycom, &local_v4(40000), &policy, &mut det_keygen(1)).unwrap();
    let k = s[0].srtp.as_ref().unwrap();
    assert_eq!(
        (k.tag, k.suite, k.flags.unencrypted_srtcp),
        (1, Suite::AesCm128HmacSha1_32, true)
    );
    assert!(
        ans.to_string().contains(" UNENCRYPTED_SRTCP\r\n"),
        "declarative flag is echoed"
    );
    assert_eq!(k.remote_lifetime, Some(1 << 48));
    policy.choice = SuiteChoice::OurPreference;
    let (_, s) = answer(&polycom, &local_v4(40000), &policy, &mut det_keygen(1)).unwrap();
    assert_eq!(s[0].srtp.as_ref().unwrap().tag, 2, "_80 is first in our preference");
}

#[test]
fn mki_and_kdr_reach_the_stream() {
    let text = baresip_offer("RTP/SAVP", "sendrecv")
        .to_string()
        .replace(BARESIP_KEY, &format!("{BARESIP_KEY}|2^20|7:2 KDR=4"));
    let (_, s) = answer(
        &Sdp::parse(&text).unwrap(),
        &local_v4(40000),
        &SrtpPolicy::default(),
        &mut det_keygen(1),
    )
    .unwrap();
    let k = s[0].srtp.as_ref().unwrap();
    assert_eq!(
        k.remote_mki.map(|m| (m.value, m.len, m.to_bytes())),
        Some((7, 2, vec![0, 7]))
    );
    assert_eq!((k.remote_lifetime, k.remote_kdr), (Some(1 << 20), Some(4)));
}

#[test]
fn hold_and_resume() {
    let policy = SrtpPolicy::default();
    let local = local_v4(40000);
    let (_, first) = answer(
        &baresip_offer("RTP/SAVP", "sendrecv"),
        &local,
        &policy,
        &mut det_keygen(1),
    )
    .unwrap();
    let first_key = first[0].srtp.as_ref().unwrap().local_key.clone();

    for (offered, answered) in [
        ("sendonly", Direction::RecvOnly),
        ("inactive", Direction::Inactive),
        ("recvonly", Direction::SendOnly),
        ("sendrecv", Direction::SendRecv),
    ] {
        let (ans, s) = answer(&baresip_offer("RTP/SAVP", offered), &local, &policy, &mut det_keygen(2)).unwrap();
        assert_eq!(ans.direction(&ans.media[0]), answered, "{offered}");
        assert_eq!(s[0].direction, answered, "{offered}: the PBX's side");
        // Default: a re-answer rekeys.
        assert!(!s[0].srtp.as_ref().unwrap().local_key.ct_eq(&first_key));
    }

    // RFC 2543 hold: c=0.0.0.0 means the offerer does not receive.
    let old_hold = baresip_offer("RTP/SAVP", "sendrecv")
        .to_string()
        .replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    let (ans, s) = answer(&Sdp::parse(&old_hold).unwrap(), &local, &policy, &mut det_keygen(2)).unwrap();
    assert_eq!(
        (ans.direction(&ans.media[0]), s[0].direction),
        (Direction::RecvOnly, Direction::RecvOnly)
    );

    // keep_key: resume without rekeying our direction.
    let mut keygen = keep_key(Some(&first_key), det_keygen(3));
    let (_, s) = answer(&baresip_offer("RTP/SAVP", "sendrecv"), &local, &policy, &mut keygen).unwrap();
    assert!(s[0].srtp.as_ref().unwrap().local_key.ct_eq(&first_key));

    // Music on hold: the PBX only sends.
    let moh = LocalMedia {
        direction: Direction::SendOnly,
        ..local.clone()
    };
    let (ans, _) = answer(
        &baresip_offer("RTP/SAVP", "sendrecv"),
        &moh,
        &policy,
        &mut det_keygen(2),
    )
    .unwrap();
    assert_eq!(ans.direction(&ans.media[0]), Direction::SendOnly);
}

#[test]
fn rtcp_mux_only_if_allowed() {
    let offer = fixture("ipv6_offer.sdp");
    let no_mux = LocalMedia {
        rtcp_mux: false,
        ..local_v4(40000)
    };
    let (ans, s) = answer(&offer, &no_mux, &SrtpPolicy::default(), &mut det_keygen(1)).unwrap();
    assert!(!ans.media[0].rtcp_mux());
    // The offer's a=rtcp names port and address explicitly.
    assert_eq!(s[0].rtcp, RtcpTarget::Addr("[2001:db8::10]:40000".parse().unwrap()));
}

#[test]
fn rejected_media_and_missing_audio() {
    let av = fixture("audio_video_offer.sdp");
    let (ans, s) = answer(&av, &local_v4(40000), &SrtpPolicy::default(), &mut det_keygen(1)).unwrap();
    assert_eq!((ans.media.len(), ans.media[0].port, s[0].mline), (2, 0, 1));
    let video_only = Sdp::parse(av.to_string().split("m=audio").next().unwrap()).unwrap();
    let e = answer(
        &video_only,
        &local_v4(40000),
        &SrtpPolicy::default(),
        &mut det_keygen(1),
    )
    .unwrap_err();
    assert_eq!(e, AnswerError::NoAcceptableMedia);
    let host = av
        .to_string()
        .replace("c=IN IP4 198.51.100.7", "c=IN IP4 media.example.com");
    let e = answer(
        &Sdp::parse(&host).unwrap(),
        &local_v4(40000),
        &SrtpPolicy::default(),
        &mut det_keygen(1),
    )
    .unwrap_err();
    assert_eq!(e, AnswerError::NoConnectionAddress);
    let g729 = av.to_string().replace("RTP/SAVP 8 101", "RTP/SAVP 18 101");
    let e = answer(
        &Sdp::parse(&g729).unwrap(),
        &local_v4(40000),
        &SrtpPolicy::default(),
        &mut det_keygen(1),
    )
    .unwrap_err();
    assert_eq!(e, AnswerError::NoCommonCodec);
}

#[test]
fn keygen_failures_are_500() {
    let offer = baresip_offer("RTP/SAVP", "sendrecv");
    let mut failing = |_: Suite| -> Result<KeyMaterial, KeyGenError> { Err(KeyGenError) };
    let e = answer(&offer, &local_v4(40000), &SrtpPolicy::default(), &mut failing).unwrap_err();
    assert_eq!(e.sip_status(), 500);
    let mut wrong_suite = |_: Suite| KeyMaterial::random(Suite::AeadAes128Gcm);
    let e = answer(&offer, &local_v4(40000), &SrtpPolicy::default(), &mut wrong_suite).unwrap_err();
    assert!(matches!(e, AnswerError::KeyGen(_)));
    assert!(matches!(
        offer_err(&SrtpOffer::mandatory(&[]), &local_v4(1)),
        OfferError::NoSuites
    ));
    let only_dtmf = LocalMedia {
        codecs: vec![Codec::telephone_event()],
        ..local_v4(1)
    };
    assert!(matches!(
        offer_err(&SrtpOffer::plain(), &only_dtmf),
        OfferError::NoCodecs
    ));
}

fn offer_err(srtp: &SrtpOffer, local: &LocalMedia) -> OfferError {
    offer(local, srtp, &mut det_keygen(1)).unwrap_err()
}

#[test]
fn dynamic_payload_types_are_assigned() {
    let opus = Codec {
        name: "opus".into(),
        clock_rate: 48000,
        channels: 2,
        payload_type: None,
        fmtp: Some("useinbandfec=1".into()),
    };
    let local = LocalMedia {
        codecs: vec![opus, Codec::pcma(), Codec::telephone_event()],
        ..local_v4(1000)
    };
    let (sdp, _) = offer(&local, &SrtpOffer::plain(), &mut det_keygen(1)).unwrap();
    let text = sdp.to_string();
    assert!(text.contains("m=audio 1000 RTP/AVP 96 8 101\r\n"), "{text}");
    assert!(
        text.contains("a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n"),
        "{text}"
    );
    assert!(text.contains("a=fmtp:101 0-16\r\n"), "{text}");
}

/// Builds the PBX's `_80`+`_32` offer and returns it with the pending
/// state and a valid phone answer to tamper with.
fn offer_and_reply() -> (pbx_sdp::PendingOffer, String) {
    let suites = [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32];
    let (ours, pending) = offer(&local_v4(41000), &SrtpOffer::mandatory(&suites), &mut det_keygen(9)).unwrap();
    (pending, phone_answers(&ours, &SrtpPolicy::default(), 60).to_string())
}

#[test]
fn bad_answers_are_refused() {
    let (pending, good) = offer_and_reply();
    assert!(pending.accept_answer(&Sdp::parse(&good).unwrap()).is_ok());
    let crypto_line = good.lines().find(|l| l.starts_with("a=crypto:")).unwrap().to_owned();
    let key = crypto_line.split("inline:").nth(1).unwrap().to_owned();
    let check = |text: String, want: AcceptError| {
        let e = pending.accept_answer(&Sdp::parse(&text).unwrap()).unwrap_err();
        assert_eq!(e, want, "{text}");
    };
    check(good.replace("a=crypto:1 ", "a=crypto:7 "), AcceptError::NotOffered);
    check(
        good.replace("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"),
        AcceptError::NotOffered,
    );
    check(good.replace(&crypto_line, ""), AcceptError::MissingCrypto);
    check(
        good.replace(&crypto_line, &format!("{crypto_line}\r\n{crypto_line}")),
        AcceptError::TooManyCrypto,
    );
    check(
        good.replace(&key, "QQ=="),
        AcceptError::Crypto(pbx_sdp::CryptoError::KeyLength {
            suite: Suite::AesCm128HmacSha1_80,
            expected: 30,
            got: 1,
        }),
    );
    check(
        good.replace(&key, &format!("{key} UNENCRYPTED_SRTP")),
        AcceptError::CryptoRefused,
    );
    check(good.replace("m=audio 30026", "m=audio 0"), AcceptError::Rejected);
    check(good.replace("RTP/SAVP", "RTP/AVP"), AcceptError::ProtoMismatch);
    check(
        format!("{good}m=video 0 RTP/AVP 96\r\n"),
        AcceptError::MediaCount { expected: 1, got: 2 },
    );
    check(
        good.replace("RTP/SAVP 0 8 101", "RTP/SAVP 18"),
        AcceptError::NoCommonCodec,
    );
    check(
        good.replace("c=IN IP4 192.0.2.77", "c=IN IP4 phone.example"),
        AcceptError::NoConnectionAddress,
    );

    // An answerer that echoes our own key.
    let (ours, pending) = offer(
        &local_v4(41000),
        &SrtpOffer::mandatory(&[Suite::AesCm128HmacSha1_80]),
        &mut det_keygen(9),
    )
    .unwrap();
    let ours_text = ours.to_string();
    let our_line = ours_text.lines().find(|l| l.starts_with("a=crypto:")).unwrap();
    let reply = phone_answers(&ours, &SrtpPolicy::default(), 61).to_string();
    let their_line = reply.lines().find(|l| l.starts_with("a=crypto:")).unwrap();
    let echoed = reply.replace(their_line, our_line);
    assert_eq!(
        pending.accept_answer(&Sdp::parse(&echoed).unwrap()).unwrap_err(),
        AcceptError::EchoedKey
    );
}
