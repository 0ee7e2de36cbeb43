//! Just enough RTP and RTCP header reading for the relay: plain-leg
//! validation, RFC 5761 demultiplexing, and the fields the statistics and
//! the recorder need.
//!
//! Everything works on untrusted bytes with checked access only.

use std::ops::Range;

/// The RTP header fields the relay uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RtpInfo {
    pub(crate) pt: u8,
    pub(crate) seq: u16,
    pub(crate) ts: u32,
    pub(crate) ssrc: u32,
    /// Where the payload is, padding excluded.
    pub(crate) payload: Range<usize>,
}

/// RFC 5761 §4: on a multiplexed port, a second octet whose low seven
/// bits are 64..=95 is RTCP (packet types 192..=223), anything else RTP.
#[inline]
pub(crate) fn looks_like_rtcp(pkt: &[u8]) -> bool {
    pkt.get(1).is_some_and(|b| (64..=95).contains(&(b & 0x7F)))
}

/// Parses an RTP packet (version 2, CSRCs, extension, padding all inside
/// the packet). `None` for anything else.
#[inline]
pub(crate) fn parse_rtp(pkt: &[u8]) -> Option<RtpInfo> {
    let h = pkt.get(..12)?;
    if h[0] >> 6 != 2 {
        return None;
    }
    let mut start = 12 + 4 * usize::from(h[0] & 0x0F);
    if h[0] & 0x10 != 0 {
        let ext = pkt.get(start..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut end = pkt.len();
    if h[0] & 0x20 != 0 {
        let pad = usize::from(*pkt.last()?);
        if pad == 0 {
            return None;
        }
        end = end.checked_sub(pad)?;
    }
    if start > end {
        return None;
    }
    Some(RtpInfo {
        pt: h[1] & 0x7F,
        seq: u16::from_be_bytes([h[2], h[3]]),
        ts: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        ssrc: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        payload: start..end,
    })
}

/// Checks that `pkt` starts like an RTCP compound packet: version 2, a
/// packet type in 192..=223 and a first length field that fits.
#[inline]
pub(crate) fn is_rtcp(pkt: &[u8]) -> bool {
    let Some(h) = pkt.get(..8) else { return false };
    let words = usize::from(u16::from_be_bytes([h[2], h[3]]));
    h[0] >> 6 == 2 && (192..=223).contains(&h[1]) && (words + 1) * 4 <= pkt.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(first: u8, pt: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![first, pt, 0x12, 0x34, 0, 0, 0x01, 0x40, 0xCA, 0xFE, 0xBA, 0xBE];
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn parses_plain_header() {
        let p = rtp(0x80, 0x80 | 8, &[1, 2, 3]);
        let i = parse_rtp(&p).unwrap();
        assert_eq!((i.pt, i.seq, i.ts, i.ssrc), (8, 0x1234, 320, 0xCAFE_BABE));
        assert_eq!(i.payload, 12..15);
    }

    #[test]
    fn csrc_extension_and_padding() {
        // One CSRC, a one-word extension, then 2 payload octets and 2 of padding.
        let mut p = rtp(0x80 | 0x20 | 0x10 | 1, 0, &[0, 0, 0, 9]);
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4, 7, 7, 0, 2]);
        let i = parse_rtp(&p).unwrap();
        assert_eq!(i.payload, 24..26);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &[][..],
            &[0x80; 11][..],
            &rtp(0x40, 0, &[1])[..],                // version 1
            &rtp(0x8F, 0, &[1; 8])[..],             // 15 CSRCs past the end
            &rtp(0x90, 0, &[0, 0, 0xFF, 0xFF])[..], // extension past the end
            &rtp(0xA0, 0, &[1, 0])[..],             // zero padding count
            &rtp(0xA0, 0, &[1, 200])[..],           // padding past the start
        ] {
            assert_eq!(parse_rtp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn demultiplexing() {
        assert!(looks_like_rtcp(&[0x80, 200]));
        assert!(looks_like_rtcp(&[0x80, 223]));
        assert!(!looks_like_rtcp(&[0x80, 0]));
        assert!(!looks_like_rtcp(&[0x80, 0x80 | 8]));
        assert!(!looks_like_rtcp(&[0x80, 96]));
        assert!(!looks_like_rtcp(&[0x80]));
    }

    #[test]
    fn rtcp_check() {
        let sr = [0x80, 200, 0, 1, 1, 2, 3, 4];
        assert!(is_rtcp(&sr));
        assert!(!is_rtcp(&[0x80, 200, 0, 2, 1, 2, 3, 4])); // length past the end
        assert!(!is_rtcp(&[0x80, 100, 0, 1, 1, 2, 3, 4]));
        assert!(!is_rtcp(&sr[..7]));
    }
}
