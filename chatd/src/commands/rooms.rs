//! `join`, `part`, `users` and `rooms`: public rooms and who is where.

use chat_api::{ApiError, ErrorCode, RequestId, ServerFrame};

use super::Context;

/// `join`: enters a room (creating it), answered with its members.
pub fn join(ctx: Context<'_>, id: Option<RequestId>, room: &str) -> Result<ServerFrame, ApiError> {
    let (room, members) = ctx.shared.hub.join(ctx.peer, room)?;
    Ok(ServerFrame::Joined {
        id,
        room,
        members,
        topic: None,
    })
}

/// `part`: leaves a room.
pub fn part(ctx: Context<'_>, id: Option<RequestId>, room: &str) -> Result<ServerFrame, ApiError> {
    ctx.shared.hub.part(ctx.peer, room, None)?;
    Ok(ServerFrame::ok(id))
}

/// `users`: everyone connected, or a room's members.
pub fn users(
    ctx: Context<'_>,
    id: Option<RequestId>,
    room: Option<String>,
) -> Result<ServerFrame, ApiError> {
    let hub = &ctx.shared.hub;
    let Some(room) = room else {
        return Ok(ServerFrame::Users {
            id,
            room: None,
            users: hub.users(),
        });
    };
    let (room, users) = hub.room_members(&room).ok_or_else(|| {
        ApiError::new(ErrorCode::NO_SUCH_ROOM, format!("there is no room {room}"))
    })?;
    Ok(ServerFrame::Users {
        id,
        room: Some(room),
        users,
    })
}

/// `rooms`: the public rooms.
pub fn list(ctx: Context<'_>, id: Option<RequestId>) -> ServerFrame {
    ServerFrame::Rooms {
        id,
        rooms: ctx.shared.hub.rooms(),
    }
}
