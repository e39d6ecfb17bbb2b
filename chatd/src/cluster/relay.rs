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

/// Handles frames other nodes forward (`Relay::Frame`) with this node's
/// plugins; set by the session layer, which owns the pipeline.
pub trait ForwardedFrames: Send + Sync {
    fn handle(&self, from_node: String, forwarded: ForwardedFrame);
}

/// A frame another node's session sent about something this node holds.
pub struct ForwardedFrame {
    /// The session's handle here (see [`Cluster::resolve`]).
    pub session: SessionId,
    pub nick: String,
    pub account: Option<String>,
    pub admin: bool,
    pub frame: String,
}

/// The hex digits that start every file transfer id of `node` (FNV-1a of
/// its name): another node knows from a transfer id where its bytes are.
pub fn transfer_prefix(node: &str) -> String {
    let hash = node.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

impl Cluster {
    /// The node holding the file transfer a frame names, when that is
    /// another node: the frame is to be forwarded there.
    pub fn owner_of(&self, kind: &str, transfer: Option<&str>) -> Option<String> {
        if !kind.starts_with("file_") {
            return None;
        }
        let transfer = transfer?;
        if transfer.len() != 32 || transfer.starts_with(&self.transfer_prefix) {
            return None;
        }
        self.directory
            .nodes()
            .into_iter()
            .find(|node| transfer.starts_with(&transfer_prefix(node)))
    }

    /// Sends a session's frame to `node`, whose plugins answer it.
    pub fn forward(&self, node: &str, peer: &crate::hub::Peer, frame: String) {
        let identity = peer.identity();
        let op = Relay::Frame {
            session: peer.id,
            nick: identity
                .as_ref()
                .map(|i| i.nick.to_string())
                .unwrap_or_default(),
            account: identity.as_ref().and_then(|i| i.account.clone()),
            admin: identity.as_ref().is_some_and(|i| i.admin),
            frame,
        };
        self.relay(Some(node), op);
    }

    /// Who handles forwarded frames (the session layer, once it exists).
    pub fn set_forwarded_frames(&self, handler: std::sync::Arc<dyn ForwardedFrames>) {
        let _ = self.forwarded.set(handler);
    }
}

/// Carries out another node's request on this node's users.
pub fn execute(cluster: &Cluster, from_node: &str, op: Relay) {
    let hub = &cluster.hub;
    match op {
        Relay::Frame {
            session,
            nick,
            account,
            admin,
            frame,
        } => {
            let (Some(handler), Some(session)) = (
                cluster.forwarded.get(),
                cluster.directory.handle(from_node, session),
            ) else {
                return;
            };
            let forwarded = ForwardedFrame {
                session,
                nick,
                account,
                admin,
                frame,
            };
            handler.handle(from_node.to_string(), forwarded);
        }
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
