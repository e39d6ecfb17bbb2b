//! Graceful shutdown: queued frames are delivered, clients are told, the
//! process exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use chat_api::{ClientFrame, ServerFrame};
use chat_client::Received;

use crate::common::*;

#[tokio::test]
async fn shutdown_flushes_queued_messages_then_says_bye() {
    let s = start(|_| {}).await;
    let mut alice = client(&s.addr, "alice").await;
    let mut bob = client(&s.addr, "bob").await;
    join(&mut alice, "#r").await;
    join(&mut bob, "#r").await;
    // Bob does not read while Alice's messages are queued for him.
    for i in 0..200 {
        let r = request(
            &mut alice,
            ClientFrame::Say {
                room: "#r".into(),
                text: format!("queued {i}"),
            },
        )
        .await;
        assert!(
            matches!(r, Received::Core(ServerFrame::Sent { recipients: 1, .. })),
            "{r:?}"
        );
    }
    tokio::time::timeout(WAIT, s.server.stop())
        .await
        .expect("shutdown is bounded");
    let frames = read_to_end(&mut bob).await;
    let got = texts(&frames);
    let want: Vec<String> = (0..200).map(|i| format!("queued {i}")).collect();
    assert_eq!(got, want, "queued messages lost at shutdown");
    assert_eq!(bye(&frames).map(|b| b.0).as_deref(), Some("shutting_down"));
    assert!(
        matches!(frames.last(), Some(Received::Core(ServerFrame::Bye { .. }))),
        "bye is last"
    );
}

#[tokio::test]
async fn sigterm_stops_the_process_with_exit_code_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatd"))
        .args(["--listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The bound address is logged at start.
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("chatd listening on ").nth(1) {
                let _ = addr_tx.send(rest.split_whitespace().next().unwrap().to_string());
            }
        }
    });
    let addr = addr_rx.recv_timeout(WAIT).expect("chatd logs its address");
    let mut alice = client(&addr, "alice").await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let frames = read_to_end(&mut alice).await;
    assert_eq!(bye(&frames).map(|b| b.0).as_deref(), Some("shutting_down"));
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "chatd exited with {exit:?}");
    assert!(
        dir.path().join("data").is_dir(),
        "the default data directory is created"
    );
}
