//! The file transfer part of `update`: the `/send`, `/download`, `/refuse`,
//! `/cancel` and `/files` commands, the `file_*` frames, the workers'
//! reports, and resuming after a reconnect.

use std::path::PathBuf;

use chat_protocol::files::{
    FileAvailable, FileCancel, FileDecline, FileDeclined, FileDelivered, FileInfo, FileList,
    FileListing, FileRemoved, FileTarget,
};
use serde_json::Value;

use super::{error_body, feature_enabled, send};
use crate::command::FileTo;
use crate::net::{NetCommand, Outgoing};
use crate::state::{Body, ConvKind, Frontend, PendingKind, State, TransferNote, SERVER_CONV};
use crate::transfer::{TransferEvent, TransferEventKind, TransferJob};
use crate::transfers::{destination, safe_file_name, Direction, TransferStatus};

/// Whether the server has the files plugin; says so where the user is
/// when it has not.
fn files_enabled(state: &mut State) -> bool {
    feature_enabled(state, "files", "file transfer")
}

/// The file offered as `id` (the latest without one); says why where the
/// user is when there is none.
fn offered(state: &mut State, id: Option<&str>) -> Option<FileInfo> {
    match state.transfers.find_offer(id) {
        Ok(file) => Some(file.clone()),
        Err(e) => {
            let here = state.current;
            state.note(here, error_body("input", e.to_string()));
            None
        }
    }
}

/// `~/x` is `$HOME/x`; other paths are taken as they are.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn conv_kind(name: &str) -> ConvKind {
    if name.starts_with('#') {
        ConvKind::Room
    } else {
        ConvKind::Direct
    }
}

/// `/send TARGET PATH`.
pub fn send_file(state: &mut State, to: FileTo, path: &str, out: &mut Vec<NetCommand>) {
    if !files_enabled(state) {
        return;
    }
    let here = state.current;
    let path = expand_home(path);
    let path = std::path::absolute(&path).unwrap_or(path);
    let size = match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => meta.len(),
        Ok(_) => {
            let message = format!("cannot send {}: it is not a file", path.display());
            state.note(here, error_body("input", message));
            return;
        }
        Err(e) => {
            let message = format!("cannot send {}: {e}", path.display());
            state.note(here, error_body("input", message));
            return;
        }
    };
    let Some(name) = path
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
    else {
        let message = format!("cannot send {}: it has no usable file name", path.display());
        state.note(here, error_body("input", message));
        return;
    };
    let (conv, target) = match to {
        FileTo::User(nick) => (
            nick.clone(),
            FileTarget {
                to: Some(nick),
                room: None,
            },
        ),
        FileTo::Room(room) => (
            room.clone(),
            FileTarget {
                to: None,
                room: Some(room),
            },
        ),
    };
    let index = state.conv_index(&conv, conv_kind(&conv));
    let conv = state.convs[index].name.clone();
    let transfer = state
        .transfers
        .add(Direction::Upload, &name, &path, &conv, None);
    transfer.total = size;
    let slot = transfer.slot;
    let text = format!(
        "sending {name} ({}) to {conv}",
        crate::layout::human_bytes(size as f64)
    );
    state.note(index, Body::Info(text));
    out.push(NetCommand::Transfer(TransferJob::Upload {
        slot,
        path,
        name,
        to: target,
    }));
}

/// `/accept [ID] [DIR]`.
pub fn accept(
    state: &mut State,
    id: Option<String>,
    dir: Option<String>,
    out: &mut Vec<NetCommand>,
) {
    if !files_enabled(state) {
        return;
    }
    let Some(file) = offered(state, id.as_deref()) else {
        return;
    };
    let here = state.current;
    let dir = dir.map_or_else(|| state.download_dir.clone(), |d| expand_home(&d));
    if !dir.is_dir() {
        let message = format!("cannot save into {}: it is not a directory", dir.display());
        state.note(here, error_body("input", message));
        return;
    }
    let Some(name) = safe_file_name(&file.name).map(str::to_string) else {
        let message = format!(
            "the offered name {:?} is not safe to save; /refuse it",
            file.name
        );
        state.note(here, error_body("input", message));
        return;
    };
    let dest = destination(&dir, &name);
    let dest = std::path::absolute(&dest).unwrap_or(dest);
    state.transfers.forget_offer(&file.transfer);
    let conv = file.room.clone().unwrap_or_else(|| file.from.clone());
    let index = state.conv_index(&conv, conv_kind(&conv));
    let conv = state.convs[index].name.clone();
    let text = format!(
        "downloading {name} from {} to {}",
        file.from,
        dest.display()
    );
    let transfer =
        state
            .transfers
            .add(Direction::Download, &name, &dest, &conv, Some(file.clone()));
    let slot = transfer.slot;
    state.note(index, Body::Info(text));
    out.push(NetCommand::Transfer(TransferJob::Download {
        slot,
        file,
        dest,
    }));
}

/// `/decline [ID]`.
pub fn decline(state: &mut State, id: Option<String>, out: &mut Vec<NetCommand>) {
    if !files_enabled(state) {
        return;
    }
    let Some(file) = offered(state, id.as_deref()) else {
        return;
    };
    let conv = file.room.clone().unwrap_or_else(|| file.from.clone());
    let frame = serde_json::to_value(FileDecline {
        transfer: file.transfer.clone(),
    })
    .expect("frames serialise");
    send(
        state,
        &conv,
        PendingKind::FileDecline(file.transfer),
        Outgoing::Json(frame),
        out,
    );
}

/// `/cancel ID`: stops our worker for it, and withdraws it from the
/// server when it is our upload.
pub fn cancel(state: &mut State, id: &str, out: &mut Vec<NetCommand>) {
    let here = state.current;
    let transfer = match state.transfers.find_id(id) {
        Ok(t) => t,
        Err(e) => {
            state.note(here, error_body("input", e.to_string()));
            return;
        }
    };
    let local = state
        .transfers
        .list
        .iter_mut()
        .rev()
        .find(|t| t.transfer.as_deref() == Some(transfer.as_str()));
    let (direction, conv, name, file) = match local {
        Some(t) => {
            if t.status.is_open() {
                t.status = TransferStatus::Cancelled;
                out.push(NetCommand::StopTransfer(t.slot));
            }
            (
                Some(t.direction),
                t.conv.clone(),
                t.name.clone(),
                t.file.clone(),
            )
        }
        None => (None, SERVER_CONV.to_string(), String::new(), None),
    };
    let own_upload = direction == Some(Direction::Upload)
        || state
            .transfers
            .remote_outgoing
            .iter()
            .any(|o| o.transfer == transfer);
    if own_upload {
        let frame = serde_json::to_value(FileCancel {
            transfer: transfer.clone(),
        })
        .expect("frames serialise");
        send(
            state,
            &conv,
            PendingKind::FileCancel(transfer),
            Outgoing::Json(frame),
            out,
        );
    } else if direction == Some(Direction::Download) {
        let index = state.find(&conv).unwrap_or(0);
        let short = crate::transfers::short_id(&transfer);
        let text = format!("download of {name} stopped; /download {short} resumes it");
        state.note(index, Body::Info(text));
        if let Some(file) = file {
            state.transfers.offer(file);
        }
    } else {
        let text = "that file was offered to you: /refuse turns it down".to_string();
        state.note(here, error_body("input", text));
    }
    quit_if_idle(state, out);
}

/// `/files`.
pub fn list(state: &mut State, conv: &str, out: &mut Vec<NetCommand>) {
    if !files_enabled(state) {
        return;
    }
    let frame = serde_json::to_value(FileList {}).expect("frames serialise");
    send(
        state,
        conv,
        PendingKind::FileList,
        Outgoing::Json(frame),
        out,
    );
}

/// Asks for the file list on connecting and after logging in, when the
/// server has files: offers made while we were away (or logged out) are
/// shown then.
pub fn list_quietly(state: &mut State, out: &mut Vec<NetCommand>) {
    if state.server.features.iter().any(|f| f == "files") {
        let frame = serde_json::to_value(FileList {}).expect("frames serialise");
        send(
            state,
            SERVER_CONV,
            PendingKind::FileListQuiet,
            Outgoing::Json(frame),
            out,
        );
    }
}

/// An `ok` for one of our file requests.
pub fn on_ok(state: &mut State, what: &PendingKind, index: usize) {
    match what {
        PendingKind::FileDecline(transfer) => {
            if let Some(file) = state.transfers.forget_offer(transfer) {
                state.note(index, Body::Info(format!("declined {}", file.name)));
            }
        }
        PendingKind::FileCancel(transfer) => {
            state
                .transfers
                .remote_outgoing
                .retain(|o| &o.transfer != transfer);
            let name = state
                .transfers
                .list
                .iter()
                .rev()
                .find(|t| t.transfer.as_deref() == Some(transfer.as_str()))
                .map_or_else(|| transfer.clone(), |t| t.name.clone());
            state.note(index, Body::Info(format!("withdrew {name}")));
        }
        _ => {}
    }
}

/// Frames of the files plugin; returns `false` for other frames (and for
/// ones of the plugin's types that do not decode).
pub fn on_custom(
    state: &mut State,
    kind: &str,
    fields: &serde_json::Map<String, Value>,
    index: usize,
    quiet: bool,
    out: &mut Vec<NetCommand>,
) -> bool {
    let mut value = Value::Object(fields.clone());
    value["type"] = Value::from(kind);
    let decoded = match kind {
        "file_available" => decode(value).map(|a: FileAvailable| offered_anew(state, a.file)),
        "file_list" => decode(value).map(|l| on_listing(state, l, index, quiet)),
        "file_delivered" => decode(value).map(|d: FileDelivered| {
            let (at, name) = about(state, &d.transfer);
            state.note(at, Body::Info(format!("{} received {name}", d.to)));
        }),
        "file_declined" => decode(value).map(|d: FileDeclined| {
            let (at, name) = about(state, &d.transfer);
            state.note(at, Body::Info(format!("{} declined {name}", d.by)));
        }),
        "file_removed" => decode(value).map(|r| on_removed(state, r, out)),
        _ => None,
    };
    decoded.is_some()
}

fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Option<T> {
    serde_json::from_value(value).ok()
}

/// A file offered to us: shown where it belongs, unless already known.
fn offered_anew(state: &mut State, file: FileInfo) {
    if state.transfers.offer(file.clone()) {
        let conv = file.room.clone().unwrap_or_else(|| file.from.clone());
        let at = state.conv_index(&conv, conv_kind(&conv));
        state.note(at, Body::FileOffer(file));
    }
}

/// `file_list`: asked by `/files` (listed in conversation `index`), or
/// quietly on connecting (only what is new, as if just offered).
fn on_listing(state: &mut State, listing: FileListing, index: usize, quiet: bool) {
    if quiet {
        for file in listing.incoming {
            offered_anew(state, file);
        }
        state.transfers.remote_outgoing = listing.outgoing;
        return;
    }
    if listing.incoming.is_empty() && listing.outgoing.is_empty() {
        state.note(
            index,
            Body::Info("no files wait for you, and you have no uploads".into()),
        );
    }
    for file in listing.incoming {
        state.transfers.offer(file.clone());
        state.note(index, Body::FileOffer(file));
    }
    for o in &listing.outgoing {
        let to = o.target.room.as_deref().or(o.target.to.as_deref());
        let text = format!(
            "your upload {} {} to {}: {}, {} of {}",
            crate::transfers::short_id(&o.transfer),
            o.name,
            to.unwrap_or("?"),
            o.state,
            crate::layout::human_bytes(o.received as f64),
            crate::layout::human_bytes(o.size as f64),
        );
        state.note(index, Body::Info(text));
    }
    state.transfers.remote_outgoing = listing.outgoing;
}

/// `file_removed`: an offer or a running transfer is gone from the server.
fn on_removed(state: &mut State, r: FileRemoved, out: &mut Vec<NetCommand>) {
    let offer = state.transfers.forget_offer(&r.transfer);
    let mut stop = None;
    if let Some(t) = state
        .transfers
        .list
        .iter_mut()
        .find(|t| t.transfer.as_deref() == Some(r.transfer.as_str()))
    {
        if t.status.is_open() {
            t.status = TransferStatus::Failed(format!("removed by the server: {}", r.reason));
            stop = Some(t.slot);
        }
    }
    if let Some(slot) = stop {
        out.push(NetCommand::StopTransfer(slot));
    }
    let (at, name) = match offer {
        Some(file) => {
            let conv = file.room.clone().unwrap_or(file.from.clone());
            (state.find(&conv).unwrap_or(0), file.name)
        }
        None => about(state, &r.transfer),
    };
    state.note(at, Body::Info(format!("{name} is gone ({})", r.reason)));
    quit_if_idle(state, out);
}

/// The conversation and name of a transfer we know, else the server
/// conversation and the id.
fn about(state: &State, transfer: &str) -> (usize, String) {
    state
        .transfers
        .list
        .iter()
        .rev()
        .find(|t| t.transfer.as_deref() == Some(transfer))
        .map_or((0, transfer.to_string()), |t| {
            (state.find(&t.conv).unwrap_or(0), t.name.clone())
        })
}

/// End of input: quits now, or once the running transfers end (a script
/// that sends a file and closes its input means the file to arrive) and
/// our messages are answered (`sent` comes once the server has stored a
/// message, which may be after it read our `quit`).
pub fn quit_when_idle(state: &mut State, out: &mut Vec<NetCommand>) {
    let running = state.transfers.running();
    if state.quitting || (running == 0 && !chat_unanswered(state)) {
        super::quit(state, None, out);
        return;
    }
    if running > 0 && !state.transfers.quit_when_idle {
        let text = format!("end of input: quitting once {running} running transfer(s) end");
        state.note(0, Body::Info(text));
    }
    state.transfers.quit_when_idle = true;
}

/// Whether a message we sent still waits for the server's answer.
fn chat_unanswered(state: &State) -> bool {
    state.pending.values().any(|p| p.what == PendingKind::Chat)
}

/// Quits if input ended and nothing is left running or unanswered.
pub(crate) fn quit_if_idle(state: &mut State, out: &mut Vec<NetCommand>) {
    if state.transfers.quit_when_idle && state.transfers.running() == 0 && !chat_unanswered(state) {
        super::quit(state, None, out);
    }
}

/// A worker's report.
pub fn on_transfer(state: &mut State, event: TransferEvent, out: &mut Vec<NetCommand>) {
    on_report(state, event);
    quit_if_idle(state, out);
}

fn on_report(state: &mut State, event: TransferEvent) {
    let now = state.now_ms;
    let line_mode = matches!(state.frontend, Frontend::Line { .. });
    let Some(t) = state.transfers.by_slot(event.slot) else {
        return;
    };
    if !t.status.is_open() {
        // Cancelled or removed meanwhile: late reports change nothing.
        return;
    }
    let note = |t: &crate::transfers::Transfer, finished: bool| TransferNote {
        transfer: t.transfer.clone().unwrap_or_default(),
        direction: t.direction,
        name: t.name.clone(),
        path: t.path.display().to_string(),
        done: t.done,
        total: t.total,
        finished,
    };
    let conv = t.conv.clone();
    let name = t.name.clone();
    let direction = t.direction;
    let body = match event.kind {
        TransferEventKind::Started {
            transfer,
            done,
            total,
        } => {
            t.transfer = Some(transfer);
            t.start_run(done, total, now);
            t.reported_tenth = (done * 10).checked_div(total).unwrap_or(0);
            None
        }
        TransferEventKind::Progress { done } => {
            t.status = TransferStatus::Active;
            t.progress(done, now);
            let tenth = (t.done * 10).checked_div(t.total).unwrap_or(10);
            if line_mode && tenth > t.reported_tenth && tenth < 10 {
                t.reported_tenth = tenth;
                Some(Body::Transfer(note(t, false)))
            } else {
                None
            }
        }
        TransferEventKind::Finished { recipients } => {
            t.done = t.total;
            t.status = TransferStatus::Done;
            let finished = Body::Transfer(note(t, true));
            let index = state.find(&conv).unwrap_or(0);
            state.note(index, finished);
            if direction == Direction::Upload && !recipients.is_empty() {
                let text = format!("{name} is available to {}", recipients.join(", "));
                state.note(index, Body::Info(text));
            }
            return;
        }
        TransferEventKind::Interrupted => {
            t.status = TransferStatus::Interrupted;
            Some(Body::Info(format!(
                "transfer of {name} interrupted; it resumes after reconnecting"
            )))
        }
        TransferEventKind::Failed { code, message } => {
            t.status = TransferStatus::Failed(message.clone());
            let what = match direction {
                Direction::Upload => "sending",
                Direction::Download => "downloading",
            };
            Some(error_body(
                code.as_deref().unwrap_or("transfer_failed"),
                format!("{what} {name} failed: {message}"),
            ))
        }
    };
    if let Some(body) = body {
        let index = state.find(&conv).unwrap_or(0);
        state.note(index, body);
    }
}

/// The connection dropped: running transfers wait for the next one.
pub fn on_disconnected(state: &mut State, out: &mut Vec<NetCommand>) {
    for t in &mut state.transfers.list {
        if matches!(t.status, TransferStatus::Preparing | TransferStatus::Active) {
            t.status = TransferStatus::Interrupted;
        }
    }
    quit_if_idle(state, out);
}

/// Restarts interrupted transfers on a new connection: uploads continue
/// where the server stopped, downloads from their `.part` file.
pub fn resume(state: &mut State, out: &mut Vec<NetCommand>) {
    let mut resumed = Vec::new();
    for t in &mut state.transfers.list {
        if t.status != TransferStatus::Interrupted {
            continue;
        }
        let job = match (t.direction, &t.transfer, &t.file) {
            (Direction::Upload, Some(transfer), _) => TransferJob::ResumeUpload {
                slot: t.slot,
                transfer: transfer.clone(),
                path: t.path.clone(),
            },
            (Direction::Upload, None, _) => TransferJob::Upload {
                slot: t.slot,
                path: t.path.clone(),
                name: t.name.clone(),
                to: if t.conv.starts_with('#') {
                    FileTarget {
                        to: None,
                        room: Some(t.conv.clone()),
                    }
                } else {
                    FileTarget {
                        to: Some(t.conv.clone()),
                        room: None,
                    }
                },
            },
            (Direction::Download, _, Some(file)) => TransferJob::Download {
                slot: t.slot,
                file: file.clone(),
                dest: t.path.clone(),
            },
            (Direction::Download, _, None) => continue,
        };
        t.status = TransferStatus::Preparing;
        resumed.push((t.conv.clone(), t.name.clone()));
        out.push(NetCommand::Transfer(job));
    }
    for (conv, name) in resumed {
        let index = state.find(&conv).unwrap_or(0);
        state.note(index, Body::Info(format!("resuming {name}")));
    }
}
