//! What this node publishes, in one order: the hub's changes (from the
//! observer, which must not wait) and chat messages (whose senders wait for
//! the stream's acknowledgement) share one bounded queue and one task, so
//! a `join` reaches the stream before the message its session says next.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use async_nats::jetstream;
use async_nats::jetstream::context::{PublishAckFuture, PublishError};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::wire::{Event, NodeState, UserState};
use super::Cluster;
use crate::hub::{HubEvent, HubObserver};

/// Events and messages waiting to be published. Past this, hub events are
/// dropped and the node's whole state is published instead.
pub const QUEUE: usize = 16_384;

pub enum Outgoing {
    /// An event to a subject (a hub change to every node, a request to
    /// one); its acknowledgement is checked, not awaited.
    To { subject: String, event: Event },
    /// A chat message; `ack` gets the pending acknowledgement.
    Message {
        subject: String,
        event: Event,
        ack: oneshot::Sender<Result<PublishAckFuture, PublishError>>,
    },
}

/// Turns the hub's events into the stream's.
pub struct Observer {
    cluster: Weak<Cluster>,
    node: String,
    /// `<prefix>.fan`, where every hub change goes.
    fan: String,
    queue: mpsc::Sender<Outgoing>,
    overflowed: Arc<AtomicBool>,
}

impl Observer {
    pub fn new(cluster: &Arc<Cluster>) -> Observer {
        Observer {
            cluster: Arc::downgrade(cluster),
            node: cluster.node.clone(),
            fan: cluster.names.fan.clone(),
            queue: cluster.outgoing.clone(),
            overflowed: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl HubObserver for Observer {
    fn notify(&self, event: HubEvent) {
        let node = self.node.clone();
        let event = match event {
            HubEvent::Online { session, nick } => Event::Online {
                node,
                session,
                nick,
            },
            HubEvent::Renamed { session, nick } => Event::Renamed {
                node,
                session,
                nick,
            },
            HubEvent::Joined { session, room } => Event::Joined {
                node,
                session,
                room,
            },
            HubEvent::Left {
                session,
                room,
                event,
                reason,
            } => Event::Left {
                node,
                session,
                room,
                event,
                reason,
            },
            HubEvent::Offline { session } => {
                if let Some(cluster) = self.cluster.upgrade() {
                    cluster.session_gone(session);
                }
                Event::Offline { node, session }
            }
        };
        let subject = self.fan.clone();
        if self
            .queue
            .try_send(Outgoing::To { subject, event })
            .is_err()
        {
            // Full (NATS far behind): the others will get the whole state.
            if !self.overflowed.swap(true, Ordering::Relaxed) {
                tracing::warn!("the cluster's outgoing queue is full; this node will republish its whole state");
            }
            if let Some(cluster) = self.cluster.upgrade() {
                cluster.resync.notify_one();
            }
        }
    }
}

/// Starts the publishing task and the task that checks what NATS stored.
pub fn start(
    cluster: &Arc<Cluster>,
    js: jetstream::Context,
    queue: mpsc::Receiver<Outgoing>,
    shutdown: CancellationToken,
) {
    let (acks, pending) = mpsc::channel(QUEUE);
    tokio::spawn(check_acks(cluster.clone(), pending, shutdown));
    // Not stopped by the shutdown token: the departures of this node's
    // sessions, and then its leaving, are published at shutdown.
    tokio::spawn(publish_loop(cluster.clone(), js, queue, acks));
}

async fn publish_loop(
    cluster: Arc<Cluster>,
    js: jetstream::Context,
    mut queue: mpsc::Receiver<Outgoing>,
    acks: mpsc::Sender<PublishAckFuture>,
) {
    loop {
        tokio::select! {
            _ = cluster.resync.notified() => {
                // The events of changes already made go first, so that the
                // state comes after every event of a change it shows (one
                // of them after it would only repeat it; see `directory`).
                for _ in 0..queue.len() {
                    match queue.try_recv() {
                        Ok(item) => publish(&cluster, &js, &acks, item).await,
                        Err(_) => break,
                    }
                }
                for page in state_pages(&cluster) {
                    let subject = cluster.names.fan.clone();
                    let event = Event::State(page);
                    publish(&cluster, &js, &acks, Outgoing::To { subject, event }).await;
                }
            }
            item = queue.recv() => match item {
                Some(item) => publish(&cluster, &js, &acks, item).await,
                None => return,
            },
        }
    }
}

async fn publish(
    cluster: &Arc<Cluster>,
    js: &jetstream::Context,
    acks: &mpsc::Sender<PublishAckFuture>,
    item: Outgoing,
) {
    let (subject, event) = match item {
        Outgoing::Message {
            subject,
            event,
            ack,
        } => {
            let _ = ack.send(js.publish(subject, encode(&event)).await);
            return;
        }
        Outgoing::To { subject, event } => (subject, event),
    };
    // Not waited for here (that would hold up the messages behind);
    // `check_acks` does, in order.
    let published = js.publish(subject, encode(&event)).await;
    let checked = published.map(|ack| acks.try_send(ack).is_ok());
    if !matches!(checked, Ok(true)) {
        lost(cluster);
    }
}

/// Waits for NATS to confirm each event in turn; one it did not store
/// (NATS restarting, its stream not back yet) means the others may now
/// hold a wrong picture of this node, so its whole state follows.
async fn check_acks(
    cluster: Arc<Cluster>,
    mut pending: mpsc::Receiver<PublishAckFuture>,
    shutdown: CancellationToken,
) {
    loop {
        let ack = tokio::select! {
            _ = shutdown.cancelled() => return,
            ack = pending.recv() => match ack {
                Some(ack) => ack,
                None => return,
            },
        };
        if ack.await.is_err() {
            lost(&cluster);
        }
    }
}

/// An event did not reach the stream: publish the whole state once NATS
/// can take it (retried every half second while it cannot).
fn lost(cluster: &Arc<Cluster>) {
    if cluster
        .resync_pending
        .swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        return;
    }
    tracing::debug!("a cluster event was not stored; this node's state will be republished");
    let cluster = cluster.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        cluster
            .resync_pending
            .store(false, std::sync::atomic::Ordering::Relaxed);
        cluster.resync.notify_one();
    });
}

/// This node's sessions with a nickname, and their rooms, in pages that
/// each fit in one NATS message.
pub fn state_pages(cluster: &Cluster) -> Vec<NodeState> {
    let state = NodeState {
        node: cluster.node.clone(),
        boot: cluster.boot,
        users: cluster
            .hub
            .local_users()
            .into_iter()
            .map(|u| UserState {
                session: u.session,
                nick: u.nick,
                rooms: u.rooms,
            })
            .collect(),
        part: 0,
        more: false,
        on_stream: false,
    };
    let max_payload = match cluster.client.server_info().max_payload {
        // Not told yet: NATS's default.
        0 => 1 << 20,
        max => max,
    };
    super::pages::split(state, max_payload)
}

pub fn encode<T: serde::Serialize>(value: &T) -> bytes::Bytes {
    chat_api::serde_json::to_vec(value)
        .expect("cluster events serialise")
        .into()
}
