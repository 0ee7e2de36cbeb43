//! An `Authorization` value: parsing and verification must not panic.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use pbx_sip::auth::{Authenticator, Credential, DigestResponse};
use pbx_sip::message::Method;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(response) = DigestResponse::parse(text) {
        let mut auth = Authenticator::new("fuzz.example", [1; 32]).expect("valid realm");
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let _ = auth.verify(&response, &Method::Register, &Credential::Password("pw".into()), now);
    }
});
