//! What nodes say to each other over NATS, as JSON: the events of the
//! cluster's stream (chat messages and the hub's changes), heartbeats, the
//! state a node answers with, and the value of a nickname claim.
//!
//! A field added later must be optional (`#[serde(default)]`), so nodes of
//! neighbouring versions understand each other during a rolling upgrade.

use chat_api::{PresenceEvent, SessionId};
use serde::{Deserialize, Serialize};

/// One entry of the cluster's stream. Room messages, broadcasts and the
/// hub's changes go to every node (`<prefix>.fan`); a direct message to
/// the node its recipient is on (`<prefix>.node.<name>`). The stream's
/// sequence number is the message id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    Say {
        node: String,
        session: SessionId,
        from: String,
        room: String,
        text: String,
        ts: u64,
    },
    Broadcast {
        node: String,
        session: SessionId,
        from: String,
        text: String,
        ts: u64,
    },
    Direct {
        node: String,
        from: String,
        to: String,
        text: String,
        ts: u64,
    },
    Online {
        node: String,
        session: SessionId,
        nick: String,
    },
    Renamed {
        node: String,
        session: SessionId,
        nick: String,
    },
    Joined {
        node: String,
        session: SessionId,
        room: String,
    },
    Left {
        node: String,
        session: SessionId,
        room: String,
        event: PresenceEvent,
        #[serde(default)]
        reason: Option<String>,
    },
    Offline {
        node: String,
        session: SessionId,
    },
    /// Everyone on `node` now, replacing what others held of it: sent after
    /// the node (re)connects to NATS and when its event queue overflowed.
    State(NodeState),
    /// The node is shutting down; its sessions have ended.
    Leaving {
        node: String,
    },
    /// A plugin's request (through its `Host`) that another node carries
    /// out for its own users: to every node on `<prefix>.fan`, or to one.
    Relay {
        node: String,
        op: Relay,
    },
}

/// What a plugin asked of users or rooms that are (also) on another node.
/// `frame` is an encoded frame's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Relay {
    ToSession {
        session: SessionId,
        frame: String,
    },
    ToUser {
        nick: String,
        frame: String,
    },
    ToRoom {
        room: String,
        frame: String,
    },
    ToAll {
        frame: String,
    },
    Join {
        session: SessionId,
        room: String,
    },
    Leave {
        session: SessionId,
        room: String,
        #[serde(default)]
        reason: Option<String>,
    },
    CloseRoom {
        room: String,
        reason: String,
    },
    /// A frame of the sender's node's session `session` about something
    /// this node holds (a file transfer), for this node's plugins to
    /// handle as that session's; their replies go back as `ToSession`.
    Frame {
        session: SessionId,
        nick: String,
        #[serde(default)]
        account: Option<String>,
        #[serde(default)]
        admin: bool,
        frame: String,
    },
    Disconnect {
        session: SessionId,
        code: String,
        reason: String,
    },
}

impl Event {
    /// The node the event came from.
    pub fn node(&self) -> &str {
        match self {
            Event::Say { node, .. }
            | Event::Broadcast { node, .. }
            | Event::Direct { node, .. }
            | Event::Online { node, .. }
            | Event::Renamed { node, .. }
            | Event::Joined { node, .. }
            | Event::Left { node, .. }
            | Event::Offline { node, .. }
            | Event::Relay { node, .. }
            | Event::Leaving { node } => node,
            Event::State(state) => &state.node,
        }
    }
}

/// A node's sessions with a nickname, and their rooms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    pub node: String,
    /// Which run of the node (its start time in ms): a node restarted under
    /// the same name is a new one whose old sessions are gone.
    pub boot: u64,
    pub users: Vec<UserState>,
    /// This page's number: a state too large for one NATS message is sent
    /// in pages, back to back (`pages.rs`); 0 for the first or only one.
    #[serde(default)]
    pub part: u32,
    /// More pages of this state follow.
    #[serde(default)]
    pub more: bool,
    /// A copy sent as the answer to a state request, for nodes of the
    /// previous version, which read the state from the answer: the state
    /// itself is on the stream (`liveness.rs`).
    #[serde(default)]
    pub on_stream: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    pub session: SessionId,
    pub nick: String,
    pub rooms: Vec<String>,
}

/// Published by every node on `<prefix>.heartbeat` at a fixed interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node: String,
    pub boot: u64,
}

/// The value of a nickname's key in the claims bucket: who holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub node: String,
    pub boot: u64,
    pub session: SessionId,
}
