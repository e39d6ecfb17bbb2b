//! The core commands: what chatd does with a frame no plugin consumed, one
//! function per command (as mini-redis's `cmd/`, sable's
//! `command/handlers/`), grouped by concern:
//!
//! * [`identity`]: `hello` (a second one), `nick`;
//! * [`rooms`]: `join`, `part`, `users`, `rooms`;
//! * [`chat`]: `say`, `msg`, `broadcast`;
//! * [`history`]: `history`, `read`, `unread`;
//! * [`connection`]: `ping`, `quit`.
//!
//! Each returns the reply to send (if any) or the error; the session sends it.

use std::sync::Arc;

use chat_api::{ApiError, ClientFrame, ErrorCode, Inbound, MessageKind, Request, ServerFrame};

use crate::hub::{Accepted, Peer};
use crate::shared::Shared;

pub mod chat;
pub mod clustered;
pub mod connection;
pub mod history;
pub mod identity;
pub mod rooms;

/// What a command works with: the server's shared state and the session
/// the frame came from.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub shared: &'a Shared,
    pub peer: &'a Arc<Peer>,
}

/// Runs the command a frame names. `typed` is a chat message's text before
/// the pipeline (a plugin may have changed it); a chat message the hub
/// accepted is described in `delivered`, for the plugins' `on_delivered`.
pub async fn route(
    ctx: Context<'_>,
    frame: Inbound,
    typed: Option<String>,
    delivered: &mut Option<Delivered>,
) -> Result<Option<ServerFrame>, ApiError> {
    let id = frame.id;
    let request = match frame.request {
        Request::Core(request) => request,
        Request::Custom(_) => return Err(unknown_type(&frame.kind)),
    };
    // The text as delivered, when it is not what the client typed.
    let changed = |text: &str| {
        typed
            .as_deref()
            .filter(|typed| *typed != text)
            .map(|_| text.to_string())
    };
    Ok(match request {
        ClientFrame::Hello { .. } => return Err(identity::hello()),
        ClientFrame::Nick { nick } => Some(identity::nick(ctx, id, nick).await?),
        ClientFrame::Join { room } => Some(rooms::join(ctx, id, &room)?),
        ClientFrame::Part { room } => Some(rooms::part(ctx, id, &room)?),
        ClientFrame::Users { room } => Some(rooms::users(ctx, id, room)?),
        ClientFrame::Rooms {} => Some(rooms::list(ctx, id)),
        ClientFrame::Say { room, text } => {
            let changed = changed(&text);
            chat::say(ctx, id, &room, text, changed, delivered).await?
        }
        ClientFrame::Msg { to, text } => {
            let changed = changed(&text);
            chat::msg(ctx, id, &to, text, changed, delivered).await?
        }
        ClientFrame::Broadcast { text } => {
            let changed = changed(&text);
            chat::broadcast(ctx, id, text, changed, delivered).await?
        }
        ClientFrame::History {
            room,
            with,
            before,
            after,
            limit,
            floor,
        } => Some(
            ctx.history_page(id, room, with, before, after, limit, floor)
                .await?,
        ),
        ClientFrame::Read { room, with, msg_id } => {
            ctx.mark_read(room, with, msg_id).await?;
            Some(ServerFrame::ok(id))
        }
        ClientFrame::Unread {} => Some(ctx.unread(id).await?),
        ClientFrame::Ping { token } => Some(connection::ping(id, token)),
        ClientFrame::Quit { reason } => {
            connection::quit(ctx, reason).await;
            None
        }
        // `Inbound::parse` makes a core frame only of a type listed in
        // `ClientFrame::KINDS`, each handled above; a variant added to
        // chat-protocol without a case here lands in this arm.
        other => return Err(unknown_type(other.kind())),
    })
}

/// A chat message the hub accepted, for the plugins' `on_delivered`.
pub struct Delivered {
    pub kind: MessageKind,
    /// The room or the recipient, as the hub spelt it in the message.
    pub target: Option<String>,
    pub accepted: Accepted,
    pub text: String,
}

impl Delivered {
    fn new(kind: MessageKind, target: Option<String>, accepted: Accepted, text: String) -> Self {
        Delivered {
            kind,
            target,
            accepted,
            text,
        }
    }
}

/// Frame types that belong to plugins, for a helpful error when the plugin
/// is not enabled.
pub fn unknown_type(kind: &str) -> ApiError {
    let plugin = match kind {
        "register" | "login" | "logout" | "passwd" | "resume" => Some("auth"),
        k if k.starts_with("room_") => Some("rooms"),
        k if k.starts_with("file_") => Some("files"),
        _ => None,
    };
    match plugin {
        Some(plugin) => ApiError::new(
            ErrorCode::FEATURE_DISABLED,
            format!("'{kind}' needs the '{plugin}' plugin, which this server has not enabled"),
        ),
        None => ApiError::new(
            ErrorCode::UNKNOWN_TYPE,
            format!("unknown frame type '{kind}'; see docs/protocol.md"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_frames_name_their_plugin() {
        assert_eq!(unknown_type("login").code, ErrorCode::FEATURE_DISABLED);
        assert_eq!(unknown_type("file_offer").code, ErrorCode::FEATURE_DISABLED);
        assert_eq!(unknown_type("dance").code, ErrorCode::UNKNOWN_TYPE);
    }
}
