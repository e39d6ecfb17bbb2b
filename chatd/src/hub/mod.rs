//! The hub: who is connected, which rooms exist and who is in them, and the
//! routing of messages to one user, a room, or everyone.
//!
//! The hub knows nothing of sockets or wire formats: it queues encoded
//! [`Payload`]s on [`Peer`]s. Locking (see docs/architecture.md):
//!
//! * `nicks` and `sessions` are sharded maps; a direct message takes one
//!   shard's read lock.
//! * `rooms` (the room map) is taken for writing only to create, leave or
//!   remove rooms; sending to a room does not touch it.
//! * Each room's member list has its own mutex. A room message holds it while
//!   it assigns the message id and queues the payload, so every member sees a
//!   room's messages in the same order.
//! * Lock order: room map → a room's members → a peer's room list or a
//!   peer's identity → a nick shard. Each arrow only ever points one way. Queueing never waits (`try_send`), so no
//!   lock is held while anything blocks, and none across `.await` (std guards
//!   are not `Send`, so the compiler refuses that in spawned tasks).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chat_api::names::{fold, validate_nick, validate_room};
use chat_api::{
    ApiError, ErrorCode, Identity, Message, MessageKind, Payload, Presence, PresenceEvent,
    RoomInfo, ServerFrame, SessionId,
};

use crate::message_ids::MessageIds;
pub mod events;
pub mod peer;
mod remote;

pub use events::{HubEvent, HubObserver};

pub(crate) use peer::Membership;
pub use peer::{IdentityState, Peer};

const SHARDS: usize = 16;

/// A map split into independently locked shards.
struct Sharded<K, V> {
    hasher: RandomState,
    shards: Box<[RwLock<HashMap<K, V>>]>,
}

impl<K: Hash + Eq, V: Clone> Sharded<K, V> {
    fn new() -> Self {
        Sharded {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &RwLock<HashMap<K, V>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(key).read().unwrap().get(key).cloned()
    }

    fn for_each(&self, mut f: impl FnMut(&V)) {
        for shard in self.shards.iter() {
            for v in shard.read().unwrap().values() {
                f(v);
            }
        }
    }

    /// Every value, copied out so the caller may take locks that rank
    /// before the shards' (a peer's identity) while using them.
    fn values(&self) -> Vec<V> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            all.extend(shard.read().unwrap().values().cloned());
        }
        all
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().unwrap().len()).sum()
    }
}

/// A room: created by its first member, removed with its last.
pub struct Room {
    /// The name as its creator spelled it.
    pub name: String,
    /// The folded name, the room map's key.
    pub key: String,
    /// Members in join order (modulo removals). Held while fanning out.
    members: Mutex<Vec<Arc<Peer>>>,
    /// The id of the last message sent to the room (written under
    /// `members`), so a joining session knows where its live messages start.
    last_msg_id: AtomicU64,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room").field("name", &self.name).finish()
    }
}

/// The result of accepting a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub msg_id: u64,
    pub ts: u64,
    /// Sessions the message was queued for.
    pub recipients: usize,
}

pub use chat_api::now_ms;

/// Routing state shared by every session.
pub struct Hub {
    /// Every session past the handshake, by id.
    sessions: Sharded<SessionId, Arc<Peer>>,
    /// Sessions with a nickname, by folded nickname.
    nicks: Sharded<String, Arc<Peer>>,
    /// Rooms with at least one member, by folded name.
    rooms: RwLock<HashMap<String, Arc<Room>>>,
    /// Message ids (persisted ahead of use when there is a database).
    ids: Arc<MessageIds>,
    /// Rooms one session may be in (`limits.max_rooms_per_session`;
    /// changed by a reload).
    max_rooms_per_session: AtomicUsize,
    /// Rooms that may exist at once (`limits.max_rooms`; changed by a reload).
    max_rooms: AtomicUsize,
    /// Told of every nickname and room change (the cluster), when set.
    observer: std::sync::OnceLock<Arc<dyn HubObserver>>,
    /// Clustered: the cluster's stream of rooms' messages has been
    /// delivered here up to this id, so a room created now starts there.
    sequenced_through: AtomicU64,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

fn nick_required() -> ApiError {
    ApiError::new(
        ErrorCode::NICK_REQUIRED,
        "choose a nickname first: {\"type\":\"nick\",\"nick\":\"NAME\"}",
    )
}

fn no_such_user(to: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NO_SUCH_USER,
        format!("nobody called '{to}' is connected"),
    )
}

fn not_in_room(room: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NOT_IN_ROOM,
        format!("you are not in {room}; join it first"),
    )
}

impl Hub {
    pub fn new() -> Hub {
        let limits = crate::config::LimitsConfig::default();
        Hub::with_room_limits(limits.max_rooms_per_session, limits.max_rooms)
    }

    /// A hub that lets each session be in at most `per_session` rooms and
    /// holds at most `total` rooms.
    pub fn with_room_limits(per_session: usize, total: usize) -> Hub {
        Hub::with_ids(per_session, total, Arc::new(MessageIds::unpersisted(0)))
    }

    /// New room limits (a reload); rooms and memberships already above
    /// them stay, only new joins are refused.
    pub fn set_room_limits(&self, per_session: usize, total: usize) {
        self.max_rooms_per_session
            .store(per_session, Ordering::Relaxed);
        self.max_rooms.store(total, Ordering::Relaxed);
    }

    /// A hub taking message ids from `ids`.
    pub fn with_ids(per_session: usize, total: usize, ids: Arc<MessageIds>) -> Hub {
        Hub {
            sessions: Sharded::new(),
            nicks: Sharded::new(),
            rooms: RwLock::new(HashMap::new()),
            ids,
            max_rooms_per_session: AtomicUsize::new(per_session),
            max_rooms: AtomicUsize::new(total),
            observer: std::sync::OnceLock::new(),
            sequenced_through: AtomicU64::new(0),
        }
    }

    /// Sets the observer told of nickname and room changes (once; a second
    /// call is ignored and returns false).
    pub fn observe(&self, observer: Arc<dyn HubObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// Tells the observer, if any; `event` is only built when one listens.
    fn notify(&self, event: impl FnOnce() -> HubEvent) {
        if let Some(observer) = self.observer.get() {
            observer.notify(event());
        }
    }

    /// A fresh message id and timestamp.
    pub fn next_message_id(&self) -> (u64, u64) {
        (self.ids.next(), now_ms())
    }

    /// The last message id handed out.
    pub fn last_message_id(&self) -> u64 {
        self.ids.last()
    }

    /// Makes a session reachable by id (after its handshake).
    pub fn register(&self, peer: &Arc<Peer>) {
        self.sessions
            .shard(&peer.id)
            .write()
            .unwrap()
            .insert(peer.id, peer.clone());
    }

    pub fn session(&self, id: SessionId) -> Option<Arc<Peer>> {
        self.sessions.get(&id)
    }

    /// The session holding a nickname.
    pub fn by_nick(&self, nick: &str) -> Option<Arc<Peer>> {
        self.nicks.get(&fold(nick))
    }

    /// Calls `f` with every session past the handshake (one shard's read
    /// lock at a time; for occasional readers such as the metrics).
    pub fn for_each_session(&self, f: impl FnMut(&Arc<Peer>)) {
        self.sessions.for_each(f);
    }

    /// Number of sessions past the handshake.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Sets a session's identity, claiming the nickname. With `replace`, a
    /// different session holding it is ended; otherwise that is `nick_taken`.
    pub fn set_identity(
        &self,
        peer: &Arc<Peer>,
        identity: Identity,
        replace: bool,
    ) -> Result<(), ApiError> {
        validate_nick(&identity.nick)
            .map_err(|e| ApiError::new(ErrorCode::INVALID_NICK, e.to_string()))?;
        let key = fold(&identity.nick);
        let mut current = peer.identity.lock().unwrap();
        if peer.is_gone() {
            return Err(ApiError::new(ErrorCode::INTERNAL, "the session is closing"));
        }
        let displaced = {
            let mut shard = self.nicks.shard(&key).write().unwrap();
            match shard.get(&key) {
                Some(other) if other.id != peer.id && !replace => {
                    return Err(ApiError::new(
                        ErrorCode::NICK_TAKEN,
                        format!("the nickname '{}' is in use; choose another", identity.nick),
                    ));
                }
                _ => shard
                    .insert(key.clone(), peer.clone())
                    .filter(|other| other.id != peer.id),
            }
        };
        let new = Arc::new(IdentityState {
            nick: Arc::from(identity.nick.as_str()),
            key: key.clone(),
            account: identity.account,
            admin: identity.admin,
        });
        let old = current.replace(new.clone());
        // Told under the identity lock, so events about one session keep
        // their order.
        match &old {
            Some(old) if *old.nick != *new.nick => self.notify(|| HubEvent::Renamed {
                session: peer.id,
                nick: new.nick.to_string(),
            }),
            Some(_) => {}
            None => self.notify(|| HubEvent::Online {
                session: peer.id,
                nick: new.nick.to_string(),
            }),
        }
        drop(current);
        if let Some(old) = &old {
            if old.key != key {
                self.release_nick(peer, &old.key);
            }
        }
        if let Some(displaced) = displaced {
            // Out of its rooms now, not when its task gets round to it:
            // otherwise the new session could join a room the old one is
            // still in (listed twice), and the old one's late `quit` would
            // then tell the room that the user left. Removed before it is
            // told to close, so that its own task, woken by the close, finds
            // nothing left to remove and the rooms hear this reason.
            self.remove(&displaced, "logged in from another connection");
            displaced.closer.close(
                ErrorCode::KICKED,
                "you logged in from another connection; this one is closed",
            );
        }
        if let Some(old) = old.filter(|old| *old.nick != *new.nick) {
            let rooms: Vec<Arc<Room>> = peer.room_list();
            for room in rooms {
                let members = room.members.lock().unwrap();
                let payload = presence(
                    PresenceEvent::Nick,
                    &room.name,
                    &old.nick,
                    Some(&new.nick),
                    None,
                );
                for member in members.iter() {
                    member.deliver(payload.clone());
                }
            }
        }
        Ok(())
    }

    /// Removes the nick-map entry `key` if it still points at `peer`.
    fn release_nick(&self, peer: &Arc<Peer>, key: &str) {
        let mut shard = self.nicks.shard(key).write().unwrap();
        if shard.get(key).is_some_and(|p| p.id == peer.id) {
            shard.remove(key);
        }
    }

    /// Forgets a session's identity (log out): it leaves its rooms.
    pub fn clear_identity(&self, peer: &Arc<Peer>) {
        let mut map = self.rooms.write().unwrap();
        let old = peer.identity.lock().unwrap().take();
        if let Some(old) = old {
            self.release_nick(peer, &old.key);
            self.leave_all(
                &mut map,
                peer,
                &old.nick,
                PresenceEvent::Part,
                Some("logged out"),
            );
            self.notify(|| HubEvent::Offline { session: peer.id });
        }
    }

    /// Puts a session into a room, creating the room if needed. Returns the
    /// room's display name and its members (sorted) after joining.
    pub fn join(
        &self,
        peer: &Arc<Peer>,
        room_name: &str,
    ) -> Result<(String, Vec<String>), ApiError> {
        validate_room(room_name)
            .map_err(|e| ApiError::new(ErrorCode::INVALID_ROOM, e.to_string()))?;
        let nick = peer.nick().ok_or_else(nick_required)?;
        let key = fold(room_name);
        let mut map = self.rooms.write().unwrap();
        if peer.is_gone() {
            return Err(ApiError::new(ErrorCode::INTERNAL, "the session is closing"));
        }
        // Checked before the room is created, so a refusal leaves nothing.
        // A session's room list changes only under the room map's lock.
        {
            let rooms = peer.rooms.lock().unwrap();
            if rooms.len() >= self.max_rooms_per_session.load(Ordering::Relaxed)
                && !rooms.iter().any(|m| m.room.key == key)
            {
                return Err(ApiError::new(
                    ErrorCode::ROOM_LIMIT,
                    format!(
                        "you are in {} rooms, the most allowed; part one before joining {room_name}",
                        rooms.len()
                    ),
                ));
            }
        }
        if map.len() >= self.max_rooms.load(Ordering::Relaxed) && !map.contains_key(&key) {
            return Err(ApiError::new(
                ErrorCode::ROOM_LIMIT,
                format!(
                    "the server has {} rooms, the most it allows; join an existing room or try later",
                    map.len()
                ),
            ));
        }
        let room = map
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Room {
                    name: room_name.to_string(),
                    key,
                    members: Mutex::new(Vec::new()),
                    // Clustered, messages up to here went to nobody on
                    // this node (see `deliver_sequenced`).
                    last_msg_id: AtomicU64::new(self.sequenced_through.load(Ordering::Relaxed)),
                })
            })
            .clone();
        let mut members = room.members.lock().unwrap();
        if !members.iter().any(|m| m.id == peer.id) {
            let payload = presence(PresenceEvent::Join, &room.name, &nick, None, None);
            for member in members.iter() {
                member.deliver(payload.clone());
            }
            members.push(peer.clone());
            peer.rooms.lock().unwrap().push(Membership {
                room: room.clone(),
                since: room.last_msg_id.load(Ordering::Relaxed),
            });
            self.notify(|| HubEvent::Joined {
                session: peer.id,
                room: room.name.clone(),
            });
        }
        let names = member_names(&members);
        Ok((room.name.clone(), names))
    }

    /// Takes a session out of a room; the others see `event` (part or quit).
    pub fn part(
        &self,
        peer: &Arc<Peer>,
        room_name: &str,
        reason: Option<&str>,
    ) -> Result<(), ApiError> {
        let nick = peer.nick().ok_or_else(nick_required)?;
        let key = fold(room_name);
        let mut map = self.rooms.write().unwrap();
        let room = map
            .get(&key)
            .cloned()
            .ok_or_else(|| not_in_room(room_name))?;
        if !self.remove_member(&room, peer, &nick, PresenceEvent::Part, reason) {
            return Err(not_in_room(room_name));
        }
        if room.members.lock().unwrap().is_empty() {
            map.remove(&key);
        }
        Ok(())
    }

    /// Removes `peer` from `room` and tells the remaining members. Caller
    /// holds the room map's write lock.
    fn remove_member(
        &self,
        room: &Arc<Room>,
        peer: &Arc<Peer>,
        nick: &str,
        event: PresenceEvent,
        reason: Option<&str>,
    ) -> bool {
        let mut members = room.members.lock().unwrap();
        let Some(pos) = members.iter().position(|m| m.id == peer.id) else {
            return false;
        };
        members.swap_remove(pos);
        peer.rooms
            .lock()
            .unwrap()
            .retain(|m| !Arc::ptr_eq(&m.room, room));
        let payload = presence(event, &room.name, nick, None, reason);
        for member in members.iter() {
            member.deliver(payload.clone());
        }
        self.notify(|| HubEvent::Left {
            session: peer.id,
            room: room.name.clone(),
            event,
            reason: reason.map(str::to_string),
        });
        true
    }

    /// Leaves every room the session is in; the caller holds the room map.
    fn leave_all(
        &self,
        map: &mut HashMap<String, Arc<Room>>,
        peer: &Arc<Peer>,
        nick: &str,
        event: PresenceEvent,
        reason: Option<&str>,
    ) {
        let rooms: Vec<Arc<Room>> = peer.room_list();
        for room in rooms {
            self.remove_member(&room, peer, nick, event, reason);
            if room.members.lock().unwrap().is_empty()
                && map.get(&room.key).is_some_and(|r| Arc::ptr_eq(r, &room))
            {
                map.remove(&room.key);
            }
        }
    }

    /// Assigns a message its id and timestamp and encodes it, once for all
    /// its recipients.
    fn message(
        &self,
        kind: MessageKind,
        from: &str,
        room: Option<&str>,
        to: Option<&str>,
        text: &str,
    ) -> (Accepted, Payload, Message) {
        let (msg_id, ts) = self.next_message_id();
        let mut message = Message::new(msg_id, ts, kind, from, text);
        message.room = room.map(str::to_string);
        message.to = to.map(str::to_string);
        // Encoded once for every recipient; the struct itself goes to the
        // recorder (the history log).
        let frame = ServerFrame::Message(message);
        let payload = Payload::encode(&frame);
        let ServerFrame::Message(message) = frame else {
            unreachable!("built as a message above")
        };
        let accepted = Accepted {
            msg_id,
            ts,
            recipients: 0,
        };
        (accepted, payload, message)
    }

    /// Sends a message to a room the sender is in. `record` gets the
    /// message under the room's lock, after it was queued for the members,
    /// so that whatever it records (the history log) sees each room's
    /// messages in id order.
    pub fn say(
        &self,
        peer: &Arc<Peer>,
        room_name: &str,
        text: &str,
        record: impl FnOnce(Message, &Room, &Accepted),
    ) -> Result<Accepted, ApiError> {
        let nick = peer.nick().ok_or_else(nick_required)?;
        // Compared in place: no folded copy of the name per message.
        let room = peer
            .rooms
            .lock()
            .unwrap()
            .iter()
            .find(|m| m.room.key.eq_ignore_ascii_case(room_name))
            .map(|m| m.room.clone())
            .ok_or_else(|| not_in_room(room_name))?;
        let members = room.members.lock().unwrap();
        // Re-checked under the room lock: a kick may have raced with us.
        if !peer.in_room(&room) {
            return Err(not_in_room(room_name));
        }
        let (mut accepted, payload, message) =
            self.message(MessageKind::Room, &nick, Some(&room.name), None, text);
        room.last_msg_id.store(accepted.msg_id, Ordering::Relaxed);
        for member in members.iter() {
            if member.id != peer.id && member.deliver(payload.clone()) {
                accepted.recipients += 1;
            }
        }
        record(message, &room, &accepted);
        Ok(accepted)
    }

    /// Sends a direct message to one connected user. `record` gets the
    /// message and the recipient's session.
    pub fn direct(
        &self,
        peer: &Arc<Peer>,
        to: &str,
        text: &str,
        record: impl FnOnce(Message, &Arc<Peer>, &Accepted),
    ) -> Result<Accepted, ApiError> {
        let nick = peer.nick().ok_or_else(nick_required)?;
        let target = self.by_nick(to).ok_or_else(|| no_such_user(to))?;
        let to_nick = target
            .nick()
            .map(|n| n.to_string())
            .unwrap_or_else(|| to.to_string());
        let (mut accepted, payload, message) =
            self.message(MessageKind::Direct, &nick, None, Some(&to_nick), text);
        accepted.recipients = usize::from(target.deliver(payload));
        record(message, &target, &accepted);
        Ok(accepted)
    }

    /// Accepts a direct message for someone who is not connected (an
    /// account: `record` stores it for later). Nothing is delivered.
    pub fn direct_to_absent(
        &self,
        peer: &Arc<Peer>,
        to: &str,
        text: &str,
        record: impl FnOnce(Message, &Accepted),
    ) -> Result<Accepted, ApiError> {
        let nick = peer.nick().ok_or_else(nick_required)?;
        let (accepted, _payload, message) =
            self.message(MessageKind::Direct, &nick, None, Some(to), text);
        record(message, &accepted);
        Ok(accepted)
    }

    /// Sends a message to every session with a nickname but the sender.
    pub fn broadcast(
        &self,
        peer: &Arc<Peer>,
        text: &str,
        record: impl FnOnce(Message, &Accepted),
    ) -> Result<Accepted, ApiError> {
        let nick = peer.nick().ok_or_else(nick_required)?;
        let (mut accepted, payload, message) =
            self.message(MessageKind::Broadcast, &nick, None, None, text);
        accepted.recipients = self.deliver_to_all_but(&payload, Some(peer.id));
        record(message, &accepted);
        Ok(accepted)
    }

    /// Queues a payload for every session with a nickname; returns how many.
    pub fn deliver_to_all(&self, payload: &Payload) -> usize {
        self.deliver_to_all_but(payload, None)
    }

    /// Queues a payload for every member of a room; returns how many.
    pub fn deliver_to_room(&self, room_name: &str, payload: &Payload) -> Option<usize> {
        let room = self.rooms.read().unwrap().get(&fold(room_name)).cloned()?;
        let members = room.members.lock().unwrap();
        Some(
            members
                .iter()
                .filter(|m| m.deliver(payload.clone()))
                .count(),
        )
    }

    /// Removes every member of a room and the room itself; each member is
    /// told with a `part` presence carrying `reason`.
    pub fn close_room(&self, room_name: &str, reason: &str) {
        let key = fold(room_name);
        let mut map = self.rooms.write().unwrap();
        let Some(room) = map.remove(&key) else { return };
        let mut members = room.members.lock().unwrap();
        for member in members.drain(..) {
            member
                .rooms
                .lock()
                .unwrap()
                .retain(|m| !Arc::ptr_eq(&m.room, &room));
            if let Some(nick) = member.nick() {
                let payload = presence(PresenceEvent::Part, &room.name, &nick, None, Some(reason));
                member.deliver(payload);
                self.notify(|| HubEvent::Left {
                    session: member.id,
                    room: room.name.clone(),
                    event: PresenceEvent::Part,
                    reason: Some(reason.to_string()),
                });
            }
        }
    }

    /// Takes a session out of the hub for good: its nickname is released and
    /// the rooms it was in see it quit. Marking it gone, releasing its nick
    /// and leaving its rooms happen under the room map's lock, so nobody can
    /// observe (or re-add) a departed session in between. Returns the
    /// identity the session had, for the plugins' `on_session_end`.
    pub fn remove(&self, peer: &Arc<Peer>, reason: &str) -> Option<Arc<IdentityState>> {
        let mut map = self.rooms.write().unwrap();
        let identity = {
            let mut identity = peer.identity.lock().unwrap();
            let taken = identity.take();
            if let Some(taken) = &taken {
                self.release_nick(peer, &taken.key);
            }
            peer.gone.store(true, Ordering::Release);
            taken
        };
        if let Some(identity) = &identity {
            self.leave_all(
                &mut map,
                peer,
                &identity.nick,
                PresenceEvent::Quit,
                Some(reason),
            );
            self.notify(|| HubEvent::Offline { session: peer.id });
        }
        drop(map);
        let mut shard = self.sessions.shard(&peer.id).write().unwrap();
        shard.remove(&peer.id);
        identity
    }

    /// Nicknames of everyone connected, sorted.
    pub fn users(&self) -> Vec<String> {
        // Not under a shard's lock: reading an identity there could wait on
        // a session renaming itself, which holds its identity while it
        // waits for that shard.
        let mut names: Vec<String> = self
            .nicks
            .values()
            .iter()
            .filter_map(|p| p.nick().map(|n| n.to_string()))
            .collect();
        names.sort_unstable_by_key(|n| fold(n));
        names
    }

    /// All rooms with their member counts, sorted by name.
    pub fn rooms(&self) -> Vec<RoomInfo> {
        let rooms: Vec<Arc<Room>> = self.rooms.read().unwrap().values().cloned().collect();
        let mut infos: Vec<RoomInfo> = rooms
            .iter()
            .map(|r| RoomInfo::new(r.name.clone(), r.members.lock().unwrap().len()))
            .filter(|r| r.members > 0)
            .collect();
        infos.sort_by_key(|r| fold(&r.name));
        infos
    }

    /// The members of a room, sorted; `None` if the room does not exist.
    pub fn room_members(&self, room_name: &str) -> Option<(String, Vec<String>)> {
        let room = self.rooms.read().unwrap().get(&fold(room_name)).cloned()?;
        let members = room.members.lock().unwrap();
        Some((room.name.clone(), member_names(&members)))
    }

    /// Names of the rooms a session is in.
    pub fn rooms_of(&self, peer: &Peer) -> Vec<String> {
        peer.rooms
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.room.name.clone())
            .collect()
    }

    /// The rooms a session is in, each with the id of the last message sent
    /// to it before the session joined (its live messages come after).
    pub fn memberships_of(&self, peer: &Peer) -> Vec<(String, u64)> {
        peer.rooms
            .lock()
            .unwrap()
            .iter()
            .map(|m| (m.room.name.clone(), m.since))
            .collect()
    }

    /// Whether a session is in the room called `room_name`.
    pub fn is_member(&self, peer: &Peer, room_name: &str) -> bool {
        peer.rooms
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.room.key.eq_ignore_ascii_case(room_name))
    }

    /// Checks the hub's invariants (for tests): every room in the map has
    /// members, every member is alive and lists the room, every peer's room
    /// list matches, every nick maps to a live session with that nick.
    pub fn check_invariants(&self) -> Result<(), String> {
        let map = self.rooms.read().unwrap();
        for (key, room) in map.iter() {
            let members = room.members.lock().unwrap();
            if members.is_empty() {
                return Err(format!("room {key} is empty but still listed"));
            }
            for m in members.iter() {
                if m.is_gone() {
                    return Err(format!("room {key} holds departed session {}", m.id));
                }
                if !m.in_room(room) {
                    return Err(format!("session {} in {key} does not list it", m.id));
                }
            }
        }
        let mut problem = None;
        self.sessions.for_each(|peer| {
            for m in peer.rooms.lock().unwrap().iter() {
                let room = &m.room;
                let listed = map.get(&room.key).is_some_and(|r| Arc::ptr_eq(r, room));
                if !listed {
                    problem = Some(format!(
                        "session {} lists removed room {}",
                        peer.id, room.key
                    ));
                }
            }
        });
        drop(map);
        self.nicks.for_each(|peer| {
            if peer.is_gone() {
                problem = Some(format!("nick held by departed session {}", peer.id));
            }
        });
        problem.map_or(Ok(()), Err)
    }
}

fn member_names(members: &[Arc<Peer>]) -> Vec<String> {
    let mut names: Vec<String> = members
        .iter()
        .filter_map(|m| m.nick().map(|n| n.to_string()))
        .collect();
    names.sort_unstable_by_key(|n| fold(n));
    names
}

fn presence(
    event: PresenceEvent,
    room: &str,
    nick: &str,
    new_nick: Option<&str>,
    reason: Option<&str>,
) -> Payload {
    let mut presence = Presence::new(event, room, nick, now_ms());
    presence.new_nick = new_nick.map(str::to_string);
    presence.reason = reason.map(str::to_string);
    Payload::encode(&ServerFrame::Presence(presence))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closer::Closer;
    use chat_api::Transport;

    fn peer(id: SessionId) -> (Arc<Peer>, crate::outbox::OutboxReceiver) {
        let (outbox, queue) = crate::outbox::outbox(64, 1 << 20);
        let closer = Arc::new(Closer::new());
        let peer = Arc::new(Peer::new(id, None, Transport::Tcp, outbox, closer));
        (peer, queue)
    }

    fn account(name: &str) -> Identity {
        Identity {
            nick: name.to_string(),
            account: Some(name.to_string()),
            admin: false,
        }
    }

    /// A login that takes over an account's nickname from another session
    /// takes that session out of its rooms at once: the new session joining
    /// the same room is listed once, and nothing the old session's task does
    /// later can announce the user as gone.
    #[test]
    fn a_displaced_session_leaves_its_rooms_at_once() {
        let hub = Hub::new();
        let (old, _old_queue) = peer(1);
        let (new, _new_queue) = peer(2);
        let (watcher, _watcher_queue) = peer(3);
        for p in [&old, &new, &watcher] {
            hub.register(p);
        }
        hub.set_identity(&watcher, account("carol"), false).unwrap();
        hub.set_identity(&old, account("bob"), false).unwrap();
        hub.join(&watcher, "#r").unwrap();
        hub.join(&old, "#r").unwrap();

        hub.set_identity(&new, account("bob"), true).unwrap();
        assert!(old.closer.is_closed(), "the old session is told to close");
        let (_, members) = hub.join(&new, "#r").unwrap();
        assert_eq!(members, ["bob", "carol"]);

        // The old session's own cleanup, whenever it runs, changes nothing.
        hub.remove(&old, "connection closed");
        assert_eq!(hub.room_members("#r").unwrap().1, ["bob", "carol"]);
        assert_eq!(hub.by_nick("bob").map(|p| p.id), Some(new.id));
        hub.check_invariants().unwrap();
    }
}
