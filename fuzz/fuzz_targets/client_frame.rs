//! Client frame decoding: any bytes decode, or are refused with a
//! documented code; never a panic.
#![no_main]

use chat_protocol::{ErrorCode, Inbound};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = Inbound::parse(data) {
        assert!(
            e.error.code == ErrorCode::MALFORMED_FRAME || e.error.code == ErrorCode::INVALID_FRAME
        );
    }
});
