//! Plugins' requests on users and rooms of other nodes. A plugin's `Host`
//! names sessions by id; another node's session gets a handle here
//! (`Directory::handle`), and what the plugin asks of it (a frame, a room
//! to enter or leave, a disconnect) travels to that node through the
//! stream, after whatever this node published before. Room-wide and
//! server-wide requests go to every node, each doing its own part.

use std::borrow::Cow;

use bytes::Bytes;
use chat_api::{ErrorCode, Payload, SessionId};

use super::outbound::Outgoing;
use super::wire::{Event, Relay};
use super::Cluster;

impl Cluster {
    /// Sends `op` to one node, or (`None`) to every node but this one.
    /// Never waits: a full queue drops it, with a warning.
    pub fn relay(&self, to: Option<&str>, op: Relay) {
        let subject = match to {
            Some(node) => self.names.node(node),
            None => self.names.fan.clone(),
        };
        let event = Event::Relay {
            node: self.node.clone(),
            op,
        };
        if self
            .outgoing
            .try_send(Outgoing::To { subject, event })
            .is_err()
        {
            tracing::warn!("the cluster's outgoing queue is full; a plugin's request to another node was dropped");
        }
    }

    /// A handle for whoever holds `nick` on another node.
    pub fn remote_session(&self, nick: &str) -> Option<SessionId> {
        let (node, session) = self.directory.session_of(nick)?;
        self.directory.handle(&node, session)
    }

    /// The node and session of a handle from [`Cluster::remote_session`].
    pub fn resolve(&self, handle: SessionId) -> Option<(String, SessionId)> {
        self.directory.resolve(handle)
    }

    /// Whether `nick` is connected to another node.
    pub fn is_remote_user(&self, nick: &str) -> bool {
        self.directory.session_of(nick).is_some()
    }

    /// How many are in `room` on other nodes.
    pub fn remote_members(&self, room: &str) -> usize {
        self.directory.member_count(room)
    }

    /// How many users are connected to other nodes.
    pub fn remote_users(&self) -> usize {
        self.directory.user_count()
    }
}

fn payload(frame: String) -> Payload {
    let mut line = frame.into_bytes();
    line.push(b'\n');
    Payload::from_line(Bytes::from(line))
}

/// Carries out another node's request on this node's users.
pub fn execute(cluster: &Cluster, op: Relay) {
    let hub = &cluster.hub;
    match op {
        Relay::ToSession { session, frame } => {
            if let Some(peer) = hub.session(session) {
                peer.deliver(payload(frame));
            }
        }
        Relay::ToUser { nick, frame } => {
            hub.deliver_to_nick(&nick, payload(frame));
        }
        Relay::ToRoom { room, frame } => {
            hub.deliver_to_room(&room, &payload(frame));
        }
        Relay::ToAll { frame } => {
            hub.deliver_to_all(&payload(frame));
        }
        Relay::Join { session, room } => {
            if let Some(peer) = hub.session(session) {
                if let Err(e) = hub.join(&peer, &room) {
                    tracing::debug!(error = %e.message, room, "a relayed join was refused");
                }
            }
        }
        Relay::Leave {
            session,
            room,
            reason,
        } => {
            if let Some(peer) = hub.session(session) {
                let _ = hub.part(&peer, &room, reason.as_deref());
            }
        }
        Relay::CloseRoom { room, reason } => hub.close_room(&room, &reason),
        Relay::Disconnect {
            session,
            code,
            reason,
        } => {
            if let Some(peer) = hub.session(session) {
                peer.closer.close(ErrorCode(Cow::Owned(code)), &reason);
            }
        }
    }
}

/// The JSON of an encoded frame, to relay.
pub fn frame_text(payload: &Payload) -> String {
    String::from_utf8_lossy(payload.json()).into_owned()
}
