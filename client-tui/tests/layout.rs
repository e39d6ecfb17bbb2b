//! Layout faults found in daily use (issue 17, items 11 and 12): narrow
//! status bars, the width the conversation gets, finished transfers, and
//! `/help` as a view of its own. Rendered with ratatui's `TestBackend`.

use chat_client::Welcome;
use client_tui::net::NetEvent;
use client_tui::progress::TransferBar;
use client_tui::state::{ConvKind, Frontend, ServerInfo, State};
use client_tui::update::{update, Event};
use client_tui::view::draw;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

fn welcome() -> Welcome {
    Welcome {
        server: "chatd".into(),
        version: "0.1.0".into(),
        protocol: 1,
        plugins: vec![],
        features: vec![],
        max_frame_bytes: 65536,
        auth_required: false,
    }
}

/// alice, connected, in #rust (shown, with members) and #go.
fn connected_state() -> State {
    let server = ServerInfo {
        addr: "chat.example.org:7878".into(),
        tls: true,
        ..ServerInfo::default()
    };
    let mut s = State::new(server, "alice".into(), None, Frontend::Screen);
    for room in ["#rust", "#go"] {
        let i = s.conv_index(room, ConvKind::Room);
        s.convs[i].joined = true;
        s.convs[i].members = vec!["alice".into(), "bob".into()];
    }
    update(&mut s, Event::Net(NetEvent::Connected(welcome())));
    s.switch_to(1);
    s
}

fn render(s: &State, cols: u16, rows: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    terminal.draw(|f| draw(s, f)).unwrap();
    let buffer: Buffer = terminal.backend().buffer().clone();
    (0..rows)
        .map(|y| (0..cols).map(|x| buffer[(x, y)].symbol()).collect())
        .collect()
}

fn key(s: &mut State, code: KeyCode) {
    update(s, Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

#[test]
fn a_narrow_status_bar_still_says_whether_we_are_connected() {
    let mut s = connected_state();
    for cols in [60, 50, 40] {
        let lines = render(&s, cols, 10);
        assert!(
            lines[8].contains("connected"),
            "{cols} columns: {:?}",
            lines[8]
        );
    }
    update(
        &mut s,
        Event::Net(NetEvent::Disconnected {
            reason: "connection reset".into(),
            retry_in: std::time::Duration::from_secs(5),
        }),
    );
    let lines = render(&s, 50, 10);
    assert!(lines[8].contains("disconnected"), "{:?}", lines[8]);
}

#[test]
fn at_80x24_the_conversation_gets_most_of_the_width() {
    let mut s = connected_state();
    // With the time and a mark before it: 61 columns.
    let long = "x".repeat(26) + " " + &"y".repeat(25);
    let here = s.current;
    s.note(here, client_tui::state::Body::Info(long.clone()));
    let lines = render(&s, 80, 24);
    assert!(
        lines.iter().any(|l| l.contains(&long)),
        "a 52-column text fits unwrapped: {lines:#?}"
    );
    assert!(
        client_tui::layout::conversation_width(80, true) >= 60,
        "{}",
        client_tui::layout::conversation_width(80, true)
    );
    // Wide terminals still show the member list.
    let wide = render(&s, 120, 35);
    assert!(wide.iter().any(|l| l.contains("bob")), "{wide:#?}");
}

#[test]
fn a_finished_transfer_shows_its_size_not_a_rate() {
    let mut terminal = Terminal::new(TestBackend::new(60, 1)).unwrap();
    terminal
        .draw(|f| {
            f.render_widget(
                TransferBar {
                    label: "notes.txt",
                    done: 2048,
                    total: 2048,
                    bytes_per_sec: 0.0,
                },
                f.area(),
            )
        })
        .unwrap();
    let buffer = terminal.backend().buffer().clone();
    let line: String = (0..60).map(|x| buffer[(x, 0)].symbol()).collect();
    assert!(line.contains("100% 2.0 KiB done"), "{line}");
    assert!(!line.contains("B/s"), "{line}");
}

#[test]
fn help_is_a_view_that_leaves_the_conversation_alone() {
    let mut s = connected_state();
    let before = s.current_conv().entries.len();
    update(&mut s, Event::Line("/help".into()));
    assert_eq!(
        s.current_conv().entries.len(),
        before,
        "nothing is added to #rust"
    );
    let lines = render(&s, 80, 24);
    assert!(
        lines.iter().any(|l| l.contains("Esc or F1 closes")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("/join #ROOM")),
        "{lines:#?}"
    );
    // It scrolls: the last commands come into view.
    assert!(
        !lines.iter().any(|l| l.contains("/quit [REASON]")),
        "{lines:#?}"
    );
    for _ in 0..5 {
        key(&mut s, KeyCode::PageDown);
    }
    let lines = render(&s, 80, 24);
    assert!(
        lines.iter().any(|l| l.contains("/quit [REASON]")),
        "{lines:#?}"
    );
    // Esc closes it; the conversation is as it was.
    key(&mut s, KeyCode::Esc);
    let lines = render(&s, 80, 24);
    assert!(
        !lines.iter().any(|l| l.contains("Esc or F1 closes")),
        "{lines:#?}"
    );
    // Help on one command shows just that one.
    update(&mut s, Event::Line("/help kick".into()));
    let lines = render(&s, 80, 24);
    assert!(
        lines.iter().any(|l| l.contains("/kick NICK [REASON]")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("/join #ROOM")),
        "{lines:#?}"
    );
    assert_eq!(s.current_conv().entries.len(), before);
}

fn frame(s: &mut State, frame: chat_protocol::ServerFrame) {
    update(
        s,
        Event::Net(NetEvent::Frame(chat_client::Received::Core(frame))),
    );
}

fn room_message(s: &mut State, room: &str, id: u64, from: &str, text: &str) {
    frame(
        s,
        chat_protocol::ServerFrame::Message({
            let mut message = chat_protocol::Message::new(
                id,
                33_120_000 + id * 60_000,
                chat_protocol::MessageKind::Room,
                from,
                text,
            );
            message.room = Some(room.into());
            message
        }),
    );
}

/// The screen README.md shows, at 80 columns: the conversation keeps the
/// width, a mention stands out in the sidebar. With `CHATD_TUI_SCREEN=FILE`
/// set, the screen is written to FILE as text (for README.md).
#[test]
fn the_readme_screen_at_80_columns() {
    let mut s = connected_state();
    s.now_ms = 33_120_000;
    s.server.software = Some("chatd 0.1.0".into());
    s.server.tls = false;
    s.server.addr = "127.0.0.1:7878".into();
    s.lag = Some(std::time::Duration::from_millis(1));
    frame(
        &mut s,
        chat_protocol::ServerFrame::Joined {
            id: None,
            room: "#rust".into(),
            members: vec!["alice".into(), "bob".into(), "carol".into()],
            topic: None,
        },
    );
    room_message(
        &mut s,
        "#rust",
        1,
        "bob",
        "anyone tried the new borrow checker diagnostics?",
    );
    room_message(
        &mut s,
        "#rust",
        2,
        "carol",
        "yes, they point at the exact lifetime now",
    );
    room_message(&mut s, "#rust", 3, "bob", "alice: lunch after the release?");
    room_message(&mut s, "#go", 4, "erin", "alice, the release notes are up");
    frame(
        &mut s,
        chat_protocol::ServerFrame::Message({
            let mut message = chat_protocol::Message::new(
                5,
                33_420_000,
                chat_protocol::MessageKind::Direct,
                "dave",
                "got a minute?",
            );
            message.room = None;
            message.to = Some("alice".into());
            message
        }),
    );
    s.editor.set("sure, noon at the usual place");
    let lines = render(&s, 80, 9);
    let text = lines
        .iter()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(path) = std::env::var_os("CHATD_TUI_SCREEN") {
        std::fs::write(path, format!("{text}\n")).unwrap();
    }
    assert!(lines[7].starts_with(" connected | alice |"), "{text}");
    assert!(text.contains("alice: lunch after the release?"), "{text}");
    assert!(
        lines.iter().any(|l| l.contains("dave") && l.contains('1')),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("#go") && l.contains('1')),
        "{text}"
    );
}
