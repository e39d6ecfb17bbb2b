//! State changes that events produce.

use std::time::Duration;

use chat_client::{Received, Welcome};
use chat_protocol::{
    ClientFrame, ErrorCode, Message, MessageKind, Presence, PresenceEvent, ServerFrame,
};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;

use super::{update, Event};
use crate::net::{NetCommand, NetEvent, Outgoing};
use crate::state::{Body, ConvKind, Delivery, Frontend, Link, ServerInfo, State};

fn welcome(auth_required: bool) -> Welcome {
    Welcome {
        server: "chatd".into(),
        version: "0.1.0".into(),
        protocol: 1,
        plugins: vec![],
        features: vec![],
        max_frame_bytes: 65536,
        auth_required,
    }
}

fn state() -> State {
    let server = ServerInfo {
        addr: "127.0.0.1:7878".into(),
        ..ServerInfo::default()
    };
    State::new(server, "alice".into(), None, Frontend::Screen)
}

/// A state that is connected, named alice, in #rust (shown) and #go.
fn connected() -> State {
    let mut s = state();
    for room in ["#rust", "#go"] {
        let i = s.conv_index(room, ConvKind::Room);
        s.convs[i].joined = true;
    }
    net(&mut s, NetEvent::Connected(welcome(false)));
    s.switch_to(1);
    s.journal.clear();
    s
}

fn net(s: &mut State, e: NetEvent) -> Vec<NetCommand> {
    update(s, Event::Net(e))
}

fn frame(s: &mut State, f: ServerFrame) -> Vec<NetCommand> {
    net(s, NetEvent::Frame(Received::Core(f)))
}

fn key(s: &mut State, code: KeyCode) -> Vec<NetCommand> {
    update(s, Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn alt(s: &mut State, c: char) -> Vec<NetCommand> {
    update(
        s,
        Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::ALT)),
    )
}

fn type_line(s: &mut State, text: &str) -> Vec<NetCommand> {
    for c in text.chars() {
        key(s, KeyCode::Char(c));
    }
    key(s, KeyCode::Enter)
}

fn room_message(room: &str, from: &str, text: &str) -> ServerFrame {
    ServerFrame::Message({
        let mut message = Message::new(1, 1_000, MessageKind::Room, from, text);
        message.room = Some(room.into());
        message.to = None;
        message
    })
}

fn sent_ids(commands: &[NetCommand]) -> Vec<(u64, Outgoing)> {
    commands
        .iter()
        .filter_map(|c| match c {
            NetCommand::Send(id, f) => Some((*id, f.clone())),
            _ => None,
        })
        .collect()
}

fn last_body(s: &State, conv: &str) -> Body {
    let i = s.find(conv).unwrap();
    s.convs[i].entries.back().unwrap().body.clone()
}

#[test]
fn connecting_sets_the_nick_and_rejoins_rooms() {
    let mut s = state();
    let i = s.conv_index("#rust", ConvKind::Room);
    s.convs[i].joined = true;
    let out = net(&mut s, NetEvent::Connected(welcome(false)));
    let [NetCommand::Setup(frames)] = out.as_slice() else {
        panic!("{out:?}")
    };
    let frames: Vec<&Outgoing> = frames.iter().map(|(_, f)| f).collect();
    assert_eq!(
        frames,
        [
            &Outgoing::Core(ClientFrame::Nick {
                nick: "alice".into()
            }),
            &Outgoing::Core(ClientFrame::Join {
                room: "#rust".into()
            }),
        ]
    );
    assert_eq!(s.link, Link::Connected);
}

#[test]
fn unread_counts_and_mentions_mark_other_conversations() {
    let mut s = connected();
    assert_eq!(s.current_conv().name, "#rust");
    frame(&mut s, room_message("#go", "bob", "anyone here?"));
    frame(&mut s, room_message("#go", "bob", "alice: ping"));
    frame(&mut s, room_message("#rust", "bob", "shown, so not unread"));
    let go = &s.convs[s.find("#go").unwrap()];
    assert_eq!((go.unread, go.mentioned), (2, true));
    assert_eq!(s.convs[s.find("#rust").unwrap()].unread, 0);
    alt(&mut s, '3');
    assert_eq!(s.current_conv().name, "#go");
    assert_eq!(
        (s.current_conv().unread, s.current_conv().mentioned),
        (0, false)
    );
    // A direct message opens a conversation and counts as a mention.
    frame(
        &mut s,
        ServerFrame::Message({
            let mut message = Message::new(2, 2, MessageKind::Direct, "carol", "psst");
            message.room = None;
            message.to = Some("alice".into());
            message
        }),
    );
    let carol = &s.convs[s.find("carol").unwrap()];
    assert_eq!(
        (carol.kind, carol.unread, carol.mentioned),
        (ConvKind::Direct, 1, true)
    );
}

#[test]
fn own_messages_are_pending_until_sent() {
    let mut s = connected();
    let out = type_line(&mut s, "héllo 世界");
    let [(id, Outgoing::Core(ClientFrame::Say { room, text }))] =
        <[(u64, Outgoing); 1]>::try_from(sent_ids(&out)).unwrap()
    else {
        panic!("{out:?}")
    };
    assert_eq!((room.as_str(), text.as_str()), ("#rust", "héllo 世界"));
    assert!(
        matches!(last_body(&s, "#rust"), Body::Chat { delivery: Delivery::Pending(p), .. } if p == id)
    );
    assert!(
        s.journal.is_empty(),
        "not reported before the server accepts it"
    );
    frame(
        &mut s,
        ServerFrame::Sent {
            id: Some(id),
            msg_id: 9,
            ts: 5,
            recipients: 1,
            text: None,
            stored: false,
        },
    );
    assert!(matches!(
        last_body(&s, "#rust"),
        Body::Chat {
            delivery: Delivery::Done,
            own: true,
            ref text,
            ..
        } if text == "héllo 世界"
    ));
    assert_eq!(s.journal.len(), 1);
    assert!(s.editor.is_empty());
}

#[test]
fn own_message_shows_the_text_a_plugin_delivered() {
    let mut s = connected();
    let out = type_line(&mut s, "what the heck");
    let [(id, Outgoing::Core(ClientFrame::Say { .. }))] =
        <[(u64, Outgoing); 1]>::try_from(sent_ids(&out)).unwrap()
    else {
        panic!("{out:?}")
    };
    frame(
        &mut s,
        ServerFrame::Sent {
            id: Some(id),
            msg_id: 9,
            ts: 5,
            recipients: 1,
            text: Some("what the ****".into()),
            stored: false,
        },
    );
    assert!(
        matches!(
            last_body(&s, "#rust"),
            Body::Chat { delivery: Delivery::Done, own: true, ref text, .. } if text == "what the ****"
        ),
        "{:?}",
        last_body(&s, "#rust")
    );
    // The line mode prints the delivered text too.
    let [(conv, entry)] = <[_; 1]>::try_from(std::mem::take(&mut s.journal)).unwrap();
    assert_eq!(
        crate::lines::format(&conv, &entry),
        "sent #rust alice what the ****"
    );
}

#[test]
fn errors_appear_where_the_request_was_made() {
    let mut s = connected();
    let out = type_line(&mut s, "/msg nobody hi");
    let [(id, _)] = <[(u64, Outgoing); 1]>::try_from(sent_ids(&out)).unwrap();
    alt(&mut s, '1');
    frame(
        &mut s,
        ServerFrame::Error {
            id: Some(id),
            code: ErrorCode::NO_SUCH_USER,
            message: "nobody called 'nobody' is connected".into(),
        },
    );
    let conv = &s.convs[s.find("nobody").unwrap()];
    let bodies: Vec<&Body> = conv.entries.iter().map(|e| &e.body).collect();
    assert!(
        matches!(
            bodies[0],
            Body::Chat {
                delivery: Delivery::Failed,
                ..
            }
        ),
        "{bodies:?}"
    );
    assert!(
        matches!(bodies[1], Body::Error { code, message } if code == "no_such_user" && message.contains("nobody called"))
    );
}

#[test]
fn accounts_without_the_plugin_are_explained_in_words() {
    let mut s = connected();
    type_line(&mut s, "/login alice");
    assert!(s.prompt.is_some(), "asks for the password");
    let out = type_line(&mut s, "hunter2");
    assert!(s.prompt.is_none());
    let [(id, Outgoing::Json(login))] = <[(u64, Outgoing); 1]>::try_from(sent_ids(&out)).unwrap()
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        login,
        json!({"type": "login", "user": "alice", "password": "hunter2"})
    );
    key(&mut s, KeyCode::Up);
    assert_eq!(
        s.editor.text(),
        "/login alice",
        "the password is not in the history"
    );
    let out = frame(
        &mut s,
        ServerFrame::Error {
            id: Some(id),
            code: ErrorCode::FEATURE_DISABLED,
            message: "'login' needs the 'auth' plugin, which this server has not enabled".into(),
        },
    );
    let rust = &s.convs[s.find("#rust").unwrap()];
    assert!(rust.entries.iter().any(|e| matches!(&e.body,
        Body::Error { code, message } if code == "feature_disabled" && message.contains("needs the 'auth' plugin"))));
    assert!(s.password.is_none());
    assert!(
        out.is_empty(),
        "a guest who tried /login stays a guest: {out:?}"
    );
}

#[test]
fn logged_in_sets_the_nick_and_line_mode_reads_the_environment() {
    let server = ServerInfo {
        addr: "x:1".into(),
        ..ServerInfo::default()
    };
    let frontend = Frontend::Line {
        password: Some("pw".into()),
        new_password: None,
    };
    let mut s = State::new(server, "guest".into(), Some("alice".into()), frontend);
    let out = net(&mut s, NetEvent::Connected(welcome(true)));
    let [NetCommand::Setup(frames)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        frames[0].1,
        Outgoing::Json(json!({"type": "login", "user": "alice", "password": "pw"}))
    );
    net(
        &mut s,
        NetEvent::Frame(Received::Custom {
            kind: "logged_in".into(),
            fields:
                json!({"type": "logged_in", "id": frames[0].0, "user": "alice", "admin": false})
                    .as_object()
                    .unwrap()
                    .clone(),
        }),
    );
    assert!(s.logged_in);
    assert_eq!(s.nick, "alice");
    // /passwd needs CHATD_NEW_PASSWORD in line mode.
    let out = update(&mut s, Event::Line("/passwd".into()));
    assert!(out.is_empty());
    assert!(
        matches!(last_body(&s, "*"), Body::Error { message, .. } if message.contains("CHATD_NEW_PASSWORD"))
    );
}

#[test]
fn presence_updates_members_and_is_set_apart() {
    let mut s = connected();
    frame(
        &mut s,
        ServerFrame::Joined {
            id: None,
            room: "#rust".into(),
            members: vec!["alice".into(), "bob".into()],
            topic: None,
        },
    );
    let presence = |event, nick: &str, new_nick: Option<&str>| {
        let mut presence = Presence::new(event, "#rust", nick, 3);
        presence.new_nick = new_nick.map(Into::into);
        ServerFrame::Presence(presence)
    };
    frame(&mut s, presence(PresenceEvent::Join, "carol", None));
    frame(&mut s, presence(PresenceEvent::Nick, "bob", Some("robert")));
    frame(&mut s, presence(PresenceEvent::Quit, "carol", None));
    assert_eq!(
        s.convs[s.find("#rust").unwrap()].members,
        ["alice", "robert"]
    );
    assert!(matches!(
        last_body(&s, "#rust"),
        Body::Presence {
            event: PresenceEvent::Quit,
            ..
        }
    ));
    assert_eq!(s.convs[s.find("#rust").unwrap()].unread, 0);
}

#[test]
fn losing_the_link_fails_pending_requests_and_reconnecting_rejoins() {
    let mut s = connected();
    type_line(&mut s, "are you there?");
    net(
        &mut s,
        NetEvent::Disconnected {
            reason: "reset".into(),
            retry_in: Duration::from_secs(2),
        },
    );
    assert!(matches!(s.link, Link::Disconnected { .. }));
    assert_eq!(s.retry_in_secs(), Some(2));
    s.now_ms += 1_500;
    assert_eq!(s.retry_in_secs(), Some(1));
    let rust = s.find("#rust").unwrap();
    assert!(s.convs[rust].entries.iter().any(|e| matches!(
        e.body,
        Body::Chat {
            delivery: Delivery::Failed,
            ..
        }
    )));
    // Typing while offline keeps the line.
    let out = type_line(&mut s, "later");
    assert!(out.is_empty());
    assert_eq!(s.editor.text(), "later");
    let out = net(&mut s, NetEvent::Connected(welcome(false)));
    let [NetCommand::Setup(frames)] = out.as_slice() else {
        panic!()
    };
    let joins: Vec<&Outgoing> = frames
        .iter()
        .map(|(_, f)| f)
        .filter(|f| matches!(f, Outgoing::Core(ClientFrame::Join { .. })))
        .collect();
    assert_eq!(joins.len(), 2, "both rooms are rejoined");
}

#[test]
fn tab_completes_nicknames_and_cycles() {
    let mut s = connected();
    frame(
        &mut s,
        ServerFrame::Joined {
            id: None,
            room: "#rust".into(),
            members: vec!["alice".into(), "bob".into(), "bea".into()],
            topic: None,
        },
    );
    key(&mut s, KeyCode::Char('b'));
    key(&mut s, KeyCode::Tab);
    assert_eq!(s.editor.text(), "bea: ");
    key(&mut s, KeyCode::Tab);
    assert_eq!(s.editor.text(), "bob: ");
    key(&mut s, KeyCode::Char('x'));
    assert_eq!(s.editor.text(), "bob: x");
}

#[test]
fn join_and_query_switch_conversations() {
    let mut s = connected();
    let out = type_line(&mut s, "/join #new");
    assert_eq!(s.current_conv().name, "#new");
    assert!(matches!(
        sent_ids(&out)[0].1,
        Outgoing::Core(ClientFrame::Join { .. })
    ));
    type_line(&mut s, "/query dave");
    assert_eq!(
        (s.current_conv().name.as_str(), s.current_conv().kind),
        ("dave", ConvKind::Direct)
    );
    update(
        &mut s,
        Event::Key(KeyEvent::new(KeyCode::Char('p'), KeyModifiers::CONTROL)),
    );
    assert_eq!(s.current_conv().name, "#new");
    let out = type_line(&mut s, "/close");
    assert!(matches!(
        sent_ids(&out)[0].1,
        Outgoing::Core(ClientFrame::Part { .. })
    ));
    assert!(s.find("#new").is_none());
}

#[test]
fn page_up_scrolls_and_end_returns_to_the_bottom() {
    let mut s = connected();
    s.viewport = (100, 20);
    for i in 0..100 {
        frame(
            &mut s,
            room_message("#rust", "bob", &format!("message {i}")),
        );
    }
    key(&mut s, KeyCode::PageUp);
    let scrolled = s.current_conv().scroll;
    assert!(scrolled > 0);
    // New messages keep the reader's place.
    frame(&mut s, room_message("#rust", "bob", "newer"));
    assert_eq!(s.current_conv().scroll, scrolled + 1);
    // A message on three rows moves the view by three.
    frame(&mut s, room_message("#rust", "bob", "one\ntwo\nthree"));
    assert_eq!(s.current_conv().scroll, scrolled + 4);
    // The conversation is 62 columns wide; 200 characters wrap onto 4 rows
    // of 50 after the 12-column prefix.
    frame(&mut s, room_message("#rust", "bob", &"word ".repeat(40)));
    assert_eq!(s.current_conv().scroll, scrolled + 8);
    key(&mut s, KeyCode::End);
    assert_eq!(s.current_conv().scroll, 0);
    for _ in 0..100 {
        key(&mut s, KeyCode::PageUp);
    }
    assert!(s.current_conv().scroll <= 101, "clamped to the history");
}

#[test]
fn screen_login_without_an_accounts_server_goes_guest_without_asking() {
    let server = ServerInfo {
        addr: "x:1".into(),
        ..ServerInfo::default()
    };
    let mut s = State::new(
        server,
        "alice".into(),
        Some("alice".into()),
        Frontend::Screen,
    );
    let out = net(&mut s, NetEvent::Connected(welcome(false)));
    assert!(s.prompt.is_none());
    let [NetCommand::Setup(frames)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        frames[0].1,
        Outgoing::Core(ClientFrame::Nick {
            nick: "alice".into()
        })
    );
    assert!(matches!(last_body(&s, "*"), Body::Info(t) if t.contains("no accounts")));
    // With accounts, it asks.
    let mut s = State::new(
        ServerInfo::default(),
        "alice".into(),
        Some("alice".into()),
        Frontend::Screen,
    );
    let mut w = welcome(true);
    w.features = vec!["accounts".into()];
    let out = net(&mut s, NetEvent::Connected(w));
    assert_eq!(out, [NetCommand::Setup(vec![])]);
    assert!(s.prompt.is_some());
    let out = type_line(&mut s, "pw");
    assert!(matches!(&sent_ids(&out)[0].1, Outgoing::Json(v) if v["type"] == "login"));
}

mod files {
    use super::*;
    use crate::transfer::{TransferEvent, TransferEventKind, TransferJob};
    use crate::transfers::{Direction, TransferStatus};

    fn files_connected() -> State {
        let mut s = connected();
        s.server.features = vec!["files".into()];
        s
    }

    fn custom(s: &mut State, kind: &str, fields: serde_json::Value) -> Vec<NetCommand> {
        let serde_json::Value::Object(fields) = fields else {
            panic!("fields are an object")
        };
        net(
            s,
            NetEvent::Frame(Received::Custom {
                kind: kind.into(),
                fields,
            }),
        )
    }

    fn offer(s: &mut State, transfer: &str, room: Option<&str>) {
        let mut fields = json!({
            "transfer": transfer, "from": "bob", "name": "a.bin",
            "size": 100, "sha256": "00", "expires_at": 0
        });
        if let Some(room) = room {
            fields["room"] = json!(room);
        }
        custom(s, "file_available", fields);
    }

    fn event(s: &mut State, slot: u32, kind: TransferEventKind) {
        update(s, Event::Transfer(TransferEvent { slot, kind }));
    }

    #[test]
    fn an_offer_is_shown_where_it_belongs_and_accepted_by_default() {
        let mut s = files_connected();
        offer(&mut s, "aaaa1111", None);
        offer(&mut s, "bbbb2222", Some("#go"));
        let bob = s
            .find("bob")
            .expect("a direct conversation with the sender");
        assert!(matches!(
            s.convs[bob].entries.back().unwrap().body,
            Body::FileOffer(_)
        ));
        let go = s.find("#go").unwrap();
        assert!(matches!(
            s.convs[go].entries.back().unwrap().body,
            Body::FileOffer(_)
        ));
        assert_eq!(s.convs[go].unread, 1, "an offer counts as unread");
        assert!(s.convs[go].mentioned, "and is addressed to us");
        // The same offer again (e.g. from /files) is not shown twice.
        offer(&mut s, "bbbb2222", Some("#go"));
        assert_eq!(s.transfers.offers.len(), 2);

        let dir = tempfile::tempdir().unwrap();
        let out = update(
            &mut s,
            Event::Line(format!("/download {}", dir.path().display())),
        );
        let [NetCommand::Transfer(TransferJob::Download { slot, file, dest })] = out.as_slice()
        else {
            panic!("{out:?}")
        };
        assert_eq!(file.transfer, "bbbb2222", "the latest offer");
        assert_eq!(dest, &dir.path().join("a.bin"));
        assert_eq!(s.transfers.offers.len(), 1);
        let t = s.transfers.by_slot(*slot).unwrap();
        assert_eq!(
            (t.direction, t.conv.as_str(), &t.status),
            (Direction::Download, "#go", &TransferStatus::Preparing)
        );

        // Declining names the other by a prefix; the ok forgets it.
        let out = update(&mut s, Event::Line("/decline aaaa".into()));
        let [NetCommand::Send(id, Outgoing::Json(frame))] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(
            frame,
            &json!({"type": "file_decline", "transfer": "aaaa1111"})
        );
        frame_ok(&mut s, *id);
        assert!(s.transfers.offers.is_empty());
        let last = &s.convs[bob].entries.back().unwrap().body;
        assert_eq!(last, &Body::Info("declined a.bin".into()));
    }

    fn frame_ok(s: &mut State, id: u64) {
        frame(
            s,
            ServerFrame::Ok {
                id: Some(id),
                nick: None,
            },
        );
    }

    #[test]
    fn an_interrupted_upload_resumes_after_reconnecting() {
        let mut s = files_connected();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        std::fs::write(&path, vec![7u8; 1000]).unwrap();
        let out = update(
            &mut s,
            Event::Line(format!("/send #rust {}", path.display())),
        );
        let [NetCommand::Transfer(TransferJob::Upload { slot, name, to, .. })] = out.as_slice()
        else {
            panic!("{out:?}")
        };
        let slot = *slot;
        assert_eq!(name, "big.bin");
        assert_eq!(to.room.as_deref(), Some("#rust"));
        event(
            &mut s,
            slot,
            TransferEventKind::Started {
                transfer: "cafe0001".into(),
                done: 0,
                total: 1000,
            },
        );
        event(&mut s, slot, TransferEventKind::Progress { done: 400 });
        net(
            &mut s,
            NetEvent::Disconnected {
                reason: "gone".into(),
                retry_in: Duration::from_secs(1),
            },
        );
        event(&mut s, slot, TransferEventKind::Interrupted);
        assert_eq!(
            s.transfers.by_slot(slot).unwrap().status,
            TransferStatus::Interrupted
        );
        let out = net(&mut s, NetEvent::Connected(welcome(false)));
        let [NetCommand::Setup(_), NetCommand::Transfer(TransferJob::ResumeUpload {
            slot: again,
            transfer,
            ..
        })] = out.as_slice()
        else {
            panic!("{out:?}")
        };
        assert_eq!((*again, transfer.as_str()), (slot, "cafe0001"));
        // A failure is shown in words where the file was going.
        event(
            &mut s,
            slot,
            TransferEventKind::Failed {
                code: Some("quota_exceeded".into()),
                message: "over your quota".into(),
            },
        );
        let rust = s.find("#rust").unwrap();
        assert_eq!(
            s.convs[rust].entries.back().unwrap().body,
            Body::Error {
                code: "quota_exceeded".into(),
                message: "sending big.bin failed: over your quota".into()
            }
        );
        // /cancel of our upload stops nothing more locally but withdraws it.
        let out = update(&mut s, Event::Line("/cancel cafe".into()));
        let [NetCommand::Send(_, Outgoing::Json(frame))] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(
            frame,
            &json!({"type": "file_cancel", "transfer": "cafe0001"})
        );
    }

    #[test]
    fn cancelling_a_download_stops_it_and_offers_it_again() {
        let mut s = files_connected();
        offer(&mut s, "dddd4444", None);
        let dir = tempfile::tempdir().unwrap();
        let out = update(
            &mut s,
            Event::Line(format!("/accept dddd {}", dir.path().display())),
        );
        let [NetCommand::Transfer(job)] = out.as_slice() else {
            panic!("{out:?}")
        };
        let slot = job.slot();
        event(
            &mut s,
            slot,
            TransferEventKind::Started {
                transfer: "dddd4444".into(),
                done: 0,
                total: 100,
            },
        );
        let out = update(&mut s, Event::Line("/cancel dddd".into()));
        assert_eq!(out, vec![NetCommand::StopTransfer(slot)]);
        assert_eq!(
            s.transfers.by_slot(slot).unwrap().status,
            TransferStatus::Cancelled
        );
        let bob = s.find("bob").unwrap();
        assert_eq!(
            s.convs[bob].entries.back().unwrap().body,
            Body::Info("download of a.bin stopped; /download dddd4444 resumes it".into())
        );
        // A late report from the stopped worker changes nothing.
        event(&mut s, slot, TransferEventKind::Progress { done: 50 });
        assert_eq!(s.transfers.by_slot(slot).unwrap().done, 0);
        assert_eq!(s.transfers.find_offer(None).unwrap().transfer, "dddd4444");
    }

    #[test]
    fn file_commands_need_the_files_feature() {
        let mut s = connected();
        let out = update(&mut s, Event::Line("/files".into()));
        assert!(out.is_empty());
        let here = s.current;
        assert!(matches!(
            &s.convs[here].entries.back().unwrap().body,
            Body::Error { code, .. } if code == "feature_disabled"
        ));
    }
}

#[test]
fn logging_in_lists_waiting_files_when_the_server_has_them() {
    let mut s = state();
    s.user = Some("alice".into());
    s.password = Some("pw".into());
    let mut w = welcome(false);
    w.features = vec!["accounts".into(), "files".into()];
    net(&mut s, NetEvent::Connected(w));
    let out = net(
        &mut s,
        NetEvent::Frame(Received::Custom {
            kind: "logged_in".into(),
            fields: json!({"user": "alice"}).as_object().unwrap().clone(),
        }),
    );
    assert!(
        out.iter().any(|c| matches!(
            c,
            NetCommand::Send(_, Outgoing::Json(f)) if f == &json!({"type": "file_list"})
        )),
        "{out:?}"
    );
    // New files in the listing become offers, shown where they belong.
    let id = out
        .iter()
        .find_map(|c| match c {
            NetCommand::Send(id, Outgoing::Json(f)) if f == &json!({"type": "file_list"}) => {
                Some(*id)
            }
            _ => None,
        })
        .unwrap();
    net(
        &mut s,
        NetEvent::Frame(Received::Custom {
            kind: "file_list".into(),
            fields: json!({
                "id": id,
                "incoming": [{"transfer": "abcd", "from": "bob", "name": "x.txt",
                              "size": 3, "sha256": "00", "expires_at": 0}],
                "outgoing": []
            })
            .as_object()
            .unwrap()
            .clone(),
        }),
    );
    assert_eq!(s.transfers.offers.len(), 1);
    let bob = s.find("bob").unwrap();
    assert!(matches!(
        s.convs[bob].entries.back().unwrap().body,
        Body::FileOffer(_)
    ));
}

mod rooms {
    use super::*;
    use crate::state::{Invitation, SERVER_CONV as SERVER};

    fn rooms_connected() -> State {
        let mut s = connected();
        s.server.features = vec!["accounts".into(), "private_rooms".into()];
        s
    }

    fn custom(s: &mut State, kind: &str, fields: serde_json::Value) -> Vec<NetCommand> {
        let serde_json::Value::Object(fields) = fields else {
            panic!("fields are an object")
        };
        net(
            s,
            NetEvent::Frame(Received::Custom {
                kind: kind.into(),
                fields,
            }),
        )
    }

    /// The one JSON frame sent, with its id.
    fn sent_json(out: &[NetCommand]) -> (u64, serde_json::Value) {
        match sent_ids(out).as_slice() {
            [(id, Outgoing::Json(v))] => (*id, v.clone()),
            other => panic!("expected one JSON frame, got {other:?}"),
        }
    }

    fn joined(id: Option<u64>, room: &str, members: &[&str], topic: Option<&str>) -> ServerFrame {
        ServerFrame::Joined {
            id,
            room: room.into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            topic: topic.map(Into::into),
        }
    }

    fn is_error(body: &Body, code: &str, words: &str) -> bool {
        matches!(body, Body::Error { code: c, message } if c == code && message.contains(words))
    }

    #[test]
    fn create_switches_to_a_private_room_with_its_topic() {
        let mut s = rooms_connected();
        let out = type_line(&mut s, "/create #secret launch plans");
        let (id, frame) = sent_json(&out);
        assert_eq!(
            frame,
            json!({"type": "room_create", "room": "#secret", "topic": "launch plans"})
        );
        assert_eq!(s.current_conv().name, "#secret");
        frame_in(
            &mut s,
            joined(Some(id), "#secret", &["alice"], Some("launch plans")),
        );
        let conv = s.current_conv();
        assert!(conv.private && conv.joined && conv.closed.is_none());
        assert_eq!(conv.topic.as_deref(), Some("launch plans"));
        assert_eq!(conv.members, ["alice"]);
    }

    fn frame_in(s: &mut State, f: ServerFrame) -> Vec<NetCommand> {
        frame(s, f)
    }

    #[test]
    fn a_failed_create_leaves_the_room_unjoined() {
        let mut s = rooms_connected();
        let (id, _) = sent_json(&type_line(&mut s, "/create #taken"));
        frame(
            &mut s,
            ServerFrame::Error {
                id: Some(id),
                code: ErrorCode::custom("room_exists"),
                message: "#taken exists".into(),
            },
        );
        let i = s.find("#taken").unwrap();
        assert!(!s.convs[i].joined && !s.convs[i].private);
        assert!(is_error(
            &last_body(&s, "#taken"),
            "room_exists",
            "#taken exists"
        ));
        // The public room we are in stays joined when it cannot be created.
        frame(&mut s, joined(None, "#rust", &["alice", "bob"], None));
        let (id, _) = sent_json(&type_line(&mut s, "/create #rust"));
        frame(
            &mut s,
            ServerFrame::Error {
                id: Some(id),
                code: ErrorCode::custom("room_exists"),
                message: "#rust exists".into(),
            },
        );
        let i = s.find("#rust").unwrap();
        assert!(s.convs[i].joined);
    }

    #[test]
    fn an_invitation_is_shown_in_the_server_conversation_and_accepted() {
        let mut s = rooms_connected();
        custom(
            &mut s,
            "room_invitation",
            json!({"room": "#secret", "from": "bob"}),
        );
        assert_eq!(
            last_body(&s, SERVER),
            Body::Invitation(Invitation {
                room: "#secret".into(),
                from: "bob".into()
            })
        );
        // Addressed to us: the server conversation is highlighted.
        assert!(s.convs[0].unread == 1 && s.convs[0].mentioned);
        // Tab completes the invited room.
        for c in "/accept-invite #se".chars() {
            key(&mut s, KeyCode::Char(c));
        }
        key(&mut s, KeyCode::Tab);
        assert_eq!(s.editor.text(), "/accept-invite #secret ");
        let (id, frame) = sent_json(&key(&mut s, KeyCode::Enter));
        assert_eq!(frame, json!({"type": "room_accept", "room": "#secret"}));
        assert_eq!(s.current_conv().name, "#secret");
        frame_in(&mut s, joined(Some(id), "#secret", &["alice", "bob"], None));
        assert!(s.current_conv().private);
        assert!(s.invitations.is_empty());
        // With nothing waiting, `/accept-invite` says so and sends nothing.
        let out = type_line(&mut s, "/accept-invite");
        assert!(sent_ids(&out).is_empty());
        assert!(is_error(
            &last_body(&s, "#secret"),
            "input",
            "no invitation"
        ));
    }

    #[test]
    fn being_kicked_closes_the_conversation() {
        let mut s = rooms_connected();
        let i = s.conv_index("#secret", ConvKind::Room);
        s.convs[i].joined = true;
        s.convs[i].add_member("alice");
        s.convs[i].add_member("bob");
        s.switch_to(i);
        custom(
            &mut s,
            "room_event",
            json!({"room": "#secret", "event": "kick", "by": "bob", "user": "alice", "reason": "spam", "ts": 5}),
        );
        let conv = &s.convs[i];
        assert!(!conv.joined && conv.members.is_empty());
        assert_eq!(
            conv.closed.as_deref(),
            Some("you were kicked from #secret by bob: spam")
        );
        let out = type_line(&mut s, "hello?");
        assert!(sent_ids(&out).is_empty(), "{out:?}");
        assert!(is_error(&last_body(&s, "#secret"), "not_in_room", "kicked"));
        // A new invitation accepted opens it again.
        let (id, _) = sent_json(&type_line(&mut s, "/accept-invite #secret"));
        frame(&mut s, joined(Some(id), "#secret", &["alice", "bob"], None));
        assert!(s.convs[i].closed.is_none() && s.convs[i].joined);
    }

    #[test]
    fn moderation_events_update_the_room() {
        let mut s = rooms_connected();
        let i = s.conv_index("#secret", ConvKind::Room);
        s.convs[i].joined = true;
        s.convs[i].add_member("carol");
        custom(
            &mut s,
            "room_event",
            json!({"room": "#secret", "event": "topic", "by": "bob", "topic": "ship it", "ts": 5}),
        );
        assert_eq!(s.convs[i].topic.as_deref(), Some("ship it"));
        custom(
            &mut s,
            "room_event",
            json!({"room": "#secret", "event": "ban", "by": "bob", "user": "carol", "ts": 6}),
        );
        assert!(!s.convs[i].has_member("carol"));
        assert!(s.convs[i].joined && s.convs[i].private);
        let Body::RoomEvent(note) = last_body(&s, "#secret") else {
            panic!()
        };
        assert_eq!(note.describe("alice"), "bob banned carol from #secret");
        custom(
            &mut s,
            "room_event",
            json!({"room": "#secret", "event": "topic", "by": "alice", "ts": 7}),
        );
        assert_eq!(s.convs[i].topic, None);
        custom(
            &mut s,
            "room_event",
            json!({"room": "#secret", "event": "delete", "by": "bob", "ts": 8}),
        );
        assert_eq!(
            s.convs[i].closed.as_deref(),
            Some("#secret was deleted by bob")
        );
    }

    #[test]
    fn commands_default_to_the_current_room() {
        let mut s = rooms_connected();
        // In #rust.
        let (_, f) = sent_json(&type_line(&mut s, "/kick bob too loud"));
        assert_eq!(
            f,
            json!({"type": "room_kick", "room": "#rust", "user": "bob", "reason": "too loud"})
        );
        let (_, f) = sent_json(&type_line(&mut s, "/invite bob"));
        assert_eq!(
            f,
            json!({"type": "room_invite", "room": "#rust", "user": "bob"})
        );
        let (_, f) = sent_json(&type_line(&mut s, "/topic --clear"));
        assert_eq!(
            f,
            json!({"type": "room_topic", "room": "#rust", "topic": ""})
        );
        let (_, f) = sent_json(&type_line(&mut s, "/op carol"));
        assert_eq!(
            f,
            json!({"type": "room_promote", "room": "#rust", "user": "carol"})
        );
        // The server conversation is no room.
        s.switch_to(0);
        let out = type_line(&mut s, "/ban bob");
        assert!(sent_ids(&out).is_empty());
        assert!(is_error(&last_body(&s, SERVER), "input", "not a room"));
        let (_, f) = sent_json(&type_line(&mut s, "/invite bob #rust"));
        assert_eq!(f["room"], "#rust");
    }

    #[test]
    fn an_ok_says_what_was_done_unless_an_event_will() {
        let mut s = rooms_connected();
        let (id, _) = sent_json(&type_line(&mut s, "/invite bob"));
        frame(
            &mut s,
            ServerFrame::Ok {
                id: Some(id),
                nick: None,
            },
        );
        assert_eq!(
            last_body(&s, "#rust"),
            Body::Info("invited bob to #rust".into())
        );
        // In the room: the `room_event` will tell.
        let before = s.convs[s.current].entries.len();
        let (id, _) = sent_json(&type_line(&mut s, "/kick bob"));
        frame(
            &mut s,
            ServerFrame::Ok {
                id: Some(id),
                nick: None,
            },
        );
        assert_eq!(s.convs[s.current].entries.len(), before);
        // `/leave` ends the membership.
        let (id, f) = sent_json(&type_line(&mut s, "/leave"));
        assert_eq!(f, json!({"type": "room_leave", "room": "#rust"}));
        frame(
            &mut s,
            ServerFrame::Ok {
                id: Some(id),
                nick: None,
            },
        );
        assert!(s.current_conv().closed.is_some() && !s.current_conv().joined);
    }

    #[test]
    fn a_server_without_private_rooms_is_explained() {
        let mut s = connected();
        let out = type_line(&mut s, "/create #secret");
        assert!(sent_ids(&out).is_empty());
        assert!(is_error(
            &last_body(&s, "#rust"),
            "feature_disabled",
            "no private rooms"
        ));
    }

    #[test]
    fn logging_in_puts_us_back_into_private_rooms() {
        let mut s = rooms_connected();
        frame(
            &mut s,
            joined(None, "#secret", &["alice", "bob"], Some("plans")),
        );
        let i = s.find("#secret").unwrap();
        assert!(s.convs[i].private && s.convs[i].joined);
        assert_eq!(s.convs[i].topic.as_deref(), Some("plans"));
    }

    #[test]
    fn info_and_invitations_replies() {
        let mut s = rooms_connected();
        let (id, f) = sent_json(&type_line(&mut s, "/info"));
        assert_eq!(f, json!({"type": "room_info", "room": "#rust"}));
        custom(
            &mut s,
            "room_info",
            json!({"id": id, "room": "#rust", "topic": "t", "owner": "bob",
                   "moderators": [], "members": ["alice", "bob"], "present": ["alice"]}),
        );
        let Body::RoomInfo(info) = last_body(&s, "#rust") else {
            panic!()
        };
        assert_eq!(info.owner, "bob");
        assert!(s.current_conv().private);
        assert_eq!(s.current_conv().topic.as_deref(), Some("t"));
        sent_json(&type_line(&mut s, "/invites"));
        custom(
            &mut s,
            "room_invitations",
            json!({"invitations": [{"room": "#a", "from": "bob", "at": 1}]}),
        );
        assert_eq!(s.invitations.len(), 1);
        assert_eq!(s.invitations[0].room, "#a");
    }
}

mod history {
    use super::*;
    use crate::state::{Origin, PendingKind};

    fn custom(s: &mut State, kind: &str, fields: serde_json::Value) -> Vec<NetCommand> {
        let serde_json::Value::Object(fields) = fields else {
            panic!("fields are an object")
        };
        net(
            s,
            NetEvent::Frame(Received::Custom {
                kind: kind.into(),
                fields,
            }),
        )
    }

    fn history_welcome() -> Welcome {
        Welcome {
            features: vec!["accounts".into(), "history".into()],
            ..welcome(true)
        }
    }

    fn message(id: u64, kind: MessageKind, from: &str, room: Option<&str>, text: &str) -> Message {
        let mut message = Message::new(id, id * 1000, kind, from, text);
        message.room = room.map(Into::into);
        message.to = (kind == MessageKind::Direct).then(|| "alice".into());
        message
    }

    fn json_sends(out: &[NetCommand]) -> Vec<(u64, serde_json::Value)> {
        let mut found = Vec::new();
        for c in out {
            match c {
                NetCommand::Send(id, Outgoing::Json(v)) => found.push((*id, v.clone())),
                NetCommand::Setup(frames) => {
                    for (id, f) in frames {
                        if let Outgoing::Json(v) = f {
                            found.push((*id, v.clone()));
                        }
                    }
                }
                _ => {}
            }
        }
        found
    }

    fn joins(out: &[NetCommand]) -> Vec<String> {
        let mut rooms = Vec::new();
        for c in out {
            let frames: Vec<&Outgoing> = match c {
                NetCommand::Send(_, f) => vec![f],
                NetCommand::Setup(frames) => frames.iter().map(|(_, f)| f).collect(),
                _ => vec![],
            };
            for f in frames {
                if let Outgoing::Core(ClientFrame::Join { room }) = f {
                    rooms.push(room.clone());
                }
            }
        }
        rooms
    }

    /// alice, logged in with a password on a server with history, in
    /// #team (shown), having seen message 10; the journal emptied.
    fn logged_in() -> State {
        let server = ServerInfo {
            addr: "x:1".into(),
            ..ServerInfo::default()
        };
        let mut s = State::new(
            server,
            "alice".into(),
            Some("alice".into()),
            Frontend::Screen,
        );
        s.password = Some("secret pw".into());
        let i = s.conv_index("#team", ConvKind::Room);
        s.convs[i].joined = true;
        s.switch_to(i);
        let out = net(&mut s, NetEvent::Connected(history_welcome()));
        let sends = json_sends(&out);
        assert_eq!(sends[0].1["type"], "login", "{out:?}");
        let out = custom(
            &mut s,
            "logged_in",
            json!({"id": sends[0].0, "user": "alice", "nick": "alice", "admin": false,
                   "resume_token": "tok", "token_expires": u64::MAX / 2}),
        );
        assert_eq!(joins(&out), ["#team"]);
        frame(
            &mut s,
            ServerFrame::Message(message(10, MessageKind::Room, "bob", Some("#team"), "hi")),
        );
        s.journal.clear();
        s
    }

    /// Drops the link and reconnects; returns the id of the `resume` sent.
    fn reconnect(s: &mut State) -> u64 {
        net(
            s,
            NetEvent::Disconnected {
                reason: "gone".into(),
                retry_in: Duration::from_secs(1),
            },
        );
        let out = net(s, NetEvent::Connected(history_welcome()));
        let sends = json_sends(&out);
        assert_eq!(sends.len(), 1, "only the resume: {out:?}");
        assert_eq!(
            sends[0].1,
            json!({"type": "resume", "token": "tok", "last_msg_id": 10})
        );
        assert!(joins(&out).is_empty(), "rooms wait for the login: {out:?}");
        s.journal.clear();
        sends[0].0
    }

    fn journal_lines(s: &mut State) -> Vec<String> {
        s.journal
            .drain(..)
            .map(|(conv, e)| crate::lines::format(&conv, &e))
            .collect()
    }

    #[test]
    fn reconnecting_resumes_and_shows_exactly_the_missed_messages_in_order() {
        let mut s = logged_in();
        assert_eq!(s.resume_token, Some(("tok".into(), u64::MAX / 2)));
        assert_eq!(s.last_msg_id, Some(10));
        let id = reconnect(&mut s);
        custom(
            &mut s,
            "logged_in",
            json!({"id": id, "user": "alice", "nick": "alice", "admin": false,
                   "resume_token": "tok2", "token_expires": u64::MAX / 2, "resumed": true}),
        );
        frame(
            &mut s,
            ServerFrame::Joined {
                id: None,
                room: "#team".into(),
                members: vec!["alice".into(), "bob".into(), "carol".into()],
                topic: None,
            },
        );
        let missed = [
            message(11, MessageKind::Room, "bob", Some("#team"), "one"),
            message(12, MessageKind::Direct, "bob", None, "psst"),
            message(13, MessageKind::Room, "carol", Some("#team"), "three"),
        ];
        custom(
            &mut s,
            "missed",
            json!({"messages": serde_json::to_value(&missed[..2]).unwrap()}),
        );
        custom(
            &mut s,
            "missed",
            json!({"messages": serde_json::to_value(&missed[2..]).unwrap()}),
        );
        // Nothing is shown before the catch-up ends (each separator counts).
        assert!(!s.current_conv().has_msg(11));
        let out = custom(
            &mut s,
            "resumed",
            json!({"id": id, "missed": 3, "more": false, "last_msg_id": 13}),
        );
        assert!(
            joins(&out).is_empty(),
            "the server put us back into #team: {out:?}"
        );
        custom(&mut s, "unread", json!({"conversations": []}));
        assert_eq!(
            journal_lines(&mut s),
            [
                "joined #team alice,bob,carol",
                "away #team 2",
                "missed #team bob one",
                "missed #team carol three",
                "away bob 1",
                "missed bob bob psst",
                "resumed * 3",
            ]
        );
        let team: Vec<Body> = s
            .current_conv()
            .entries
            .iter()
            .map(|e| e.body.clone())
            .collect();
        let tail = &team[team.len() - 3..];
        assert_eq!(tail[0], Body::Away { count: 2 });
        assert!(matches!(
            &tail[1],
            Body::Chat {
                msg_id: Some(11),
                origin: Origin::Missed,
                ..
            }
        ));
        assert!(matches!(
            &tail[2],
            Body::Chat {
                msg_id: Some(13),
                origin: Origin::Missed,
                ..
            }
        ));
        assert_eq!(s.last_msg_id, Some(13));
        assert_eq!(s.resume_token.as_ref().map(|t| t.0.as_str()), Some("tok2"));
        let bob = s.find("bob").unwrap();
        assert_eq!(s.convs[bob].unread, 1, "a missed direct message is unread");
        assert!(s.logged_in && s.catch_up.is_none());
    }

    #[test]
    fn a_live_message_during_the_catch_up_follows_the_missed_ones() {
        let mut s = logged_in();
        let id = reconnect(&mut s);
        custom(
            &mut s,
            "logged_in",
            json!({"id": id, "user": "alice", "resumed": true}),
        );
        custom(
            &mut s,
            "missed",
            json!({"messages": [message(11, MessageKind::Room, "bob", Some("#team"), "old")]}),
        );
        frame(
            &mut s,
            ServerFrame::Message(message(12, MessageKind::Room, "bob", Some("#team"), "new")),
        );
        custom(
            &mut s,
            "resumed",
            json!({"id": id, "missed": 1, "last_msg_id": 11}),
        );
        assert_eq!(
            journal_lines(&mut s),
            [
                "away #team 1",
                "missed #team bob old",
                "msg #team bob new",
                "resumed * 1"
            ]
        );
    }

    #[test]
    fn when_more_was_missed_the_rest_is_read_from_the_history() {
        let mut s = logged_in();
        let id = reconnect(&mut s);
        custom(
            &mut s,
            "logged_in",
            json!({"id": id, "user": "alice", "resumed": true}),
        );
        frame(
            &mut s,
            ServerFrame::Joined {
                id: None,
                room: "#team".into(),
                members: vec!["alice".into(), "bob".into()],
                topic: None,
            },
        );
        custom(
            &mut s,
            "missed",
            json!({"messages": [
                message(11, MessageKind::Room, "bob", Some("#team"), "one"),
                message(12, MessageKind::Room, "bob", Some("#team"), "two"),
            ]}),
        );
        let out = custom(
            &mut s,
            "resumed",
            json!({"id": id, "missed": 2, "more": true, "last_msg_id": 12}),
        );
        let asked = json_sends(&out);
        let (page_id, f) = asked
            .iter()
            .find(|(_, f)| f["type"] == "history")
            .cloned()
            .unwrap_or_else(|| panic!("{out:?}"));
        assert_eq!(f, json!({"type": "history", "room": "#team", "after": 12}));
        // A live message arrives before the page.
        frame(
            &mut s,
            ServerFrame::Message(message(20, MessageKind::Room, "bob", Some("#team"), "live")),
        );
        let out = custom(
            &mut s,
            "history",
            json!({"id": page_id, "room": "#team", "more": true, "messages": [
                message(13, MessageKind::Room, "bob", Some("#team"), "three"),
            ]}),
        );
        let (next_id, f) = json_sends(&out).remove(0);
        assert_eq!(f, json!({"type": "history", "room": "#team", "after": 13}));
        let last = custom(
            &mut s,
            "history",
            json!({"id": next_id, "room": "#team", "more": false, "messages": [
                message(14, MessageKind::Room, "carol", Some("#team"), "four"),
                message(20, MessageKind::Room, "bob", Some("#team"), "live"),
            ]}),
        );
        let team = &s.current_conv().entries;
        let tail: Vec<String> = team
            .iter()
            .skip(team.len() - 6)
            .map(|e| crate::lines::format("#team", e))
            .collect();
        assert_eq!(
            tail,
            [
                "away #team 4",
                "missed #team bob one",
                "missed #team bob two",
                "missed #team bob three",
                "missed #team carol four",
                "msg #team bob live",
            ]
        );
        assert!(
            json_sends(&last).is_empty(),
            "no page after the last: {last:?}"
        );
    }

    #[test]
    fn a_refused_token_falls_back_to_the_password_and_rejoins() {
        let mut s = logged_in();
        let id = reconnect(&mut s);
        let out = frame(
            &mut s,
            ServerFrame::Error {
                id: Some(id),
                code: ErrorCode::custom("invalid_token"),
                message: "unknown or expired token".into(),
            },
        );
        let sends = json_sends(&out);
        assert_eq!(
            sends[0].1,
            json!({"type": "login", "user": "alice", "password": "secret pw"})
        );
        assert_eq!(s.resume_token, None);
        let out = custom(
            &mut s,
            "logged_in",
            json!({"id": sends[0].0, "user": "alice", "resume_token": "new", "token_expires": 5}),
        );
        assert_eq!(joins(&out), ["#team"]);
        assert_eq!(s.resume_token, Some(("new".into(), 5)));
        // The server put us back into #team already: our join's reply is
        // not told twice.
        frame(
            &mut s,
            ServerFrame::Joined {
                id: None,
                room: "#team".into(),
                members: vec!["alice".into()],
                topic: None,
            },
        );
        let join_id = s
            .pending
            .iter()
            .find(|(_, p)| matches!(p.what, PendingKind::Join(_)))
            .map(|(id, _)| *id)
            .unwrap();
        frame(
            &mut s,
            ServerFrame::Joined {
                id: Some(join_id),
                room: "#team".into(),
                members: vec!["alice".into()],
                topic: None,
            },
        );
        let lines = journal_lines(&mut s);
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("joined ")).count(),
            1,
            "{lines:?}"
        );
    }

    #[test]
    fn our_rejoin_answered_before_the_server_puts_us_back_is_told_once() {
        let mut s = logged_in();
        let id = reconnect(&mut s);
        let out = frame(
            &mut s,
            ServerFrame::Error {
                id: Some(id),
                code: ErrorCode::custom("invalid_token"),
                message: "expired".into(),
            },
        );
        let login = json_sends(&out)[0].0;
        custom(&mut s, "logged_in", json!({"id": login, "user": "alice"}));
        let join_id = s
            .pending
            .iter()
            .find(|(_, p)| matches!(p.what, PendingKind::Join(_)))
            .map(|(id, _)| *id)
            .unwrap();
        for id in [Some(join_id), None] {
            frame(
                &mut s,
                ServerFrame::Joined {
                    id,
                    room: "#team".into(),
                    members: vec!["alice".into()],
                    topic: None,
                },
            );
        }
        let lines = journal_lines(&mut s);
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("joined ")).count(),
            1,
            "{lines:?}"
        );
    }

    #[test]
    fn private_rooms_put_back_by_the_server_are_learnt_quietly() {
        let mut s = logged_in();
        let id = reconnect(&mut s);
        s.server.features.push("private_rooms".into());
        custom(
            &mut s,
            "logged_in",
            json!({"id": id, "user": "alice", "resumed": true}),
        );
        frame(
            &mut s,
            ServerFrame::Joined {
                id: None,
                room: "#secret".into(),
                members: vec!["alice".into()],
                topic: None,
            },
        );
        let secret = s.find("#secret").unwrap();
        assert!(!s.convs[secret].private, "a joined alone does not tell");
        let out = custom(
            &mut s,
            "resumed",
            json!({"id": id, "missed": 0, "more": false, "last_msg_id": 10}),
        );
        let rooms_id = out
            .iter()
            .find_map(|c| match c {
                NetCommand::Send(id, Outgoing::Core(ClientFrame::Rooms {})) => Some(*id),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{out:?}"));
        s.journal.clear();
        frame(
            &mut s,
            ServerFrame::Rooms {
                id: Some(rooms_id),
                rooms: vec![{
                    let mut info = chat_protocol::RoomInfo::new("#secret", 1);
                    info.kind = Some("private".into());
                    info.topic = Some("plans".into());
                    info
                }],
            },
        );
        assert!(s.convs[secret].private);
        assert_eq!(s.convs[secret].topic.as_deref(), Some("plans"));
        assert!(s.journal.is_empty(), "{:?}", s.journal);
    }

    fn reads(out: &[NetCommand]) -> Vec<serde_json::Value> {
        json_sends(out)
            .into_iter()
            .map(|(_, f)| f)
            .filter(|f| f["type"] == "read")
            .collect()
    }

    #[test]
    fn what_the_user_has_seen_is_reported_read_once() {
        let mut s = logged_in();
        // The first key with message 10 shown reports it.
        let out = key(&mut s, KeyCode::Char('x'));
        assert_eq!(
            reads(&out),
            [json!({"type": "read", "room": "#team", "msg_id": 10})]
        );
        assert!(reads(&key(&mut s, KeyCode::Char('y'))).is_empty());
        // A new message is reported at the next key, not on arrival.
        let out = frame(
            &mut s,
            ServerFrame::Message(message(11, MessageKind::Room, "bob", Some("#team"), "new")),
        );
        assert!(reads(&out).is_empty());
        let out = key(&mut s, KeyCode::Backspace);
        assert_eq!(reads(&out)[0]["msg_id"], 11);
        // Seen at the bottom before scrolling up; what comes while
        // scrolled up is not in sight.
        s.viewport = (80, 5);
        for n in 12..30 {
            frame(
                &mut s,
                ServerFrame::Message(message(n, MessageKind::Room, "bob", Some("#team"), "more")),
            );
        }
        let out = key(&mut s, KeyCode::PageUp);
        assert!(s.current_conv().scroll > 0);
        assert_eq!(reads(&out)[0]["msg_id"], 29);
        frame(
            &mut s,
            ServerFrame::Message(message(
                30,
                MessageKind::Room,
                "bob",
                Some("#team"),
                "unseen",
            )),
        );
        assert!(reads(&key(&mut s, KeyCode::PageUp)).is_empty());
        let out = update(
            &mut s,
            Event::Key(KeyEvent::new(KeyCode::End, KeyModifiers::CONTROL)),
        );
        assert_eq!(reads(&out)[0]["msg_id"], 30);
        // Quitting reports what came last before the quit.
        frame(
            &mut s,
            ServerFrame::Message(message(31, MessageKind::Room, "bob", Some("#team"), "last")),
        );
        let out = update(
            &mut s,
            Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        );
        assert_eq!(reads(&out)[0]["msg_id"], 31);
        assert!(matches!(out.last(), Some(NetCommand::Quit(_))), "{out:?}");
    }

    #[test]
    fn after_a_password_login_the_unread_summary_is_shown() {
        let mut s = logged_in();
        // (logged_in() answered a password login.)
        custom(
            &mut s,
            "unread",
            json!({"conversations": [
                {"room": "#team", "last_msg_id": 10, "read_msg_id": 10, "unread": 0},
                {"room": "#go", "last_msg_id": 9, "read_msg_id": 2, "unread": 4},
                {"with": "bob", "last_msg_id": 8, "read_msg_id": 0, "unread": 1000},
            ]}),
        );
        let go = s.find("#go").unwrap();
        let bob = s.find("bob").expect("the direct conversation appears");
        assert_eq!(s.convs[go].unread, 4);
        assert_eq!(s.convs[bob].unread, 1000);
        assert!(s.convs[bob].mentioned);
        assert_eq!(
            journal_lines(&mut s),
            ["info * unread: #go 4, bob 1000+ (/history or PageUp in a conversation shows them)"]
        );
        // Only once per login; and not after a resume.
        custom(
            &mut s,
            "unread",
            json!({"conversations": [{"room": "#go", "last_msg_id": 9, "read_msg_id": 2, "unread": 4}]}),
        );
        assert!(s.journal.is_empty());
        let id = reconnect(&mut s);
        custom(
            &mut s,
            "logged_in",
            json!({"id": id, "user": "alice", "resumed": true}),
        );
        custom(
            &mut s,
            "resumed",
            json!({"id": id, "missed": 0, "more": false, "last_msg_id": 10}),
        );
        s.journal.clear();
        custom(
            &mut s,
            "unread",
            json!({"conversations": [{"room": "#go", "last_msg_id": 9, "read_msg_id": 2, "unread": 4}]}),
        );
        assert!(s.journal.is_empty(), "{:?}", s.journal);
    }

    #[test]
    fn without_history_a_resume_is_a_login_and_we_rejoin() {
        let mut s = logged_in();
        net(
            &mut s,
            NetEvent::Disconnected {
                reason: "gone".into(),
                retry_in: Duration::from_secs(1),
            },
        );
        let out = net(
            &mut s,
            NetEvent::Connected(Welcome {
                features: vec!["accounts".into(), "resume".into()],
                ..welcome(true)
            }),
        );
        let sends = json_sends(&out);
        assert_eq!(sends[0].1["type"], "resume");
        let out = custom(
            &mut s,
            "logged_in",
            json!({"id": sends[0].0, "user": "alice", "resumed": true, "resume_token": "tok"}),
        );
        assert_eq!(joins(&out), ["#team"]);
        assert!(s.catch_up.is_none() && s.logged_in);
    }

    #[test]
    fn logging_out_forgets_the_token() {
        let mut s = logged_in();
        let (id, f) = sent_json(&type_line(&mut s, "/logout"));
        assert_eq!(f, json!({"type": "logout"}));
        frame(
            &mut s,
            ServerFrame::Ok {
                id: Some(id),
                nick: None,
            },
        );
        assert_eq!(s.resume_token, None);
    }

    fn sent_json(out: &[NetCommand]) -> (u64, serde_json::Value) {
        json_sends(out).into_iter().next().expect("a JSON request")
    }

    #[test]
    fn history_and_page_up_at_the_top_prepend_older_pages() {
        let mut s = logged_in();
        s.viewport = (80, 24);
        // /history N asks for the page before the oldest message shown.
        let (id, f) = sent_json(&type_line(&mut s, "/history 2"));
        assert_eq!(
            f,
            json!({"type": "history", "room": "#team", "before": 10, "limit": 2})
        );
        custom(
            &mut s,
            "history",
            json!({"id": id, "room": "#team", "more": true, "messages": [
                message(7, MessageKind::Room, "bob", Some("#team"), "seven"),
                message(9, MessageKind::Room, "alice", Some("#team"), "nine"),
            ]}),
        );
        assert_eq!(
            journal_lines(&mut s),
            [
                "history #team bob seven",
                "history #team alice nine",
                "info #team 2 older messages loaded above (PageUp)"
            ]
        );
        let ids: Vec<u64> = s
            .current_conv()
            .entries
            .iter()
            .filter_map(|e| match e.body {
                Body::Chat { msg_id, .. } => msg_id,
                _ => None,
            })
            .collect();
        assert_eq!(ids, [7, 9, 10]);
        assert!(matches!(
            &s.current_conv().entries[1].body,
            Body::Chat {
                own: true,
                origin: Origin::History,
                ..
            }
        ));

        // The conversation fits the screen: PageUp is at the top at once.
        let out = key(&mut s, KeyCode::PageUp);
        let (id, f) = sent_json(&out);
        assert_eq!(
            f,
            json!({"type": "history", "room": "#team", "before": 7, "limit": 50})
        );
        // Once under way, another PageUp does not ask again.
        assert!(json_sends(&key(&mut s, KeyCode::PageUp)).is_empty());
        custom(
            &mut s,
            "history",
            json!({"id": id, "room": "#team", "more": false, "messages": [
                message(3, MessageKind::Room, "carol", Some("#team"), "three"),
            ]}),
        );
        assert_eq!(journal_lines(&mut s), ["history #team carol three"]);
        let first = &s.current_conv().entries[0].body;
        assert_eq!(first, &Body::Info("start of the conversation".into()));
        // Nothing older: PageUp stays quiet, /history says so.
        assert!(json_sends(&key(&mut s, KeyCode::PageUp)).is_empty());
        assert!(json_sends(&type_line(&mut s, "/history")).is_empty());
        assert!(matches!(last_body(&s, "#team"), Body::Info(t) if t.starts_with("no older")));
    }

    #[test]
    fn history_of_a_direct_conversation_and_where_there_is_none() {
        let mut s = logged_in();
        type_line(&mut s, "/query bob");
        let (_, f) = sent_json(&type_line(&mut s, "/history"));
        assert_eq!(f, json!({"type": "history", "with": "bob", "limit": 50}));
        s.switch_to(0);
        assert!(json_sends(&type_line(&mut s, "/history")).is_empty());
        assert!(matches!(last_body(&s, "*"), Body::Error { code, .. } if code == "input"));

        // A server without history is told, not asked.
        let mut s = connected();
        assert!(json_sends(&type_line(&mut s, "/history")).is_empty());
        assert!(
            matches!(last_body(&s, "#rust"), Body::Error { code, .. } if code == "feature_disabled")
        );
        assert!(json_sends(&key(&mut s, KeyCode::PageUp)).is_empty());
    }

    #[test]
    fn a_refused_page_can_be_asked_again() {
        let mut s = logged_in();
        let (id, _) = sent_json(&type_line(&mut s, "/history"));
        frame(
            &mut s,
            ServerFrame::Error {
                id: Some(id),
                code: ErrorCode::NOT_IN_ROOM,
                message: "you are not in #team".into(),
            },
        );
        assert!(!s.current_conv().history_pending);
        assert!(
            matches!(last_body(&s, "#team"), Body::Error { code, .. } if code == "not_in_room")
        );
        assert_eq!(json_sends(&type_line(&mut s, "/history")).len(), 1);
    }
}

#[test]
fn end_of_input_waits_for_the_sent_of_the_last_message() {
    let mut s = connected();
    s.frontend = Frontend::Line {
        password: None,
        new_password: None,
    };
    let out = update(&mut s, Event::Line("last words".into()));
    let [(id, _)] = sent_ids(&out)[..] else {
        panic!("{out:?}")
    };
    let out = update(&mut s, Event::InputEnded);
    assert!(
        !out.iter().any(|c| matches!(c, NetCommand::Quit(_))),
        "not before the message is stored: {out:?}"
    );
    let out = frame(
        &mut s,
        ServerFrame::Sent {
            id: Some(id),
            msg_id: 3,
            ts: 5,
            recipients: 1,
            text: None,
            stored: false,
        },
    );
    assert!(
        out.iter().any(|c| matches!(c, NetCommand::Quit(_))),
        "{out:?}"
    );
}
