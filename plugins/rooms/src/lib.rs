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
//! Rooms, roles, invitations and bans live in the server's database (SQLite or PostgreSQL)
//! ([`store`]); every change of one room runs under that room's lock
//! ([`locks`]), database first, hub second, so the two always agree.
//!
//! Identity is the account (`Session::account`): without the `auth` plugin,
//! or for guests, every `room_*` frame is refused with `account_required`,
//! and private rooms stay closed; public rooms work as in the core.
//!
//! The code follows a frame: [`MessageHandler::on_frame`] here sends the
//! core frames it guards to `guard.rs` and the `room_*` frames to
//! `commands/` (one file per group of commands), which all start with the
//! access check of `access.rs`.
//!
//! ```toml
//! [[plugin]]
//! name = "rooms"             # after "auth"
//! [plugin.config]
//! max_rooms_per_owner = 20
//! max_members = 500          # members plus pending invitations
//! ```

mod access;
mod commands;
pub mod config;
mod guard;
pub mod locks;
pub mod store;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use chat_api::names::validate_room;
use chat_api::{
    async_trait, now_ms, ClientFrame, ConfigError, HandlerResult, Host, Inbound, MessageHandler,
    PluginContext, Request, Session, Verdict,
};
use chatd_storage::{Database, StorageError};
use tokio::sync::OnceCell;

use access::{Failure, Outcome};
pub use config::RoomsConfig;
use locks::RoomLocks;
use store::RoomStore;

/// Error codes of the private-room frames, from the protocol crate.
pub use chat_api::rooms::codes;

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
            database = %db.name(),
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
