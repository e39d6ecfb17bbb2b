//! Shared test helpers: the workspace's test kit (a real in-process chatd),
//! and `client-tui --line` processes driven through their standard input
//! and output.

#![allow(dead_code)]

pub use chatd_testkit::*;
// The names these helpers had before the kit.
#[allow(unused_imports)]
pub use chatd_testkit::{
    start_at as start_server_at, start_restartable as start_restartable_server,
};

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long any single expected event may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The password of every account the tests register.
pub const PASSWORD: &str = "correct horse battery";

/// Registers `user` (password [`PASSWORD`]) through the protocol; returns
/// the logged-in connection.
pub async fn registered(addr: &str, user: &str) -> chat_client::Client {
    let mut client = chat_client::Client::connect(addr, &Default::default())
        .await
        .unwrap();
    tokio::time::timeout(
        TIMEOUT,
        chat_client::accounts::register(&mut client, user, PASSWORD),
    )
    .await
    .expect("register answered")
    .expect("registers");
    client
}

/// A server with only the plaintext listener, on a free port.
pub async fn start_server() -> TestServer {
    start_at("127.0.0.1:0", tempfile::tempdir().unwrap(), "").await
}

/// A `client-tui --line` process.
pub struct LineClient {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Every line printed so far, for failure messages.
    pub seen: Vec<String>,
}

impl LineClient {
    /// Starts a line-mode client with `args`, `env` and an empty config
    /// directory (so the user's own config file is never read).
    pub fn spawn(
        name: &str,
        config_home: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> LineClient {
        let mut command = Command::new(env!("CARGO_BIN_EXE_client-tui"));
        command
            .arg("--line")
            .args(args)
            .env("XDG_CONFIG_HOME", config_home)
            .env_remove("CHATD_PASSWORD")
            .env_remove("CHATD_NEW_PASSWORD")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("client-tui starts");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        LineClient {
            name: name.to_string(),
            child,
            stdin,
            stdout,
            seen: Vec::new(),
        }
    }

    /// A client logged in to the account `user` (password [`PASSWORD`],
    /// read from `CHATD_PASSWORD` as in real use) on `addr`.
    pub fn logged_in(
        user: &str,
        addr: SocketAddr,
        config_home: &Path,
        extra: &[&str],
    ) -> LineClient {
        let addr = addr.to_string();
        let mut args = vec!["--server", &addr, "--user", user];
        args.extend_from_slice(extra);
        LineClient::spawn(user, config_home, &args, &[("CHATD_PASSWORD", PASSWORD)])
    }

    /// A guest client named `nick` on `addr`.
    pub fn guest(nick: &str, addr: SocketAddr, config_home: &Path, extra: &[&str]) -> LineClient {
        let addr = addr.to_string();
        let mut args = vec!["--server", &addr, "--nick", nick];
        args.extend_from_slice(extra);
        LineClient::spawn(nick, config_home, &args, &[])
    }

    /// Types one line.
    pub async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("input still open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// Waits for a printed line matching `pred` and returns it.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stdout.next_line()).await;
            match next {
                Ok(Ok(Some(line))) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Ok(Ok(None)) => panic!(
                    "{}: output ended before {what}; saw {:#?}",
                    self.name, self.seen
                ),
                Ok(Err(e)) => panic!("{}: reading output: {e}", self.name),
                Err(_) => panic!(
                    "{}: no {what} within {TIMEOUT:?}; saw {:#?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Waits for exactly this line.
    pub async fn expect_line(&mut self, line: &str) {
        self.expect(&format!("{line:?}"), |l| l == line).await;
    }

    /// Closes standard input (end of input means quit) and waits for exit,
    /// collecting the rest of the output.
    pub async fn finish(mut self) -> (ExitStatus, Vec<String>) {
        drop(self.stdin.take());
        let rest = async {
            while let Ok(Some(line)) = self.stdout.next_line().await {
                self.seen.push(line);
            }
            self.child.wait().await.unwrap()
        };
        let status = tokio::time::timeout(TIMEOUT, rest)
            .await
            .unwrap_or_else(|_| panic!("{} did not exit after end of input", self.name));
        (status, self.seen)
    }
}
