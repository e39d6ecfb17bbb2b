//! History, resuming and read markers (`docs/protocol.md`, "History,
//! offline messages and resuming"): page through a room or a direct
//! conversation, come back after a dropped connection without the password,
//! and keep read markers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chat_client::RequestError> {
//! use chat_client::history::{self, Cursor, Target};
//! use chat_client::{accounts, Client, ConnectOptions};
//! let mut alice = Client::connect("127.0.0.1:7878", &ConnectOptions::default()).await?;
//! let account = accounts::login(&mut alice, "alice", "correct horse battery").await?;
//! let page = history::history(&mut alice, &Target::Room("#rust".into()), Cursor::Latest, Some(50)).await?;
//! if let Some(newest) = page.messages.last() {
//!     history::read(&mut alice, &Target::Room("#rust".into()), newest.msg_id).await?;
//! }
//! // Later, on a new connection:
//! let mut again = Client::connect("127.0.0.1:7878", &ConnectOptions::default()).await?;
//! let token = account.resume_token.expect("the server keeps history");
//! let resumed = accounts::resume(&mut again, &token, Some(page.messages.last().map_or(0, |m| m.msg_id))).await?;
//! for m in &resumed.missed {
//!     println!("while away: <{}> {}", m.from, m.text);
//! }
//! # Ok(()) }
//! ```
//!
//! The request builders ([`history_frame`], [`read_frame`], ...) and the
//! reply decoders ([`HistoryPage::from_frame`], ...) are public too, for
//! clients that run their own connection loop (like `client-tui`).

use chat_protocol::{Message, ServerFrame};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::{Client, ClientError, Received, RequestError};

/// A conversation: a room, or the direct conversation with someone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A room, by name (`#rust`).
    Room(String),
    /// The direct conversation with this user (account or nickname).
    With(String),
}

impl Target {
    /// Adds `room` or `with` to a frame.
    fn put(&self, frame: &mut Map<String, Value>) {
        match self {
            Target::Room(room) => frame.insert("room".into(), Value::from(room.as_str())),
            Target::With(with) => frame.insert("with".into(), Value::from(with.as_str())),
        };
    }

    /// The target named by a frame's `room` or `with` field.
    fn from_fields(room: Option<String>, with: Option<String>) -> Option<Target> {
        match (room, with) {
            (Some(room), _) => Some(Target::Room(room)),
            (None, Some(with)) => Some(Target::With(with)),
            (None, None) => None,
        }
    }
}

/// Where a history page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cursor {
    /// The newest messages.
    #[default]
    Latest,
    /// The messages just older than this id.
    Before(u64),
    /// The messages just newer than this id.
    After(u64),
}

/// The server's reply to `history`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryPage {
    /// Oldest first.
    pub messages: Vec<Message>,
    /// More messages exist in the direction asked (older ones for
    /// [`Cursor::Before`] and [`Cursor::Latest`], newer ones for
    /// [`Cursor::After`]).
    pub more: bool,
}

#[derive(Deserialize)]
struct HistoryReply {
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    more: bool,
}

impl HistoryPage {
    /// Decodes a `history` reply.
    pub fn from_frame(frame: &Received) -> Result<HistoryPage, RequestError> {
        expect_kind(frame, "history")?;
        let reply: HistoryReply = decode(frame)?;
        Ok(HistoryPage {
            messages: reply.messages,
            more: reply.more,
        })
    }
}

/// One conversation in the reply to `unread`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadEntry {
    pub target: Target,
    /// The newest message of the conversation (`None`: nothing stored).
    pub last_msg_id: Option<u64>,
    /// The account's read marker (`None`: nothing read).
    pub read_msg_id: Option<u64>,
    /// Messages from others after the marker (counted up to 1000).
    pub unread: u64,
}

#[derive(Deserialize)]
struct RawUnread {
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    with: Option<String>,
    #[serde(default)]
    last_msg_id: Option<u64>,
    #[serde(default)]
    read_msg_id: Option<u64>,
    #[serde(default)]
    unread: u64,
}

#[derive(Deserialize)]
struct UnreadReply {
    #[serde(default)]
    conversations: Vec<RawUnread>,
}

impl UnreadEntry {
    /// Decodes an `unread` frame (the reply to `unread`, or the one the
    /// server sends after logging in and resuming).
    pub fn list_from_frame(frame: &Received) -> Result<Vec<UnreadEntry>, RequestError> {
        expect_kind(frame, "unread")?;
        let reply: UnreadReply = decode(frame)?;
        reply
            .conversations
            .into_iter()
            .map(|raw| {
                let target = Target::from_fields(raw.room, raw.with).ok_or_else(|| {
                    RequestError::Protocol("an unread entry names neither room nor with".into())
                })?;
                // 0 stands for none.
                Ok(UnreadEntry {
                    target,
                    last_msg_id: raw.last_msg_id.filter(|&id| id != 0),
                    read_msg_id: raw.read_msg_id.filter(|&id| id != 0),
                    unread: raw.unread,
                })
            })
            .collect()
    }
}

/// The messages of a `missed` frame (sent while resuming), oldest first;
/// `None` for any other frame.
pub fn missed_messages(frame: &Received) -> Option<Vec<Message>> {
    if frame.kind() != "missed" {
        return None;
    }
    #[derive(Deserialize)]
    struct Missed {
        #[serde(default)]
        messages: Vec<Message>,
    }
    decode::<Missed>(frame).ok().map(|m| m.messages)
}

/// The `resumed` frame that ends a resume's catch-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ResumedSummary {
    /// How many missed messages were sent.
    #[serde(default)]
    pub missed: u64,
    /// More were missed than the server sends on resuming; read the rest
    /// with `history` ([`Cursor::After`] `last_msg_id`).
    #[serde(default)]
    pub more: bool,
    /// The newest id sent (or the client's own).
    #[serde(default)]
    pub last_msg_id: Option<u64>,
}

impl ResumedSummary {
    /// Decodes a `resumed` frame.
    pub fn from_frame(frame: &Received) -> Result<ResumedSummary, RequestError> {
        expect_kind(frame, "resumed")?;
        decode(frame)
    }
}

/// A `history` request.
pub fn history_frame(target: &Target, cursor: Cursor, limit: Option<u32>) -> Value {
    let mut frame = Map::new();
    frame.insert("type".into(), json!("history"));
    target.put(&mut frame);
    match cursor {
        Cursor::Latest => {}
        Cursor::Before(id) => {
            frame.insert("before".into(), json!(id));
        }
        Cursor::After(id) => {
            frame.insert("after".into(), json!(id));
        }
    }
    if let Some(limit) = limit {
        frame.insert("limit".into(), json!(limit));
    }
    Value::Object(frame)
}

/// A `read` request: the newest message shown in a conversation.
pub fn read_frame(target: &Target, msg_id: u64) -> Value {
    let mut frame = Map::new();
    frame.insert("type".into(), json!("read"));
    target.put(&mut frame);
    frame.insert("msg_id".into(), json!(msg_id));
    Value::Object(frame)
}

/// A page of a conversation's history (`limit`: 1 to 200, the server's
/// default 50 when `None`).
pub async fn history(
    client: &mut Client,
    target: &Target,
    cursor: Cursor,
    limit: Option<u32>,
) -> Result<HistoryPage, RequestError> {
    let reply = client
        .request_json(&history_frame(target, cursor, limit))
        .await?;
    HistoryPage::from_frame(&reply)
}

/// Moves the account's read marker in a conversation forward to `msg_id`.
pub async fn read(client: &mut Client, target: &Target, msg_id: u64) -> Result<(), RequestError> {
    let reply = client.request_json(&read_frame(target, msg_id)).await?;
    match reply {
        Received::Core(ServerFrame::Ok { .. }) => Ok(()),
        other => Err(refused(other)),
    }
}

/// The account's conversations with their unread counts.
pub async fn unread(client: &mut Client) -> Result<Vec<UnreadEntry>, RequestError> {
    let reply = client.request_json(&json!({ "type": "unread" })).await?;
    UnreadEntry::list_from_frame(&reply)
}

/// A frame as a JSON object, whichever way it was parsed (core frames are
/// serialised back; plugin frames already are objects).
pub(crate) fn fields(frame: &Received) -> Map<String, Value> {
    match frame {
        Received::Custom { fields, .. } => fields.clone(),
        Received::Core(core) => match serde_json::to_value(core) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
    }
}

/// The request id a frame answers, core or plugin frame alike.
pub(crate) fn id_of(frame: &Received) -> Option<u64> {
    frame
        .reply_to()
        .or_else(|| fields(frame).get("id").and_then(Value::as_u64))
}

/// Decodes any frame (core or plugin) into `T`.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(frame: &Received) -> Result<T, RequestError> {
    serde_json::from_value(Value::Object(fields(frame)))
        .map_err(|e| RequestError::Protocol(format!("bad '{}' frame: {e}", frame.kind())))
}

/// An `error` reply becomes [`RequestError::Refused`]; another kind than
/// `kind` a protocol error.
pub(crate) fn expect_kind(frame: &Received, kind: &str) -> Result<(), RequestError> {
    if frame.kind() == kind {
        Ok(())
    } else {
        Err(refused(frame.clone()))
    }
}

pub(crate) fn refused(frame: Received) -> RequestError {
    match frame {
        Received::Core(ServerFrame::Error { code, message, .. }) => {
            RequestError::Refused { code, message }
        }
        other => RequestError::Protocol(format!("unexpected '{}' frame", other.kind())),
    }
}

/// Reads the frames answering request `id` until `done` says the last one
/// arrived; frames for others go to the backlog, in order.
pub(crate) async fn collect_replies(
    client: &mut Client,
    id: u64,
    mut on_frame: impl FnMut(Received) -> Result<bool, RequestError>,
    mut unasked: impl FnMut(&Received) -> bool,
) -> Result<(), RequestError> {
    loop {
        let frame = client.reader.next().await?.ok_or(ClientError::Closed)?;
        if id_of(&frame) == Some(id) || unasked(&frame) {
            if on_frame(frame)? {
                return Ok(());
            }
        } else {
            client.backlog.push_back(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Received {
        Received::parse(line.as_bytes()).unwrap()
    }

    #[test]
    fn requests_name_the_target_and_cursor() {
        assert_eq!(
            history_frame(&Target::Room("#rust".into()), Cursor::Before(40), Some(3)),
            json!({"type":"history","room":"#rust","before":40,"limit":3})
        );
        assert_eq!(
            history_frame(&Target::With("bob".into()), Cursor::After(17), None),
            json!({"type":"history","with":"bob","after":17})
        );
        assert_eq!(
            history_frame(&Target::Room("#a".into()), Cursor::Latest, None),
            json!({"type":"history","room":"#a"})
        );
        assert_eq!(
            read_frame(&Target::Room("#rust".into()), 44),
            json!({"type":"read","room":"#rust","msg_id":44})
        );
    }

    #[test]
    fn replies_decode() {
        let page = HistoryPage::from_frame(&parse(
            r##"{"type":"history","id":9,"room":"#rust","more":true,"messages":[{"msg_id":40,"ts":1,"kind":"room","from":"bob","room":"#rust","text":"a"},{"msg_id":41,"ts":2,"kind":"room","from":"alice","room":"#rust","text":"b"}]}"##,
        ))
        .unwrap();
        assert!(page.more);
        assert_eq!(
            page.messages.iter().map(|m| m.msg_id).collect::<Vec<_>>(),
            [40, 41]
        );

        let unread = UnreadEntry::list_from_frame(&parse(
            r##"{"type":"unread","id":13,"conversations":[{"room":"#rust","last_msg_id":44,"read_msg_id":44,"unread":0},{"with":"bob","last_msg_id":52,"read_msg_id":17,"unread":2}]}"##,
        ))
        .unwrap();
        assert_eq!(unread[1].target, Target::With("bob".into()));
        assert_eq!(unread[1].unread, 2);

        let missed = missed_messages(&parse(
            r##"{"type":"missed","messages":[{"msg_id":53,"ts":1,"kind":"direct","from":"bob","to":"alice","text":"hi"}]}"##,
        ))
        .unwrap();
        assert_eq!(missed[0].msg_id, 53);
        assert!(missed_messages(&parse(r#"{"type":"pong"}"#)).is_none());

        let summary = ResumedSummary::from_frame(&parse(
            r#"{"type":"resumed","id":1,"missed":2,"more":false,"last_msg_id":55}"#,
        ))
        .unwrap();
        assert_eq!(summary.last_msg_id, Some(55));
        assert_eq!(
            id_of(&parse(
                r#"{"type":"resumed","id":1,"missed":0,"more":false,"last_msg_id":5}"#
            )),
            Some(1)
        );
    }

    #[test]
    fn an_error_reply_is_a_refusal() {
        let err = HistoryPage::from_frame(&parse(
            r##"{"type":"error","id":3,"code":"not_in_room","message":"you are not in #x"}"##,
        ))
        .unwrap_err();
        assert_eq!(err.code(), Some("not_in_room"));
    }
}
