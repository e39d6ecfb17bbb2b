//! Connections to a test server and the waits tests need, each bounded by
//! [`WAIT`]: a reply, a frame of a kind, a message, the end of the
//! connection. The client's futures are boxed: a test awaiting many of
//! them in one `async fn` would otherwise carry them all on its (2 MiB)
//! thread's stack.

use chat_api::{ClientFrame, ServerFrame};
use chat_client::{Client, Received};
use serde_json::{json, Value};

use crate::WAIT;

/// A connection that took the nickname `nick`.
pub async fn client(addr: &str, nick: &str) -> Client {
    tokio::time::timeout(WAIT, Box::pin(Client::connect_as(addr, nick)))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// A connection that has said `hello` but chosen no nickname yet.
pub async fn anonymous(addr: &str) -> Client {
    tokio::time::timeout(
        WAIT,
        Box::pin(Client::connect(
            addr,
            &chat_client::ConnectOptions::default(),
        )),
    )
    .await
    .expect("connect in time")
    .expect("connect")
}

/// The resume token of a `logged_in` reply; fails the test on anything else.
pub fn resume_token(reply: &Received) -> String {
    match reply {
        Received::Custom { kind, fields } if kind == "logged_in" => fields["resume_token"]
            .as_str()
            .expect("logged_in carries a resume token")
            .to_string(),
        other => panic!("expected logged_in, got {other:?}"),
    }
}

/// Asks for `users [room]` until the answer is `expected`, bounded by
/// [`WAIT`]: for lists no frame announces (on a cluster, another node's
/// users appear a moment after they arrive there).
pub async fn await_users(client: &mut Client, room: Option<&str>, expected: &[&str]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let room_name = room.map(String::from);
        let reply = request(client, ClientFrame::Users { room: room_name }).await;
        let users = match &reply {
            Received::Core(ServerFrame::Users { users, .. }) => users.clone(),
            _ => Vec::new(),
        };
        if users == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "users {room:?} stayed {users:?}, expected {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Joins `room`; returns its members.
pub async fn join(client: &mut Client, room: &str) -> Vec<String> {
    match client
        .request_ok(&ClientFrame::Join { room: room.into() })
        .await
        .unwrap()
    {
        Received::Core(ServerFrame::Joined { members, .. }) => members,
        other => panic!("expected joined, got {other:?}"),
    }
}

/// Sends a request and returns the reply, failing the test after [`WAIT`].
pub async fn request(client: &mut Client, frame: ClientFrame) -> Received {
    tokio::time::timeout(WAIT, Box::pin(client.request(&frame)))
        .await
        .expect("reply in time")
        .expect("reply")
}

/// Sends a JSON request (a plugin's frame) and returns the reply, failing
/// the test after [`WAIT`].
pub async fn request_json(client: &mut Client, frame: Value) -> Received {
    tokio::time::timeout(WAIT, Box::pin(client.request_json(&frame)))
        .await
        .expect("reply in time")
        .expect("reply")
}

/// Sends `register` (or `login`) for `user` with `password`; returns the
/// reply.
pub async fn account_request(
    client: &mut Client,
    kind: &str,
    user: &str,
    password: &str,
) -> Received {
    request_json(
        client,
        json!({"type": kind, "user": user, "password": password}),
    )
    .await
}

/// The error code of an `error` reply; fails the test on anything else.
pub fn error_code(frame: &Received) -> String {
    match frame {
        Received::Core(ServerFrame::Error { code, .. }) => code.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The error code of a reply, if it is an error.
pub fn code_of(frame: &Received) -> Option<&str> {
    match frame {
        Received::Core(ServerFrame::Error { code, .. }) => Some(code.as_str()),
        _ => None,
    }
}

/// Waits for a frame of type `kind`; others are kept for later.
pub async fn expect_kind(client: &mut Client, kind: &str) -> Received {
    client
        .expect(WAIT, |f| f.kind() == kind)
        .await
        .unwrap_or_else(|e| panic!("waiting for {kind}: {e}"))
}

/// Waits for a chat message with this text.
pub async fn expect_text(client: &mut Client, text: &str) -> chat_api::Message {
    let text = text.to_string();
    match client
        .expect(
            WAIT,
            |f| matches!(f, Received::Core(ServerFrame::Message(m)) if m.text == text),
        )
        .await
        .unwrap_or_else(|e| panic!("waiting for message {text:?}: {e}"))
    {
        Received::Core(ServerFrame::Message(m)) => m,
        _ => unreachable!(),
    }
}

/// Waits until `observer` sees `nick` quit (so the nickname is free).
pub async fn expect_quit(observer: &mut Client, nick: &str) {
    let nick = nick.to_string();
    observer
        .expect(WAIT, |f| {
            matches!(f, Received::Core(ServerFrame::Presence(p))
                if p.nick == nick && p.event == chat_api::PresenceEvent::Quit)
        })
        .await
        .unwrap_or_else(|e| panic!("waiting for {nick} to quit: {e}"));
}

/// Chat texts among frames.
pub fn texts(frames: &[Received]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| match f {
            Received::Core(ServerFrame::Message(m)) => Some(m.text.clone()),
            _ => None,
        })
        .collect()
}

/// Waits until the connection ends; returns the frames seen before.
pub async fn read_to_end(client: &mut Client) -> Vec<Received> {
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, client.recv()).await {
            Err(_) => panic!("connection did not end; got {frames:?}"),
            Ok(Ok(Some(f))) => frames.push(f),
            Ok(Ok(None)) | Ok(Err(_)) => return frames,
        }
    }
}

/// The `bye` among frames, as (code, reason).
pub fn bye(frames: &[Received]) -> Option<(String, String)> {
    frames.iter().find_map(|f| match f {
        Received::Core(ServerFrame::Bye { code, reason }) => {
            Some((code.to_string(), reason.clone()))
        }
        _ => None,
    })
}

/// Polls a condition of the server's state until it holds (bounded by
/// [`WAIT`]); for state no client is told about, such as a released slot.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
