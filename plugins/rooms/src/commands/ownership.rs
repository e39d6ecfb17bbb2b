//! `room_promote`, `room_demote`, `room_transfer` and `room_delete`: what
//! only the owner (or an admin) may do.

use chat_api::rooms::RoomEventKind;
use chat_api::{Payload, RequestId, Session};

use crate::access::{forbidden, refuse, Outcome};
use crate::store::Role;
use crate::{codes, RoomsPlugin};

impl RoomsPlugin {
    pub(crate) async fn set_role(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        room: &str,
        user: &str,
        role: Role,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, room).await?;
        access.require_owner("appoint or remove moderators")?;
        let (target, name) = self.target(user).await?;
        match self.store.role_of(access.room.id, &target).await? {
            None => {
                return Err(refuse(
                    codes::NOT_A_MEMBER,
                    format!("{name} is not a member of {}", access.room.name),
                ))
            }
            Some(Role::Owner) => {
                return Err(forbidden(format!(
                    "{name} owns {}; hand the room over instead",
                    access.room.name
                )))
            }
            Some(_) => {}
        }
        self.store.set_role(access.room.id, &target, role).await?;
        let what = if role == Role::Moderator {
            RoomEventKind::Promote
        } else {
            RoomEventKind::Demote
        };
        self.announce(
            &Self::event(&access, what, Some(&name), None),
            Some(&target),
        );
        session.reply_ok(id);
        Ok(())
    }

    pub(crate) async fn transfer(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        room: &str,
        user: &str,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, room).await?;
        access.require_owner("hand the room over")?;
        let (target, name) = self.target(user).await?;
        match self.store.role_of(access.room.id, &target).await? {
            None => {
                return Err(refuse(
                    codes::NOT_A_MEMBER,
                    format!(
                        "{name} is not a member of {}; invite them first",
                        access.room.name
                    ),
                ))
            }
            Some(Role::Owner) => {
                return Err(refuse(
                    codes::ALREADY_MEMBER,
                    format!("{name} already owns {}", access.room.name),
                ))
            }
            Some(_) => {}
        }
        self.store.transfer(access.room.id, &target).await?;
        self.announce(
            &Self::event(&access, RoomEventKind::Transfer, Some(&name), None),
            Some(&target),
        );
        tracing::info!(room = %access.room.name, by = %access.actor.name, to = %name, "private room handed over");
        session.reply_ok(id);
        Ok(())
    }

    pub(crate) async fn delete(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        room: &str,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, room).await?;
        access.require_owner("delete it")?;
        self.store.delete_room(access.room.id).await?;
        self.private_names()
            .await?
            .write()
            .unwrap()
            .remove(&access.key);
        // Everyone out at once (each gets a `part` with this reason), then
        // told why; nothing from the room can follow.
        let present = self
            .host
            .room_members(&access.room.name)
            .unwrap_or_default();
        self.host.close_room(
            &access.room.name,
            &format!("the room was deleted by {}", access.actor.name),
        );
        let event = Payload::encode(&Self::event(&access, RoomEventKind::Delete, None, None));
        for nick in present {
            if let Some(member) = self.host.session_of(&nick) {
                self.host.send_to_session(member, event.clone());
            }
        }
        tracing::info!(room = %access.room.name, by = %access.actor.name, "private room deleted");
        session.reply_ok(id);
        Ok(())
    }
}
