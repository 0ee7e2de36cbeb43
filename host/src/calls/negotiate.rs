//! SDP between the two legs of a call.
//!
//! The PBX never forwards a body: it answers the caller itself and makes
//! its own offer to the callee, each with keys of its own
//! ([`pbx_sdp::KeyMaterial::random`]), its relay's address, and the
//! caller's codecs passed through with their payload types (the relay
//! re-encrypts packets, it does not transcode audio).

use super::MediaSetting;
use crate::sip::Proto;
use pbx_sdp::{
    Codec, KeyGenError, KeyMaterial, LocalMedia, NegotiatedStream, RtcpTarget, Sdp, SessionOrigin, SrtpMode, SrtpOffer,
    SrtpPolicy, Suite,
};
use std::net::IpAddr;

/// Suites offered when nothing is configured: baresip, Asterisk and most
/// desk phones take these two.
const DEFAULT_OFFER: [Suite; 2] = [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32];

/// What we offer to a leg over `proto` with `setting`.
pub(super) fn srtp_offer(setting: MediaSetting, proto: Proto, suites: &[Suite]) -> SrtpOffer {
    let suites: &[Suite] = if suites.is_empty() { &DEFAULT_OFFER } else { suites };
    match setting {
        MediaSetting::Required => SrtpOffer::mandatory(suites),
        MediaSetting::Optional => SrtpOffer::best_effort(suites),
        MediaSetting::Off => SrtpOffer::plain(),
        MediaSetting::Auto if proto == Proto::Tls => SrtpOffer::mandatory(suites),
        MediaSetting::Auto => SrtpOffer::plain(),
    }
}

/// How we answer an offer from a leg with `setting`.
pub(super) fn answer_policy(setting: MediaSetting) -> SrtpPolicy {
    SrtpPolicy::with_mode(match setting {
        MediaSetting::Required => SrtpMode::Required,
        MediaSetting::Optional | MediaSetting::Auto => SrtpMode::Optional,
        MediaSetting::Off => SrtpMode::Disabled,
    })
}

/// Fresh random keys (never the other leg's).
pub(super) fn fresh_key(suite: Suite) -> Result<KeyMaterial, KeyGenError> {
    KeyMaterial::random(suite)
}

/// Does this offer carry SDES keys on its first audio stream?
pub(super) fn offers_srtp(offer: &Sdp) -> bool {
    audio(offer).is_some_and(|m| m.crypto().next().is_some())
}

fn audio(sdp: &Sdp) -> Option<&pbx_sdp::Media> {
    sdp.media.iter().find(|m| m.media == "audio" && m.port != 0)
}

/// The codecs of an offer's first audio stream, with the offerer's
/// payload types (static ones from RFC 3551 when there is no `a=rtpmap`).
pub(super) fn offered_codecs(offer: &Sdp) -> Vec<Codec> {
    let Some(m) = audio(offer) else {
        return Vec::new();
    };
    m.payload_types()
        .filter_map(|pt| {
            let (name, clock_rate, channels) = match m.rtpmap(pt) {
                Some(map) => (map.encoding.clone(), map.clock_rate, map.channels.unwrap_or(1)),
                None => {
                    let (n, r) = pbx_sdp::static_format(pt)?;
                    (n.to_string(), r, 1)
                }
            };
            Some(Codec {
                name,
                clock_rate,
                channels,
                payload_type: Some(pt),
                fmtp: m.fmtp(pt).map(|f| f.params.clone()),
            })
        })
        .collect()
}

/// The codecs a leg agreed to, to answer the other leg with.
pub(super) fn agreed_codecs(stream: &NegotiatedStream) -> Vec<Codec> {
    stream
        .codecs
        .iter()
        .map(|c| Codec {
            name: c.name.clone(),
            clock_rate: c.clock_rate,
            channels: c.channels,
            payload_type: Some(c.payload_type),
            fmtp: c.fmtp.clone(),
        })
        .collect()
}

/// Our media description for one leg.
pub(super) fn local_media(ip: IpAddr, port: u16, codecs: Vec<Codec>, offer: Option<&Sdp>, session: u64) -> LocalMedia {
    let mut local = LocalMedia::new(ip, port);
    local.codecs = codecs;
    local.origin = SessionOrigin::new(session);
    if let Some(offer) = offer
        && let Some(m) = audio(offer)
    {
        local.ptime = m.ptime();
        local.rtcp_mux = m.rtcp_mux();
        local.direction = offer.direction(m);
    }
    local
}

/// What the relay needs for a leg.
pub(super) fn leg_config(stream: &NegotiatedStream) -> pbx_media::LegConfig {
    let (remote_rtcp, rtcp_mux) = match stream.rtcp {
        RtcpTarget::Mux => (None, true),
        RtcpTarget::Addr(a) => (Some(a), false),
        RtcpTarget::None => (None, false),
    };
    pbx_media::LegConfig {
        remote_rtp: Some(stream.remote_rtp()),
        remote_rtcp,
        rtcp_mux,
        srtp: stream.srtp.as_ref().map(|p| {
            let mut keys = pbx_media::LegKeys::new(
                p.suite,
                p.remote_key.master_key().clone(),
                p.local_key.master_key().clone(),
            );
            // What the phone declared for its own key (RFC 4568 §6.1).
            keys.inbound_options.mki = p.remote_mki.map(|m| m.to_bytes());
            keys.inbound_options.key_lifetime = p.remote_lifetime;
            if let Some(kdr) = p.remote_kdr {
                keys.inbound_options.key_derivation_rate = 1u64.checked_shl(u32::from(kdr)).unwrap_or(0);
            }
            let encrypt_rtcp = !p.flags.unencrypted_srtcp;
            keys.inbound_options.encrypt_rtcp = encrypt_rtcp;
            keys.outbound_options.encrypt_rtcp = encrypt_rtcp;
            keys
        }),
        codecs: stream
            .codecs
            .iter()
            .map(|c| {
                let codec = match c.name.to_ascii_uppercase().as_str() {
                    "PCMU" => pbx_media::Codec::Pcmu,
                    "PCMA" => pbx_media::Codec::Pcma,
                    _ => pbx_media::Codec::Other,
                };
                (c.payload_type, codec)
            })
            .collect(),
        on_hold: !stream.direction.receives(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 30004 RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:pUUBiPfLKi6qR8ZSe2Db6r5slrJD8Kaz1WfHbZSt\r\n";

    #[test]
    fn the_callers_codecs_pass_through_with_their_payload_types() {
        let offer = Sdp::parse(BARESIP).unwrap();
        assert!(offers_srtp(&offer));
        let codecs = offered_codecs(&offer);
        let names: Vec<_> = codecs.iter().map(|c| (c.name.as_str(), c.payload_type)).collect();
        assert_eq!(names, [("PCMU", Some(0)), ("telephone-event", Some(101))]);
        assert_eq!(codecs[1].fmtp.as_deref(), Some("0-15"));
    }

    #[test]
    fn offer_and_answer_keep_legs_apart() {
        let a_offer = Sdp::parse(BARESIP).unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // Toward B: only _32, fresh keys, the relay's address.
        let local_b = local_media(ip, 40000, offered_codecs(&a_offer), Some(&a_offer), 7);
        let (b_offer, pending) = pbx_sdp::offer(
            &local_b,
            &srtp_offer(MediaSetting::Auto, Proto::Tls, &[Suite::AesCm128HmacSha1_32]),
            &mut fresh_key,
        )
        .unwrap();
        let text = b_offer.to_string();
        assert!(text.contains("m=audio 40000 RTP/SAVP 0 101"), "{text}");
        assert!(text.contains("AES_CM_128_HMAC_SHA1_32"), "{text}");
        assert!(!text.contains("pUUBiPfLKi6qR8ZSe2Db6r5slrJD8Kaz1WfHbZSt"));
        // B answers as a phone would.
        let b_answer = pbx_sdp::answer(
            &b_offer,
            &LocalMedia::new("127.0.0.1".parse().unwrap(), 31000),
            &SrtpPolicy::default(),
            &mut fresh_key,
        )
        .unwrap()
        .0;
        let b_stream = pending.accept_answer(&b_answer).unwrap().remove(0);
        // A gets the answer with B's codecs and its own suite (_80).
        let local_a = local_media(ip, 40002, agreed_codecs(&b_stream), None, 7);
        let (a_answer, a_streams) =
            pbx_sdp::answer(&a_offer, &local_a, &answer_policy(MediaSetting::Auto), &mut fresh_key).unwrap();
        let a_stream = &a_streams[0];
        assert!(a_answer.to_string().contains("AES_CM_128_HMAC_SHA1_80"));
        let a_keys = leg_config(a_stream).srtp.unwrap();
        let b_keys = leg_config(&b_stream).srtp.unwrap();
        assert_eq!(a_keys.suite, Suite::AesCm128HmacSha1_80);
        assert_eq!(b_keys.suite, Suite::AesCm128HmacSha1_32);
        assert_ne!(a_keys.outbound.key(), b_keys.outbound.key());
        assert_ne!(a_keys.outbound.key(), a_keys.inbound.key());
    }

    #[test]
    fn unencrypted_transports_get_plain_rtp_by_default() {
        assert!(srtp_offer(MediaSetting::Auto, Proto::Udp, &[]).suites.is_empty());
        assert!(srtp_offer(MediaSetting::Auto, Proto::Tls, &[]).mandatory);
        assert!(!srtp_offer(MediaSetting::Optional, Proto::Udp, &[]).mandatory);
    }
}
