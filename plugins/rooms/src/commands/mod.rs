//! The `room_*` frames: one file per group of commands, and what they
//! share (entering a room, telling a room about an event, checking a
//! topic or reason).

mod create;
mod invitations;
mod membership;
mod moderation;
mod ownership;

use chat_api::names::fold;
use chat_api::rooms::{RoomEvent, RoomEventKind, RoomRequest};
use chat_api::{ApiError, ErrorCode, Inbound, Payload, RequestId, ServerFrame, Session};

use crate::access::{refuse, Access, Outcome};
use crate::store::{Role, RoomRow};
use crate::{now_ms, RoomsPlugin};

impl RoomsPlugin {
    pub(crate) async fn room_frame(&self, session: &dyn Session, frame: &Inbound) -> Outcome {
        if !RoomRequest::KINDS.contains(&frame.kind.as_str()) {
            return Err(refuse(
                ErrorCode::UNKNOWN_TYPE,
                format!("unknown frame type '{}'; the private-room frames are listed in docs/protocol.md", frame.kind),
            ));
        }
        let id = frame.id;
        match frame.decode_custom::<RoomRequest>()? {
            RoomRequest::Create { room, topic } => self.create(session, id, &room, topic).await,
            RoomRequest::Invite { room, user } => self.invite(session, id, &room, &user).await,
            RoomRequest::Revoke { room, user } => self.revoke(session, id, &room, &user).await,
            RoomRequest::Accept { room } => self.accept(session, id, &room).await,
            RoomRequest::Decline { room } => self.decline(session, id, &room).await,
            RoomRequest::Kick { room, user, reason } => {
                self.kick(session, id, (&room, &user), reason, false).await
            }
            RoomRequest::Ban { room, user, reason } => {
                self.kick(session, id, (&room, &user), reason, true).await
            }
            RoomRequest::Unban { room, user } => self.unban(session, id, &room, &user).await,
            RoomRequest::Topic { room, topic } => self.topic(session, id, &room, &topic).await,
            RoomRequest::Promote { room, user } => {
                self.set_role(session, id, &room, &user, Role::Moderator)
                    .await
            }
            RoomRequest::Demote { room, user } => {
                self.set_role(session, id, &room, &user, Role::Member).await
            }
            RoomRequest::Transfer { room, user } => self.transfer(session, id, &room, &user).await,
            RoomRequest::Delete { room } => self.delete(session, id, &room).await,
            RoomRequest::Leave { room } => self.leave(session, id, &room).await,
            RoomRequest::Invitations {} => self.invitations(session, id).await,
            RoomRequest::Info { room } => self.info(session, id, &room).await,
            // A request chat-protocol knows and this plugin does not yet.
            other => Err(refuse(
                ErrorCode::UNKNOWN_TYPE,
                format!("this server does not handle '{}' frames", other.kind()),
            )),
        }
    }

    /// Topics and kick or ban reasons: one line, `max_topic_length` at most.
    pub(crate) fn check_text(&self, what: &str, text: &str) -> Outcome {
        if text.chars().count() > self.config.max_topic_length {
            return Err(refuse(
                ErrorCode::INVALID_TEXT,
                format!(
                    "a {what} has at most {} characters",
                    self.config.max_topic_length
                ),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(refuse(
                ErrorCode::INVALID_TEXT,
                format!("a {what} may not contain control characters (newlines included)"),
            ));
        }
        Ok(())
    }

    /// Puts a session into a room's hub room and tells it with `joined`.
    pub(crate) fn enter(
        &self,
        session_id: chat_api::SessionId,
        room: &RoomRow,
        id: Option<RequestId>,
    ) -> Result<(), ApiError> {
        let (name, members) = self.host.join_room(session_id, &room.name)?;
        self.host.send_to_session(
            session_id,
            Payload::encode(&ServerFrame::Joined {
                id,
                room: name,
                members,
                topic: room.topic.clone(),
            }),
        );
        Ok(())
    }

    /// Enters a room whose invitation was just accepted; if the hub refuses
    /// (`room_limit`), the acceptance is undone and the invitation stays.
    pub(crate) async fn enter_accepted(
        &self,
        session: &dyn Session,
        room: &RoomRow,
        account: &str,
        invitation: (String, i64),
        id: Option<RequestId>,
    ) -> Outcome {
        if let Err(refused) = self.enter(session.id(), room, id) {
            self.store.unaccept(room.id, account, &invitation).await?;
            return Err(refused.into());
        }
        Ok(())
    }

    /// Tells the room's members who are present, and the account concerned
    /// (`also`, folded; it may already be out of the room), about a
    /// moderation event.
    pub(crate) fn announce(&self, event: &RoomEvent, also: Option<&str>) {
        let payload = Payload::encode(event);
        // An error only means that no member is present.
        let _ = self.host.send_to_room(&event.room, payload.clone());
        let Some(also) = also else { return };
        let present = self
            .host
            .room_members(&event.room)
            .is_some_and(|members| members.iter().any(|n| fold(n) == also));
        if !present {
            if let Some(session) = self.host.session_of(also) {
                self.host.send_to_session(session, payload);
            }
        }
    }

    pub(crate) fn event(
        access: &Access,
        event: RoomEventKind,
        user: Option<&str>,
        reason: Option<&str>,
    ) -> RoomEvent {
        RoomEvent {
            room: access.room.name.clone(),
            event,
            by: access.actor.name.clone(),
            user: user.map(str::to_string),
            topic: None,
            reason: reason.map(str::to_string),
            ts: now_ms(),
        }
    }

    /// Takes an account's session out of a room's hub room, if it is there.
    pub(crate) fn remove_from_hub(&self, account_key: &str, room: &str, reason: &str) {
        if let Some(session) = self.host.session_of(account_key) {
            // Not in the room (e.g. it parted): nothing to do.
            let _ = self.host.leave_room(session, room, Some(reason));
        }
    }
}
