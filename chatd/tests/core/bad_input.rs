//! Every kind of bad input gets a clear error or a clean disconnect, and
//! the server keeps serving everyone else.

use chat_api::{ClientFrame, ServerFrame};
use chat_client::{Client, ClientError, ConnectOptions, Received};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::*;

/// A raw connection, for bytes no well-behaved client would send.
struct Raw {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Raw {
    async fn connect(addr: &str) -> Raw {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        Raw {
            lines: BufReader::new(r).lines(),
            write: w,
        }
    }
    async fn send(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.unwrap();
    }
    async fn line(&mut self) -> Option<serde_json::Value> {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("a reply in time")
            .ok()??;
        Some(serde_json::from_str(&line).expect("server lines are JSON"))
    }
    async fn greet(addr: &str) -> Raw {
        let mut raw = Raw::connect(addr).await;
        raw.send(b"{\"type\":\"hello\",\"protocol\":1}\n").await;
        assert_eq!(raw.line().await.unwrap()["type"], "welcome");
        raw
    }
    async fn expect_error(&mut self, code: &str) -> serde_json::Value {
        let v = self.line().await.expect("connection still open");
        assert_eq!(
            (v["type"].as_str(), v["code"].as_str()),
            (Some("error"), Some(code)),
            "{v}"
        );
        assert!(!v["message"].as_str().unwrap().is_empty());
        v
    }
    async fn ping_works(&mut self) {
        self.send(b"{\"type\":\"ping\",\"id\":99}\n").await;
        let v = self.line().await.expect("still connected");
        assert_eq!(
            (v["type"].as_str(), v["id"].as_u64()),
            (Some("pong"), Some(99)),
            "{v}"
        );
    }
}

#[tokio::test]
async fn malformed_frames_get_error_frames_and_the_connection_survives() {
    let s = start(|_| {}).await;
    let mut raw = Raw::greet(&s.addr).await;
    raw.send(b"this is not json\n").await;
    raw.expect_error("malformed_frame").await;
    raw.send(b"[1,2,3]\n").await;
    raw.expect_error("malformed_frame").await;
    raw.send(b"{\"no_type\":1,\"id\":4}\n").await;
    assert_eq!(raw.expect_error("malformed_frame").await["id"], 4);
    raw.send(&[0xff, 0xfe, 0x7b, b'\n']).await;
    raw.expect_error("malformed_frame").await;
    raw.send(b"{\"type\":\"teleport\",\"id\":5}\n").await;
    assert_eq!(raw.expect_error("unknown_type").await["id"], 5);
    raw.send(b"{\"type\":\"login\",\"user\":\"a\"}\n").await;
    raw.expect_error("feature_disabled").await;
    raw.send(b"{\"type\":\"join\",\"id\":6}\n").await;
    let e = raw.expect_error("invalid_frame").await;
    assert!(e["message"].as_str().unwrap().contains("room"), "{e}");
    raw.send(b"{\"type\":\"hello\",\"protocol\":1}\n").await;
    raw.expect_error("already_greeted").await;
    raw.send(b"\r\n").await; // blank line: malformed, not fatal
    raw.expect_error("malformed_frame").await;
    raw.ping_works().await;
}

#[tokio::test]
async fn oversized_frames_are_refused_without_buffering_them() {
    let s = start(|c| c.limits.max_frame_bytes = 1024).await;
    let mut raw = Raw::greet(&s.addr).await;
    // 1 MiB without a newline, then the rest of the line: one error.
    let big = vec![b'a'; 1 << 20];
    raw.send(&big).await;
    raw.expect_error("frame_too_large").await;
    raw.send(b"tail of the huge line\n").await;
    raw.ping_works().await;
    // A complete line just over the limit.
    let mut line = format!("{{\"type\":\"ping\",\"token\":\"{}\"}}", "b".repeat(1100)).into_bytes();
    line.push(b'\n');
    raw.send(&line).await;
    raw.expect_error("frame_too_large").await;
    raw.ping_works().await;
}

/// A request too long for the server is refused by the client library at
/// once: the server's `frame_too_large` could not name the request, so a
/// client waiting for the reply would wait forever.
#[tokio::test]
async fn a_request_over_the_servers_limit_fails_at_once_in_the_client() {
    let s = start(|c| c.limits.max_frame_bytes = 1024).await;
    let mut client = Client::connect_as(&s.addr, "alice").await.unwrap();
    let ping = ClientFrame::Ping {
        token: Some(serde_json::json!("b".repeat(1100))),
    };
    let refused = tokio::time::timeout(WAIT, client.request(&ping))
        .await
        .expect("an answer, not a wait for a reply that cannot come");
    assert!(
        matches!(refused, Err(ClientError::FrameTooLarge { limit: 1024, .. })),
        "{refused:?}"
    );
    // Nothing was sent: the connection is as it was.
    let pong = client.request(&ClientFrame::Ping { token: None }).await;
    assert!(
        matches!(pong, Ok(Received::Core(ServerFrame::Pong { .. }))),
        "{pong:?}"
    );
}

#[tokio::test]
async fn actions_in_the_wrong_state_are_explained() {
    let s = start(|_| {}).await;
    let mut raw = Raw::connect(&s.addr).await;
    raw.send(b"{\"type\":\"nick\",\"nick\":\"early\",\"id\":1}\n")
        .await;
    assert_eq!(raw.expect_error("handshake_required").await["id"], 1);
    raw.send(b"{\"type\":\"hello\",\"protocol\":1}\n").await;
    assert_eq!(raw.line().await.unwrap()["type"], "welcome");
    for frame in [
        &b"{\"type\":\"say\",\"room\":\"#a\",\"text\":\"hi\"}\n"[..],
        b"{\"type\":\"msg\",\"to\":\"x\",\"text\":\"hi\"}\n",
        b"{\"type\":\"join\",\"room\":\"#a\"}\n",
        b"{\"type\":\"broadcast\",\"text\":\"hi\"}\n",
    ] {
        raw.send(frame).await;
        raw.expect_error("nick_required").await;
    }
    raw.send(b"{\"type\":\"nick\",\"nick\":\"9lives\"}\n").await;
    raw.expect_error("invalid_nick").await;
    raw.send(b"{\"type\":\"nick\",\"nick\":\"ok_name\"}\n")
        .await;
    assert_eq!(raw.line().await.unwrap()["type"], "ok");
    raw.send(b"{\"type\":\"join\",\"room\":\"no-hash\"}\n")
        .await;
    raw.expect_error("invalid_room").await;
    raw.send(b"{\"type\":\"say\",\"room\":\"#nowhere\",\"text\":\"hi\"}\n")
        .await;
    raw.expect_error("not_in_room").await;
    raw.send(b"{\"type\":\"msg\",\"to\":\"ok_name\",\"text\":\"   \"}\n")
        .await;
    raw.expect_error("invalid_text").await;
    raw.send(b"{\"type\":\"msg\",\"to\":\"ok_name\",\"text\":\"\\u001b[2J\"}\n")
        .await;
    raw.expect_error("invalid_text").await;
}

#[tokio::test]
async fn wrong_protocol_version_and_silent_clients_are_disconnected() {
    let s = start(|c| c.limits.handshake_timeout_ms = 300).await;
    let mut raw = Raw::connect(&s.addr).await;
    raw.send(b"{\"type\":\"hello\",\"protocol\":99}\n").await;
    let v = raw.line().await.unwrap();
    assert_eq!(
        (v["type"].as_str(), v["code"].as_str()),
        (Some("bye"), Some("unsupported_protocol")),
        "{v}"
    );
    assert!(raw.line().await.is_none(), "connection closed after bye");

    let mut silent = Raw::connect(&s.addr).await;
    let v = silent.line().await.unwrap();
    assert_eq!(
        (v["type"].as_str(), v["code"].as_str()),
        (Some("bye"), Some("handshake_timeout")),
        "{v}"
    );
    assert!(silent.line().await.is_none());
}

#[tokio::test]
async fn a_peer_vanishing_mid_frame_disturbs_nobody() {
    let s = start(|_| {}).await;
    let mut alice = client(&s.addr, "alice").await;
    join(&mut alice, "#r").await;
    {
        let mut raw = Raw::greet(&s.addr).await;
        raw.send(b"{\"type\":\"nick\",\"nick\":\"ghost\"}\n{\"type\":\"join\",\"room\":\"#r\"}\n")
            .await;
        assert_eq!(raw.line().await.unwrap()["type"], "ok");
        assert_eq!(raw.line().await.unwrap()["type"], "joined");
        raw.send(b"{\"type\":\"say\",\"room\":\"#r\",\"te").await;
        // dropped here, mid-frame
    }
    let quit = alice
        .expect(WAIT, |f| matches!(f, Received::Core(ServerFrame::Presence(p)) if p.nick == "ghost" && p.event == chat_api::PresenceEvent::Quit))
        .await
        .unwrap();
    drop(quit);
    assert!(
        texts(&alice.sync().await.unwrap()).is_empty(),
        "half a frame was delivered"
    );
    let mut bob = client(&s.addr, "bob").await;
    join(&mut bob, "#r").await;
    request(
        &mut bob,
        ClientFrame::Say {
            room: "#r".into(),
            text: "still here".into(),
        },
    )
    .await;
    expect_text(&mut alice, "still here").await;
    s.server.hub().check_invariants().unwrap();
}

#[tokio::test]
async fn floods_are_rate_limited_with_an_error() {
    let s = start(|c| {
        c.limits.frames_per_second = 5;
        c.limits.frames_burst = 10;
    })
    .await;
    let mut alice = client(&s.addr, "alice").await;
    let mut limited = 0;
    for i in 0..40 {
        let r = request(
            &mut alice,
            ClientFrame::Msg {
                to: "alice".into(),
                text: format!("{i}"),
            },
        )
        .await;
        if let Received::Core(ServerFrame::Error { code, .. }) = &r {
            assert_eq!(code.as_str(), "rate_limited");
            limited += 1;
        }
    }
    assert!(limited >= 25, "only {limited} of 40 frames were limited");
}

#[tokio::test]
async fn connections_beyond_the_limit_are_told_the_server_is_full() {
    let s = start(|c| c.limits.max_connections = 2).await;
    let _a = client(&s.addr, "a").await;
    let _b = client(&s.addr, "b").await;
    match Client::connect(&s.addr, &ConnectOptions::default()).await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code.as_str(), "server_full"),
        Err(ClientError::Closed) => {} // the bye may race with our hello's reset
        other => panic!("expected a refusal, got {:?}", other.map(|c| c.welcome)),
    }
    drop(_a);
    // A slot frees up once a client leaves.
    let server = &s.server;
    wait_until("the slot is released", || server.connection_count() < 2).await;
    let c = Client::connect(&s.addr, &ConnectOptions::default()).await;
    assert!(c.is_ok(), "a freed slot is usable: {:?}", c.err());
}

/// Runs the real binary with a tiny descriptor limit: accepts fail with
/// EMFILE, the server backs off, and the connections it holds keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_keeps_existing_users_served() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "ulimit -n 64 && exec {} --listen 127.0.0.1:0 --web-listen 127.0.0.1:0",
        env!("CARGO_BIN_EXE_chatd")
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("chatd listening on ").nth(1) {
                let _ = tx.send(Some(rest.split_whitespace().next().unwrap().to_string()));
            } else if line.contains("out of file descriptors") {
                let _ = tx.send(None);
            }
        }
    });
    let addr = rx.recv_timeout(WAIT).unwrap().expect("address first");
    let mut alice = client(&addr, "alice").await;
    let mut bob = client(&addr, "bob").await;
    join(&mut alice, "#r").await;
    join(&mut bob, "#r").await;
    // Open far more sockets than the server has descriptors for.
    let mut extra = Vec::new();
    for _ in 0..100 {
        extra.push(TcpStream::connect(&addr).await.unwrap());
    }
    // The server reports the exhaustion...
    let reported = tokio::task::spawn_blocking(move || loop {
        match rx.recv_timeout(WAIT) {
            Ok(None) => return true,
            Ok(Some(_)) => continue,
            Err(_) => return false,
        }
    });
    assert!(reported.await.unwrap(), "EMFILE was not logged");
    // ...and existing users still chat.
    request(
        &mut alice,
        ClientFrame::Say {
            room: "#r".into(),
            text: "still works".into(),
        },
    )
    .await;
    expect_text(&mut bob, "still works").await;
    drop(extra);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || child.wait()))
        .await
        .expect("chatd exits after SIGTERM")
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// One client cannot fill the server with rooms: past
/// `limits.max_rooms_per_session` a `join` is refused and creates nothing;
/// rooms it is already in, and new ones after a `part`, still work.
#[tokio::test]
async fn joins_past_the_room_limit_are_refused_and_create_nothing() {
    let t = start(|c| c.limits.max_rooms_per_session = 2).await;
    let mut ann = client(&t.addr, "ann").await;
    join(&mut ann, "#a").await;
    join(&mut ann, "#b").await;

    let refused = request(&mut ann, ClientFrame::Join { room: "#c".into() }).await;
    assert_eq!(error_code(&refused), "room_limit");
    match request(&mut ann, ClientFrame::Rooms {}).await {
        Received::Core(ServerFrame::Rooms { rooms, .. }) => {
            let names: Vec<_> = rooms.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(names, ["#a", "#b"]);
        }
        other => panic!("expected rooms, got {other:?}"),
    }

    // Joining a room one is already in is not a new room.
    assert_eq!(join(&mut ann, "#a").await, ["ann"]);
    request(&mut ann, ClientFrame::Part { room: "#a".into() }).await;
    assert_eq!(join(&mut ann, "#c").await, ["ann"]);
    t.server.hub().check_invariants().unwrap();
}

/// Many clients together cannot fill the server with rooms either: past
/// `limits.max_rooms` a `join` that would create a room is refused, while
/// existing rooms can still be joined.
#[tokio::test]
async fn rooms_past_the_server_limit_are_not_created() {
    let t = start(|c| c.limits.max_rooms = 2).await;
    let mut ann = client(&t.addr, "ann").await;
    let mut bob = client(&t.addr, "bob").await;
    join(&mut ann, "#a").await;
    join(&mut bob, "#b").await;

    let refused = request(&mut bob, ClientFrame::Join { room: "#c".into() }).await;
    assert_eq!(error_code(&refused), "room_limit");
    assert_eq!(join(&mut bob, "#a").await, ["ann", "bob"]);
    match request(&mut ann, ClientFrame::Rooms {}).await {
        Received::Core(ServerFrame::Rooms { rooms, .. }) => assert_eq!(rooms.len(), 2),
        other => panic!("expected rooms, got {other:?}"),
    }
    t.server.hub().check_invariants().unwrap();
}
