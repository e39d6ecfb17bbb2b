//! Frames of the private-rooms plugin (`rooms`), shared by the plugin and
//! clients so that they cannot drift apart. `docs/protocol.md`, section
//! "Private rooms frames", is the normative description.
//!
//! Requests are one enum, [`RoomRequest`], serialised with their `type`
//! (a client library adds the `id`); replies and events are structs that
//! serialise with their `type` and, for replies, the `id` they answer.
//! `room_create` and `room_accept` are answered with the core's `joined`,
//! the others that change something with the core's `ok`.

use serde::{Deserialize, Serialize};

use crate::protocol::{ErrorCode, RequestId};

/// Error codes of the private-room frames (besides the core ones:
/// `no_such_room`, `no_such_user`, `forbidden`, `invalid_room`,
/// `invalid_text`).
pub mod codes {
    use super::ErrorCode;

    /// Private rooms need a logged-in account (guest, or no `auth` plugin).
    pub const ACCOUNT_REQUIRED: ErrorCode = ErrorCode::custom("account_required");
    /// `join` of a private room without membership or invitation.
    pub const NOT_INVITED: ErrorCode = ErrorCode::custom("not_invited");
    /// `room_create` with a name a public or private room already uses.
    pub const ROOM_EXISTS: ErrorCode = ErrorCode::custom("room_exists");
    /// The account owns `max_rooms_per_owner` rooms.
    pub const TOO_MANY_ROOMS: ErrorCode = ErrorCode::custom("too_many_rooms");
    /// Members plus invitations reached `max_members`.
    pub const ROOM_FULL: ErrorCode = ErrorCode::custom("room_full");
    /// The invitee has `max_pending_invitations` invitations waiting.
    pub const TOO_MANY_INVITATIONS: ErrorCode = ErrorCode::custom("too_many_invitations");
    /// Inviting (or accepting for) someone who is already a member.
    pub const ALREADY_MEMBER: ErrorCode = ErrorCode::custom("already_member");
    /// Kicking, promoting, ... someone who is not a member.
    pub const NOT_A_MEMBER: ErrorCode = ErrorCode::custom("not_a_member");
    /// Inviting a banned account.
    pub const BANNED: ErrorCode = ErrorCode::custom("banned");
    /// Unbanning an account that is not banned.
    pub const NOT_BANNED: ErrorCode = ErrorCode::custom("not_banned");
}

/// Client → server: the `room_*` requests.
///
/// New requests may appear within a protocol version: match with a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum RoomRequest {
    /// Create a private room, own it and enter it (reply: `joined`).
    #[serde(rename = "room_create")]
    Create {
        room: String,
        /// Empty or absent: no topic.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
    },
    /// Invite an account (owner, moderators, admins).
    #[serde(rename = "room_invite")]
    Invite { room: String, user: String },
    /// Withdraw a pending invitation.
    #[serde(rename = "room_revoke")]
    Revoke { room: String, user: String },
    /// One's own pending invitations (reply: [`RoomInvitations`]).
    #[serde(rename = "room_invitations")]
    Invitations {},
    /// Accept an invitation and enter the room (reply: `joined`).
    #[serde(rename = "room_accept")]
    Accept { room: String },
    /// Decline an invitation.
    #[serde(rename = "room_decline")]
    Decline { room: String },
    /// Put a member out of the room; they may be invited again.
    #[serde(rename = "room_kick")]
    Kick {
        room: String,
        user: String,
        /// Shown to the room and the target.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Put an account out and keep it out until `room_unban`.
    #[serde(rename = "room_ban")]
    Ban {
        room: String,
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    #[serde(rename = "room_unban")]
    Unban { room: String, user: String },
    /// Set the topic; empty clears it.
    #[serde(rename = "room_topic")]
    Topic { room: String, topic: String },
    /// Make a member a moderator (owner, admins).
    #[serde(rename = "room_promote")]
    Promote { room: String, user: String },
    /// Make a moderator a member again (owner, admins).
    #[serde(rename = "room_demote")]
    Demote { room: String, user: String },
    /// Make a member the owner; the previous owner stays as a moderator.
    #[serde(rename = "room_transfer")]
    Transfer { room: String, user: String },
    /// Delete the room: everyone out, the name free (owner, admins).
    #[serde(rename = "room_delete")]
    Delete { room: String },
    /// End one's own membership (not the owner's).
    #[serde(rename = "room_leave")]
    Leave { room: String },
    /// Who owns, moderates, is in the room (reply: [`RoomDetails`]).
    #[serde(rename = "room_info")]
    Info { room: String },
}

impl RoomRequest {
    /// The value of the frame's `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            RoomRequest::Create { .. } => "room_create",
            RoomRequest::Invite { .. } => "room_invite",
            RoomRequest::Revoke { .. } => "room_revoke",
            RoomRequest::Invitations {} => "room_invitations",
            RoomRequest::Accept { .. } => "room_accept",
            RoomRequest::Decline { .. } => "room_decline",
            RoomRequest::Kick { .. } => "room_kick",
            RoomRequest::Ban { .. } => "room_ban",
            RoomRequest::Unban { .. } => "room_unban",
            RoomRequest::Topic { .. } => "room_topic",
            RoomRequest::Promote { .. } => "room_promote",
            RoomRequest::Demote { .. } => "room_demote",
            RoomRequest::Transfer { .. } => "room_transfer",
            RoomRequest::Delete { .. } => "room_delete",
            RoomRequest::Leave { .. } => "room_leave",
            RoomRequest::Info { .. } => "room_info",
        }
    }

    /// Every request's `type`.
    pub const KINDS: &'static [&'static str] = &[
        "room_create",
        "room_invite",
        "room_revoke",
        "room_invitations",
        "room_accept",
        "room_decline",
        "room_kick",
        "room_ban",
        "room_unban",
        "room_topic",
        "room_promote",
        "room_demote",
        "room_transfer",
        "room_delete",
        "room_leave",
        "room_info",
    ];
}

/// Server → invitee (if online): someone invited them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "room_invitation")]
pub struct RoomInvitation {
    pub room: String,
    /// The account that invited.
    pub from: String,
}

/// What a [`RoomEvent`] reports.
///
/// New events may appear within a protocol version: match with a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RoomEventKind {
    Kick,
    Ban,
    Topic,
    Promote,
    Demote,
    Transfer,
    Delete,
    /// An invitation was withdrawn (sent to the invitee only).
    Revoke,
}

/// Server → the room's members present and the account concerned: a
/// moderation event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "room_event")]
pub struct RoomEvent {
    pub room: String,
    pub event: RoomEventKind,
    /// The account that acted.
    pub by: String,
    /// The account acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// For `topic`: the new topic (absent when cleared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// For `kick` and `ban`, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub ts: u64,
}

/// One pending invitation in [`RoomInvitations`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub room: String,
    /// The account that invited.
    pub from: String,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
}

/// Server → client: reply to `room_invitations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "room_invitations")]
pub struct RoomInvitations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    pub invitations: Vec<Invitation>,
}

/// Server → client: reply to `room_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "room_info")]
pub struct RoomDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    pub room: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Absent only if the owner's account was deleted moments ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub moderators: Vec<String>,
    /// Every member, owner and moderators included.
    pub members: Vec<String>,
    /// Members currently in the room.
    pub present: Vec<String>,
    /// Only for the owner, moderators and admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited: Option<Vec<String>>,
    /// Only for the owner, moderators and admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banned: Option<Vec<String>>,
}
