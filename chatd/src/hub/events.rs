//! What the hub tells an observer about its sessions (nicknames taken and
//! changed, rooms joined and left, departures), so another node's directory
//! can follow this one's without the hub knowing who listens or how (a
//! cluster publishes them over NATS).
//!
//! Events name sessions by id, not by nickname: a nickname released by one
//! session may be taken by another before an observer has caught up, a
//! session id is never reused. The hub calls the observer under its own
//! locks, in the order things happened to each session; an observer
//! therefore only queues (never blocks, never takes a hub lock).

use chat_api::{PresenceEvent, SessionId};

/// One change in who is connected or where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// A session took its first nickname (a `nick` or a login).
    Online { session: SessionId, nick: String },
    /// A session changed its nickname; its rooms saw a `nick` presence.
    Renamed { session: SessionId, nick: String },
    /// A session entered a room (`room` as the room spells its name).
    Joined { session: SessionId, room: String },
    /// A session left a room (`part` or `quit`), with the reason its room
    /// was given.
    Left {
        session: SessionId,
        room: String,
        event: PresenceEvent,
        reason: Option<String>,
    },
    /// A session has no nickname any more (it left or logged out); the
    /// rooms it was in have each had a `Left` first.
    Offline { session: SessionId },
}

/// Receives the hub's events; set once with [`super::Hub::observe`].
pub trait HubObserver: Send + Sync {
    fn notify(&self, event: HubEvent);
}
