//! The admin listener against the real server: `/metrics` after a scripted
//! session over TCP, TLS and WebSocket, read with a Prometheus text-format
//! parser; `/healthz`; `/readyz` while the database is there and while it is
//! not; and none of it on the public web listener.

mod common;

use std::net::SocketAddr;

use chat_api::{ClientFrame, ServerFrame};
use chat_client::{Client, ConnectOptions, Received};
use common::{header, http_get, tcp_addr, web_addr, WsClient, WAIT};
use serde_json::json;

/// Cheap hashing so that the logins do not wait on argon2.
const AUTH: &str = "[[plugin]]\nname = \"auth\"\n[plugin.config]\nallow_guests = true\n\
                    [plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n";

/// A server with plaintext, web and admin listeners, history on (so there is
/// a database) and the accounts plugin.
async fn start(extra: &str) -> (chatd::RunningServer, tempfile::TempDir) {
    common::start_server(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[history]\nenabled = true\n{extra}"
    ))
    .await
}

fn admin_addr(server: &chatd::RunningServer) -> SocketAddr {
    server.admin_addr.expect("admin listener enabled")
}

/// One scrape, parsed by a real Prometheus text-format parser.
struct Scrape(prometheus_parse::Scrape);

impl Scrape {
    async fn take(addr: SocketAddr) -> Scrape {
        let (status, headers, body) = http_get(addr, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let lines = body.lines().map(|l| Ok(l.to_string()));
        Scrape(prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text format"))
    }

    /// Scrapes until `done` holds (the server counts a session's end after
    /// the client has seen it), at most [`WAIT`].
    async fn until(addr: SocketAddr, done: impl Fn(&Scrape) -> bool) -> Scrape {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let scrape = Scrape::take(addr).await;
            if done(&scrape) {
                return scrape;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "metrics never got there"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The value of `metric` with exactly these labels (0 if absent).
    fn get(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .samples
            .iter()
            .find(|s| {
                s.metric == metric
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                other => panic!("{metric}: not a number: {other:?}"),
            })
            .unwrap_or(0.0)
    }

    fn has_help(&self, metric: &str) -> bool {
        self.0.docs.contains_key(metric)
    }
}

fn code(r: &Received) -> Option<&str> {
    match r {
        Received::Core(ServerFrame::Error { code, .. }) => Some(code.as_str()),
        _ => None,
    }
}

fn recipients(r: &Received) -> f64 {
    match r {
        Received::Core(ServerFrame::Sent { recipients, .. }) => *recipients as f64,
        other => panic!("expected sent, got {other:?}"),
    }
}

#[tokio::test]
async fn a_scripted_session_shows_in_the_counters() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) =
        chatd::tls::generate_self_signed(certs.path(), &["localhost".into()]).unwrap();
    let tls = format!("[tls]\nlisten = \"127.0.0.1:0\"\ncert = {cert:?}\nkey = {key:?}\n");
    // Chunks of 32 KiB: the file below takes four, the last one partial.
    let files = "[[plugin]]\nname = \"files\"\n";
    let (server, dir) = start(&format!("{tls}{AUTH}{files}")).await;
    let admin = admin_addr(&server);
    let tcp = tcp_addr(&server);

    let mut alice = Client::connect_as(&tcp, "alice").await.unwrap();
    let mut bob = WsClient::connect_as(web_addr(&server), "bob").await;
    for room in ["#ops"] {
        let join = ClientFrame::Join { room: room.into() };
        alice.request_ok(&join).await.unwrap();
        bob.request(json!({"type": "join", "room": room})).await;
    }
    let say = ClientFrame::Say {
        room: "#ops".into(),
        text: "hello ops".into(),
    };
    let room_recipients = recipients(&alice.request_ok(&say).await.unwrap());
    bob.expect(|f| f["type"] == "message" && f["text"] == "hello ops")
        .await;
    let msg = ClientFrame::Msg {
        to: "bob".into(),
        text: "psst".into(),
    };
    let direct_recipients = recipients(&alice.request_ok(&msg).await.unwrap());
    let all = ClientFrame::Broadcast {
        text: "to all".into(),
    };
    let broadcast_recipients = recipients(&alice.request_ok(&all).await.unwrap());
    bob.expect(|f| f["type"] == "message" && f["text"] == "to all")
        .await;

    // A file for bob.
    let file = dir.path().join("notes.bin");
    std::fs::write(&file, vec![7u8; 100_000]).unwrap();
    let to_bob = chat_client::files::Recipient::User("bob".into());
    let uploaded = chat_client::files::upload(&mut alice, &file, &to_bob, |_| {})
        .await
        .unwrap();
    assert_eq!(uploaded.size, 100_000);

    // A line that is not a frame, and a type nobody knows.
    alice.writer.send_raw(b"this is not json\n").await.unwrap();
    let bad = alice
        .expect(WAIT, |f| {
            matches!(f, Received::Core(ServerFrame::Error { .. }))
        })
        .await
        .unwrap();
    assert_eq!(code(&bad), Some("malformed_frame"), "{bad:?}");
    let dance = alice.request_json(&json!({"type": "dance"})).await.unwrap();
    assert_eq!(code(&dance), Some("unknown_type"), "{dance:?}");

    // A failed login over WebSocket, a successful registration over TLS.
    let failed = bob
        .request(json!({"type": "login", "user": "nobody", "password": "not the password"}))
        .await;
    assert_eq!(failed["code"], "auth_failed", "{failed}");
    let over_tls = ConnectOptions {
        tls: true,
        ca: Some(cert.clone()),
        server_name: Some("localhost".into()),
        ..ConnectOptions::default()
    };
    let tls_addr = server.tls_addr.unwrap().to_string();
    let mut carol = Client::connect(&tls_addr, &over_tls).await.unwrap();
    let registered = carol
        .request_json(&json!({"type": "register", "user": "carol", "password": "correct horse"}))
        .await
        .unwrap();
    assert_eq!(code(&registered), None, "{registered:?}");

    let s = Scrape::take(admin).await;
    let tcp_l = [("transport", "tcp")];
    let tls_l = [("transport", "tls")];
    let ws_l = [("transport", "websocket")];
    for transport in [tcp_l, tls_l, ws_l] {
        assert_eq!(s.get("chatd_connections_accepted_total", &transport), 1.0);
        assert_eq!(s.get("chatd_connections_open", &transport), 1.0);
    }
    assert_eq!(s.get("chatd_sessions", &[("state", "named")]), 2.0);
    assert_eq!(s.get("chatd_sessions", &[("state", "logged_in")]), 1.0);
    assert_eq!(s.get("chatd_sessions", &[("state", "greeted")]), 0.0);
    let frames = |t| s.get("chatd_frames_received_total", &[("type", t)]);
    assert_eq!(frames("hello"), 3.0);
    assert_eq!(frames("nick"), 2.0);
    assert_eq!(frames("join"), 2.0);
    assert_eq!(frames("say"), 1.0);
    assert_eq!(frames("msg"), 1.0);
    assert_eq!(frames("broadcast"), 1.0);
    assert_eq!(frames("login"), 1.0);
    assert_eq!(frames("register"), 1.0);
    assert_eq!(frames("invalid"), 1.0);
    assert_eq!(
        frames("other"),
        1.0,
        "the unknown type is not a label of its own"
    );
    let routed = |k| s.get("chatd_messages_routed_total", &[("kind", k)]);
    let deliveries = |k| s.get("chatd_deliveries_total", &[("kind", k)]);
    assert_eq!(
        (routed("room"), routed("direct"), routed("broadcast")),
        (1.0, 1.0, 1.0)
    );
    assert_eq!(deliveries("room"), room_recipients);
    assert_eq!(deliveries("direct"), direct_recipients);
    assert_eq!(deliveries("broadcast"), broadcast_recipients);
    // bob, the only other session in #ops and online at the broadcast.
    assert_eq!(
        (room_recipients, direct_recipients, broadcast_recipients),
        (1.0, 1.0, 1.0)
    );
    let errors = |c| s.get("chatd_errors_sent_total", &[("code", c)]);
    assert_eq!(errors("malformed_frame"), 1.0);
    assert_eq!(errors("unknown_type"), 1.0);
    assert_eq!(errors("auth_failed"), 1.0);
    assert_eq!(
        s.get("chatd_login_failures_total", &[("frame", "login")]),
        1.0
    );
    assert_eq!(s.get("chatd_logins_total", &[("frame", "register")]), 1.0);
    assert_eq!(s.get("chatd_logins_total", &[("frame", "login")]), 0.0);
    // Every frame after hello passed the auth plugin, and each was timed.
    let auth = [("plugin", "auth")];
    let calls = s.get("chatd_plugin_calls_total", &auth);
    assert!(calls >= 10.0, "{calls}");
    assert_eq!(s.get("chatd_plugin_call_seconds_count", &auth), calls);
    // The log writer committed the three messages (each `sent` waited for it).
    let append = [("operation", "append")];
    assert!(s.get("chatd_database_query_seconds_count", &append) >= 1.0);
    assert!(s.get("chatd_database_query_seconds_sum", &append) > 0.0);
    assert_eq!(s.get("chatd_file_upload_bytes_total", &[]), 100_000.0);
    assert_eq!(frames("file_chunk"), 4.0);
    assert!(s.get("process_resident_memory_bytes", &[]) > 1e6);
    assert!(s.get("process_open_fds", &[]) >= 5.0);
    assert!(s.get("process_cpu_seconds_total", &[]) > 0.0);
    assert!(s.has_help("chatd_outbound_queue_fullest_frames"));

    // Leaving: the quit is counted by its code, with its queue's peak.
    alice
        .writer
        .send(None, &ClientFrame::Quit { reason: None })
        .await
        .unwrap();
    // A scrape is not one snapshot: it may read the open connections before
    // the session ends and its disconnect after, so wait for both.
    let s = Scrape::until(admin, |s| {
        s.get("chatd_disconnects_total", &[("code", "quit")]) == 1.0
            && s.get("chatd_connections_open", &tcp_l) == 0.0
    })
    .await;
    assert_eq!(s.get("chatd_connections_open", &tls_l), 1.0);
    assert_eq!(s.get("chatd_connections_accepted_total", &tcp_l), 1.0);
    assert_eq!(s.get("chatd_outbound_queue_peak_frames_count", &[]), 1.0);
    assert!(s.get("chatd_outbound_queue_peak_frames_sum", &[]) >= 1.0);
    server.stop().await;
}

#[tokio::test]
async fn refused_connections_and_failed_tls_handshakes_are_counted() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) =
        chatd::tls::generate_self_signed(certs.path(), &["localhost".into()]).unwrap();
    let (server, _dir) = start(&format!(
        "[tls]\nlisten = \"127.0.0.1:0\"\ncert = {cert:?}\nkey = {key:?}\n\
         [limits]\nmax_connections = 1\n"
    ))
    .await;
    let admin = admin_addr(&server);
    let tcp = tcp_addr(&server);
    let mut first = Client::connect_as(&tcp, "first").await.unwrap();
    let refused = Client::connect(&tcp, &ConnectOptions::default()).await;
    assert!(refused.is_err(), "the second connection was admitted");
    let s = Scrape::until(admin, |s| {
        s.get("chatd_connections_refused_total", &[("listener", "tcp")]) == 1.0
    })
    .await;
    assert_eq!(
        s.get("chatd_connections_accepted_total", &[("transport", "tcp")]),
        1.0
    );
    first
        .writer
        .send(None, &ClientFrame::Quit { reason: None })
        .await
        .unwrap();
    Scrape::until(admin, |s| {
        s.get("chatd_connections_open", &[("transport", "tcp")]) == 0.0
    })
    .await;

    // Plaintext to the TLS port: the handshake fails.
    let mut plain = tokio::net::TcpStream::connect(server.tls_addr.unwrap())
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    plain
        .write_all(b"{\"type\":\"hello\",\"protocol\":1}\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut rest)).await;
    let s = Scrape::until(admin, |s| {
        s.get("chatd_tls_handshake_failures_total", &[("listener", "tls")]) == 1.0
    })
    .await;
    assert_eq!(
        s.get("chatd_connections_accepted_total", &[("transport", "tls")]),
        0.0
    );
    server.stop().await;
}

#[tokio::test]
async fn health_is_ok_and_readiness_fails_while_the_database_is_gone() {
    let (server, dir) = start(AUTH).await;
    let admin = admin_addr(&server);
    let (status, _, body) = http_get(admin, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, body) = http_get(admin, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("ready\n"), "{body}");
    assert!(
        body.contains("database: ok") && body.contains("plugins: ok (1 loaded: [auth])"),
        "{body}"
    );

    // The server's own connections keep the moved file open; readiness
    // asks as a restarted server would, by opening the configured path.
    let db = dir.path().join("data/chatd.db");
    let away = dir.path().join("data/chatd.db.away");
    std::fs::rename(&db, &away).unwrap();
    let (status, _, body) = http_get(admin, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("not ready\n"), "{body}");
    assert!(
        body.contains("database: FAILED: ") && body.contains("chatd.db"),
        "{body}"
    );
    assert!(
        body.contains("listeners: ok") && body.contains("plugins: ok"),
        "{body}"
    );
    // Still alive, and chat goes on meanwhile.
    assert_eq!(http_get(admin, "/healthz").await.0, 200);
    let mut alice = Client::connect_as(&tcp_addr(&server), "alice")
        .await
        .unwrap();
    let ping = ClientFrame::Ping { token: None };
    alice.request_ok(&ping).await.unwrap();

    std::fs::rename(&away, &db).unwrap();
    let (status, _, body) = http_get(admin, "/readyz").await;
    assert_eq!(status, 200, "{body}");

    server.stop().await;
}

#[tokio::test]
async fn the_public_web_listener_serves_none_of_it() {
    let (server, _dir) = start("").await;
    let web = web_addr(&server);
    for path in ["/metrics", "/healthz", "/readyz"] {
        let (status, _, body) = http_get(web, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("chatd_"), "{path}: {body}");
    }
    assert_eq!(http_get(admin_addr(&server), "/metrics").await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn without_admin_listen_there_is_no_admin_listener() {
    let (server, _dir) = common::start_server("").await;
    assert_eq!(server.admin_addr, None);
    server.stop().await;
}
