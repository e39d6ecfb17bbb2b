//! The history, resume and read-marker API against a real in-process chatd
//! (accounts plugin, its SQLite file in a tempdir, 127.0.0.1 port 0).

use std::time::Duration;

use chat_client::accounts::{self, LoggedIn};
use chat_client::history::{self, Cursor, Target};
use chat_client::{Client, ConnectOptions, Received};
use chat_protocol::{ClientFrame, PresenceEvent, ServerFrame};

/// How long any single expected event may take.
const WAIT: Duration = Duration::from_secs(15);
const PASSWORD: &str = "correct horse battery";

struct Server {
    server: chatd::RunningServer,
    addr: String,
    _dir: tempfile::TempDir,
}

async fn start_server() -> Server {
    start_server_with("").await
}

/// A server with the accounts plugin and `extra` TOML.
async fn start_server_with(extra: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[[plugin]]\nname = \"auth\"\n{extra}",
        dir.path().join("data")
    );
    let config = chatd::Config::parse(&text, "test", None).expect("test config is valid");
    let server = chatd::start(config).await.expect("server starts");
    let addr = server.tcp_addr.expect("plaintext listener").to_string();
    Server {
        server,
        addr,
        _dir: dir,
    }
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
}

async fn connect(addr: &str) -> Client {
    within(
        "connection",
        Client::connect(addr, &ConnectOptions::default()),
    )
    .await
    .expect("connects")
}

/// A new account, logged in on a fresh connection.
async fn registered(addr: &str, user: &str) -> (Client, LoggedIn) {
    let mut client = connect(addr).await;
    let account = within("logged_in", accounts::register(&mut client, user, PASSWORD))
        .await
        .expect("registers");
    (client, account)
}

async fn join(client: &mut Client, room: &str) {
    within(
        "joined",
        client.request_ok(&ClientFrame::Join { room: room.into() }),
    )
    .await
    .expect("joins");
}

/// Sends to a room and returns the message id from `sent`.
async fn say(client: &mut Client, room: &str, text: &str) -> u64 {
    let reply = within(
        "sent",
        client.request_ok(&ClientFrame::Say {
            room: room.into(),
            text: text.into(),
        }),
    )
    .await
    .expect("sends");
    match reply {
        Received::Core(ServerFrame::Sent { msg_id, .. }) => msg_id,
        other => panic!("expected sent, got {other:?}"),
    }
}

/// Waits until `client` sees `nick` leave `room` (its connection is gone).
async fn wait_quit(client: &mut Client, room: &str, nick: &str) {
    client
        .expect(WAIT, |f| {
            matches!(f, Received::Core(ServerFrame::Presence(p))
                if p.event == PresenceEvent::Quit && p.room == room && p.nick == nick)
        })
        .await
        .unwrap_or_else(|e| panic!("{nick} never left {room}: {e}"));
}

fn texts(messages: &[chat_protocol::Message]) -> Vec<&str> {
    messages.iter().map(|m| m.text.as_str()).collect()
}

#[tokio::test]
async fn resume_brings_back_exactly_the_missed_messages_in_order() {
    let srv = start_server().await;
    let (mut alice, account) = registered(&srv.addr, "alice").await;
    let token = account
        .resume_token
        .clone()
        .expect("logged_in carries a token");
    assert_eq!(token.len(), 43, "a 256-bit token in base64url: {token}");
    assert!(account.token_expires.unwrap_or(0) > 0);
    assert!(!account.resumed);
    let (mut bob, _) = registered(&srv.addr, "bob").await;
    join(&mut alice, "#team").await;
    join(&mut bob, "#team").await;
    let seen = say(&mut bob, "#team", "before the cut").await;
    let got = within(
        "bob's message",
        alice.expect(WAIT, |f| {
            matches!(f, Received::Core(ServerFrame::Message(_)))
        }),
    )
    .await
    .unwrap();
    let Received::Core(ServerFrame::Message(m)) = got else {
        unreachable!()
    };
    assert_eq!(m.msg_id, seen);

    // Alice's connection drops; bob talks meanwhile, in the room and to her.
    drop(alice);
    wait_quit(&mut bob, "#team", "alice").await;
    for text in ["one", "two", "three"] {
        say(&mut bob, "#team", text).await;
    }
    let reply = within(
        "sent",
        bob.request_ok(&ClientFrame::Msg {
            to: "alice".into(),
            text: "call me".into(),
        }),
    )
    .await
    .expect("an offline direct message to an account is stored");
    let Received::Core(ServerFrame::Sent {
        recipients, stored, ..
    }) = reply
    else {
        panic!("expected sent, got {reply:?}")
    };
    assert_eq!((recipients, stored), (0, true));

    let mut alice = connect(&srv.addr).await;
    let resumed = within("resumed", accounts::resume(&mut alice, &token, Some(seen)))
        .await
        .expect("resumes");
    assert!(resumed.account.resumed);
    assert_eq!(resumed.account.user, "alice");
    assert_eq!(texts(&resumed.missed), ["one", "two", "three", "call me"]);
    assert!(resumed.missed.windows(2).all(|w| w[0].msg_id < w[1].msg_id));
    assert!(!resumed.more);
    assert_eq!(resumed.last_msg_id, resumed.missed.last().map(|m| m.msg_id));
    // The account's room was joined again; nothing was delivered twice.
    let after = within("sync", alice.sync()).await.unwrap();
    assert!(
        after.iter().any(
            |f| matches!(f, Received::Core(ServerFrame::Joined { room, .. }) if room == "#team")
        ),
        "{after:?}"
    );
    assert!(
        !after
            .iter()
            .any(|f| matches!(f, Received::Core(ServerFrame::Message(_)))),
        "missed messages come only in missed frames: {after:?}"
    );

    // A made-up token is refused; the password still works.
    let mut other = connect(&srv.addr).await;
    let err = within(
        "refusal",
        accounts::resume(&mut other, &"A".repeat(43), Some(seen)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some("invalid_token"), "{err}");
    srv.server.stop().await;
}

#[tokio::test]
async fn history_pages_backwards_and_read_markers_count_unread() {
    let srv = start_server().await;
    let (mut alice, _) = registered(&srv.addr, "alice").await;
    let (mut bob, _) = registered(&srv.addr, "bob").await;
    join(&mut alice, "#team").await;
    join(&mut bob, "#team").await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(say(&mut bob, "#team", &format!("m{n}")).await);
    }
    let room = Target::Room("#team".into());

    let newest = within(
        "history",
        history::history(&mut alice, &room, Cursor::Latest, Some(2)),
    )
    .await
    .unwrap();
    assert_eq!(texts(&newest.messages), ["m4", "m5"]);
    assert!(newest.more);
    let older = within(
        "history",
        history::history(&mut alice, &room, Cursor::Before(ids[3]), Some(2)),
    )
    .await
    .unwrap();
    assert_eq!(texts(&older.messages), ["m2", "m3"]);
    assert!(older.more);
    let oldest = within(
        "history",
        history::history(&mut alice, &room, Cursor::Before(ids[1]), Some(2)),
    )
    .await
    .unwrap();
    assert_eq!(texts(&oldest.messages), ["m1"]);
    assert!(!oldest.more);
    let newer = within(
        "history",
        history::history(&mut alice, &room, Cursor::After(ids[2]), None),
    )
    .await
    .unwrap();
    assert_eq!(texts(&newer.messages), ["m4", "m5"]);
    assert!(!newer.more);

    // A direct conversation, and a room one is not in.
    within(
        "sent",
        bob.request_ok(&ClientFrame::Msg {
            to: "alice".into(),
            text: "psst".into(),
        }),
    )
    .await
    .unwrap();
    let direct = within(
        "history",
        history::history(
            &mut alice,
            &Target::With("bob".into()),
            Cursor::Latest,
            None,
        ),
    )
    .await
    .unwrap();
    assert_eq!(texts(&direct.messages), ["psst"]);
    let err = within(
        "refusal",
        history::history(
            &mut alice,
            &Target::Room("#elsewhere".into()),
            Cursor::Latest,
            None,
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some("not_in_room"), "{err}");

    // Read markers: alice read up to m3 in the room.
    within("ok", history::read(&mut alice, &room, ids[2]))
        .await
        .unwrap();
    let unread = within("unread", history::unread(&mut alice)).await.unwrap();
    let team = unread
        .iter()
        .find(|e| e.target == room)
        .unwrap_or_else(|| panic!("#team is listed: {unread:?}"));
    assert_eq!(team.read_msg_id, Some(ids[2]));
    assert_eq!(team.last_msg_id, Some(ids[4]));
    assert_eq!(team.unread, 2);
    let with_bob = unread
        .iter()
        .find(|e| e.target == Target::With("bob".into()))
        .unwrap_or_else(|| panic!("the conversation with bob is listed: {unread:?}"));
    assert_eq!(with_bob.unread, 1);
    srv.server.stop().await;
}

#[tokio::test]
async fn a_resume_past_its_limit_says_more_and_history_after_has_the_rest() {
    let srv = start_server_with("[history]\nresume_max = 3\n").await;
    let (mut alice, account) = registered(&srv.addr, "alice").await;
    let token = account.resume_token.unwrap();
    let (mut bob, _) = registered(&srv.addr, "bob").await;
    join(&mut alice, "#team").await;
    join(&mut bob, "#team").await;
    let seen = say(&mut bob, "#team", "seen").await;
    drop(alice);
    wait_quit(&mut bob, "#team", "alice").await;
    for n in 1..=5 {
        say(&mut bob, "#team", &format!("r{n}")).await;
    }
    let mut alice = connect(&srv.addr).await;
    let resumed = within("resumed", accounts::resume(&mut alice, &token, Some(seen)))
        .await
        .unwrap();
    assert_eq!(texts(&resumed.missed), ["r1", "r2", "r3"]);
    assert!(resumed.more);
    let last = resumed.last_msg_id.unwrap();
    let rest = within(
        "history",
        history::history(
            &mut alice,
            &Target::Room("#team".into()),
            Cursor::After(last),
            None,
        ),
    )
    .await
    .unwrap();
    assert_eq!(texts(&rest.messages), ["r4", "r5"]);
    assert!(!rest.more);

    // Without last_msg_id, a resume brings nothing back but logs in.
    drop(alice);
    wait_quit(&mut bob, "#team", "alice").await;
    let mut alice = connect(&srv.addr).await;
    let resumed = within("resumed", accounts::resume(&mut alice, &token, None))
        .await
        .unwrap();
    assert!(resumed.missed.is_empty() && !resumed.more);
    assert_eq!(resumed.account.user, "alice");
    srv.server.stop().await;
}

#[tokio::test]
async fn without_history_resume_is_a_login() {
    let srv = start_server_with("[history]\nenabled = false\n").await;
    let (alice, account) = registered(&srv.addr, "alice").await;
    let token = account.resume_token.expect("tokens come with accounts");
    drop(alice);
    let mut alice = connect(&srv.addr).await;
    assert!(!alice.welcome.features.iter().any(|f| f == "history"));
    let resumed = within("logged_in", accounts::resume(&mut alice, &token, Some(7)))
        .await
        .unwrap();
    assert_eq!(resumed.account.user, "alice");
    assert!(resumed.missed.is_empty() && !resumed.more);
    assert_eq!(resumed.last_msg_id, Some(7));
    let err = within(
        "refusal",
        history::history(&mut alice, &Target::Room("#a".into()), Cursor::Latest, None),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some("feature_disabled"));
    srv.server.stop().await;
}
