//! `join`, `part`, `users` and `rooms`: public rooms and who is where.

use chat_api::{ApiError, ErrorCode, RequestId, ServerFrame};

use super::Context;

/// `join`: enters a room (creating it), answered with its members.
pub fn join(ctx: Context<'_>, id: Option<RequestId>, room: &str) -> Result<ServerFrame, ApiError> {
    let (room, mut members) = ctx.shared.hub.join(ctx.peer, room)?;
    if let Some(cluster) = &ctx.shared.cluster {
        if let Some((_, all)) = cluster.room_members(&room) {
            members = all;
        }
    }
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
    let cluster = ctx.shared.cluster.as_ref();
    let Some(room) = room else {
        return Ok(ServerFrame::Users {
            id,
            room: None,
            users: cluster.map_or_else(|| hub.users(), |c| c.users()),
        });
    };
    let members = match cluster {
        Some(cluster) => cluster.room_members(&room),
        None => hub.room_members(&room),
    };
    let (room, users) = members.ok_or_else(|| {
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
        rooms: match &ctx.shared.cluster {
            Some(cluster) => cluster.rooms(),
            None => ctx.shared.hub.rooms(),
        },
    }
}
