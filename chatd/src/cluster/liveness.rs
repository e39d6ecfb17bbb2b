//! Which nodes are alive: every node publishes a heartbeat each
//! `heartbeat_ms` on `<prefix>.heartbeat`; one not heard from within
//! `node_timeout_ms` is dropped, its users leaving this node's rooms and
//! lists. A node heard of for the first time (or restarted) is asked on
//! `<prefix>.state.<name>` to publish its whole state on the stream. While
//! this node's own link is down it judges nobody: the silence is its own.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::directory::Seen;
use super::inbound::tell;
use super::outbound::{encode, state_pages};
use super::wire::{Heartbeat, NodeState};
use super::Cluster;

/// Subscribes and starts the heartbeat, listener, state and link tasks.
pub async fn start(
    cluster: &Arc<Cluster>,
    link: watch::Receiver<bool>,
    history: Option<Arc<crate::history::History>>,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let client = &cluster.client;
    let heartbeats = client
        .subscribe(cluster.names.heartbeat.clone())
        .await
        .map_err(|e| e.to_string())?;
    let requests = client
        .subscribe(cluster.names.state(&cluster.node))
        .await
        .map_err(|e| e.to_string())?;
    let flushes = client
        .subscribe(cluster.names.flush(&cluster.node))
        .await
        .map_err(|e| e.to_string())?;
    let run = |task| {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = task => {}
            }
        });
    };
    run(Box::pin(beat(cluster.clone())) as futures_util::future::BoxFuture<'static, ()>);
    run(Box::pin(listen(cluster.clone(), heartbeats)));
    run(Box::pin(answer(cluster.clone(), requests)));
    run(Box::pin(watch_link(cluster.clone(), link)));
    run(Box::pin(super::flush::answer(
        cluster.clone(),
        history,
        flushes,
    )));
    Ok(())
}

/// Sends this node's heartbeat and drops the nodes gone silent.
async fn beat(cluster: Arc<Cluster>) {
    let heartbeat = encode(&Heartbeat {
        node: cluster.node.clone(),
        boot: cluster.boot,
    });
    let timeout = Duration::from_millis(cluster.config.node_timeout_ms);
    let mut ticks = tokio::time::interval(Duration::from_millis(cluster.config.heartbeat_ms));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !cluster.is_connected() {
            continue;
        }
        let _ = cluster
            .client
            .publish(cluster.names.heartbeat.clone(), heartbeat.clone())
            .await;
        for (node, notices) in cluster.directory.expire(Instant::now(), timeout) {
            tracing::warn!(
                node,
                users_notified = notices.len(),
                "a cluster node stopped sending heartbeats; its users are gone"
            );
            tell(&cluster, notices);
        }
    }
}

/// Records the others' heartbeats; asks a new node for its state.
async fn listen(cluster: Arc<Cluster>, mut heartbeats: async_nats::Subscriber) {
    while let Some(message) = heartbeats.next().await {
        let Ok(beat) = chat_api::serde_json::from_slice::<Heartbeat>(&message.payload) else {
            continue;
        };
        if beat.node == cluster.node {
            continue;
        }
        let (seen, notices) = cluster
            .directory
            .heartbeat(&beat.node, beat.boot, Instant::now());
        tell(&cluster, notices);
        if seen == Seen::Unknown {
            tracing::info!(node = beat.node, "a cluster node is up");
            tokio::spawn(fetch_state(cluster.clone(), beat.node));
        }
    }
}

/// Asks `node` to publish its whole state. It comes on the stream, in
/// order with that node's events: a state sent straight back could be
/// overtaken by events published after it was taken and then undo them
/// (a member who joined a room just then would vanish from it here).
async fn fetch_state(cluster: Arc<Cluster>, node: String) {
    let asked = cluster
        .client
        .request(cluster.names.state(&node), bytes::Bytes::new());
    let answer = match tokio::time::timeout(Duration::from_secs(5), asked).await {
        Ok(Ok(reply)) => chat_api::serde_json::from_slice::<NodeState>(&reply.payload)
            .map_err(|e| format!("unreadable answer: {e}")),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 5 s".to_string()),
    };
    match answer {
        Ok(state) if state.on_stream => {}
        // A node of the previous version, which sends its state only here.
        Ok(state) => {
            let notices = cluster.directory.replace(&state);
            tell(&cluster, notices);
        }
        Err(error) => {
            // Forgotten, so that its next heartbeat asks again.
            tracing::warn!(%error, node, "a cluster node did not answer a request for its state; asking again at its next heartbeat");
            cluster.directory.forget(&node);
        }
    }
}

/// Answers other nodes' requests for this node's state: the publisher
/// puts it on the stream (once for requests that come together). The
/// answer carries its first page too, for nodes of the previous version.
async fn answer(cluster: Arc<Cluster>, mut requests: async_nats::Subscriber) {
    while let Some(request) = requests.next().await {
        cluster.resync.notify_one();
        let Some(reply) = request.reply else { continue };
        // There is always a first page, if only an empty one.
        let mut first = state_pages(&cluster).swap_remove(0);
        first.on_stream = true;
        if let Err(error) = cluster.client.publish(reply, encode(&first)).await {
            tracing::debug!(%error, "the answer to a state request was not sent");
        }
    }
}

/// Follows the link to NATS: degraded while it is down; when it is back,
/// the others' silence is forgiven and this node's state republished.
async fn watch_link(cluster: Arc<Cluster>, mut link: watch::Receiver<bool>) {
    while link.changed().await.is_ok() {
        let connected = *link.borrow_and_update();
        if !connected {
            if !cluster.degraded.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "lost the link to NATS: serving this node's users only until it is back"
                );
            }
        } else if cluster.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!("the link to NATS is back");
            cluster.directory.touch_all(Instant::now());
            cluster.resync.notify_one();
        }
    }
}
