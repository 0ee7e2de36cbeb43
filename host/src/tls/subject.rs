//! The subject of a client certificate as an RFC 4514 string, the way
//! policy plugins see it (`CN=phone-100,O=Example`).

use std::fmt::Write;
use x509_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// The subject of the DER certificate `der` in RFC 4514 form: the relative
/// distinguished names in reverse order of their encoding (most specific
/// first), separated by `,`; the attributes of a multi-valued one joined by
/// `+`. `None` when `der` is not a certificate.
pub fn subject_rfc4514(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(name_rfc4514(cert.subject()))
}

fn name_rfc4514(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            attribute(&mut out, attr);
        }
    }
    out
}

/// `type=value`: the short name of the types RFC 4514 §3 lists (else the
/// dotted OID); a string value escaped (§2.4), any other value as `#` and
/// the hex of its BER encoding (§2.4).
fn attribute(out: &mut String, attr: &AttributeTypeAndValue<'_>) {
    let oid = attr.attr_type().to_id_string();
    let short = match oid.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => &oid,
    };
    out.push_str(short);
    out.push('=');
    let value = attr.attr_value();
    match string_value(value) {
        Some(s) => escape(out, &s),
        None => {
            out.push('#');
            for b in ber(value) {
                let _ = write!(out, "{b:02x}");
            }
        }
    }
}

/// The text of a directory string value (RFC 5280 `DirectoryString` and the
/// other string types names use), `None` for anything else.
fn string_value(value: &Any<'_>) -> Option<String> {
    if value.class() != Class::Universal {
        return None;
    }
    let data = value.data;
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::NumericString | Tag::Ia5String | Tag::VisibleString => {
            std::str::from_utf8(data).ok().map(str::to_string)
        }
        // T.61 in theory; Latin-1 in practice.
        Tag::TeletexString => Some(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units = data.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units).collect::<Result<String, _>>().ok()
        }
        Tag::UniversalString => {
            if !data.len().is_multiple_of(4) {
                return None;
            }
            data.chunks(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

/// The DER encoding of `value` (identifier, definite length, contents).
fn ber(value: &Any<'_>) -> Vec<u8> {
    let class = match value.class() {
        Class::Universal => 0u8,
        Class::Application => 1,
        Class::ContextSpecific => 2,
        Class::Private => 3,
    };
    let constructed = if value.header.is_constructed() { 0x20 } else { 0 };
    let mut out = Vec::with_capacity(value.data.len() + 8);
    let tag = value.tag().0;
    if tag < 31 {
        out.push(class << 6 | constructed | tag as u8);
    } else {
        out.push(class << 6 | constructed | 31);
        let mut groups = Vec::new();
        let mut t = tag;
        loop {
            groups.push((t & 0x7f) as u8);
            t >>= 7;
            if t == 0 {
                break;
            }
        }
        for (i, g) in groups.iter().rev().enumerate() {
            out.push(if i + 1 < groups.len() { g | 0x80 } else { *g });
        }
    }
    let len = value.data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(value.data);
    out
}

/// Escape a string value as RFC 4514 §2.4 asks: `"+,;<>\` always, a
/// leading space or `#`, a trailing space, NUL. Other control characters
/// are hex-escaped too, so a subject never carries CR, LF or ESC into a log
/// line or a plugin.
fn escape(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '#' if i == 0 => out.push_str("\\#"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\{b:02x}");
                }
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, DnValue, KeyPair};

    fn cert(dn: &[(DnType, DnValue)]) -> Vec<u8> {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        for (t, v) in dn {
            p.distinguished_name.push(t.clone(), v.clone());
        }
        let key = KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn most_specific_first_with_short_names() {
        let der = cert(&[
            (DnType::CountryName, DnValue::PrintableString("DE".try_into().unwrap())),
            (DnType::OrganizationName, DnValue::Utf8String("Example".into())),
            (DnType::CommonName, DnValue::Utf8String("phone-100".into())),
        ]);
        assert_eq!(subject_rfc4514(&der).unwrap(), "CN=phone-100,O=Example,C=DE");
    }

    #[test]
    fn special_characters_are_escaped() {
        let der = cert(&[
            (
                DnType::OrganizationName,
                DnValue::Utf8String("Smith, Jones & Co".into()),
            ),
            (DnType::CommonName, DnValue::Utf8String("#1 \"desk\"+<a>;b\\c ".into())),
        ]);
        assert_eq!(
            subject_rfc4514(&der).unwrap(),
            r#"CN=\#1 \"desk\"\+\<a\>\;b\\c\ ,O=Smith\, Jones & Co"#
        );
        let der = cert(&[(DnType::CommonName, DnValue::Utf8String(" x\r\ny".into()))]);
        assert_eq!(subject_rfc4514(&der).unwrap(), r"CN=\ x\0d\0ay");
    }

    #[test]
    fn other_types_and_values() {
        let der = cert(&[
            (
                DnType::CustomDnType(vec![2, 5, 4, 5]),
                DnValue::PrintableString("42".try_into().unwrap()),
            ),
            (DnType::CommonName, DnValue::BmpString("Grüße".try_into().unwrap())),
        ]);
        assert_eq!(subject_rfc4514(&der).unwrap(), "CN=Grüße,2.5.4.5=42");
        let der = cert(&[]);
        assert_eq!(subject_rfc4514(&der).unwrap(), "");
    }

    #[test]
    fn not_a_certificate() {
        assert_eq!(subject_rfc4514(b"\x30\x03junk"), None);
        assert_eq!(subject_rfc4514(&[]), None);
    }

    #[test]
    fn non_string_values_are_hex() {
        let mut s = String::new();
        let any = Any::from_tag_and_data(Tag::Integer, &[0x2a]);
        assert_eq!(string_value(&any), None);
        s.extend(ber(&any).iter().map(|b| format!("{b:02x}")));
        assert_eq!(s, "02012a");
    }
}
