//! The core frames this plugin guards, so that a private room stays closed
//! to everyone but its members: `join`, `users` and `history` of a room,
//! `rooms`, and putting members back into their rooms when they log in.

use std::collections::{HashMap, HashSet};

use chat_api::names::fold;
use chat_api::{RequestId, ServerFrame, Session, Verdict};
use chatd_storage::StorageError;

use crate::access::{refuse, Failure, Outcome};
use crate::{codes, RoomsPlugin};
use chat_api::ErrorCode;

impl RoomsPlugin {
    /// `join`: public rooms as in the core, private ones for members only.
    /// Public joins also run here, under the room's lock, so that a
    /// `room_create` of the same name cannot let an outsider in halfway.
    pub(crate) async fn join(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        room: &str,
    ) -> Outcome {
        let key = fold(room);
        let _room_lock = self.locks.lock(&key).await;
        let private = if self.is_private(&key).await? {
            let row = self.store.find_room(&key).await?;
            if row.is_none() {
                // Deleted behind our back (its owner's account was deleted,
                // which cascades): empty it before it turns public.
                self.host.close_room(room, "the room no longer exists");
                self.private_names().await?.write().unwrap().remove(&key);
            }
            row
        } else {
            None
        };
        let Some(row) = private else {
            let (name, members) = self.host.join_room(session.id(), room)?;
            session.send_frame(&ServerFrame::Joined {
                id,
                room: name,
                members,
                topic: None,
            });
            return Ok(());
        };
        let not_invited = || {
            refuse(
                codes::NOT_INVITED,
                format!(
                    "{room} is a private room; you can join it only after accepting an invitation"
                ),
            )
        };
        let account = session
            .account()
            .map(|a| fold(&a))
            .ok_or_else(not_invited)?;
        if self.store.role_of(row.id, &account).await?.is_none() {
            // Joining with an invitation accepts it.
            let Some(invitation) = self.store.accept(row.id, &account).await? else {
                return Err(not_invited());
            };
            return self
                .enter_accepted(session, &row, &account, invitation, id)
                .await;
        }
        self.enter(session.id(), &row, id)?;
        Ok(())
    }

    /// `users` of a room: the core answers, unless the room is private and
    /// the requester no member (then exactly the core's "no room" error).
    pub(crate) async fn guard_users(
        &self,
        session: &dyn Session,
        room: &str,
    ) -> Result<Verdict, Failure> {
        let key = fold(room);
        if !self.is_private(&key).await? || session.is_admin() {
            return Ok(Verdict::Continue);
        }
        let member = match (session.account(), self.store.find_room(&key).await?) {
            (Some(account), Some(row)) => {
                self.store.role_of(row.id, &fold(&account)).await?.is_some()
            }
            _ => false,
        };
        if member {
            Ok(Verdict::Continue)
        } else {
            Err(refuse(
                ErrorCode::NO_SUCH_ROOM,
                format!("there is no room {room}"),
            ))
        }
    }

    /// `history` of a private room: members only (others get the same
    /// answer as for a room that does not exist), and only what was said
    /// since they joined. `Some(floor)` for a member, `None` for a public
    /// room.
    pub(crate) async fn guard_history(
        &self,
        session: &dyn Session,
        room: &str,
    ) -> Result<Option<u64>, Failure> {
        let key = fold(room);
        if !self.is_private(&key).await? {
            return Ok(None);
        }
        let since = match (session.account(), self.store.find_room(&key).await?) {
            (Some(account), Some(row)) => self.store.member_since(row.id, &fold(&account)).await?,
            _ => None,
        };
        since
            .map(Some)
            .ok_or_else(|| refuse(ErrorCode::NO_SUCH_ROOM, format!("there is no room {room}")))
    }

    /// `rooms`: the hub's list without the private rooms the requester is
    /// not in; theirs marked `kind: "private"` with the topic.
    pub(crate) async fn rooms(&self, session: &dyn Session, id: Option<RequestId>) -> Outcome {
        let mut rooms = self.host.rooms();
        let private: HashSet<String> = {
            let names = self.private_names().await?.read().unwrap();
            rooms
                .iter()
                .map(|r| fold(&r.name))
                .filter(|k| names.contains(k))
                .collect()
        };
        if !private.is_empty() {
            let mut visible: HashMap<String, Option<String>> = HashMap::new();
            if let Some(account) = session.account() {
                for (row, _) in self.store.rooms_of(&fold(&account)).await? {
                    visible.insert(fold(&row.name), row.topic);
                }
            }
            if session.is_admin() {
                for key in &private {
                    if !visible.contains_key(key) {
                        if let Some(row) = self.store.find_room(key).await? {
                            visible.insert(key.clone(), row.topic);
                        }
                    }
                }
            }
            rooms.retain(|r| {
                let key = fold(&r.name);
                !private.contains(&key) || visible.contains_key(&key)
            });
            for room in rooms.iter_mut() {
                let key = fold(&room.name);
                if private.contains(&key) {
                    room.kind = Some("private".to_string());
                    room.topic = visible.get(&key).cloned().flatten();
                }
            }
        }
        session.send_frame(&ServerFrame::Rooms { id, rooms });
        Ok(())
    }

    /// Puts a session that has just logged in back into its private rooms.
    pub(crate) async fn rejoin(&self, session: &dyn Session) -> Result<(), StorageError> {
        let Some(account) = session.account() else {
            return Ok(());
        };
        let key = fold(&account);
        for (row, _) in self.store.rooms_of(&key).await? {
            let _room_lock = self.locks.lock(&fold(&row.name)).await;
            // A kick or deletion may have happened since the list was read.
            if self.store.role_of(row.id, &key).await?.is_none() {
                continue;
            }
            if let Err(e) = self.enter(session.id(), &row, None) {
                // The session logged out or ended meanwhile.
                tracing::debug!(session = session.id(), room = %row.name, error = %e, "not put back into the room");
                return Ok(());
            }
        }
        Ok(())
    }
}
