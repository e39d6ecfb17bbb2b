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
