//! The line mode's output format: one event per line, the event's kind
//! first, the free text last. Documented in README.md (`## client-tui`).

use chat_protocol::PresenceEvent;

use crate::state::{Body, Entry, Origin};

/// Escapes text so that it stays on one line: `\` → `\\`, newline → `\n`,
/// tab → `\t`, carriage return → `\r`, other control characters → `\u{…}`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The line for an entry of conversation `conv`.
pub fn format(conv: &str, entry: &Entry) -> String {
    match &entry.body {
        Body::Chat {
            from,
            text,
            own,
            origin,
            ..
        } => {
            let kind = match (origin, own) {
                (Origin::Missed, _) => "missed",
                (Origin::History, _) => "history",
                (Origin::Live, true) => "sent",
                (Origin::Live, false) => "msg",
            };
            format!("{kind} {conv} {from} {}", escape(text))
        }
        Body::Away { count } => format!("away {conv} {count}"),
        Body::Resumed { missed, more } => {
            let more = if *more { " more" } else { "" };
            format!("resumed {conv} {missed}{more}")
        }
        Body::Presence {
            event,
            nick,
            new_nick,
            reason,
        } => {
            let kind = match event {
                PresenceEvent::Join => "join",
                PresenceEvent::Part => "part",
                PresenceEvent::Quit => "quit",
                PresenceEvent::Nick => "nick",
            };
            let mut line = format!("{kind} {conv} {nick}");
            if let Some(new) = new_nick {
                line.push(' ');
                line.push_str(new);
            }
            if let Some(reason) = reason {
                line.push(' ');
                line.push_str(&escape(reason));
            }
            line
        }
        Body::Joined { members } => format!("joined {conv} {}", members.join(",")),
        // Labelled with the room asked about, wherever it was asked.
        Body::Users {
            room: Some(room),
            users,
        } => format!("users {room} {}", users.join(",")),
        Body::Users { users, .. } => format!("users {conv} {}", users.join(",")),
        Body::Rooms(rooms) => {
            let list: Vec<String> = rooms
                .iter()
                .map(|r| format!("{}:{}", r.name, r.members))
                .collect();
            format!("rooms {conv} {}", list.join(" "))
        }
        Body::Status(text) => format!("status {conv} {}", escape(text)),
        Body::Info(text) => format!("info {conv} {}", escape(text)),
        Body::Error { code, message } => format!("error {conv} {code} {}", escape(message)),
        Body::FileOffer(file) => format!(
            "file {conv} {} {} {} {}",
            file.from,
            file.transfer,
            file.size,
            escape(&file.name)
        ),
        Body::Transfer(t) if t.finished => format!(
            "done {conv} {} {} {} {}",
            t.transfer,
            t.direction.word(),
            t.total,
            escape(&t.path)
        ),
        Body::Transfer(t) => format!(
            "progress {conv} {} {} {}% {} {} {}",
            t.transfer,
            t.direction.word(),
            (t.done.min(t.total) * 100)
                .checked_div(t.total)
                .unwrap_or(100),
            t.done,
            t.total,
            escape(&t.name)
        ),
        Body::Invitation(invitation) => {
            format!("invitation {conv} {} {}", invitation.room, invitation.from)
        }
        // The room, not the conversation: a `revoke` lands in `*`.
        Body::RoomEvent(note) => {
            let mut line = format!("{} {} {}", note.event, note.room, note.by);
            for word in [&note.user, &note.reason, &note.topic]
                .into_iter()
                .flatten()
            {
                line.push(' ');
                line.push_str(&escape(word));
            }
            line
        }
        Body::RoomInfo(info) => {
            let mut line = format!(
                "roominfo {} owner={} moderators={} members={} present={}",
                info.room,
                info.owner,
                info.moderators.join(","),
                info.members.join(","),
                info.present.join(",")
            );
            if let Some(invited) = &info.invited {
                line.push_str(&format!(" invited={}", invited.join(",")));
            }
            if let Some(banned) = &info.banned {
                line.push_str(&format!(" banned={}", banned.join(",")));
            }
            if let Some(topic) = &info.topic {
                line.push_str(&format!(" topic={}", escape(topic)));
            }
            line
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Delivery;

    fn chat(from: &str, text: &str, own: bool) -> Entry {
        Entry {
            ts: 0,
            body: Body::Chat {
                from: from.into(),
                text: text.into(),
                own,
                delivery: Delivery::Done,
                mention: false,
                broadcast: false,
                msg_id: Some(7),
                origin: Origin::Live,
            },
        }
    }

    #[test]
    fn chat_lines() {
        assert_eq!(
            format("#rust", &chat("alice", "hi all", false)),
            "msg #rust alice hi all"
        );
        assert_eq!(
            format("bob", &chat("me", "two\nlines \\o/", true)),
            "sent bob me two\\nlines \\\\o/"
        );
        assert_eq!(
            format("*", &chat("alice", "é 世界 🎉", false)),
            "msg * alice é 世界 🎉"
        );
    }

    #[test]
    fn missed_and_history_lines() {
        let mut missed = chat("bob", "while\nyou slept", false);
        if let Body::Chat { origin, .. } = &mut missed.body {
            *origin = Origin::Missed;
        }
        assert_eq!(
            format("#team", &missed),
            "missed #team bob while\\nyou slept"
        );
        let mut old = chat("alice", "long ago", true);
        if let Body::Chat { origin, .. } = &mut old.body {
            *origin = Origin::History;
        }
        assert_eq!(format("bob", &old), "history bob alice long ago");
        let e = |body| Entry { ts: 0, body };
        assert_eq!(format("#team", &e(Body::Away { count: 3 })), "away #team 3");
        assert_eq!(
            format(
                "*",
                &e(Body::Resumed {
                    missed: 3,
                    more: false
                })
            ),
            "resumed * 3"
        );
        assert_eq!(
            format(
                "*",
                &e(Body::Resumed {
                    missed: 1000,
                    more: true
                })
            ),
            "resumed * 1000 more"
        );
    }

    #[test]
    fn other_lines() {
        let e = |body| Entry { ts: 0, body };
        assert_eq!(
            format(
                "#a",
                &e(Body::Presence {
                    event: PresenceEvent::Nick,
                    nick: "a".into(),
                    new_nick: Some("b".into()),
                    reason: None
                })
            ),
            "nick #a a b"
        );
        assert_eq!(
            format(
                "#a",
                &e(Body::Joined {
                    members: vec!["x".into(), "y".into()]
                })
            ),
            "joined #a x,y"
        );
        assert_eq!(
            format(
                "*",
                &e(Body::Error {
                    code: "feature_disabled".into(),
                    message: "needs auth".into()
                })
            ),
            "error * feature_disabled needs auth"
        );
        assert_eq!(escape("\u{7}"), "\\u{7}");
    }

    #[test]
    fn room_lines() {
        use crate::state::{Invitation, RoomDetails, RoomEventNote};
        let e = |body| Entry { ts: 0, body };
        assert_eq!(
            format(
                "*",
                &e(Body::Invitation(Invitation {
                    room: "#secret".into(),
                    from: "alice".into()
                }))
            ),
            "invitation * #secret alice"
        );
        let note = |event: &str, user: Option<&str>, reason: Option<&str>, topic: Option<&str>| {
            e(Body::RoomEvent(RoomEventNote {
                room: "#secret".into(),
                event: event.into(),
                by: "alice".into(),
                user: user.map(Into::into),
                reason: reason.map(Into::into),
                topic: topic.map(Into::into),
            }))
        };
        assert_eq!(
            format(
                "#secret",
                &note("kick", Some("bob"), Some("spam\nagain"), None)
            ),
            "kick #secret alice bob spam\\nagain"
        );
        assert_eq!(
            format(
                "#secret",
                &note("topic", None, None, Some("launch on Monday"))
            ),
            "topic #secret alice launch on Monday"
        );
        assert_eq!(
            format("#secret", &note("topic", None, None, None)),
            "topic #secret alice"
        );
        assert_eq!(
            format("*", &note("revoke", Some("bob"), None, None)),
            "revoke #secret alice bob"
        );
        let info = RoomDetails {
            room: "#secret".into(),
            topic: Some("plans".into()),
            owner: "alice".into(),
            moderators: vec![],
            members: vec!["alice".into(), "bob".into()],
            present: vec!["alice".into()],
            invited: Some(vec!["dave".into()]),
            banned: None,
        };
        assert_eq!(
            format("#secret", &e(Body::RoomInfo(info))),
            "roominfo #secret owner=alice moderators= members=alice,bob present=alice invited=dave topic=plans"
        );
    }

    #[test]
    fn file_lines() {
        use crate::state::TransferNote;
        use crate::transfers::Direction;
        let e = |body| Entry { ts: 0, body };
        let file = chat_protocol::files::FileInfo {
            transfer: "5f0c3a9e".into(),
            from: "alice".into(),
            room: Some("#team".into()),
            name: "my notes.txt".into(),
            size: 11,
            sha256: "b9".into(),
            expires_at: 0,
        };
        assert_eq!(
            format("#team", &e(Body::FileOffer(file))),
            "file #team alice 5f0c3a9e 11 my notes.txt"
        );
        let mut note = TransferNote {
            transfer: "5f0c3a9e".into(),
            direction: Direction::Upload,
            name: "a.bin".into(),
            path: "/tmp/a.bin".into(),
            done: 3 << 20,
            total: 10 << 20,
            finished: false,
        };
        assert_eq!(
            format("bob", &e(Body::Transfer(note.clone()))),
            "progress bob 5f0c3a9e up 30% 3145728 10485760 a.bin"
        );
        note.finished = true;
        note.direction = Direction::Download;
        assert_eq!(
            format("bob", &e(Body::Transfer(note))),
            "done bob 5f0c3a9e down 10485760 /tmp/a.bin"
        );
    }
}
