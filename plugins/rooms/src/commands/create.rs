//! `room_create`.

use chat_api::names::{fold, validate_room};
use chat_api::{ErrorCode, RequestId, Session};

use crate::access::{refuse, Outcome};
use crate::store::CreateError;
use crate::{codes, RoomsPlugin};

impl RoomsPlugin {
    pub(crate) async fn create(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        room: &str,
        topic: Option<String>,
    ) -> Outcome {
        let actor = Self::actor(session)?;
        validate_room(room).map_err(|e| refuse(ErrorCode::INVALID_ROOM, e.to_string()))?;
        let topic = topic.filter(|t| !t.is_empty());
        if let Some(topic) = &topic {
            self.check_text("topic", topic)?;
        }
        let key = fold(room);
        let taken = || {
            refuse(
                codes::ROOM_EXISTS,
                format!("the room name {room} is taken; choose another"),
            )
        };
        let _room_lock = self.locks.lock(&key).await;
        if self.is_private(&key).await? || self.host.room_members(room).is_some() {
            return Err(taken());
        }
        let row = match self
            .store
            .create_room(
                room,
                &key,
                &actor.key,
                topic.as_deref(),
                self.config.max_rooms_per_owner,
            )
            .await
        {
            Ok(row) => row,
            Err(CreateError::NameTaken) => return Err(taken()),
            Err(CreateError::TooManyRooms) => {
                return Err(refuse(
                    codes::TOO_MANY_ROOMS,
                    format!(
                    "you own {} private rooms, the most allowed; delete one or hand it over first",
                    self.config.max_rooms_per_owner
                ),
                ))
            }
            Err(CreateError::Storage(e)) => return Err(e.into()),
        };
        self.private_names()
            .await?
            .write()
            .unwrap()
            .insert(key.clone());
        if let Err(refused) = self.enter(session.id(), &row, id) {
            // The hub refused the owner (e.g. `room_limit`): undone, so that
            // no room is left that nobody is in and whose name is "taken".
            self.store.delete_room(row.id).await?;
            self.private_names().await?.write().unwrap().remove(&key);
            return Err(refused.into());
        }
        tracing::info!(room = %row.name, owner = %actor.name, "private room created");
        Ok(())
    }
}
