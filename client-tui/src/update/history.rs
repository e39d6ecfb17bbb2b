//! The history part of `update`: resuming a session after reconnecting
//! (the resume token, the catch-up of missed messages), and loading older
//! messages (`/history`, PageUp at the top of a conversation).

use chat_client::accounts::{resume_frame, LoggedIn};
use chat_client::history::{
    history_frame, read_frame, Cursor, HistoryPage, ResumedSummary, Target, UnreadEntry,
};
use chat_client::Received;
use chat_protocol::names::fold;
use chat_protocol::{Message, MessageKind};
use serde_json::{Map, Value};

use super::{error_body, files, join_requests_except, remember_users};
use crate::command::DEFAULT_HISTORY_PAGE;
use crate::net::{NetCommand, Outgoing};
use crate::state::{
    Body, CatchUp, ConvKind, Delivery, Entry, Origin, PendingKind, State, SERVER_CONV,
};

/// Whether the server keeps history (`welcome.features`).
pub fn enabled(state: &State) -> bool {
    state.server.features.iter().any(|f| f == "history")
}

/// The `resume` that replaces the password login on a new connection, when
/// we hold a token that has not expired.
pub fn resume_request(state: &mut State, user: &str) -> Option<(u64, Outgoing)> {
    let (token, expires) = state.resume_token.clone()?;
    if expires != 0 && expires <= state.now_ms {
        state.resume_token = None;
        return None;
    }
    let id = state.request(SERVER_CONV, PendingKind::Resume(user.to_string()));
    let frame = resume_frame(Some(&token), state.last_msg_id);
    // Rooms, transfers and the file list wait for the login.
    state.rejoin_after_login = true;
    Some((id, Outgoing::Json(frame)))
}

/// Keeps the token of a `logged_in`; starts the catch-up when it answers a
/// `resume` on a server with history. Returns whether it did (the rest
/// waits for `resumed`).
pub fn on_logged_in(state: &mut State, fields: &Map<String, Value>) -> bool {
    state.server_joined.clear();
    let frame = Received::Custom {
        kind: "logged_in".into(),
        fields: fields.clone(),
    };
    let Ok(account) = LoggedIn::from_frame(&frame) else {
        return false;
    };
    if let Some(token) = account.resume_token {
        state.resume_token = Some((token, account.token_expires.unwrap_or(0)));
    }
    // Without history, nothing follows a resume's `logged_in`: it is a
    // login like any other (we rejoin our rooms ourselves).
    let catching_up = account.resumed && enabled(state);
    if catching_up {
        state.catch_up = Some(CatchUp {
            from: state.last_msg_id,
            ..CatchUp::default()
        });
    }
    // After a resume the missed messages are here already; after a
    // password login, the summary says where unread ones wait.
    state.unread_summary_due = !account.resumed;
    catching_up
}

/// The `unread` summary the server sends after logging in: after a password
/// login (a fresh start, or a token that could not be used), the
/// conversations with unread messages get their counts in the sidebar
/// (direct ones appear), and the server conversation lists them.
pub fn on_unread(state: &mut State, frame: &Received) {
    if frame.reply_to().is_some() || !std::mem::take(&mut state.unread_summary_due) {
        return;
    }
    let Ok(entries) = UnreadEntry::list_from_frame(frame) else {
        return;
    };
    let mut told = Vec::new();
    for entry in entries.into_iter().filter(|e| e.unread > 0) {
        let (name, kind) = match entry.target {
            Target::Room(room) => (room, ConvKind::Room),
            Target::With(user) => (user, ConvKind::Direct),
        };
        let index = state.conv_index(&name, kind);
        let more = if entry.unread >= 1000 { "+" } else { "" };
        told.push(format!(
            "{} {}{more}",
            state.convs[index].name, entry.unread
        ));
        if index != state.current {
            let conv = &mut state.convs[index];
            let count = usize::try_from(entry.unread).unwrap_or(usize::MAX);
            conv.unread = conv.unread.max(count);
            conv.mentioned |= kind == ConvKind::Direct;
        }
    }
    if !told.is_empty() {
        let text = format!(
            "unread: {} (/history or PageUp in a conversation shows them)",
            told.join(", ")
        );
        state.note(0, Body::Info(text));
    }
}

/// A resume the server refused (an expired or revoked token, most often):
/// forget the token and log in with the password instead.
pub fn on_resume_refused(
    state: &mut State,
    user: String,
    code: &str,
    message: &str,
    out: &mut Vec<NetCommand>,
) {
    state.resume_token = None;
    state.catch_up = None;
    let text = format!("the session could not be resumed ({code}: {message}); logging in again");
    state.note(0, Body::Info(text));
    for (id, frame) in super::login_frames(state, user) {
        out.push(NetCommand::Send(id, frame));
    }
}

/// The conversation a message belongs to, created if new.
pub fn conversation_of(state: &mut State, m: &Message) -> usize {
    let (name, kind) = match m.kind {
        MessageKind::Room => (m.room.clone().unwrap_or_default(), ConvKind::Room),
        MessageKind::Direct => {
            let other = if fold(&m.from) == fold(&state.nick) {
                m.to.clone().unwrap_or_default()
            } else {
                m.from.clone()
            };
            (other, ConvKind::Direct)
        }
        MessageKind::Broadcast => (SERVER_CONV.to_string(), ConvKind::Server),
    };
    state.conv_index(&name, kind)
}

/// A message as a conversation entry.
pub fn entry_of(state: &mut State, m: Message, origin: Origin) -> Entry {
    remember_users(state, std::slice::from_ref(&m.from));
    state.saw_msg_id(m.msg_id);
    let own = fold(&m.from) == fold(&state.nick);
    let mention = !own && (m.kind != MessageKind::Room || state.mentions(&m.text));
    Entry {
        ts: m.ts,
        body: Body::Chat {
            from: m.from,
            text: m.text,
            own,
            delivery: Delivery::Done,
            mention,
            broadcast: m.kind == MessageKind::Broadcast,
            msg_id: Some(m.msg_id),
            origin,
        },
    }
}

/// A `missed` frame: kept until the catch-up ends.
pub fn on_missed(state: &mut State, messages: Vec<Message>) {
    match &mut state.catch_up {
        Some(catch_up) => catch_up.missed.extend(messages),
        // Not resuming (should not happen): show them at once.
        None => {
            state.catch_up = Some(CatchUp {
                missed: messages,
                ..CatchUp::default()
            });
            flush(state);
            state.catch_up = None;
        }
    }
}

/// Records the missed messages kept so far: in each conversation, a
/// separator saying how many, then the messages in order. Called when the
/// catch-up ends, and before a live message or a lost connection
/// interrupts it.
pub fn flush(state: &mut State) {
    let Some(catch_up) = state.catch_up.as_mut() else {
        return;
    };
    let missed = std::mem::take(&mut catch_up.missed);
    if missed.is_empty() {
        return;
    }
    // Conversations in the order of their first missed message.
    let mut groups: Vec<(usize, Vec<Message>)> = Vec::new();
    for m in missed {
        let index = conversation_of(state, &m);
        if state.convs[index].has_msg(m.msg_id) {
            continue;
        }
        match groups.iter_mut().find(|(i, _)| *i == index) {
            Some((_, list)) => list.push(m),
            None => groups.push((index, vec![m])),
        }
    }
    let mut recorded = 0;
    for (index, messages) in groups {
        let ts = messages.first().map_or(state.now_ms, |m| m.ts);
        state.record(
            index,
            Entry {
                ts,
                body: Body::Away {
                    count: messages.len(),
                },
            },
        );
        for m in messages {
            let entry = entry_of(state, m, Origin::Missed);
            state.record(index, entry);
            recorded += 1;
        }
    }
    if let Some(catch_up) = state.catch_up.as_mut() {
        catch_up.recorded += recorded;
    }
}

/// `resumed`: the catch-up is over. Shows the missed messages, rejoins the
/// wanted rooms the server did not put us back into, and carries on with
/// transfers as after a login.
pub fn on_resumed(state: &mut State, frame: &Received, out: &mut Vec<NetCommand>) {
    if state.catch_up.is_none() {
        // Not resuming: nothing to end.
        return;
    }
    let summary = ResumedSummary::from_frame(frame).unwrap_or(ResumedSummary {
        missed: 0,
        more: false,
        last_msg_id: None,
    });
    flush(state);
    let (recorded, from) = state
        .catch_up
        .take()
        .map_or((0, None), |c| (c.recorded, c.from));
    if let Some(last) = summary.last_msg_id {
        state.saw_msg_id(last);
    }
    if summary.more {
        // The rest, conversation by conversation, after what each has.
        let indexes: Vec<usize> = (0..state.convs.len())
            .filter(|&i| match state.convs[i].kind {
                ConvKind::Room => state.convs[i].joined,
                ConvKind::Direct => true,
                ConvKind::Server => false,
            })
            .collect();
        for index in indexes {
            let after = state.convs[index].newest_msg_id().max(from);
            if let Some(after) = after {
                catch_up_page(state, index, after, out);
            }
        }
    }
    state.note(
        0,
        Body::Resumed {
            missed: recorded,
            more: summary.more,
        },
    );
    if std::mem::take(&mut state.rejoin_after_login) {
        let skip = state.server_joined.clone();
        for (id, frame) in join_requests_except(state, &skip) {
            out.push(NetCommand::Send(id, frame));
        }
        files::resume(state, out);
    }
    files::list_quietly(state, out);
    learn_private_rooms(state, out);
}

/// With history, the server puts us back into public and private rooms
/// alike, so a `joined` no longer says which are private: a quiet `rooms`
/// tells (the sidebar marks them).
pub fn learn_private_rooms(state: &mut State, out: &mut Vec<NetCommand>) {
    if enabled(state) && state.server.features.iter().any(|f| f == "private_rooms") {
        let id = state.request(SERVER_CONV, PendingKind::RoomsQuiet);
        out.push(NetCommand::Send(
            id,
            Outgoing::Core(chat_protocol::ClientFrame::Rooms {}),
        ));
    }
}

/// Asks for the missed messages of a conversation after `after`.
fn catch_up_page(state: &mut State, index: usize, after: u64, out: &mut Vec<NetCommand>) {
    let Some(target) = target_of(state, index) else {
        return;
    };
    let name = state.convs[index].name.clone();
    let id = state.request(&name, PendingKind::CatchUpPage);
    out.push(NetCommand::Send(
        id,
        // The server's own page size: its maximum is not announced.
        Outgoing::Json(history_frame(&target, Cursor::After(after), None)),
    ));
}

/// A page of missed messages the resume did not send: each goes where its
/// id belongs (live messages may have come meanwhile) and is counted in
/// the conversation's separator; the next page is asked for while there is
/// more.
pub fn on_catch_up_page(
    state: &mut State,
    index: usize,
    frame: &Received,
    out: &mut Vec<NetCommand>,
) {
    let Ok(page) = HistoryPage::from_frame(frame) else {
        return;
    };
    let newest = page.messages.last().map(|m| m.msg_id);
    let name = state.convs[index].name.clone();
    let shown = index == state.current;
    let mut added = 0;
    for m in page.messages {
        if state.convs[index].has_msg(m.msg_id) {
            continue;
        }
        let id = m.msg_id;
        let entry = entry_of(state, m, Origin::Missed);
        let conv = &mut state.convs[index];
        if let Body::Chat {
            mention,
            own: false,
            ..
        } = &entry.body
        {
            if !shown {
                conv.unread += 1;
                conv.mentioned |= *mention;
            }
        }
        state.journal.push((name.clone(), entry.clone()));
        conv.insert_by_id(id, entry);
        added += 1;
    }
    if added > 0 {
        let now = state.now_ms;
        let conv = &mut state.convs[index];
        let separator = conv
            .entries
            .iter_mut()
            .rev()
            .find_map(|e| match &mut e.body {
                Body::Away { count } => Some(count),
                _ => None,
            });
        match separator {
            Some(count) => *count += added,
            None => {
                // No separator yet in this conversation: one before the
                // first missed message.
                let first = conv
                    .entries
                    .iter()
                    .position(|e| {
                        matches!(
                            e.body,
                            Body::Chat {
                                origin: Origin::Missed,
                                ..
                            }
                        )
                    })
                    .unwrap_or(conv.entries.len());
                let ts = conv.entries.get(first).map_or(now, |e| e.ts);
                conv.entries.insert(
                    first,
                    Entry {
                        ts,
                        body: Body::Away { count: added },
                    },
                );
            }
        }
    }
    if let (true, Some(newest)) = (page.more, newest) {
        catch_up_page(state, index, newest, out);
    }
}

/// The conversation's target for `history`, if it has one.
fn target_of(state: &State, index: usize) -> Option<Target> {
    let conv = &state.convs[index];
    match conv.kind {
        ConvKind::Room => Some(Target::Room(conv.name.clone())),
        ConvKind::Direct => Some(Target::With(conv.name.clone())),
        ConvKind::Server => None,
    }
}

/// `/history [N]`: asks for the page before the oldest message shown.
pub fn command(state: &mut State, limit: Option<u32>, out: &mut Vec<NetCommand>) {
    let here = state.current;
    if !enabled(state) {
        let text = "this server keeps no history (its welcome lists no 'history' feature)";
        state.note(here, error_body("feature_disabled", text.into()));
        return;
    }
    if target_of(state, here).is_none() {
        let text = "the server window has no history: go to a room or a direct conversation";
        state.note(here, error_body("input", text.into()));
        return;
    }
    if !state.convs[here].history_more {
        let text = "no older messages: this is the start of the conversation";
        state.note(here, Body::Info(text.into()));
        return;
    }
    request(
        state,
        here,
        limit.unwrap_or(DEFAULT_HISTORY_PAGE),
        true,
        out,
    );
}

/// PageUp (or the wheel) reached the top of the conversation: load the
/// page before it, once, if there may be one.
pub fn at_top(state: &mut State, out: &mut Vec<NetCommand>) {
    let here = state.current;
    let conv = &state.convs[here];
    let wanted = match conv.kind {
        ConvKind::Room => conv.joined && conv.closed.is_none(),
        ConvKind::Direct => true,
        ConvKind::Server => false,
    };
    if wanted
        && conv.history_more
        && !conv.history_pending
        && enabled(state)
        && super::online(state)
    {
        request(state, here, DEFAULT_HISTORY_PAGE, false, out);
    }
}

fn request(state: &mut State, index: usize, limit: u32, user: bool, out: &mut Vec<NetCommand>) {
    let Some(target) = target_of(state, index) else {
        return;
    };
    if state.convs[index].history_pending {
        return;
    }
    let cursor = match state.convs[index].oldest_msg_id() {
        Some(oldest) => Cursor::Before(oldest),
        None => Cursor::Latest,
    };
    state.convs[index].history_pending = true;
    let name = state.convs[index].name.clone();
    let id = state.request(&name, PendingKind::History { user });
    out.push(NetCommand::Send(
        id,
        Outgoing::Json(history_frame(&target, cursor, Some(limit))),
    ));
}

/// A `history` reply: the messages go before those shown (oldest first).
pub fn on_page(state: &mut State, index: usize, frame: &Received, user: bool) {
    state.convs[index].history_pending = false;
    let page = match HistoryPage::from_frame(frame) {
        Ok(page) => page,
        Err(e) => {
            state.note(index, error_body("history", e.to_string()));
            return;
        }
    };
    let mut older = Vec::new();
    for m in page.messages {
        if !state.convs[index].has_msg(m.msg_id) {
            older.push(entry_of(state, m, Origin::History));
        }
    }
    let count = older.len();
    let name = state.convs[index].name.clone();
    for entry in &older {
        state.journal.push((name.clone(), entry.clone()));
    }
    let conv = &mut state.convs[index];
    conv.history_more = page.more;
    if !page.more {
        older.insert(
            0,
            Entry {
                ts: older.first().map_or(state.now_ms, |e| e.ts),
                body: Body::Info("start of the conversation".into()),
            },
        );
    }
    conv.prepend(older);
    if user {
        let text = match count {
            0 => "no older messages".to_string(),
            1 => "1 older message loaded above (PageUp)".to_string(),
            n => format!("{n} older messages loaded above (PageUp)"),
        };
        state.note(index, Body::Info(text));
    }
}

/// A refused or lost `history` request (the error itself is shown where it
/// was asked, PageUp's too): the conversation may ask again.
pub fn on_refused(state: &mut State, index: usize) {
    state.convs[index].history_pending = false;
}

/// After something the user did on the screen: if the conversation shown
/// is at its newest message and that one is newer than the read marker we
/// reported, move the account's marker there (`read`), so that the user's
/// other devices count it as read. At most one `read` per new message
/// seen, and only on the user's actions, never on the server's.
pub fn mark_read(state: &mut State, out: &mut Vec<NetCommand>) {
    if state.frontend != crate::state::Frontend::Screen
        || state.quitting
        || !state.logged_in
        || state.catch_up.is_some()
        || !enabled(state)
        || !super::online(state)
    {
        return;
    }
    let here = state.current;
    let conv = &state.convs[here];
    if conv.scroll > 0 || (conv.kind == ConvKind::Room && !conv.joined) {
        return;
    }
    let Some(target) = target_of(state, here) else {
        return;
    };
    let Some(newest) = conv.newest_msg_id() else {
        return;
    };
    if conv.read_sent.is_some_and(|sent| sent >= newest) {
        return;
    }
    state.convs[here].read_sent = Some(newest);
    let name = state.convs[here].name.clone();
    let id = state.request(&name, PendingKind::Other);
    out.push(NetCommand::Send(
        id,
        Outgoing::Json(read_frame(&target, newest)),
    ));
}
