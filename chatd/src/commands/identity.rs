//! `hello` (once only) and `nick`: who the session is.

use chat_api::names::validate_nick;
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
pub async fn nick(
    ctx: Context<'_>,
    id: Option<RequestId>,
    nick: String,
) -> Result<ServerFrame, ApiError> {
    let identity = Identity {
        nick: nick.clone(),
        account: None,
        admin: false,
    };
    let Some(cluster) = &ctx.shared.cluster else {
        ctx.shared.hub.set_identity(ctx.peer, identity, false)?;
        return Ok(ServerFrame::Ok {
            id,
            nick: Some(nick),
        });
    };
    // Clustered: the name is claimed across every node first.
    validate_nick(&nick).map_err(|e| ApiError::new(ErrorCode::INVALID_NICK, e.to_string()))?;
    let revision = cluster.claim_nick(ctx.peer.id, &nick).await?;
    match ctx.shared.hub.set_identity(ctx.peer, identity, false) {
        Ok(()) => cluster.claimed(ctx.peer.id, &nick, revision),
        Err(e) => {
            cluster.unclaim(&nick, revision);
            return Err(e);
        }
    }
    Ok(ServerFrame::Ok {
        id,
        nick: Some(nick),
    })
}
