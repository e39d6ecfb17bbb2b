//! `say`, `msg` and `broadcast` across the cluster. A message goes into the
//! stream behind everything this node published before it; its sequence
//! number is its id, and every node (this one included) delivers it when
//! it reads it back, in stream order. The sender's node returns the
//! message as delivered, for the message log.
//!
//! While NATS is unreachable, a node without history delivers to its own
//! users alone (ids local to the node); with history, sending is refused
//! (`cluster_unavailable`): a stored message needs the cluster's id.

use std::sync::Arc;

use chat_api::{ApiError, Message, MessageKind};
use tokio::sync::oneshot;

use super::outbound::Outgoing;
use super::wire::Event;
use super::{unavailable, Cluster};
use crate::hub::{Accepted, Peer};

/// What the node does while NATS is away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Deliver to this node's users alone.
    Local,
    /// Refuse: the message could not be stored under a cluster-wide id.
    Refuse,
}

/// A message the cluster accepted, and the message as delivered.
pub struct Sent {
    pub accepted: Accepted,
    pub message: Message,
}

impl Cluster {
    /// `say`: to the members of a room on every node.
    pub async fn say(
        &self,
        peer: &Arc<Peer>,
        room: &str,
        text: &str,
        fallback: Fallback,
    ) -> Result<Sent, ApiError> {
        let room_name = match self.hub.room_name_of(peer, room) {
            Some(name) if self.is_connected() => name,
            Some(_) if fallback == Fallback::Refuse => {
                return Err(unavailable("the message was not sent"))
            }
            // The hub words the refusal (no nickname, not in the room), or
            // delivers here alone while NATS is away.
            _ => {
                let mut delivered = None;
                let accepted = self
                    .hub
                    .say(peer, room, text, |m, _, _| delivered = Some(m))?;
                let message = delivered.expect("the hub records what it accepted");
                return Ok(Sent { accepted, message });
            }
        };
        let from = peer.nick().map(|n| n.to_string()).unwrap_or_default();
        let ts = chat_api::now_ms();
        let event = Event::Say {
            node: self.node.clone(),
            session: peer.id,
            from: from.clone(),
            room: room_name.clone(),
            text: text.to_string(),
            ts,
        };
        let msg_id = self.publish(self.names.fan.clone(), event).await?;
        let recipients = self.hub.local_member_count(&room_name).saturating_sub(1)
            + self.directory.member_count(&room_name);
        let mut message = Message::new(msg_id, ts, MessageKind::Room, from, text);
        message.room = Some(room_name);
        let accepted = Accepted {
            msg_id,
            ts,
            recipients,
        };
        Ok(Sent { accepted, message })
    }

    /// `msg`: to the recipient's node. `Ok(None)`: nobody by that name is
    /// connected anywhere (the caller may keep it for an account).
    pub async fn direct(
        &self,
        peer: &Arc<Peer>,
        to: &str,
        text: &str,
        fallback: Fallback,
    ) -> Result<Option<Sent>, ApiError> {
        let Some(from) = peer.nick() else {
            return self.local_direct(peer, to, text).map(Some);
        };
        let target = match self.hub.by_nick(to).and_then(|p| p.nick()) {
            Some(nick) => Some((self.node.clone(), nick.to_string())),
            None => self.directory.locate(to),
        };
        let Some((node, to_nick)) = target else {
            return Ok(None);
        };
        if !self.is_connected() {
            return match fallback {
                Fallback::Local => self.local_direct(peer, to, text).map(Some),
                Fallback::Refuse => Err(unavailable("the message was not sent")),
            };
        }
        let sent = self.publish_direct(&from, &node, &to_nick, text).await?;
        Ok(Some(sent))
    }

    /// A direct message into the stream for `node`'s user `to` (this node
    /// with nobody there: an offline account's message, which needs an id).
    pub async fn publish_direct(
        &self,
        from: &str,
        node: &str,
        to: &str,
        text: &str,
    ) -> Result<Sent, ApiError> {
        let ts = chat_api::now_ms();
        let event = Event::Direct {
            node: self.node.clone(),
            from: from.to_string(),
            to: to.to_string(),
            text: text.to_string(),
            ts,
        };
        let msg_id = self.publish(self.names.node(node), event).await?;
        let mut message = Message::new(msg_id, ts, MessageKind::Direct, from, text);
        message.to = Some(to.to_string());
        let accepted = Accepted {
            msg_id,
            ts,
            recipients: 1,
        };
        Ok(Sent { accepted, message })
    }

    /// This node's own handling: the hub's refusal (no nickname, nobody by
    /// that name here), or delivery here while NATS is away.
    fn local_direct(&self, peer: &Arc<Peer>, to: &str, text: &str) -> Result<Sent, ApiError> {
        let mut delivered = None;
        let accepted = self
            .hub
            .direct(peer, to, text, |m, _, _| delivered = Some(m))?;
        let message = delivered.expect("the hub records what it accepted");
        Ok(Sent { accepted, message })
    }

    /// `broadcast`: to everyone on every node.
    pub async fn broadcast(
        &self,
        peer: &Arc<Peer>,
        text: &str,
        fallback: Fallback,
    ) -> Result<Sent, ApiError> {
        let from = match peer.nick() {
            Some(from) if self.is_connected() => from,
            Some(_) if fallback == Fallback::Refuse => {
                return Err(unavailable("the message was not sent"))
            }
            _ => {
                let mut delivered = None;
                let accepted = self.hub.broadcast(peer, text, |m, _| delivered = Some(m))?;
                let message = delivered.expect("the hub records what it accepted");
                return Ok(Sent { accepted, message });
            }
        };
        let ts = chat_api::now_ms();
        let event = Event::Broadcast {
            node: self.node.clone(),
            session: peer.id,
            from: from.to_string(),
            text: text.to_string(),
            ts,
        };
        let msg_id = self.publish(self.names.fan.clone(), event).await?;
        let recipients = self.hub.user_count().saturating_sub(1) + self.directory.user_count();
        let message = Message::new(msg_id, ts, MessageKind::Broadcast, from.to_string(), text);
        let accepted = Accepted {
            msg_id,
            ts,
            recipients,
        };
        Ok(Sent { accepted, message })
    }

    /// Puts a message in the stream behind everything this node published
    /// before it; its stream sequence is the message id.
    pub(crate) async fn publish(&self, subject: String, event: Event) -> Result<u64, ApiError> {
        let (ack_tx, ack_rx) = oneshot::channel();
        let queued = self.outgoing.send(Outgoing::Message {
            subject,
            event,
            ack: ack_tx,
        });
        if queued.await.is_err() {
            return Err(unavailable("the message was not sent"));
        }
        let ack = async {
            let pending = ack_rx
                .await
                .map_err(|_| "the publisher stopped".to_string())?;
            let pending = pending.map_err(|e| e.to_string())?;
            pending.await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(self.publish_timeout, ack).await {
            Ok(Ok(ack)) => Ok(ack.sequence),
            Ok(Err(error)) => {
                tracing::warn!(%error, "NATS did not store a message");
                Err(unavailable("the message was not sent"))
            }
            Err(_) => {
                tracing::warn!("NATS did not store a message within cluster.publish_timeout_ms");
                Err(unavailable("the message may not have been sent"))
            }
        }
    }
}
