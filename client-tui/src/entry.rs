//! The entries of a conversation: what one line of scrollback says
//! (`Body`) and where it came from. Plain data, below the state (which
//! keeps them), the layout (which measures them) and the view.

use chat_protocol::names::fold;
use chat_protocol::{PresenceEvent, RequestId, RoomInfo};

/// One line of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Milliseconds since the Unix epoch (server time when known).
    pub ts: u64,
    pub body: Body,
}

/// What an entry says.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A chat message; `own` for ours.
    Chat {
        from: String,
        text: String,
        own: bool,
        /// Whether the server has accepted it (ours) or it was received.
        delivery: Delivery,
        /// It mentions our nickname (or is a direct message to us).
        mention: bool,
        /// A message to everyone.
        broadcast: bool,
        /// The server's id, once known (received, or `sent` for ours).
        msg_id: Option<u64>,
        /// How it reached us: live, caught up after resuming, or loaded
        /// from the history.
        origin: Origin,
    },
    /// Put before the messages of a conversation that were missed while
    /// disconnected and caught up on resuming.
    Away { count: usize },
    /// A session was resumed: `missed` messages caught up in all, `more`
    /// when the server had more than it sends at once.
    Resumed { missed: u64, more: bool },
    /// Someone joined, left, quit or was renamed.
    Presence {
        event: PresenceEvent,
        nick: String,
        new_nick: Option<String>,
        reason: Option<String>,
    },
    /// We joined a room.
    Joined { members: Vec<String> },
    /// A user listing.
    Users {
        room: Option<String>,
        users: Vec<String>,
    },
    /// A room listing.
    Rooms(Vec<RoomInfo>),
    /// Connection state changes.
    Status(String),
    /// Anything else worth saying (help, confirmations).
    Info(String),
    /// The server refused something, or input was wrong.
    Error { code: String, message: String },
    /// A file offered to us (`file_available`, or listed by `/files`).
    FileOffer(chat_protocol::files::FileInfo),
    /// How far one of our transfers has come (line mode: every tenth and
    /// at the end).
    Transfer(TransferNote),
    /// An invitation into a private room, received or listed by `/invites`.
    Invitation(Invitation),
    /// Moderation in a private room (`room_event`): a kick, a new topic, ...
    RoomEvent(RoomEventNote),
    /// The reply to `/info`.
    RoomInfo(RoomDetails),
}

/// An invitation into a private room waiting for our answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Invitation {
    pub room: String,
    /// Who invited us.
    pub from: String,
}

/// A `room_event` as the rooms plugin sends it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RoomEventNote {
    pub room: String,
    /// `kick`, `ban`, `topic`, `promote`, `demote`, `transfer`, `delete`,
    /// `revoke`; kept as text so that newer servers' events still show.
    pub event: String,
    /// Who acted.
    pub by: String,
    /// Whom it concerns (kick, ban, promote, demote, transfer, revoke).
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// The new topic (`topic`; absent when cleared).
    #[serde(default)]
    pub topic: Option<String>,
}

/// A private room as `room_info` describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RoomDetails {
    pub room: String,
    #[serde(default)]
    pub topic: Option<String>,
    pub owner: String,
    #[serde(default)]
    pub moderators: Vec<String>,
    /// Every member, owner and moderators included.
    #[serde(default)]
    pub members: Vec<String>,
    /// Members in the room now.
    #[serde(default)]
    pub present: Vec<String>,
    /// Only shown to the owner, moderators and admins.
    #[serde(default)]
    pub invited: Option<Vec<String>>,
    #[serde(default)]
    pub banned: Option<Vec<String>>,
}

/// A transfer's progress as recorded in a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferNote {
    /// The server's transfer id.
    pub transfer: String,
    pub direction: crate::transfers::Direction,
    pub name: String,
    /// The local file (source or destination).
    pub path: String,
    pub done: u64,
    pub total: u64,
    /// Finished and verified.
    pub finished: bool,
}

/// How a chat message reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// As it was sent (or ours, typed here).
    #[default]
    Live,
    /// Sent while we were disconnected; caught up on resuming.
    Missed,
    /// Loaded from the server's history (`/history`, PageUp at the top).
    History,
}

/// Where one of our messages is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Sent as request `id`, not yet accepted.
    Pending(RequestId),
    /// Accepted by the server (or received from someone else).
    Done,
    /// Refused or lost; an error entry follows it.
    Failed,
}

impl RoomEventNote {
    /// An event in words, for the screen.
    pub fn describe(&self, own_nick: &str) -> String {
        let note = self;
        let who = |nick: &str| {
            if fold(nick) == fold(own_nick) {
                "you".to_string()
            } else {
                nick.to_string()
            }
        };
        let by = who(&note.by);
        let user = note.user.as_deref().map(who).unwrap_or_else(|| "?".into());
        let reason = note
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        match note.event.as_str() {
            "kick" => format!("{by} kicked {user} out of {}{reason}", note.room),
            "ban" => format!("{by} banned {user} from {}{reason}", note.room),
            "topic" => match &note.topic {
                Some(topic) => format!("{by} set the topic to: {topic}"),
                None => format!("{by} cleared the topic"),
            },
            "promote" => format!("{by} made {user} a moderator"),
            "demote" => format!("{by} made {user} a plain member again"),
            "transfer" => format!("{by} handed {} over to {user}", note.room),
            "delete" => format!("{by} deleted {}", note.room),
            "revoke" => format!("{by} withdrew the invitation to {}", note.room),
            other => format!("{by}: {other} {}", note.room),
        }
    }
}
