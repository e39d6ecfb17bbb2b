//! History end to end: a real server on 127.0.0.1:0 with a real SQLite file
//! in a temporary directory, real clients, and the real `chatd` binary where
//! a process must be killed or the operator's CLI is used.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use chat_api::{ClientFrame, Message, ServerFrame, UnreadEntry};
use chat_client::{Client, ConnectOptions, Received};
use chatd::{Config, RunningServer};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

const AUTH: &str = "[[plugin]]\nname = \"auth\"\n[plugin.config]\nwatch_interval_ms = 50\nallow_guests = true\n[plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n";
const ROOMS: &str = "[[plugin]]\nname = \"rooms\"\n";

/// A data directory and a configuration file for it.
struct Setup {
    /// Holds the data directory until the test ends.
    _dir: tempfile::TempDir,
    config_path: PathBuf,
}

impl Setup {
    /// `server` goes before the plugins (tables such as `[history]`),
    /// `plugins` are `[[plugin]]` entries.
    fn new(server: &str, plugins: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("chatd.toml");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[limits]\nframes_per_second = 0\n{server}\n{plugins}"
        );
        std::fs::write(&config_path, text).unwrap();
        Setup {
            _dir: dir,
            config_path,
        }
    }

    fn accounts() -> Setup {
        Setup::new("", AUTH)
    }

    async fn start(&self) -> Server {
        let config = Config::load(&self.config_path).unwrap();
        let server = chatd::start(config).await.expect("server starts");
        let addr = server.tcp_addr.unwrap().to_string();
        Server { server, addr }
    }

    /// Runs `chatd ARGS` on this setup's config.
    fn cli(&self, args: &[&str], stdin: &str) -> (bool, String) {
        chatd_testkit::process::chatd_cli(&self.config_path, args, stdin)
    }
}

struct Server {
    server: RunningServer,
    addr: String,
}

impl Server {
    async fn client(&self) -> Client {
        Client::connect(&self.addr, &ConnectOptions::default())
            .await
            .unwrap()
    }

    async fn guest(&self, nick: &str) -> Client {
        Client::connect_as(&self.addr, nick).await.unwrap()
    }

    /// Registers `name` and returns the client and its resume token.
    async fn register(&self, name: &str) -> (Client, String) {
        let mut c = self.client().await;
        let reply = c
            .request_json(&json!({"type": "register", "user": name, "password": "a password"}))
            .await
            .unwrap();
        let token = chatd_testkit::resume_token(&reply);
        (c, token)
    }

    async fn login(&self, name: &str) -> (Client, String) {
        let mut c = self.client().await;
        let reply = c
            .request_json(&json!({"type": "login", "user": name, "password": "a password"}))
            .await
            .unwrap();
        let token = chatd_testkit::resume_token(&reply);
        (c, token)
    }

    async fn stop(self) {
        self.server.hub().check_invariants().unwrap();
        self.server.stop().await;
    }
}

fn code(r: &Received) -> Option<&str> {
    match r {
        Received::Core(ServerFrame::Error { code, .. }) => Some(code.as_str()),
        _ => None,
    }
}

async fn join(c: &mut Client, room: &str) {
    let reply = c
        .request(&ClientFrame::Join {
            room: room.to_string(),
        })
        .await
        .unwrap();
    assert!(
        matches!(reply, Received::Core(ServerFrame::Joined { .. })),
        "{reply:?}"
    );
}

/// Sends to a room and returns the id the `sent` reply gives.
async fn say(c: &mut Client, room: &str, text: &str) -> u64 {
    match c
        .request(&ClientFrame::Say {
            room: room.to_string(),
            text: text.to_string(),
        })
        .await
        .unwrap()
    {
        Received::Core(ServerFrame::Sent { msg_id, .. }) => msg_id,
        other => panic!("expected sent, got {other:?}"),
    }
}

async fn msg(c: &mut Client, to: &str, text: &str) -> Received {
    c.request(&ClientFrame::Msg {
        to: to.to_string(),
        text: text.to_string(),
    })
    .await
    .unwrap()
}

/// A `history` request; the page's messages and `more`.
async fn history(c: &mut Client, request: Value) -> Result<(Vec<Message>, bool), String> {
    let mut frame = request;
    frame["type"] = json!("history");
    match c.request_json(&frame).await.unwrap() {
        Received::Core(ServerFrame::History { messages, more, .. }) => Ok((messages, more)),
        Received::Core(ServerFrame::Error { code, .. }) => Err(code.to_string()),
        other => panic!("expected history, got {other:?}"),
    }
}

fn ids(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.msg_id).collect()
}

/// Waits for the next frame matching `pred`.
async fn expect(c: &mut Client, what: &str, pred: impl FnMut(&Received) -> bool) -> Received {
    c.expect(WAIT, pred)
        .await
        .unwrap_or_else(|e| panic!("waiting for {what}: {e}"))
}

/// Resumes on a new connection; returns every frame up to `resumed` and
/// the messages of the `missed` frames.
async fn resume(
    server: &Server,
    token: &str,
    last: Option<u64>,
) -> (Client, Vec<Received>, Vec<Message>) {
    let mut c = server.client().await;
    let mut frame = json!({"type": "resume", "id": 1, "token": token});
    if let Some(last) = last {
        frame["last_msg_id"] = json!(last);
    }
    c.writer
        .send_raw(format!("{frame}\n").as_bytes())
        .await
        .unwrap();
    let mut frames = Vec::new();
    loop {
        let f = c.recv_timeout(WAIT).await.unwrap();
        let done = matches!(&f, Received::Core(ServerFrame::Resumed { .. }))
            || matches!(&f, Received::Core(ServerFrame::Error { .. }));
        frames.push(f);
        if done {
            break;
        }
    }
    let missed = frames
        .iter()
        .filter_map(|f| match f {
            Received::Core(ServerFrame::Missed { messages }) => Some(messages.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    (c, frames, missed)
}

fn unread_of(c: &[Received]) -> Option<Vec<UnreadEntry>> {
    c.iter().find_map(|f| match f {
        Received::Core(ServerFrame::Unread { conversations, .. }) => Some(conversations.clone()),
        _ => None,
    })
}

#[tokio::test]
async fn paging_forwards_and_backwards_over_thousands_of_messages() {
    let setup = Setup::new("", "");
    let server = setup.start().await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    join(&mut alice, "#big").await;
    join(&mut bob, "#big").await;
    // Pipelined: 2,500 sends, then their replies.
    let n = 2500u64;
    for i in 0..n {
        alice
            .writer
            .send(
                Some(1_000_000 + i),
                &ClientFrame::Say {
                    room: "#big".into(),
                    text: format!("m{i}"),
                },
            )
            .await
            .unwrap();
    }
    let mut sent = Vec::new();
    while sent.len() < n as usize {
        if let Received::Core(ServerFrame::Sent { msg_id, .. }) =
            alice.recv_timeout(WAIT).await.unwrap()
        {
            sent.push(msg_id);
        }
    }
    sent.sort_unstable();

    // Backwards from the newest, 200 at a time.
    let mut back = Vec::new();
    let (mut page, mut more) = history(&mut bob, json!({"room": "#big", "limit": 200}))
        .await
        .unwrap();
    loop {
        let mut chunk = ids(&page);
        assert!(chunk.windows(2).all(|w| w[0] < w[1]), "oldest first");
        chunk.extend(back);
        back = chunk;
        if !more {
            break;
        }
        (page, more) = history(
            &mut bob,
            json!({"room": "#big", "limit": 200, "before": back[0]}),
        )
        .await
        .unwrap();
    }
    assert_eq!(back, sent, "backwards: no gap, no duplicate");

    // Forwards from the start, 173 at a time.
    let mut forward = Vec::new();
    let mut after = 0;
    loop {
        let (page, more) = history(
            &mut bob,
            json!({"room": "#big", "limit": 173, "after": after}),
        )
        .await
        .unwrap();
        forward.extend(ids(&page));
        after = *forward.last().unwrap();
        if !more {
            break;
        }
    }
    assert_eq!(forward, sent, "forwards: no gap, no duplicate");
    // Texts as delivered, senders and rooms filled in.
    let (page, _) = history(&mut bob, json!({"room": "#BIG", "after": 0, "limit": 2}))
        .await
        .unwrap();
    assert_eq!(page[0].text, "m0");
    assert_eq!(page[0].from, "alice");
    assert_eq!(page[0].room.as_deref(), Some("#big"));

    // Bad requests are named; a non-member may not read a public room.
    for bad in [
        json!({"room": "#big", "before": 5, "after": 3}),
        json!({"room": "#big", "limit": 201}),
        json!({"room": "#big", "limit": 0}),
        json!({"room": "#big", "with": "bob"}),
        json!({}),
    ] {
        assert_eq!(
            history(&mut bob, bad.clone()).await,
            Err("invalid_frame".into()),
            "{bad}"
        );
    }
    let mut carol = server.guest("carol").await;
    assert_eq!(
        history(&mut carol, json!({"room": "#big"})).await,
        Err("not_in_room".into())
    );
    server.stop().await;
}

/// Alice and bob in `#r`; bob sees one message, then his connection drops.
/// Returns alice, bob's resume token and the id of the message he saw.
async fn bob_steps_away(server: &Server) -> (Client, String, u64) {
    let (mut alice, _) = server.register("alice").await;
    let (mut bob, bob_token) = server.register("bob").await;
    join(&mut alice, "#r").await;
    join(&mut bob, "#r").await;
    let seen = say(&mut alice, "#r", "before the drop").await;
    expect(
        &mut bob,
        "the first message",
        |f| matches!(f, Received::Core(ServerFrame::Message(m)) if m.msg_id == seen),
    )
    .await;
    drop(bob);
    expect(
        &mut alice,
        "bob's quit",
        // Not bob's earlier join, which may still be unread.
        |f| {
            matches!(f, Received::Core(ServerFrame::Presence(p))
            if p.nick == "bob" && p.event == chat_api::PresenceEvent::Quit)
        },
    )
    .await;
    (alice, bob_token, seen)
}

#[tokio::test]
async fn resume_after_a_dropped_connection_delivers_exactly_the_missed_messages() {
    let setup = Setup::accounts();
    let server = setup.start().await;
    // Then alice talks: to the room, and to bob directly.
    let (mut alice, bob_token, seen) = bob_steps_away(&server).await;
    let m2 = say(&mut alice, "#r", "while away 1").await;
    let m3 = say(&mut alice, "#r", "while away 2").await;
    let dm = msg(&mut alice, "bob", "a direct one").await;
    let Received::Core(ServerFrame::Sent {
        msg_id: m4,
        recipients: 0,
        stored: true,
        ..
    }) = dm
    else {
        panic!("a direct message to an offline account is stored: {dm:?}");
    };

    let (mut bob, frames, missed) = resume(&server, &bob_token, Some(seen)).await;
    assert!(
        matches!(&frames[0], Received::Custom { kind, fields } if kind == "logged_in" && fields["resumed"] == json!(true)),
        "{frames:?}"
    );
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Received::Core(ServerFrame::Joined { room, .. }) if room == "#r")),
        "the room is rejoined: {frames:?}"
    );
    assert_eq!(
        ids(&missed),
        [m2, m3, m4],
        "exactly the missed messages, in order"
    );
    let Some(Received::Core(ServerFrame::Resumed {
        missed: 3,
        more: false,
        last_msg_id,
        id: Some(1),
    })) = frames.last()
    else {
        panic!("resumed ends the catch-up: {frames:?}");
    };
    assert_eq!(*last_msg_id, m4);
    // Live traffic follows, once.
    let m5 = say(&mut alice, "#r", "welcome back").await;
    let after = bob.sync().await.unwrap();
    let live: Vec<u64> = after
        .iter()
        .filter_map(|f| match f {
            Received::Core(ServerFrame::Message(m)) => Some(m.msg_id),
            _ => None,
        })
        .collect();
    assert_eq!(live, [m5], "nothing twice: {after:?}");
    let unread = unread_of(&after).expect("unread after resume");
    assert!(
        unread
            .iter()
            .any(|u| u.with.as_deref() == Some("alice") && u.unread == 1),
        "{unread:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn resume_after_a_server_restart_and_ids_keep_increasing() {
    let setup = Setup::accounts();
    let server = setup.start().await;
    let (mut alice, alice_token) = server.register("alice").await;
    let (mut bob, bob_token) = server.register("bob").await;
    join(&mut alice, "#r").await;
    join(&mut bob, "#r").await;
    let seen = say(&mut alice, "#r", "one").await;
    expect(&mut bob, "one", |f| {
        matches!(f, Received::Core(ServerFrame::Message(_)))
    })
    .await;
    drop(bob);
    let missed_before_restart = say(&mut alice, "#r", "two").await;
    drop(alice);
    server.stop().await;

    let server = setup.start().await;
    // Alice comes back first and talks; then bob.
    let (mut alice, frames, _) = resume(&server, &alice_token, None).await;
    assert!(code(&frames[0]).is_none(), "{frames:?}");
    let after_restart = say(&mut alice, "#r", "three").await;
    assert!(
        after_restart > missed_before_restart,
        "ids increase across restarts"
    );
    let (_bob, frames, missed) = resume(&server, &bob_token, Some(seen)).await;
    assert!(code(&frames[0]).is_none(), "{frames:?}");
    assert_eq!(ids(&missed), [missed_before_restart, after_restart]);
    assert_eq!(missed[0].text, "two");
    server.stop().await;
}

#[tokio::test]
async fn an_offline_direct_message_is_delivered_exactly_once() {
    let setup = Setup::accounts();
    let server = setup.start().await;
    let (mut alice, _) = server.register("alice").await;
    let (bob, _) = server.register("bob").await;
    drop(bob);
    // Bob's session may still be ending; wait until it is gone.
    let hub = server.server.hub().clone();
    tokio::time::timeout(WAIT, async {
        while hub.by_nick("bob").is_some() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    let dm = msg(&mut alice, "Bob", "see you at 10").await;
    assert!(
        matches!(
            dm,
            Received::Core(ServerFrame::Sent {
                stored: true,
                recipients: 0,
                ..
            })
        ),
        "{dm:?}"
    );
    // Guests' names and unknown names are still refused.
    assert_eq!(
        code(&msg(&mut alice, "nobody", "hi").await),
        Some("no_such_user")
    );

    // Two devices log in one after the other: the first gets it once, the
    // second (which replaces the first) does not get it again.
    let (mut phone, _) = server.login("bob").await;
    let frames = phone.sync().await.unwrap();
    let got: Vec<&Message> = frames
        .iter()
        .filter_map(|f| match f {
            Received::Core(ServerFrame::Message(m)) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 1, "{frames:?}");
    assert_eq!(
        (
            got[0].from.as_str(),
            got[0].text.as_str(),
            got[0].to.as_deref()
        ),
        ("alice", "see you at 10", Some("bob"))
    );
    let (mut laptop, _) = server.login("bob").await;
    let frames = laptop.sync().await.unwrap();
    assert!(
        !frames
            .iter()
            .any(|f| matches!(f, Received::Core(ServerFrame::Message(_)))),
        "delivered once: {frames:?}"
    );
    // It is part of the conversation's history, for both parties.
    let (page, _) = history(&mut laptop, json!({"with": "alice"}))
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["see you at 10"]
    );
    let (page, _) = history(&mut alice, json!({"with": "bob"})).await.unwrap();
    assert_eq!(page.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn private_room_history_is_for_members_and_only_since_they_joined() {
    let setup = Setup::new("", &format!("{AUTH}{ROOMS}"));
    let server = setup.start().await;
    let (mut alice, _) = server.register("alice").await;
    let (mut bob, bob_token) = server.register("bob").await;
    let (mut carol, _) = server.register("carol").await;
    let created = alice
        .request_json(&json!({"type": "room_create", "room": "#secret"}))
        .await
        .unwrap();
    assert!(code(&created).is_none(), "{created:?}");
    let early = say(&mut alice, "#secret", "before bob").await;
    alice
        .request_json(&json!({"type": "room_invite", "room": "#secret", "user": "bob"}))
        .await
        .unwrap();
    let accepted = bob
        .request_json(&json!({"type": "room_accept", "room": "#secret"}))
        .await
        .unwrap();
    assert!(code(&accepted).is_none(), "{accepted:?}");
    let late = say(&mut alice, "#secret", "after bob").await;

    let (page, _) = history(&mut alice, json!({"room": "#secret"}))
        .await
        .unwrap();
    assert_eq!(ids(&page), [early, late], "the owner reads all");
    let (page, _) = history(&mut bob, json!({"room": "#secret"})).await.unwrap();
    assert_eq!(
        ids(&page),
        [late],
        "a member reads what was said since joining"
    );
    let (page, _) = history(&mut bob, json!({"room": "#secret", "before": late}))
        .await
        .unwrap();
    assert!(page.is_empty(), "not even by paging back: {page:?}");

    // Resuming with a cursor from before joining replays nothing older
    // than the membership, and counts nothing older as unread.
    drop(bob);
    expect(&mut alice, "bob's quit", |f| {
        matches!(f, Received::Core(ServerFrame::Presence(p))
            if p.nick == "bob" && p.event == chat_api::PresenceEvent::Quit)
    })
    .await;
    let away = say(&mut alice, "#secret", "while bob is away").await;
    let (mut bob, frames, missed) = resume(&server, &bob_token, Some(early - 1)).await;
    assert_eq!(ids(&missed), [late, away], "{frames:?}");
    let unread = unread_of(&bob.sync().await.unwrap()).expect("unread after resume");
    let secret = unread
        .iter()
        .find(|u| u.room.as_deref() == Some("#secret"))
        .unwrap();
    assert_eq!(secret.unread, 2, "{unread:?}");

    // An outsider gets exactly what a room that does not exist gives.
    let outsider = history(&mut carol, json!({"room": "#secret"})).await;
    let nothing = history(&mut carol, json!({"room": "#nothing-here"})).await;
    assert_eq!(outsider, Err("no_such_room".into()));
    // (A public room that does not exist is "not in room": carol is not in
    // it; the private one answers as if it did not exist.)
    assert!(nothing.is_err());

    // Kicked, then banned: no history.
    alice
        .request_json(&json!({"type": "room_kick", "room": "#secret", "user": "bob"}))
        .await
        .unwrap();
    assert_eq!(
        history(&mut bob, json!({"room": "#secret"})).await,
        Err("no_such_room".into())
    );
    alice
        .request_json(&json!({"type": "room_ban", "room": "#secret", "user": "carol"}))
        .await
        .unwrap();
    assert_eq!(
        history(&mut carol, json!({"room": "#secret"})).await,
        Err("no_such_room".into())
    );

    // Deleting the room deletes its history: a public room of the same name
    // starts empty.
    alice
        .request_json(&json!({"type": "room_delete", "room": "#secret"}))
        .await
        .unwrap();
    join(&mut carol, "#secret").await;
    let (page, _) = history(&mut carol, json!({"room": "#secret"}))
        .await
        .unwrap();
    assert!(page.is_empty(), "{page:?}");
    server.stop().await;
}

#[tokio::test]
async fn revoked_tokens_are_refused() {
    let setup = Setup::accounts();
    let server = setup.start().await;
    let invalid = |frames: &[Received]| code(&frames[0]) == Some("invalid_token");

    // logout revokes this session's token only.
    let (mut alice, first) = server.register("alice").await;
    let (_, second) = {
        drop(alice);
        server.login("alice").await
    };
    let (mut c, frames, _) = resume(&server, &first, None).await;
    assert!(!invalid(&frames), "{frames:?}");
    let reply = c.request_json(&json!({"type": "logout"})).await.unwrap();
    assert!(code(&reply).is_none(), "{reply:?}");
    let (_, frames, _) = resume(&server, &first, None).await;
    assert!(invalid(&frames), "logged out: {frames:?}");
    let (c, frames, _) = resume(&server, &second, None).await;
    assert!(!invalid(&frames), "{frames:?}");
    drop(c);

    // logout everywhere revokes them all.
    let (mut c, third) = server.login("alice").await;
    let reply = c
        .request_json(&json!({"type": "logout", "everywhere": true}))
        .await
        .unwrap();
    assert!(code(&reply).is_none(), "{reply:?}");
    for token in [&second, &third] {
        let (_, frames, _) = resume(&server, token, None).await;
        assert!(invalid(&frames), "everywhere: {frames:?}");
    }

    // A password change, by the user or the operator, revokes them.
    let (mut a, token) = server.login("alice").await;
    let reply = a
        .request_json(&json!({"type": "passwd", "old_password": "a password", "new_password": "another password"}))
        .await
        .unwrap();
    assert!(code(&reply).is_none(), "{reply:?}");
    drop(a);
    let (_, frames, _) = resume(&server, &token, None).await;
    assert!(invalid(&frames), "after passwd: {frames:?}");
    let (_, bob_token) = server.register("bob").await;
    let (ok, out) = setup.cli(&["user", "disable", "bob"], "");
    assert!(ok, "{out}");
    let (_, frames, _) = resume(&server, &bob_token, None).await;
    assert!(invalid(&frames), "disabled: {frames:?}");

    // Garbage and a missing token are the same refusal.
    let (_, frames, _) = resume(&server, "not-a-token", None).await;
    assert!(invalid(&frames), "{frames:?}");
    alice = server.client().await;
    let reply = alice
        .request_json(&json!({"type": "resume"}))
        .await
        .unwrap();
    assert_eq!(code(&reply), Some("invalid_token"));
    server.stop().await;
}

#[tokio::test]
async fn rooms_and_read_markers_follow_the_account_to_another_device() {
    let setup = Setup::accounts();
    let server = setup.start().await;
    let (mut alice, _) = server.register("alice").await;
    let (mut bob, _) = server.register("bob").await;
    join(&mut alice, "#a").await;
    join(&mut alice, "#b").await;
    join(&mut alice, "#c").await;
    join(&mut bob, "#a").await;
    let left = alice
        .request(&ClientFrame::Part { room: "#c".into() })
        .await
        .unwrap();
    assert!(code(&left).is_none());
    let m1 = say(&mut bob, "#a", "one").await;
    let _m2 = say(&mut bob, "#a", "two").await;
    let _m3 = say(&mut bob, "#a", "three").await;
    let read = alice
        .request(&ClientFrame::Read {
            room: Some("#a".into()),
            with: None,
            msg_id: m1,
        })
        .await
        .unwrap();
    assert!(
        matches!(read, Received::Core(ServerFrame::Ok { .. })),
        "{read:?}"
    );
    // A marker never moves back.
    alice
        .request(&ClientFrame::Read {
            room: Some("#a".into()),
            with: None,
            msg_id: 1,
        })
        .await
        .unwrap();
    drop(alice);

    // Another device: same rooms (not the one left), same unread state.
    let (mut tablet, _) = server.login("alice").await;
    let frames = tablet.sync().await.unwrap();
    let mut joined: Vec<String> = frames
        .iter()
        .filter_map(|f| match f {
            Received::Core(ServerFrame::Joined { room, id: None, .. }) => Some(room.clone()),
            _ => None,
        })
        .collect();
    joined.sort();
    assert_eq!(joined, ["#a", "#b"], "{frames:?}");
    let unread = unread_of(&frames).expect("unread after login");
    let a = unread
        .iter()
        .find(|u| u.room.as_deref() == Some("#a"))
        .unwrap();
    assert_eq!((a.read_msg_id, a.unread), (m1, 2), "{unread:?}");
    let b = unread
        .iter()
        .find(|u| u.room.as_deref() == Some("#b"))
        .unwrap();
    assert_eq!(b.unread, 0);
    // Guests have no markers.
    let mut guest = server.guest("visitor").await;
    let reply = guest.request(&ClientFrame::Unread {}).await.unwrap();
    assert_eq!(code(&reply), Some("account_required"));
    server.stop().await;
}

#[tokio::test]
async fn retention_prunes_what_it_should_and_the_operator_can_purge() {
    let setup = Setup::new(
        "[history]\nmax_messages_per_room = 5\nprune_interval_secs = 1\n",
        "",
    );
    let server = setup.start().await;
    let mut alice = server.guest("alice").await;
    join(&mut alice, "#busy").await;
    join(&mut alice, "#quiet").await;
    let mut busy = Vec::new();
    for i in 0..12 {
        busy.push(say(&mut alice, "#busy", &format!("b{i}")).await);
    }
    let quiet = say(&mut alice, "#quiet", "q").await;
    // The pruning job runs every second: wait (bounded) until it did.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (page, _) = history(&mut alice, json!({"room": "#busy", "limit": 50}))
            .await
            .unwrap();
        if page.len() == 5 {
            assert_eq!(ids(&page), busy[7..], "the newest five are kept");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not pruned: {} left",
            page.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (page, _) = history(&mut alice, json!({"room": "#quiet"}))
        .await
        .unwrap();
    assert_eq!(ids(&page), [quiet], "other rooms untouched");

    // The operator purges one room while the server runs.
    let (ok, out) = setup.cli(&["history", "purge", "--room", "#busy"], "");
    assert!(ok && out.contains("deleted 5 messages of #busy"), "{out}");
    let (page, _) = history(&mut alice, json!({"room": "#busy"})).await.unwrap();
    assert!(page.is_empty());
    let (page, _) = history(&mut alice, json!({"room": "#quiet"}))
        .await
        .unwrap();
    assert_eq!(ids(&page), [quiet]);
    let (ok, out) = setup.cli(&["history", "purge", "--before", "2000-01-01"], "");
    assert!(ok && out.contains("deleted 0 messages"), "{out}");
    let (ok, out) = setup.cli(&["history", "purge", "--before", "tomorrow"], "");
    assert!(!ok && out.contains("YYYY-MM-DD"), "{out}");
    server.stop().await;
}

#[tokio::test]
async fn deleting_an_account_deletes_its_direct_messages() {
    let setup = Setup::accounts();
    let server = setup.start().await;
    let (mut alice, _) = server.register("alice").await;
    let (mut bob, _) = server.register("bob").await;
    let (mut carol, _) = server.register("carol").await;
    msg(&mut alice, "bob", "to bob").await;
    msg(&mut alice, "carol", "to carol").await;
    msg(&mut bob, "carol", "bob to carol").await;
    drop(bob);
    let (ok, out) = setup.cli(&["user", "delete", "bob"], "");
    assert!(ok, "{out}");
    let (page, _) = history(&mut carol, json!({"with": "alice"})).await.unwrap();
    assert_eq!(page.len(), 1, "others' conversations stay");
    assert_eq!(
        history(&mut carol, json!({"with": "bob"})).await,
        Err("no_such_user".into())
    );
    let (page, _) = history(&mut alice, json!({"with": "carol"})).await.unwrap();
    assert_eq!(page.len(), 1);
    server.stop().await;
}

/// Starts the real binary on `config`; returns it and its address.
fn spawn_chatd(config: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatd"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("chatd listening on ").nth(1) {
                let _ = addr_tx.send(rest.split_whitespace().next().unwrap().to_string());
            }
        }
    });
    let addr = addr_rx.recv_timeout(WAIT).expect("chatd logs its address");
    (child, addr)
}

#[tokio::test]
async fn sigkill_during_a_burst_loses_no_acknowledged_message() {
    let setup = Setup::new("", "");
    let (mut child, addr) = spawn_chatd(&setup.config_path);
    let mut alice = Client::connect_as(&addr, "alice").await.unwrap();
    join(&mut alice, "#log").await;
    // A steady pipelined burst; the process is killed while it runs.
    let mut acknowledged: Vec<(u64, String)> = Vec::new();
    let mut texts = std::collections::HashMap::new();
    let mut next = 0u64;
    let mut writer_open = true;
    'burst: loop {
        while writer_open && next < acknowledged.len() as u64 + 500 {
            let text = format!("burst {next}");
            texts.insert(next, text.clone());
            let frame = ClientFrame::Say {
                room: "#log".into(),
                text,
            };
            writer_open = alice.writer.send(Some(next + 1), &frame).await.is_ok();
            next += 1;
        }
        match alice.recv_timeout(WAIT).await {
            Ok(Received::Core(ServerFrame::Sent {
                id: Some(id),
                msg_id,
                ..
            })) => {
                acknowledged.push((msg_id, texts[&(id - 1)].clone()));
                if acknowledged.len() == 3000 {
                    let _ = child.kill(); // SIGKILL
                }
            }
            Ok(_) => {}
            Err(_) => break 'burst,
        }
    }
    let _ = child.wait();
    assert!(
        acknowledged.len() >= 3000,
        "only {} acknowledged",
        acknowledged.len()
    );

    let (mut child, addr) = spawn_chatd(&setup.config_path);
    let mut reader = Client::connect_as(&addr, "reader").await.unwrap();
    join(&mut reader, "#log").await;
    let mut stored = std::collections::HashMap::new();
    let mut after = 0;
    loop {
        let (page, more) = history(
            &mut reader,
            json!({"room": "#log", "after": after, "limit": 200}),
        )
        .await
        .unwrap();
        for m in &page {
            stored.insert(m.msg_id, m.text.clone());
        }
        if let Some(last) = page.last() {
            after = last.msg_id;
        }
        if !more {
            break;
        }
    }
    let lost: Vec<&(u64, String)> = acknowledged
        .iter()
        .filter(|(id, text)| stored.get(id) != Some(text))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    // Ids after the restart are above everything handed out before.
    let newest = acknowledged.iter().map(|(id, _)| *id).max().unwrap();
    let fresh = say(&mut reader, "#log", "after the crash").await;
    assert!(fresh > newest);
    let unique: HashSet<u64> = stored.keys().copied().collect();
    assert_eq!(unique.len(), stored.len());
    let _ = child.kill();
    let _ = child.wait();
}

/// A resume that misses more than `resume_max` sends the oldest missed
/// messages up to `last_msg_id` and nothing after it, not even a direct
/// message kept for the account; each conversation's rest is read with
/// `history` after `last_msg_id`.
#[tokio::test]
async fn a_long_absence_is_sent_up_to_a_cut_and_the_rest_is_paged() {
    let setup = Setup::new("[history]\nresume_max = 2\n", AUTH);
    let server = setup.start().await;
    let (mut alice, bob_token, seen) = bob_steps_away(&server).await;
    let mut room = Vec::new();
    for i in 0..4 {
        room.push(say(&mut alice, "#r", &format!("r{i}")).await);
    }
    let dm = match msg(&mut alice, "bob", "kept for later").await {
        Received::Core(ServerFrame::Sent {
            msg_id,
            stored: true,
            ..
        }) => msg_id,
        other => panic!("{other:?}"),
    };
    let (mut bob, frames, missed) = resume(&server, &bob_token, Some(seen)).await;
    assert_eq!(ids(&missed), room[..2], "{frames:?}");
    let Some(Received::Core(ServerFrame::Resumed {
        more: true,
        last_msg_id,
        ..
    })) = frames.last()
    else {
        panic!("{frames:?}")
    };
    assert_eq!(*last_msg_id, room[1]);
    let (page, _) = history(&mut bob, json!({"room": "#r", "after": last_msg_id}))
        .await
        .unwrap();
    assert_eq!(ids(&page), room[2..]);
    let (page, _) = history(&mut bob, json!({"with": "alice", "after": last_msg_id}))
        .await
        .unwrap();
    assert_eq!(ids(&page), [dm]);
    server.stop().await;
}
