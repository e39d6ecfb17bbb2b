//! The chatd child process helper now lives in the test kit
//! (`chatd_testkit::process`); this path stays for tests that include it
//! with `#[path = "support/chatd_process.rs"]`.

#![allow(unused_imports)]

pub use chatd_testkit::process::*;
pub use chatd_testkit::WAIT;
