//! `ping` and `quit`: keeping the connection alive and ending it.

use chat_api::{ErrorCode, RequestId, ServerFrame};

use super::Context;

/// `ping`: answered with its token.
pub fn ping(id: Option<RequestId>, token: Option<chat_api::serde_json::Value>) -> ServerFrame {
    ServerFrame::Pong { id, token }
}

/// `quit`: ends the session with the client's reason.
pub async fn quit(ctx: Context<'_>, reason: Option<String>) {
    // The `sent` of every message this client sent comes first.
    if let Some(history) = &ctx.shared.history {
        history.flush().await;
    }
    ctx.peer.closer.close(
        ErrorCode::QUIT,
        reason.unwrap_or_else(|| "quit".to_string()),
    );
}
