//! Just enough RTP/RTCP parsing for SRTP: header length, SSRC, sequence
//! number, and the packet index estimate of RFC 3711 §3.3.1.
//!
//! Everything here works on untrusted bytes and uses checked access only.

use crate::Error;

/// Length of the fixed RTP header.
pub(crate) const RTP_HEADER_LEN: usize = 12;
/// Length of the RTCP header part that SRTCP leaves in the clear
/// (first word + sender SSRC).
pub(crate) const RTCP_HEADER_LEN: usize = 8;

/// The fields of an RTP header SRTP needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtpHeader {
    /// Header length including CSRCs and the header extension: where the
    /// encrypted payload starts.
    pub(crate) len: usize,
    pub(crate) seq: u16,
    pub(crate) ssrc: u32,
}

/// Parses the RTP header at the start of `pkt` (`pkt` may extend past the
/// payload, e.g. over the tag: only the header has to fit).
#[inline]
pub(crate) fn parse_rtp(pkt: &[u8]) -> Result<RtpHeader, Error> {
    let fixed: &[u8; RTP_HEADER_LEN] = pkt
        .get(..RTP_HEADER_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::Malformed("shorter than an RTP header"))?;
    if fixed[0] >> 6 != 2 {
        return Err(Error::Malformed("RTP version is not 2"));
    }
    let mut len = RTP_HEADER_LEN + 4 * usize::from(fixed[0] & 0x0F);
    if fixed[0] & 0x10 != 0 {
        let ext = pkt
            .get(len..len + 4)
            .ok_or(Error::Malformed("truncated RTP header extension"))?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    if len > pkt.len() {
        return Err(Error::Malformed("RTP header longer than the packet"));
    }
    Ok(RtpHeader {
        len,
        seq: u16::from_be_bytes([fixed[2], fixed[3]]),
        ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
    })
}

/// Checks the RTCP header at the start of `pkt` and returns the sender SSRC.
#[inline]
pub(crate) fn parse_rtcp(pkt: &[u8]) -> Result<u32, Error> {
    let h = pkt
        .get(..RTCP_HEADER_LEN)
        .ok_or(Error::Malformed("shorter than an RTCP header"))?;
    if h[0] >> 6 != 2 {
        return Err(Error::Malformed("RTCP version is not 2"));
    }
    Ok(u32::from_be_bytes([h[4], h[5], h[6], h[7]]))
}

/// Estimates the 48-bit packet index of sequence number `seq` given the
/// highest index accepted so far (RFC 3711 §3.3.1 and Appendix A, as
/// libsrtp does it: never guesses a ROC below 0).
///
/// Returns `None` when the index would pass 2^48 (ROC overflow): the key
/// must be replaced before that.
#[inline]
pub(crate) fn estimate_index(highest: Option<u64>, seq: u16) -> Option<u64> {
    let Some(highest) = highest else {
        return Some(u64::from(seq));
    };
    let s_l = (highest & 0xFFFF) as i64;
    let roc = highest >> 16;
    let seq_i = i64::from(seq);
    let v = if s_l < 0x8000 {
        if seq_i - s_l > 0x8000 && roc > 0 { roc - 1 } else { roc }
    } else if s_l - 0x8000 > seq_i {
        roc + 1
    } else {
        roc
    };
    (v <= u64::from(u32::MAX)).then_some((v << 16) | u64::from(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        let mut p = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
        assert_eq!(parse_rtp(&p).unwrap().len, 12);
        p[0] = 0x82;
        assert!(parse_rtp(&p).is_err());
        p.extend_from_slice(&[0; 8]);
        assert_eq!(parse_rtp(&p).unwrap().len, 20);
        p[0] = 0x92;
        assert!(parse_rtp(&p).is_err());
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]);
        assert_eq!(parse_rtp(&p).unwrap().len, 28);
        p[0] = 0x40;
        assert!(parse_rtp(&p).is_err());
        assert!(parse_rtp(&[]).is_err());
    }

    #[test]
    fn index_estimate() {
        assert_eq!(estimate_index(None, 65530), Some(65530));
        // In order and across the wrap.
        assert_eq!(estimate_index(Some(65535), 0), Some(65536));
        assert_eq!(estimate_index(Some(65530), 3), Some(65539));
        // Late packet from before the wrap.
        assert_eq!(estimate_index(Some(65536 + 2), 65534), Some(65534));
        // No ROC below zero.
        assert_eq!(estimate_index(Some(10), 60000), Some(60000));
        // ROC overflow.
        assert_eq!(estimate_index(Some((u64::from(u32::MAX) << 16) | 0xFFFF), 0), None);
    }
}
