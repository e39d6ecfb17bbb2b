//! Test fixture: a plugin built against chat-api 1.0.0 (plugin ABI 1.0) by
//! another compiler than chatd's, exercising the hooks and host services
//! of ABI 1.0 across the boundary.
//!
//! * `{"type":"compat_hello","room":R}` joins the sender to `R` through the
//!   host, waits on a host timer, and answers
//!   `{"type":"compat_hello","id":..,"rustc":..,"chat_api":..,"room":..,"members":[..],"nick":..}`.
//! * `/upper TEXT` in a `say` is delivered as `TEXT` in capitals (the
//!   frame changed in place).
//! * `on_delivered`: the sender gets
//!   `{"type":"compat_delivered","msg_id":..,"target":..,"recipients":..,"text":..}`.

use std::sync::Arc;
use std::time::Duration;

use chat_api::serde::Deserialize;
use chat_api::serde_json::json;
use chat_api::{
    async_trait, ClientFrame, ConfigError, Delivery, HandlerResult, Host, Inbound,
    MessageHandler, PluginContext, Request, Session, Verdict,
};

chat_api::export_plugin!("compat", Compat::from_context);

#[derive(Deserialize)]
#[serde(crate = "chat_api::serde")]
struct Hello {
    room: String,
}

pub struct Compat {
    host: Arc<dyn Host>,
}

impl Compat {
    fn from_context(context: PluginContext) -> Result<Compat, ConfigError> {
        Ok(Compat { host: context.host })
    }
}

#[async_trait]
impl MessageHandler for Compat {
    fn name(&self) -> &str {
        "compat"
    }

    fn features(&self) -> Vec<String> {
        vec!["compat".to_string()]
    }

    async fn on_frame(&self, session: &dyn Session, frame: &mut Inbound) -> HandlerResult {
        if let Request::Core(ClientFrame::Say { text, .. }) = &mut frame.request {
            if let Some(rest) = text.strip_prefix("/upper ") {
                *text = rest.to_uppercase();
            }
            return Ok(Verdict::Continue);
        }
        if frame.kind != "compat_hello" {
            return Ok(Verdict::Continue);
        }
        let hello: Hello = match frame.decode_custom() {
            Ok(hello) => hello,
            Err(error) => return Ok(Verdict::Reject(error)),
        };
        let (room, members) = match self.host.join_room(session.id(), &hello.room) {
            Ok(joined) => joined,
            Err(error) => return Ok(Verdict::Reject(error)),
        };
        self.host.sleep(Duration::from_millis(1)).await;
        session.send_frame(&json!({
            "type": "compat_hello",
            "id": frame.id,
            "rustc": env!("COMPAT_RUSTC_VERSION"),
            "chat_api": chat_api::plugin_abi::ABI_VERSION.to_string(),
            "room": room,
            "members": members,
            "nick": session.nick(),
        }));
        Ok(Verdict::Done)
    }

    async fn on_delivered(&self, session: &dyn Session, delivery: &Delivery<'_>) {
        session.send_frame(&json!({
            "type": "compat_delivered",
            "msg_id": delivery.msg_id,
            "target": delivery.target,
            "recipients": delivery.recipients,
            "text": delivery.text,
        }));
    }
}
