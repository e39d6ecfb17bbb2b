//! Accounts (the server's `auth` plugin): register, log in, and resume a
//! login on a new connection with the resume token instead of the password
//! (see [`crate::history`] for what resuming brings back).

use chat_protocol::accounts::AccountRequest;
use chat_protocol::Message;
use serde_json::Value;

use crate::history::{self, refused, ResumedSummary};
use crate::{Client, Received, RequestError};

/// The server's `logged_in`: who we are now (decode one with
/// [`LoggedIn::from_frame`]).
pub use chat_protocol::accounts::LoggedIn;

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
    let request = AccountRequest::Resume {
        token: token.map(str::to_string),
        last_msg_id,
    };
    serde_json::to_value(request).expect("a request encodes as JSON")
}

/// Decodes a `logged_in` frame; anything else is refused.
fn logged_in(frame: &Received) -> Result<LoggedIn, RequestError> {
    history::expect_kind(frame, "logged_in")?;
    LoggedIn::from_frame(frame).map_err(|e| RequestError::Protocol(e.message))
}

/// Logs in with a password.
pub async fn login(
    client: &mut Client,
    user: &str,
    password: &str,
) -> Result<LoggedIn, RequestError> {
    let reply = client
        .request_json(&AccountRequest::Login {
            user: user.to_string(),
            password: password.to_string(),
        })
        .await?;
    logged_in(&reply)
}

/// Creates an account and logs in to it.
pub async fn register(
    client: &mut Client,
    user: &str,
    password: &str,
) -> Result<LoggedIn, RequestError> {
    let reply = client
        .request_json(&AccountRequest::Register {
            user: user.to_string(),
            password: password.to_string(),
        })
        .await?;
    logged_in(&reply)
}

/// Logs out (the token of this login is revoked); the connection stays.
pub async fn logout(client: &mut Client) -> Result<(), RequestError> {
    let logout = AccountRequest::Logout { everywhere: false };
    match client.request_json(&logout).await? {
        Received::Core(chat_protocol::ServerFrame::Ok { .. }) => Ok(()),
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
                    account = Some(logged_in(&frame)?);
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
    use serde_json::json;

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
        let with = logged_in(
            &Received::parse(
                br#"{"type":"logged_in","id":1,"user":"alice","nick":"alice","admin":false,"resume_token":"4nM0","token_expires":1766915100123,"resumed":true}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(with.resume_token.as_deref(), Some("4nM0"));
        assert!(with.resumed);
        let without = logged_in(
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
