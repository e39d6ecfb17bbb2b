//! A real chatd in the test's process, on free loopback ports, its data in
//! a temporary directory that lives as long as the server's handle.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chat_client::{Client, ConnectOptions};
use chatd::{Config, PluginRegistry, RunningServer};

use crate::WAIT;

/// The accounts plugin with cheap password hashing (tests must not wait on
/// argon2 at its real cost); `[[plugin]]` table to put in a configuration.
pub const AUTH_PLUGIN: &str = "[[plugin]]\nname = \"auth\"\n[plugin.config]\nwatch_interval_ms = 50\n[plugin.config.argon2]\nmemory_kib = 1024\niterations = 1\n";

/// A running server, its plaintext address and its data directory.
pub struct TestServer {
    pub server: RunningServer,
    /// The plaintext listener, `HOST:PORT`.
    pub addr: String,
    /// Holds the data directory (and whatever else the test put there).
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// The plaintext listener's address.
    pub fn socket_addr(&self) -> SocketAddr {
        self.server.tcp_addr.expect("plaintext listener enabled")
    }

    /// Checks the hub's invariants and stops the server gracefully.
    pub async fn stop(self) {
        self.server.hub().check_invariants().unwrap();
        self.server.stop().await;
    }
}

/// A guest-mode configuration on a free port, data in `dir`, flood control
/// off.
pub fn config(dir: &Path) -> Config {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[limits]\nframes_per_second = 0\n",
        dir.display()
    );
    Config::parse(&text, "test.toml", None).expect("test config parses")
}

/// Starts [`config`] changed by `tweak`, with the plugins of `registry`.
pub async fn start_with(tweak: impl FnOnce(&mut Config), registry: PluginRegistry) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    tweak(&mut config);
    let server = chatd::start_with(config, registry)
        .await
        .expect("server starts");
    let addr = server.tcp_addr.unwrap().to_string();
    TestServer { server, addr, dir }
}

/// Starts [`config`] changed by `tweak`, with the built-in plugins.
pub async fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
    start_with(tweak, PluginRegistry::builtin()).await
}

/// Starts chatd from configuration `text` (which names its own data
/// directory).
pub async fn start_with_text(text: &str) -> RunningServer {
    start_with_registry(text, PluginRegistry::builtin()).await
}

/// Starts chatd from configuration `text` with the plugins of `registry`.
pub async fn start_with_registry(text: &str, registry: PluginRegistry) -> RunningServer {
    let config = Config::parse(text, "test.toml", None).expect("test config is valid");
    chatd::start_with(config, registry)
        .await
        .expect("server starts")
}

/// A server with plaintext and web listeners on free loopback ports, its
/// data in a temporary directory. `extra` is appended to the config text.
pub async fn start_server(extra: &str) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {data:?}\n[web]\nlisten = \"127.0.0.1:0\"\n{extra}",
        data = dir.path().join("data"),
    );
    let server = start_with_text(&text).await;
    (server, dir)
}

/// Starts chatd on `listen` (`127.0.0.1:0` for a free port), its data in
/// `dir`/data, with `extra` TOML appended to the config.
pub async fn start_at(listen: &str, dir: tempfile::TempDir, extra: &str) -> TestServer {
    let text = format!(
        "[server]\nlisten = \"{listen}\"\ndata_dir = \"{}\"\n{extra}",
        dir.path().join("data").display()
    );
    let server = start_with_text(&text).await;
    let addr = server.tcp_addr.expect("plaintext listener").to_string();
    TestServer { server, addr, dir }
}

/// Starts chatd on a port below the kernel's ephemeral range (32768 and up
/// on Linux), so that it can be restarted on the same port without another
/// test's port-0 listener or outgoing connection taking it in between.
/// Ports that are busy are skipped.
pub async fn start_restartable() -> TestServer {
    let first = 20_000 + (std::process::id() % 10_000) as u16;
    for port in (first..32_000).take(200) {
        let text = format!("[server]\nlisten = \"127.0.0.1:{port}\"\n");
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::parse(&text, "test", None).unwrap();
        config.server.data_dir = dir.path().join("data");
        match chatd::start(config).await {
            Ok(server) => {
                let addr = server.tcp_addr.expect("plaintext listener").to_string();
                return TestServer { server, addr, dir };
            }
            Err(chatd::StartError::Bind { .. }) => continue,
            Err(e) => panic!("server does not start: {e}"),
        }
    }
    panic!("no free port found below 32000")
}

/// The web listener's address.
pub fn web_addr(server: &RunningServer) -> SocketAddr {
    server.web_addr.expect("web listener enabled")
}

/// The plaintext listener's address, `HOST:PORT`.
pub fn tcp_addr(server: &RunningServer) -> String {
    server
        .tcp_addr
        .expect("plaintext listener enabled")
        .to_string()
}

/// A data directory with a `chatd.toml` in it (data in `data/`), for tests
/// that restart the server on the same data or run the `chatd` CLI beside
/// it.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl Setup {
    /// A configuration listening on a free port; `rest` follows the
    /// `[server]` table (more of it, then other tables and plugins).
    pub fn new(rest: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("chatd.toml");
        let text = format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n{rest}");
        std::fs::write(&config_path, text).unwrap();
        Setup { dir, config_path }
    }

    /// The configuration, read from its file.
    pub fn config(&self) -> Config {
        Config::load(&self.config_path).unwrap()
    }

    /// The shared SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("data/chatd.db")
    }

    /// Starts a server on this configuration.
    pub async fn start(&self) -> Server {
        let server = chatd::start(self.config()).await.expect("server starts");
        let addr = server.tcp_addr.unwrap().to_string();
        Server { server, addr }
    }
}

/// A server started from a [`Setup`] (which keeps the data).
pub struct Server {
    pub server: RunningServer,
    pub addr: String,
}

impl Server {
    /// A new connection after `welcome`, with no nickname yet.
    pub async fn connect(&self) -> Client {
        tokio::time::timeout(
            WAIT,
            Box::pin(Client::connect(&self.addr, &ConnectOptions::default())),
        )
        .await
        .expect("connect in time")
        .expect("connect")
    }

    /// Checks the hub's invariants and stops the server gracefully.
    pub async fn stop(self) {
        self.server.hub().check_invariants().unwrap();
        self.server.stop().await;
    }
}
