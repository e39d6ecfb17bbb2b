//! Running chatd as a service, with the real binary: `--version`, the
//! systemd notification protocol (readiness, watchdog, reload, stop) on a
//! real datagram socket, and backup / restore beside a running server.

use std::path::Path;
use std::time::Duration;

use chat_api::{ClientFrame, ServerFrame};
use chat_client::{Client, ConnectOptions, Received};
use chatd_testkit::process::{chatd, Chatd};
use chatd_testkit::WAIT;
use tokio::net::UnixDatagram;

#[tokio::test]
async fn version_names_the_release_and_the_source_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = chatd(&["--version"], dir.path()).await;
    assert!(ok, "{out}");
    let revision = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    assert_eq!(
        out.trim(),
        format!("chatd {} ({revision})", env!("CARGO_PKG_VERSION"))
    );
}

/// The next notification datagram, as text.
async fn notification(socket: &UnixDatagram) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, socket.recv(&mut buf))
        .await
        .expect("a notification in time")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).trim_end().to_string()
}

#[tokio::test]
async fn systemd_hears_ready_once_listening_then_watchdog_reload_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chatd.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[history]\nenabled = false\n",
    )
    .unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    // systemd names the pid the watchdog is for; the shell's pid is
    // chatd's once it execs.
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg("WATCHDOG_PID=$$; export WATCHDOG_PID; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_chatd"))
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "300000");
    let server = Chatd::spawn_command(command);

    let ready = notification(&socket).await;
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    let status = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS=listening on "))
        .unwrap_or_else(|| panic!("no status line: {ready}"));
    let addr = status.split(' ').next().unwrap();
    // Ready means accepting: connect at once, no retry.
    let mut client = Client::connect(addr, &ConnectOptions::default())
        .await
        .expect("the listener accepts when READY=1 arrives");
    client
        .request_ok(&ClientFrame::Nick { nick: "sd".into() })
        .await
        .unwrap();

    // The watchdog is pinged at half its 300 ms interval.
    for _ in 0..2 {
        let ping = notification(&socket).await;
        assert_eq!(ping, "WATCHDOG=1", "expected only watchdog pings");
    }
    server.signal(libc::SIGHUP);
    let reloading = loop {
        let n = notification(&socket).await;
        if n != "WATCHDOG=1" {
            break n;
        }
    };
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    let again = loop {
        let n = notification(&socket).await;
        if n != "WATCHDOG=1" {
            break n;
        }
    };
    assert!(again.starts_with("READY=1"), "{again}");

    server.signal(libc::SIGTERM);
    let stopping = loop {
        let n = notification(&socket).await;
        if n != "WATCHDOG=1" {
            break n;
        }
    };
    assert_eq!(stopping, "STOPPING=1");
    let mut server = server;
    let status = tokio::time::timeout(WAIT, server.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

const ACCOUNTS: &str = "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
    [[plugin]]\nname = \"auth\"\n[plugin.config]\nregistration = \"open\"\nallow_plaintext = true\n";

async fn login(addr: &str, user: &str) -> Client {
    let mut client = Client::connect(addr, &ConnectOptions::default())
        .await
        .unwrap();
    chat_client::accounts::login(&mut client, user, "correct horse")
        .await
        .unwrap_or_else(|e| panic!("login as {user}: {e}"));
    client
}

async fn room_history(client: &mut Client, room: &str) -> Vec<String> {
    let page = chat_client::history::history(
        client,
        &chat_client::history::Target::Room(room.into()),
        chat_client::history::Cursor::Latest,
        Some(200),
    )
    .await
    .unwrap();
    page.messages.into_iter().map(|m| m.text).collect()
}

fn write_config(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("chatd.toml");
    std::fs::write(&config, ACCOUNTS).unwrap();
    config
}

#[tokio::test]
async fn a_backup_taken_while_clients_write_restores_accounts_and_history() {
    let live = tempfile::tempdir().unwrap();
    let config = write_config(live.path());
    let server = Chatd::spawn(&config);
    let addr = server.address("plaintext").await;
    let mut alice = Client::connect(&addr, &ConnectOptions::default())
        .await
        .unwrap();
    chat_client::accounts::register(&mut alice, "alice", "correct horse")
        .await
        .unwrap();
    alice
        .request_ok(&ClientFrame::Join {
            room: "#team".into(),
        })
        .await
        .unwrap();
    // `say` is answered once the message is committed.
    for i in 0..20 {
        alice
            .request_ok(&ClientFrame::Say {
                room: "#team".into(),
                text: format!("before the backup {i}"),
            })
            .await
            .unwrap();
    }

    // Alice keeps writing while the backup runs.
    let writer = tokio::spawn(async move {
        for i in 0..100 {
            alice
                .request_ok(&ClientFrame::Say {
                    room: "#team".into(),
                    text: format!("during the backup {i}"),
                })
                .await
                .unwrap();
        }
        alice
    });
    let backup = live.path().join("snapshot.db");
    let (ok, out) = chatd(
        &[
            "--config",
            "chatd.toml",
            "backup",
            "--out",
            backup.to_str().unwrap(),
        ],
        live.path(),
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("backed up"), "{out}");
    let _alice = writer.await.unwrap();
    // An existing file is kept unless --force.
    let (ok, out) = chatd(
        &[
            "--config",
            "chatd.toml",
            "backup",
            "--out",
            backup.to_str().unwrap(),
        ],
        live.path(),
    )
    .await;
    assert!(!ok && out.contains("--force"), "{out}");
    server.stop().await;

    // A stopped server elsewhere, with a database of its own.
    let restored = tempfile::tempdir().unwrap();
    let config = write_config(restored.path());
    let other = Chatd::spawn(&config);
    other.address("plaintext").await;
    // Refused while that server runs.
    let from = [
        "--config",
        "chatd.toml",
        "restore",
        "--from",
        backup.to_str().unwrap(),
    ];
    let (ok, out) = chatd(&from, restored.path()).await;
    assert!(
        !ok && out.contains(&format!("pid {}", other.pid())) && out.contains("stop it first"),
        "{out}"
    );
    other.stop().await;
    // Not a database: refused, nothing moved.
    let junk = restored.path().join("junk.db");
    std::fs::write(&junk, "not sqlite at all, just some bytes").unwrap();
    let (ok, out) = chatd(
        &[
            "--config",
            "chatd.toml",
            "restore",
            "--from",
            junk.to_str().unwrap(),
        ],
        restored.path(),
    )
    .await;
    assert!(!ok && out.contains("is not a chatd database"), "{out}");
    let (ok, out) = chatd(&from, restored.path()).await;
    assert!(ok, "{out}");
    assert!(restored
        .path()
        .join("data/chatd.db.before-restore")
        .exists());

    let server = Chatd::spawn(&config);
    let addr = server.address("plaintext").await;
    let mut alice = login(&addr, "alice").await;
    alice
        .request_ok(&ClientFrame::Join {
            room: "#team".into(),
        })
        .await
        .unwrap();
    let texts = room_history(&mut alice, "#team").await;
    for i in 0..20 {
        let text = format!("before the backup {i}");
        assert!(texts.contains(&text), "{text} missing from {texts:?}");
    }
    // A consistent snapshot: what it holds of the writes during the
    // backup is a prefix of them, with no gaps.
    let during: Vec<&String> = texts.iter().filter(|t| t.starts_with("during")).collect();
    for (i, text) in during.iter().enumerate() {
        assert_eq!(**text, format!("during the backup {i}"));
    }
    // Messages are delivered live too after the restore.
    let mut bob = Client::connect(&addr, &ConnectOptions::default())
        .await
        .unwrap();
    chat_client::accounts::register(&mut bob, "bob", "correct horse")
        .await
        .unwrap();
    bob.request_ok(&ClientFrame::Join {
        room: "#team".into(),
    })
    .await
    .unwrap();
    alice
        .request_ok(&ClientFrame::Say {
            room: "#team".into(),
            text: "restored".into(),
        })
        .await
        .unwrap();
    bob.expect(
        Duration::from_secs(10),
        |f| matches!(f, Received::Core(ServerFrame::Message(m)) if m.text == "restored"),
    )
    .await
    .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_restore_over_a_crashed_server_keeps_its_last_commits_aside() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut server = Chatd::spawn(&config);
    let addr = server.address("plaintext").await;
    let mut alice = Client::connect(&addr, &ConnectOptions::default())
        .await
        .unwrap();
    chat_client::accounts::register(&mut alice, "alice", "correct horse")
        .await
        .unwrap();
    let say = |text: &'static str| ClientFrame::Say {
        room: "#team".into(),
        text: text.into(),
    };
    alice
        .request_ok(&ClientFrame::Join {
            room: "#team".into(),
        })
        .await
        .unwrap();
    alice.request_ok(&say("in the backup")).await.unwrap();
    let (ok, out) = chatd(
        &["--config", "chatd.toml", "backup", "--out", "backup.db"],
        dir.path(),
    )
    .await;
    assert!(ok, "{out}");
    alice.request_ok(&say("after the backup")).await.unwrap();
    // A crash: the write-ahead log is left holding the last commits.
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    let data = dir.path().join("data");
    assert!(data.join("chatd.db-wal").exists());

    let (ok, out) = chatd(
        &["--config", "chatd.toml", "restore", "--from", "backup.db"],
        dir.path(),
    )
    .await;
    assert!(ok, "{out}");
    // Nothing of the crashed server's write-ahead log can be replayed into
    // the restored file; its last commits stay with the replaced database
    // (restore reads that database's id reservation, which applies the log).
    assert!(!data.join("chatd.db-wal").exists());
    let kept: Vec<u8> = ["chatd.db.before-restore", "chatd.db-wal.before-restore"]
        .iter()
        .filter_map(|f| std::fs::read(data.join(f)).ok())
        .flatten()
        .collect();
    assert!(kept.windows(16).any(|w| w == b"after the backup"));
    // A second restore keeps the first one's copy rather than overwrite it.
    let (ok, out) = chatd(
        &["--config", "chatd.toml", "restore", "--from", "backup.db"],
        dir.path(),
    )
    .await;
    assert!(!ok && out.contains("move it away first"), "{out}");

    let server = Chatd::spawn(&config);
    let addr = server.address("plaintext").await;
    let mut alice = login(&addr, "alice").await;
    alice
        .request_ok(&ClientFrame::Join {
            room: "#team".into(),
        })
        .await
        .unwrap();
    assert_eq!(room_history(&mut alice, "#team").await, ["in the backup"]);
    server.stop().await;
}

/// Registers (first time) or logs in as alice, joins #team and says
/// `text`; returns its message id.
async fn say_as_alice(addr: &str, register: bool, text: &str) -> u64 {
    let mut alice = if register {
        let mut c = Client::connect(addr, &ConnectOptions::default())
            .await
            .unwrap();
        chat_client::accounts::register(&mut c, "alice", "correct horse")
            .await
            .unwrap();
        c
    } else {
        login(addr, "alice").await
    };
    alice
        .request_ok(&ClientFrame::Join {
            room: "#team".into(),
        })
        .await
        .unwrap();
    let reply = alice
        .request_ok(&ClientFrame::Say {
            room: "#team".into(),
            text: text.into(),
        })
        .await
        .unwrap();
    match reply {
        Received::Core(ServerFrame::Sent { msg_id, .. }) => msg_id,
        other => panic!("expected sent, got {other:?}"),
    }
}

/// Message ids that reached clients after a backup was taken are never
/// handed out again after restoring it: over the same data directory (the
/// replaced database says how far ids went) and into an empty one (ids
/// jump far ahead).
#[tokio::test]
async fn ids_handed_out_after_a_backup_are_not_reused_after_restoring_it() {
    let live = tempfile::tempdir().unwrap();
    let config = write_config(live.path());
    let server = Chatd::spawn(&config);
    let addr = server.address("plaintext").await;
    say_as_alice(&addr, true, "before the backup").await;
    let backup = live.path().join("snapshot.db");
    let (ok, out) = chatd(
        &[
            "--config",
            "chatd.toml",
            "backup",
            "--out",
            backup.to_str().unwrap(),
        ],
        live.path(),
    )
    .await;
    assert!(ok, "{out}");
    server.stop().await;
    // Each start reserves a new block of ids past the backup's.
    let server = Chatd::spawn(&config);
    let addr = server.address("plaintext").await;
    let after_backup = say_as_alice(&addr, false, "after the backup").await;
    server.stop().await;

    let fresh = tempfile::tempdir().unwrap();
    let fresh_config = write_config(fresh.path());
    for (dir, config) in [(live.path(), &config), (fresh.path(), &fresh_config)] {
        let restore = [
            "--config",
            "chatd.toml",
            "restore",
            "--from",
            backup.to_str().unwrap(),
        ];
        let (ok, out) = chatd(&restore, dir).await;
        assert!(ok, "{out}");
        let server = Chatd::spawn(config);
        let addr = server.address("plaintext").await;
        let restored = say_as_alice(&addr, false, "after the restore").await;
        assert!(
            restored > after_backup,
            "id {restored} after the restore, {after_backup} was handed out after the backup"
        );
        server.stop().await;
    }
}
