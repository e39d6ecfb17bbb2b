//! The [`chat_api::Host`] handed to plugins: routing and runtime services,
//! implemented on the hub, without exposing the hub itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chat_api::names::fold;
use chat_api::{ApiError, BoxFuture, ErrorCode, LogLevel, Payload, RoomInfo, SessionId};

use crate::hub::Hub;

/// The plugins' handle on the server.
pub struct ServerHost {
    hub: Arc<Hub>,
    data_dir: PathBuf,
    runtime: tokio::runtime::Handle,
    /// `limits.max_frame_bytes`, told to plugins that size their frames.
    max_frame_bytes: usize,
}

impl ServerHost {
    pub fn new(
        hub: Arc<Hub>,
        data_dir: PathBuf,
        runtime: tokio::runtime::Handle,
        max_frame_bytes: usize,
    ) -> ServerHost {
        ServerHost {
            hub,
            data_dir,
            runtime,
            max_frame_bytes,
        }
    }

    fn session(&self, id: SessionId) -> Result<Arc<crate::hub::Peer>, ApiError> {
        self.hub
            .session(id)
            .ok_or_else(|| ApiError::new(ErrorCode::NO_SUCH_USER, "that session has ended"))
    }
}

impl chat_api::Host for ServerHost {
    fn send_to_session(&self, session: SessionId, payload: Payload) -> bool {
        self.hub
            .session(session)
            .is_some_and(|peer| peer.deliver(payload))
    }

    fn send_to_user(&self, nick: &str, payload: Payload) -> Result<(), ApiError> {
        let peer = self.hub.by_nick(nick).ok_or_else(|| {
            ApiError::new(
                ErrorCode::NO_SUCH_USER,
                format!("nobody called '{nick}' is connected"),
            )
        })?;
        peer.deliver(payload);
        Ok(())
    }

    fn send_to_room(&self, room: &str, payload: Payload) -> Result<usize, ApiError> {
        self.hub.deliver_to_room(room, &payload).ok_or_else(|| {
            ApiError::new(ErrorCode::NO_SUCH_ROOM, format!("there is no room {room}"))
        })
    }

    fn broadcast(&self, payload: Payload) -> usize {
        self.hub.deliver_to_all(&payload)
    }

    fn users(&self) -> Vec<String> {
        self.hub.users()
    }

    fn rooms(&self) -> Vec<RoomInfo> {
        self.hub.rooms()
    }

    fn room_members(&self, room: &str) -> Option<Vec<String>> {
        self.hub.room_members(room).map(|(_, members)| members)
    }

    fn session_of(&self, nick: &str) -> Option<SessionId> {
        self.hub.by_nick(&fold(nick)).map(|p| p.id)
    }

    fn join_room(&self, session: SessionId, room: &str) -> Result<(String, Vec<String>), ApiError> {
        let peer = self.session(session)?;
        self.hub.join(&peer, room)
    }

    fn leave_room(
        &self,
        session: SessionId,
        room: &str,
        reason: Option<&str>,
    ) -> Result<(), ApiError> {
        let peer = self.session(session)?;
        self.hub.part(&peer, room, reason)
    }

    fn close_room(&self, room: &str, reason: &str) {
        self.hub.close_room(room, reason)
    }

    fn disconnect(&self, session: SessionId, code: ErrorCode, reason: &str) {
        if let Some(peer) = self.hub.session(session) {
            peer.closer.close(code, reason);
        }
    }

    fn next_message_id(&self) -> (u64, u64) {
        self.hub.next_message_id()
    }

    fn spawn(&self, task: BoxFuture<()>) {
        self.runtime.spawn(task);
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send + 'static>) {
        self.runtime.spawn_blocking(work);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        let _guard = self.runtime.enter();
        Box::pin(tokio::time::sleep(duration))
    }

    fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn max_frame_bytes(&self) -> Option<usize> {
        Some(self.max_frame_bytes)
    }

    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        match level {
            LogLevel::Error => tracing::error!(target: "chatd::plugin", plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "chatd::plugin", plugin, "{message}"),
            LogLevel::Info => tracing::info!(target: "chatd::plugin", plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "chatd::plugin", plugin, "{message}"),
        }
    }
}
