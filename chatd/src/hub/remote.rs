//! Deliveries that another node sequenced: the cluster's consumer hands the
//! hub messages and presence already encoded (once per node), and asks for
//! this node's sessions to tell a node that is catching up.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chat_api::names::fold;
use chat_api::{Payload, PresenceEvent, SessionId};

use super::{presence, Hub, Peer};

/// One local session as other nodes' directories hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalUser {
    pub session: SessionId,
    pub nick: String,
    /// The rooms it is in, as each room spells its name.
    pub rooms: Vec<String>,
}

impl Hub {
    /// Queues a room message for the room's members here, but `except`
    /// (its sender, who gets `sent` instead); records its id as the room's
    /// last, so a later joiner's live messages start after it. Returns how
    /// many it was queued for.
    pub fn deliver_sequenced(
        &self,
        room_name: &str,
        msg_id: u64,
        payload: &Payload,
        except: Option<SessionId>,
    ) -> usize {
        let room = {
            let map = self.rooms.read().unwrap();
            // Under the map's lock: a room created after this lookup starts
            // after this message (its joiners' catch-up covers it), one
            // created before gets it live.
            self.sequenced_through.fetch_max(msg_id, Ordering::Relaxed);
            map.get(&fold(room_name)).cloned()
        };
        let Some(room) = room else {
            return 0;
        };
        let members = room.members.lock().unwrap();
        room.last_msg_id.store(msg_id, Ordering::Relaxed);
        members
            .iter()
            .filter(|m| Some(m.id) != except && m.deliver(payload.clone()))
            .count()
    }

    /// Records that the cluster's stream has been delivered here up to
    /// `msg_id` (an entry that was not a room message).
    pub fn sequenced(&self, msg_id: u64) {
        self.sequenced_through.fetch_max(msg_id, Ordering::Relaxed);
    }

    /// Records an id the cluster's stream handed out, so that the hub's
    /// last id (where a login's catch-up of direct messages ends) keeps up.
    pub fn observe_message_id(&self, msg_id: u64) {
        self.ids.observe(msg_id);
    }

    /// Queues a payload for the session holding `nick` here, if any.
    pub fn deliver_to_nick(&self, nick: &str, payload: Payload) -> bool {
        self.by_nick(nick).is_some_and(|peer| peer.deliver(payload))
    }

    /// Queues a payload for every session with a nickname here but `except`.
    pub fn deliver_to_all_but(&self, payload: &Payload, except: Option<SessionId>) -> usize {
        let mut n = 0;
        self.nicks.for_each(|member| {
            if Some(member.id) != except && member.deliver(payload.clone()) {
                n += 1;
            }
        });
        n
    }

    /// Tells this node's members of `room` about a presence change of a
    /// user on another node.
    pub fn deliver_remote_presence(
        &self,
        room: &str,
        event: PresenceEvent,
        nick: &str,
        new_nick: Option<&str>,
        reason: Option<&str>,
    ) -> usize {
        let payload = presence(event, room, nick, new_nick, reason);
        self.deliver_to_room(room, &payload).unwrap_or(0)
    }

    /// The name of the room `room_name` as spelt, if the session is in it
    /// (compared in place, as `say` does: no list of its rooms per message).
    pub fn room_name_of(&self, peer: &Peer, room_name: &str) -> Option<String> {
        peer.rooms
            .lock()
            .unwrap()
            .iter()
            .find(|m| m.room.key.eq_ignore_ascii_case(room_name))
            .map(|m| m.room.name.clone())
    }

    /// How many sessions here have a nickname.
    pub fn user_count(&self) -> usize {
        self.nicks.len()
    }

    /// How many sessions here are in the room.
    pub fn local_member_count(&self, room_name: &str) -> usize {
        let room = self.rooms.read().unwrap().get(&fold(room_name)).cloned();
        room.map_or(0, |room| room.members.lock().unwrap().len())
    }

    /// Every session here with a nickname, and its rooms.
    pub fn local_users(&self) -> Vec<LocalUser> {
        // Copied out of the shards first: see `Hub::users`.
        let peers: Vec<Arc<Peer>> = self.nicks.values();
        peers
            .iter()
            .filter_map(|peer| {
                Some(LocalUser {
                    session: peer.id,
                    nick: peer.nick()?.to_string(),
                    rooms: self.rooms_of(peer),
                })
            })
            .collect()
    }
}
