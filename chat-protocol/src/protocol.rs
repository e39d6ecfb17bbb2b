//! Wire frames: one JSON object per line, with a `type` field.
//!
//! `docs/protocol.md` is the normative description; this module is its
//! executable form. Frames a client sends are [`ClientFrame`]s, frames the
//! server sends are [`ServerFrame`]s. Frame types added by plugins are not
//! listed here: they arrive as [`Request::Custom`] and each plugin decodes its
//! own (see [`Inbound::decode_custom`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol version this crate speaks; sent in `hello` and `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// A request id chosen by the client; echoed in the reply to that request.
pub type RequestId = u64;

/// Frames a client sends to the server (the core set; plugins add more).
///
/// New frame types may appear within a protocol version: match with a `_`
/// arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientFrame {
    /// First frame of every connection.
    Hello {
        protocol: u32,
        /// Free-form client name and version, for the server's logs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
    /// Choose or change one's nickname (guest mode).
    Nick { nick: String },
    /// Join a room, creating it if it does not exist.
    Join { room: String },
    /// Leave a room.
    Part { room: String },
    /// Send a message to a room one is in.
    Say { room: String, text: String },
    /// Send a direct message to one user.
    Msg { to: String, text: String },
    /// Send a message to every connected user.
    Broadcast { text: String },
    /// List connected users, or the members of one room.
    Users {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
    /// List rooms.
    Rooms {},
    /// Liveness and round-trip measurement.
    Ping {
        /// Opaque value echoed in the `pong`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Value>,
    },
    /// Leave the server.
    Quit {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Read a page of a conversation's stored messages.
    History {
        /// The room, or ...
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// ... the other party of a direct conversation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// Messages older than this id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        /// Messages newer than this id. Neither cursor: the newest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        /// Set by a plugin, never by a client: the oldest message id this
        /// session may read in the conversation (a private room's member
        /// reads only what was said since joining).
        #[serde(skip)]
        floor: Option<u64>,
    },
    /// Move the account's read marker in a conversation forward.
    Read {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        msg_id: u64,
    },
    /// List the account's conversations with their unread counts.
    Unread {},
}

impl ClientFrame {
    /// The value of the frame's `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Hello { .. } => "hello",
            ClientFrame::Nick { .. } => "nick",
            ClientFrame::Join { .. } => "join",
            ClientFrame::Part { .. } => "part",
            ClientFrame::Say { .. } => "say",
            ClientFrame::Msg { .. } => "msg",
            ClientFrame::Broadcast { .. } => "broadcast",
            ClientFrame::Users { .. } => "users",
            ClientFrame::Rooms {} => "rooms",
            ClientFrame::Ping { .. } => "ping",
            ClientFrame::Quit { .. } => "quit",
            ClientFrame::History { .. } => "history",
            ClientFrame::Read { .. } => "read",
            ClientFrame::Unread {} => "unread",
        }
    }

    const KINDS: &'static [&'static str] = &[
        "hello",
        "nick",
        "join",
        "part",
        "say",
        "msg",
        "broadcast",
        "users",
        "rooms",
        "ping",
        "quit",
        "history",
        "read",
        "unread",
    ];
}

/// Where a delivered message was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Room,
    Direct,
    Broadcast,
}

/// A chat message as delivered to its recipients.
///
/// Fields may be added within a protocol version: outside this crate, build
/// one with [`Message::new`] and set `room` or `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// Server-assigned id, unique and increasing across restarts.
    pub msg_id: u64,
    /// Server time of acceptance, milliseconds since the Unix epoch.
    pub ts: u64,
    pub kind: MessageKind,
    pub from: String,
    /// The room, for `kind = "room"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The recipient, for `kind = "direct"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub text: String,
}

impl Message {
    /// A message with neither room nor recipient set (as a broadcast is).
    pub fn new(
        msg_id: u64,
        ts: u64,
        kind: MessageKind,
        from: impl Into<String>,
        text: impl Into<String>,
    ) -> Message {
        Message {
            msg_id,
            ts,
            kind,
            from: from.into(),
            room: None,
            to: None,
            text: text.into(),
        }
    }
}

/// What happened to someone's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceEvent {
    /// `nick` joined `room`.
    Join,
    /// `nick` left `room`.
    Part,
    /// `nick` disconnected (sent to each room they were in).
    Quit,
    /// `nick` is now called `new_nick` (sent to each room they are in).
    Nick,
}

/// A presence change, delivered to the members of the room concerned.
/// Fields may be added: outside this crate, build one with
/// [`Presence::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Presence {
    pub event: PresenceEvent,
    pub room: String,
    pub nick: String,
    pub ts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_nick: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One line of a room listing. Fields may be added: outside this crate,
/// build one with [`RoomInfo::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RoomInfo {
    pub name: String,
    pub members: usize,
    /// Set by plugins that know more about a room (for example `"private"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl RoomInfo {
    /// A public room with `members` members, no kind or topic.
    pub fn new(name: impl Into<String>, members: usize) -> RoomInfo {
        RoomInfo {
            name: name.into(),
            members,
            kind: None,
            topic: None,
        }
    }
}

impl Presence {
    /// `nick`'s `event` in `room`, without a new nickname or reason.
    pub fn new(
        event: PresenceEvent,
        room: impl Into<String>,
        nick: impl Into<String>,
        ts: u64,
    ) -> Presence {
        Presence {
            event,
            room: room.into(),
            nick: nick.into(),
            ts,
            new_nick: None,
            reason: None,
        }
    }
}

/// Frames the server sends (the core set; plugins add more).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerFrame {
    /// Reply to `hello`.
    Welcome {
        /// Server software name, e.g. `chatd`.
        server: String,
        /// Server software version.
        version: String,
        protocol: u32,
        /// Names of the enabled plugins, in pipeline order.
        plugins: Vec<String>,
        /// Capabilities clients can rely on (core ones and those plugins add).
        features: Vec<String>,
        /// Longest frame the server accepts, in bytes, newline included.
        max_frame_bytes: usize,
        /// Whether a client must log in (accounts plugin) before chatting.
        #[serde(default)]
        auth_required: bool,
    },
    /// A request succeeded and has nothing else to say.
    Ok {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Present when the request set or changed the nickname.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
    },
    /// Reply to `join`.
    Joined {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        room: String,
        members: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
    },
    /// Reply to `say`, `msg` and `broadcast`: the message was accepted.
    Sent {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        msg_id: u64,
        ts: u64,
        /// How many sessions it was queued for.
        recipients: usize,
        /// The text as delivered, present only when a plugin changed it
        /// (masked words, a dice roll): the sender shows what everyone else
        /// sees instead of what it typed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// A direct message to an account that is offline: stored, and
        /// delivered when the account next logs in.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        stored: bool,
    },
    /// A chat message.
    Message(Message),
    /// Someone joined, left, quit or changed nickname.
    Presence(Presence),
    /// Reply to `users`.
    Users {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        users: Vec<String>,
    },
    /// Reply to `rooms`.
    Rooms {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        rooms: Vec<RoomInfo>,
    },
    /// Reply to `ping`.
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Value>,
    },
    /// A request failed, or the server refuses something.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        code: ErrorCode,
        message: String,
    },
    /// The server is closing this connection; nothing follows.
    Bye { code: ErrorCode, reason: String },
    /// Reply to `history`: messages oldest first.
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        messages: Vec<Message>,
        /// More messages exist in the direction asked.
        more: bool,
    },
    /// The account's conversations and unread counts (reply to `unread`,
    /// and sent after every login and resume).
    Unread {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        conversations: Vec<UnreadEntry>,
    },
    /// Messages missed while away, oldest first (during a resume).
    Missed { messages: Vec<Message> },
    /// The end of a resume's catch-up.
    Resumed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Messages sent in `missed` frames.
        missed: usize,
        /// More were missed than one resume sends: page with `history`.
        more: bool,
        /// The newest id sent (or the client's own `last_msg_id`).
        last_msg_id: u64,
    },
}

/// One conversation in an `unread` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UnreadEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<String>,
    /// The newest message in the conversation (0: none stored).
    pub last_msg_id: u64,
    /// The account's read marker (0: nothing read).
    pub read_msg_id: u64,
    /// Messages from others after the marker, counted up to 1000.
    pub unread: u64,
}

impl UnreadEntry {
    /// A room's (`room`) or a direct conversation's (`with`) entry.
    pub fn new(
        room: Option<String>,
        with: Option<String>,
        last_msg_id: u64,
        read_msg_id: u64,
        unread: u64,
    ) -> UnreadEntry {
        UnreadEntry {
            room,
            with,
            last_msg_id,
            read_msg_id,
            unread,
        }
    }
}

impl ServerFrame {
    /// An `error` frame.
    pub fn error(id: Option<RequestId>, err: &ApiError) -> ServerFrame {
        ServerFrame::Error {
            id,
            code: err.code.clone(),
            message: err.message.clone(),
        }
    }

    /// An `ok` frame.
    pub fn ok(id: Option<RequestId>) -> ServerFrame {
        ServerFrame::Ok { id, nick: None }
    }

    const KINDS: &'static [&'static str] = &[
        "welcome", "ok", "joined", "sent", "message", "presence", "users", "rooms", "pong",
        "error", "bye", "history", "unread", "missed", "resumed",
    ];
}

/// A stable, machine-readable error code (`snake_case`), e.g. `nick_taken`.
///
/// Codes are strings so that plugins can add their own; the core ones are the
/// associated constants. Clients should branch on the code and show the
/// accompanying message to people.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub Cow<'static, str>);

impl ErrorCode {
    /// A code defined by a plugin.
    pub const fn custom(code: &'static str) -> ErrorCode {
        ErrorCode(Cow::Borrowed(code))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The line is not a JSON object (or not UTF-8).
    pub const MALFORMED_FRAME: ErrorCode = ErrorCode::custom("malformed_frame");
    /// The frame's `type` is known but a field is missing or has the wrong type.
    pub const INVALID_FRAME: ErrorCode = ErrorCode::custom("invalid_frame");
    /// No core frame and no enabled plugin has this `type`.
    pub const UNKNOWN_TYPE: ErrorCode = ErrorCode::custom("unknown_type");
    /// The line exceeded `max_frame_bytes`; it was discarded.
    pub const FRAME_TOO_LARGE: ErrorCode = ErrorCode::custom("frame_too_large");
    /// A frame other than `hello` arrived before the handshake.
    pub const HANDSHAKE_REQUIRED: ErrorCode = ErrorCode::custom("handshake_required");
    /// `hello` asked for a protocol version this server does not speak.
    pub const UNSUPPORTED_PROTOCOL: ErrorCode = ErrorCode::custom("unsupported_protocol");
    /// `hello` sent twice.
    pub const ALREADY_GREETED: ErrorCode = ErrorCode::custom("already_greeted");
    /// No `hello` within the handshake timeout (in `bye`).
    pub const HANDSHAKE_TIMEOUT: ErrorCode = ErrorCode::custom("handshake_timeout");
    /// The action needs a nickname (or a login) first.
    pub const NICK_REQUIRED: ErrorCode = ErrorCode::custom("nick_required");
    pub const INVALID_NICK: ErrorCode = ErrorCode::custom("invalid_nick");
    pub const NICK_TAKEN: ErrorCode = ErrorCode::custom("nick_taken");
    pub const INVALID_ROOM: ErrorCode = ErrorCode::custom("invalid_room");
    /// Sending to or parting a room one is not in.
    /// `join` while already in `limits.max_rooms_per_session` rooms, or of a
    /// new room while `limits.max_rooms` exist.
    pub const ROOM_LIMIT: ErrorCode = ErrorCode::custom("room_limit");
    pub const NOT_IN_ROOM: ErrorCode = ErrorCode::custom("not_in_room");
    /// A room that does not exist (or that the user may not see).
    pub const NO_SUCH_ROOM: ErrorCode = ErrorCode::custom("no_such_room");
    /// The message reached its online recipients but could not be stored
    /// (disk full, database failure); it is not in the history.
    pub const NOT_STORED: ErrorCode = ErrorCode::custom("not_stored");
    /// Read markers and unread counts belong to accounts; log in first.
    pub const ACCOUNT_REQUIRED: ErrorCode = ErrorCode::custom("account_required");
    /// Nobody connected has that nickname.
    pub const NO_SUCH_USER: ErrorCode = ErrorCode::custom("no_such_user");
    /// Empty text, or text with forbidden control characters.
    pub const INVALID_TEXT: ErrorCode = ErrorCode::custom("invalid_text");
    /// The server's policy does not allow this (e.g. broadcast).
    pub const FORBIDDEN: ErrorCode = ErrorCode::custom("forbidden");
    /// A plugin refused the frame; the message says why.
    pub const REJECTED: ErrorCode = ErrorCode::custom("rejected");
    /// Too many frames too quickly; the frame was dropped.
    pub const RATE_LIMITED: ErrorCode = ErrorCode::custom("rate_limited");
    /// The frame's type belongs to a plugin that is not enabled.
    pub const FEATURE_DISABLED: ErrorCode = ErrorCode::custom("feature_disabled");
    /// The node cannot reach the rest of its cluster just now (NATS is
    /// unreachable or did not store the message in time); nothing was
    /// delivered beyond what the message says. Try again shortly.
    pub const CLUSTER_UNAVAILABLE: ErrorCode = ErrorCode::custom("cluster_unavailable");
    /// Something failed inside the server; the request may be retried.
    pub const INTERNAL: ErrorCode = ErrorCode::custom("internal");
    /// In `bye`: the client did not read fast enough and its queue filled.
    pub const SLOW_CONSUMER: ErrorCode = ErrorCode::custom("slow_consumer");
    /// In `bye`: the server is shutting down.
    pub const SHUTTING_DOWN: ErrorCode = ErrorCode::custom("shutting_down");
    /// In `bye`: the server holds its maximum number of connections.
    pub const SERVER_FULL: ErrorCode = ErrorCode::custom("server_full");
    /// In `bye`: the client asked to quit.
    pub const QUIT: ErrorCode = ErrorCode::custom("quit");
    /// In `bye`: the WebSocket client broke RFC 6455 (an unmasked frame,
    /// reserved bits or opcodes); the stream cannot be read further.
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode::custom("protocol_error");
    /// In `bye`: the session was ended by the server or an operator.
    pub const KICKED: ErrorCode = ErrorCode::custom("kicked");
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An error to report to a client: a code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

/// One frame received from a client, as the pipeline sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// The request id, echoed in replies.
    pub id: Option<RequestId>,
    /// The frame's `type`.
    pub kind: String,
    pub request: Request,
}

/// The body of an inbound frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// One of the core frames.
    Core(ClientFrame),
    /// A frame type the core does not know: plugins decode it.
    /// The map holds every field of the object, `type` and `id` included.
    Custom(Map<String, Value>),
}

impl Inbound {
    /// Decodes a plugin frame into the plugin's own type. A field error
    /// becomes an `invalid_frame` error naming the frame type.
    pub fn decode_custom<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        match &self.request {
            Request::Custom(map) => serde_json::from_value(Value::Object(map.clone()))
                .map_err(|e| invalid_fields(&self.kind, &e)),
            Request::Core(_) => Err(ApiError::new(
                ErrorCode::INVALID_FRAME,
                format!("'{}' is a core frame, not a plugin frame", self.kind),
            )),
        }
    }

    /// Parses one line (without its newline) received from a client.
    pub fn parse(line: &[u8]) -> Result<Inbound, ParseError> {
        let (id, kind, map) = split_object(line)?;
        let request = if ClientFrame::KINDS.contains(&kind.as_str()) {
            let frame = serde_json::from_value::<ClientFrame>(Value::Object(map))
                .map_err(|e| ParseError::new(id, invalid_fields(&kind, &e)))?;
            Request::Core(frame)
        } else {
            Request::Custom(map)
        };
        Ok(Inbound { id, kind, request })
    }
}

/// A frame the server sent, as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Core(ServerFrame),
    /// A frame added by a plugin; `kind` is its `type`.
    Custom {
        kind: String,
        fields: Map<String, Value>,
    },
}

impl Received {
    /// Parses one line received from the server.
    pub fn parse(line: &[u8]) -> Result<Received, ParseError> {
        let (_id, kind, map) = split_object(line)?;
        if ServerFrame::KINDS.contains(&kind.as_str()) {
            let frame = serde_json::from_value::<ServerFrame>(Value::Object(map))
                .map_err(|e| ParseError::new(None, invalid_fields(&kind, &e)))?;
            Ok(Received::Core(frame))
        } else {
            Ok(Received::Custom { kind, fields: map })
        }
    }

    /// The frame's `type`.
    pub fn kind(&self) -> &str {
        match self {
            Received::Custom { kind, .. } => kind,
            Received::Core(frame) => match frame {
                ServerFrame::Welcome { .. } => "welcome",
                ServerFrame::Ok { .. } => "ok",
                ServerFrame::Joined { .. } => "joined",
                ServerFrame::Sent { .. } => "sent",
                ServerFrame::Message(_) => "message",
                ServerFrame::Presence(_) => "presence",
                ServerFrame::Users { .. } => "users",
                ServerFrame::Rooms { .. } => "rooms",
                ServerFrame::Pong { .. } => "pong",
                ServerFrame::Error { .. } => "error",
                ServerFrame::Bye { .. } => "bye",
                ServerFrame::History { .. } => "history",
                ServerFrame::Unread { .. } => "unread",
                ServerFrame::Missed { .. } => "missed",
                ServerFrame::Resumed { .. } => "resumed",
            },
        }
    }

    /// The request id this frame answers, if any.
    pub fn reply_to(&self) -> Option<RequestId> {
        match self {
            Received::Custom { fields, .. } => fields.get("id").and_then(Value::as_u64),
            Received::Core(frame) => match frame {
                ServerFrame::Ok { id, .. }
                | ServerFrame::Joined { id, .. }
                | ServerFrame::Sent { id, .. }
                | ServerFrame::Users { id, .. }
                | ServerFrame::Rooms { id, .. }
                | ServerFrame::Pong { id, .. }
                | ServerFrame::History { id, .. }
                | ServerFrame::Unread { id, .. }
                | ServerFrame::Resumed { id, .. }
                | ServerFrame::Error { id, .. } => *id,
                _ => None,
            },
        }
    }

    /// Decodes a plugin frame into the caller's type.
    pub fn decode_custom<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        match self {
            Received::Custom { kind, fields } => {
                serde_json::from_value(Value::Object(fields.clone()))
                    .map_err(|e| invalid_fields(kind, &e))
            }
            Received::Core(_) => Err(ApiError::new(
                ErrorCode::INVALID_FRAME,
                "not a plugin frame",
            )),
        }
    }
}

/// A line that could not be turned into a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct ParseError {
    /// The request id, when the line was an object with a numeric `id`.
    pub id: Option<RequestId>,
    pub error: ApiError,
}

impl ParseError {
    fn new(id: Option<RequestId>, error: ApiError) -> ParseError {
        ParseError { id, error }
    }
}

fn invalid_fields(kind: &str, e: &serde_json::Error) -> ApiError {
    ApiError::new(
        ErrorCode::INVALID_FRAME,
        format!("bad '{kind}' frame: {e}; see docs/protocol.md for its fields"),
    )
}

/// A frame split into its request id, its type and the whole object.
type SplitFrame = (Option<RequestId>, String, Map<String, Value>);

/// Splits a line into its request id, its type and the whole object.
fn split_object(line: &[u8]) -> Result<SplitFrame, ParseError> {
    let text = std::str::from_utf8(line).map_err(|_| {
        ParseError::new(
            None,
            ApiError::new(ErrorCode::MALFORMED_FRAME, "frame is not valid UTF-8"),
        )
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ParseError::new(
            None,
            ApiError::new(
                ErrorCode::MALFORMED_FRAME,
                format!("frame is not valid JSON ({e}); send one JSON object per line"),
            ),
        )
    })?;
    let Value::Object(map) = value else {
        return Err(ParseError::new(
            None,
            ApiError::new(
                ErrorCode::MALFORMED_FRAME,
                "frame must be a JSON object with a \"type\" field",
            ),
        ));
    };
    let id = match map.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            ParseError::new(
                None,
                ApiError::new(
                    ErrorCode::INVALID_FRAME,
                    "\"id\" must be a non-negative integer",
                ),
            )
        })?),
    };
    let kind = match map.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => {
            return Err(ParseError::new(
                id,
                ApiError::new(
                    ErrorCode::MALFORMED_FRAME,
                    "frame has no string \"type\" field",
                ),
            ))
        }
    };
    Ok((id, kind, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_core_frame_with_id() {
        let f = Inbound::parse(br##"{"type":"say","id":7,"room":"#a","text":"hi"}"##).unwrap();
        assert_eq!(f.id, Some(7));
        assert_eq!(
            f.request,
            Request::Core(ClientFrame::Say {
                room: "#a".into(),
                text: "hi".into()
            })
        );
    }

    #[test]
    fn unknown_type_is_custom() {
        let f = Inbound::parse(br#"{"type":"roll","dice":"2d6"}"#).unwrap();
        assert_eq!(f.kind, "roll");
        assert!(matches!(f.request, Request::Custom(_)));
    }

    #[test]
    fn errors_are_specific() {
        let e = Inbound::parse(b"not json").unwrap_err();
        assert_eq!(e.error.code, ErrorCode::MALFORMED_FRAME);
        let e = Inbound::parse(b"[1,2]").unwrap_err();
        assert_eq!(e.error.code, ErrorCode::MALFORMED_FRAME);
        let e = Inbound::parse(br#"{"id":3}"#).unwrap_err();
        assert_eq!((e.id, e.error.code), (Some(3), ErrorCode::MALFORMED_FRAME));
        let e = Inbound::parse(br##"{"type":"say","id":4,"room":"#a"}"##).unwrap_err();
        assert_eq!(
            (e.id, e.error.code.clone()),
            (Some(4), ErrorCode::INVALID_FRAME)
        );
        assert!(e.error.message.contains("text"), "{}", e.error.message);
        let e = Inbound::parse(&[0xff, 0xfe]).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::MALFORMED_FRAME);
    }

    #[test]
    fn server_frames_round_trip() {
        let frames = vec![
            ServerFrame::Message(Message {
                msg_id: 1,
                ts: 2,
                kind: MessageKind::Room,
                from: "a".into(),
                room: Some("#r".into()),
                to: None,
                text: "x".into(),
            }),
            ServerFrame::Error {
                id: Some(1),
                code: ErrorCode::NICK_TAKEN,
                message: "m".into(),
            },
            ServerFrame::ok(None),
        ];
        for frame in frames {
            let line = crate::Payload::encode(&frame);
            assert_eq!(
                Received::parse(line.json()).unwrap(),
                Received::Core(frame.clone())
            );
        }
        let line = crate::Payload::encode(&ServerFrame::Message(Message {
            msg_id: 1,
            ts: 2,
            kind: MessageKind::Direct,
            from: "a".into(),
            room: None,
            to: Some("b".into()),
            text: "x".into(),
        }));
        assert_eq!(
            std::str::from_utf8(line.line()).unwrap(),
            "{\"type\":\"message\",\"msg_id\":1,\"ts\":2,\"kind\":\"direct\",\"from\":\"a\",\"to\":\"b\",\"text\":\"x\"}\n"
        );
    }

    #[test]
    fn sent_carries_text_only_when_it_was_changed() {
        let sent = |text: Option<&str>| ServerFrame::Sent {
            id: Some(4),
            msg_id: 17,
            ts: 5,
            recipients: 2,
            text: text.map(str::to_string),
            stored: false,
        };
        let unchanged = crate::Payload::encode(&sent(None));
        assert_eq!(
            std::str::from_utf8(unchanged.line()).unwrap(),
            "{\"type\":\"sent\",\"id\":4,\"msg_id\":17,\"ts\":5,\"recipients\":2}\n"
        );
        let changed = crate::Payload::encode(&sent(Some("what the ****")));
        assert_eq!(
            Received::parse(changed.json()).unwrap(),
            Received::Core(sent(Some("what the ****")))
        );
        // A server without this field still parses.
        assert_eq!(
            Received::parse(unchanged.json()).unwrap(),
            Received::Core(sent(None))
        );
    }
}
