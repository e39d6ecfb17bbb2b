//! Test helpers: a real chatd with the files plugin on 127.0.0.1:0, its data
//! in a temp dir; clients; random files; a proxy that cuts connections.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use chat_api::files::FileInfo;
use chat_api::{ClientFrame, ServerFrame};
use chat_client::{files, Client, Received};
use chatd::{Config, RunningServer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Upper bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestServer {
    pub server: RunningServer,
    pub addr: String,
    /// The server's data directory.
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// The spool directory's transfer files, sorted (not its owner lock).
    pub fn stored(&self) -> Vec<String> {
        stored(self.dir.path())
    }
}

pub fn stored(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join("files"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name != chatd_plugin_files::store::OWNER_LOCK)
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The configuration text: `limits` lines go under `[limits]`, `files`
/// lines under the plugin's config table.
pub fn config_text(data_dir: &Path, limits: &str, files: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[limits]\n{limits}\n[[plugin]]\nname = \"files\"\n[plugin.config]\n{files}\n",
        data_dir.display()
    )
}

/// The accounts plugin ahead of the files plugin: users log in, so a
/// transfer outlives the connection (cheap hashing for tests).
pub const ACCOUNTS: &str =
    "[[plugin]]\nname = \"auth\"\n[plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n";

/// Starts chatd with the accounts and files plugins.
pub async fn start_with_accounts(files: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let server = start_accounts_in(dir.path(), files).await;
    let addr = server.tcp_addr.unwrap().to_string();
    TestServer { server, addr, dir }
}

pub async fn start_accounts_in(data_dir: &Path, files: &str) -> RunningServer {
    let text = format!("{ACCOUNTS}{}", config_text(data_dir, "", files));
    let config = Config::parse(&text, "test.toml", None).expect("test config parses");
    chatd::start(config).await.expect("server starts")
}

/// A new account `name`, logged in (password "password of NAME").
pub async fn register(addr: &str, name: &str) -> Client {
    account_request(addr, "register", name).await
}

/// Logs in to the existing account `name`.
pub async fn log_in(addr: &str, name: &str) -> Client {
    account_request(addr, "login", name).await
}

async fn account_request(addr: &str, kind: &str, name: &str) -> Client {
    let mut c = tokio::time::timeout(WAIT, Client::connect(addr, &Default::default()))
        .await
        .expect("connect in time")
        .expect("connect");
    let frame =
        serde_json::json!({"type": kind, "user": name, "password": format!("password of {name}")});
    let reply = c.request_json(&frame).await.unwrap();
    assert_eq!(reply.kind(), "logged_in", "{kind} {name}: {reply:?}");
    c
}

/// Starts chatd with the files plugin. Flood control stays at its defaults
/// unless `limits` says otherwise: file frames must get through it.
pub async fn start(limits: &str, files: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), limits, files).await;
    let addr = server.tcp_addr.unwrap().to_string();
    TestServer { server, addr, dir }
}

pub async fn start_in(data_dir: &Path, limits: &str, files: &str) -> RunningServer {
    let config = Config::parse(&config_text(data_dir, limits, files), "test.toml", None)
        .expect("test config parses");
    chatd::start(config).await.expect("server starts")
}

pub async fn client(addr: &str, nick: &str) -> Client {
    tokio::time::timeout(WAIT, Client::connect_as(addr, nick))
        .await
        .expect("connect in time")
        .expect("connect")
}

pub async fn join(client: &mut Client, room: &str) {
    let reply = client
        .request_ok(&ClientFrame::Join { room: room.into() })
        .await
        .unwrap();
    assert!(matches!(reply, Received::Core(ServerFrame::Joined { .. })));
}

/// Waits for a frame of type `kind`.
pub async fn expect_kind(client: &mut Client, kind: &str) -> Received {
    client
        .expect(WAIT, |f| f.kind() == kind)
        .await
        .unwrap_or_else(|e| panic!("waiting for {kind}: {e}"))
}

/// Waits for the `file_available` announcing a file.
pub async fn expect_available(client: &mut Client) -> FileInfo {
    files::available(&expect_kind(client, "file_available").await).unwrap()
}

/// Waits until `observer` sees `nick` quit `room` (so the nickname is free).
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

/// Writes `len` random bytes (seeded, so failures reproduce) to a file.
pub fn random_file(dir: &Path, name: &str, len: usize, seed: u64) -> PathBuf {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes);
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    path
}

pub fn same_bytes(a: &Path, b: &Path) {
    let (a_bytes, b_bytes) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert_eq!(
        a_bytes.len(),
        b_bytes.len(),
        "{} vs {}",
        a.display(),
        b.display()
    );
    assert!(
        a_bytes == b_bytes,
        "{} and {} differ",
        a.display(),
        b.display()
    );
}

/// A TCP proxy in front of the server whose connections can be cut, to
/// drop a client's connection in the middle of a transfer.
pub struct CutProxy {
    pub addr: String,
    cut: std::sync::Arc<watch::Sender<bool>>,
}

impl CutProxy {
    pub async fn start(target: &str) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (cut, _) = watch::channel(false);
        let cut = std::sync::Arc::new(cut);
        let cut_rx = cut.subscribe();
        let target = target.to_string();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&target).await.unwrap();
                let mut cut = cut_rx.clone();
                tokio::spawn(async move {
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|c| *c) => {
                            // Dropping both sockets drops the connection
                            // for the client and the server alike.
                        }
                    }
                });
            }
        });
        CutProxy { addr, cut }
    }

    /// Cuts every connection through the proxy (callable from sync code).
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn cutter(&self) -> impl Fn() + Send + Sync + 'static {
        let cut = self.cut.clone();
        move || {
            cut.send_replace(true);
        }
    }
}
