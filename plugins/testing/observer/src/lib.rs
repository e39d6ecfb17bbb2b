//! Test fixture: a plugin that reports the hooks chatd calls, so that tests
//! can check them through the shared-library boundary.
//!
//! * `on_delivered`: the sender gets
//!   `{"type":"observed_delivery","from":..,"kind":..,"target":..,"msg_id":..,"ts":..,"recipients":..,"text":..}`.
//! * `on_session_end`: everyone connected gets
//!   `{"type":"observed_session_end","session":..,"nick":..,"account":..}`.

use std::sync::Arc;

use chat_api::serde_json::json;
use chat_api::{
    async_trait, ConfigError, Delivery, HandlerResult, Host, Inbound, MessageHandler,
    PluginContext, Session, Verdict,
};

chat_api::export_plugin!("observer", Observer::from_context);

pub struct Observer {
    host: Arc<dyn Host>,
}

impl Observer {
    fn from_context(context: PluginContext) -> Result<Observer, ConfigError> {
        Ok(Observer { host: context.host })
    }
}

#[async_trait]
impl MessageHandler for Observer {
    fn name(&self) -> &str {
        "observer"
    }

    async fn on_frame(&self, _session: &dyn Session, _frame: &mut Inbound) -> HandlerResult {
        Ok(Verdict::Continue)
    }

    async fn on_delivered(&self, session: &dyn Session, delivery: &Delivery<'_>) {
        session.send_frame(&json!({
            "type": "observed_delivery",
            "from": session.nick(),
            "kind": delivery.kind,
            "target": delivery.target,
            "msg_id": delivery.msg_id,
            "ts": delivery.ts,
            "recipients": delivery.recipients,
            "text": delivery.text,
        }));
    }

    async fn on_session_end(&self, session: &dyn Session) {
        self.host.broadcast(chat_api::Payload::encode(&json!({
            "type": "observed_session_end",
            "session": session.id(),
            "nick": session.nick(),
            "account": session.account(),
        })));
    }
}
