//! Test fixture: a plugin declaring plugin ABI 2.0, a major version no
//! chatd of ABI 1.x speaks, through the test-only arm of `export_plugin!`.
//! chatd must refuse it before calling anything in it.

use chat_api::plugin_abi::AbiVersion;
use chat_api::{
    async_trait, ConfigError, HandlerResult, Inbound, MessageHandler, Session, Verdict,
};

chat_api::export_plugin!(
    @declare_abi AbiVersion { major: 2, minor: 0 },
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
