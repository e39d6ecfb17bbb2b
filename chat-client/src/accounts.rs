//! Accounts (the server's `auth` plugin): register, log in, and resume a
//! login on a new connection with the resume token instead of the password
//! (see [`crate::history`] for what resuming brings back).

use chat_api::Message;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::history::{self, decode, refused, ResumedSummary};
use crate::{Client, Received, RequestError};

/// The server's `logged_in`: who we are now.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LoggedIn {
    /// The account, in its registered spelling.
    pub user: String,
    /// The nickname (the account name).
    #[serde(default)]
    pub nick: String,
    #[serde(default)]
    pub admin: bool,
    /// Sent back with [`resume`] on a new connection instead of the
    /// password; absent when the server keeps no history.
    #[serde(default)]
    pub resume_token: Option<String>,
    /// When the token expires (ms since the epoch) unless used again.
    #[serde(default)]
    pub token_expires: Option<u64>,
    /// Whether this login came from `resume`.
    #[serde(default)]
    pub resumed: bool,
}

impl LoggedIn {
    /// Decodes a `logged_in` frame.
    pub fn from_frame(frame: &Received) -> Result<LoggedIn, RequestError> {
        history::expect_kind(frame, "logged_in")?;
        decode(frame)
    }
}

/// What [`resume`] brings back.
#[derive(Debug, Clone, PartialEq)]
pub struct Resumed {
    /// The account, with a (possibly new) token.
    pub account: LoggedIn,
    /// Every message missed after the `last_msg_id` given, oldest first.
    pub missed: Vec<Message>,
    /// More were missed than the server sends on resuming (1000 by
    /// default): the oldest were sent. Read the rest of each conversation
    /// with [`history::history`] and [`history::Cursor::After`] its newest
    /// message in `missed` (or the `last_msg_id` given, when `missed` has
    /// none of it). Not after `last_msg_id` below: offline direct messages
    /// are sent beyond the limit and may be newer than messages of other
    /// conversations that were not sent.
    pub more: bool,
    /// The newest message id sent (or the one given).
    pub last_msg_id: Option<u64>,
}

/// A `resume` request (`token` absent: the one the transport carries, the
/// browser's cookie).
pub fn resume_frame(token: Option<&str>, last_msg_id: Option<u64>) -> Value {
    let mut frame = json!({ "type": "resume" });
    if let Some(token) = token {
        frame["token"] = json!(token);
    }
    if let Some(last) = last_msg_id {
        frame["last_msg_id"] = json!(last);
    }
    frame
}

/// Logs in with a password.
pub async fn login(
    client: &mut Client,
    user: &str,
    password: &str,
) -> Result<LoggedIn, RequestError> {
    let reply = client
        .request_json(&json!({ "type": "login", "user": user, "password": password }))
        .await?;
    LoggedIn::from_frame(&reply)
}

/// Creates an account and logs in to it.
pub async fn register(
    client: &mut Client,
    user: &str,
    password: &str,
) -> Result<LoggedIn, RequestError> {
    let reply = client
        .request_json(&json!({ "type": "register", "user": user, "password": password }))
        .await?;
    LoggedIn::from_frame(&reply)
}

/// Logs out (the token of this login is revoked); the connection stays.
pub async fn logout(client: &mut Client) -> Result<(), RequestError> {
    match client.request_json(&json!({ "type": "logout" })).await? {
        Received::Core(chat_api::ServerFrame::Ok { .. }) => Ok(()),
        other => Err(refused(other)),
    }
}

/// Logs in again with a resume token on a new connection, and collects the
/// messages missed since `last_msg_id` (the newest id the client has).
///
/// Returns once the server's `resumed` ends the catch-up (at `logged_in`
/// on a server without history, which sends nothing more). The `joined`
/// frames of the account's rooms, the `unread` summary and live messages
/// are kept, in order, for [`Client::recv`]. An unknown, expired or revoked
/// token is [`RequestError::Refused`] with code `invalid_token`: log in with
/// the password then.
pub async fn resume(
    client: &mut Client,
    token: &str,
    last_msg_id: Option<u64>,
) -> Result<Resumed, RequestError> {
    let id = client.next_id();
    client
        .writer
        .send_json(Some(id), &resume_frame(Some(token), last_msg_id))
        .await?;
    // Without history nothing follows `logged_in`.
    let catch_up = client.welcome.features.iter().any(|f| f == "history");
    let mut account: Option<LoggedIn> = None;
    let mut missed: Vec<Message> = Vec::new();
    let mut summary: Option<ResumedSummary> = None;
    history::collect_replies(
        client,
        id,
        |frame| {
            if let Some(messages) = history::missed_messages(&frame) {
                missed.extend(messages);
                return Ok(false);
            }
            match frame.kind() {
                "logged_in" => {
                    account = Some(LoggedIn::from_frame(&frame)?);
                    Ok(!catch_up)
                }
                "resumed" => {
                    summary = Some(ResumedSummary::from_frame(&frame)?);
                    Ok(true)
                }
                _ => Err(refused(frame)),
            }
        },
        |frame| frame.kind() == "missed",
    )
    .await?;
    let account = account.ok_or_else(|| {
        RequestError::Protocol("'resumed' arrived before 'logged_in'".to_string())
    })?;
    let (more, last) = summary.map_or((false, last_msg_id), |s| (s.more, s.last_msg_id));
    Ok(Resumed {
        account,
        missed,
        more,
        last_msg_id: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_frames() {
        assert_eq!(
            resume_frame(Some("tok"), Some(52)),
            json!({"type":"resume","token":"tok","last_msg_id":52})
        );
        assert_eq!(resume_frame(None, None), json!({"type":"resume"}));
    }

    #[test]
    fn logged_in_with_and_without_a_token() {
        let with = LoggedIn::from_frame(
            &Received::parse(
                br#"{"type":"logged_in","id":1,"user":"alice","nick":"alice","admin":false,"resume_token":"4nM0","token_expires":1766915100123,"resumed":true}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(with.resume_token.as_deref(), Some("4nM0"));
        assert!(with.resumed);
        let without = LoggedIn::from_frame(
            &Received::parse(
                br#"{"type":"logged_in","id":2,"user":"bob","nick":"bob","admin":true}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(without.resume_token, None);
        assert!(without.admin && !without.resumed);
    }
}
