//! The private-rooms part of `update`: the `/create`, `/invite`, `/kick`,
//! ... commands, and the rooms plugin's frames (`room_event`,
//! `room_invitation`, `room_invitations`, `room_info`).

use chat_protocol::names::fold;
use chat_protocol::rooms::RoomRequest;
use serde_json::Value;

use super::{error_body, feature_enabled, send};
use crate::command::{RoomCommand, TopicChange};
use crate::net::{NetCommand, Outgoing};
use crate::state::{Body, ConvKind, Invitation, PendingKind, RoomDetails, RoomEventNote, State};

/// Whether the server has the rooms plugin; says so where the user is when
/// it has not.
fn rooms_enabled(state: &mut State) -> bool {
    feature_enabled(state, "private_rooms", "private rooms")
}

/// Shows room `room` and asks the server to let us in with `frame`
/// (`room_create`, `room_accept`); wanted from now on, like a `/join`.
fn enter(state: &mut State, room: String, frame: RoomRequest, out: &mut Vec<NetCommand>) {
    let index = state.conv_index(&room, ConvKind::Room);
    state.switch_to(index);
    // Private once the server agrees (`on_entered`).
    let conv = &mut state.convs[index];
    conv.joined = true;
    conv.closed = None;
    let name = conv.name.clone();
    send(
        state,
        &name,
        PendingKind::RoomEnter(room),
        Outgoing::from(frame),
        out,
    );
}

/// The room a command is about: the one named, or the current
/// conversation when it is a room. Explains `usage` when neither.
fn room_or_current(state: &mut State, room: Option<String>, usage: &str) -> Option<String> {
    if let Some(room) = room {
        return Some(room);
    }
    let conv = state.current_conv();
    if conv.kind == ConvKind::Room {
        return Some(conv.name.clone());
    }
    let here = state.current;
    let message = format!("this is not a room; go to the room first or use {usage}");
    state.note(here, error_body("input", message));
    None
}

/// The conversation where the outcome of a request about `room` is shown:
/// the room's own when we have one, else the current one.
fn outcome_conv(state: &State, room: &str) -> String {
    state.find(room).map_or_else(
        || state.current_conv().name.clone(),
        |i| state.convs[i].name.clone(),
    )
}

/// Whether we are in `room` now, so that its `room_event` will reach us.
fn present_in(state: &State, room: &str) -> bool {
    state.find(room).is_some_and(|i| state.convs[i].joined)
}

/// Sends a `room_*` frame; `done` is shown when the server says `ok`.
fn request(
    state: &mut State,
    room: &str,
    frame: RoomRequest,
    done: Option<String>,
    out: &mut Vec<NetCommand>,
) {
    let conv = outcome_conv(state, room);
    send(
        state,
        &conv,
        PendingKind::RoomDone(done),
        Outgoing::from(frame),
        out,
    );
}

/// A moderation request that the room hears about through `room_event`:
/// the `ok` needs words only when we are not in the room (an admin).
fn moderate(
    state: &mut State,
    room: &str,
    frame: RoomRequest,
    done: String,
    out: &mut Vec<NetCommand>,
) {
    let done = (!present_in(state, room)).then_some(done);
    request(state, room, frame, done, out);
}

/// The invitation `/accept-invite` or `/decline-invite` is about.
fn invitation_room(state: &mut State, room: Option<String>) -> Option<String> {
    if room.is_some() {
        return room;
    }
    if let Some(latest) = state.invitations.last() {
        return Some(latest.room.clone());
    }
    let here = state.current;
    let message = "no invitation is waiting (/invites asks the server); name the room".to_string();
    state.note(here, error_body("input", message));
    None
}

/// Runs a private-room command.
pub fn run(state: &mut State, command: RoomCommand, out: &mut Vec<NetCommand>) {
    if !rooms_enabled(state) {
        return;
    }
    match command {
        RoomCommand::Create { room, topic } => {
            let frame = RoomRequest::Create {
                room: room.clone(),
                topic,
            };
            enter(state, room, frame, out);
        }
        RoomCommand::Accept(room) => {
            let Some(room) = invitation_room(state, room) else {
                return;
            };
            let frame = RoomRequest::Accept { room: room.clone() };
            enter(state, room, frame, out);
        }
        RoomCommand::Decline(room) => decline(state, room, out),
        RoomCommand::Invitations => {
            let here = state.current_conv().name.clone();
            let frame = Outgoing::from(RoomRequest::Invitations {});
            send(state, &here, PendingKind::Other, frame, out);
        }
        RoomCommand::Invite { user, room } => {
            let invite = About::new(
                |room, user| RoomRequest::Invite { room, user },
                user,
                "/invite NICK #ROOM",
            );
            about_user(
                state,
                room,
                invite,
                |u, r| format!("invited {u} to {r}"),
                out,
            )
        }
        RoomCommand::Revoke { user, room } => {
            let revoke = About::new(
                |room, user| RoomRequest::Revoke { room, user },
                user,
                "/revoke NICK #ROOM",
            );
            let done = |u: &str, r: &str| format!("withdrew the invitation of {u} to {r}");
            about_user(state, room, revoke, done, out)
        }
        RoomCommand::Kick { user, reason } => kick(state, false, user, reason, out),
        RoomCommand::Ban { user, reason } => kick(state, true, user, reason, out),
        RoomCommand::Unban(user) => {
            let unban = About::new(
                |room, user| RoomRequest::Unban { room, user },
                user,
                "/join the room first",
            );
            about_user(
                state,
                None,
                unban,
                |u, r| format!("lifted the ban on {u} in {r}"),
                out,
            )
        }
        RoomCommand::Topic(change) => topic(state, change, out),
        RoomCommand::Promote(user) => set_role(
            state,
            |room, user| RoomRequest::Promote { room, user },
            user,
            "made {user} a moderator of {room}",
            out,
        ),
        RoomCommand::Demote(user) => set_role(
            state,
            |room, user| RoomRequest::Demote { room, user },
            user,
            "made {user} a plain member of {room}",
            out,
        ),
        RoomCommand::Transfer(user) => set_role(
            state,
            |room, user| RoomRequest::Transfer { room, user },
            user,
            "handed {room} over to {user}",
            out,
        ),
        RoomCommand::Delete(room) => {
            let frame = RoomRequest::Delete { room: room.clone() };
            moderate(state, &room, frame, format!("deleted {room}"), out);
        }
        RoomCommand::Leave(room) => {
            let leave = |room: &String| PendingKind::RoomLeave(room.clone());
            let frame = |room| RoomRequest::Leave { room };
            ask_about_room(state, room, frame, "/leave #ROOM", leave, out)
        }
        RoomCommand::Info(room) => {
            let info = |_: &String| PendingKind::Other;
            let frame = |room| RoomRequest::Info { room };
            ask_about_room(state, room, frame, "/info #ROOM", info, out)
        }
    }
}

/// `/decline [#ROOM]`: the invitation named, else the latest.
fn decline(state: &mut State, room: Option<String>, out: &mut Vec<NetCommand>) {
    let Some(room) = invitation_room(state, room) else {
        return;
    };
    let frame = Outgoing::from(RoomRequest::Decline { room: room.clone() });
    let here = state.current_conv().name.clone();
    send(state, &here, PendingKind::RoomDecline(room), frame, out);
}

/// A request (`frame`) about `room` (else the current room; `usage` says how
/// when there is none), answered where its outcome belongs.
fn ask_about_room(
    state: &mut State,
    room: Option<String>,
    frame: impl FnOnce(String) -> RoomRequest,
    usage: &str,
    what: impl FnOnce(&String) -> PendingKind,
    out: &mut Vec<NetCommand>,
) {
    let Some(room) = room_or_current(state, room, usage) else {
        return;
    };
    let conv = outcome_conv(state, &room);
    let what = what(&room);
    send(state, &conv, what, Outgoing::from(frame(room)), out);
}

/// A moderation request about one user: its frame, the user, and
/// the usage shown when no room is named or open.
struct About {
    frame: fn(String, String) -> RoomRequest,
    user: String,
    usage: &'static str,
}

impl About {
    fn new(frame: fn(String, String) -> RoomRequest, user: String, usage: &'static str) -> About {
        About { frame, user, usage }
    }
}

/// Sends `about` for `room` (else the current room); `done(user, room)` is
/// said when the server agrees.
fn about_user(
    state: &mut State,
    room: Option<String>,
    about: About,
    done: impl FnOnce(&str, &str) -> String,
    out: &mut Vec<NetCommand>,
) {
    let Some(room) = room_or_current(state, room, about.usage) else {
        return;
    };
    let done = done(&about.user, &room);
    let frame = (about.frame)(room.clone(), about.user);
    request(state, &room, frame, Some(done), out);
}

/// `/kick`, or `/ban` with `ban`, in the current room.
fn kick(
    state: &mut State,
    ban: bool,
    user: String,
    reason: Option<String>,
    out: &mut Vec<NetCommand>,
) {
    let usage = "/join the room first";
    let Some(room) = room_or_current(state, None, usage) else {
        return;
    };
    let (verb, target) = (if ban { "banned" } else { "kicked" }, user.clone());
    let frame = if ban {
        RoomRequest::Ban {
            room: room.clone(),
            user: target,
            reason,
        }
    } else {
        RoomRequest::Kick {
            room: room.clone(),
            user: target,
            reason,
        }
    };
    moderate(
        state,
        &room,
        frame,
        format!("{verb} {user} from {room}"),
        out,
    );
}

/// `/op`, `/deop`, `/transfer-owner`; `done` names `{user}` and `{room}`.
fn set_role(
    state: &mut State,
    frame: fn(String, String) -> RoomRequest,
    user: String,
    done: &str,
    out: &mut Vec<NetCommand>,
) {
    let Some(room) = room_or_current(state, None, "/join the room first") else {
        return;
    };
    let done = done.replace("{user}", &user).replace("{room}", &room);
    let frame = frame(room.clone(), user);
    moderate(state, &room, frame, done, out);
}

/// `/topic`: shows the topic we know, or asks to change it.
fn topic(state: &mut State, change: TopicChange, out: &mut Vec<NetCommand>) {
    let Some(room) = room_or_current(state, None, "/join the room first") else {
        return;
    };
    let text = match change {
        TopicChange::Show => {
            let here = state.current;
            let line = match &state.convs[here].topic {
                Some(topic) => format!("topic of {room}: {topic}"),
                None => format!("{room} has no topic; /topic TEXT sets one"),
            };
            state.note(here, Body::Info(line));
            return;
        }
        TopicChange::Set(text) => text,
        TopicChange::Clear => String::new(),
    };
    let frame = RoomRequest::Topic {
        room: room.clone(),
        topic: text,
    };
    moderate(
        state,
        &room,
        frame,
        format!("changed the topic of {room}"),
        out,
    );
}

/// An `ok` for one of our private-room requests.
pub fn on_ok(state: &mut State, what: &PendingKind, index: usize) {
    match what {
        PendingKind::RoomDone(Some(text)) => state.note(index, Body::Info(text.clone())),
        PendingKind::RoomDecline(room) => {
            forget_invitation(state, room);
            state.note(
                index,
                Body::Info(format!("declined the invitation to {room}")),
            );
        }
        PendingKind::RoomLeave(room) => {
            if let Some(i) = state.find(room) {
                close(
                    state,
                    i,
                    format!("you left {room} for good; only a new invitation lets you back in"),
                );
            } else {
                state.note(
                    index,
                    Body::Info(format!("you are no longer a member of {room}")),
                );
            }
        }
        _ => {}
    }
}

/// A `joined` reply to `/create` or `/accept-invite`.
pub fn on_entered(state: &mut State, index: usize) {
    let room = state.convs[index].name.clone();
    state.convs[index].private = true;
    forget_invitation(state, &room);
}

fn forget_invitation(state: &mut State, room: &str) {
    let key = fold(room);
    state.invitations.retain(|i| fold(&i.room) != key);
}

/// Ends our presence in conversation `index` for good: it says why and
/// refuses input from then on.
fn close(state: &mut State, index: usize, why: String) {
    let conv = &mut state.convs[index];
    conv.joined = false;
    conv.members.clear();
    conv.closed = Some(why.clone());
    state.note(index, Body::Status(why));
}

/// Frames of the rooms plugin; returns `false` for other frames.
pub fn on_custom(
    state: &mut State,
    kind: &str,
    fields: &serde_json::Map<String, Value>,
    index: usize,
) -> bool {
    let value = Value::Object(fields.clone());
    match kind {
        "room_invitation" => {
            let Ok(invitation) = serde_json::from_value::<Invitation>(value) else {
                return bad_frame(state, kind, index);
            };
            forget_invitation(state, &invitation.room);
            state.invitations.push(invitation.clone());
            state.note(0, Body::Invitation(invitation));
        }
        "room_invitations" => {
            #[derive(serde::Deserialize)]
            struct Listing {
                #[serde(default)]
                invitations: Vec<Invitation>,
            }
            let Ok(listing) = serde_json::from_value::<Listing>(value) else {
                return bad_frame(state, kind, index);
            };
            if listing.invitations.is_empty() {
                state.note(
                    index,
                    Body::Info("no invitations are waiting for you".into()),
                );
            }
            for invitation in &listing.invitations {
                state.note(index, Body::Invitation(invitation.clone()));
            }
            state.invitations = listing.invitations;
        }
        "room_info" => {
            let Ok(details) = serde_json::from_value::<RoomDetails>(value) else {
                return bad_frame(state, kind, index);
            };
            if let Some(i) = state.find(&details.room) {
                state.convs[i].private = true;
                state.convs[i].topic = details.topic.clone();
            }
            state.note(index, Body::RoomInfo(details));
        }
        "room_event" => {
            let Ok(note) = serde_json::from_value::<RoomEventNote>(value) else {
                return bad_frame(state, kind, index);
            };
            on_event(state, note);
        }
        _ => return false,
    }
    true
}

fn bad_frame(state: &mut State, kind: &str, index: usize) -> bool {
    let text = format!("the server sent a '{kind}' frame this client cannot read");
    state.note(index, error_body("bad_frame", text));
    true
}

fn on_event(state: &mut State, note: RoomEventNote) {
    if note.event == "revoke" {
        // Sent to the invitee only, who has no conversation for the room.
        forget_invitation(state, &note.room);
        state.note(0, Body::RoomEvent(note));
        return;
    }
    let index = state.conv_index(&note.room, ConvKind::Room);
    state.convs[index].private = true;
    let about_us = note
        .user
        .as_deref()
        .is_some_and(|u| fold(u) == fold(&state.nick));
    state.note(index, Body::RoomEvent(note.clone()));
    let reason = note
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    match note.event.as_str() {
        "topic" => state.convs[index].topic = note.topic,
        "kick" | "ban" if about_us => {
            let verb = if note.event == "ban" {
                "banned"
            } else {
                "kicked"
            };
            let why = format!("you were {verb} from {} by {}{reason}", note.room, note.by);
            close(state, index, why);
        }
        "kick" | "ban" => {
            if let Some(user) = &note.user {
                state.convs[index].remove_member(user);
            }
        }
        "delete" => {
            let why = format!("{} was deleted by {}", note.room, note.by);
            close(state, index, why);
        }
        _ => {}
    }
}
