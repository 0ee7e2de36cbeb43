//! A stream buffer: framing must not panic, and a frame it reports must lie
//! within the buffer and the size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbx_sip::framing::{Framed, check};
use pbx_sip::message::{Message, ParseConfig};

fuzz_target!(|data: &[u8]| {
    let cfg = ParseConfig { max_size: 4096 };
    let mut rest = data;
    while let Ok(frame) = check(rest, &cfg) {
        let len = match frame {
            Framed::Message { len } => {
                assert!(len <= cfg.max_size);
                let _ = Message::parse(&rest[..len], &cfg);
                len
            }
            Framed::Ping { len } | Framed::KeepAlive { len } => len,
        };
        assert!(len > 0 && len <= rest.len());
        rest = &rest[len..];
    }
});
