//! One server per data directory: a second `chatd` on the same directory
//! refuses to start and names the first; the admin commands keep working
//! beside the running server. Real processes of the real binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Starts a server on `config`; whether it said it listens in time.
fn spawn(
    config: &std::path::Path,
) -> (
    std::process::Child,
    Result<(), std::sync::mpsc::RecvTimeoutError>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatd"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("chatd listening on ") {
                let _ = tx.send(());
            }
        }
    });
    let started = rx.recv_timeout(WAIT);
    (child, started)
}

#[test]
fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chatd.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n",
    )
    .unwrap();
    let chatd = env!("CARGO_BIN_EXE_chatd");
    let (mut first, started) = spawn(&config);
    started.expect("the first server starts");

    let second = Command::new(chatd)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second server ran: {text}");
    assert!(
        text.contains(&format!("another chatd (pid {})", first.id())) && text.contains("data_dir"),
        "{text}"
    );

    // The operator's commands still work beside the running server.
    let list = Command::new(chatd)
        .arg("--config")
        .arg(&config)
        .args(["user", "list"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let purge = Command::new(chatd)
        .arg("--config")
        .arg(&config)
        .args(["history", "purge", "--before", "2000-01-01"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        purge.status.success(),
        "{}",
        String::from_utf8_lossy(&purge.stderr)
    );

    // Once the first is gone (even killed), the directory is free again.
    first.kill().unwrap();
    first.wait().unwrap();
    let (mut third, started) = spawn(&config);
    third.kill().unwrap();
    third.wait().unwrap();
    started.expect("a server starts after the first was killed");
}
