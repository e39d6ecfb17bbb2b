//! `room_leave` and `room_info`.

use chat_api::rooms::RoomDetails;
use chat_api::{RequestId, Session};

use crate::access::{forbidden, hidden, Outcome};
use crate::store::Role;
use crate::RoomsPlugin;

impl RoomsPlugin {
    pub(crate) async fn leave(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        room: &str,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, room).await?;
        match self
            .store
            .role_of(access.room.id, &access.actor.key)
            .await?
        {
            None => return Err(hidden(room)),
            Some(Role::Owner) => {
                return Err(forbidden(format!(
                    "you own {}: hand it over (room_transfer) or delete it (room_delete) first",
                    access.room.name
                )))
            }
            Some(_) => {}
        }
        self.store
            .remove_member(access.room.id, &access.actor.key)
            .await?;
        let _ = self
            .host
            .leave_room(session.id(), &access.room.name, Some("left the room"));
        session.reply_ok(id);
        Ok(())
    }

    pub(crate) async fn info(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        room: &str,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, room).await?;
        let details = self.store.details(access.room.id).await?;
        let pick = |role: Role| -> Vec<String> {
            details
                .members
                .iter()
                .filter(|(_, r)| *r == role)
                .map(|(n, _)| n.clone())
                .collect()
        };
        let moderating = access.can_moderate();
        session.send_frame(&RoomDetails {
            id,
            room: access.room.name.clone(),
            topic: access.room.topic.clone(),
            owner: pick(Role::Owner).into_iter().next(),
            moderators: pick(Role::Moderator),
            members: details.members.iter().map(|(n, _)| n.clone()).collect(),
            present: self
                .host
                .room_members(&access.room.name)
                .unwrap_or_default(),
            invited: moderating.then(|| details.invited.clone()),
            banned: moderating.then(|| details.banned.clone()),
        });
        Ok(())
    }
}
