//! `room_invite`, `room_revoke`, `room_accept`, `room_decline` and
//! `room_invitations`.

use chat_api::rooms::{Invitation, RoomEventKind, RoomInvitation, RoomInvitations};
use chat_api::{Payload, RequestId, Session};

use crate::access::{hidden, refuse, Outcome};
use crate::{codes, RoomsPlugin};

impl RoomsPlugin {
    pub(crate) async fn invite(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        room: &str,
        user: &str,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, room).await?;
        access.require_moderator("invite")?;
        let (target, name) = self.target(user).await?;
        let room = access.room.id;
        if self.store.role_of(room, &target).await?.is_some() {
            return Err(refuse(
                codes::ALREADY_MEMBER,
                format!("{name} is already a member of {}", access.room.name),
            ));
        }
        if self.store.is_banned(room, &target).await? {
            return Err(refuse(
                codes::BANNED,
                format!(
                    "{name} is banned from {}; unban them first",
                    access.room.name
                ),
            ));
        }
        if !self.store.is_invited(room, &target).await? {
            if self.store.seats_taken(room).await? >= i64::from(self.config.max_members) {
                return Err(refuse(
                    codes::ROOM_FULL,
                    format!(
                        "{} has {} members and invitations, the most allowed",
                        access.room.name, self.config.max_members
                    ),
                ));
            }
            if self.store.pending_invitations(&target).await?
                >= i64::from(self.config.max_pending_invitations)
            {
                return Err(refuse(
                    codes::TOO_MANY_INVITATIONS,
                    format!("{name} has too many invitations waiting; they must accept or decline some first"),
                ));
            }
        }
        self.store.invite(room, &target, &access.actor.key).await?;
        if let Some(invitee) = self.host.session_of(&target) {
            self.host.send_to_session(
                invitee,
                Payload::encode(&RoomInvitation {
                    room: access.room.name.clone(),
                    from: access.actor.name.clone(),
                }),
            );
        }
        session.reply_ok(id);
        Ok(())
    }

    pub(crate) async fn revoke(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        room: &str,
        user: &str,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, room).await?;
        access.require_moderator("revoke invitations")?;
        let (target, name) = self.target(user).await?;
        if !self
            .store
            .remove_invitation(access.room.id, &target)
            .await?
        {
            return Err(refuse(
                codes::NOT_INVITED,
                format!("{name} has no invitation to {}", access.room.name),
            ));
        }
        if let Some(invitee) = self.host.session_of(&target) {
            self.host.send_to_session(
                invitee,
                Payload::encode(&Self::event(
                    &access,
                    RoomEventKind::Revoke,
                    Some(&name),
                    None,
                )),
            );
        }
        session.reply_ok(id);
        Ok(())
    }

    pub(crate) async fn accept(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        room: &str,
    ) -> Outcome {
        let (actor, row, _key, _room_lock) = self.existing(session, room).await?;
        if self.store.role_of(row.id, &actor.key).await?.is_some() {
            return Err(refuse(
                codes::ALREADY_MEMBER,
                format!("you are already a member of {}; join it", row.name),
            ));
        }
        let Some(invitation) = self.store.accept(row.id, &actor.key).await? else {
            return Err(hidden(room));
        };
        tracing::debug!(room = %row.name, account = %actor.name, "invitation accepted");
        self.enter_accepted(session, &row, &actor.key, invitation, id)
            .await
    }

    pub(crate) async fn decline(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        room: &str,
    ) -> Outcome {
        let (actor, row, _key, _room_lock) = self.existing(session, room).await?;
        if !self.store.remove_invitation(row.id, &actor.key).await? {
            return Err(hidden(room));
        }
        session.reply_ok(id);
        Ok(())
    }

    pub(crate) async fn invitations(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
    ) -> Outcome {
        let actor = Self::actor(session)?;
        let invitations = self
            .store
            .invitations_of(&actor.key)
            .await?
            .into_iter()
            .map(|i| Invitation {
                room: i.room,
                from: i.from,
                at: i.at,
            })
            .collect();
        session.send_frame(&RoomInvitations { id, invitations });
        Ok(())
    }
}
