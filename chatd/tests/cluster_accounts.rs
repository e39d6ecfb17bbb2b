//! The plugins that keep data, clustered (docs/scaling.md): accounts,
//! private rooms and the message log in one PostgreSQL database, routing
//! over NATS, three chatd nodes. Real `nats-server` and PostgreSQL from
//! Debian's packages, started by the test kit.

use chat_api::{ClientFrame, ServerFrame};
use chat_client::{Client, Received};
use chatd_testkit::nats::TempNats;
use chatd_testkit::process::Chatd;
use chatd_testkit::{
    anonymous, await_users, code_of, expect_text, join, postgres, request, request_json,
    resume_token, start_at, TestServer, AUTH_PLUGIN, WAIT,
};
use serde_json::json;

/// NATS and a fresh PostgreSQL database, or `None` (skipped) outside CI
/// when either is not installed.
async fn infrastructure() -> Option<(TempNats, String)> {
    let nats = TempNats::start().await?;
    let pg = postgres::shared().await?;
    let url = pg.create_database().await;
    Some((nats, url))
}

/// Node `name`'s configuration: history on, accounts and private rooms,
/// the shared database, the cluster.
fn node_toml(nats: &TempNats, url: &str, name: &str) -> String {
    format!(
        "[limits]\nframes_per_second = 0\n[database]\nurl = {url:?}\n[cluster]\nnode = \"{name}\"\nnats = [\"{}\"]\nheartbeat_ms = 100\nnode_timeout_ms = 1000\n{AUTH_PLUGIN}[[plugin]]\nname = \"rooms\"\n",
        nats.url()
    )
}

async fn node(nats: &TempNats, url: &str, name: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    start_at("127.0.0.1:0", dir, &node_toml(nats, url, name)).await
}

/// `register` (`login`) on `addr`: the client and its resume token.
async fn account(addr: &str, kind: &str, name: &str) -> (Client, String) {
    let mut c = anonymous(addr).await;
    let frame = json!({"type": kind, "user": name, "password": "a password"});
    let token = resume_token(&request_json(&mut c, frame).await);
    (c, token)
}

/// `say`; the id its `sent` (sent once stored) gives.
async fn say(c: &mut Client, room: &str, text: &str) -> u64 {
    let frame = ClientFrame::Say {
        room: room.into(),
        text: text.into(),
    };
    match request(c, frame).await {
        Received::Core(ServerFrame::Sent { msg_id, .. }) => msg_id,
        other => panic!("expected sent, got {other:?}"),
    }
}

async fn history(c: &mut Client, room: &str) -> Vec<(u64, String)> {
    match request_json(c, json!({"type": "history", "room": room})).await {
        Received::Core(ServerFrame::History { messages, .. }) => {
            messages.into_iter().map(|m| (m.msg_id, m.text)).collect()
        }
        other => panic!("expected history, got {other:?}"),
    }
}

/// Waits for the connection to end; its `bye`.
async fn bye_of(c: &mut Client) -> (String, String) {
    loop {
        match tokio::time::timeout(WAIT, c.recv())
            .await
            .expect("the connection ends")
        {
            Ok(Some(Received::Core(ServerFrame::Bye { code, reason }))) => {
                return (code.to_string(), reason)
            }
            Ok(Some(_)) => continue,
            other => panic!("ended without bye: {other:?}"),
        }
    }
}

#[tokio::test]
async fn accounts_history_and_offline_messages_are_one_across_nodes() {
    let Some((nats, url)) = infrastructure().await else {
        return;
    };
    let (a, b, c) = (
        node(&nats, &url, "a").await,
        node(&nats, &url, "b").await,
        node(&nats, &url, "c").await,
    );
    // An account registered on one node logs in on another.
    let (alice, _) = account(&a.addr, "register", "alice").await;
    drop(alice);
    let (mut bob, _) = account(&b.addr, "register", "bob").await;
    let (mut alice, _) = account(&c.addr, "login", "alice").await;
    join(&mut alice, "#x").await;
    join(&mut bob, "#x").await;
    await_users(&mut alice, Some("#x"), &["alice", "bob"]).await;

    // Messages are stored once, under the stream's id, and read back the
    // same from any node.
    let one = say(&mut alice, "#x", "one").await;
    assert_eq!(expect_text(&mut bob, "one").await.msg_id, one);
    let two = say(&mut bob, "#x", "two").await;
    expect_text(&mut alice, "two").await;
    let (mut carol, _) = account(&a.addr, "register", "carol").await;
    join(&mut carol, "#x").await;
    let page = history(&mut carol, "#x").await;
    assert_eq!(page, [(one, "one".to_string()), (two, "two".to_string())]);

    // A message to an account connected nowhere waits for its login on
    // any node, and is delivered once.
    let (dave, _) = account(&b.addr, "register", "dave").await;
    drop(dave);
    await_users(&mut alice, None, &["alice", "bob", "carol"]).await;
    let reply = request(
        &mut alice,
        ClientFrame::Msg {
            to: "Dave".into(),
            text: "see you at 10".into(),
        },
    )
    .await;
    assert!(
        matches!(
            reply,
            Received::Core(ServerFrame::Sent {
                stored: true,
                recipients: 0,
                ..
            })
        ),
        "{reply:?}"
    );
    let (mut dave, _) = account(&c.addr, "login", "dave").await;
    let got = expect_text(&mut dave, "see you at 10").await;
    assert_eq!(got.from, "alice");

    // Logging in on another node ends the first session, as on one node.
    let (mut bob_again, _) = account(&a.addr, "login", "bob").await;
    let (code, reason) = bye_of(&mut bob).await;
    assert_eq!(code, "kicked");
    assert_eq!(
        reason,
        "you logged in from another connection; this one is closed"
    );
    join(&mut bob_again, "#x").await;
    say(&mut alice, "#x", "three").await;
    expect_text(&mut bob_again, "three").await;
    await_users(&mut carol, None, &["alice", "bob", "carol", "dave"]).await;
    for server in [a, b, c] {
        server.stop().await;
    }
}

#[tokio::test]
async fn private_rooms_work_across_nodes() {
    let Some((nats, url)) = infrastructure().await else {
        return;
    };
    let (a, b, c) = (
        node(&nats, &url, "a").await,
        node(&nats, &url, "b").await,
        node(&nats, &url, "c").await,
    );
    let (mut owner, _) = account(&a.addr, "register", "owner").await;
    let (mut guest, _) = account(&b.addr, "register", "guest").await;
    let (mut outsider, _) = account(&c.addr, "register", "outsider").await;
    await_users(&mut owner, None, &["guest", "outsider", "owner"]).await;
    let created = request_json(
        &mut owner,
        json!({"type": "room_create", "room": "#secret"}),
    )
    .await;
    assert_eq!(code_of(&created), None, "{created:?}");
    // The invitation reaches the invitee on another node.
    let invited = request_json(
        &mut owner,
        json!({"type": "room_invite", "room": "#secret", "user": "guest"}),
    )
    .await;
    assert_eq!(code_of(&invited), None, "{invited:?}");
    guest
        .expect(
            WAIT,
            |f| matches!(f, Received::Custom { kind, .. } if kind == "room_invitation"),
        )
        .await
        .expect("the invitee hears of it on its node");
    join(&mut guest, "#secret").await;
    let refused = request(
        &mut outsider,
        ClientFrame::Join {
            room: "#secret".into(),
        },
    )
    .await;
    assert!(code_of(&refused).is_some(), "{refused:?}");
    await_users(&mut owner, Some("#secret"), &["guest", "owner"]).await;
    say(&mut owner, "#secret", "for members").await;
    expect_text(&mut guest, "for members").await;

    // A kick on one node takes the member on another out of the room.
    let kicked = request_json(
        &mut owner,
        json!({"type": "room_kick", "room": "#secret", "user": "guest"}),
    )
    .await;
    assert_eq!(code_of(&kicked), None, "{kicked:?}");
    await_users(&mut owner, Some("#secret"), &["owner"]).await;
    let after = request(
        &mut guest,
        ClientFrame::Say {
            room: "#secret".into(),
            text: "still here?".into(),
        },
    )
    .await;
    assert_eq!(code_of(&after), Some("not_in_room"));
    for server in [a, b, c] {
        server.stop().await;
    }
}

/// A `chatd` process of the cluster.
async fn node_process(
    nats: &TempNats,
    url: &str,
    name: &str,
    dir: &std::path::Path,
) -> (Chatd, String) {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n{}",
            dir.join(name),
            node_toml(nats, url, name)
        ),
    )
    .unwrap();
    let chatd = Chatd::spawn(&config);
    let addr = chatd.address("plaintext").await;
    (chatd, addr)
}

#[tokio::test]
async fn a_user_whose_node_was_killed_resumes_on_another_without_missing_a_message() {
    let Some((nats, url)) = infrastructure().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, a_addr) = node_process(&nats, &url, "a", dir.path()).await;
    let (b, b_addr) = node_process(&nats, &url, "b", dir.path()).await;
    let (mut c, c_addr) = node_process(&nats, &url, "c", dir.path()).await;
    let (mut alice, _) = account(&a_addr, "register", "alice").await;
    let (mut carol, token) = account(&c_addr, "register", "carol").await;
    join(&mut alice, "#x").await;
    join(&mut carol, "#x").await;
    // No wait here: `joined` comes once the room is remembered for her
    // account, so the node may die right after it.
    await_users(&mut alice, Some("#x"), &["alice", "carol"]).await;
    say(&mut alice, "#x", "before").await;
    let seen = expect_text(&mut carol, "before").await.msg_id;

    // Node c dies mid-conversation; alice goes on talking.
    c.child.start_kill().unwrap();
    c.child.wait().await.unwrap();
    alice
        .expect(
            WAIT,
            |f| matches!(f, Received::Core(ServerFrame::Presence(p)) if p.nick == "carol"),
        )
        .await
        .expect("alice sees carol go");
    let mut sent = Vec::new();
    for n in 0..5 {
        sent.push(say(&mut alice, "#x", &format!("while away {n}")).await);
    }

    // Carol resumes on node b with her token: what she missed comes in
    // the catch-up, and whatever node b had not yet read from the stream
    // when she came back comes live right after; nothing twice, nothing
    // left out, in order.
    let mut carol = anonymous(&b_addr).await;
    let frame = json!({"type": "resume", "id": 1, "token": token, "last_msg_id": seen});
    carol
        .writer
        .send_raw(format!("{frame}\n").as_bytes())
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut resumed = false;
    while !resumed || got.len() < sent.len() {
        let frame = carol
            .recv_timeout(WAIT)
            .await
            .unwrap_or_else(|e| panic!("{e}: got {got:?} of {sent:?}, resumed: {resumed}"));
        match frame {
            Received::Core(ServerFrame::Missed { messages }) => {
                assert!(!resumed, "missed after resumed");
                got.extend(messages.iter().map(|m| m.msg_id));
            }
            Received::Core(ServerFrame::Message(m)) if resumed => got.push(m.msg_id),
            Received::Core(ServerFrame::Resumed { .. }) => resumed = true,
            Received::Core(ServerFrame::Error { code, message, .. }) => {
                panic!("{code}: {message}")
            }
            _ => {}
        }
    }
    assert_eq!(got, sent);
    // And she is back in her room, live.
    say(&mut alice, "#x", "welcome back").await;
    expect_text(&mut carol, "welcome back").await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_file_sent_on_one_node_is_downloaded_on_another() {
    let Some((nats, url)) = infrastructure().await else {
        return;
    };
    let files = "[[plugin]]\nname = \"files\"\n";
    let start = |name: &'static str| {
        let toml = format!("{}{files}", node_toml(&nats, &url, name));
        async move { start_at("127.0.0.1:0", tempfile::tempdir().unwrap(), &toml).await }
    };
    let (a, b) = (start("a").await, start("b").await);
    let (mut alice, _) = account(&a.addr, "register", "alice").await;
    let (mut bob, _) = account(&b.addr, "register", "bob").await;
    await_users(&mut alice, None, &["alice", "bob"]).await;

    // 200 KB: several chunks, each relayed from node a to bob on node b.
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("notes.bin");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&source, &bytes).unwrap();
    let to = chat_client::files::Recipient::User("bob".into());
    let sent = tokio::time::timeout(
        WAIT,
        chat_client::files::upload(&mut alice, &source, &to, |_| {}),
    )
    .await
    .expect("upload in time")
    .expect("upload");
    let announced = bob
        .expect(WAIT, |f| chat_client::files::available(f).is_some())
        .await
        .expect("bob hears of the file on his node");
    let file = chat_client::files::available(&announced).unwrap();
    assert_eq!(file.transfer, sent.transfer);
    let dest = dir.path().join("received.bin");
    tokio::time::timeout(
        WAIT,
        chat_client::files::download(&mut bob, &file, &dest, |_| {}),
    )
    .await
    .expect("download in time")
    .expect("download through node b from node a");
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    a.stop().await;
    b.stop().await;
}
