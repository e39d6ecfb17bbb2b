//! Tells chat-api's build script where this crate's source is (as
//! `DEP_CHAT_PROTOCOL_SRC`), so that the fingerprint of a shared-library
//! plugin covers the frame types it shares with chatd. Nothing else.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    println!("cargo:src={dir}/src");
}
