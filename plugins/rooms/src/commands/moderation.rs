//! `room_kick`, `room_ban`, `room_unban` and `room_topic`.

use chat_api::rooms::RoomEventKind;
use chat_api::{RequestId, Session};

use crate::access::{forbidden, refuse, Access, Outcome};
use crate::store::Role;
use crate::{codes, RoomsPlugin};

impl RoomsPlugin {
    /// `room_kick` and `room_ban` (which also works on non-members, to keep
    /// someone out before they are invited).
    pub(crate) async fn kick(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        (room, user): (&str, &str),
        reason: Option<String>,
        ban: bool,
    ) -> Outcome {
        let (what, done, kind) = if ban {
            ("ban", "banned", RoomEventKind::Ban)
        } else {
            ("kick", "kicked", RoomEventKind::Kick)
        };
        let (access, _room_lock) = self.access(session, room).await?;
        access.require_moderator(what)?;
        let reason = reason.filter(|r| !r.is_empty());
        if let Some(reason) = &reason {
            self.check_text("reason", reason)?;
        }
        let (target, name) = self.target(user).await?;
        let target_role = self.store.role_of(access.room.id, &target).await?;
        Self::check_kick_target(&access, (&target, &name, target_role), ban)?;
        // Only those who know the room hear of a ban: not an outsider
        // banned before ever being invited.
        let knew_the_room =
            target_role.is_some() || self.store.is_invited(access.room.id, &target).await?;
        if ban {
            self.store
                .ban(
                    access.room.id,
                    &target,
                    &access.actor.key,
                    reason.as_deref(),
                )
                .await?;
        } else {
            self.store.remove_member(access.room.id, &target).await?;
        }
        let text = match &reason {
            Some(r) => format!("{done} by {}: {r}", access.actor.name),
            None => format!("{done} by {}", access.actor.name),
        };
        // Out of the hub room first, so that the target gets nothing more
        // from the room, only its own copy of the event.
        self.remove_from_hub(&target, &access.room.name, &text);
        let event = Self::event(&access, kind, Some(&name), reason.as_deref());
        self.announce(&event, knew_the_room.then_some(target.as_str()));
        tracing::info!(room = %access.room.name, by = %access.actor.name, target = %name, "{what}");
        session.reply_ok(id);
        Ok(())
    }

    /// Whom a kick or ban may not touch: oneself, the owner, a moderator
    /// (unless the actor owns the room), and for a kick a non-member.
    fn check_kick_target(
        access: &Access,
        (target, name, role): (&str, &str, Option<Role>),
        ban: bool,
    ) -> Outcome {
        let (what, done) = if ban {
            ("ban", "banned")
        } else {
            ("kick", "kicked")
        };
        if target == access.actor.key {
            return Err(forbidden(format!(
                "you cannot {what} yourself; use room_leave"
            )));
        }
        match role {
            Some(Role::Owner) => Err(forbidden(format!(
                "the owner of {} cannot be {done}; they may hand the room over",
                access.room.name
            ))),
            Some(Role::Moderator) if !access.can_own() => Err(forbidden(format!(
                "only the owner of {} may {what} a moderator",
                access.room.name
            ))),
            None if !ban => Err(refuse(
                codes::NOT_A_MEMBER,
                format!("{name} is not a member of {}", access.room.name),
            )),
            _ => Ok(()),
        }
    }

    pub(crate) async fn unban(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        room: &str,
        user: &str,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, room).await?;
        access.require_moderator("unban")?;
        let (target, name) = self.target(user).await?;
        if !self.store.unban(access.room.id, &target).await? {
            return Err(refuse(
                codes::NOT_BANNED,
                format!("{name} is not banned from {}", access.room.name),
            ));
        }
        session.reply_ok(id);
        Ok(())
    }

    pub(crate) async fn topic(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        room: &str,
        topic: &str,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, room).await?;
        access.require_moderator("set the topic")?;
        self.check_text("topic", topic)?;
        let topic = Some(topic).filter(|t| !t.is_empty());
        self.store.set_topic(access.room.id, topic).await?;
        let mut event = Self::event(&access, RoomEventKind::Topic, None, None);
        event.topic = topic.map(str::to_string);
        self.announce(&event, None);
        session.reply_ok(id);
        Ok(())
    }
}
