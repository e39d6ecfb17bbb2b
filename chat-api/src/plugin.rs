//! The plugin API: the [`MessageHandler`] trait and the narrow views of the
//! server a handler is given.
//!
//! Every frame a client sends passes through the handlers of the pipeline in
//! the order `chatd.toml` lists them, then reaches the core router. Each
//! handler decides explicitly what happens next ([`Verdict`]).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::payload::Payload;
use crate::protocol::{ApiError, Inbound, MessageKind, RequestId, RoomInfo, ServerFrame};

/// Identifies one connection for its lifetime (never reused while the server
/// runs).
pub type SessionId = u64;

/// The bit set in the id of a session connected to another node of a
/// cluster (docs/scaling.md): [`Host::session_of`] may return such an id,
/// and the `Host` calls that take a session (send, join, leave, disconnect)
/// reach it there. A plugin's own per-session state never holds one (the
/// other node's instance of the plugin sees that session's frames), so a
/// plugin that acts only on sessions it has seen checks this first.
pub const REMOTE_SESSION: SessionId = 1 << 63;

/// Whether `id` names a session on another node (see [`REMOTE_SESSION`]).
pub fn is_remote_session(id: SessionId) -> bool {
    id & REMOTE_SESSION != 0
}

/// A boxed future, the currency of the [`Host`] scheduling methods.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// How a client is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Transport {
    Tcp,
    Tls,
    WebSocket,
}

impl Transport {
    /// Whether the transport is encrypted.
    pub fn is_encrypted(self) -> bool {
        matches!(self, Transport::Tls)
    }
}

/// Who a session is, as set by the core (`nick`) or an accounts plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The nickname other users see.
    pub nick: String,
    /// The account the session is logged in as, if any.
    pub account: Option<String>,
    /// Whether the account has the admin role.
    pub admin: bool,
}

/// What happens to a frame after a handler has looked at it.
#[derive(Debug)]
pub enum Verdict {
    /// Pass the frame (possibly modified in place) to the next handler and
    /// finally to the core router.
    Continue,
    /// The handler answered the frame itself; stop here.
    Done,
    /// Refuse the frame: the client gets this error (with the frame's id) and
    /// the frame goes no further.
    Reject(ApiError),
}

/// An unexpected failure inside a handler. The client gets an `internal`
/// error; the cause is logged with the handler's name, never sent.
#[derive(Debug)]
pub struct HandlerError(pub Box<dyn std::error::Error + Send + Sync>);

impl HandlerError {
    /// A failure described by a message.
    pub fn msg(message: impl Into<String>) -> HandlerError {
        HandlerError(message.into().into())
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(e: E) -> HandlerError {
        HandlerError(Box::new(e))
    }
}

/// What [`MessageHandler::on_frame`] returns.
pub type HandlerResult = Result<Verdict, HandlerError>;

/// A stage of the message pipeline. Implemented by built-in plugins and by
/// shared-library plugins alike.
///
/// Handlers are shared by all sessions (`&self`), called concurrently from
/// many tasks; keep per-session state in a map keyed by [`Session::id`] and
/// clean it up in [`on_session_end`](MessageHandler::on_session_end).
/// Never block: use [`Host::spawn_blocking`] for CPU-heavy or blocking work.
///
/// (Maintainers: a method added here must also be forwarded by
/// `plugin_abi::Contained` and cross the ABI: a function appended to
/// `plugin_abi::PluginVTable` with a new ABI minor version.)
#[async_trait::async_trait]
pub trait MessageHandler: Send + Sync + 'static {
    /// The plugin's name, as used in `chatd.toml` and in logs.
    fn name(&self) -> &str;

    /// Capabilities announced to clients in `welcome.features`.
    fn features(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether clients must log in before chatting (announced in `welcome`).
    fn requires_login(&self) -> bool {
        false
    }

    /// Frame types this handler paces itself, exempt from the core's
    /// per-connection flood control (`limits.frames_per_second`).
    ///
    /// Only for bulk frames whose every instance the handler answers before
    /// the client may send more than a small, fixed window of them (like
    /// file chunks, each acknowledged), so that the handler, not a frame
    /// count, bounds what a client can make the server do.
    fn self_paced_frames(&self) -> Vec<String> {
        Vec::new()
    }

    /// Called once the session has completed the handshake.
    async fn on_session_start(&self, _session: &dyn Session) -> Result<(), HandlerError> {
        Ok(())
    }

    /// Called for every frame the session sends after the handshake.
    async fn on_frame(&self, session: &dyn Session, frame: &mut Inbound) -> HandlerResult;

    /// Called once when the session ends (after it has left the hub).
    /// [`Session::nick`], [`Session::account`] and [`Session::is_admin`]
    /// still answer with what the session was when it ended, although its
    /// nickname is already free for others to take.
    async fn on_session_end(&self, _session: &dyn Session) {}

    /// Called after the core delivered a chat message (`say`, `msg`,
    /// `broadcast`) that `session` sent: it has been queued for its
    /// recipients and has its `msg_id`. A message the core refused (for
    /// example a `say` to a room the sender is not in, `not_in_room`), or
    /// that a handler answered or rejected, never gets here. Called for
    /// every handler in pipeline order; the sender's next frame waits for
    /// it, so keep it short and move slow work to [`Host::spawn`].
    async fn on_delivered(&self, _session: &dyn Session, _delivery: &Delivery<'_>) {}

    /// Called when a frame changed who the session is (a login, a logout,
    /// a nickname change), after that frame has been handled and answered,
    /// for every handler in pipeline order. A plugin that keys state by
    /// account learns here that [`Session::account`] changed, whichever
    /// plugin changed it (e.g. the rooms plugin puts a member who logs in
    /// back into their rooms).
    async fn on_identity_change(&self, _session: &dyn Session) {}

    /// Called once when the server shuts down, after the last session ended.
    async fn on_shutdown(&self) {}

    /// Called on a configuration reload (`chatd reload`, SIGHUP) when this
    /// plugin's `[plugin.config]` table changed; the server has already
    /// checked the new table by building a fresh instance of the plugin.
    /// A plugin that can switch to it without dropping anyone does so and
    /// returns [`Reconfigured::Applied`]. The default,
    /// [`Reconfigured::RestartNeeded`], keeps the old settings and has the
    /// server log that the change waits for a restart; so does an `Err`.
    fn reconfigure(&self, _config: &PluginConfig) -> Result<Reconfigured, ConfigError> {
        Ok(Reconfigured::RestartNeeded)
    }
}

/// A chat message the core delivered, as [`MessageHandler::on_delivered`]
/// sees it. Built by the server only; fields may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery<'a> {
    /// Room, direct or broadcast message.
    pub kind: MessageKind,
    /// The room (spelt as the server spells it) of a room message, the
    /// recipient's nickname of a direct message; `None` for a broadcast.
    pub target: Option<&'a str>,
    /// The id recipients saw in the `message` frame (and the sender in
    /// `sent`).
    pub msg_id: u64,
    /// Server time of acceptance, milliseconds since the Unix epoch.
    pub ts: u64,
    /// Sessions the message was queued for (the sender not counted); 0 for
    /// a direct message kept for an account that is offline.
    pub recipients: usize,
    /// The text as delivered (after any handler rewrote it).
    pub text: &'a str,
}

impl<'a> Delivery<'a> {
    /// Describes a delivered message (used by the server and by tests).
    pub fn new(
        kind: MessageKind,
        target: Option<&'a str>,
        msg_id: u64,
        ts: u64,
        recipients: usize,
        text: &'a str,
    ) -> Delivery<'a> {
        Delivery {
            kind,
            target,
            msg_id,
            ts,
            recipients,
            text,
        }
    }
}

/// What [`MessageHandler::reconfigure`] did with a new configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconfigured {
    /// The new settings are in force from now on.
    Applied,
    /// The plugin cannot change them while running; the old ones stay
    /// until the server restarts.
    RestartNeeded,
}

/// The session a handler acts for.
pub trait Session: Send + Sync {
    fn id(&self) -> SessionId;
    /// The client's address (absent for transports that have none).
    fn peer_addr(&self) -> Option<SocketAddr>;
    fn transport(&self) -> Transport;
    /// Whether the connection is encrypted (TLS, or WebSocket over HTTPS).
    /// Prefer this to `transport().is_encrypted()`, which cannot tell `ws://`
    /// from `wss://`.
    fn is_encrypted(&self) -> bool {
        self.transport().is_encrypted()
    }
    /// The current nickname, once chosen or logged in.
    fn nick(&self) -> Option<String>;
    /// The account logged in on this session, if any.
    fn account(&self) -> Option<String>;
    /// Whether the session has the admin role.
    fn is_admin(&self) -> bool;

    /// Queues an encoded frame for this session. Returns `false` when the
    /// session is closing or its queue is full (it is then disconnected as a
    /// slow consumer).
    fn send(&self, payload: Payload) -> bool;

    /// Sets who the session is, claiming `identity.nick` in the hub.
    /// With `replace`, another session holding that nickname is ended
    /// (a second login of the same account); otherwise it is an error.
    fn set_identity(&self, identity: Identity, replace: bool) -> Result<(), ApiError>;

    /// Forgets the identity (log out): the session leaves its rooms and must
    /// set an identity again before chatting.
    fn clear_identity(&self);

    /// Ends the session: the client receives `bye` with this code and reason.
    fn close(&self, code: crate::ErrorCode, reason: &str);
    /// A resume token that came with the connection rather than in a frame:
    /// the browser app's `HttpOnly` cookie, read at the WebSocket upgrade.
    /// `resume` without a `token` uses it.
    fn transport_token(&self) -> Option<String> {
        None
    }
}

impl dyn Session + '_ {
    /// Encodes and queues a frame for this session.
    pub fn send_frame<T: Serialize + ?Sized>(&self, frame: &T) -> bool {
        self.send(Payload::encode(frame))
    }

    /// Queues an `ok` reply.
    pub fn reply_ok(&self, id: Option<RequestId>) -> bool {
        self.send_frame(&ServerFrame::ok(id))
    }

    /// Queues an `error` reply.
    pub fn reply_error(&self, id: Option<RequestId>, error: &ApiError) -> bool {
        self.send_frame(&ServerFrame::error(id, error))
    }
}

/// The server as a plugin sees it: routing, a view of who is where, and the
/// runtime services a plugin must not take from its own copy of tokio.
///
/// Shared-library plugins get timers, tasks and blocking work only from
/// here ([`spawn`](Host::spawn), [`sleep`](Host::sleep),
/// [`spawn_blocking`](Host::spawn_blocking)): a plugin's own copy of tokio
/// has no runtime, so `tokio::spawn` or `tokio::time::sleep` panic there.
///
/// (Maintainers: a method added here must also cross the ABI: a function
/// appended to `plugin_abi::HostVTable` with a new ABI minor version,
/// implemented by chatd's `dynamic` module and called by
/// `plugin_abi::RemoteHost`.)
pub trait Host: Send + Sync {
    /// Queues a frame for one session; `false` if it is gone.
    fn send_to_session(&self, session: SessionId, payload: Payload) -> bool;
    /// Queues a frame for the user with this nickname.
    fn send_to_user(&self, nick: &str, payload: Payload) -> Result<(), ApiError>;
    /// Queues a frame for every member of a room; returns how many.
    fn send_to_room(&self, room: &str, payload: Payload) -> Result<usize, ApiError>;
    /// Queues a frame for every session that has a nickname; returns how many.
    fn broadcast(&self, payload: Payload) -> usize;

    /// The nicknames of everyone connected, sorted.
    fn users(&self) -> Vec<String>;
    /// All rooms that currently have members.
    fn rooms(&self) -> Vec<RoomInfo>;
    /// The nicknames in a room, sorted; `None` if it has no members.
    fn room_members(&self, room: &str) -> Option<Vec<String>>;
    /// The session holding a nickname, if connected.
    fn session_of(&self, nick: &str) -> Option<SessionId>;

    /// Puts a session into a room (as the `join` frame does, with presence
    /// events); returns the room's name as the server spells it (its
    /// creator's spelling, as a `joined` reply carries it) and the members
    /// after joining.
    fn join_room(&self, session: SessionId, room: &str) -> Result<(String, Vec<String>), ApiError>;
    /// Removes a session from a room; members see a `part` with this reason.
    fn leave_room(
        &self,
        session: SessionId,
        room: &str,
        reason: Option<&str>,
    ) -> Result<(), ApiError>;
    /// Removes every member from a room (e.g. when a plugin deletes it).
    fn close_room(&self, room: &str, reason: &str);
    /// Ends a session; the client receives `bye` with this code and reason.
    fn disconnect(&self, session: SessionId, code: crate::ErrorCode, reason: &str);

    /// A fresh message id and timestamp (ms since the epoch), for plugins
    /// that deliver messages of their own.
    fn next_message_id(&self) -> (u64, u64);

    /// Runs a future on chatd's runtime (plugins must not use their own).
    fn spawn(&self, task: BoxFuture<()>);
    /// Runs blocking or CPU-heavy work on chatd's blocking pool.
    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send + 'static>);
    /// A timer on chatd's runtime.
    fn sleep(&self, duration: Duration) -> BoxFuture<()>;
    /// The server's data directory (databases, spooled files).
    fn data_dir(&self) -> &Path;

    /// Longest frame a client may send (`limits.max_frame_bytes`), so that a
    /// plugin can check at start that its own frames fit; `None` if unknown.
    fn max_frame_bytes(&self) -> Option<usize> {
        None
    }

    /// The value stored under `key` in this plugin's own key-value store,
    /// if any. See [`kv_put`](Host::kv_put).
    fn kv_get(&self, _key: &str) -> BoxFuture<Result<Option<Vec<u8>>, StorageError>> {
        StorageError::unavailable()
    }

    /// Stores `value` under `key` in this plugin's own key-value store (its
    /// namespace is the plugin's name in `chatd.toml`; no other plugin sees
    /// it), replacing any value there. When the future returns `Ok`, the
    /// value is in chatd's database and survives a restart. Limits (keys of
    /// 1 to 256 bytes, values up to 64 KiB, 10 000 keys per plugin) are
    /// errors saying which, never truncation.
    ///
    /// Offered to shared-library plugins (plugin ABI 1.1); built-in plugins
    /// use the database directly, and other hosts return
    /// [`StorageErrorKind::Unavailable`].
    fn kv_put(&self, _key: &str, _value: &[u8]) -> BoxFuture<Result<(), StorageError>> {
        StorageError::unavailable()
    }

    /// Removes `key`; `true` if it was there.
    fn kv_delete(&self, _key: &str) -> BoxFuture<Result<bool, StorageError>> {
        StorageError::unavailable()
    }

    /// The keys that start with `prefix` (all with `""`), sorted.
    fn kv_list(&self, _prefix: &str) -> BoxFuture<Result<Vec<String>, StorageError>> {
        StorageError::unavailable()
    }

    /// Writes a line to the server's log, attributed to `plugin`.
    ///
    /// Shared-library plugins must log through this: their own copy of
    /// `tracing` (or `log`) has no subscriber and prints nothing. The default
    /// body writes to standard error, for hosts other than chatd.
    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        eprintln!("{level} plugin {plugin}: {message}");
    }
}

/// Why a key-value store call ([`Host::kv_put`] ...) failed. The message
/// says what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct StorageError {
    pub kind: StorageErrorKind,
    pub message: String,
}

/// What kind of [`StorageError`] it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageErrorKind {
    /// This host offers no store (not chatd, or a built-in plugin).
    Unavailable,
    /// The key is empty or longer than the limit.
    InvalidKey,
    /// The value is longer than the limit.
    ValueTooLarge,
    /// The plugin already stores the most keys it may.
    TooManyKeys,
    /// The database failed (chatd's log has the cause).
    Failed,
}

impl StorageErrorKind {
    /// The kind's name, as it crosses the plugin ABI.
    pub fn code(self) -> &'static str {
        match self {
            StorageErrorKind::Unavailable => "storage_unavailable",
            StorageErrorKind::InvalidKey => "invalid_key",
            StorageErrorKind::ValueTooLarge => "value_too_large",
            StorageErrorKind::TooManyKeys => "too_many_keys",
            StorageErrorKind::Failed => "storage_failed",
        }
    }

    /// The kind named by [`code`](Self::code); unknown names are `Failed`.
    pub fn from_code(code: &str) -> StorageErrorKind {
        [
            StorageErrorKind::Unavailable,
            StorageErrorKind::InvalidKey,
            StorageErrorKind::ValueTooLarge,
            StorageErrorKind::TooManyKeys,
        ]
        .into_iter()
        .find(|kind| kind.code() == code)
        .unwrap_or(StorageErrorKind::Failed)
    }
}

impl StorageError {
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> StorageError {
        StorageError {
            kind,
            message: message.into(),
        }
    }

    fn unavailable<T: Send + 'static>() -> BoxFuture<Result<T, StorageError>> {
        Box::pin(std::future::ready(Err(StorageError::new(
            StorageErrorKind::Unavailable,
            "this host offers no plugin storage (chatd offers it to shared-library plugins; built-in plugins use the database)",
        ))))
    }
}

/// How important a [`Host::log`] line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogLevel::Error => "ERROR",
            LogLevel::Warn => "WARN",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
        })
    }
}

/// A plugin's own configuration table from `chatd.toml`.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// The plugin's name in the configuration.
    pub plugin: String,
    /// Where the configuration came from (for error messages).
    pub source: String,
    /// The `[plugin.config]` table, re-serialised as TOML text so that it
    /// crosses a shared-library boundary as plain data.
    pub toml: String,
}

impl PluginConfig {
    /// An empty configuration (all defaults).
    pub fn empty(plugin: &str) -> PluginConfig {
        PluginConfig {
            plugin: plugin.to_string(),
            source: "<defaults>".to_string(),
            toml: String::new(),
        }
    }

    /// Deserialises the table into the plugin's own type. Use
    /// `#[serde(deny_unknown_fields)]` on it so typos are reported.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(&self.toml).map_err(|e| ConfigError {
            plugin: self.plugin.clone(),
            source_name: self.source.clone(),
            message: e.message().to_string(),
        })
    }
}

/// A plugin's configuration could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{source_name}: invalid configuration for plugin '{plugin}': {message}")]
pub struct ConfigError {
    pub plugin: String,
    pub source_name: String,
    pub message: String,
}

impl ConfigError {
    /// A configuration error found by the plugin's own checks.
    pub fn invalid(config: &PluginConfig, message: impl Into<String>) -> ConfigError {
        ConfigError {
            plugin: config.plugin.clone(),
            source_name: config.source.clone(),
            message: message.into(),
        }
    }
}

/// Everything a plugin constructor gets.
#[derive(Clone)]
pub struct PluginContext {
    pub config: PluginConfig,
    pub host: Arc<dyn Host>,
}
