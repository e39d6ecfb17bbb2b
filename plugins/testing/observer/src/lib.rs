//! Test fixture: a plugin that reports the hooks chatd calls, so that tests
//! can check them through the shared-library boundary.
//!
//! * `on_delivered`: the sender gets
//!   `{"type":"observed_delivery","from":..,"kind":..,"target":..,"msg_id":..,"ts":..,"recipients":..,"text":..}`.
//! * `on_session_end`: everyone connected gets
//!   `{"type":"observed_session_end","session":..,"nick":..,"account":..}`.
//! * `{"type":"kv","op":OP,"key":K,"value":V}` uses the plugin's key-value
//!   store (ABI 1.1): OP `put`, `get`, `delete` or `list` (K is the
//!   prefix); answered with `{"type":"kv","id":..,"result":..}` (`get`: the
//!   value as text or null), or an error whose code is the storage error's.

use std::sync::Arc;

use chat_api::serde::Deserialize;
use chat_api::serde_json::{json, Value};
use chat_api::{
    async_trait, ApiError, ConfigError, Delivery, ErrorCode, HandlerResult, Host, Inbound,
    MessageHandler, PluginContext, Session, StorageError, Verdict,
};

chat_api::export_plugin!("observer", Observer::from_context);

pub struct Observer {
    host: Arc<dyn Host>,
}

#[derive(Deserialize)]
#[serde(crate = "chat_api::serde")]
struct KvRequest {
    op: String,
    key: String,
    #[serde(default)]
    value: String,
}

impl Observer {
    fn from_context(context: PluginContext) -> Result<Observer, ConfigError> {
        Ok(Observer { host: context.host })
    }

    async fn store(&self, request: KvRequest) -> Result<Value, StorageError> {
        let key = request.key.as_str();
        Ok(match request.op.as_str() {
            "put" => {
                self.host.kv_put(key, request.value.as_bytes()).await?;
                Value::Bool(true)
            }
            "get" => match self.host.kv_get(key).await? {
                Some(value) => Value::String(String::from_utf8_lossy(&value).into_owned()),
                None => Value::Null,
            },
            "delete" => Value::Bool(self.host.kv_delete(key).await?),
            _ => json!(self.host.kv_list(key).await?),
        })
    }
}

#[async_trait]
impl MessageHandler for Observer {
    fn name(&self) -> &str {
        "observer"
    }

    async fn on_frame(&self, session: &dyn Session, frame: &mut Inbound) -> HandlerResult {
        if frame.kind != "kv" {
            return Ok(Verdict::Continue);
        }
        let request: KvRequest = match frame.decode_custom() {
            Ok(request) => request,
            Err(error) => return Ok(Verdict::Reject(error)),
        };
        match self.store(request).await {
            Ok(result) => {
                session.send_frame(&json!({"type": "kv", "id": frame.id, "result": result}));
                Ok(Verdict::Done)
            }
            Err(error) => Ok(Verdict::Reject(ApiError::new(
                ErrorCode::custom(error.kind.code()),
                error.message,
            ))),
        }
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
