//! A fake server for unit-testing a plugin without one (feature `testkit`).
//!
//! [`FakeHost`] is a [`Host`] that keeps sessions, nicknames and room
//! memberships in memory and records every frame sent through it;
//! [`FakeSession`] is a [`Session`] of that host that collects the frames
//! it receives. Build a plugin with [`FakeHost::context`], hand frames to
//! its `on_frame` with [`FakeSession::inbound`], and look at what each
//! session received:
//!
//! ```
//! # tokio_test_shim::run(async {
//! use chat_api::testkit::{FakeHost, FakeSession};
//! use chat_api::{async_trait, ClientFrame, HandlerResult, Inbound, MessageHandler, Session, Verdict};
//!
//! struct Echo;
//! #[async_trait]
//! impl MessageHandler for Echo {
//!     fn name(&self) -> &str { "echo" }
//!     async fn on_frame(&self, session: &dyn Session, frame: &mut Inbound) -> HandlerResult {
//!         session.reply_ok(frame.id);
//!         Ok(Verdict::Done)
//!     }
//! }
//!
//! let host = FakeHost::new();
//! let alice = FakeSession::logged_in(&host, "alice", false);
//! let mut frame = FakeSession::inbound(Some(1), &ClientFrame::Rooms {});
//! assert!(matches!(Echo.on_frame(&alice, &mut frame).await, Ok(Verdict::Done)));
//! assert_eq!(alice.take_received(), vec![serde_json::json!({"type": "ok", "id": 1})]);
//! # });
//! # mod tokio_test_shim {
//! #     pub fn run(f: impl std::future::Future<Output = ()>) {
//! #         tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! #     }
//! # }
//! ```
//!
//! What the fake does not do: it sends no `joined` or `presence` frames of
//! its own (a plugin that answers `join` sends `joined` itself, as with
//! chatd), stores no messages and runs no other plugin. Spawned tasks run on
//! the tokio runtime of the test; [`Host::data_dir`] is a temporary
//! directory deleted with the host.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::names::fold;
use crate::plugin::{
    BoxFuture, Host, Identity, PluginConfig, PluginContext, Session, SessionId, StorageError,
    Transport,
};
use crate::{ApiError, ErrorCode, Inbound, Payload, RequestId, RoomInfo};

/// Where a recorded frame was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// [`Host::send_to_session`] or [`Session::send`].
    Session(SessionId),
    /// [`Host::send_to_user`], with the nickname asked for.
    User(String),
    /// [`Host::send_to_room`], with the room asked for.
    Room(String),
    /// [`Host::broadcast`].
    Broadcast,
}

/// One frame sent through the fake host, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub to: Recipient,
    pub frame: Value,
}

/// A session as the fake host knows it.
#[derive(Default)]
struct SessionState {
    identity: Option<Identity>,
    /// Frames received, oldest first.
    received: Vec<Value>,
    /// Set by [`Session::close`] or [`Host::disconnect`].
    closed: Option<(ErrorCode, String)>,
}

/// A room: its name as first joined, and its members in joining order.
struct RoomState {
    name: String,
    members: Vec<SessionId>,
}

#[derive(Default)]
struct State {
    sessions: BTreeMap<SessionId, SessionState>,
    /// By folded name.
    rooms: BTreeMap<String, RoomState>,
    sent: Vec<Sent>,
    /// The plugin's key-value store (`Host::kv_*`), in memory.
    kv: BTreeMap<String, Vec<u8>>,
}

impl State {
    fn nick_of(&self, session: SessionId) -> Option<String> {
        let identity = self.sessions.get(&session)?.identity.as_ref()?;
        Some(identity.nick.clone())
    }

    fn session_of(&self, nick: &str) -> Option<SessionId> {
        let key = fold(nick);
        self.sessions.iter().find_map(|(id, s)| {
            let identity = s.identity.as_ref()?;
            (fold(&identity.nick) == key && s.closed.is_none()).then_some(*id)
        })
    }

    fn deliver(&mut self, session: SessionId, frame: &Value) -> bool {
        match self.sessions.get_mut(&session) {
            Some(s) if s.closed.is_none() => {
                s.received.push(frame.clone());
                true
            }
            _ => false,
        }
    }

    fn members(&self, room: &RoomState) -> Vec<String> {
        room.members
            .iter()
            .filter_map(|id| self.nick_of(*id))
            .collect()
    }

    fn leave_all(&mut self, session: SessionId) {
        for room in self.rooms.values_mut() {
            room.members.retain(|m| *m != session);
        }
        self.rooms.retain(|_, room| !room.members.is_empty());
    }
}

/// An in-memory [`Host`] that records what a plugin sends.
pub struct FakeHost {
    state: Mutex<State>,
    next_session: AtomicU64,
    next_message: AtomicU64,
    data_dir: tempfile::TempDir,
}

impl FakeHost {
    /// An empty server: no sessions, no rooms.
    pub fn new() -> Arc<FakeHost> {
        Arc::new(FakeHost {
            state: Mutex::new(State::default()),
            next_session: AtomicU64::new(1),
            next_message: AtomicU64::new(1),
            data_dir: tempfile::tempdir().expect("a temporary directory can be created"),
        })
    }

    /// What a plugin is built with: this host and the configuration
    /// `config_toml` (the `[plugin.config]` table's contents).
    pub fn context(self: &Arc<Self>, plugin: &str, config_toml: &str) -> PluginContext {
        PluginContext {
            config: PluginConfig {
                plugin: plugin.to_string(),
                source: "<testkit>".to_string(),
                toml: config_toml.to_string(),
            },
            host: self.clone(),
        }
    }

    /// Every frame sent through the host so far, oldest first.
    pub fn sent(&self) -> Vec<Sent> {
        self.lock().sent.clone()
    }

    /// The frames sent so far, forgotten.
    pub fn take_sent(&self) -> Vec<Sent> {
        std::mem::take(&mut self.lock().sent)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, state: &mut State, to: Recipient, payload: &Payload) -> Value {
        let frame: Value =
            serde_json::from_slice(payload.json()).expect("a payload holds one JSON object");
        state.sent.push(Sent {
            to,
            frame: frame.clone(),
        });
        frame
    }
}

impl Host for FakeHost {
    fn send_to_session(&self, session: SessionId, payload: Payload) -> bool {
        let mut state = self.lock();
        let frame = self.record(&mut state, Recipient::Session(session), &payload);
        state.deliver(session, &frame)
    }

    fn send_to_user(&self, nick: &str, payload: Payload) -> Result<(), ApiError> {
        let mut state = self.lock();
        let frame = self.record(&mut state, Recipient::User(nick.to_string()), &payload);
        let session = state.session_of(nick).ok_or_else(|| {
            ApiError::new(ErrorCode::NO_SUCH_USER, format!("no user named '{nick}'"))
        })?;
        state.deliver(session, &frame);
        Ok(())
    }

    fn send_to_room(&self, room: &str, payload: Payload) -> Result<usize, ApiError> {
        let mut state = self.lock();
        let frame = self.record(&mut state, Recipient::Room(room.to_string()), &payload);
        let members = match state.rooms.get(&fold(room)) {
            Some(r) => r.members.clone(),
            None => {
                return Err(ApiError::new(
                    ErrorCode::NO_SUCH_ROOM,
                    format!("there is no room {room}"),
                ))
            }
        };
        Ok(members
            .into_iter()
            .filter(|m| state.deliver(*m, &frame))
            .count())
    }

    fn broadcast(&self, payload: Payload) -> usize {
        let mut state = self.lock();
        let frame = self.record(&mut state, Recipient::Broadcast, &payload);
        let sessions: Vec<SessionId> = state.sessions.keys().copied().collect();
        sessions
            .into_iter()
            .filter(|s| state.deliver(*s, &frame))
            .count()
    }

    fn users(&self) -> Vec<String> {
        let state = self.lock();
        let ids: Vec<SessionId> = state.sessions.keys().copied().collect();
        ids.into_iter().filter_map(|id| state.nick_of(id)).collect()
    }

    fn rooms(&self) -> Vec<RoomInfo> {
        self.lock()
            .rooms
            .values()
            .map(|r| RoomInfo::new(r.name.clone(), r.members.len()))
            .collect()
    }

    fn room_members(&self, room: &str) -> Option<Vec<String>> {
        let state = self.lock();
        let room = state.rooms.get(&fold(room))?;
        Some(state.members(room))
    }

    fn session_of(&self, nick: &str) -> Option<SessionId> {
        self.lock().session_of(nick)
    }

    fn join_room(&self, session: SessionId, room: &str) -> Result<(String, Vec<String>), ApiError> {
        let mut state = self.lock();
        if state.nick_of(session).is_none() {
            return Err(ApiError::new(
                ErrorCode::NICK_REQUIRED,
                "choose a nickname first",
            ));
        }
        let entry = state.rooms.entry(fold(room)).or_insert_with(|| RoomState {
            name: room.to_string(),
            members: Vec::new(),
        });
        if !entry.members.contains(&session) {
            entry.members.push(session);
        }
        let name = entry.name.clone();
        let room = &state.rooms[&fold(room)];
        Ok((name, state.members(room)))
    }

    fn leave_room(
        &self,
        session: SessionId,
        room: &str,
        _reason: Option<&str>,
    ) -> Result<(), ApiError> {
        let mut state = self.lock();
        let key = fold(room);
        let not_in = || ApiError::new(ErrorCode::NOT_IN_ROOM, format!("you are not in {room}"));
        let entry = state.rooms.get_mut(&key).ok_or_else(not_in)?;
        let before = entry.members.len();
        entry.members.retain(|m| *m != session);
        if entry.members.len() == before {
            return Err(not_in());
        }
        if entry.members.is_empty() {
            state.rooms.remove(&key);
        }
        Ok(())
    }

    fn close_room(&self, room: &str, _reason: &str) {
        self.lock().rooms.remove(&fold(room));
    }

    fn disconnect(&self, session: SessionId, code: ErrorCode, reason: &str) {
        let mut state = self.lock();
        if let Some(s) = state.sessions.get_mut(&session) {
            s.closed = Some((code, reason.to_string()));
        }
        state.leave_all(session);
    }

    fn next_message_id(&self) -> (u64, u64) {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        (self.next_message.fetch_add(1, Ordering::Relaxed), ts)
    }

    fn spawn(&self, task: BoxFuture<()>) {
        tokio::spawn(task);
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send + 'static>) {
        tokio::task::spawn_blocking(work);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep(duration))
    }

    fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    // The key-value store lives in memory, without chatd's size limits.
    fn kv_get(&self, key: &str) -> BoxFuture<Result<Option<Vec<u8>>, StorageError>> {
        let value = self.lock().kv.get(key).cloned();
        Box::pin(std::future::ready(Ok(value)))
    }

    fn kv_put(&self, key: &str, value: &[u8]) -> BoxFuture<Result<(), StorageError>> {
        self.lock().kv.insert(key.to_string(), value.to_vec());
        Box::pin(std::future::ready(Ok(())))
    }

    fn kv_delete(&self, key: &str) -> BoxFuture<Result<bool, StorageError>> {
        let removed = self.lock().kv.remove(key).is_some();
        Box::pin(std::future::ready(Ok(removed)))
    }

    fn kv_list(&self, prefix: &str) -> BoxFuture<Result<Vec<String>, StorageError>> {
        let keys = self
            .lock()
            .kv
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        Box::pin(std::future::ready(Ok(keys)))
    }
}

/// A connection to a [`FakeHost`]: an identity and the frames it received.
pub struct FakeSession {
    id: SessionId,
    host: Arc<FakeHost>,
    transport: Transport,
}

impl FakeSession {
    /// A new connection without a nickname (before `nick` or `login`).
    pub fn new(host: &Arc<FakeHost>) -> FakeSession {
        let id = host.next_session.fetch_add(1, Ordering::Relaxed);
        host.lock().sessions.insert(id, SessionState::default());
        FakeSession {
            id,
            host: host.clone(),
            transport: Transport::Tcp,
        }
    }

    /// A guest with a nickname.
    pub fn guest(host: &Arc<FakeHost>, nick: &str) -> FakeSession {
        let session = FakeSession::new(host);
        session.set(Some(Identity {
            nick: nick.to_string(),
            account: None,
            admin: false,
        }));
        session
    }

    /// A session logged in to `account` (its nickname too).
    pub fn logged_in(host: &Arc<FakeHost>, account: &str, admin: bool) -> FakeSession {
        let session = FakeSession::new(host);
        session.set(Some(Identity {
            nick: account.to_string(),
            account: Some(account.to_string()),
            admin,
        }));
        session
    }

    /// The same session over another transport (e.g. TLS, for plugins that
    /// check it).
    pub fn over(mut self, transport: Transport) -> FakeSession {
        self.transport = transport;
        self
    }

    /// A frame as the pipeline hands it to plugins: `frame` encoded with
    /// the request id `id`, then parsed as chatd parses a client's line.
    pub fn inbound<T: Serialize + ?Sized>(id: Option<RequestId>, frame: &T) -> Inbound {
        let mut value = serde_json::to_value(frame).expect("a frame encodes as JSON");
        if let (Some(id), Value::Object(map)) = (id, &mut value) {
            map.insert("id".to_string(), id.into());
        }
        Inbound::parse(value.to_string().as_bytes()).expect("a frame the client would send")
    }

    /// Every frame this session received so far, oldest first.
    pub fn received(&self) -> Vec<Value> {
        self.with(|s| s.received.clone())
    }

    /// The frames received so far, forgotten.
    pub fn take_received(&self) -> Vec<Value> {
        self.with(|s| std::mem::take(&mut s.received))
    }

    /// Whether and why the session was closed (by itself or the host).
    pub fn closed(&self) -> Option<(ErrorCode, String)> {
        self.with(|s| s.closed.clone())
    }

    fn with<R>(&self, f: impl FnOnce(&mut SessionState) -> R) -> R {
        let mut state = self.host.lock();
        f(state
            .sessions
            .get_mut(&self.id)
            .expect("sessions are never removed"))
    }

    fn set(&self, identity: Option<Identity>) {
        self.with(|s| s.identity = identity);
    }

    fn identity(&self) -> Option<Identity> {
        self.with(|s| s.identity.clone())
    }
}

impl Session for FakeSession {
    fn id(&self) -> SessionId {
        self.id
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        Some(SocketAddr::from((
            [127, 0, 0, 1],
            40000 + (self.id % 20000) as u16,
        )))
    }

    fn transport(&self) -> Transport {
        self.transport
    }

    fn nick(&self) -> Option<String> {
        self.identity().map(|i| i.nick)
    }

    fn account(&self) -> Option<String> {
        self.identity().and_then(|i| i.account)
    }

    fn is_admin(&self) -> bool {
        self.identity().is_some_and(|i| i.admin)
    }

    fn send(&self, payload: Payload) -> bool {
        self.host.send_to_session(self.id, payload)
    }

    fn set_identity(&self, identity: Identity, replace: bool) -> Result<(), ApiError> {
        let holder = self.host.session_of(&identity.nick);
        match holder {
            Some(other) if other != self.id && !replace => {
                return Err(ApiError::new(
                    ErrorCode::NICK_TAKEN,
                    format!("'{}' is in use", identity.nick),
                ))
            }
            Some(other) if other != self.id => {
                self.host
                    .disconnect(other, ErrorCode::KICKED, "replaced by another session");
            }
            _ => {}
        }
        self.set(Some(identity));
        Ok(())
    }

    fn clear_identity(&self) {
        self.set(None);
        self.host.lock().leave_all(self.id);
    }

    fn close(&self, code: ErrorCode, reason: &str) {
        self.host.disconnect(self.id, code, reason);
    }
}
