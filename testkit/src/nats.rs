//! A real `nats-server` (Debian's package) with JetStream, on a free
//! loopback port, its store in a temporary directory; stopped with its
//! handle. Tests of the cluster start one per test.
//!
//! Without `nats-server` installed, [`TempNats::start`] returns `None` and
//! the test says it skipped; under `CI=true` (`.ci/run` installs it) a
//! missing server is a failure.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::WAIT;

/// A running `nats-server`.
pub struct TempNats {
    child: Option<Child>,
    binary: PathBuf,
    pub port: u16,
    store: tempfile::TempDir,
    /// A configuration file, if the test gave one.
    config: Option<PathBuf>,
}

/// Where `nats-server` is, if installed.
fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

impl TempNats {
    /// Starts a server, or `None` (the caller skips) when none is
    /// installed outside CI.
    pub async fn start() -> Option<TempNats> {
        TempNats::start_with("").await
    }

    /// Starts a server with `config` as its configuration file (e.g.
    /// `max_payload: 4096`); empty for none.
    pub async fn start_with(config: &str) -> Option<TempNats> {
        let Some(binary) = find_binary() else {
            crate::skip_unless_ci("nats-server is not installed (apt-get install nats-server)");
            return None;
        };
        let store = tempfile::tempdir().expect("temp dir for JetStream");
        let config = (!config.is_empty()).then(|| {
            let path = store.path().join("nats.conf");
            std::fs::write(&path, config).expect("write nats.conf");
            path
        });
        let mut nats = TempNats {
            child: None,
            binary,
            port: 0,
            store,
            config,
        };
        // A port found free may be taken by another test before the server
        // binds it: then another one.
        for _ in 0..5 {
            nats.port = free_port();
            if nats.try_launch().await {
                return Some(nats);
            }
        }
        panic!("nats-server did not start on any of 5 free ports");
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the process on this port and store; returns once it says it
    /// is ready.
    async fn launch(&mut self) {
        assert!(
            self.try_launch().await,
            "nats-server on port {} did not become ready",
            self.port
        );
    }

    /// Starts the process; whether it said it is ready (bounded by WAIT).
    async fn try_launch(&mut self) -> bool {
        let mut child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .args(
                self.config
                    .iter()
                    .flat_map(|c| [std::ffi::OsStr::new("-c"), c.as_os_str()]),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
        let ready = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Server is ready") {
                    return true;
                }
            }
            false
        })
        .await;
        if ready != Ok(true) {
            let _ = child.kill().await;
            return false;
        }
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
        true
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same port, with the same store.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.launch().await;
    }
}

impl Drop for TempNats {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
    }
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("bound").port()
}
