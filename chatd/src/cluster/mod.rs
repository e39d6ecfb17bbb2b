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
//!   first heard of (a request to `<prefix>.state.<node>`), and drops a
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
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use crate::config::ClusterConfig;
use crate::hub::{Accepted, Hub, Peer};

mod directory;
mod inbound;
mod liveness;
mod outbound;
pub mod wire;

pub use directory::Directory;
use outbound::Outgoing;
use wire::{Claim, Event};

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
}

/// This node's part of the cluster.
pub struct Cluster {
    pub(crate) node: String,
    /// This run of the node (its start time in ms).
    pub(crate) boot: u64,
    pub(crate) names: Names,
    pub(crate) client: async_nats::Client,
    pub(crate) nicks: jetstream::kv::Store,
    pub(crate) directory: Directory,
    pub(crate) hub: Arc<Hub>,
    /// The one ordered queue of what this node publishes.
    outgoing: mpsc::Sender<Outgoing>,
    /// Each session's nickname claim: (folded nickname, revision).
    claims: Mutex<HashMap<SessionId, (String, u64)>>,
    /// Set while the link to NATS is down.
    pub(crate) degraded: AtomicBool,
    /// Woken when this node must publish its whole state.
    pub(crate) resync: Notify,
    publish_timeout: Duration,
    pub(crate) config: ClusterConfig,
}

fn unavailable(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::CLUSTER_UNAVAILABLE,
        format!("{what}: the other chat servers cannot be reached just now; try again shortly"),
    )
}

fn nick_taken(nick: &str) -> ApiError {
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
        shutdown: CancellationToken,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let urls = config.nats.join(", ");
        let (link_tx, link_rx) = mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .name(format!("chatd {}", config.node))
            .connection_timeout(Duration::from_secs(5))
            .event_callback(move |event| {
                let link_tx = link_tx.clone();
                async move {
                    let _ = link_tx.send(event);
                }
            })
            .connect(config.nats.as_slice())
            .await
            .map_err(|e| ClusterError::Connect {
                urls: urls.clone(),
                error: e.to_string(),
            })?;
        let names = Names::new(&config.prefix);
        let js = jetstream::new(client.clone());
        let setup = |what: &str, error: String| ClusterError::Setup {
            urls: urls.clone(),
            what: what.to_string(),
            error,
        };
        let stream = js
            .get_or_create_stream(jetstream::stream::Config {
                name: names.stream.clone(),
                subjects: vec![names.fan.clone(), format!("{}*", names.node_prefix)],
                storage: jetstream::stream::StorageType::File,
                // The stream orders and carries messages between nodes; it
                // is not the history. A node that was away resumes from it
                // within this window.
                max_age: Duration::from_secs(3600),
                max_bytes: 1 << 30,
                ..Default::default()
            })
            .await
            .map_err(|e| setup(&format!("the stream {}", names.stream), e.to_string()))?;
        // The bucket's stream made by hand, as a key-value bucket's is
        // (`create_key_value` first asks for account details that
        // nats-server 2.9 words differently).
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
        .map_err(|e| setup(&format!("the bucket {}", names.bucket), e.to_string()))?;
        let nicks = js
            .get_key_value(&names.bucket)
            .await
            .map_err(|e| setup(&format!("the bucket {}", names.bucket), e.to_string()))?;
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
            publish_timeout: Duration::from_millis(config.publish_timeout_ms),
            config: config.clone(),
        });
        // Reading first, so nothing published from here on is missed.
        inbound::start(&cluster, &stream, shutdown.clone())
            .await
            .map_err(|e| setup("a consumer of the stream", e))?;
        outbound::start(&cluster, js, queue, shutdown.clone());
        liveness::start(&cluster, link_rx, shutdown)
            .await
            .map_err(|e| setup("the heartbeat subscriptions", e))?;
        hub.observe(Arc::new(outbound::Observer::new(&cluster)));
        tracing::info!(node = %config.node, nats = %urls, "joined the cluster");
        Ok(cluster)
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

    /// Claims `nick` for `session` across the cluster; exactly one of
    /// several nodes racing for it wins. Returns the claim's revision, to
    /// hand to [`Cluster::claimed`] or [`Cluster::unclaim`].
    pub async fn claim_nick(&self, session: SessionId, nick: &str) -> Result<u64, ApiError> {
        if !self.is_connected() {
            return Err(unavailable("the nickname cannot be checked"));
        }
        let key = fold(nick);
        if self
            .claims
            .lock()
            .unwrap()
            .get(&session)
            .is_some_and(|(held, _)| *held == key)
        {
            return Ok(0);
        }
        let claim = chat_api::serde_json::to_vec(&Claim {
            node: self.node.clone(),
            boot: self.boot,
            session,
        })
        .expect("a claim serialises");
        use jetstream::kv::CreateErrorKind;
        match self.nicks.create(&key, claim.clone().into()).await {
            Ok(revision) => return Ok(revision),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
            Err(e) => {
                tracing::warn!(error = %e, nick, "cannot claim a nickname");
                return Err(unavailable("the nickname cannot be checked"));
            }
        }
        // Taken: over it only if its holder is gone.
        let entry = match self.nicks.entry(&key).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return Err(nick_taken(nick)),
            Err(e) => {
                tracing::warn!(error = %e, nick, "cannot read a nickname claim");
                return Err(unavailable("the nickname cannot be checked"));
            }
        };
        let holder: Option<Claim> = chat_api::serde_json::from_slice(&entry.value).ok();
        let age_ms = (chat_api::now_ms() as i128)
            .saturating_sub(entry.created.unix_timestamp_nanos() / 1_000_000)
            .max(0) as u64;
        if !holder.is_some_and(|h| self.is_stale(&h, &key, age_ms)) {
            return Err(nick_taken(nick));
        }
        self.nicks
            .update(&key, claim.into(), entry.revision)
            .await
            .map_err(|_| nick_taken(nick))
    }

    /// Whether a claim's holder has gone: a session of this node that no
    /// longer holds the name, an earlier run of this node or of another, or
    /// a node silent for longer than `node_timeout_ms`. A node this one has
    /// not heard from yet is alive while its claim is younger than that
    /// (it may have started a moment ago), and while this node itself is
    /// younger than that (it may not have heard everyone's heartbeat yet).
    fn is_stale(&self, holder: &Claim, key: &str, age_ms: u64) -> bool {
        if holder.node == self.node {
            return holder.boot != self.boot
                || self
                    .hub
                    .by_nick(key)
                    .is_none_or(|peer| peer.id != holder.session);
        }
        match self.directory.boot_of(&holder.node) {
            Some(boot) if boot == holder.boot => false,
            Some(0) => false,
            Some(_) => true,
            None => {
                let timeout = self.config.node_timeout_ms;
                let uptime = chat_api::now_ms().saturating_sub(self.boot);
                age_ms > timeout && uptime > timeout
            }
        }
    }

    /// Records that `session` now holds the nickname claimed at
    /// `revision`; a name it held before is released.
    pub fn claimed(&self, session: SessionId, nick: &str, revision: u64) {
        if revision == 0 {
            return;
        }
        let previous = self
            .claims
            .lock()
            .unwrap()
            .insert(session, (fold(nick), revision));
        if let Some((key, revision)) = previous {
            self.release(key, revision);
        }
    }

    /// Gives up a claim the hub did not take (the nickname was refused).
    pub fn unclaim(&self, nick: &str, revision: u64) {
        if revision != 0 {
            self.release(fold(nick), revision);
        }
    }

    /// The session has ended or logged out: its name is free again.
    pub(crate) fn session_gone(&self, session: SessionId) {
        let claim = self.claims.lock().unwrap().remove(&session);
        if let Some((key, revision)) = claim {
            self.release(key, revision);
        }
    }

    /// Deletes a claim if it is still the one made (its revision).
    fn release(&self, key: String, revision: u64) {
        let nicks = self.nicks.clone();
        tokio::spawn(async move {
            if let Err(e) = nicks.delete_expect_revision(&key, Some(revision)).await {
                tracing::debug!(error = %e, key, "a nickname claim was not released (taken over, or NATS away)");
            }
        });
    }

    /// `say` across the cluster: stored in the stream, then delivered by
    /// every node (this one included) in stream order. Returns the room's
    /// name as it is spelt.
    pub async fn say(
        &self,
        peer: &Arc<Peer>,
        room: &str,
        text: &str,
    ) -> Result<(Accepted, String), ApiError> {
        let found = self
            .hub
            .rooms_of(peer)
            .into_iter()
            .find(|r| r.eq_ignore_ascii_case(room));
        let room_name = match found {
            Some(name) if self.is_connected() => name,
            // The hub words the refusal (no nickname, not in the room), or
            // delivers here alone while NATS is away.
            _ => {
                let mut spelt = room.to_string();
                let accepted = self
                    .hub
                    .say(peer, room, text, |_, r, _| spelt = r.name.clone())?;
                return Ok((accepted, spelt));
            }
        };
        let from = peer.nick().map(|n| n.to_string()).unwrap_or_default();
        let ts = chat_api::now_ms();
        let event = Event::Say {
            node: self.node.clone(),
            session: peer.id,
            from,
            room: room_name.clone(),
            text: text.to_string(),
            ts,
        };
        let msg_id = self.publish(self.names.fan.clone(), event).await?;
        let recipients = self.hub.local_member_count(&room_name).saturating_sub(1)
            + self.directory.member_count(&room_name);
        let accepted = Accepted {
            msg_id,
            ts,
            recipients,
        };
        Ok((accepted, room_name))
    }

    /// `msg` across the cluster: to the recipient's node. Returns the
    /// recipient's nickname as they spell it.
    pub async fn direct(
        &self,
        peer: &Arc<Peer>,
        to: &str,
        text: &str,
    ) -> Result<(Accepted, String), ApiError> {
        let Some(from) = peer.nick() else {
            return self.local_direct(peer, to, text);
        };
        let target = match self.hub.by_nick(to).and_then(|p| p.nick()) {
            Some(nick) => Some((self.node.clone(), nick.to_string())),
            None => self.directory.locate(to),
        };
        let Some((node, to_nick)) = target else {
            return self.local_direct(peer, to, text);
        };
        if !self.is_connected() {
            return self.local_direct(peer, to, text);
        }
        let ts = chat_api::now_ms();
        let event = Event::Direct {
            node: self.node.clone(),
            from: from.to_string(),
            to: to_nick.clone(),
            text: text.to_string(),
            ts,
        };
        let msg_id = self.publish(self.names.node(&node), event).await?;
        let accepted = Accepted {
            msg_id,
            ts,
            recipients: 1,
        };
        Ok((accepted, to_nick))
    }

    /// A direct message this node handles alone: to someone on it while
    /// NATS is away, or the hub's refusal (no nickname, nobody by that name).
    fn local_direct(
        &self,
        peer: &Arc<Peer>,
        to: &str,
        text: &str,
    ) -> Result<(Accepted, String), ApiError> {
        let mut to_nick = to.to_string();
        let accepted = self.hub.direct(peer, to, text, |m, _, _| {
            if let Some(t) = m.to {
                to_nick = t;
            }
        })?;
        Ok((accepted, to_nick))
    }

    /// `broadcast` across the cluster.
    pub async fn broadcast(&self, peer: &Arc<Peer>, text: &str) -> Result<Accepted, ApiError> {
        let Some(from) = peer.nick() else {
            return self.hub.broadcast(peer, text, |_, _| {});
        };
        if !self.is_connected() {
            return self.hub.broadcast(peer, text, |_, _| {});
        }
        let ts = chat_api::now_ms();
        let event = Event::Broadcast {
            node: self.node.clone(),
            session: peer.id,
            from: from.to_string(),
            text: text.to_string(),
            ts,
        };
        let msg_id = self.publish(self.names.fan.clone(), event).await?;
        let recipients = self.hub.users().len().saturating_sub(1) + self.directory.user_count();
        Ok(Accepted {
            msg_id,
            ts,
            recipients,
        })
    }

    /// Puts a message in the stream behind everything this node published
    /// before it; its stream sequence is the message id.
    async fn publish(&self, subject: String, event: Event) -> Result<u64, ApiError> {
        let (ack_tx, ack_rx) = oneshot::channel();
        let queued = self.outgoing.send(Outgoing::Message {
            subject,
            event,
            ack: ack_tx,
        });
        if queued.await.is_err() {
            return Err(unavailable("the message was not sent"));
        }
        let ack = async {
            let pending = ack_rx
                .await
                .map_err(|_| "the publisher stopped".to_string())?;
            let pending = pending.map_err(|e| e.to_string())?;
            pending.await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(self.publish_timeout, ack).await {
            Ok(Ok(ack)) => Ok(ack.sequence),
            Ok(Err(error)) => {
                tracing::warn!(%error, "NATS did not store a message");
                Err(unavailable("the message was not sent"))
            }
            Err(_) => {
                tracing::warn!("NATS did not store a message within cluster.publish_timeout_ms");
                Err(unavailable("the message may not have been sent"))
            }
        }
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
