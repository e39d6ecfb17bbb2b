//! Several chatd nodes as one chat, over NATS (docs/scaling.md).
//!
//! * **Ordering and ids.** Room messages, broadcasts and the hub's changes
//!   (who took which nickname, who joined or left which room) go into one
//!   JetStream stream on the subject `<prefix>.fan`; a direct message on
//!   `<prefix>.node.<recipient's node>`. The stream's sequence number is
//!   the message id. Every node reads the stream in sequence order and
//!   delivers to its own sessions, its own senders' messages included, so
//!   the members of a room see its messages in one order wherever they are
//!   connected. One NATS message per event reaches each node, which encodes
//!   it once for all its recipients.
//! * **Directory.** Each node keeps the other nodes' users and rooms
//!   (`directory.rs`), from their events, a node's whole state when it is
//!   first heard of (asked for on `<prefix>.state.<node>`, published on the
//!   stream in order with its events, in pages: `pages.rs`), and drops a
//!   node not heard from within `node_timeout_ms` (`liveness.rs`).
//! * **Nicknames.** A JetStream key-value bucket holds one key per folded
//!   nickname: `create` succeeds for exactly one claimant. A claim held by
//!   a node that is gone (or by a session of this node that has ended)
//!   is taken over with a compare-and-set on its revision.
//! * **NATS unreachable.** The node keeps serving its own users: a room
//!   message reaches the room's members on this node only, a new nickname
//!   is refused (`cluster_unavailable`), `/readyz` says so; when NATS is
//!   back the node publishes its whole state and carries on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use chat_api::names::fold;
use chat_api::{ApiError, ErrorCode, RoomInfo, SessionId};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::config::ClusterConfig;
use crate::hub::Hub;

mod chat;
mod claims;
mod directory;
mod flush;
mod inbound;
mod liveness;
mod outbound;
mod pages;
pub mod relay;
pub mod wire;

pub use chat::{Fallback, Sent};
pub use directory::Directory;
pub use flush::Flight;
use outbound::Outgoing;

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach NATS at {urls}: {error}; start nats-server with JetStream (-js) there or fix cluster.nats")]
    Connect { urls: String, error: String },
    #[error(
        "NATS at {urls} refused to set up {what}: {error}; is JetStream enabled (nats-server -js)?"
    )]
    Setup {
        urls: String,
        what: String,
        error: String,
    },
}

/// Subjects, stream and bucket names derived from `cluster.prefix`.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub fan: String,
    pub node_prefix: String,
    pub heartbeat: String,
    pub state_prefix: String,
    pub flush_prefix: String,
    pub stream: String,
    pub bucket: String,
}

impl Names {
    fn new(prefix: &str) -> Names {
        Names {
            fan: format!("{prefix}.fan"),
            node_prefix: format!("{prefix}.node."),
            heartbeat: format!("{prefix}.heartbeat"),
            state_prefix: format!("{prefix}.state."),
            flush_prefix: format!("{prefix}.flush."),
            stream: format!("{prefix}_events"),
            bucket: format!("{prefix}_nicks"),
        }
    }

    pub fn node(&self, node: &str) -> String {
        format!("{}{node}", self.node_prefix)
    }

    pub fn state(&self, node: &str) -> String {
        format!("{}{node}", self.state_prefix)
    }

    pub fn flush(&self, node: &str) -> String {
        format!("{}{node}", self.flush_prefix)
    }
}

/// This node's part of the cluster.
pub struct Cluster {
    pub(crate) node: String,
    /// This run of the node (its start time in ms).
    pub(crate) boot: u64,
    pub(crate) names: Names,
    pub(crate) client: async_nats::Client,
    pub(crate) nicks: jetstream::kv::Store,
    pub directory: Directory,
    pub(crate) hub: Arc<Hub>,
    /// The one ordered queue of what this node publishes.
    pub(crate) outgoing: mpsc::Sender<Outgoing>,
    /// Each session's nickname claim: (folded nickname, revision).
    pub(crate) claims: Mutex<HashMap<SessionId, (String, u64)>>,
    /// Set while the link to NATS is down.
    pub(crate) degraded: AtomicBool,
    /// Woken when this node must publish its whole state.
    pub(crate) resync: Notify,
    /// A republication of the state is scheduled.
    pub(crate) resync_pending: AtomicBool,
    pub(crate) publish_timeout: Duration,
    /// What this node's file transfer ids start with.
    pub(crate) transfer_prefix: String,
    /// Handles frames other nodes forward (file transfers held here).
    pub(crate) forwarded: std::sync::OnceLock<Arc<dyn relay::ForwardedFrames>>,
    /// Messages handed to NATS and not yet queued for the log.
    pub(crate) in_flight: flush::InFlight,
    pub(crate) config: ClusterConfig,
}

pub(crate) fn unavailable(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::CLUSTER_UNAVAILABLE,
        format!("{what}: the other chat servers cannot be reached just now; try again shortly"),
    )
}

pub(crate) fn nick_taken(nick: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NICK_TAKEN,
        format!("the nickname '{nick}' is in use; choose another"),
    )
}

impl Cluster {
    /// Connects to NATS, sets up the stream and the nickname bucket, and
    /// starts the tasks that read the stream, publish, and watch the other
    /// nodes. The hub's events flow to NATS from now on.
    pub async fn start(
        config: &ClusterConfig,
        hub: Arc<Hub>,
        history: Option<Arc<crate::history::History>>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let urls = config.nats.join(", ");
        // The link's latest state (a watch: bounded, only the last counts).
        let (link_tx, link_rx) = watch::channel(true);
        let client = connect(config, link_tx)
            .await
            .map_err(|error| ClusterError::Connect {
                urls: urls.clone(),
                error,
            })?;
        let names = Names::new(&config.prefix);
        let js = jetstream::new(client.clone());
        let setup = |what: &str, error: String| ClusterError::Setup {
            urls: urls.clone(),
            what: what.to_string(),
            error,
        };
        let (stream, nicks) = set_up(&js, &names)
            .await
            .map_err(|(what, error)| setup(&what, error))?;
        let (outgoing, queue) = mpsc::channel(outbound::QUEUE);
        let cluster = Arc::new(Cluster {
            node: config.node.clone(),
            boot: chat_api::now_ms(),
            names,
            client,
            nicks,
            directory: Directory::default(),
            hub: hub.clone(),
            outgoing,
            claims: Mutex::new(HashMap::new()),
            degraded: AtomicBool::new(false),
            resync: Notify::new(),
            resync_pending: AtomicBool::new(false),
            publish_timeout: Duration::from_millis(config.publish_timeout_ms),
            in_flight: flush::InFlight::default(),
            forwarded: std::sync::OnceLock::new(),
            transfer_prefix: relay::transfer_prefix(&config.node),
            config: config.clone(),
        });
        // Reading first, so nothing published from here on is missed.
        inbound::start(&cluster, &stream, shutdown.clone())
            .await
            .map_err(|e| setup("a consumer of the stream", e))?;
        outbound::start(&cluster, js, queue, shutdown.clone());
        liveness::start(&cluster, link_rx, history, shutdown)
            .await
            .map_err(|e| setup("the heartbeat subscriptions", e))?;
        hub.observe(Arc::new(outbound::Observer::new(&cluster)));
        tracing::info!(node = %config.node, nats = %urls, "joined the cluster");
        Ok(cluster)
    }

    /// Tells the other nodes that this one is leaving (its sessions have
    /// ended at shutdown), so its users leave their lists at once rather
    /// than after `node_timeout_ms`; waits at most a second.
    pub async fn leave(&self) {
        // Behind the departures of this node's sessions, already queued.
        let event = wire::Event::Leaving {
            node: self.node.clone(),
        };
        let told = self.publish(self.names.fan.clone(), event);
        match tokio::time::timeout(Duration::from_secs(1), told).await {
            Ok(Ok(_)) => tracing::info!("left the cluster"),
            _ => tracing::warn!("could not tell the cluster this node is leaving; the others will notice within cluster.node_timeout_ms"),
        }
    }

    /// Whether the link to NATS is up.
    pub fn is_connected(&self) -> bool {
        !self.degraded.load(Ordering::Relaxed)
            && self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// For `/readyz`: the link and the nodes heard from.
    pub fn health(&self) -> Result<String, String> {
        if !self.is_connected() {
            return Err(format!(
                "node {}: NATS is unreachable; serving this node's users only",
                self.node
            ));
        }
        let others = self.directory.nodes();
        Ok(format!(
            "node {}, {} other node(s): {}",
            self.node,
            others.len(),
            if others.is_empty() {
                "none".to_string()
            } else {
                others.join(", ")
            }
        ))
    }

    /// Everyone connected to any node, sorted.
    pub fn users(&self) -> Vec<String> {
        let mut names = self.hub.users();
        names.extend(self.directory.users());
        names.sort_unstable_by_key(|n| fold(n));
        names.dedup();
        names
    }

    /// A room's members on every node, sorted.
    pub fn room_members(&self, room: &str) -> Option<(String, Vec<String>)> {
        let local = self.hub.room_members(room);
        let remote = self.directory.members(room);
        let (name, mut members) = match (local, remote) {
            (None, None) => return None,
            (Some((name, mut local)), Some((_, remote))) => {
                local.extend(remote);
                (name, local)
            }
            (Some(local), None) => local,
            (None, Some(remote)) => remote,
        };
        members.sort_unstable_by_key(|n| fold(n));
        Some((name, members))
    }

    /// Every room on any node with its member count, sorted.
    pub fn rooms(&self) -> Vec<RoomInfo> {
        let mut counts: HashMap<String, (String, usize)> = HashMap::new();
        for info in self.hub.rooms() {
            counts.insert(fold(&info.name), (info.name, info.members));
        }
        for (name, members) in self.directory.rooms() {
            counts.entry(fold(&name)).or_insert((name, 0)).1 += members;
        }
        let mut infos: Vec<RoomInfo> = counts
            .into_values()
            .map(|(name, members)| RoomInfo::new(name, members))
            .collect();
        infos.sort_by_key(|r| fold(&r.name));
        infos
    }
}

/// Connects to NATS; `link` follows the connection's state from then on.
async fn connect(
    config: &ClusterConfig,
    link: watch::Sender<bool>,
) -> Result<async_nats::Client, String> {
    let link = Arc::new(link);
    async_nats::ConnectOptions::new()
        .name(format!("chatd {}", config.node))
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let link = link.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        link.send_replace(true);
                    }
                    async_nats::Event::Disconnected => {
                        link.send_replace(false);
                    }
                    other => tracing::debug!(event = %other, "NATS"),
                }
            }
        })
        .connect(config.nats.as_slice())
        .await
        .map_err(|e| e.to_string())
}

/// The stream that carries and orders everything between nodes, and the
/// nickname bucket; created by the first node, found by the others.
async fn set_up(
    js: &jetstream::Context,
    names: &Names,
) -> Result<(jetstream::stream::Stream, jetstream::kv::Store), (String, String)> {
    let stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: names.stream.clone(),
            subjects: vec![names.fan.clone(), format!("{}*", names.node_prefix)],
            storage: jetstream::stream::StorageType::File,
            // The stream orders and carries messages between nodes; it is
            // not the history. A node that was away resumes from it within
            // this window.
            max_age: Duration::from_secs(3600),
            max_bytes: 1 << 30,
            ..Default::default()
        })
        .await
        .map_err(|e| (format!("the stream {}", names.stream), e.to_string()))?;
    // The bucket's stream made by hand, as a key-value bucket's is
    // (`create_key_value` first asks for account details that nats-server
    // 2.9 words differently).
    let bucket = |e: String| (format!("the bucket {}", names.bucket), e);
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{}", names.bucket),
        subjects: vec![format!("$KV.{}.>", names.bucket)],
        max_messages_per_subject: 1,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|e| bucket(e.to_string()))?;
    let nicks = js
        .get_key_value(&names.bucket)
        .await
        .map_err(|e| bucket(e.to_string()))?;
    Ok((stream, nicks))
}
