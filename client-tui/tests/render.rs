//! Screens rendered with ratatui's `TestBackend`.

use chat_client::{Received, Welcome};
use chat_protocol::{Message, MessageKind, ServerFrame};
use client_tui::net::NetEvent;
use client_tui::progress::TransferBar;
use client_tui::state::{ConvKind, Frontend, ServerInfo, State};
use client_tui::update::{update, Event};
use client_tui::view::draw;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

fn connected_state() -> State {
    let server = ServerInfo {
        addr: "127.0.0.1:7878".into(),
        ..ServerInfo::default()
    };
    let mut s = State::new(server, "alice".into(), None, Frontend::Screen);
    for room in ["#rust", "#go"] {
        let i = s.conv_index(room, ConvKind::Room);
        s.convs[i].joined = true;
    }
    update(
        &mut s,
        Event::Net(NetEvent::Connected(Welcome {
            server: "chatd".into(),
            version: "0.1.0".into(),
            protocol: 1,
            plugins: vec![],
            features: vec![],
            max_frame_bytes: 65536,
            auth_required: false,
        })),
    );
    s.switch_to(1);
    s
}

fn message(s: &mut State, room: &str, from: &str, text: &str, ts: u64) {
    update(
        s,
        Event::Net(NetEvent::Frame(Received::Core(ServerFrame::Message({
            let mut message = Message::new(ts, ts, MessageKind::Room, from, text);
            message.room = Some(room.into());
            message
        })))),
    );
}

fn render(s: &State, cols: u16, rows: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    terminal.draw(|f| draw(s, f)).unwrap();
    terminal.backend().buffer().clone()
}

fn row(buffer: &Buffer, y: u16) -> String {
    (0..buffer.area.width)
        .map(|x| buffer[(x, y)].symbol())
        .collect()
}

fn screen(buffer: &Buffer) -> Vec<String> {
    (0..buffer.area.height).map(|y| row(buffer, y)).collect()
}

fn find(buffer: &Buffer, needle: &str) -> Option<(u16, u16)> {
    screen(buffer).iter().enumerate().find_map(|(y, line)| {
        line.find(needle)
            .map(|byte| (line[..byte].chars().count() as u16, y as u16))
    })
}

#[test]
fn sidebar_shows_unread_counts_and_highlights_mentions() {
    let mut s = connected_state();
    message(&mut s, "#go", "bob", "anyone?", 1_000);
    message(&mut s, "#go", "bob", "still nobody", 2_000);
    message(&mut s, "#go", "carol", "alice: are you there?", 3_000);
    message(&mut s, "#rust", "bob", "in view", 4_000);
    let buffer = render(&s, 100, 12);
    let lines = screen(&buffer);
    assert!(lines[0].starts_with(" 1 server"), "{lines:#?}");
    assert!(lines[1].starts_with(" 2 #rust "), "{lines:#?}");
    let sidebar_go: String = lines[2].chars().take(19).collect();
    assert!(
        sidebar_go.starts_with(" 3 #go") && sidebar_go.trim_end().ends_with(" 3"),
        "{lines:#?}"
    );
    // The current conversation is drawn reversed; one with a mention in yellow.
    assert!(buffer[(3, 1)].modifier.contains(Modifier::REVERSED));
    assert_eq!(buffer[(3, 2)].bg, Color::Yellow);
    assert_eq!(buffer[(3, 0)].bg, Color::Reset);
    // The conversation, member list and status bar.
    assert!(
        lines.iter().any(|l| l.contains("<bob> in view")),
        "{lines:#?}"
    );
    assert!(
        lines[10].contains("127.0.0.1:7878")
            && lines[10].contains("alice")
            && lines[10].contains("connected")
    );
    assert!(lines[10].contains("3 unread"), "{}", lines[10]);
    assert!(lines[11].starts_with("[#rust] "), "{}", lines[11]);
}

#[test]
fn scrolled_conversation_shows_older_messages_and_says_so() {
    let mut s = connected_state();
    s.viewport = (80, 10);
    for i in 0..30 {
        message(
            &mut s,
            "#rust",
            "bob",
            &format!("line number {i:02}"),
            1_000 * i,
        );
    }
    let bottom = render(&s, 80, 10);
    assert!(find(&bottom, "line number 29").is_some());
    assert!(find(&bottom, "scrolled").is_none());
    update(
        &mut s,
        Event::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::PageUp,
            crossterm::event::KeyModifiers::NONE,
        )),
    );
    let scrolled = render(&s, 80, 10);
    let lines = screen(&scrolled);
    assert!(find(&scrolled, "line number 29").is_none(), "{lines:#?}");
    assert!(find(&scrolled, "scrolled").is_some(), "{lines:#?}");
    // Seven rows of messages; a page up moves six, keeping one for context.
    for i in 17..=23 {
        assert!(
            find(&scrolled, &format!("line number {i}")).is_some(),
            "{i}: {lines:#?}"
        );
    }
    assert!(find(&scrolled, "line number 16").is_none(), "{lines:#?}");
    // Nick colours are applied to the sender.
    let (x, y) = find(&scrolled, "<bob>").unwrap();
    assert_eq!(
        scrolled[(x + 1, y)].fg,
        client_tui::view::nick_colour("bob")
    );
}

#[test]
fn wide_and_combining_text_is_laid_out_by_columns() {
    let mut s = connected_state();
    message(&mut s, "#rust", "bob", "日本語 e\u{301}té 🎉 done", 0);
    let buffer = render(&s, 100, 8);
    assert!(find(&buffer, "done").is_some(), "{:#?}", screen(&buffer));
}

#[test]
fn progress_bar_shows_fraction_rate_and_eta() {
    let mut terminal = Terminal::new(TestBackend::new(60, 1)).unwrap();
    terminal
        .draw(|f| {
            f.render_widget(
                TransferBar {
                    label: "photo.jpg",
                    done: 512 * 1024,
                    total: 1024 * 1024,
                    bytes_per_sec: 128.0 * 1024.0,
                },
                f.area(),
            )
        })
        .unwrap();
    let buffer = terminal.backend().buffer().clone();
    let line = row(&buffer, 0);
    assert!(line.starts_with("photo.jpg ["), "{line}");
    assert!(line.contains(" 50% 128.0 KiB/s ETA 4 s"), "{line}");
    let filled = line.matches('█').count();
    let empty = line.matches('░').count();
    assert!(filled > 0 && filled.abs_diff(empty) <= 1, "{line}");
    assert_eq!(buffer[(11, 0)].fg, Color::Green);
}

/// A connected state whose server has the files plugin.
fn files_state() -> State {
    let mut s = connected_state();
    s.server.features = vec!["files".into()];
    s
}

fn file_available(s: &mut State, transfer: &str, from: &str, name: &str, size: u64) {
    let mut fields = serde_json::Map::new();
    for (k, v) in [
        ("transfer", serde_json::json!(transfer)),
        ("from", serde_json::json!(from)),
        ("name", serde_json::json!(name)),
        ("size", serde_json::json!(size)),
        ("sha256", serde_json::json!("00")),
        ("expires_at", serde_json::json!(0)),
    ] {
        fields.insert(k.into(), v);
    }
    update(
        s,
        Event::Net(NetEvent::Frame(Received::Custom {
            kind: "file_available".into(),
            fields,
        })),
    );
}

fn transfer_event(s: &mut State, slot: u32, kind: client_tui::transfer::TransferEventKind) {
    update(
        s,
        Event::Transfer(client_tui::transfer::TransferEvent { slot, kind }),
    );
}

#[test]
fn transfers_view_lists_transfers_with_progress_bars() {
    use client_tui::transfer::TransferEventKind;
    let mut s = files_state();
    let dir = tempfile::tempdir().unwrap();
    // An offer arrives and is accepted: a download, half done.
    file_available(
        &mut s,
        "0123456789abcdef0123456789abcdef",
        "bob",
        "photo.jpg",
        1 << 20,
    );
    let line = format!("/accept 0123 {}", dir.path().display());
    update(&mut s, Event::Line(line));
    s.now_ms = 10_000;
    transfer_event(
        &mut s,
        1,
        TransferEventKind::Started {
            transfer: "0123456789abcdef0123456789abcdef".into(),
            done: 0,
            total: 1 << 20,
        },
    );
    s.now_ms = 14_000;
    transfer_event(&mut s, 1, TransferEventKind::Progress { done: 512 * 1024 });
    // An upload that finished.
    let source = dir.path().join("notes.txt");
    std::fs::write(&source, b"hello").unwrap();
    update(
        &mut s,
        Event::Line(format!("/send carol {}", source.display())),
    );
    transfer_event(
        &mut s,
        2,
        TransferEventKind::Started {
            transfer: "fedcba9876543210fedcba9876543210".into(),
            done: 0,
            total: 5,
        },
    );
    transfer_event(
        &mut s,
        2,
        TransferEventKind::Finished {
            recipients: vec!["carol".into()],
        },
    );

    let hidden = render(&s, 100, 14);
    assert!(find(&hidden, "transfers:").is_none());
    // The status bar tells that one is running, and how far it is.
    assert!(
        screen(&hidden)[12].contains("| transfer 50% (F2)"),
        "{:#?}",
        screen(&hidden)
    );
    update(
        &mut s,
        Event::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::F(2),
            crossterm::event::KeyModifiers::NONE,
        )),
    );
    let buffer = render(&s, 100, 14);
    let lines = screen(&buffer);
    let title = find(&buffer, "transfers: 1 active, 2 in all").expect("the view's title");
    let download = &lines[usize::from(title.1) + 1];
    assert!(
        download.contains("active      01234567 ↓ photo.jpg ← bob ["),
        "{lines:#?}"
    );
    assert!(download.contains(" 50% 128.0 KiB/s ETA 4 s"), "{download}");
    let filled = download.matches('█').count();
    let empty = download.matches('░').count();
    assert!(filled > 0 && filled.abs_diff(empty) <= 1, "{download}");
    let upload = &lines[usize::from(title.1) + 2];
    assert!(
        upload.contains("done        fedcba98 ↑ notes.txt → carol [")
            && upload.contains("100%")
            && upload.contains("5 B done")
            && !upload.contains("B/s"),
        "{lines:#?}"
    );
    assert!(!upload.contains('░'), "{upload}");
    // The conversation is still drawn above the view.
    assert!(find(&buffer, " #rust ").is_some(), "{lines:#?}");
    // `/transfers` hides it again.
    update(&mut s, Event::Line("/transfers".into()));
    assert!(find(&render(&s, 100, 14), "transfers:").is_none());
}

fn custom_frame(s: &mut State, kind: &str, fields: serde_json::Value) {
    let serde_json::Value::Object(fields) = fields else {
        panic!("fields are an object")
    };
    update(
        s,
        Event::Net(NetEvent::Frame(Received::Custom {
            kind: kind.into(),
            fields,
        })),
    );
}

#[test]
fn private_room_with_its_topic_and_an_invitation() {
    let mut s = connected_state();
    s.server.features = vec!["accounts".into(), "private_rooms".into()];
    // Put back into a private room on logging in, then a topic change.
    update(
        &mut s,
        Event::Net(NetEvent::Frame(Received::Core(ServerFrame::Joined {
            id: None,
            room: "#secret".into(),
            members: vec!["alice".into(), "bob".into()],
            topic: Some("launch plans".into()),
        }))),
    );
    let secret = s.find("#secret").unwrap();
    s.switch_to(secret);
    custom_frame(
        &mut s,
        "room_event",
        serde_json::json!({"room": "#secret", "event": "topic", "by": "bob",
                           "topic": "launch on Monday", "ts": 0}),
    );
    // An invitation arrives while #secret is shown.
    custom_frame(
        &mut s,
        "room_invitation",
        serde_json::json!({"room": "#plans", "from": "carol"}),
    );
    let buffer = render(&s, 120, 12);
    let lines = screen(&buffer);
    // The sidebar marks the private room, not the public ones; the server
    // conversation counts the invitation as addressed to us.
    let sidebar: Vec<String> = lines.iter().map(|l| l.chars().take(19).collect()).collect();
    let secret_row = sidebar
        .iter()
        .position(|l| l.contains("#secret"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(sidebar[secret_row].contains("🔒"), "{lines:#?}");
    assert!(!sidebar[1].contains("🔒"), "{lines:#?}");
    assert!(sidebar[0].trim_end().ends_with(" 1"), "{lines:#?}");
    assert_eq!(buffer[(3, 0)].bg, Color::Yellow);
    // The header: private, members, the latest topic.
    let header = &lines[0];
    assert!(
        header.contains("#secret")
            && header.contains("2 members, private")
            && header.contains("launch on Monday"),
        "{header}"
    );
    // The topic change is told in the room.
    assert!(
        find(&buffer, "bob set the topic to: launch on Monday").is_some(),
        "{lines:#?}"
    );

    // The invitation, in the server conversation, says how to answer.
    s.switch_to(0);
    let buffer = render(&s, 120, 12);
    let lines = screen(&buffer);
    assert!(
        find(
            &buffer,
            "carol invites you to the private room #plans: /accept #plans or /decline #plans"
        )
        .is_some(),
        "{lines:#?}"
    );

    // Kicked: the room says so in its header and the sidebar greys it.
    s.switch_to(secret);
    custom_frame(
        &mut s,
        "room_event",
        serde_json::json!({"room": "#secret", "event": "kick", "by": "bob",
                           "user": "alice", "reason": "spam", "ts": 0}),
    );
    let buffer = render(&s, 120, 12);
    let lines = screen(&buffer);
    assert!(
        lines[0].contains("closed: you were kicked from #secret by bob: spam"),
        "{lines:#?}"
    );
    assert!(
        find(&buffer, "bob kicked you out of #secret (spam)").is_some(),
        "{lines:#?}"
    );
    assert!(lines[11].starts_with("[#secret closed] "), "{lines:#?}");
}

fn chat_message(id: u64, room: Option<&str>, from: &str, text: &str) -> serde_json::Value {
    let kind = if room.is_some() { "room" } else { "direct" };
    let mut m = serde_json::json!({"msg_id": id, "ts": id * 60_000, "kind": kind, "from": from, "text": text});
    match room {
        Some(room) => m["room"] = room.into(),
        None => m["to"] = "alice".into(),
    }
    m
}

#[test]
fn missed_messages_sit_behind_a_separator_at_80x24() {
    let mut s = connected_state();
    s.server.features = vec!["accounts".into(), "history".into()];
    s.user = Some("alice".into());
    message(&mut s, "#rust", "bob", "before the cut", 1);
    // A resume's catch-up: logged_in, missed, resumed.
    custom_frame(
        &mut s,
        "logged_in",
        serde_json::json!({"user": "alice", "resumed": true, "resume_token": "t", "token_expires": 1}),
    );
    custom_frame(
        &mut s,
        "missed",
        serde_json::json!({"messages": [
            chat_message(5, Some("#rust"), "bob", "first while away"),
            chat_message(6, None, "carol", "psst"),
            chat_message(7, Some("#rust"), "dave", "second while away"),
        ]}),
    );
    custom_frame(
        &mut s,
        "resumed",
        serde_json::json!({"missed": 3, "more": false, "last_msg_id": 7}),
    );
    let buffer = render(&s, 80, 24);
    let lines = screen(&buffer);
    let (_, sep) = find(&buffer, "── 2 messages while you were away ──")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    // One row, a rule across the conversation (80 columns show no member
    // list: the conversation reaches the right edge).
    assert!(row(&buffer, sep).ends_with("────"), "{lines:#?}");
    let (_, before) = find(&buffer, "before the cut").unwrap();
    let (_, first) = find(&buffer, "first while away").unwrap();
    let (_, second) = find(&buffer, "second while away").unwrap();
    assert!(
        before < sep && sep + 1 == first && first + 1 == second,
        "{lines:#?}"
    );
    let (x, y) = find(&buffer, "── 2 messages").unwrap();
    assert_eq!(buffer[(x, y)].fg, Color::Yellow);
    // The direct conversation has its own separator and is unread.
    let (x, y) = find(&buffer, "carol").expect("carol in the sidebar");
    assert!(row(&buffer, y).contains('1'), "{lines:#?}");
    assert!(x < 20);
    s.switch_to(s.find("carol").unwrap());
    let buffer = render(&s, 80, 24);
    assert!(
        find(&buffer, "── 1 message while you were away ──").is_some(),
        "{:#?}",
        screen(&buffer)
    );
    // The server conversation tells the resume.
    s.switch_to(0);
    let buffer = render(&s, 80, 24);
    assert!(
        find(&buffer, "session resumed: 3 missed messages").is_some(),
        "{:#?}",
        screen(&buffer)
    );
}

#[test]
fn loading_older_messages_is_shown_in_the_title() {
    let mut s = connected_state();
    s.server.features = vec!["history".into()];
    message(&mut s, "#rust", "bob", "newest", 10);
    update(
        &mut s,
        Event::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::PageUp,
            crossterm::event::KeyModifiers::NONE,
        )),
    );
    let buffer = render(&s, 80, 24);
    assert!(
        row(&buffer, 0).contains("loading older messages…"),
        "{:#?}",
        screen(&buffer)
    );
}
