//! The real `chatd` binary as a child process: its log lines collected as
//! they come, waited on (bounded) by content, and signals sent to it.
//! The binary is the one cargo built beside the running test (chatd's
//! integration tests have it built first).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use crate::WAIT;

#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    grew: Notify,
}

/// The `chatd` binary cargo built for the running test: in the profile's
/// directory (`target/debug`), above the test's own (`target/debug/deps`).
pub fn chatd_binary() -> PathBuf {
    let test = std::env::current_exe().expect("the test knows its own path");
    let profile = test
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/PROFILE/deps");
    let binary = profile.join(format!("chatd{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "{} is missing: it is built for chatd's own tests (cargo test -p chatd)",
        binary.display()
    );
    binary
}

/// A running `chatd` process.
pub struct Chatd {
    pub child: Child,
    log: Arc<Log>,
}

impl Chatd {
    /// Starts `chatd --config CONFIG`.
    pub fn spawn(config: &Path) -> Chatd {
        let mut command = Command::new(chatd_binary());
        command.arg("--config").arg(config);
        Chatd::spawn_command(command)
    }

    /// Starts a prepared command running chatd, collecting its stderr.
    pub fn spawn_command(mut command: Command) -> Chatd {
        let mut child = command
            .env("RUST_LOG", "info")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chatd starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Log::default());
        let sink = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lines.lock().unwrap().push(line);
                sink.grew.notify_waiters();
            }
        });
        Chatd { child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("chatd is running")
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lines.lock().unwrap().join("\n")
    }

    /// Waits for the `nth` (from 1) log line containing `text`; panics with
    /// the log after [`WAIT`].
    pub async fn wait_for_nth(&self, text: &str, nth: usize) -> String {
        self.wait_until(&format!("{text:?} (#{nth})"), |l| l.contains(text), nth)
            .await
    }

    /// Waits for the `nth` log line matching `pred`.
    async fn wait_until(&self, what: &str, pred: impl Fn(&str) -> bool, nth: usize) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let grew = self.log.grew.notified();
            tokio::pin!(grew);
            grew.as_mut().enable();
            if let Some(line) = self
                .log
                .lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| pred(l))
                .nth(nth - 1)
            {
                return line.clone();
            }
            if tokio::time::timeout_at(deadline, grew).await.is_err() {
                panic!("chatd did not log {what} in time; its log:\n{}", self.log());
            }
        }
    }

    /// Waits for the first log line containing `text`.
    pub async fn wait_for(&self, text: &str) -> String {
        self.wait_for_nth(text, 1).await
    }

    /// The address printed in `chatd listening on ADDR (WHAT)`.
    pub async fn address(&self, what: &str) -> String {
        const BANNER: &str = "chatd listening on ";
        let tail = format!(" ({what})");
        let line = self
            .wait_until(
                &format!("{BANNER}ADDR{tail}"),
                |l| l.starts_with(BANNER) && l.contains(&tail),
                1,
            )
            .await;
        line[BANNER.len()..].split(' ').next().unwrap().to_string()
    }

    /// The address of the web app printed as `chatd web app: open
    /// SCHEME://ADDR/ in a browser`.
    pub async fn web_address(&self) -> String {
        const BANNER: &str = "chatd web app: open ";
        let line = self.wait_for(BANNER).await;
        let url = line[BANNER.len()..].split(' ').next().unwrap();
        url.split("://")
            .nth(1)
            .unwrap()
            .trim_end_matches('/')
            .to_string()
    }

    /// Sends `signal` (`libc::SIGHUP`, ...) to the process.
    pub fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.pid()).unwrap();
        // SAFETY: kill(2) with plain integers.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "cannot signal chatd");
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("chatd stops in time")
            .unwrap();
        assert!(status.success(), "chatd exited with {status}");
    }
}

/// Runs `chatd --config CONFIG ARGS` to completion with `stdin` as its
/// input (a password, say): success and stdout + stderr.
pub fn chatd_cli(config: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = std::process::Command::new(chatd_binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs `chatd ARGS` in `dir` to completion: success and stdout + stderr.
pub async fn chatd(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(chatd_binary())
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
