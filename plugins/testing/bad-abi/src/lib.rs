//! Test fixture: a plugin declaring a build fingerprint other than the one
//! it was built with (another compiler), through the test-only arm of
//! `export_plugin!`. chatd must refuse it before calling anything in it.

use chat_api::plugin_abi::BuildFingerprint;
use chat_api::{
    async_trait, ConfigError, HandlerResult, Inbound, MessageHandler, Session, Verdict,
};

chat_api::export_plugin!(
    @declare_fingerprint BuildFingerprint {
        rustc_release: "1.0.0",
        rustc_commit: "a59bd12f3df7b1b1ba59f9e7171a1a1a2a3a4a5a",
        ..BuildFingerprint::CURRENT
    },
    "bad-abi",
    |_context| -> Result<Unreachable, ConfigError> {
        panic!("chatd must never call the constructor of a library with another ABI")
    }
);

/// Never built.
pub struct Unreachable;

#[async_trait]
impl MessageHandler for Unreachable {
    fn name(&self) -> &str {
        "bad-abi"
    }
    async fn on_frame(&self, _session: &dyn Session, _frame: &mut Inbound) -> HandlerResult {
        Ok(Verdict::Continue)
    }
}
