//! State every session shares: the hub, the pipeline, the limits in force,
//! the message log, and the count of connections held.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use chat_api::{Payload, ServerFrame, PROTOCOL_VERSION};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{BroadcastPolicy, LimitsConfig};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

/// State every session shares.
pub struct Shared {
    pub hub: Arc<Hub>,
    pub pipeline: Pipeline,
    /// `[limits]`, replaced whole by a reload (see [`Shared::limits`]).
    limits: ArcSwap<LimitsConfig>,
    /// `server.broadcast`, replaced by a reload.
    broadcast: ArcSwap<BroadcastPolicy>,
    /// The message log, when `[history]` is enabled.
    pub history: Option<Arc<crate::history::History>>,
    /// The other nodes, when `[cluster]` is configured.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The `welcome` frame, encoded once at start.
    pub welcome: Payload,
    /// Frame types exempt from flood control because a plugin paces them
    /// (see `MessageHandler::self_paced_frames`).
    pub self_paced: std::collections::HashSet<String>,
    /// Cancelled at shutdown; every session waits on it beside its closer.
    pub shutdown: CancellationToken,
    /// Every connection's task, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Counters for `/metrics`, when the admin listener is configured.
    pub metrics: Option<Arc<Metrics>>,
    /// The next session's id.
    next_session_id: AtomicU64,
    /// Connections currently held (for `limits.max_connections`).
    connections: AtomicUsize,
}

impl Shared {
    pub fn new(
        hub: Arc<Hub>,
        pipeline: Pipeline,
        limits: LimitsConfig,
        broadcast: BroadcastPolicy,
        history: Option<Arc<crate::history::History>>,
        shutdown: CancellationToken,
        metrics: Option<Arc<Metrics>>,
    ) -> Shared {
        let welcome = Payload::encode(&ServerFrame::Welcome {
            server: "chatd".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            protocol: PROTOCOL_VERSION,
            plugins: pipeline.names(),
            features: ["rooms", "direct", "broadcast", "presence"]
                .into_iter()
                .chain(history.is_some().then_some("history"))
                .map(String::from)
                .chain(pipeline.features())
                .collect(),
            max_frame_bytes: limits.max_frame_bytes,
            auth_required: pipeline.requires_login(),
        });
        Shared {
            self_paced: pipeline.self_paced_frames(),
            hub,
            pipeline,
            limits: ArcSwap::from_pointee(limits),
            broadcast: ArcSwap::from_pointee(broadcast),
            history,
            cluster: None,
            welcome,
            shutdown,
            tracker: TaskTracker::new(),
            metrics,
            next_session_id: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
        }
    }

    /// The limits in force. A cheap, lock-free read; a session copies what
    /// it sizes itself by (queues, flood control) when it starts, so a
    /// reload changes those for new connections only.
    pub fn limits(&self) -> arc_swap::Guard<Arc<LimitsConfig>> {
        self.limits.load()
    }

    /// Who may broadcast now.
    pub fn broadcast(&self) -> BroadcastPolicy {
        **self.broadcast.load()
    }

    /// Applies reloaded limits and broadcast policy.
    pub fn reconfigure(&self, limits: LimitsConfig, broadcast: BroadcastPolicy) {
        self.hub
            .set_room_limits(limits.max_rooms_per_session, limits.max_rooms);
        self.pipeline.set_slow_poll_ms(limits.slow_plugin_poll_ms);
        self.limits.store(Arc::new(limits));
        self.broadcast.store(Arc::new(broadcast));
    }

    /// Reserves a connection slot, or `None` at `max_connections`.
    pub fn admit(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let held = self.connections.fetch_add(1, Ordering::AcqRel);
        if held >= self.limits.load().max_connections {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ConnectionSlot(self.clone()))
    }

    /// A new session's id.
    pub fn next_session_id(&self) -> u64 {
        self.next_session_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }
}

/// A held connection slot, released on drop.
pub struct ConnectionSlot(Arc<Shared>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}
