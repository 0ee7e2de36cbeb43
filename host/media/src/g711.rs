//! G.711 µ-law and A-law to 16-bit linear PCM (ITU-T G.711), as lookup
//! tables built at compile time from the classic Sun reference routines.

/// µ-law code → linear sample.
pub(crate) static ULAW: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_to_linear(i as u8);
        i += 1;
    }
    t
};

/// A-law code → linear sample.
pub(crate) static ALAW: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_to_linear(i as u8);
        i += 1;
    }
    t
};

/// Sun `ulaw2linear`: invert, mantissa plus bias shifted by the segment.
const fn ulaw_to_linear(code: u8) -> i16 {
    const BIAS: i32 = 0x84;
    let u = !code;
    let t = ((((u & 0x0F) as i32) << 3) + BIAS) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { BIAS - t } else { t - BIAS }) as i16
}

/// Sun `alaw2linear`: even bits inverted, segment 0 without the leading one.
const fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => t = (t + 0x108) << (seg - 1),
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(ULAW[0xFF], 0);
        assert_eq!(ULAW[0x7F], 0);
        assert_eq!(ULAW[0x00], -32124);
        assert_eq!(ULAW[0x80], 32124);
        assert_eq!(ULAW[0xFE], 8);
        assert_eq!(ULAW[0x7E], -8);
        assert_eq!(ULAW[0xEF], 132); // segment 1 starts at 132 + 8 - 8
        assert_eq!(ULAW[0xDF], 396);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(ALAW[0xD5], 8);
        assert_eq!(ALAW[0x55], -8);
        assert_eq!(ALAW[0xAA], 32256);
        assert_eq!(ALAW[0x2A], -32256);
        assert_eq!(ALAW[0xC5], 264);
        assert_eq!(ALAW[0xF5], 528);
    }

    #[test]
    fn tables_are_odd_symmetric_and_monotonic() {
        for c in 0..128usize {
            assert_eq!(ULAW[c], -ULAW[c | 0x80], "µ-law {c:#x}");
            assert_eq!(ALAW[c ^ 0x80], -ALAW[c], "A-law {c:#x}");
        }
        // µ-law: codes 0x80..=0xFF go from the largest positive value down to 0.
        for c in 0x80..0xFFusize {
            assert!(ULAW[c] > ULAW[c + 1]);
        }
    }
}
