//! The [`chat_api::Host`] handed to plugins: routing and runtime services,
//! implemented on the hub, without exposing the hub itself. Clustered, the
//! same calls reach users and rooms on the other nodes (`crate::cluster`'s
//! relay): a plugin cannot tell one node from several.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chat_api::names::fold;
use chat_api::{ApiError, BoxFuture, ErrorCode, LogLevel, Payload, RoomInfo, SessionId};

use crate::cluster::relay::frame_text;
use crate::cluster::wire::Relay;
use crate::cluster::Cluster;
use crate::hub::Hub;

/// The plugins' handle on the server.
pub struct ServerHost {
    hub: Arc<Hub>,
    data_dir: PathBuf,
    runtime: tokio::runtime::Handle,
    /// `limits.max_frame_bytes`, told to plugins that size their frames.
    max_frame_bytes: usize,
    /// The other nodes, once the cluster has started (after the plugins).
    cluster: std::sync::OnceLock<Arc<Cluster>>,
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
            cluster: std::sync::OnceLock::new(),
        }
    }

    /// From now on, calls reach the other nodes' users too.
    pub fn attach_cluster(&self, cluster: Arc<Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// A handle of another node's session: (cluster, node, its session).
    fn remote(&self, handle: SessionId) -> Option<(&Arc<Cluster>, String, SessionId)> {
        let cluster = self.cluster()?;
        let (node, session) = cluster.resolve(handle)?;
        Some((cluster, node, session))
    }

    fn session(&self, id: SessionId) -> Result<Arc<crate::hub::Peer>, ApiError> {
        self.hub
            .session(id)
            .ok_or_else(|| ApiError::new(ErrorCode::NO_SUCH_USER, "that session has ended"))
    }
}

impl chat_api::Host for ServerHost {
    fn send_to_session(&self, session: SessionId, payload: Payload) -> bool {
        if let Some((cluster, node, session)) = self.remote(session) {
            let frame = frame_text(&payload);
            cluster.relay(Some(&node), Relay::ToSession { session, frame });
            return true;
        }
        self.hub
            .session(session)
            .is_some_and(|peer| peer.deliver(payload))
    }

    fn send_to_user(&self, nick: &str, payload: Payload) -> Result<(), ApiError> {
        if let Some(peer) = self.hub.by_nick(nick) {
            peer.deliver(payload);
            return Ok(());
        }
        if let Some(cluster) = self.cluster() {
            if let Some((node, _)) = cluster.directory.session_of(nick) {
                let frame = frame_text(&payload);
                let nick = nick.to_string();
                cluster.relay(Some(&node), Relay::ToUser { nick, frame });
                return Ok(());
            }
        }
        Err(ApiError::new(
            ErrorCode::NO_SUCH_USER,
            format!("nobody called '{nick}' is connected"),
        ))
    }

    fn send_to_room(&self, room: &str, payload: Payload) -> Result<usize, ApiError> {
        let remote = self.cluster().map_or(0, |c| c.remote_members(room));
        if let Some(cluster) = self.cluster().filter(|_| remote > 0) {
            let frame = frame_text(&payload);
            let room = room.to_string();
            cluster.relay(None, Relay::ToRoom { room, frame });
        }
        match self.hub.deliver_to_room(room, &payload) {
            Some(local) => Ok(local + remote),
            None if remote > 0 => Ok(remote),
            None => Err(ApiError::new(
                ErrorCode::NO_SUCH_ROOM,
                format!("there is no room {room}"),
            )),
        }
    }

    fn broadcast(&self, payload: Payload) -> usize {
        let mut remote = 0;
        if let Some(cluster) = self.cluster() {
            remote = cluster.remote_users();
            let frame = frame_text(&payload);
            cluster.relay(None, Relay::ToAll { frame });
        }
        self.hub.deliver_to_all(&payload) + remote
    }

    fn users(&self) -> Vec<String> {
        match self.cluster() {
            Some(cluster) => cluster.users(),
            None => self.hub.users(),
        }
    }

    fn rooms(&self) -> Vec<RoomInfo> {
        match self.cluster() {
            Some(cluster) => cluster.rooms(),
            None => self.hub.rooms(),
        }
    }

    fn room_members(&self, room: &str) -> Option<Vec<String>> {
        let members = match self.cluster() {
            Some(cluster) => cluster.room_members(room),
            None => self.hub.room_members(room),
        };
        members.map(|(_, members)| members)
    }

    fn session_of(&self, nick: &str) -> Option<SessionId> {
        match self.hub.by_nick(&fold(nick)) {
            Some(peer) => Some(peer.id),
            None => self.cluster()?.remote_session(nick),
        }
    }

    fn join_room(&self, session: SessionId, room: &str) -> Result<(String, Vec<String>), ApiError> {
        if let Some((cluster, node, session)) = self.remote(session) {
            let room_name = room.to_string();
            cluster.relay(
                Some(&node),
                Relay::Join {
                    session,
                    room: room_name,
                },
            );
            // Answered from what is known here; that node tells its room.
            return Ok(cluster
                .room_members(room)
                .unwrap_or_else(|| (room.to_string(), Vec::new())));
        }
        let peer = self.session(session)?;
        let (name, local) = self.hub.join(&peer, room)?;
        let members = self
            .cluster()
            .and_then(|c| c.room_members(&name))
            .map_or(local, |(_, all)| all);
        Ok((name, members))
    }

    fn leave_room(
        &self,
        session: SessionId,
        room: &str,
        reason: Option<&str>,
    ) -> Result<(), ApiError> {
        if let Some((cluster, node, session)) = self.remote(session) {
            let op = Relay::Leave {
                session,
                room: room.to_string(),
                reason: reason.map(str::to_string),
            };
            cluster.relay(Some(&node), op);
            return Ok(());
        }
        let peer = self.session(session)?;
        self.hub.part(&peer, room, reason)
    }

    fn close_room(&self, room: &str, reason: &str) {
        if let Some(cluster) = self.cluster() {
            let op = Relay::CloseRoom {
                room: room.to_string(),
                reason: reason.to_string(),
            };
            cluster.relay(None, op);
        }
        self.hub.close_room(room, reason)
    }

    fn disconnect(&self, session: SessionId, code: ErrorCode, reason: &str) {
        if let Some((cluster, node, session)) = self.remote(session) {
            let op = Relay::Disconnect {
                session,
                code: code.as_str().to_string(),
                reason: reason.to_string(),
            };
            cluster.relay(Some(&node), op);
            return;
        }
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
