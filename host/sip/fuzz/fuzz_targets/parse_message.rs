//! Any bytes: parse must not panic; a parsed message must print to bytes
//! that parse to the same message; a refused one must give a sane 400.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbx_sip::message::{Message, ParseConfig};
use pbx_sip::response::bad_request;

fuzz_target!(|data: &[u8]| {
    let cfg = ParseConfig::default();
    match Message::parse(data, &cfg) {
        Ok(msg) => {
            let printed = msg.to_bytes();
            let again = Message::parse(&printed, &cfg).expect("printed message parses");
            assert_eq!(again, msg);
        }
        Err(e) => {
            if let Ok(reply) = bad_request(data, &e, "fuzz") {
                assert!(reply.starts_with(b"SIP/2.0 "));
            }
        }
    }
});
