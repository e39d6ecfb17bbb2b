//! Test helpers of the files plugin: the workspace's test kit (a real
//! chatd on 127.0.0.1:0, its data in a temp dir; clients that wait on
//! frames; a proxy that cuts connections) with the files plugin
//! configured; random files.

#![allow(dead_code)]

pub use chatd_testkit::*;

use std::path::{Path, PathBuf};

use chat_api::files::FileInfo;
use chat_client::{files, Client};
use chatd::RunningServer;

/// The transfer files a server's spool holds.
pub trait Spool {
    /// The spool directory's transfer files, sorted (not its owner lock).
    fn stored(&self) -> Vec<String>;
}

impl Spool for TestServer {
    fn stored(&self) -> Vec<String> {
        stored(self.dir.path())
    }
}

/// The transfer files in the spool under `data_dir`, sorted.
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
    start_with_text(&format!("{ACCOUNTS}{}", config_text(data_dir, "", files))).await
}

/// A new account `name`, logged in (password "password of NAME").
pub async fn register(addr: &str, name: &str) -> Client {
    account_client(addr, "register", name).await
}

/// Logs in to the existing account `name`.
pub async fn log_in(addr: &str, name: &str) -> Client {
    account_client(addr, "login", name).await
}

async fn account_client(addr: &str, kind: &str, name: &str) -> Client {
    let mut c = tokio::time::timeout(WAIT, Client::connect(addr, &Default::default()))
        .await
        .expect("connect in time")
        .expect("connect");
    let reply = account_request(&mut c, kind, name, &format!("password of {name}")).await;
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
    start_with_text(&config_text(data_dir, limits, files)).await
}

/// Waits for the `file_available` announcing a file.
pub async fn expect_available(client: &mut Client) -> FileInfo {
    files::available(&expect_kind(client, "file_available").await).unwrap()
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
