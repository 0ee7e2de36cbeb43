//! Shared helpers: a deterministic key generator and local media.

use pbx_sdp::{KeyGenError, KeyMaterial, LocalMedia, SessionOrigin, Suite};

/// Keys whose bytes are a counter pattern: deterministic, distinct per call.
pub fn det_keygen(seed: u8) -> impl FnMut(Suite) -> Result<KeyMaterial, KeyGenError> {
    let mut n = seed;
    move |suite| {
        n = n.wrapping_add(1);
        let len = suite.key_len() + suite.salt_len();
        let bytes: Vec<u8> = (0..len)
            .map(|i| n.wrapping_mul(17) ^ (i as u8).wrapping_mul(31))
            .collect();
        Ok(KeyMaterial::from_concatenated(suite, &bytes).expect("length matches the suite"))
    }
}

/// The PBX's relay side of a leg, on documentation addresses.
pub fn local_v4(port: u16) -> LocalMedia {
    let mut l = LocalMedia::new("198.51.100.1".parse().unwrap(), port);
    l.origin = SessionOrigin::new(42);
    l
}
