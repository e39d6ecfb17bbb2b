//! # rooms: private rooms for chatd
//!
//! A built-in plugin that lets an account create a private room and become
//! its owner. The owner and the moderators it appoints invite accounts,
//! revoke invitations, kick, ban and unban, and set the topic; only the owner
//! appoints moderators, hands the room over and deletes it. Admin accounts
//! may do all of that in any room. Invited accounts accept or decline;
//! members leave. Frames: `docs/protocol.md`, "Private rooms frames".
//!
//! A private room is an ordinary hub room whose door this plugin keeps: it
//! answers `join` itself (so nobody but a member gets in), hides private
//! rooms from `rooms` and `users` for everyone else, and puts members back
//! into their rooms when they log in ([`MessageHandler::on_identity_change`]).
//! Messages, presence and fan-out are the hub's, unchanged; a non-member is
//! never in the hub room, so the core refuses their `say` as for any room
//! they are not in.
//!
//! Rooms, roles, invitations and bans live in the server's SQLite database
//! ([`store`]); every change of one room runs under that room's lock
//! ([`locks`]), database first, hub second, so the two always agree.
//!
//! Identity is the account (`Session::account`): without the `auth` plugin,
//! or for guests, every `room_*` frame is refused with `account_required`,
//! and private rooms stay closed; public rooms work as in the core.
//!
//! ```toml
//! [[plugin]]
//! name = "rooms"             # after "auth"
//! [plugin.config]
//! max_rooms_per_owner = 20
//! max_members = 500          # members plus pending invitations
//! ```

pub mod config;
pub mod locks;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use chat_api::names::{fold, validate_nick, validate_room};
use chat_api::{
    async_trait, ApiError, ClientFrame, ConfigError, ErrorCode, HandlerError, HandlerResult, Host,
    Inbound, MessageHandler, Payload, PluginContext, Request, RequestId, ServerFrame, Session,
    Verdict,
};
use chatd_storage::{Database, StorageError};
use serde::{Deserialize, Serialize};
use tokio::sync::{MutexGuard, OnceCell};

pub use config::RoomsConfig;
use locks::RoomLocks;
use store::{CreateError, Role, RoomRow, RoomStore};

/// Error codes of the private-room frames (besides the core ones:
/// `no_such_room`, `no_such_user`, `forbidden`, `invalid_room`, `invalid_text`).
pub mod codes {
    use chat_api::ErrorCode;

    /// Private rooms need a logged-in account (guest, or no `auth` plugin).
    pub const ACCOUNT_REQUIRED: ErrorCode = ErrorCode::custom("account_required");
    /// `join` of a private room without membership or invitation.
    pub const NOT_INVITED: ErrorCode = ErrorCode::custom("not_invited");
    /// `room_create` with a name a public or private room already uses.
    pub const ROOM_EXISTS: ErrorCode = ErrorCode::custom("room_exists");
    /// The account owns `max_rooms_per_owner` rooms.
    pub const TOO_MANY_ROOMS: ErrorCode = ErrorCode::custom("too_many_rooms");
    /// Members plus invitations reached `max_members`.
    pub const ROOM_FULL: ErrorCode = ErrorCode::custom("room_full");
    /// The invitee has `max_pending_invitations` invitations waiting.
    pub const TOO_MANY_INVITATIONS: ErrorCode = ErrorCode::custom("too_many_invitations");
    /// Inviting (or accepting for) someone who is already a member.
    pub const ALREADY_MEMBER: ErrorCode = ErrorCode::custom("already_member");
    /// Kicking, promoting, ... someone who is not a member.
    pub const NOT_A_MEMBER: ErrorCode = ErrorCode::custom("not_a_member");
    /// Inviting a banned account.
    pub const BANNED: ErrorCode = ErrorCode::custom("banned");
    /// Unbanning an account that is not banned.
    pub const NOT_BANNED: ErrorCode = ErrorCode::custom("not_banned");
}

/// `room_create`.
#[derive(Deserialize)]
struct CreateRequest {
    room: String,
    #[serde(default)]
    topic: Option<String>,
}

/// Frames that name only a room.
#[derive(Deserialize)]
struct RoomRequest {
    room: String,
}

/// Frames that name a room and an account.
#[derive(Deserialize)]
struct TargetRequest {
    room: String,
    user: String,
    /// For kicks and bans: shown to the room and the target.
    #[serde(default)]
    reason: Option<String>,
}

/// `room_topic`.
#[derive(Deserialize)]
struct TopicRequest {
    room: String,
    /// Empty clears the topic.
    topic: String,
}

/// A moderation event, delivered to the room's members who are present and
/// to the account it concerns.
#[derive(Serialize)]
struct RoomEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a str,
    /// `kick`, `ban`, `topic`, `promote`, `demote`, `transfer`, `delete`,
    /// `revoke`.
    event: &'static str,
    /// The account that acted.
    by: &'a str,
    /// The account acted upon.
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    /// For `topic`: the new topic (absent when cleared).
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    ts: u64,
}

/// Pushed to an invitee who is online.
#[derive(Serialize)]
struct InvitationNotice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a str,
    from: &'a str,
}

#[derive(Serialize)]
struct InvitationEntry {
    room: String,
    from: String,
    /// Milliseconds since the Unix epoch.
    at: i64,
}

/// Reply to `room_invitations`.
#[derive(Serialize)]
struct InvitationsReply {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<RequestId>,
    invitations: Vec<InvitationEntry>,
}

/// Reply to `room_info`.
#[derive(Serialize)]
struct InfoReply {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<RequestId>,
    room: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
    /// Absent only if the owner's account was deleted moments ago.
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    moderators: Vec<String>,
    /// Every member, owner and moderators included.
    members: Vec<String>,
    /// Members currently in the room.
    present: Vec<String>,
    /// Only for the owner, moderators and admins.
    #[serde(skip_serializing_if = "Option::is_none")]
    invited: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    banned: Option<Vec<String>>,
}

/// Why a request failed: the client's fault or the server's.
enum Failure {
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

type Outcome = Result<(), Failure>;

fn refuse(code: ErrorCode, message: impl Into<String>) -> Failure {
    Failure::Refused(ApiError::new(code, message))
}

/// The one answer for a private room the requester may not see, whether it
/// exists or not, so that `room_*` frames reveal nothing.
fn hidden(room: &str) -> Failure {
    refuse(
        ErrorCode::NO_SUCH_ROOM,
        format!("no private room {room} is open to you: it does not exist, or you are neither a member nor invited"),
    )
}

fn account_required() -> Failure {
    refuse(
        codes::ACCOUNT_REQUIRED,
        "private rooms belong to accounts: log in first (the server must enable the 'auth' plugin)",
    )
}

fn forbidden(message: impl Into<String>) -> Failure {
    refuse(ErrorCode::FORBIDDEN, message)
}

/// Who sent a `room_*` frame.
struct Actor {
    /// Folded account name.
    key: String,
    /// The account as registered, shown in events.
    name: String,
    admin: bool,
}

/// A room and what the actor may do in it.
struct Access {
    actor: Actor,
    room: RoomRow,
    key: String,
    role: Option<Role>,
}

impl Access {
    /// Owner, moderators and admins: invite, revoke, kick, ban, topic.
    fn can_moderate(&self) -> bool {
        self.actor.admin || matches!(self.role, Some(Role::Owner | Role::Moderator))
    }

    /// Owner and admins: moderators, ownership, deletion.
    fn can_own(&self) -> bool {
        self.actor.admin || self.role == Some(Role::Owner)
    }

    fn require_moderator(&self, what: &str) -> Outcome {
        if self.can_moderate() {
            Ok(())
        } else {
            Err(forbidden(format!(
                "only the owner or a moderator of {} may {what}",
                self.room.name
            )))
        }
    }

    fn require_owner(&self, what: &str) -> Outcome {
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

/// The plugin.
pub struct RoomsPlugin {
    config: RoomsConfig,
    store: RoomStore,
    host: Arc<dyn Host>,
    locks: RoomLocks,
    /// Folded names of every private room, read from the database on first
    /// use. Changed only under the room's lock, after the database, so a
    /// reader holding that lock sees the database's answer.
    private: OnceCell<RwLock<HashSet<String>>>,
}

impl RoomsPlugin {
    /// Builds the plugin on the server's database.
    pub fn new(ctx: &PluginContext, db: Database) -> Result<RoomsPlugin, ConfigError> {
        let config = RoomsConfig::from_plugin_config(&ctx.config)?;
        tracing::info!(
            max_rooms_per_owner = config.max_rooms_per_owner,
            max_members = config.max_members,
            database = %db.path().display(),
            "private rooms enabled"
        );
        Ok(RoomsPlugin {
            config,
            store: RoomStore::new(db),
            host: ctx.host.clone(),
            locks: RoomLocks::new(),
            private: OnceCell::new(),
        })
    }

    async fn private_names(&self) -> Result<&RwLock<HashSet<String>>, StorageError> {
        self.private
            .get_or_try_init(|| async {
                let keys = self.store.all_keys().await?;
                Ok(RwLock::new(keys.into_iter().collect()))
            })
            .await
    }

    async fn is_private(&self, room_key: &str) -> Result<bool, StorageError> {
        Ok(self
            .private_names()
            .await?
            .read()
            .unwrap()
            .contains(room_key))
    }

    fn actor(session: &dyn Session) -> Result<Actor, Failure> {
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
    async fn existing(
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
    async fn access(
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
    async fn target(&self, user: &str) -> Result<(String, String), Failure> {
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

    /// Topics and kick or ban reasons: one line, `max_topic_length` at most.
    fn check_text(&self, what: &str, text: &str) -> Outcome {
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
    fn enter(
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
    async fn enter_accepted(
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
    fn announce(&self, event: &RoomEvent<'_>, also: Option<&str>) {
        let payload = Payload::encode(event);
        // An error only means that no member is present.
        let _ = self.host.send_to_room(event.room, payload.clone());
        let Some(also) = also else { return };
        let present = self
            .host
            .room_members(event.room)
            .is_some_and(|members| members.iter().any(|n| fold(n) == also));
        if !present {
            if let Some(session) = self.host.session_of(also) {
                self.host.send_to_session(session, payload);
            }
        }
    }

    fn event<'a>(
        access: &'a Access,
        event: &'static str,
        user: Option<&'a str>,
        reason: Option<&'a str>,
    ) -> RoomEvent<'a> {
        RoomEvent {
            kind: "room_event",
            room: &access.room.name,
            event,
            by: &access.actor.name,
            user,
            topic: None,
            reason,
            ts: now_ms(),
        }
    }

    /// Takes an account's session out of a room's hub room, if it is there.
    fn remove_from_hub(&self, account_key: &str, room: &str, reason: &str) {
        if let Some(session) = self.host.session_of(account_key) {
            // Not in the room (e.g. it parted): nothing to do.
            let _ = self.host.leave_room(session, room, Some(reason));
        }
    }

    // ---- core frames this plugin guards ----

    /// `join`: public rooms as in the core, private ones for members only.
    /// Public joins also run here, under the room's lock, so that a
    /// `room_create` of the same name cannot let an outsider in halfway.
    async fn join(&self, session: &dyn Session, id: Option<RequestId>, room: &str) -> Outcome {
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
    async fn guard_users(&self, session: &dyn Session, room: &str) -> Result<Verdict, Failure> {
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
    async fn guard_history(
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
    async fn rooms(&self, session: &dyn Session, id: Option<RequestId>) -> Outcome {
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

    // ---- room_* frames ----

    async fn room_frame(&self, session: &dyn Session, frame: &Inbound) -> Outcome {
        let id = frame.id;
        match frame.kind.as_str() {
            "room_create" => self.create(session, id, frame.decode_custom()?).await,
            "room_invite" => self.invite(session, id, frame.decode_custom()?).await,
            "room_revoke" => self.revoke(session, id, frame.decode_custom()?).await,
            "room_accept" => self.accept(session, id, frame.decode_custom()?).await,
            "room_decline" => self.decline(session, id, frame.decode_custom()?).await,
            "room_kick" => self.kick(session, id, frame.decode_custom()?, false).await,
            "room_ban" => self.kick(session, id, frame.decode_custom()?, true).await,
            "room_unban" => self.unban(session, id, frame.decode_custom()?).await,
            "room_topic" => self.topic(session, id, frame.decode_custom()?).await,
            "room_promote" => self.set_role(session, id, frame.decode_custom()?, Role::Moderator).await,
            "room_demote" => self.set_role(session, id, frame.decode_custom()?, Role::Member).await,
            "room_transfer" => self.transfer(session, id, frame.decode_custom()?).await,
            "room_delete" => self.delete(session, id, frame.decode_custom()?).await,
            "room_leave" => self.leave(session, id, frame.decode_custom()?).await,
            "room_invitations" => self.invitations(session, id).await,
            "room_info" => self.info(session, id, frame.decode_custom()?).await,
            other => Err(refuse(
                ErrorCode::UNKNOWN_TYPE,
                format!("unknown frame type '{other}'; the private-room frames are listed in docs/protocol.md"),
            )),
        }
    }

    async fn create(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        req: CreateRequest,
    ) -> Outcome {
        let actor = Self::actor(session)?;
        validate_room(&req.room).map_err(|e| refuse(ErrorCode::INVALID_ROOM, e.to_string()))?;
        let topic = req.topic.filter(|t| !t.is_empty());
        if let Some(topic) = &topic {
            self.check_text("topic", topic)?;
        }
        let key = fold(&req.room);
        let taken = || {
            refuse(
                codes::ROOM_EXISTS,
                format!("the room name {} is taken; choose another", req.room),
            )
        };
        let _room_lock = self.locks.lock(&key).await;
        if self.is_private(&key).await? || self.host.room_members(&req.room).is_some() {
            return Err(taken());
        }
        let row = match self
            .store
            .create_room(
                &req.room,
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

    async fn invite(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        req: TargetRequest,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, &req.room).await?;
        access.require_moderator("invite")?;
        let (target, name) = self.target(&req.user).await?;
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
                Payload::encode(&InvitationNotice {
                    kind: "room_invitation",
                    room: &access.room.name,
                    from: &access.actor.name,
                }),
            );
        }
        session.reply_ok(id);
        Ok(())
    }

    async fn revoke(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        req: TargetRequest,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, &req.room).await?;
        access.require_moderator("revoke invitations")?;
        let (target, name) = self.target(&req.user).await?;
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
                Payload::encode(&Self::event(&access, "revoke", Some(&name), None)),
            );
        }
        session.reply_ok(id);
        Ok(())
    }

    async fn accept(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        req: RoomRequest,
    ) -> Outcome {
        let (actor, row, _key, _room_lock) = self.existing(session, &req.room).await?;
        if self.store.role_of(row.id, &actor.key).await?.is_some() {
            return Err(refuse(
                codes::ALREADY_MEMBER,
                format!("you are already a member of {}; join it", row.name),
            ));
        }
        let Some(invitation) = self.store.accept(row.id, &actor.key).await? else {
            return Err(hidden(&req.room));
        };
        tracing::debug!(room = %row.name, account = %actor.name, "invitation accepted");
        self.enter_accepted(session, &row, &actor.key, invitation, id)
            .await
    }

    async fn decline(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        req: RoomRequest,
    ) -> Outcome {
        let (actor, row, _key, _room_lock) = self.existing(session, &req.room).await?;
        if !self.store.remove_invitation(row.id, &actor.key).await? {
            return Err(hidden(&req.room));
        }
        session.reply_ok(id);
        Ok(())
    }

    /// `room_kick` and `room_ban` (which also works on non-members, to keep
    /// someone out before they are invited).
    async fn kick(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        req: TargetRequest,
        ban: bool,
    ) -> Outcome {
        let (what, done) = if ban {
            ("ban", "banned")
        } else {
            ("kick", "kicked")
        };
        let (access, _room_lock) = self.access(session, &req.room).await?;
        access.require_moderator(what)?;
        let reason = req.reason.filter(|r| !r.is_empty());
        if let Some(reason) = &reason {
            self.check_text("reason", reason)?;
        }
        let (target, name) = self.target(&req.user).await?;
        if target == access.actor.key {
            return Err(forbidden(format!(
                "you cannot {what} yourself; use room_leave"
            )));
        }
        let target_role = self.store.role_of(access.room.id, &target).await?;
        match target_role {
            Some(Role::Owner) => {
                return Err(forbidden(format!(
                    "the owner of {} cannot be {done}; they may hand the room over",
                    access.room.name
                )))
            }
            Some(Role::Moderator) if !access.can_own() => {
                return Err(forbidden(format!(
                    "only the owner of {} may {what} a moderator",
                    access.room.name
                )))
            }
            None if !ban => {
                return Err(refuse(
                    codes::NOT_A_MEMBER,
                    format!("{name} is not a member of {}", access.room.name),
                ))
            }
            _ => {}
        }
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
        let event = Self::event(&access, what, Some(&name), reason.as_deref());
        self.announce(&event, knew_the_room.then_some(target.as_str()));
        tracing::info!(room = %access.room.name, by = %access.actor.name, target = %name, "{what}");
        session.reply_ok(id);
        Ok(())
    }

    async fn unban(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        req: TargetRequest,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, &req.room).await?;
        access.require_moderator("unban")?;
        let (target, name) = self.target(&req.user).await?;
        if !self.store.unban(access.room.id, &target).await? {
            return Err(refuse(
                codes::NOT_BANNED,
                format!("{name} is not banned from {}", access.room.name),
            ));
        }
        session.reply_ok(id);
        Ok(())
    }

    async fn topic(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        req: TopicRequest,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, &req.room).await?;
        access.require_moderator("set the topic")?;
        self.check_text("topic", &req.topic)?;
        let topic = Some(req.topic.as_str()).filter(|t| !t.is_empty());
        self.store.set_topic(access.room.id, topic).await?;
        let mut event = Self::event(&access, "topic", None, None);
        event.topic = topic;
        self.announce(&event, None);
        session.reply_ok(id);
        Ok(())
    }

    async fn set_role(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        req: TargetRequest,
        role: Role,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, &req.room).await?;
        access.require_owner("appoint or remove moderators")?;
        let (target, name) = self.target(&req.user).await?;
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
            "promote"
        } else {
            "demote"
        };
        self.announce(
            &Self::event(&access, what, Some(&name), None),
            Some(&target),
        );
        session.reply_ok(id);
        Ok(())
    }

    async fn transfer(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        req: TargetRequest,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, &req.room).await?;
        access.require_owner("hand the room over")?;
        let (target, name) = self.target(&req.user).await?;
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
            &Self::event(&access, "transfer", Some(&name), None),
            Some(&target),
        );
        tracing::info!(room = %access.room.name, by = %access.actor.name, to = %name, "private room handed over");
        session.reply_ok(id);
        Ok(())
    }

    async fn delete(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        req: RoomRequest,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, &req.room).await?;
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
        let event = Payload::encode(&Self::event(&access, "delete", None, None));
        for nick in present {
            if let Some(member) = self.host.session_of(&nick) {
                self.host.send_to_session(member, event.clone());
            }
        }
        tracing::info!(room = %access.room.name, by = %access.actor.name, "private room deleted");
        session.reply_ok(id);
        Ok(())
    }

    async fn leave(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        req: RoomRequest,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, &req.room).await?;
        match self
            .store
            .role_of(access.room.id, &access.actor.key)
            .await?
        {
            None => return Err(hidden(&req.room)),
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

    async fn invitations(&self, session: &dyn Session, id: Option<RequestId>) -> Outcome {
        let actor = Self::actor(session)?;
        let invitations = self
            .store
            .invitations_of(&actor.key)
            .await?
            .into_iter()
            .map(|i| InvitationEntry {
                room: i.room,
                from: i.from,
                at: i.at,
            })
            .collect();
        session.send_frame(&InvitationsReply {
            kind: "room_invitations",
            id,
            invitations,
        });
        Ok(())
    }

    async fn info(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        req: RoomRequest,
    ) -> Outcome {
        let (access, _room_lock) = self.access(session, &req.room).await?;
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
        session.send_frame(&InfoReply {
            kind: "room_info",
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

    /// Puts a session that has just logged in back into its private rooms.
    async fn rejoin(&self, session: &dyn Session) -> Result<(), StorageError> {
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

fn now_ms() -> u64 {
    u64::try_from(chatd_storage::now_ms()).unwrap_or(0)
}

fn verdict(outcome: Outcome) -> HandlerResult {
    match outcome {
        Ok(()) => Ok(Verdict::Done),
        Err(Failure::Refused(e)) => Ok(Verdict::Reject(e)),
        Err(Failure::Internal(e)) => Err(e),
    }
}

#[async_trait]
impl MessageHandler for RoomsPlugin {
    fn name(&self) -> &str {
        "rooms"
    }

    fn features(&self) -> Vec<String> {
        vec!["private_rooms".to_string()]
    }

    async fn on_frame(&self, session: &dyn Session, frame: &mut Inbound) -> HandlerResult {
        match &frame.request {
            Request::Core(ClientFrame::Join { room }) => {
                if validate_room(room).is_err() || session.nick().is_none() {
                    // The core's own errors (`invalid_room`, `nick_required`).
                    return Ok(Verdict::Continue);
                }
                let room = room.clone();
                verdict(self.join(session, frame.id, &room).await)
            }
            Request::Core(ClientFrame::Users { room: Some(room) }) => {
                let room = room.clone();
                match self.guard_users(session, &room).await {
                    Ok(v) => Ok(v),
                    Err(e) => verdict(Err(e)),
                }
            }
            Request::Core(ClientFrame::Rooms {}) => verdict(self.rooms(session, frame.id).await),
            Request::Core(ClientFrame::History {
                room: Some(room), ..
            }) => {
                let room = room.clone();
                match self.guard_history(session, &room).await {
                    Ok(Some(since)) => {
                        if let Request::Core(ClientFrame::History { floor, .. }) =
                            &mut frame.request
                        {
                            *floor = Some(since);
                        }
                        Ok(Verdict::Continue)
                    }
                    Ok(None) => Ok(Verdict::Continue),
                    Err(e) => verdict(Err(e)),
                }
            }
            Request::Custom(_) if frame.kind.starts_with("room_") => {
                verdict(self.room_frame(session, frame).await)
            }
            _ => Ok(Verdict::Continue),
        }
    }

    async fn on_identity_change(&self, session: &dyn Session) {
        if let Err(e) = self.rejoin(session).await {
            tracing::error!(session = session.id(), error = %e, "cannot put a member back into their private rooms");
        }
    }
}
