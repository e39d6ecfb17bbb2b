//! End to end: `client-tui --line` processes against a real chatd.

mod common;

use std::time::Duration;

use chat_client::{Client, Received};
use chat_protocol::{ClientFrame, ServerFrame};
use common::{start_at, start_server, LineClient};

#[tokio::test]
async fn room_messages_direct_messages_and_broadcasts() {
    let srv = start_server().await;
    let home = tempfile::tempdir().unwrap();
    let mut alice = LineClient::guest(
        "alice",
        srv.socket_addr(),
        home.path(),
        &["--join", "#team"],
    );
    alice.expect_line("joined #team alice").await;
    let mut bob = LineClient::guest("bob", srv.socket_addr(), home.path(), &["--join", "team"]);
    bob.expect_line("joined #team alice,bob").await;
    alice.expect_line("join #team bob").await;
    // Carol, a plain protocol client outside the room, sees broadcasts only.
    let mut carol = Client::connect_as(&srv.socket_addr().to_string(), "carol")
        .await
        .unwrap();

    alice.send("hello team, ça va? 日本 🎉").await;
    bob.expect_line("msg #team alice hello team, ça va? 日本 🎉")
        .await;
    alice
        .expect_line("sent #team alice hello team, ça va? 日本 🎉")
        .await;

    bob.send("/msg alice just between us").await;
    alice.expect_line("msg bob bob just between us").await;
    bob.expect_line("sent alice bob just between us").await;

    bob.send("/broadcast lunch is served").await;
    alice.expect_line("msg * bob lunch is served").await;
    let got = carol
        .expect(common::TIMEOUT, |f| {
            matches!(f, Received::Core(ServerFrame::Message(_)))
        })
        .await
        .unwrap();
    let Received::Core(ServerFrame::Message(m)) = got else {
        unreachable!()
    };
    assert_eq!(
        (m.from.as_str(), m.text.as_str()),
        ("bob", "lunch is served")
    );
    let before_pong = carol.sync().await.unwrap();
    assert!(
        !before_pong
            .iter()
            .any(|f| matches!(f, Received::Core(ServerFrame::Message(_)))),
        "carol is not in #team and got no room or direct message: {before_pong:?}"
    );

    // Errors come back in words, in the conversation where they happened.
    alice.send("/msg nobody are you there").await;
    let line = alice
        .expect("an error for the unknown user", |l| {
            l.starts_with("error nobody ")
        })
        .await;
    assert_eq!(
        line,
        "error nobody no_such_user nobody called 'nobody' is connected"
    );

    // End of input quits: the others see it, the process exits cleanly.
    let (status, _) = alice.finish().await;
    assert!(status.success(), "{status}");
    bob.expect("alice's quit", |l| l.starts_with("quit #team alice"))
        .await;
    let (status, _) = bob.finish().await;
    assert!(status.success());
    srv.server.stop().await;
}

#[tokio::test]
async fn lines_wait_for_the_connection_and_multiline_text_stays_on_one_line() {
    let srv = start_server().await;
    let home = tempfile::tempdir().unwrap();
    let mut bob = Client::connect_as(&srv.socket_addr().to_string(), "bob")
        .await
        .unwrap();
    bob.request_ok(&ClientFrame::Join { room: "#x".into() })
        .await
        .unwrap();
    // Everything is written at once, before the client has even connected.
    let mut alice = LineClient::guest("alice", srv.socket_addr(), home.path(), &[]);
    alice.send("/join #x").await;
    alice.send("first").await;
    let (status, seen) = alice.finish().await;
    assert!(status.success());
    assert!(
        seen.contains(&"sent #x alice first".to_string()),
        "{seen:#?}"
    );
    let got = bob
        .expect(common::TIMEOUT, |f| {
            matches!(f, Received::Core(ServerFrame::Message(_)))
        })
        .await
        .unwrap();
    let Received::Core(ServerFrame::Message(m)) = got else {
        unreachable!()
    };
    assert_eq!(m.text, "first");

    // A message with a newline is printed escaped, on one line.
    let mut carol = LineClient::guest("carol", srv.socket_addr(), home.path(), &["--join", "#x"]);
    carol.expect_line("joined #x bob,carol").await;
    bob.request_ok(&ClientFrame::Say {
        room: "#x".into(),
        text: "two\nlines\\".into(),
    })
    .await
    .unwrap();
    carol.expect_line("msg #x bob two\\nlines\\\\").await;
    carol.finish().await;
    srv.server.stop().await;
}

#[tokio::test]
async fn account_commands_explain_that_the_server_has_no_accounts() {
    let srv = start_server().await;
    let home = tempfile::tempdir().unwrap();
    let addr = srv.socket_addr().to_string();
    let mut dave = LineClient::spawn(
        "dave",
        home.path(),
        &["--server", &addr, "--user", "dave", "--join", "#r"],
        &[("CHATD_PASSWORD", "correct horse")],
    );
    let line = dave
        .expect("the login refusal", |l| {
            l.starts_with("error * feature_disabled")
        })
        .await;
    assert!(line.contains("needs the 'auth' plugin"), "{line}");
    dave.expect_line("info * this server has no accounts; continuing as guest guest")
        .await;
    dave.expect("the room", |l| l.starts_with("joined #r "))
        .await;
    dave.send("/register dave").await;
    dave.expect("the register refusal", |l| {
        l.starts_with("error #r feature_disabled 'register' needs")
    })
    .await;
    dave.send("/join #r").await;
    dave.send("/passwd").await;
    dave.expect("the missing new password", |l| {
        l.starts_with("error #r no_password") && l.contains("CHATD_NEW_PASSWORD")
    })
    .await;
    let (_, seen) = dave.finish().await;
    assert!(
        !seen.iter().any(|l| l.contains("nick_required")),
        "rooms wait for the identity: {seen:#?}"
    );
    assert_eq!(
        seen.iter()
            .filter(|l| l.contains("continuing as guest"))
            .count(),
        1,
        "{seen:#?}"
    );
    srv.server.stop().await;
}

#[tokio::test]
async fn reconnects_after_the_server_restarts_and_rejoins_rooms() {
    let srv = common::start_restartable().await;
    let addr = srv.socket_addr();
    let home = tempfile::tempdir().unwrap();
    let mut alice = LineClient::guest("alice", addr, home.path(), &["--join", "#keep"]);
    alice.expect_line("joined #keep alice").await;
    alice.send("/join #also").await;
    alice.expect_line("joined #also alice").await;
    let dir = srv.dir;
    srv.server.stop().await;
    alice
        .expect("the disconnection", |l| {
            l.starts_with("status * disconnected: ")
        })
        .await;

    let srv = start_at(&addr.to_string(), dir, "").await;
    alice
        .expect(&format!("reconnection to {addr}"), |l| {
            l.starts_with("status * connected to ")
        })
        .await;
    alice.expect_line("info * you are now known as alice").await;
    alice.expect_line("joined #keep alice").await;
    alice.expect_line("joined #also alice").await;
    // And it works: a message reaches someone who joined after the restart.
    let mut bob = Client::connect_as(&addr.to_string(), "bob").await.unwrap();
    bob.request_ok(&ClientFrame::Join {
        room: "#also".into(),
    })
    .await
    .unwrap();
    alice.expect_line("join #also bob").await;
    alice.send("/join #also").await;
    alice.send("back again").await;
    let got = tokio::time::timeout(
        Duration::from_secs(15),
        bob.expect(
            common::TIMEOUT,
            |f| matches!(f, Received::Core(ServerFrame::Message(m)) if m.text == "back again"),
        ),
    )
    .await;
    assert!(matches!(got, Ok(Ok(_))), "{got:?}");
    alice.finish().await;
    srv.server.stop().await;
}

#[tokio::test]
async fn connects_over_tls_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) =
        chatd::tls::generate_self_signed(&dir.path().join("certs"), &["localhost".to_string()])
            .unwrap();
    let extra = format!(
        "[tls]\nlisten = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let srv = start_at("127.0.0.1:0", dir, &extra).await;
    let tls_addr = srv.server.tls_addr.unwrap();
    let server = format!("localhost:{}", tls_addr.port());
    let home = tempfile::tempdir().unwrap();
    let ca = cert.display().to_string();
    let mut alice = LineClient::spawn(
        "alice",
        home.path(),
        &[
            "--server", &server, "--nick", "alice", "--ca", &ca, "--join", "#secure",
        ],
        &[],
    );
    alice
        .expect_line(&format!("status * connecting to {server} (TLS)"))
        .await;
    alice
        .expect("a TLS connection", |l| {
            l.starts_with(&format!("status * connected to {server} (chatd "))
                && l.ends_with(", TLS)")
        })
        .await;
    alice.expect_line("joined #secure alice").await;
    alice.finish().await;
    srv.server.stop().await;
}

/// Issue 17 item 13: a bad command's error comes after the replies to the
/// lines before it, and is labelled `*` (it is about no conversation).
#[tokio::test]
async fn a_bad_command_is_answered_in_order_and_labelled_with_the_server_view() {
    let srv = start_server().await;
    let home = tempfile::tempdir().unwrap();
    let mut alice = LineClient::guest(
        "alice",
        srv.socket_addr(),
        home.path(),
        &["--join", "#team"],
    );
    alice.expect_line("joined #team alice").await;
    alice.send("/join #other").await;
    alice.send("/users #team").await;
    alice.send("/frobnicate").await;
    let error = alice.expect("the error", |l| l.starts_with("error ")).await;
    assert_eq!(
        error,
        "error * input unknown command /frobnicate; type /help for the list"
    );
    let before: Vec<&String> = alice.seen.iter().rev().skip(1).collect();
    assert!(
        before.iter().any(|l| l.as_str() == "joined #other alice")
            && before.iter().any(|l| l.starts_with("users #team")),
        "the replies to the earlier lines come first: {:#?}",
        alice.seen
    );
    let (status, _) = alice.finish().await;
    assert!(status.success());
    srv.server.stop().await;
}

/// Issue 17: `--log-dir` logs each conversation to a file of its own, like
/// irssi's autolog.
#[tokio::test]
async fn log_dir_keeps_a_log_file_per_conversation() {
    let srv = start_server().await;
    let home = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log_dir = logs.path().to_str().unwrap();
    let mut alice = LineClient::guest(
        "alice",
        srv.socket_addr(),
        home.path(),
        &["--join", "#team", "--log-dir", log_dir],
    );
    alice.expect_line("joined #team alice").await;
    let mut bob = Client::connect_as(&srv.socket_addr().to_string(), "bob")
        .await
        .unwrap();
    bob.request_ok(&ClientFrame::Join {
        room: "#team".into(),
    })
    .await
    .unwrap();
    bob.request_ok(&ClientFrame::Say {
        room: "#team".into(),
        text: "for the record".into(),
    })
    .await
    .unwrap();
    alice.expect_line("msg #team bob for the record").await;
    bob.request_ok(&ClientFrame::Msg {
        to: "alice".into(),
        text: "just us".into(),
    })
    .await
    .unwrap();
    alice.expect_line("msg bob bob just us").await;
    let (status, _) = alice.finish().await;
    assert!(status.success());

    let server_dir = logs
        .path()
        .join(srv.socket_addr().to_string().replace(':', "_"));
    let team = std::fs::read_to_string(server_dir.join("#team.log")).unwrap();
    let lines: Vec<&str> = team.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(" msg #team bob for the record")),
        "{team}"
    );
    // Each line starts with the local date and time.
    let stamp = lines[0].split(' ').take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(stamp.len(), "2026-12-06 09:14:05".len(), "{team}");
    let direct = std::fs::read_to_string(server_dir.join("bob.log")).unwrap();
    assert!(direct.contains(" msg bob bob just us"), "{direct}");
    assert!(!team.contains("just us"), "{team}");
    srv.server.stop().await;
}
