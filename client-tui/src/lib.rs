//! # client-tui: the terminal client for chatd
//!
//! Two front ends over one state machine, in the Elm style:
//!
//! * [`state`]: everything the client knows, as plain data; [`entry`]: the
//!   lines of a conversation;
//! * [`update`]: `update(state, event)` applies a key, an input line or a
//!   network event and returns requests for the connection task;
//! * [`layout`]: widths, wrapping and an entry's words as rows, shared by
//!   the state (to keep the reader's place) and the view (a leaf: it knows
//!   neither);
//! * [`view`]: `draw(state, frame)` renders the full-screen interface;
//!   [`lines`] formats the line mode's output;
//! * [`command`]: the slash-command table and parser; [`complete`]: tab
//!   completion; [`editor`]: the input line;
//! * [`net`]: the connection task (connect, ping, reconnect with back-off);
//!   [`transfer`]: file transfer workers on that connection; [`transfers`]:
//!   the transfers and offers the state keeps;
//! * [`screen`] and [`line_mode`]: the two event loops; [`settings`]:
//!   command line and config file.

pub mod autolog;
pub mod command;
pub mod complete;
pub mod editor;
pub mod entry;
pub mod help_view;
pub mod layout;
pub mod line_mode;
pub mod lines;
pub mod net;
pub mod progress;
pub mod screen;
pub mod settings;
pub mod state;
pub mod transfer;
pub mod transfers;
pub mod update;
pub mod view;

use std::time::Duration;

use chat_client::ConnectOptions;

use crate::settings::Settings;
use crate::state::{ConvKind, Frontend, ServerInfo, State};

pub use chat_protocol::now_ms;

/// The initial state for `settings`: rooms to join are marked wanted, so the
/// first connection's setup joins them, and the first one is shown.
pub fn initial_state(settings: &Settings, frontend: Frontend, utc_offset_secs: i32) -> State {
    let server = ServerInfo {
        addr: settings.server.clone(),
        tls: settings.tls,
        ..ServerInfo::default()
    };
    let mut state = State::new(
        server,
        settings.nick.clone(),
        settings.user.clone(),
        frontend,
    );
    state.utc_offset_secs = utc_offset_secs;
    if let Some(dir) = &settings.download_dir {
        state.download_dir = dir.clone();
    }
    state.now_ms = now_ms();
    for room in &settings.rooms {
        let index = state.conv_index(room, ConvKind::Room);
        state.convs[index].joined = true;
    }
    // Start in the first room: plain text typed first goes there.
    if state.convs.len() > 1 {
        state.switch_to(1);
    }
    state
}

/// Where and how to connect.
pub fn target(settings: &Settings) -> net::Target {
    let options = ConnectOptions {
        tls: settings.tls,
        ca: settings.ca.clone(),
        client_name: concat!("client-tui/", env!("CARGO_PKG_VERSION")).to_string(),
        timeout: Duration::from_secs(10),
        ..ConnectOptions::default()
    };
    net::Target::new(&settings.server, options)
}

/// Hands requests to the connection task without waiting: the loops only
/// take new input while the queue has room, so this does not fail in
/// practice; if it does, the user is told.
pub fn dispatch(state: &mut State, net: &net::Net, commands: Vec<net::NetCommand>) {
    for command in commands {
        if let Err(e) = net.commands.try_send(command) {
            let index = state.current;
            let why = match e {
                tokio::sync::mpsc::error::TrySendError::Full(_) => {
                    "too many requests queued; slow down"
                }
                tokio::sync::mpsc::error::TrySendError::Closed(_) => {
                    "the connection task has stopped"
                }
            };
            state.note(
                index,
                state::Body::Error {
                    code: "not_sent".into(),
                    message: why.into(),
                },
            );
        }
    }
}
