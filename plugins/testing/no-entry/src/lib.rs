//! Test fixture: a shared library that is not a chatd plugin (it exports a
//! symbol, but not `chatd_plugin_declaration`). chatd must refuse it.

/// Something for the library to export.
#[unsafe(no_mangle)]
pub extern "C" fn not_a_chatd_plugin() -> u32 {
    42
}
