//! Helpers shared by the web tests: the workspace's test kit (a server on
//! loopback port 0 with the web listener on, a WebSocket client that waits
//! on frames, never on time), and a plugin that reports what the session
//! API says about a connection.

#![allow(dead_code)]

pub use chatd_testkit::*;

/// A plugin that answers `{"type":"probe"}` with what the session API says
/// about the connection, to observe it from a client.
pub struct Probe;

#[async_trait::async_trait]
impl chat_api::MessageHandler for Probe {
    fn name(&self) -> &str {
        "probe"
    }
    async fn on_frame(
        &self,
        session: &dyn chat_api::Session,
        frame: &mut chat_api::Inbound,
    ) -> chat_api::HandlerResult {
        if frame.kind != "probe" {
            return Ok(chat_api::Verdict::Continue);
        }
        session.send_frame(&serde_json::json!({
            "type": "probe",
            "id": frame.id,
            "transport": session.transport(),
            "encrypted": session.is_encrypted(),
        }));
        Ok(chat_api::Verdict::Done)
    }
}

/// The built-in plugins plus [`Probe`] (enable with `[[plugin]] name = "probe"`).
pub fn registry_with_probe() -> chatd::PluginRegistry {
    let mut registry = chatd::PluginRegistry::builtin();
    registry.register("probe", |_| Ok(std::sync::Arc::new(Probe)));
    registry
}
