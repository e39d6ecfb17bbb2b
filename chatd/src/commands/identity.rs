//! `hello` (once only) and `nick`: who the session is.

use chat_api::{ApiError, ErrorCode, Identity, RequestId, ServerFrame};

use super::Context;

/// A second `hello`: the handshake happens once per connection.
pub fn hello() -> ApiError {
    ApiError::new(
        ErrorCode::ALREADY_GREETED,
        "hello was already received on this connection",
    )
}

/// `nick`: a guest nickname (accounts log in through the auth plugin).
pub fn nick(
    ctx: Context<'_>,
    id: Option<RequestId>,
    nick: String,
) -> Result<ServerFrame, ApiError> {
    let identity = Identity {
        nick: nick.clone(),
        account: None,
        admin: false,
    };
    ctx.shared.hub.set_identity(ctx.peer, identity, false)?;
    Ok(ServerFrame::Ok {
        id,
        nick: Some(nick),
    })
}
