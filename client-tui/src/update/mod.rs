//! `update(state, event)`: the only place the state changes. Keys, input
//! lines and network events go in; requests for the connection task come out.

use chat_protocol::names::fold;
use chat_protocol::ClientFrame;
use crossterm::event::{KeyEvent, KeyEventKind, MouseEvent};

use crate::command::{self, Command, Input};
use crate::net::{NetCommand, NetEvent, Outgoing};
use crate::state::{Body, ConvKind, Delivery, Frontend, Link, Origin, PendingKind, State};
use crate::transfer::TransferEvent;
use commands::{password_entered, run_command};
use connection::{login_frames, on_net};
use keys::{on_key, on_mouse};

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
    /// A file transfer worker's report (its own queue: `Net::transfers`).
    Transfer(TransferEvent),
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
        Event::Transfer(report) => files::on_transfer(state, report, &mut out),
        Event::Line(line) => submit(state, line, &mut out),
        Event::InputClosed => quit(state, None, &mut out),
        Event::InputEnded => files::quit_when_idle(state, &mut out),
        Event::Tick => {}
    }
    out
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

/// Whether the server's welcome lists `feature`; says where the user is
/// that the server has no `what` when it does not.
pub(crate) fn feature_enabled(state: &mut State, feature: &str, what: &str) -> bool {
    if state.server.features.iter().any(|f| f == feature) {
        return true;
    }
    let here = state.current;
    let message = format!("this server has no {what} (its welcome lists no '{feature}' feature)");
    state.note(here, error_body("feature_disabled", message));
    false
}

pub(crate) fn error_body(code: &str, message: String) -> Body {
    Body::Error {
        code: code.to_string(),
        message,
    }
}

/// Sends text to the conversation at `index`.
pub(super) fn say(state: &mut State, index: usize, text: String, out: &mut Vec<NetCommand>) {
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

pub(super) fn send(
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

pub(super) fn join_requests(state: &mut State) -> Vec<(u64, Outgoing)> {
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

pub(crate) fn remember_users(state: &mut State, users: &[String]) {
    for u in users {
        if !state.known_users.iter().any(|k| fold(k) == fold(u)) {
            state.known_users.push(u.clone());
        }
    }
}

mod commands;
mod connection;
pub mod files;
mod frames;
pub mod history;
mod keys;
pub mod rooms;

#[cfg(test)]
mod tests;
