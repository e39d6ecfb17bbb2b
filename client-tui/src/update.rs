//! `update(state, event)`: the only place the state changes. Keys, input
//! lines and network events go in; requests for the connection task come out.

use chat_client::Received;
use chat_protocol::names::fold;
use chat_protocol::{ClientFrame, ErrorCode, Message, Presence, PresenceEvent, ServerFrame};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};
use serde_json::{json, Value};

use crate::command::{self, Command, Input, RoomCommand};
use crate::complete::{self, Cycle, Sources};
use crate::net::{NetCommand, NetEvent, Outgoing};
use crate::state::{
    Body, ConvKind, Delivery, Entry, Frontend, Link, Origin, PasswordPurpose, PendingKind, State,
    SERVER_CONV,
};

/// Everything that can happen to the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// Bracketed paste.
    Paste(String),
    /// The terminal's new size (columns, rows).
    Resize(u16, u16),
    Net(NetEvent),
    /// A line of standard input (line mode).
    Line(String),
    /// A signal, or the terminal went away: quit.
    InputClosed,
    /// End of standard input (line mode): quit, once running file
    /// transfers have finished.
    InputEnded,
    /// A second passed (refreshes countdowns; the clock is `state.now_ms`).
    Tick,
}

/// Rows one mouse-wheel step scrolls.
const WHEEL_ROWS: usize = 3;

/// Applies one event; returns what to ask of the connection task.
pub fn update(state: &mut State, event: Event) -> Vec<NetCommand> {
    let mut out = Vec::new();
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            // What was shown before the key (a conversation left, or
            // quit), and what is shown after it.
            history::mark_read(state, &mut out);
            on_key(state, key, &mut out);
            history::mark_read(state, &mut out);
        }
        Event::Key(_) => {}
        Event::Mouse(mouse) => {
            on_mouse(state, mouse, &mut out);
            history::mark_read(state, &mut out);
        }
        Event::Paste(text) => {
            state.completion = None;
            let clean: String = text
                .chars()
                .map(|c| {
                    if c == '\n' || c == '\r' || c == '\t' {
                        ' '
                    } else {
                        c
                    }
                })
                .filter(|c| !c.is_control())
                .collect();
            state.editor.insert(&clean);
        }
        Event::Resize(cols, rows) => state.viewport = (cols, rows),
        Event::Net(net) => on_net(state, net, &mut out),
        Event::Line(line) => submit(state, line, &mut out),
        Event::InputClosed => quit(state, None, &mut out),
        Event::InputEnded => files::quit_when_idle(state, &mut out),
        Event::Tick => {}
    }
    out
}

fn on_mouse(state: &mut State, mouse: MouseEvent, out: &mut Vec<NetCommand>) {
    match mouse.kind {
        MouseEventKind::ScrollUp => scroll_up(state, WHEEL_ROWS, out),
        MouseEventKind::ScrollDown => scroll_down(state, WHEEL_ROWS),
        _ => {}
    }
}

/// Scrolls towards older entries; reaching the top loads the history page
/// before it (when the server keeps history).
fn scroll_up(state: &mut State, rows: usize, out: &mut Vec<NetCommand>) {
    let width = crate::view::conversation_width(state.viewport.0, state.current_conv());
    let total = crate::view::total_rows(state, state.current, width);
    let max = total.saturating_sub(state.page_rows());
    let conv = state.current_conv_mut();
    conv.scroll = (conv.scroll + rows).min(max);
    if conv.scroll == max {
        history::at_top(state, out);
    }
}

fn scroll_down(state: &mut State, rows: usize) {
    let conv = state.current_conv_mut();
    conv.scroll = conv.scroll.saturating_sub(rows);
}

fn on_key(state: &mut State, key: KeyEvent, out: &mut Vec<NetCommand>) {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    if !matches!(key.code, KeyCode::Tab | KeyCode::BackTab) {
        state.completion = None;
    }
    if help_key(state, key.code) {
        return;
    }
    let ed = &mut state.editor;
    match key.code {
        KeyCode::Enter => {
            state.help = None;
            let secret = state.prompt.is_some();
            let line = state.editor.take(secret);
            submit(state, line, out);
        }
        KeyCode::Esc if state.prompt.is_some() => {
            state.prompt = None;
            state.editor.take(true);
            let conv = state.current;
            state.note(conv, Body::Info("password entry cancelled".into()));
        }
        KeyCode::F(2) => state.transfers.shown = !state.transfers.shown,
        KeyCode::Char('c') if ctrl => quit(state, None, out),
        KeyCode::Char('d') if ctrl && ed.is_empty() => quit(state, None, out),
        KeyCode::Char('a') if ctrl => ed.home(),
        KeyCode::Char('e') if ctrl => ed.end(),
        KeyCode::Char('b') if ctrl => ed.left(),
        KeyCode::Char('f') if ctrl => ed.right(),
        KeyCode::Char('b') if alt => ed.word_left(),
        KeyCode::Char('f') if alt => ed.word_right(),
        KeyCode::Char('w') if ctrl => ed.delete_word(),
        KeyCode::Backspace if alt || ctrl => ed.delete_word(),
        KeyCode::Char('u') if ctrl => ed.delete_to_start(),
        KeyCode::Char('k') if ctrl => ed.delete_to_end(),
        KeyCode::Char('n') if ctrl => next_conv(state, 1),
        KeyCode::Char('p') if ctrl => next_conv(state, -1),
        KeyCode::Right if alt => next_conv(state, 1),
        KeyCode::Left if alt => next_conv(state, -1),
        KeyCode::Char(c @ '0'..='9') if alt => {
            let n = c.to_digit(10).expect("a digit") as usize;
            let index = if n == 0 { 9 } else { n - 1 };
            state.switch_to(index);
        }
        KeyCode::Left if ctrl => ed.word_left(),
        KeyCode::Right if ctrl => ed.word_right(),
        KeyCode::Char(c) if !ctrl => ed.insert(c.encode_utf8(&mut [0; 4])),
        KeyCode::Backspace => ed.backspace(),
        KeyCode::Delete => ed.delete(),
        KeyCode::Left => ed.left(),
        KeyCode::Right => ed.right(),
        KeyCode::Home => ed.home(),
        KeyCode::End if ctrl || alt || ed.cursor() == ed.text().len() => {
            state.current_conv_mut().scroll = 0
        }
        KeyCode::End => ed.end(),
        KeyCode::Up if state.prompt.is_none() => ed.history_prev(),
        KeyCode::Down if state.prompt.is_none() => ed.history_next(),
        KeyCode::PageUp => scroll_up(state, state.page_rows().saturating_sub(1).max(1), out),
        KeyCode::PageDown => scroll_down(state, state.page_rows().saturating_sub(1).max(1)),
        KeyCode::Tab if state.prompt.is_none() => complete(state, 1),
        KeyCode::BackTab if state.prompt.is_none() => complete(state, -1),
        _ => {}
    }
}

/// Whether a bare `/accept` or `/decline` is about a file: no invitation
/// waits, and a file does (or the server has no private rooms at all).
fn offer_instead_of_invitation(state: &State) -> bool {
    let rooms = state.server.features.iter().any(|f| f == "private_rooms");
    state.invitations.is_empty() && (state.transfers.find_offer(None).is_ok() || !rooms)
}

/// Keys for the help view: F1 shows or hides it; while shown, Esc closes it
/// and PageUp/PageDown scroll it. Whether the key was used.
fn help_key(state: &mut State, code: KeyCode) -> bool {
    let page = state.page_rows().saturating_sub(3).max(1);
    match (code, state.help.as_mut()) {
        (KeyCode::F(1), Some(_)) | (KeyCode::Esc, Some(_)) => state.help = None,
        (KeyCode::F(1), None) => {
            let lines = Command::help_lines(None).unwrap_or_default();
            state.help = Some(crate::help_view::HelpView { lines, scroll: 0 });
        }
        (KeyCode::PageUp, Some(help)) => help.scroll = help.scroll.saturating_sub(page),
        (KeyCode::PageDown, Some(help)) => {
            let width = crate::help_view::width(state.viewport.0);
            let rows = crate::help_view::rows(&help.lines, width).len();
            help.scroll = (help.scroll + page).min(rows.saturating_sub(page));
        }
        _ => return false,
    }
    true
}

fn next_conv(state: &mut State, step: isize) {
    let n = state.convs.len() as isize;
    let index = (state.current as isize + step).rem_euclid(n) as usize;
    state.switch_to(index);
}

/// Tab: start a completion, or move to the next candidate.
fn complete(state: &mut State, step: isize) {
    if let Some(cycle) = &mut state.completion {
        let n = cycle.candidates.len() as isize;
        cycle.index = (cycle.index as isize + step).rem_euclid(n) as usize;
        let start = cycle.start;
        let with = cycle.candidates[cycle.index].clone();
        state.editor.replace_before_cursor(start, &with);
        return;
    }
    let line = state.editor.text().to_string();
    let (start, word) = complete::word_before(&line, state.editor.cursor());
    let conv = state.current_conv();
    let mut nearby: Vec<&str> = conv.members.iter().map(String::as_str).collect();
    if conv.kind == ConvKind::Direct {
        nearby.push(&conv.name);
    }
    let mut others: Vec<&str> = state.known_users.iter().map(String::as_str).collect();
    others.extend(
        state
            .convs
            .iter()
            .filter(|c| c.kind == ConvKind::Direct)
            .map(|c| c.name.as_str()),
    );
    let mut rooms: Vec<&str> = state
        .convs
        .iter()
        .filter(|c| c.kind == ConvKind::Room)
        .map(|c| c.name.as_str())
        .collect();
    rooms.extend(state.known_rooms.iter().map(String::as_str));
    rooms.extend(state.invitations.iter().map(|i| i.room.as_str()));
    let sources = Sources {
        nearby_nicks: nearby,
        other_nicks: others,
        rooms,
        own_nick: &state.nick,
    };
    let candidates = complete::candidates(&line, start, word, &sources);
    if candidates.is_empty() {
        return;
    }
    let index = if step < 0 { candidates.len() - 1 } else { 0 };
    state
        .editor
        .replace_before_cursor(start, &candidates[index]);
    if candidates.len() > 1 {
        state.completion = Some(Cycle {
            start,
            candidates,
            index,
        });
    }
}

pub(crate) fn online(state: &State) -> bool {
    state.link == Link::Connected
}

/// Handles one entered line (Enter, or a line of standard input).
fn submit(state: &mut State, line: String, out: &mut Vec<NetCommand>) {
    if let Some(purpose) = state.prompt.take() {
        password_entered(state, purpose, line, out);
        return;
    }
    let here = state.current;
    let input = match command::parse(&line) {
        Ok(input) => input,
        Err(e) => {
            // A line that is no command concerns no conversation: line mode
            // says so with `*` (its "current" conversation is invisible).
            let at = if state.frontend == Frontend::Screen {
                here
            } else {
                0
            };
            state.note(at, error_body("input", e.to_string()));
            return;
        }
    };
    let needs_server = !matches!(
        input,
        Input::Nothing | Input::Command(Command::Help(_) | Command::Quit(_) | Command::Transfers)
    );
    if needs_server && !online(state) {
        let why = match &state.link {
            Link::Disconnected { .. } => format!(
                "not connected (retrying in {} s)",
                state.retry_in_secs().unwrap_or(0)
            ),
            _ => "not connected yet".to_string(),
        };
        state.note(
            here,
            error_body("offline", format!("{why}; your line was kept in the input")),
        );
        if state.frontend == Frontend::Screen {
            state.editor.set(&line);
        }
        return;
    }
    match input {
        Input::Nothing => {}
        Input::Text(text) => say(state, here, text, out),
        Input::Command(command) => run_command(state, command, out),
    }
}

pub(crate) fn error_body(code: &str, message: String) -> Body {
    Body::Error {
        code: code.to_string(),
        message,
    }
}

/// Sends text to the conversation at `index`.
fn say(state: &mut State, index: usize, text: String, out: &mut Vec<NetCommand>) {
    let conv = &state.convs[index];
    let (name, frame) = match conv.kind {
        ConvKind::Server => {
            state.note(
                index,
                error_body(
                    "input",
                    "this is the server window: /join a room or /query someone to talk".into(),
                ),
            );
            return;
        }
        ConvKind::Room if conv.closed.is_some() => {
            let why = conv.closed.clone().unwrap_or_default();
            let msg = format!("you can no longer talk in {}: {why}", conv.name);
            state.note(index, error_body("not_in_room", msg));
            return;
        }
        ConvKind::Room if !conv.joined => {
            let msg = format!("you are not in {}; /join {} first", conv.name, conv.name);
            state.note(index, error_body("not_in_room", msg));
            return;
        }
        ConvKind::Room => (
            conv.name.clone(),
            ClientFrame::Say {
                room: conv.name.clone(),
                text: text.clone(),
            },
        ),
        ConvKind::Direct => (
            conv.name.clone(),
            ClientFrame::Msg {
                to: conv.name.clone(),
                text: text.clone(),
            },
        ),
    };
    send_chat(state, index, &name, text, false, frame, out);
}

fn send_chat(
    state: &mut State,
    index: usize,
    conv_name: &str,
    text: String,
    broadcast: bool,
    frame: ClientFrame,
    out: &mut Vec<NetCommand>,
) {
    let id = state.request(conv_name, PendingKind::Chat);
    let from = state.nick.clone();
    state.note(
        index,
        Body::Chat {
            from,
            text,
            own: true,
            delivery: Delivery::Pending(id),
            mention: false,
            broadcast,
            msg_id: None,
            origin: Origin::Live,
        },
    );
    out.push(NetCommand::Send(id, Outgoing::Core(frame)));
}

fn send(
    state: &mut State,
    conv: &str,
    what: PendingKind,
    frame: Outgoing,
    out: &mut Vec<NetCommand>,
) {
    let id = state.request(conv, what);
    out.push(NetCommand::Send(id, frame));
}

pub(crate) fn quit(state: &mut State, reason: Option<String>, out: &mut Vec<NetCommand>) {
    if !state.quitting {
        state.quitting = true;
        out.push(NetCommand::Quit(reason));
    }
}

fn run_command(state: &mut State, command: Command, out: &mut Vec<NetCommand>) {
    let here = state.current;
    let here_name = state.current_conv().name.clone();
    let current_room = (state.current_conv().kind == ConvKind::Room).then(|| here_name.clone());
    match command {
        Command::Help(topic) => match Command::help_lines(topic.as_deref()) {
            // On screen a view of its own, so the conversation keeps its
            // place; line mode prints it.
            Ok(lines) if state.frontend == Frontend::Screen => {
                state.help = Some(crate::help_view::HelpView { lines, scroll: 0 });
            }
            Ok(lines) => {
                for line in lines {
                    state.note(here, Body::Info(line));
                }
            }
            Err(e) => state.note(here, error_body("input", e.to_string())),
        },
        Command::Join(room) => {
            let index = state.conv_index(&room, ConvKind::Room);
            state.switch_to(index);
            // Wanted from now on: text typed next goes here, and a reconnect
            // rejoins it. An error reply clears it.
            state.convs[index].joined = true;
            let name = state.convs[index].name.clone();
            send(
                state,
                &name,
                PendingKind::Join(room.clone()),
                Outgoing::Core(ClientFrame::Join { room }),
                out,
            );
        }
        Command::Part(room) => {
            let Some(room) = room.or(current_room) else {
                state.note(
                    here,
                    error_body("input", "this is not a room; use /part #ROOM".into()),
                );
                return;
            };
            let conv = state
                .find(&room)
                .map_or(here_name, |i| state.convs[i].name.clone());
            send(
                state,
                &conv,
                PendingKind::Part(room.clone()),
                Outgoing::Core(ClientFrame::Part { room }),
                out,
            );
        }
        Command::Close => {
            let conv = state.current_conv().clone();
            match conv.kind {
                ConvKind::Server => {
                    state.note(
                        here,
                        error_body("input", "the server window stays open".into()),
                    );
                    return;
                }
                ConvKind::Room if conv.joined => send(
                    state,
                    SERVER_CONV,
                    PendingKind::Part(conv.name.clone()),
                    Outgoing::Core(ClientFrame::Part {
                        room: conv.name.clone(),
                    }),
                    out,
                ),
                _ => {}
            }
            state.convs.remove(here);
            state.switch_to(here.saturating_sub(1));
        }
        Command::Msg { to, text } => {
            let index = state.conv_index(&to, ConvKind::Direct);
            let name = state.convs[index].name.clone();
            let frame = ClientFrame::Msg {
                to: name.clone(),
                text: text.clone(),
            };
            send_chat(state, index, &name, text, false, frame, out);
        }
        Command::Query { nick, text } => {
            let index = state.conv_index(&nick, ConvKind::Direct);
            state.switch_to(index);
            if let Some(text) = text {
                say(state, index, text, out);
            }
        }
        Command::Broadcast(text) => {
            let frame = ClientFrame::Broadcast { text: text.clone() };
            send_chat(state, 0, SERVER_CONV, text, true, frame, out);
        }
        Command::Say(text) => say(state, here, text, out),
        Command::History(limit) => history::command(state, limit, out),
        Command::Nick(nick) => send(
            state,
            &here_name,
            PendingKind::Nick(nick.clone()),
            Outgoing::Core(ClientFrame::Nick { nick }),
            out,
        ),
        Command::Who(room) => {
            let room = room.or(current_room);
            send(
                state,
                &here_name,
                PendingKind::Users,
                Outgoing::Core(ClientFrame::Users { room }),
                out,
            );
        }
        Command::Users(room) => send(
            state,
            &here_name,
            PendingKind::Users,
            Outgoing::Core(ClientFrame::Users { room }),
            out,
        ),
        Command::Rooms => send(
            state,
            &here_name,
            PendingKind::Rooms,
            Outgoing::Core(ClientFrame::Rooms {}),
            out,
        ),
        Command::Quit(reason) => quit(state, reason, out),
        Command::Register(ref user) | Command::Login(ref user) => {
            let register = matches!(command, Command::Register(_));
            let user = user.clone();
            let Some(user) = user
                .or_else(|| state.user.clone())
                .or_else(|| (!state.nick.is_empty()).then(|| state.nick.clone()))
            else {
                state.note(here, error_body("input", "usage: /login USER".into()));
                return;
            };
            let purpose = if register {
                PasswordPurpose::Register { user }
            } else {
                PasswordPurpose::Login { user }
            };
            ask_password(state, purpose, out);
        }
        Command::Passwd => ask_password(state, PasswordPurpose::PasswdOld, out),
        Command::Logout => send(
            state,
            &here_name,
            PendingKind::Logout,
            Outgoing::Json(json!({ "type": "logout" })),
            out,
        ),
        Command::Send { to, path } => files::send_file(state, to, &path, out),
        Command::Accept { id, dir } => files::accept(state, id, dir, out),
        Command::Decline(id) => files::decline(state, id, out),
        Command::Cancel(id) => files::cancel(state, &id, out),
        Command::Files => files::list(state, &here_name, out),
        Command::Transfers => state.transfers.shown = !state.transfers.shown,
        // `/accept` and `/decline` alone answer the latest invitation; with
        // none waiting but a file offered, they answer the file (as they
        // did before the commands were shared with the browser app).
        Command::Room(RoomCommand::Accept(None)) if offer_instead_of_invitation(state) => {
            files::accept(state, None, None, out)
        }
        Command::Room(RoomCommand::Decline(None)) if offer_instead_of_invitation(state) => {
            files::decline(state, None, out)
        }
        Command::Room(command) => rooms::run(state, command, out),
    }
}

/// Prompts for a password (full screen) or takes it from the environment
/// (line mode).
fn ask_password(state: &mut State, purpose: PasswordPurpose, out: &mut Vec<NetCommand>) {
    let here = state.current;
    match &state.frontend {
        Frontend::Screen => {
            let question = match &purpose {
                PasswordPurpose::Login { user } => {
                    format!("password for {user} (not shown; Esc cancels):")
                }
                PasswordPurpose::Register { user } => {
                    format!(
                        "choose a password for the new account {user} (not shown; Esc cancels):"
                    )
                }
                PasswordPurpose::PasswdOld => "current password (not shown; Esc cancels):".into(),
                PasswordPurpose::PasswdNew { .. } => "new password (not shown):".into(),
            };
            state.note(here, Body::Info(question));
            state.prompt = Some(purpose);
        }
        Frontend::Line {
            password,
            new_password,
        } => {
            let (password, new_password) = (password.clone(), new_password.clone());
            let Some(password) = password else {
                state.note(
                    here,
                    error_body(
                        "no_password",
                        "line mode reads the password from the CHATD_PASSWORD environment variable, which is not set".into(),
                    ),
                );
                return;
            };
            match purpose {
                PasswordPurpose::PasswdOld => match new_password {
                    Some(new) => password_entered(state, PasswordPurpose::PasswdNew { old: password }, new, out),
                    None => state.note(
                        here,
                        error_body(
                            "no_password",
                            "line mode reads the new password from CHATD_NEW_PASSWORD, which is not set".into(),
                        ),
                    ),
                },
                purpose => password_entered(state, purpose, password, out),
            }
        }
    }
}

fn password_entered(
    state: &mut State,
    purpose: PasswordPurpose,
    password: String,
    out: &mut Vec<NetCommand>,
) {
    let here_name = state.current_conv().name.clone();
    if password.is_empty() {
        let here = state.current;
        state.note(here, Body::Info("empty password: cancelled".into()));
        return;
    }
    if !online(state) {
        let here = state.current;
        state.note(
            here,
            error_body("offline", "not connected; try again once connected".into()),
        );
        return;
    }
    match purpose {
        PasswordPurpose::Login { user } => {
            let request = account_request(state, &here_name, &user, password, false);
            if let NetCommand::Send(id, _) = &request {
                // Answering the prompt shown on connecting (`--user`).
                if state.rejoin_after_login {
                    if let Some(pending) = state.pending.get_mut(id) {
                        pending.what = PendingKind::SetupLogin(user.clone());
                    }
                }
            }
            out.push(request);
        }
        PasswordPurpose::Register { user } => {
            out.push(account_request(state, &here_name, &user, password, true));
        }
        PasswordPurpose::PasswdOld => {
            state.prompt = Some(PasswordPurpose::PasswdNew { old: password });
            let here = state.current;
            state.note(here, Body::Info("new password (not shown):".into()));
        }
        PasswordPurpose::PasswdNew { old } => {
            send(
                state,
                &here_name,
                PendingKind::Passwd(password.clone()),
                Outgoing::Json(
                    json!({ "type": "passwd", "old_password": old, "new_password": password }),
                ),
                out,
            );
        }
    }
}

/// A `login` or `register` request; the password is kept for reconnecting.
fn account_request(
    state: &mut State,
    conv: &str,
    user: &str,
    password: String,
    register: bool,
) -> NetCommand {
    state.user = Some(user.to_string());
    state.password = Some(password.clone());
    let (kind, what) = if register {
        ("register", PendingKind::Register(user.to_string()))
    } else {
        ("login", PendingKind::Login(user.to_string()))
    };
    let id = state.request(conv, what);
    NetCommand::Send(
        id,
        Outgoing::Json(json!({ "type": kind, "user": user, "password": password })),
    )
}

fn join_requests(state: &mut State) -> Vec<(u64, Outgoing)> {
    join_requests_except(state, &[])
}

/// Joins of the wanted rooms but those in `skip` (folded names).
pub(crate) fn join_requests_except(state: &mut State, skip: &[String]) -> Vec<(u64, Outgoing)> {
    state
        .joined_rooms()
        .into_iter()
        .filter(|room| !skip.contains(&fold(room)))
        .map(|room| {
            let id = state.request(&room, PendingKind::Join(room.clone()));
            (id, Outgoing::Core(ClientFrame::Join { room }))
        })
        .collect()
}

fn on_net(state: &mut State, event: NetEvent, out: &mut Vec<NetCommand>) {
    match event {
        NetEvent::Connecting { attempt } => {
            state.link = Link::Connecting { attempt };
            if attempt == 1 {
                let text = format!(
                    "connecting to {}{}",
                    state.server.addr,
                    if state.server.tls { " (TLS)" } else { "" }
                );
                state.note(0, Body::Status(text));
            }
        }
        NetEvent::Connected(welcome) => {
            state.link = Link::Connected;
            state.server_joined.clear();
            state.catch_up = None;
            state.server.software = Some(format!("{} {}", welcome.server, welcome.version));
            state.server.auth_required = welcome.auth_required;
            state.server.features = welcome.features.clone();
            let text = format!(
                "connected to {} ({} {}{})",
                state.server.addr,
                welcome.server,
                welcome.version,
                if state.server.tls { ", TLS" } else { "" }
            );
            state.note(0, Body::Status(text));
            out.push(NetCommand::Setup(setup_frames(state)));
            if !state.rejoin_after_login {
                files::resume(state, out);
                files::list_quietly(state, out);
            }
        }
        NetEvent::Transfer(event) => files::on_transfer(state, event, out),
        NetEvent::Frame(frame) => {
            on_frame(state, frame, out);
            // Input may have ended while a message awaited its `sent`.
            files::quit_if_idle(state, out);
        }
        NetEvent::Lag(lag) => state.lag = Some(lag),
        NetEvent::Undelivered(id) => {
            fail_request(state, id, "not sent: not connected".into());
            files::quit_if_idle(state, out);
        }
        NetEvent::Disconnected { reason, retry_in } => {
            // Whatever was caught up before the link dropped is shown.
            history::flush(state);
            state.catch_up = None;
            let ids: Vec<u64> = state.pending.keys().copied().collect();
            for id in ids {
                fail_request(state, id, "no answer: the connection was lost".into());
            }
            state.logged_in = false;
            state.lag = None;
            files::on_disconnected(state, out);
            let text = format!(
                "disconnected: {reason}; reconnecting in {} s",
                retry_in.as_secs().max(1)
            );
            state.note(0, Body::Status(text));
            let retry_at = state.now_ms + retry_in.as_millis() as u64;
            state.link = Link::Disconnected { reason, retry_at };
        }
        NetEvent::Closed => {
            state.link = Link::Closed;
            state.quitting = true;
        }
    }
}

/// Frames restoring the session on a new connection: log in (or take the
/// nickname), then rejoin the rooms.
fn setup_frames(state: &mut State) -> Vec<(u64, Outgoing)> {
    let mut frames = Vec::new();
    if let Some(user) = state.user.clone() {
        if let Some(resume) = history::resume_request(state, &user) {
            return vec![resume];
        }
        return login_frames(state, user);
    }
    if state.server.auth_required {
        let hint = "this server needs an account: /login USER, or /register USER for a new one";
        state.note(0, Body::Info(hint.into()));
        state.rejoin_after_login = true;
        return frames;
    }
    let nick = state.nick.clone();
    let id = state.request(SERVER_CONV, PendingKind::Nick(nick.clone()));
    frames.push((id, Outgoing::Core(ClientFrame::Nick { nick })));
    frames.extend(join_requests(state));
    frames
}

/// Logging in to `user` with the password we know (or asking for it); the
/// rooms are rejoined once the login is confirmed.
pub(crate) fn login_frames(state: &mut State, user: String) -> Vec<(u64, Outgoing)> {
    let mut frames = Vec::new();
    let env_password = match &state.frontend {
        Frontend::Line { password, .. } => password.clone(),
        Frontend::Screen => None,
    };
    match (state.password.clone().or(env_password), &state.frontend) {
        (Some(password), _) => {
            if let NetCommand::Send(id, frame) =
                account_request(state, SERVER_CONV, &user, password, false)
            {
                if let Some(pending) = state.pending.get_mut(&id) {
                    pending.what = PendingKind::SetupLogin(user.clone());
                }
                frames.push((id, frame));
            }
        }
        (None, Frontend::Screen) if !state.server.features.iter().any(|f| f == "accounts") => {
            // No point asking for a password the server cannot check.
            state.user = None;
            let nick = state.nick.clone();
            let text = format!("this server has no accounts (its welcome lists no 'accounts' feature); continuing as guest {nick}");
            state.note(0, Body::Info(text));
            let id = state.request(SERVER_CONV, PendingKind::Nick(nick.clone()));
            frames.push((id, Outgoing::Core(ClientFrame::Nick { nick })));
            frames.extend(join_requests(state));
            return frames;
        }
        (None, Frontend::Screen) => {
            state.switch_to(0);
            state.note(
                0,
                Body::Info(format!("password for {user} (not shown; Esc cancels):")),
            );
            state.prompt = Some(PasswordPurpose::Login { user });
        }
        (None, Frontend::Line { .. }) => {
            let message = format!(
                "--user {user} needs the password in the CHATD_PASSWORD environment variable"
            );
            state.note(0, error_body("no_password", message));
        }
    }
    // Rooms are rejoined once the login is confirmed.
    state.rejoin_after_login = true;
    frames
}

/// Marks a request as failed, with `why` shown where it was made.
fn fail_request(state: &mut State, id: u64, why: String) {
    let Some(pending) = state.pending.remove(&id) else {
        return;
    };
    let index = state.find(&pending.conv).unwrap_or(0);
    match pending.what {
        PendingKind::Chat => mark_delivery(state, index, id, Delivery::Failed, None, None, None),
        PendingKind::History { .. } => history::on_refused(state, index),
        _ => {}
    }
    state.note(index, error_body("not_sent", why));
}

/// Updates the delivery of our message `id` in conversation `index`;
/// `delivered_text` replaces what we typed when a server plugin changed it
/// (`sent.text`), so we show what everyone else sees.
fn mark_delivery(
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

fn on_frame(state: &mut State, frame: Received, out: &mut Vec<NetCommand>) {
    let pending = frame
        .reply_to()
        .and_then(|id| state.pending.remove(&id).map(|p| (id, p)));
    let reply_index = pending
        .as_ref()
        .and_then(|(_, p)| state.find(&p.conv))
        .unwrap_or(state.current);
    let what = pending.as_ref().map(|(_, p)| p.what.clone());
    // The history frames, whether this chat-api knows them as core frames
    // or not.
    match frame.kind() {
        "history" => {
            match what {
                Some(PendingKind::CatchUpPage) => {
                    history::on_catch_up_page(state, reply_index, &frame, out)
                }
                Some(PendingKind::History { user }) => {
                    history::on_page(state, reply_index, &frame, user)
                }
                _ => {}
            }
            return;
        }
        "missed" => {
            if let Some(messages) = chat_client::history::missed_messages(&frame) {
                history::on_missed(state, messages);
            }
            return;
        }
        "resumed" => return history::on_resumed(state, &frame, out),
        "unread" => return history::on_unread(state, &frame),
        _ => {}
    }
    match frame {
        Received::Core(frame) => match frame {
            ServerFrame::Ok { nick, .. } => match what {
                Some(PendingKind::Nick(asked)) => {
                    let nick = nick.unwrap_or(asked);
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
                    if let Some(i) = state.find(&room) {
                        state.convs[i].joined = false;
                        state.convs[i].members.clear();
                        state.note(i, Body::Info(format!("you left {room}")));
                    }
                }
                Some(PendingKind::Passwd(new)) => {
                    // A new password revokes every resume token.
                    state.resume_token = None;
                    state.password = Some(new);
                    state.note(reply_index, Body::Info("password changed".into()));
                }
                Some(ref what @ (PendingKind::FileDecline(_) | PendingKind::FileCancel(_))) => {
                    files::on_ok(state, what, reply_index)
                }
                Some(
                    ref what @ (PendingKind::RoomDone(_)
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
            },
            ServerFrame::Joined {
                room,
                members,
                topic,
                ..
            } => {
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
                let told =
                    rejoin && state.server_joined.contains(&key) && state.convs[index].joined;
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
            ServerFrame::Sent {
                msg_id,
                ts,
                text,
                stored,
                ..
            } => {
                state.saw_msg_id(msg_id);
                if let Some((id, _)) = pending {
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
                    let text = format!(
                        "{name} is not connected: the message is kept and delivered when they log in"
                    );
                    state.note(reply_index, Body::Info(text));
                }
            }
            ServerFrame::Message(message) => on_message(state, message),
            ServerFrame::Presence(presence) => on_presence(state, presence),
            ServerFrame::Users { room, users, .. } => {
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
            ServerFrame::Rooms { rooms, .. } => {
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
                if what != Some(PendingKind::RoomsQuiet) {
                    state.note(reply_index, Body::Rooms(rooms));
                }
            }
            ServerFrame::Pong { .. } | ServerFrame::Welcome { .. } => {}
            // Handled above, by type.
            ServerFrame::History { .. }
            | ServerFrame::Unread { .. }
            | ServerFrame::Missed { .. }
            | ServerFrame::Resumed { .. } => {}
            ServerFrame::Error { code, message, .. } => {
                let mut index = reply_index;
                match &what {
                    Some(PendingKind::Resume(user)) => {
                        let user = user.clone();
                        history::on_resume_refused(state, user, code.as_str(), &message, out);
                        return;
                    }
                    Some(PendingKind::History { .. }) => history::on_refused(state, reply_index),
                    Some(PendingKind::Chat) => {
                        let (id, _) = pending.as_ref().expect("what comes from pending");
                        mark_delivery(state, reply_index, *id, Delivery::Failed, None, None, None);
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
                    Some(
                        PendingKind::Login(_)
                        | PendingKind::SetupLogin(_)
                        | PendingKind::Register(_),
                    ) => {
                        // A wrong password must not be retried at every reconnect.
                        state.password = None;
                        let automatic = matches!(what, Some(PendingKind::SetupLogin(_)));
                        if automatic && code == ErrorCode::FEATURE_DISABLED {
                            state.rejoin_after_login = false;
                            // No accounts on this server: carry on as a guest.
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
                            return;
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
            ServerFrame::Bye { code, reason } => {
                let text = format!("the server closed the session: {reason} ({code})");
                state.note(0, Body::Status(text));
            }
            // A frame type of a newer chat-api this client does not show.
            _ => {}
        },
        Received::Custom { kind, fields } => {
            let quiet = what == Some(PendingKind::FileListQuiet);
            on_custom(state, &kind, &fields, reply_index, quiet, out)
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
        "logged_in" => {
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
        other if files::on_custom(state, other, fields, index, quiet, out) => {}
        other if rooms::on_custom(state, other, fields, index) => {}
        other => {
            let text = format!("the server sent a '{other}' frame this client does not know");
            state.note(index, Body::Info(text));
        }
    }
}

pub(crate) fn remember_users(state: &mut State, users: &[String]) {
    for u in users {
        if !state.known_users.iter().any(|k| fold(k) == fold(u)) {
            state.known_users.push(u.clone());
        }
    }
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

#[path = "update_files.rs"]
pub mod files;

#[path = "update_rooms.rs"]
pub mod rooms;

#[path = "update_history.rs"]
pub mod history;

#[cfg(test)]
#[path = "update_tests.rs"]
mod tests;
