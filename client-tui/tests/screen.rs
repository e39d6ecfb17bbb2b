//! The real full-screen client in a pseudo-terminal, read back through a
//! vt100 parser, against a real chatd.

mod common;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chat_client::{Client, Received};
use chat_protocol::{ClientFrame, ServerFrame};
use portable_pty::{native_pty_system, CommandBuilder, PtySize};

const ROWS: u16 = 24;
const COLS: u16 = 100;

/// What the pty shows, fed by a reader thread.
struct Screen {
    parser: vt100::Parser,
    output: mpsc::Receiver<Vec<u8>>,
}

impl Screen {
    /// Waits until the screen satisfies `pred`; panics with the screen's
    /// contents after the timeout.
    fn wait_for(&mut self, what: &str, pred: impl Fn(&vt100::Screen) -> bool) {
        let deadline = Instant::now() + common::TIMEOUT;
        while !pred(self.parser.screen()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.parser.process(&bytes),
                Err(_) => panic!(
                    "screen never showed {what}; it shows:\n{}",
                    self.parser.screen().contents()
                ),
            }
        }
    }

    fn contains(&mut self, text: &str) {
        self.wait_for(&format!("{text:?}"), |s| s.contents().contains(text));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_screen_client_shows_messages_from_others_and_restores_the_terminal() {
    let srv = common::start_server().await;
    let home = tempfile::tempdir().unwrap();

    let pty = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("a pseudo-terminal");
    let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_client-tui"));
    command.args([
        "--server",
        &srv.socket_addr().to_string(),
        "--nick",
        "alice",
        "--join",
        "#lobby",
    ]);
    command.env("XDG_CONFIG_HOME", home.path());
    command.env("TERM", "xterm-256color");
    command.env("TZ", "UTC");
    let mut child = pty.slave.spawn_command(command).expect("client-tui starts");
    drop(pty.slave);
    let mut reader = pty.master.try_clone_reader().unwrap();
    let mut keyboard = pty.master.take_writer().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Screen {
        parser: vt100::Parser::new(ROWS, COLS, 0),
        output: rx,
    };

    screen.wait_for("the alternate screen", |s| s.alternate_screen());
    screen.contains("you joined (1 here: alice)");
    screen.contains("connected");
    screen.contains("#lobby");

    // Another user says something: it appears, with the sender's name.
    let mut bob = Client::connect_as(&srv.socket_addr().to_string(), "bob")
        .await
        .unwrap();
    bob.request_ok(&ClientFrame::Join {
        room: "#lobby".into(),
    })
    .await
    .unwrap();
    screen.contains("bob joined");
    bob.request_ok(&ClientFrame::Say {
        room: "#lobby".into(),
        text: "hello from bob, ça va? 🎉".into(),
    })
    .await
    .unwrap();
    screen.contains("<bob> hello from bob, ça va? 🎉");
    // The member list has both.
    screen.wait_for("two members", |s| s.contents().contains("2 users"));

    // Typing and Enter send to the current room.
    keyboard.write_all("hi bob, ñandú\r".as_bytes()).unwrap();
    keyboard.flush().unwrap();
    let got = bob
        .expect(common::TIMEOUT, |f| {
            matches!(f, Received::Core(ServerFrame::Message(_)))
        })
        .await
        .unwrap();
    let Received::Core(ServerFrame::Message(m)) = got else {
        unreachable!()
    };
    assert_eq!(
        (m.from.as_str(), m.text.as_str()),
        ("alice", "hi bob, ñandú")
    );
    screen.contains("<alice> hi bob, ñandú");

    // A direct message opens a conversation in the sidebar with an unread count.
    bob.request_ok(&ClientFrame::Msg {
        to: "alice".into(),
        text: "psst".into(),
    })
    .await
    .unwrap();
    screen.wait_for("bob in the sidebar with 1 unread", |s| {
        s.contents().lines().any(|l| {
            l.starts_with(" 3 bob")
                && l.chars()
                    .take(19)
                    .collect::<String>()
                    .trim_end()
                    .ends_with(" 1")
        })
    });

    // Ctrl-C quits and puts the terminal back.
    keyboard.write_all(b"\x03").unwrap();
    keyboard.flush().unwrap();
    screen.wait_for("the normal screen again", |s| !s.alternate_screen());
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    let status = done_rx
        .recv_timeout(Duration::from_secs(15))
        .expect("client-tui exits after Ctrl-C")
        .unwrap();
    assert!(status.success(), "{status:?}");
    bob.expect(
        common::TIMEOUT,
        |f| matches!(f, Received::Core(ServerFrame::Presence(p)) if p.nick == "alice"),
    )
    .await
    .expect("bob sees alice leave");
    srv.server.stop().await;
}

/// The full-screen client running in a pty.
struct Running {
    screen: Screen,
    keyboard: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    /// Kept open while the client runs.
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

/// The full-screen client in a pty, with `args`.
fn spawn_screen(args: &[&str], home: &std::path::Path) -> Running {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("a pseudo-terminal");
    let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_client-tui"));
    command.args(args);
    command.env("XDG_CONFIG_HOME", home);
    command.env("TERM", "xterm-256color");
    command.env("TZ", "UTC");
    let child = pty.slave.spawn_command(command).expect("client-tui starts");
    drop(pty.slave);
    let mut reader = pty.master.try_clone_reader().unwrap();
    let keyboard = pty.master.take_writer().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    Running {
        screen: Screen {
            parser: vt100::Parser::new(ROWS, COLS, 0),
            output: rx,
        },
        keyboard,
        child,
        _master: pty.master,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_up_at_the_top_loads_older_messages_from_the_history() {
    let srv = common::start_server().await;
    let home = tempfile::tempdir().unwrap();
    // Bob talks in #lobby before alice is there.
    let mut bob = Client::connect_as(&srv.socket_addr().to_string(), "bob")
        .await
        .unwrap();
    bob.request_ok(&ClientFrame::Join {
        room: "#lobby".into(),
    })
    .await
    .unwrap();
    for n in 0..30 {
        bob.request_ok(&ClientFrame::Say {
            room: "#lobby".into(),
            text: format!("old message {n:02}"),
        })
        .await
        .unwrap();
    }

    let addr = srv.socket_addr().to_string();
    let Running {
        mut screen,
        mut keyboard,
        mut child,
        _master,
    } = spawn_screen(
        &["--server", &addr, "--nick", "alice", "--join", "#lobby"],
        home.path(),
    );
    screen.contains("you joined (2 here: alice, bob)");
    assert!(!screen.parser.screen().contents().contains("old message"));

    // PageUp at the top (everything fits): the latest page is loaded above.
    const PAGE_UP: &[u8] = b"\x1b[5~";
    keyboard.write_all(PAGE_UP).unwrap();
    keyboard.flush().unwrap();
    screen.contains("<bob> old message 29");
    // Again: scrolls to the oldest, and the start of the conversation.
    keyboard.write_all(PAGE_UP).unwrap();
    keyboard.flush().unwrap();
    screen.contains("<bob> old message 00");
    screen.contains("start of the conversation");

    keyboard.write_all(b"\x03").unwrap();
    keyboard.flush().unwrap();
    screen.wait_for("the normal screen again", |s| !s.alternate_screen());
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    let status = done_rx
        .recv_timeout(Duration::from_secs(15))
        .expect("client-tui exits after Ctrl-C")
        .unwrap();
    assert!(status.success(), "{status:?}");
    srv.server.stop().await;
}
