//! Events of the connection task: connecting, the server's `welcome`
//! (and restoring the session on it), disconnecting, requests that got no
//! answer; frames go on to `frames.rs`.

use chat_protocol::ClientFrame;

use super::commands::account_request;
use super::frames::{mark_delivery, on_frame};
use super::{error_body, files, history, join_requests};
use crate::net::{NetCommand, NetEvent, Outgoing};
use crate::state::{
    Body, Delivery, Frontend, Link, PasswordPurpose, PendingKind, State, SERVER_CONV,
};

pub(super) fn on_net(state: &mut State, event: NetEvent, out: &mut Vec<NetCommand>) {
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
