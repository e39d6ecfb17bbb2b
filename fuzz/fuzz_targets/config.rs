//! The configuration parser: any text parses or is refused with a message
//! naming the file; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = chatd::Config::parse(text, "fuzz.toml", None) {
            assert!(e.to_string().starts_with("fuzz.toml"));
        }
    }
});
