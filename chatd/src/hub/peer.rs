//! A connected session as the hub sees it: where to queue its frames, who it
//! is, which rooms it is in, and how to end it. Independent of the transport.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chat_api::{ErrorCode, Payload, SessionId, Transport};

use super::Room;
use crate::closer::Closer;
use crate::outbox::{Outbox, PushError};

/// Who a session is. Swapped as a whole so readers never see half an update.
#[derive(Debug)]
pub struct IdentityState {
    pub nick: Arc<str>,
    /// The nickname folded to lower case: the key in the hub's nick map.
    pub key: String,
    pub account: Option<String>,
    pub admin: bool,
}

/// A session's place in a room.
pub(crate) struct Membership {
    pub(crate) room: Arc<Room>,
    /// The room's last message id when the session joined: what came
    /// after reached it live.
    pub(crate) since: u64,
}

/// The hub's handle on one session.
pub struct Peer {
    pub id: SessionId,
    pub addr: Option<SocketAddr>,
    pub transport: Transport,
    /// Whether the connection is encrypted: TLS, or a WebSocket over HTTPS
    /// (which [`Transport`] alone cannot tell).
    encrypted: AtomicBool,
    /// Bounded queue drained by the session's writer task.
    outbox: Outbox,
    /// Shared with the writer task, which must not keep the `Peer` alive.
    pub closer: Arc<Closer>,
    /// `None` until the session chooses a nickname or logs in. Locked briefly,
    /// never across `.await`; lock order: identity before a nick-map shard.
    pub(crate) identity: Mutex<Option<Arc<IdentityState>>>,
    /// Rooms this session is in. Lock order: the hub's room map, then a
    /// room's member list, then this list.
    pub(crate) rooms: Mutex<Vec<Membership>>,
    /// Set once the session has left the hub; after that it joins nothing.
    pub(crate) gone: AtomicBool,
    /// A resume token the transport carried (the browser app's cookie).
    transport_token: std::sync::OnceLock<Box<str>>,
}

impl Peer {
    pub fn new(
        id: SessionId,
        addr: Option<SocketAddr>,
        transport: Transport,
        outbox: Outbox,
        closer: Arc<Closer>,
    ) -> Peer {
        Peer {
            id,
            addr,
            transport,
            encrypted: AtomicBool::new(transport.is_encrypted()),
            outbox,
            closer,
            identity: Mutex::new(None),
            rooms: Mutex::new(Vec::new()),
            gone: AtomicBool::new(false),
            transport_token: std::sync::OnceLock::new(),
        }
    }

    /// Queues a frame without waiting. A full queue means the client is not
    /// reading: it is disconnected rather than allowed to slow the sender.
    pub fn deliver(&self, payload: Payload) -> bool {
        let pushed = self.outbox.push(payload);
        self.on_push(pushed)
    }

    /// Queues a frame the session itself sends (see [`Outbox::push_own`]).
    pub fn deliver_own(&self, payload: Payload) -> bool {
        let pushed = self.outbox.push_own(payload);
        self.on_push(pushed)
    }

    fn on_push(&self, pushed: Result<(), PushError>) -> bool {
        match pushed {
            Ok(()) => true,
            Err(PushError::Full) => {
                self.closer.close(
                    ErrorCode::SLOW_CONSUMER,
                    format!(
                        "you were disconnected because too much was waiting for you to read (limit: {} frames or {} bytes)",
                        self.outbox.capacity(),
                        self.outbox.max_bytes()
                    ),
                );
                false
            }
            Err(PushError::Closed) => false,
        }
    }

    /// Holds this session's outgoing frames (see [`Outbox::hold`]).
    pub fn hold_deliveries(&self) {
        self.outbox.hold();
    }

    /// Sends `front` first, then whatever was queued while held.
    pub fn release_deliveries(&self, front: Vec<Payload>) {
        self.outbox.release(front);
    }

    /// Marks the connection as encrypted (a WebSocket upgraded over HTTPS).
    pub fn mark_encrypted(&self) {
        self.encrypted.store(true, Ordering::Release);
    }

    /// Records the resume token the transport carried (set once, at the
    /// WebSocket upgrade).
    pub fn set_transport_token(&self, token: &str) {
        let _ = self.transport_token.set(token.into());
    }

    pub fn transport_token(&self) -> Option<&str> {
        self.transport_token.get().map(|t| &**t)
    }

    pub fn is_encrypted(&self) -> bool {
        self.encrypted.load(Ordering::Acquire)
    }

    pub fn identity(&self) -> Option<Arc<IdentityState>> {
        self.identity.lock().unwrap().clone()
    }

    pub fn nick(&self) -> Option<Arc<str>> {
        self.identity().map(|i| i.nick.clone())
    }

    /// Frames waiting in this session's outbound queue now.
    pub fn queued_frames(&self) -> usize {
        self.outbox.len()
    }

    /// The most frames ever waiting in its outbound queue at once.
    pub fn peak_queued_frames(&self) -> usize {
        self.outbox.peak()
    }

    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// Whether this session is currently in `room` (by identity).
    pub(crate) fn in_room(&self, room: &Arc<Room>) -> bool {
        self.rooms
            .lock()
            .unwrap()
            .iter()
            .any(|m| Arc::ptr_eq(&m.room, room))
    }

    /// The rooms this session is in.
    pub(crate) fn room_list(&self) -> Vec<Arc<Room>> {
        self.rooms
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.room.clone())
            .collect()
    }
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .field("nick", &self.nick())
            .finish()
    }
}
