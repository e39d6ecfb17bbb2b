//! Who may do what: the answer to a refused request ([`Failure`]), the
//! account behind a `room_*` frame ([`Actor`]) and the one preamble every
//! command that names a room runs ([`RoomsPlugin::access`]): lock the room,
//! read it, and find the actor's role in it, or refuse without revealing
//! whether the room exists.

use chat_api::names::{fold, validate_nick, validate_room};
use chat_api::{ApiError, ErrorCode, HandlerError, Session};
use chatd_storage::StorageError;
use tokio::sync::MutexGuard;

use crate::codes;
use crate::store::{Role, RoomRow};
use crate::RoomsPlugin;

/// Why a request failed: the client's fault or the server's.
pub(crate) enum Failure {
    Refused(ApiError),
    Internal(HandlerError),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure::Refused(e)
    }
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Failure {
        Failure::Internal(HandlerError::from(e))
    }
}

pub(crate) type Outcome = Result<(), Failure>;

pub(crate) fn refuse(code: ErrorCode, message: impl Into<String>) -> Failure {
    Failure::Refused(ApiError::new(code, message))
}

/// The one answer for a private room the requester may not see, whether it
/// exists or not, so that `room_*` frames reveal nothing.
pub(crate) fn hidden(room: &str) -> Failure {
    refuse(
        ErrorCode::NO_SUCH_ROOM,
        format!("no private room {room} is open to you: it does not exist, or you are neither a member nor invited"),
    )
}

pub(crate) fn account_required() -> Failure {
    refuse(
        codes::ACCOUNT_REQUIRED,
        "private rooms belong to accounts: log in first (the server must enable the 'auth' plugin)",
    )
}

pub(crate) fn forbidden(message: impl Into<String>) -> Failure {
    refuse(ErrorCode::FORBIDDEN, message)
}

/// Who sent a `room_*` frame.
pub(crate) struct Actor {
    /// Folded account name.
    pub(crate) key: String,
    /// The account as registered, shown in events.
    pub(crate) name: String,
    pub(crate) admin: bool,
}

/// A room and what the actor may do in it.
pub(crate) struct Access {
    pub(crate) actor: Actor,
    pub(crate) room: RoomRow,
    pub(crate) key: String,
    pub(crate) role: Option<Role>,
}

impl Access {
    /// Owner, moderators and admins: invite, revoke, kick, ban, topic.
    pub(crate) fn can_moderate(&self) -> bool {
        self.actor.admin || matches!(self.role, Some(Role::Owner | Role::Moderator))
    }

    /// Owner and admins: moderators, ownership, deletion.
    pub(crate) fn can_own(&self) -> bool {
        self.actor.admin || self.role == Some(Role::Owner)
    }

    pub(crate) fn require_moderator(&self, what: &str) -> Outcome {
        if self.can_moderate() {
            Ok(())
        } else {
            Err(forbidden(format!(
                "only the owner or a moderator of {} may {what}",
                self.room.name
            )))
        }
    }

    pub(crate) fn require_owner(&self, what: &str) -> Outcome {
        if self.can_own() {
            Ok(())
        } else {
            Err(forbidden(format!(
                "only the owner of {} may {what}",
                self.room.name
            )))
        }
    }
}

impl RoomsPlugin {
    pub(crate) fn actor(session: &dyn Session) -> Result<Actor, Failure> {
        let name = session.account().ok_or_else(account_required)?;
        Ok(Actor {
            key: fold(&name),
            name,
            admin: session.is_admin(),
        })
    }

    /// Takes the room's lock and reads the room, whoever the actor is
    /// ([`hidden`] if it does not exist). Returns the actor, the room, its
    /// folded name and the lock guard.
    pub(crate) async fn existing(
        &self,
        session: &dyn Session,
        room: &str,
    ) -> Result<(Actor, RoomRow, String, MutexGuard<'_, ()>), Failure> {
        let actor = Self::actor(session)?;
        validate_room(room).map_err(|e| refuse(ErrorCode::INVALID_ROOM, e.to_string()))?;
        let key = fold(room);
        let room_lock = self.locks.lock(&key).await;
        let row = self
            .store
            .find_room(&key)
            .await?
            .ok_or_else(|| hidden(room))?;
        Ok((actor, row, key, room_lock))
    }

    /// Takes the room's lock and reads the room as the actor may see it:
    /// [`hidden`] unless the actor is a member or an admin. Everything the
    /// caller then checks and changes happens under that lock.
    pub(crate) async fn access(
        &self,
        session: &dyn Session,
        room: &str,
    ) -> Result<(Access, MutexGuard<'_, ()>), Failure> {
        let (actor, row, key, room_lock) = self.existing(session, room).await?;
        let role = self.store.role_of(row.id, &actor.key).await?;
        if role.is_none() && !actor.admin {
            return Err(hidden(room));
        }
        let access = Access {
            actor,
            room: row,
            key,
            role,
        };
        Ok((access, room_lock))
    }

    /// An existing account named by a frame: (folded, as registered).
    pub(crate) async fn target(&self, user: &str) -> Result<(String, String), Failure> {
        let no_such = || {
            refuse(
                ErrorCode::NO_SUCH_USER,
                format!("there is no account named '{user}'"),
            )
        };
        validate_nick(user).map_err(|_| no_such())?;
        let key = fold(user);
        let name = self.store.account_name(&key).await?.ok_or_else(no_such)?;
        Ok((key, name))
    }
}
