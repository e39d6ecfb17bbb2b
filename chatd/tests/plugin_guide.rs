//! docs/plugins.md, "A plugin from `cargo new` to enabled", run as an author
//! would: every `$ ` command of its `console` blocks, exactly as written,
//! in order, and every file it shows written where it says. Around it, the
//! world the guide assumes: a fresh `HOME`, a working directory outside the
//! workspace with chatd's source at `../chatd`, and the `chatd` just built
//! first on `PATH`. The last command starts chatd; the test waits for its
//! listening line, checks that the plugin answers, and stops it.
//!
//! Every output line the guide shows under a command must be a line the
//! command printed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chat_api::{ClientFrame, ErrorCode, ServerFrame};
use chat_client::{Client, Received};

const TIMEOUT: Duration = Duration::from_secs(20);

/// One step of the walk-through.
#[derive(Debug)]
enum Step {
    /// A command, and the output lines the guide shows for it.
    Run {
        command: String,
        output: Vec<String>,
    },
    /// A file the guide shows (path as written, `~` for `HOME`).
    Write { path: String, text: String },
}

/// The steps of the section, in order.
fn steps(guide: &str) -> Vec<Step> {
    let start = guide
        .find("## A plugin from `cargo new` to enabled")
        .expect("the guide has the section");
    let section = &guide[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut steps = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```") {
        let before = &rest[..open];
        let after = &rest[open + 3..];
        let (language, body) = after.split_once('\n').unwrap();
        let close = body.find("```").expect("the block ends");
        let text = &body[..close];
        rest = &body[close + 3..];
        match language.trim() {
            "console" => {
                for line in text.lines() {
                    if let Some(command) = line.strip_prefix("$ ") {
                        let command = command.split(" #").next().unwrap().trim().to_string();
                        steps.push(Step::Run {
                            command,
                            output: Vec::new(),
                        });
                    } else if let Some(Step::Run { output, .. }) = steps.last_mut() {
                        output.push(line.to_string());
                    }
                }
            }
            _ => {
                // The file is the last `name.toml` or `name.rs` named before
                // the block.
                let path = before
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .filter(|s| s.ends_with(".toml") || s.ends_with(".rs"))
                    .last()
                    .unwrap_or_else(|| panic!("no file named before the block:\n{before}"));
                steps.push(Step::Write {
                    path: path.to_string(),
                    text: text.to_string(),
                });
            }
        }
    }
    steps
}

/// Where rustup and cargo keep their state, kept when `HOME` changes.
fn tool_homes() -> Vec<(&'static str, PathBuf)> {
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
    let var = |name: &str, default: &str| {
        std::env::var_os(name).map_or_else(|| home.join(default), PathBuf::from)
    };
    vec![
        ("CARGO_HOME", var("CARGO_HOME", ".cargo")),
        ("RUSTUP_HOME", var("RUSTUP_HOME", ".rustup")),
    ]
}

#[tokio::test]
async fn the_guide_from_cargo_new_to_enabled_works_as_written() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let guide = std::fs::read_to_string(workspace.join("docs/plugins.md")).unwrap();
    let steps = steps(&guide);
    assert!(steps.len() >= 8, "{steps:?}");

    let world = tempfile::tempdir().unwrap();
    let home = world.path().join("home");
    let work = world.path().join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::os::unix::fs::symlink(workspace, work.join("chatd")).unwrap();
    let chatd_dir = Path::new(env!("CARGO_BIN_EXE_chatd")).parent().unwrap();
    let path = format!("{}:{}", chatd_dir.display(), std::env::var("PATH").unwrap());
    let expand = |p: &str| -> PathBuf {
        match p.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => PathBuf::from(p),
        }
    };

    let mut cwd = work.clone();
    let mut server = None;
    for step in steps {
        match step {
            Step::Write { path, text } => {
                let file = cwd.join(expand(&path));
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, text).unwrap();
            }
            Step::Run { command, .. } if command.starts_with("cd ") => {
                cwd = cwd.join(expand(command[3..].trim()));
                assert!(cwd.is_dir(), "`{command}`: no directory {}", cwd.display());
            }
            Step::Run { command, .. } if command.starts_with("chatd --config") => {
                let mut child = Command::new("sh")
                    .args(["-c", &format!("exec {command}")])
                    .current_dir(&cwd)
                    .env("HOME", &home)
                    .envs(tool_homes())
                    .env("PATH", &path)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("chatd starts");
                let stderr = child.stderr.take().unwrap();
                server = Some((child, stderr));
            }
            Step::Run { command, output } => {
                let ran = Command::new("sh")
                    .args(["-c", &command])
                    .current_dir(&cwd)
                    // The guide's reader builds into the crate's own
                    // `target/`, whatever the tester's environment says.
                    .env_remove("CARGO_TARGET_DIR")
                    .env("HOME", &home)
                    .envs(tool_homes())
                    .env("PATH", &path)
                    .output()
                    .expect("sh can be run");
                let printed = String::from_utf8_lossy(&ran.stdout);
                assert!(
                    ran.status.success(),
                    "`{command}` in {} failed:\n{printed}\n{}",
                    cwd.display(),
                    String::from_utf8_lossy(&ran.stderr)
                );
                for line in &output {
                    assert!(
                        printed.lines().any(|p| p == line),
                        "`{command}` did not print the guide's line {line:?}; it printed:\n{printed}"
                    );
                }
            }
        }
    }

    let (mut child, stderr) = server.expect("the guide starts chatd");
    // Its banner names the port it took (`listen = "127.0.0.1:0"`). The
    // reader drains stderr to the end: a closed pipe would fail chatd's
    // next log line.
    let (found, address) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("chatd listening on ") {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if let Some(found) = found.take() {
                    let _ = found.send(addr);
                }
            }
        }
    });
    let addr = tokio::time::timeout(TIMEOUT, address)
        .await
        .expect("chatd announced its address in time")
        .expect("chatd announced its address");
    let mut alice = Client::connect_as(&addr, "alice").await.unwrap();
    assert!(
        alice.welcome.plugins.contains(&"noshout".to_string()),
        "{:?}",
        alice.welcome.plugins
    );
    alice
        .request_ok(&ClientFrame::Join {
            room: "#lobby".into(),
        })
        .await
        .unwrap();
    let reply = alice
        .request(&ClientFrame::Say {
            room: "#lobby".into(),
            text: "THIS IS FAR TOO LOUD".into(),
        })
        .await
        .unwrap();
    assert!(
        matches!(&reply, Received::Core(ServerFrame::Error { code, message, .. })
            if *code == ErrorCode::REJECTED && message == "please do not write in capitals"),
        "{reply:?}"
    );
    alice
        .request_ok(&ClientFrame::Say {
            room: "#lobby".into(),
            text: "OK LOL".into(),
        })
        .await
        .unwrap();
    // Stop it as an operator would (SIGTERM), and wait for it to exit.
    let stopped = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(stopped.success());
    let exit = tokio::task::spawn_blocking(move || child.wait());
    let status = tokio::time::timeout(TIMEOUT, exit)
        .await
        .expect("chatd stopped")
        .unwrap()
        .unwrap();
    assert!(status.success(), "chatd exited with {status}");
}
