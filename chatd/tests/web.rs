//! The WebSocket transport and the web listener, against the real server:
//! WebSocket and TCP users share rooms, direct messages and broadcasts; bad
//! input gets the documented errors; origins are checked; the app is served
//! with its Content-Security-Policy.

mod common;

use chat_api::{ClientFrame, MessageKind, ServerFrame};
use chat_client::Client;
use chat_client::Received;
use common::{
    header, http_exchange, http_get, http_request, start_server, tcp_addr, web_addr, WsClient,
    WsConnectError, WAIT,
};
use serde_json::{json, Value};

fn is_message(text: &str) -> impl Fn(&Received) -> bool + '_ {
    move |f| matches!(f, Received::Core(ServerFrame::Message(m)) if m.text == text)
}

#[tokio::test]
async fn websocket_and_tcp_users_share_rooms_direct_messages_and_broadcasts() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\n[[plugin]]\nname = \"probe\"\n",
        dir.path().join("data")
    );
    let server = common::start_with_registry(&config, common::registry_with_probe()).await;
    let web = web_addr(&server);
    let mut ann = WsClient::connect_as(web, "ann").await;
    assert_eq!(ann.welcome["protocol"], 1);
    let probe = ann.request(json!({"type": "probe"})).await;
    assert_eq!(
        (&probe["transport"], &probe["encrypted"]),
        (&json!("web_socket"), &json!(false)),
        "{probe}"
    );
    let mut bob = Client::connect_as(&tcp_addr(&server), "bob").await.unwrap();

    let joined = ann.request(json!({"type": "join", "room": "#lobby"})).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    bob.request_ok(&ClientFrame::Join {
        room: "#lobby".into(),
    })
    .await
    .unwrap();
    let presence = ann
        .expect(|f| f["type"] == "presence" && f["event"] == "join")
        .await;
    assert_eq!(presence["nick"], "bob");

    // Room messages, both ways.
    let sent = ann
        .request(json!({"type": "say", "room": "#lobby", "text": "hello from the browser"}))
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");
    assert_eq!(sent["recipients"], 1);
    let got = bob
        .expect(WAIT, is_message("hello from the browser"))
        .await
        .unwrap();
    let Received::Core(ServerFrame::Message(m)) = got else {
        unreachable!()
    };
    assert_eq!(
        (m.kind, m.from.as_str(), m.room.as_deref()),
        (MessageKind::Room, "ann", Some("#lobby"))
    );

    bob.request_ok(&ClientFrame::Say {
        room: "#lobby".into(),
        text: "hello from the terminal".into(),
    })
    .await
    .unwrap();
    let m = ann.expect(|f| f["type"] == "message").await;
    assert_eq!(
        (&m["kind"], &m["from"], &m["room"], &m["text"]),
        (
            &json!("room"),
            &json!("bob"),
            &json!("#lobby"),
            &json!("hello from the terminal")
        )
    );

    // Direct messages, both ways.
    let sent = ann
        .request(json!({"type": "msg", "to": "bob", "text": "psst, bob"}))
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");
    let got = bob.expect(WAIT, is_message("psst, bob")).await.unwrap();
    let Received::Core(ServerFrame::Message(m)) = got else {
        unreachable!()
    };
    assert_eq!(
        (m.kind, m.to.as_deref()),
        (MessageKind::Direct, Some("bob"))
    );
    bob.request_ok(&ClientFrame::Msg {
        to: "ann".into(),
        text: "psst, ann".into(),
    })
    .await
    .unwrap();
    let m = ann
        .expect(|f| f["type"] == "message" && f["kind"] == "direct")
        .await;
    assert_eq!(
        (&m["from"], &m["text"]),
        (&json!("bob"), &json!("psst, ann"))
    );

    // Broadcasts, both ways.
    let sent = ann
        .request(json!({"type": "broadcast", "text": "to all, from the web"}))
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");
    let got = bob
        .expect(WAIT, is_message("to all, from the web"))
        .await
        .unwrap();
    let Received::Core(ServerFrame::Message(m)) = got else {
        unreachable!()
    };
    assert_eq!(m.kind, MessageKind::Broadcast);
    bob.request_ok(&ClientFrame::Broadcast {
        text: "to all, from the terminal".into(),
    })
    .await
    .unwrap();
    let m = ann
        .expect(|f| f["type"] == "message" && f["kind"] == "broadcast")
        .await;
    assert_eq!(m["text"], "to all, from the terminal");

    // Nobody got their own messages back, and nothing else is pending.
    let rest = ann.sync().await;
    assert!(rest.iter().all(|f| f["type"] != "message"), "{rest:?}");
    let rest = bob.sync().await.unwrap();
    assert!(rest.iter().all(|f| f.kind() != "message"), "{rest:?}");

    // Leaving the WebSocket is seen as a quit by the TCP user.
    ann.send(json!({"type": "quit"})).await;
    let bye = ann.until_closed().await;
    assert!(
        bye.iter()
            .any(|f| f["type"] == "bye" && f["code"] == "quit"),
        "{bye:?}"
    );
    bob.expect(WAIT, |f| {
        matches!(f, Received::Core(ServerFrame::Presence(p))
            if p.nick == "ann" && p.event == chat_api::PresenceEvent::Quit)
    })
    .await
    .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn oversized_message_gets_frame_too_large_then_bye() {
    let (server, _dir) = start_server("[limits]\nmax_frame_bytes = 1024\n").await;
    let web = web_addr(&server);
    let mut ann = WsClient::connect_as(web, "ann").await;
    assert_eq!(ann.welcome["max_frame_bytes"], 1024);

    // At the limit is fine.
    let text = "x".repeat(1024 - r#"{"type":"ping","token":""}"#.len());
    ann.send_text(format!(r#"{{"type":"ping","token":"{text}"}}"#))
        .await;
    let pong = ann.expect(|f| f["type"] == "pong").await;
    assert_eq!(pong["token"].as_str().unwrap().len(), text.len());

    // One byte more is refused before it is buffered.
    let text = "x".repeat(1024);
    ann.send_text(format!(r##"{{"type":"say","room":"#a","text":"{text}"}}"##))
        .await;
    let frames = ann.until_closed().await;
    let kinds: Vec<(&Value, &Value)> = frames.iter().map(|f| (&f["type"], &f["code"])).collect();
    assert_eq!(
        kinds,
        [
            (&json!("error"), &json!("frame_too_large")),
            (&json!("bye"), &json!("frame_too_large"))
        ],
        "{frames:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn malformed_and_binary_messages_get_errors_and_the_session_goes_on() {
    let (server, _dir) = start_server("").await;
    let mut ann = WsClient::connect_as(web_addr(&server), "ann").await;

    ann.send_text("this is not json".into()).await;
    let e = ann.expect(|f| f["type"] == "error").await;
    assert_eq!(e["code"], "malformed_frame", "{e}");

    ann.send_binary(br#"{"type":"rooms"}"#.to_vec()).await;
    let e = ann.expect(|f| f["type"] == "error").await;
    assert_eq!(e["code"], "malformed_frame", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("text message"),
        "{e}"
    );

    let e = ann.request(json!({"type": "say", "room": "#a"})).await;
    assert_eq!(e["code"], "invalid_frame", "{e}");
    let e = ann.request(json!({"type": "teleport"})).await;
    assert_eq!(e["code"], "unknown_type", "{e}");

    // Still connected and served.
    let rooms = ann.request(json!({"type": "rooms"})).await;
    assert_eq!(rooms["type"], "rooms");
    server.stop().await;
}

#[tokio::test]
async fn frames_before_hello_are_refused_and_silence_times_out() {
    let (server, _dir) = start_server("[limits]\nhandshake_timeout_ms = 300\n").await;
    let mut ws = WsClient::open(web_addr(&server), None).await.unwrap();
    ws.send(json!({"type": "join", "room": "#a", "id": 1}))
        .await;
    let e = ws.expect(|f| f["type"] == "error").await;
    assert_eq!(e["code"], "handshake_required", "{e}");
    let frames = ws.until_closed().await;
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "bye" && f["code"] == "handshake_timeout"),
        "{frames:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn foreign_origins_are_refused_own_and_configured_ones_accepted() {
    let (server, _dir) = start_server("allowed_origins = [\"https://chat.example.org\"]\n").await;
    let web = web_addr(&server);

    match WsClient::open(web, Some("http://evil.example")).await {
        Err(WsConnectError::Refused { status, body }) => {
            assert_eq!(status, 403);
            assert!(
                body.contains("http://evil.example") && body.contains("allowed_origins"),
                "{body}"
            );
        }
        other => panic!("expected 403, got {:?}", other.map(|_| "a connection")),
    }
    // A look-alike of the own origin on another port is foreign too.
    let other_port = format!("http://127.0.0.1:{}", web.port().wrapping_add(1));
    assert!(matches!(
        WsClient::open(web, Some(&other_port)).await,
        Err(WsConnectError::Refused { status: 403, .. })
    ));

    for origin in [
        format!("http://{web}"),
        "https://chat.example.org".to_string(),
    ] {
        let mut ws = WsClient::open(web, Some(&origin))
            .await
            .unwrap_or_else(|e| panic!("{origin}: {e:?}"));
        ws.send(json!({"type": "hello", "protocol": 1})).await;
        ws.expect(|f| f["type"] == "welcome").await;
    }
    server.stop().await;
}

#[tokio::test]
async fn the_app_is_served_with_a_content_security_policy() {
    let (server, _dir) = start_server("").await;
    let web = web_addr(&server);

    let (status, headers, body) = http_get(web, "/").await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type")
        .unwrap()
        .starts_with("text/html"));
    let csp = header(&headers, "content-security-policy").expect("CSP header");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    assert!(
        body.contains(r#"<script type="module" src="/js/main.js">"#),
        "{body}"
    );
    // No inline script for the policy to block.
    assert_eq!(body.matches("<script").count(), 1);

    let (status, headers, body) = http_get(web, "/js/main.js").await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(body.contains("import"), "{body}");

    let (status, _, body) = http_get(web, "/../../etc/passwd").await;
    assert_eq!(status, 404, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn websocket_sessions_count_towards_max_connections() {
    let (server, _dir) = start_server("[limits]\nmax_connections = 1\n").await;
    let web = web_addr(&server);
    let mut first = WsClient::connect(web).await;
    match WsClient::open(web, None).await {
        Err(WsConnectError::Refused { status, body }) => {
            assert_eq!(status, 503);
            assert!(body.contains("maximum of 1 connections"), "{body}");
        }
        other => panic!("expected 503, got {:?}", other.map(|_| "a connection")),
    }
    // Plain page requests are connections too.
    let (status, _, body) = http_get(web, "/").await;
    assert_eq!(status, 503, "{body}");
    first.sync().await;
    server.stop().await;
}

#[tokio::test]
async fn shutdown_says_bye_to_websocket_clients() {
    let (server, _dir) = start_server("").await;
    let mut ann = WsClient::connect_as(web_addr(&server), "ann").await;
    ann.sync().await;
    server.shutdown();
    let frames = ann.until_closed().await;
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "bye" && f["code"] == "shutting_down"),
        "{frames:?}"
    );
    server.wait().await;
}

#[tokio::test]
async fn web_listener_serves_wss_with_the_tls_certificate() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let certs = tempfile::tempdir().unwrap();
    let (cert, key) =
        chatd::tls::generate_self_signed(certs.path(), &["localhost".to_string()]).unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\ntls = true\n\
         [tls]\ncert = {cert:?}\nkey = {key:?}\n[[plugin]]\nname = \"probe\"\n",
        certs.path().join("data")
    );
    let server = common::start_with_registry(&text, common::registry_with_probe()).await;
    assert!(server.web_tls);
    let web = web_addr(&server);

    let mut ws = wss_connect(web, &cert).await;
    ws.send(Message::Text(r#"{"type":"hello","protocol":1}"#.into()))
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let welcome: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(welcome["type"], "welcome");
    // Plugins learn that this WebSocket is encrypted (e.g. to allow logins).
    ws.send(Message::Text(r#"{"type":"probe","id":1}"#.into()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let probe: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(
        (&probe["transport"], &probe["encrypted"]),
        (&json!("web_socket"), &json!(true)),
        "{probe}"
    );

    // Plain WebSocket on the HTTPS port gets nowhere.
    assert!(WsClient::open(web, None).await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn a_websocket_client_that_does_not_read_is_disconnected_as_a_slow_consumer() {
    let (server, _dir) =
        start_server("[limits]\noutbound_queue = 8\nframes_per_second = 0\n").await;
    let mut slow = WsClient::connect_as(web_addr(&server), "slow").await;
    slow.request(json!({"type": "join", "room": "#flood"}))
        .await;
    let mut sender = Client::connect_as(&tcp_addr(&server), "sender")
        .await
        .unwrap();
    sender
        .request_ok(&ClientFrame::Join {
            room: "#flood".into(),
        })
        .await
        .unwrap();

    // Large messages fill the socket buffers, then the queue of 8.
    let text = "y".repeat(60_000);
    let mut disconnected = None;
    for _ in 0..2_000 {
        sender
            .request_ok(&ClientFrame::Say {
                room: "#flood".into(),
                text: text.clone(),
            })
            .await
            .unwrap();
        let frames = sender.sync().await.unwrap();
        disconnected = frames.into_iter().find_map(|f| match f {
            Received::Core(ServerFrame::Presence(p)) if p.nick == "slow" => Some(p),
            _ => None,
        });
        if disconnected.is_some() {
            break;
        }
    }
    let presence = disconnected.expect("the slow reader is disconnected");
    assert!(
        presence
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("waiting for you to read"),
        "{presence:?}"
    );
    // The sender was never held up, and the server still serves it.
    sender.request_ok(&ClientFrame::Rooms {}).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn the_chatd_command_prints_the_address_to_open() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut chatd = tokio::process::Command::new(env!("CARGO_BIN_EXE_chatd"))
        .args(["--listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chatd starts");
    let mut lines = BufReader::new(chatd.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split_once("web app: open ").map(|(_, r)| r) {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
        panic!("chatd exited without printing the web address");
    })
    .await
    .expect("the address is printed at start");
    let addr: std::net::SocketAddr = url
        .strip_prefix("http://")
        .and_then(|u| u.strip_suffix('/'))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not an http://ADDR/ URL: {url}"));
    assert_ne!(addr.port(), 0);
    let (status, _, body) = http_get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("<title>chatd</title>"));
    chatd.kill().await.unwrap();
}

type WssStream =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Opens `wss://localhost:PORT/ws`, trusting `cert`.
async fn wss_connect(web: std::net::SocketAddr, cert: &std::path::Path) -> WssStream {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(chatd::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(web).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the web listener");
    let url = format!("wss://localhost:{}/ws", web.port());
    let (ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("WSS upgrade");
    ws
}

/// Sends one frame over a WSS connection and returns the next frame.
async fn wss_exchange(ws: &mut WssStream, frame: Value) -> Value {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    serde_json::from_str(reply.to_text().unwrap()).unwrap()
}

#[tokio::test]
async fn passwords_are_accepted_over_wss_when_the_server_requires_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) =
        chatd::tls::generate_self_signed(dir.path(), &["localhost".to_string()]).unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\ntls = true\n\
         [tls]\ncert = {cert:?}\nkey = {key:?}\n\
         [[plugin]]\nname = \"auth\"\n[plugin.config]\nallow_plaintext = false\n\
         [plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n",
        dir.path().join("data")
    );
    let server = common::start_with_text(&text).await;

    // Plaintext TCP: refused.
    let mut tcp = Client::connect(&tcp_addr(&server), &Default::default())
        .await
        .unwrap();
    let reply = tcp
        .request_json(&json!({"type": "register", "user": "ann", "password": "correct horse"}))
        .await
        .unwrap();
    assert!(
        matches!(&reply, Received::Core(ServerFrame::Error { code, .. }) if code.as_str() == "tls_required"),
        "{reply:?}"
    );

    // The same over WSS: the plugin sees an encrypted session.
    let mut ws = wss_connect(web_addr(&server), &cert).await;
    let welcome = wss_exchange(&mut ws, json!({"type": "hello", "protocol": 1})).await;
    assert_eq!(welcome["auth_required"], true, "{welcome}");
    let reply = wss_exchange(
        &mut ws,
        json!({"type": "register", "id": 1, "user": "ann", "password": "correct horse"}),
    )
    .await;
    assert_eq!(
        (&reply["type"], &reply["user"]),
        (&json!("logged_in"), &json!("ann")),
        "{reply}"
    );
    server.stop().await;
}

/// A token-shaped value (43 base64url characters).
const TOKEN: &str = "4nM0abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0";

/// The attributes of a `Set-Cookie` value after `name=value`, as written.
fn cookie_attributes(set_cookie: &str) -> Vec<String> {
    let mut attributes: Vec<String> = set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_string())
        .collect();
    attributes.sort();
    attributes
}

#[tokio::test]
async fn post_session_sets_an_http_only_cookie_and_delete_clears_it() {
    let (server, _dir) = start_server("allowed_origins = [\"https://chat.example.org\"]\n").await;
    let web = web_addr(&server);
    let own = format!("http://{web}");

    // What the app does: a same-origin POST with the token as text.
    let (status, headers, _) = http_request(
        web,
        "POST",
        "/session",
        &[
            ("Origin", &own),
            ("Content-Type", "text/plain;charset=UTF-8"),
        ],
        TOKEN,
    )
    .await;
    assert_eq!(status, 204);
    let set = header(&headers, "set-cookie").expect("Set-Cookie");
    assert!(set.starts_with(&format!("chatd_resume={TOKEN};")), "{set}");
    let attributes = cookie_attributes(set);
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=2592000"] {
        assert!(attributes.iter().any(|a| a == wanted), "{wanted} in {set}");
    }
    assert!(
        !attributes.iter().any(|a| a == "Secure"),
        "plain HTTP: {set}"
    );
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    // Requests without Origin (not from a page) and configured origins too.
    for origin in [None, Some("https://chat.example.org")] {
        let extra: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        let (status, _, _) = http_request(web, "POST", "/session", &extra, TOKEN).await;
        assert_eq!(status, 204, "{origin:?}");
    }

    // A foreign page may neither set nor clear it.
    for method in ["POST", "DELETE"] {
        let (status, headers, body) = http_request(
            web,
            method,
            "/session",
            &[("Origin", "http://evil.example")],
            TOKEN,
        )
        .await;
        assert_eq!(status, 403, "{method}: {body}");
        assert!(header(&headers, "set-cookie").is_none(), "{method}");
        assert!(
            body.contains("http://evil.example") && body.contains("allowed_origins"),
            "{body}"
        );
    }
    let other_port = format!("http://127.0.0.1:{}", web.port().wrapping_add(1));
    let (status, _, _) =
        http_request(web, "POST", "/session", &[("Origin", &other_port)], TOKEN).await;
    assert_eq!(status, 403);

    // Anything but a token is refused.
    for body in [
        "",
        "short",
        &format!("{TOKEN}x"),
        &TOKEN.replace('_', "/"),
        "chatd_resume=x; Path=/",
    ] {
        let (status, headers, _) =
            http_request(web, "POST", "/session", &[("Origin", &own)], body).await;
        assert_eq!(status, 400, "{body:?}");
        assert!(header(&headers, "set-cookie").is_none(), "{body:?}");
    }

    // Logging out clears it.
    let (status, headers, _) =
        http_request(web, "DELETE", "/session", &[("Origin", &own)], "").await;
    assert_eq!(status, 204);
    let set = header(&headers, "set-cookie").expect("Set-Cookie");
    assert!(set.starts_with("chatd_resume=;"), "{set}");
    let attributes = cookie_attributes(set);
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=0"] {
        assert!(attributes.iter().any(|a| a == wanted), "{wanted} in {set}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_session_cookie_is_secure_on_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) =
        chatd::tls::generate_self_signed(dir.path(), &["localhost".to_string()]).unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\ntls = true\n\
         [tls]\ncert = {cert:?}\nkey = {key:?}\n",
        dir.path().join("data")
    );
    let server = common::start_with_text(&text).await;
    let web = web_addr(&server);
    let origin = format!("https://localhost:{}", web.port());
    let host = format!("localhost:{}", web.port());
    for (method, body, value) in [("POST", TOKEN, TOKEN), ("DELETE", "", "")] {
        let tls = tls_connect(web, &cert).await;
        let (status, headers, _) =
            http_exchange(tls, &host, method, "/session", &[("Origin", &origin)], body).await;
        assert_eq!(status, 204, "{method}");
        let set = header(&headers, "set-cookie").expect("Set-Cookie");
        assert!(set.starts_with(&format!("chatd_resume={value};")), "{set}");
        let attributes = cookie_attributes(set);
        for wanted in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(attributes.iter().any(|a| a == wanted), "{wanted} in {set}");
        }
    }
    // The plaintext origin of the same host is another origin.
    let tls = tls_connect(web, &cert).await;
    let plain = format!("http://localhost:{}", web.port());
    let (status, _, _) =
        http_exchange(tls, &host, "POST", "/session", &[("Origin", &plain)], TOKEN).await;
    assert_eq!(status, 403);
    server.stop().await;
}

/// A TLS connection to the web listener as `localhost`, trusting `cert`.
async fn tls_connect(
    web: std::net::SocketAddr,
    cert: &std::path::Path,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(chatd::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(web).await.unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the web listener")
}

/// The cookie carries the login to a new WebSocket: `resume` without
/// `token` uses it; without the cookie the same frame gets `invalid_token`.
#[tokio::test]
async fn a_websocket_with_the_session_cookie_resumes_without_a_token() {
    let (server, _dir) = start_server(
        "[[plugin]]\nname = \"auth\"\n[plugin.config]\nregistration = \"open\"\n\
         [plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n",
    )
    .await;
    let web = web_addr(&server);
    let own = format!("http://{web}");

    let mut first = WsClient::open_with(web, &[("Origin", &own)]).await.unwrap();
    first.send(json!({"type": "hello", "protocol": 1})).await;
    first.expect(|f| f["type"] == "welcome").await;
    let logged_in = first
        .request(json!({"type": "register", "user": "ann", "password": "correct horse battery"}))
        .await;
    assert_eq!(logged_in["type"], "logged_in", "{logged_in}");
    let token = logged_in["resume_token"]
        .as_str()
        .expect("resume_token")
        .to_string();
    let joined = first
        .request(json!({"type": "join", "room": "#lobby"}))
        .await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let sent = first
        .request(json!({"type": "say", "room": "#lobby", "text": "before the reload"}))
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");

    // The app hands the token to the server and forgets it.
    let (status, headers, _) =
        http_request(web, "POST", "/session", &[("Origin", &own)], &token).await;
    assert_eq!(status, 204);
    let cookie = header(&headers, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();

    // A reload: a new WebSocket with the cookie, `resume` without token.
    let mut second = WsClient::open_with(web, &[("Origin", &own), ("Cookie", &cookie)])
        .await
        .unwrap();
    second.send(json!({"type": "hello", "protocol": 1})).await;
    second.expect(|f| f["type"] == "welcome").await;
    let resumed = second.request(json!({"type": "resume"})).await;
    assert_eq!(
        (&resumed["type"], &resumed["user"], &resumed["resumed"]),
        (&json!("logged_in"), &json!("ann"), &json!(true)),
        "{resumed}"
    );
    let rejoined = second
        .expect(|f| f["type"] == "joined" && f["room"] == "#lobby")
        .await;
    assert!(rejoined.get("id").is_none(), "{rejoined}");
    second.expect(|f| f["type"] == "unread").await;
    let history = second
        .request(json!({"type": "history", "room": "#lobby"}))
        .await;
    assert_eq!(
        history["messages"][0]["text"], "before the reload",
        "{history}"
    );

    // Without the cookie the same frame is refused.
    let mut third = WsClient::open_with(web, &[("Origin", &own)]).await.unwrap();
    third.send(json!({"type": "hello", "protocol": 1})).await;
    third.expect(|f| f["type"] == "welcome").await;
    let refused = third.request(json!({"type": "resume"})).await;
    assert_eq!(
        (&refused["type"], &refused["code"]),
        (&json!("error"), &json!("invalid_token")),
        "{refused}"
    );
    server.stop().await;
}

/// DNS rebinding: a page on a domain that resolves to the server names that
/// domain in `Host`; only IP addresses, `localhost` and the configured
/// `[web] server_names` are served, the rest gets 421 (the app, `/session`
/// and the WebSocket alike).
#[tokio::test]
async fn requests_for_other_host_names_are_misdirected() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_with_text(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\nserver_names = [\"chat.example.org\"]\n",
        dir.path().join("data")
    ))
    .await;
    let addr = web_addr(&server);
    let port = addr.port();
    for (host, expected) in [
        (format!("127.0.0.1:{port}"), 200),
        (format!("localhost:{port}"), 200),
        (format!("[::1]:{port}"), 200),
        ("chat.example.org".to_string(), 200),
        (format!("Chat.Example.org.:{port}"), 200),
        (format!("rebound.attacker.example:{port}"), 421),
        ("example.org".to_string(), 421),
    ] {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (status, _, body) = common::http_exchange(stream, &host, "GET", "/", &[], "").await;
        assert_eq!(status, expected, "Host: {host}: {body}");
        if expected == 421 {
            assert!(body.contains("server_names"), "{body}");
        }
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (status, _, _) = common::http_exchange(
            stream,
            &host,
            "GET",
            "/ws",
            &[
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            "",
        )
        .await;
        assert_eq!(
            status == 421,
            expected == 421,
            "/ws with Host: {host}: {status}"
        );
    }
    server.stop().await;
}

/// Opens a WebSocket by hand (no library to tidy up what we send) and
/// returns the stream after the 101 response.
async fn raw_websocket(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// A masked client frame.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut out = vec![first, 0x80 | payload.len() as u8];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Reads server frames until the close frame: the text messages and the
/// close code.
async fn until_close(stream: &mut tokio::net::TcpStream) -> (Vec<String>, Option<u16>) {
    use tokio::io::AsyncReadExt;
    let mut texts = Vec::new();
    let read = async {
        loop {
            let mut head = [0u8; 2];
            if stream.read_exact(&mut head).await.is_err() {
                return None;
            }
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut ext = [0u8; 2];
                stream.read_exact(&mut ext).await.ok()?;
                len = u64::from(u16::from_be_bytes(ext));
            } else if len == 127 {
                let mut ext = [0u8; 8];
                stream.read_exact(&mut ext).await.ok()?;
                len = u64::from_be_bytes(ext);
            }
            let mut payload = vec![0u8; len as usize];
            stream.read_exact(&mut payload).await.ok()?;
            match head[0] & 0x0f {
                0x1 => texts.push(String::from_utf8(payload).unwrap()),
                0x8 => return Some(u16::from_be_bytes([payload[0], payload[1]])),
                _ => {}
            }
        }
    };
    let code = tokio::time::timeout(WAIT, read)
        .await
        .expect("the server closes");
    (texts, code)
}

/// RFC 6455 violations end the session with the close code the RFC gives
/// them and a `bye` that names the cause, and the room hears why rather
/// than a `quit` the user never sent.
#[tokio::test]
async fn websocket_protocol_errors_get_the_rfc_close_codes() {
    use tokio::io::AsyncWriteExt;
    let (server, _dir) = start_server("").await;
    let addr = web_addr(&server);
    let hello = br#"{"type":"hello","protocol":1}"#;
    let cases: [(&str, Vec<u8>, &str, u16); 4] = [
        (
            "invalid UTF-8",
            client_frame(0x81, &[0xff, 0xfe]),
            "malformed_frame",
            1007,
        ),
        (
            "an unmasked frame",
            vec![0x81, 0x02, b'h', b'i'],
            "protocol_error",
            1002,
        ),
        (
            "reserved bits",
            client_frame(0x81 | 0x40, b"{}"),
            "protocol_error",
            1002,
        ),
        (
            "a reserved opcode",
            client_frame(0x83, b"x"),
            "protocol_error",
            1002,
        ),
    ];
    for (what, bytes, code, close) in cases {
        let mut stream = raw_websocket(addr).await;
        stream.write_all(&client_frame(0x81, hello)).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        let (texts, close_code) = until_close(&mut stream).await;
        let bye = texts
            .last()
            .map(|t| serde_json::from_str::<Value>(t).unwrap());
        assert_eq!(
            bye.as_ref().and_then(|b| b["code"].as_str()),
            Some(code),
            "{what}: {texts:?}"
        );
        assert_eq!(close_code, Some(close), "{what}");
    }
    server.stop().await;
}

/// Arbitrary bytes after the WebSocket handshake (with or without a valid
/// `hello` first): the server never hangs on them and never falls over;
/// the connection ends, and the next client is served as usual.
#[test]
fn arbitrary_websocket_bytes_end_only_their_own_connection() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (server, _dir) = runtime.block_on(start_server(""));
    let addr = web_addr(&server);
    let hello = br#"{"type":"hello","protocol":1}"#;
    let mut runner = TestRunner::new(Config::with_cases(64));
    let bytes = (
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
    );
    runner
        .run(&bytes, |(bytes, greet)| {
            runtime.block_on(async {
                let mut stream = raw_websocket(addr).await;
                if greet {
                    stream.write_all(&client_frame(0x81, hello)).await.unwrap();
                }
                // The peer may already have closed: a failed write is fine.
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                let mut sink = Vec::new();
                let ended = tokio::time::timeout(WAIT, stream.read_to_end(&mut sink)).await;
                assert!(ended.is_ok(), "the server did not end the connection");
            });
            Ok(())
        })
        .unwrap();
    runtime.block_on(async {
        let mut c = WsClient::connect_as(addr, "afterwards").await;
        let reply = c.request(json!({"type": "ping"})).await;
        assert_eq!(reply["type"], "pong");
        server.stop().await;
    });
}

/// chat-client's WebSocket transport (what `chat-bench --websocket` uses),
/// plain and over TLS: frames go both ways with a TCP user, line for line.
#[tokio::test]
async fn the_client_library_speaks_the_websocket_transport_plain_and_over_tls() {
    for tls in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) =
            chatd::tls::generate_self_signed(dir.path(), &["localhost".to_string()]).unwrap();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\ntls = {tls}\n\
             [tls]\ncert = {cert:?}\nkey = {key:?}\n",
            dir.path().join("data")
        );
        let server = common::start_with_registry(&text, chatd::PluginRegistry::builtin()).await;
        let options = chat_client::ConnectOptions {
            websocket: true,
            tls,
            ca: tls.then(|| cert.clone()),
            server_name: Some("localhost".into()),
            ..Default::default()
        };
        let mut ann = Client::connect(&web_addr(&server).to_string(), &options)
            .await
            .unwrap();
        ann.request_ok(&ClientFrame::Nick { nick: "ann".into() })
            .await
            .unwrap();
        ann.request_ok(&ClientFrame::Join {
            room: "#lobby".into(),
        })
        .await
        .unwrap();
        let mut bob = Client::connect_as(&tcp_addr(&server), "bob").await.unwrap();
        bob.request_ok(&ClientFrame::Join {
            room: "#lobby".into(),
        })
        .await
        .unwrap();
        let say = |text: &str| ClientFrame::Say {
            room: "#lobby".into(),
            text: text.into(),
        };
        ann.request(&say("over the web socket")).await.unwrap();
        bob.expect(WAIT, is_message("over the web socket"))
            .await
            .unwrap();
        bob.request(&say("and back")).await.unwrap();
        ann.expect(WAIT, is_message("and back")).await.unwrap();
        server.stop().await;
    }
}

/// Pings are answered with the same payload, and a message split into
/// fragments arrives whole, though the server has answered a ping between
/// them and the rest comes a byte at a time: the server lets go of the
/// WebSocket engine only between messages, never with a message half read
/// or a pong unsent.
#[tokio::test]
async fn pings_are_answered_and_fragmented_messages_arrive_whole() {
    use tokio::io::AsyncWriteExt;
    let (server, _dir) = start_server("").await;
    let mut stream = raw_websocket(web_addr(&server)).await;
    let hello = br#"{"type":"hello","protocol":1}"#;
    let (first, rest) = hello.split_at(10);
    let mut bytes = client_frame(0x01, first);
    bytes.extend(client_frame(0x89, b"are you there"));
    stream.write_all(&bytes).await.unwrap();
    let pong = read_server_frames(&mut stream, 1).await;
    assert_eq!(pong, [(0x8a, b"are you there".to_vec())]);
    let mut bytes = client_frame(0x80, rest);
    bytes.extend(client_frame(0x89, b"still there"));
    for byte in bytes {
        stream.write_all(&[byte]).await.unwrap();
    }
    let frames = read_server_frames(&mut stream, 2).await;
    assert_eq!(
        frames,
        [(0x81, frames[0].1.clone()), (0x8a, b"still there".to_vec())],
        "{frames:?}"
    );
    let welcome: Value = serde_json::from_slice(&frames[0].1).unwrap();
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    server.stop().await;
}

/// The next `count` frames the server sends: first byte (FIN and opcode)
/// and payload.
async fn read_server_frames(
    stream: &mut tokio::net::TcpStream,
    count: usize,
) -> Vec<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut frames = Vec::new();
        while frames.len() < count {
            let mut head = [0u8; 2];
            stream.read_exact(&mut head).await.unwrap();
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut ext = [0u8; 2];
                stream.read_exact(&mut ext).await.unwrap();
                len = u64::from(u16::from_be_bytes(ext));
            }
            let mut payload = vec![0u8; len as usize];
            stream.read_exact(&mut payload).await.unwrap();
            frames.push((head[0], payload));
        }
        frames
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the server's frames did not arrive")
}

/// A ping that arrives while the server is part way through writing a
/// batch of large messages (the client is not reading) is answered between
/// whole frames: every frame the client then reads is well formed, every
/// message arrives, and the pong comes once.
#[tokio::test]
async fn a_pong_owed_in_the_middle_of_a_large_batch_goes_out_between_whole_frames() {
    use tokio::io::AsyncWriteExt;
    let (server, _dir) = start_server("[limits]\nframes_per_second = 0\n").await;
    let mut stream = raw_websocket(web_addr(&server)).await;
    for frame in [
        json!({"type": "hello", "protocol": 1}),
        json!({"type": "nick", "nick": "reader"}),
        json!({"type": "join", "room": "#big"}),
    ] {
        let text = frame.to_string();
        stream
            .write_all(&client_frame(0x81, text.as_bytes()))
            .await
            .unwrap();
    }
    // welcome, ok, joined
    read_server_frames(&mut stream, 3).await;
    let mut sender = Client::connect_as(&tcp_addr(&server), "sender")
        .await
        .unwrap();
    sender
        .request_ok(&ClientFrame::Join {
            room: "#big".into(),
        })
        .await
        .unwrap();
    // More than loopback's socket buffers hold, less than the reader's queue.
    let messages = 100;
    for i in 0..messages {
        sender
            .request_ok(&ClientFrame::Say {
                room: "#big".into(),
                text: format!("{i:03}{}", "z".repeat(60_000)),
            })
            .await
            .unwrap();
    }
    stream
        .write_all(&client_frame(0x89, b"mid-batch"))
        .await
        .unwrap();
    let mut texts = 0;
    let mut pongs = 0;
    while texts < messages {
        let (first, payload) = read_server_frames(&mut stream, 1).await.remove(0);
        match first {
            0x81 => {
                let frame: Value = serde_json::from_slice(&payload).expect("a whole JSON frame");
                if frame["type"] == "presence" {
                    continue; // the sender joining
                }
                assert_eq!(frame["type"], "message", "{frame}");
                let text = frame["text"].as_str().unwrap();
                assert_eq!(text[..3].parse::<usize>().unwrap(), texts);
                texts += 1;
            }
            0x8a => {
                assert_eq!(payload, b"mid-batch");
                pongs += 1;
            }
            other => panic!("unexpected frame {other:#x}"),
        }
    }
    if pongs == 0 {
        let (first, payload) = read_server_frames(&mut stream, 1).await.remove(0);
        assert_eq!((first, payload.as_slice()), (0x8a, &b"mid-batch"[..]));
    }
    server.stop().await;
}
