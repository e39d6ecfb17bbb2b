//! Frames from the server: replies to our requests (matched by id with
//! what they answer) and frames pushed to us; the history, file and room
//! frames go on to `history.rs`, `files.rs` and `rooms.rs`.

use chat_client::Received;
use chat_protocol::names::fold;
use chat_protocol::{ClientFrame, ErrorCode, Message, Presence, PresenceEvent, ServerFrame};
use serde_json::Value;

use super::{files, history, join_requests, remember_users, rooms, send};
use crate::net::{NetCommand, Outgoing};
use crate::state::{Body, ConvKind, Delivery, Entry, Origin, PendingKind, State, SERVER_CONV};

/// What a reply answers: the request's id, the conversation it was made
/// in (else the one shown) and what was asked.
struct Reply {
    id: Option<u64>,
    index: usize,
    what: Option<PendingKind>,
}

pub(super) fn on_frame(state: &mut State, frame: Received, out: &mut Vec<NetCommand>) {
    let pending = frame
        .reply_to()
        .and_then(|id| state.pending.remove(&id).map(|p| (id, p)));
    let index = pending
        .as_ref()
        .and_then(|(_, p)| state.find(&p.conv))
        .unwrap_or(state.current);
    let reply = Reply {
        id: pending.as_ref().map(|(id, _)| *id),
        index,
        what: pending.map(|(_, p)| p.what),
    };
    if on_history_frame(state, &frame, &reply, out) {
        return;
    }
    match frame {
        Received::Core(frame) => on_core_frame(state, frame, &reply, out),
        Received::Custom { kind, fields } => {
            let quiet = reply.what == Some(PendingKind::FileListQuiet);
            on_custom(state, &kind, &fields, reply.index, quiet, out)
        }
    }
}

/// The history frames, whether this chat-api knows them as core frames
/// or not; whether `frame` was one.
fn on_history_frame(
    state: &mut State,
    frame: &Received,
    reply: &Reply,
    out: &mut Vec<NetCommand>,
) -> bool {
    match frame.kind() {
        "history" => match &reply.what {
            Some(PendingKind::CatchUpPage) => {
                history::on_catch_up_page(state, reply.index, frame, out)
            }
            Some(PendingKind::History { user }) => {
                history::on_page(state, reply.index, frame, *user)
            }
            _ => {}
        },
        "missed" => {
            if let Some(messages) = chat_client::history::missed_messages(frame) {
                history::on_missed(state, messages);
            }
        }
        "resumed" => history::on_resumed(state, frame, out),
        "unread" => history::on_unread(state, frame),
        _ => return false,
    }
    true
}

fn on_core_frame(state: &mut State, frame: ServerFrame, reply: &Reply, out: &mut Vec<NetCommand>) {
    match frame {
        ServerFrame::Ok { nick, .. } => on_ok(state, nick, reply),
        ServerFrame::Joined {
            room,
            members,
            topic,
            ..
        } => on_joined(state, room, members, topic, reply.what.as_ref()),
        ServerFrame::Sent {
            msg_id,
            ts,
            text,
            stored,
            ..
        } => on_sent(state, reply, msg_id, ts, text, stored),
        ServerFrame::Message(message) => on_message(state, message),
        ServerFrame::Presence(presence) => on_presence(state, presence),
        ServerFrame::Users { room, users, .. } => on_users(state, room, users, reply.index),
        ServerFrame::Rooms { rooms, .. } => on_rooms(state, rooms, reply),
        ServerFrame::Pong { .. } | ServerFrame::Welcome { .. } => {}
        // Handled by `on_history_frame`, by type.
        ServerFrame::History { .. }
        | ServerFrame::Unread { .. }
        | ServerFrame::Missed { .. }
        | ServerFrame::Resumed { .. } => {}
        ServerFrame::Error { code, message, .. } => on_error(state, code, message, reply, out),
        ServerFrame::Bye { code, reason } => {
            let text = format!("the server closed the session: {reason} ({code})");
            state.note(0, Body::Status(text));
        }
        // A frame type of a newer chat-api this client does not show.
        _ => {}
    }
}

/// `ok`: what it confirms depends on what was asked.
fn on_ok(state: &mut State, nick: Option<String>, reply: &Reply) {
    let reply_index = reply.index;
    match &reply.what {
        Some(PendingKind::Nick(asked)) => {
            let nick = nick.unwrap_or_else(|| asked.clone());
            let changed = fold(&nick) != fold(&state.nick) || !state.logged_in;
            state.nick = nick.clone();
            if changed {
                state.note(
                    reply_index,
                    Body::Info(format!("you are now known as {nick}")),
                );
            }
        }
        Some(PendingKind::Part(room)) => {
            if let Some(i) = state.find(room) {
                state.convs[i].joined = false;
                state.convs[i].members.clear();
                state.note(i, Body::Info(format!("you left {room}")));
            }
        }
        Some(PendingKind::Passwd(new)) => {
            // A new password revokes every resume token.
            state.resume_token = None;
            state.password = Some(new.clone());
            state.note(reply_index, Body::Info("password changed".into()));
        }
        Some(what @ (PendingKind::FileDecline(_) | PendingKind::FileCancel(_))) => {
            files::on_ok(state, what, reply_index)
        }
        Some(
            what @ (PendingKind::RoomDone(_)
            | PendingKind::RoomDecline(_)
            | PendingKind::RoomLeave(_)),
        ) => rooms::on_ok(state, what, reply_index),
        Some(PendingKind::Logout) => {
            state.logged_in = false;
            state.password = None;
            state.resume_token = None;
            state.note(
                reply_index,
                Body::Info("logged out; /login to chat again".into()),
            );
        }
        _ => {}
    }
}

/// `joined`: asked for, or the server putting us back into a room.
fn on_joined(
    state: &mut State,
    room: String,
    members: Vec<String>,
    topic: Option<String>,
    what: Option<&PendingKind>,
) {
    let index = state.conv_index(&room, ConvKind::Room);
    // Unasked, a `joined` comes from the server putting us back
    // into our rooms after logging in (or resuming): without
    // history, only the rooms plugin does that, for private rooms.
    let pushed_private = what.is_none()
        && state.server.features.iter().any(|f| f == "private_rooms")
        && !history::enabled(state);
    // After logging in, the server puts us back into our rooms
    // while we rejoin them ourselves: whichever `joined` comes
    // second has nothing new to tell.
    let rejoin = what.is_none() || matches!(what, Some(PendingKind::Join(_)));
    let key = fold(&room);
    let told = rejoin && state.server_joined.contains(&key) && state.convs[index].joined;
    if rejoin && !told && state.logged_in && history::enabled(state) {
        state.server_joined.push(key);
    }
    let conv = &mut state.convs[index];
    conv.name = room.clone();
    conv.joined = true;
    conv.closed = None;
    conv.topic = topic.clone();
    conv.private |= pushed_private;
    conv.members.clear();
    for m in &members {
        conv.add_member(m);
    }
    if matches!(what, Some(PendingKind::RoomEnter(_))) {
        rooms::on_entered(state, index);
    }
    if told {
        return;
    }
    state.note(index, Body::Joined { members });
    if let Some(topic) = topic {
        state.note(index, Body::Info(format!("topic: {topic}")));
    }
}

/// `sent`: our message is delivered (and stored).
fn on_sent(
    state: &mut State,
    reply: &Reply,
    msg_id: u64,
    ts: u64,
    text: Option<String>,
    stored: bool,
) {
    let reply_index = reply.index;
    state.saw_msg_id(msg_id);
    if let Some(id) = reply.id {
        mark_delivery(
            state,
            reply_index,
            id,
            Delivery::Done,
            Some(ts),
            text,
            Some(msg_id),
        );
    }
    if stored && state.convs[reply_index].kind == ConvKind::Direct {
        let name = state.convs[reply_index].name.clone();
        let text =
            format!("{name} is not connected: the message is kept and delivered when they log in");
        state.note(reply_index, Body::Info(text));
    }
}

fn on_users(state: &mut State, room: Option<String>, users: Vec<String>, reply_index: usize) {
    if let Some(i) = room.as_deref().and_then(|r| state.find(r)) {
        if state.convs[i].joined {
            state.convs[i].members.clear();
            for u in &users {
                state.convs[i].add_member(u);
            }
        }
    }
    remember_users(state, &users);
    state.note(reply_index, Body::Users { room, users });
}

fn on_rooms(state: &mut State, rooms: Vec<chat_protocol::RoomInfo>, reply: &Reply) {
    for info in &rooms {
        if let Some(i) = state.find(&info.name) {
            let conv = &mut state.convs[i];
            conv.private |= info.kind.as_deref() == Some("private");
            if conv.private {
                conv.topic = info.topic.clone();
            }
        }
    }
    state.known_rooms = rooms.iter().map(|r| r.name.clone()).collect();
    if reply.what != Some(PendingKind::RoomsQuiet) {
        state.note(reply.index, Body::Rooms(rooms));
    }
}

/// `error`: shown where the request was made, after undoing what the
/// request had assumed.
fn on_error(
    state: &mut State,
    code: ErrorCode,
    message: String,
    reply: &Reply,
    out: &mut Vec<NetCommand>,
) {
    let mut index = reply.index;
    match &reply.what {
        Some(PendingKind::Resume(user)) => {
            let user = user.clone();
            history::on_resume_refused(state, user, code.as_str(), &message, out);
            return;
        }
        Some(PendingKind::History { .. }) => history::on_refused(state, reply.index),
        Some(PendingKind::Chat) => {
            let id = reply.id.expect("what comes from pending");
            mark_delivery(state, reply.index, id, Delivery::Failed, None, None, None);
        }
        // A refused `/create` of a public room we are in
        // (it has members) leaves us in it.
        Some(PendingKind::RoomEnter(room)) => {
            if let Some(i) = state.find(room) {
                let conv = &mut state.convs[i];
                conv.joined &= !conv.members.is_empty();
                index = i;
            }
        }
        Some(PendingKind::Join(room)) => {
            if let Some(i) = state.find(room) {
                state.convs[i].joined = false;
                index = i;
            }
        }
        Some(PendingKind::Login(_) | PendingKind::Register(_)) => {
            // A wrong password must not be retried at every reconnect.
            state.password = None;
        }
        Some(PendingKind::SetupLogin(_)) => {
            state.password = None;
            if code == ErrorCode::FEATURE_DISABLED {
                return continue_as_guest(state, code, message, index, out);
            }
        }
        _ => {}
    }
    state.note(
        index,
        Body::Error {
            code: code.to_string(),
            message,
        },
    );
}

/// The automatic login on connecting was refused because the server has no
/// accounts: carry on as a guest with the nickname.
fn continue_as_guest(
    state: &mut State,
    code: ErrorCode,
    message: String,
    index: usize,
    out: &mut Vec<NetCommand>,
) {
    state.rejoin_after_login = false;
    state.user = None;
    let nick = state.nick.clone();
    state.note(
        index,
        Body::Error {
            code: code.to_string(),
            message,
        },
    );
    state.note(
        index,
        Body::Info(format!(
            "this server has no accounts; continuing as guest {nick}"
        )),
    );
    send(
        state,
        SERVER_CONV,
        PendingKind::Nick(nick.clone()),
        Outgoing::Core(ClientFrame::Nick { nick }),
        out,
    );
    for (id, frame) in join_requests(state) {
        out.push(NetCommand::Send(id, frame));
    }
    files::resume(state, out);
    files::list_quietly(state, out);
}

/// Updates the delivery of our message `id` in conversation `index`;
/// `delivered_text` replaces what we typed when a server plugin changed it
/// (`sent.text`), so we show what everyone else sees.
pub(super) fn mark_delivery(
    state: &mut State,
    index: usize,
    id: u64,
    delivery: Delivery,
    ts: Option<u64>,
    delivered_text: Option<String>,
    id_given: Option<u64>,
) {
    let conv = &mut state.convs[index];
    let found =
        conv.entries.iter_mut().rev().find(
            |e| matches!(&e.body, Body::Chat { delivery: Delivery::Pending(p), .. } if *p == id),
        );
    if let Some(entry) = found {
        if let Body::Chat {
            delivery: d,
            text,
            msg_id,
            ..
        } = &mut entry.body
        {
            *d = delivery;
            if id_given.is_some() {
                *msg_id = id_given;
            }
            if let Some(delivered) = delivered_text {
                *text = delivered;
            }
        }
        if let Some(ts) = ts {
            entry.ts = ts;
        }
        if delivery == Delivery::Done {
            let copy = entry.clone();
            let name = conv.name.clone();
            state.journal.push((name, copy));
        }
    }
}

/// Frames added by plugins.
fn on_custom(
    state: &mut State,
    kind: &str,
    fields: &serde_json::Map<String, Value>,
    index: usize,
    quiet: bool,
    out: &mut Vec<NetCommand>,
) {
    match kind {
        "logged_in" => on_logged_in(state, fields, index, out),
        other if files::on_custom(state, other, fields, index, quiet, out) => {}
        other if rooms::on_custom(state, other, fields, index) => {}
        other => {
            let text = format!("the server sent a '{other}' frame this client does not know");
            state.note(index, Body::Info(text));
        }
    }
}

/// `logged_in`: the account is ours; unless it was a resume, rejoin the
/// rooms and resume the file transfers.
fn on_logged_in(
    state: &mut State,
    fields: &serde_json::Map<String, Value>,
    index: usize,
    out: &mut Vec<NetCommand>,
) {
    let user = fields
        .get("user")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let admin = fields
        .get("admin")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !user.is_empty() {
        state.nick = user.clone();
        state.user = Some(user.clone());
    }
    state.logged_in = true;
    if history::on_logged_in(state, fields) {
        // Resumed: the rest waits for `resumed`.
        return;
    }
    history::learn_private_rooms(state, out);
    let role = if admin { " (administrator)" } else { "" };
    state.note(index, Body::Info(format!("logged in as {user}{role}")));
    if std::mem::take(&mut state.rejoin_after_login) {
        for (id, frame) in join_requests(state) {
            out.push(NetCommand::Send(id, frame));
        }
        files::resume(state, out);
    }
    files::list_quietly(state, out);
}

fn on_message(state: &mut State, m: Message) {
    // Live messages follow the missed ones.
    history::flush(state);
    let index = history::conversation_of(state, &m);
    let entry = history::entry_of(state, m, Origin::Live);
    state.record(index, entry);
}

fn on_presence(state: &mut State, p: Presence) {
    let index = state.conv_index(&p.room, ConvKind::Room);
    let conv = &mut state.convs[index];
    match p.event {
        PresenceEvent::Join => conv.add_member(&p.nick),
        PresenceEvent::Part | PresenceEvent::Quit => conv.remove_member(&p.nick),
        PresenceEvent::Nick => {
            conv.remove_member(&p.nick);
            if let Some(new) = &p.new_nick {
                conv.add_member(new);
            }
        }
    }
    state.record(
        index,
        Entry {
            ts: p.ts,
            body: Body::Presence {
                event: p.event,
                nick: p.nick,
                new_nick: p.new_nick,
                reason: p.reason,
            },
        },
    );
}
