//! End to end: history and resuming with `client-tui --line` against a real
//! chatd (accounts plugin; its SQLite file in a tempdir). Connections are
//! dropped through a relay ([`common::Proxy`]); every wait is on an event,
//! with a timeout.

mod common;

use chat_client::{accounts, Client, ConnectOptions, Received};
use chat_protocol::{ClientFrame, PresenceEvent, ServerFrame};
use common::{registered, start_at, LineClient, Proxy, PASSWORD, TIMEOUT};

const AUTH: &str = "[[plugin]]\nname = \"auth\"\n";

async fn request_ok(client: &mut Client, frame: ClientFrame) -> Received {
    tokio::time::timeout(TIMEOUT, client.request_ok(&frame))
        .await
        .expect("an answer")
        .unwrap_or_else(|e| panic!("{frame:?} refused: {e}"))
}

async fn say(client: &mut Client, room: &str, text: &str) {
    request_ok(
        client,
        ClientFrame::Say {
            room: room.into(),
            text: text.into(),
        },
    )
    .await;
}

/// Reads lines until `last` (included) and returns those after the first
/// line matching `first` (included).
async fn lines_between(
    client: &mut LineClient,
    first: impl Fn(&str) -> bool,
    last: impl Fn(&str) -> bool,
) -> Vec<String> {
    let start = client.expect("the first line", first).await;
    let mut lines = vec![start];
    loop {
        let line = client.expect("the next line", |_| true).await;
        let done = last(&line);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

/// Alice (registered, in line mode through `proxy`) and bob (a protocol
/// client) in `#team`; returns once alice shows that she logged in and
/// joined.
async fn alice_and_bob_in_team(
    server_addr: &str,
    proxy: &Proxy,
    home: &std::path::Path,
) -> (LineClient, Client) {
    drop(registered(server_addr, "alice").await);
    let mut bob = registered(server_addr, "bob").await;
    request_ok(
        &mut bob,
        ClientFrame::Join {
            room: "#team".into(),
        },
    )
    .await;
    let mut alice = LineClient::logged_in("alice", proxy.addr, home, &["--join", "#team"]);
    alice.expect_line("info * logged in as alice").await;
    alice.expect_line("joined #team alice,bob").await;
    (alice, bob)
}

/// Waits until bob sees alice's connection end.
async fn sees_alice_quit(bob: &mut Client) {
    bob.expect(TIMEOUT, |f| {
        matches!(f, Received::Core(ServerFrame::Presence(p))
            if p.event == PresenceEvent::Quit && p.nick == "alice")
    })
    .await
    .expect("bob sees alice quit");
}

#[tokio::test]
async fn resume_after_a_dropped_connection_prints_exactly_the_missed_messages() {
    let srv = start_at("127.0.0.1:0", tempfile::tempdir().unwrap(), AUTH).await;
    let server_addr = srv.socket_addr().to_string();
    let proxy = Proxy::start(srv.socket_addr()).await;
    let home = tempfile::tempdir().unwrap();

    // Alice, in line mode, through the relay.
    let (mut alice, mut bob) = alice_and_bob_in_team(&server_addr, &proxy, home.path()).await;
    say(&mut bob, "#team", "before the cut").await;
    alice.expect_line("msg #team bob before the cut").await;

    // The link drops; the server sees alice go; bob talks meanwhile.
    proxy.cut();
    alice
        .expect("the disconnection", |l| {
            l.starts_with("status * disconnected")
        })
        .await;
    sees_alice_quit(&mut bob).await;
    for text in ["one", "two", "three"] {
        say(&mut bob, "#team", text).await;
    }
    let stored = request_ok(
        &mut bob,
        ClientFrame::Msg {
            to: "alice".into(),
            text: "call me".into(),
        },
    )
    .await;
    assert!(
        matches!(
            stored,
            Received::Core(ServerFrame::Sent { recipients: 0, .. })
        ),
        "a direct message to an offline account is stored: {stored:?}"
    );

    // Back: alice resumes and prints what she missed, in order, marked.
    proxy.open();
    let lines = lines_between(
        &mut alice,
        |l| l.starts_with("status * connected"),
        |l| l.starts_with("resumed "),
    )
    .await;
    let caught_up: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("status ") && !l.starts_with("joined "))
        .collect();
    assert_eq!(
        caught_up,
        [
            "away #team 3",
            "missed #team bob one",
            "missed #team bob two",
            "missed #team bob three",
            "away bob 1",
            "missed bob bob call me",
            "resumed * 4",
        ],
        "{lines:#?}"
    );
    let logins = alice
        .seen
        .iter()
        .filter(|l| *l == "info * logged in as alice")
        .count();
    assert_eq!(
        logins, 1,
        "resumed, not logged in again with the password: {:#?}",
        alice.seen
    );

    // Nothing twice, and the session works: both ways.
    say(&mut bob, "#team", "welcome back").await;
    alice.expect_line("msg #team bob welcome back").await;
    alice.send("thanks").await;
    alice.expect_line("sent #team alice thanks").await;
    let got = bob
        .expect(
            TIMEOUT,
            |f| matches!(f, Received::Core(ServerFrame::Message(m)) if m.text == "thanks"),
        )
        .await;
    assert!(got.is_ok());
    let (status, seen) = alice.finish().await;
    assert!(status.success());
    for text in ["one", "two", "three", "call me"] {
        let count = seen
            .iter()
            .filter(|l| l.ends_with(&format!(" {text}")))
            .count();
        assert_eq!(count, 1, "{text:?} shown once: {seen:#?}");
    }
    srv.server.stop().await;
}

#[tokio::test]
async fn resume_survives_a_server_restart() {
    let srv = start_at("127.0.0.1:0", tempfile::tempdir().unwrap(), AUTH).await;
    let proxy = Proxy::start(srv.socket_addr()).await;
    let home = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) =
        alice_and_bob_in_team(&srv.socket_addr().to_string(), &proxy, home.path()).await;
    say(&mut bob, "#team", "before the restart").await;
    alice.expect_line("msg #team bob before the restart").await;

    // The server stops (the relay holds alice's reconnection) and starts
    // again on the same data; bob comes back and talks.
    proxy.cut();
    drop(bob);
    srv.server.stop().await;
    let srv = start_at("127.0.0.1:0", srv.dir, AUTH).await;
    proxy.set_upstream(srv.socket_addr());
    let mut bob = Client::connect(&srv.socket_addr().to_string(), &ConnectOptions::default())
        .await
        .unwrap();
    tokio::time::timeout(TIMEOUT, accounts::login(&mut bob, "bob", PASSWORD))
        .await
        .expect("login answered")
        .expect("bob's account survived");
    request_ok(
        &mut bob,
        ClientFrame::Join {
            room: "#team".into(),
        },
    )
    .await;
    say(&mut bob, "#team", "after one").await;
    say(&mut bob, "#team", "after two").await;

    proxy.open();
    let lines = lines_between(
        &mut alice,
        |l| l.starts_with("status * connected"),
        |l| l.starts_with("resumed "),
    )
    .await;
    let caught_up: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("status ") && !l.starts_with("joined "))
        .collect();
    assert_eq!(
        caught_up,
        [
            "away #team 2",
            "missed #team bob after one",
            "missed #team bob after two",
            "resumed * 2",
        ],
        "{lines:#?}"
    );
    let (status, _) = alice.finish().await;
    assert!(status.success());
    srv.server.stop().await;
}

#[tokio::test]
async fn a_long_absence_is_caught_up_past_what_one_resume_sends() {
    let config = format!("{AUTH}[history]\nresume_max = 2\n");
    let srv = start_at("127.0.0.1:0", tempfile::tempdir().unwrap(), &config).await;
    let server_addr = srv.socket_addr().to_string();
    let proxy = Proxy::start(srv.socket_addr()).await;
    let home = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = alice_and_bob_in_team(&server_addr, &proxy, home.path()).await;
    say(&mut bob, "#team", "seen").await;
    alice.expect_line("msg #team bob seen").await;

    proxy.cut();
    sees_alice_quit(&mut bob).await;
    for n in 1..=5 {
        say(&mut bob, "#team", &format!("r{n}")).await;
    }
    proxy.open();
    alice.expect_line("away #team 2").await;
    alice.expect_line("missed #team bob r1").await;
    alice.expect_line("missed #team bob r2").await;
    alice.expect_line("resumed * 2 more").await;
    // The rest comes from the history, in order.
    alice.expect_line("missed #team bob r3").await;
    alice.expect_line("missed #team bob r4").await;
    alice.expect_line("missed #team bob r5").await;
    say(&mut bob, "#team", "after").await;
    alice.expect_line("msg #team bob after").await;
    let (status, seen) = alice.finish().await;
    assert!(status.success());
    for n in 1..=5 {
        let text = format!(" r{n}");
        let count = seen.iter().filter(|l| l.ends_with(&text)).count();
        assert_eq!(count, 1, "r{n} shown once: {seen:#?}");
    }
    srv.server.stop().await;
}

#[tokio::test]
async fn history_command_prints_older_pages_in_line_mode() {
    let srv = start_at("127.0.0.1:0", tempfile::tempdir().unwrap(), AUTH).await;
    let addr = srv.socket_addr().to_string();
    let home = tempfile::tempdir().unwrap();
    drop(registered(&addr, "alice").await);
    let mut bob = registered(&addr, "bob").await;
    request_ok(
        &mut bob,
        ClientFrame::Join {
            room: "#team".into(),
        },
    )
    .await;
    for n in 1..=5 {
        say(&mut bob, "#team", &format!("m{n}")).await;
    }

    let mut alice = LineClient::logged_in(
        "alice",
        srv.socket_addr(),
        home.path(),
        &["--join", "#team"],
    );
    alice.expect_line("joined #team alice,bob").await;
    alice.send("/history 3").await;
    alice.expect_line("history #team bob m3").await;
    let next: Vec<String> = vec![
        alice.expect("a line", |_| true).await,
        alice.expect("a line", |_| true).await,
        alice.expect("a line", |_| true).await,
    ];
    assert_eq!(
        next,
        [
            "history #team bob m4",
            "history #team bob m5",
            "info #team 3 older messages loaded above (PageUp)"
        ]
    );
    alice.send("/history 3").await;
    alice.expect_line("history #team bob m1").await;
    alice.expect_line("history #team bob m2").await;
    alice
        .expect_line("info #team 2 older messages loaded above (PageUp)")
        .await;
    alice.send("/history").await;
    alice
        .expect_line("info #team no older messages: this is the start of the conversation")
        .await;

    // A direct conversation's history, after a message to an offline
    // account was delivered at login.
    alice.send("/msg bob are you there?").await;
    alice.expect_line("sent bob alice are you there?").await;
    alice.send("/query bob").await;
    alice.send("/history").await;
    alice.expect_line("info bob no older messages").await;
    let (status, _) = alice.finish().await;
    assert!(status.success());
    srv.server.stop().await;
}

#[tokio::test]
async fn a_new_client_process_gets_offline_messages_its_rooms_and_the_unread_summary() {
    let srv = start_at("127.0.0.1:0", tempfile::tempdir().unwrap(), AUTH).await;
    let addr = srv.socket_addr().to_string();
    let home = tempfile::tempdir().unwrap();
    // Alice was in #team on another device, and quit.
    let mut before = registered(&addr, "alice").await;
    request_ok(
        &mut before,
        ClientFrame::Join {
            room: "#team".into(),
        },
    )
    .await;
    before
        .writer
        .send(None, &ClientFrame::Quit { reason: None })
        .await
        .unwrap();
    while let Ok(Some(_)) = tokio::time::timeout(TIMEOUT, before.recv())
        .await
        .expect("the server closes after quit")
    {}
    let mut bob = registered(&addr, "bob").await;
    request_ok(
        &mut bob,
        ClientFrame::Join {
            room: "#team".into(),
        },
    )
    .await;
    say(&mut bob, "#team", "while you were out").await;
    request_ok(
        &mut bob,
        ClientFrame::Msg {
            to: "alice".into(),
            text: "call me".into(),
        },
    )
    .await;

    let mut alice = LineClient::logged_in("alice", srv.socket_addr(), home.path(), &[]);
    alice.expect_line("info * logged in as alice").await;
    // Her room, remembered by the server; the direct message kept for her.
    alice.expect_line("joined #team alice,bob").await;
    alice.expect_line("msg bob bob call me").await;
    let summary = alice
        .expect("the unread summary", |l| l.starts_with("info * unread: "))
        .await;
    assert!(
        summary.contains("#team 1") && summary.contains("bob 1"),
        "{summary}"
    );
    alice.send("/join #team").await;
    alice.send("/history").await;
    alice
        .expect_line("history #team bob while you were out")
        .await;
    alice
        .expect_line("info #team 1 older message loaded above (PageUp)")
        .await;
    let (status, seen) = alice.finish().await;
    assert!(status.success());
    let joined = seen
        .iter()
        .filter(|l| l.starts_with("joined #team"))
        .count();
    assert_eq!(joined, 1, "told once: {seen:#?}");
    srv.server.stop().await;
}

#[tokio::test]
async fn without_history_a_resumed_client_rejoins_its_rooms_itself() {
    let config = format!("{AUTH}[history]\nenabled = false\n");
    let srv = start_at("127.0.0.1:0", tempfile::tempdir().unwrap(), &config).await;
    let proxy = Proxy::start(srv.socket_addr()).await;
    let home = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) =
        alice_and_bob_in_team(&srv.socket_addr().to_string(), &proxy, home.path()).await;
    proxy.cut();
    sees_alice_quit(&mut bob).await;
    proxy.open();
    alice
        .expect("the reconnection", |l| l.starts_with("status * connected"))
        .await;
    alice.expect_line("info * logged in as alice").await;
    alice.expect_line("joined #team alice,bob").await;
    say(&mut bob, "#team", "still here").await;
    alice.expect_line("msg #team bob still here").await;
    let (status, _) = alice.finish().await;
    assert!(status.success());
    srv.server.stop().await;
}
