//! Log output as operators' tools see it: no colour codes when stderr is
//! not a terminal, and one JSON object per line with `--log-format json`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Starts chatd with `args` and collects stderr lines until one contains
/// `until`; then stops it.
fn lines_until(args: &[&str], until: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_chatd"))
        .args(["--listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let until = until.to_string();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let done = line.contains(&until);
            seen.push(line);
            if done {
                let _ = tx.send(seen.clone());
            }
        }
    });
    let lines = rx.recv_timeout(WAIT);
    child.kill().unwrap();
    child.wait().unwrap();
    lines.expect("the expected log line")
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let lines = lines_until(&[], "pipeline ready");
    assert!(
        lines.iter().any(|l| l.contains("listening (plaintext)")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains('\u{1b}')),
        "ANSI escape codes in {lines:?}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let lines = lines_until(&["--log-format", "json"], "pipeline ready");
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            value["level"].is_string() && value["fields"].is_object(),
            "{line}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("listening (plaintext)") && l.contains("\"addr\"")),
        "{lines:?}"
    );
}

/// A configuration with history and the accounts plugin (whose background
/// task queries the database from the start) in `dir`, on `listen`.
fn config_with_accounts(dir: &std::path::Path, listen: &str) -> std::path::PathBuf {
    let path = dir.join("chatd.toml");
    let text = format!(
        "[server]\nlisten = \"{listen}\"\ndata_dir = {:?}\n[[plugin]]\nname = \"auth\"\n",
        dir.join("data")
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Log lines at WARN or ERROR level (the plain format's level column).
fn alarms(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(" ERROR ") || l.contains(" WARN "))
        .collect()
}

/// A start refused because the port is taken stops before opening the
/// database or starting a plugin: the operator reads the reason and
/// nothing else, no alarming line before it.
#[test]
fn a_refused_start_opens_nothing_and_logs_only_its_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_accounts(dir.path(), &taken.local_addr().unwrap().to_string());
    let out = Command::new(env!("CARGO_BIN_EXE_chatd"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(!stderr.contains("database ready"), "{stderr}");
    assert!(!dir.path().join("data/chatd.db").exists());
    assert!(alarms(&stderr).is_empty(), "{stderr}");
}

/// Stopped right after it is ready (before its background tasks have run
/// their first queries), the server shuts down in order: no ERROR or WARN
/// line, exit status 0.
#[test]
fn a_server_stopped_at_once_shuts_down_without_alarms() {
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with_accounts(dir.path(), "127.0.0.1:0");
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatd"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        while !seen.contains("pipeline ready") {
            let mut line = String::new();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "{seen}");
            seen.push_str(&line);
        }
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
        assert!(child.wait().unwrap().success(), "{seen}");
        assert!(seen.contains("shut down"), "{seen}");
        assert!(alarms(&seen).is_empty(), "{seen}");
    }
}
