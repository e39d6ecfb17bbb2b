//! Test helpers: a real server on 127.0.0.1:0 with its data in a temp dir,
//! and clients that wait on events (never on sleeps).

use std::time::Duration;

use chat_api::{ClientFrame, ServerFrame};
use chat_client::{Client, Received};
use chatd::{Config, PluginRegistry, RunningServer};

/// Upper bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub server: RunningServer,
    pub addr: String,
    pub _dir: tempfile::TempDir,
}

/// A guest-mode configuration on a free port, flood control off.
pub fn config(dir: &std::path::Path) -> Config {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[limits]\nframes_per_second = 0\n",
        dir.display()
    );
    Config::parse(&text, "test.toml", None).expect("test config parses")
}

pub async fn start_with(tweak: impl FnOnce(&mut Config), registry: PluginRegistry) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    tweak(&mut config);
    let server = chatd::start_with(config, registry)
        .await
        .expect("server starts");
    let addr = server.tcp_addr.unwrap().to_string();
    TestServer {
        server,
        addr,
        _dir: dir,
    }
}

pub async fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
    start_with(tweak, PluginRegistry::builtin()).await
}

pub async fn client(addr: &str, nick: &str) -> Client {
    tokio::time::timeout(WAIT, Client::connect_as(addr, nick))
        .await
        .expect("connect in time")
        .expect("connect")
}

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
    tokio::time::timeout(WAIT, client.request(&frame))
        .await
        .expect("reply in time")
        .expect("reply")
}

/// The error code of an `error` reply.
pub fn error_code(frame: &Received) -> String {
    match frame {
        Received::Core(ServerFrame::Error { code, .. }) => code.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
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
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
