//! Running a slash command (`run_command`): one function per command
//! that needs more than a line; the room and file commands are in
//! `rooms.rs` and `files.rs`.

use chat_protocol::accounts::AccountRequest;
use chat_protocol::ClientFrame;

use super::{error_body, files, history, online, quit, rooms, say, send, send_chat};
use crate::command::{Command, RoomCommand};
use crate::net::{NetCommand, Outgoing};
use crate::state::{
    Body, ConvKind, Frontend, HelpView, PasswordPurpose, PendingKind, State, SERVER_CONV,
};

pub(super) fn run_command(state: &mut State, command: Command, out: &mut Vec<NetCommand>) {
    let here = state.current;
    let here_name = state.current_conv().name.clone();
    let current_room = (state.current_conv().kind == ConvKind::Room).then(|| here_name.clone());
    let core = |frame| Outgoing::Core(frame);
    match command {
        Command::Help(topic) => help(state, topic.as_deref()),
        Command::Join(room) => join(state, room, out),
        Command::Part(room) => part(state, room.or(current_room), out),
        Command::Close => close(state, out),
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
        Command::Nick(nick) => {
            let frame = core(ClientFrame::Nick { nick: nick.clone() });
            send(state, &here_name, PendingKind::Nick(nick), frame, out)
        }
        Command::Who(room) => {
            let frame = core(ClientFrame::Users {
                room: room.or(current_room),
            });
            send(state, &here_name, PendingKind::Users, frame, out)
        }
        Command::Users(room) => {
            let frame = core(ClientFrame::Users { room });
            send(state, &here_name, PendingKind::Users, frame, out)
        }
        Command::Rooms => {
            let frame = core(ClientFrame::Rooms {});
            send(state, &here_name, PendingKind::Rooms, frame, out)
        }
        Command::Quit(reason) => quit(state, reason, out),
        Command::Register(user) => login(state, user, true, out),
        Command::Login(user) => login(state, user, false, out),
        Command::Passwd => ask_password(state, PasswordPurpose::PasswdOld, out),
        Command::Logout => {
            let frame = Outgoing::from(AccountRequest::Logout { everywhere: false });
            send(state, &here_name, PendingKind::Logout, frame, out)
        }
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

/// `/help [topic]`: on screen a view of its own, so the conversation keeps
/// its place; line mode prints it.
fn help(state: &mut State, topic: Option<&str>) {
    let here = state.current;
    match Command::help_lines(topic) {
        Ok(lines) if state.frontend == Frontend::Screen => {
            state.help = Some(HelpView { lines, scroll: 0 });
        }
        Ok(lines) => {
            for line in lines {
                state.note(here, Body::Info(line));
            }
        }
        Err(e) => state.note(here, error_body("input", e.to_string())),
    }
}

/// `/join #room`: shown at once, joined when the server says so.
fn join(state: &mut State, room: String, out: &mut Vec<NetCommand>) {
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

/// `/part [#room]`: the room named, else the current one.
fn part(state: &mut State, room: Option<String>, out: &mut Vec<NetCommand>) {
    let here = state.current;
    let Some(room) = room else {
        state.note(
            here,
            error_body("input", "this is not a room; use /part #ROOM".into()),
        );
        return;
    };
    let conv = state.find(&room).map_or_else(
        || state.current_conv().name.clone(),
        |i| state.convs[i].name.clone(),
    );
    send(
        state,
        &conv,
        PendingKind::Part(room.clone()),
        Outgoing::Core(ClientFrame::Part { room }),
        out,
    );
}

/// `/close`: the current conversation goes; a room is parted first.
fn close(state: &mut State, out: &mut Vec<NetCommand>) {
    let here = state.current;
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

/// `/login [USER]` or `/register [USER]`: the user named, else the one
/// given on the command line, else the nickname; then the password.
fn login(state: &mut State, user: Option<String>, register: bool, out: &mut Vec<NetCommand>) {
    let here = state.current;
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

/// Whether a bare `/accept` or `/decline` is about a file: no invitation
/// waits, and a file does (or the server has no private rooms at all).
fn offer_instead_of_invitation(state: &State) -> bool {
    let rooms = state.server.features.iter().any(|f| f == "private_rooms");
    state.invitations.is_empty() && (state.transfers.find_offer(None).is_ok() || !rooms)
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

pub(super) fn password_entered(
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
                Outgoing::from(AccountRequest::Passwd {
                    old_password: old,
                    new_password: password,
                }),
                out,
            );
        }
    }
}

/// A `login` or `register` request; the password is kept for reconnecting.
pub(super) fn account_request(
    state: &mut State,
    conv: &str,
    user: &str,
    password: String,
    register: bool,
) -> NetCommand {
    state.user = Some(user.to_string());
    state.password = Some(password.clone());
    let user = user.to_string();
    let (frame, what) = if register {
        let what = PendingKind::Register(user.clone());
        (AccountRequest::Register { user, password }, what)
    } else {
        let what = PendingKind::Login(user.clone());
        (AccountRequest::Login { user, password }, what)
    };
    let id = state.request(conv, what);
    NetCommand::Send(id, Outgoing::from(frame))
}
