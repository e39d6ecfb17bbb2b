//! Test fixture: a plugin declaring the next minor version of this
//! chat-api's plugin ABI (as a plugin built against a newer chat-api 1.x
//! would), through the test-only arm of `export_plugin!`. chatd must refuse
//! it before calling anything in it: the plugin may call host functions
//! this chatd does not have.

use chat_api::plugin_abi::{AbiVersion, ABI_VERSION};
use chat_api::{
    async_trait, ConfigError, HandlerResult, Inbound, MessageHandler, Session, Verdict,
};

chat_api::export_plugin!(
    @declare_abi AbiVersion { major: ABI_VERSION.major, minor: ABI_VERSION.minor + 1 },
    "newer-minor",
    |_context| -> Result<Unreachable, ConfigError> {
        panic!("chatd must never call the constructor of a library of a newer ABI minor")
    }
);

/// Never built.
pub struct Unreachable;

#[async_trait]
impl MessageHandler for Unreachable {
    fn name(&self) -> &str {
        "newer-minor"
    }
    async fn on_frame(&self, _session: &dyn Session, _frame: &mut Inbound) -> HandlerResult {
        Ok(Verdict::Continue)
    }
}
