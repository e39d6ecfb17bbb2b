//! Reading the stream: each node has two ordered consumers, one for what
//! goes to every node (`<prefix>.fan`) and one for its own direct messages
//! (`<prefix>.node.<name>`), and hands each entry to the hub in stream
//! order. A consumer lost with the link is recreated after the last
//! sequence it delivered, so nothing is skipped or repeated.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{push, DeliverPolicy};
use async_nats::jetstream::stream::Stream;
use chat_api::{Message, MessageKind, Payload, ServerFrame};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::directory::Notice;
use super::wire::Event;
use super::Cluster;

type Consumer = async_nats::jetstream::consumer::Consumer<push::OrderedConfig>;

/// Creates both consumers (so nothing published from now on is missed)
/// and starts reading them.
pub async fn start(
    cluster: &Arc<Cluster>,
    stream: &Stream,
    shutdown: CancellationToken,
) -> Result<(), String> {
    for filter in [cluster.names.fan.clone(), cluster.names.node(&cluster.node)] {
        let consumer = create(cluster, stream, &filter, 0).await?;
        tokio::spawn(read_loop(
            cluster.clone(),
            stream.clone(),
            filter,
            consumer,
            shutdown.clone(),
        ));
    }
    Ok(())
}

async fn create(
    cluster: &Cluster,
    stream: &Stream,
    filter: &str,
    after: u64,
) -> Result<Consumer, String> {
    let deliver_policy = match after {
        0 => DeliverPolicy::New,
        seq => DeliverPolicy::ByStartSequence {
            start_sequence: seq + 1,
        },
    };
    stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: cluster.client.new_inbox(),
            filter_subject: filter.to_string(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())
}

async fn read_loop(
    cluster: Arc<Cluster>,
    stream: Stream,
    filter: String,
    first: Consumer,
    shutdown: CancellationToken,
) {
    let mut last = 0;
    let mut consumer = Some(first);
    let is_fan = filter == cluster.names.fan;
    loop {
        let current = match consumer.take() {
            Some(c) => c,
            None => match create(&cluster, &stream, &filter, last).await {
                Ok(c) => c,
                Err(error) => {
                    tracing::warn!(%error, filter, "cannot read the cluster's stream; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        let mut messages = match current.messages().await {
            Ok(m) => m,
            Err(error) => {
                tracing::warn!(%error, filter, "cannot read the cluster's stream; retrying");
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    let Ok(info) = message.info() else { continue };
                    last = info.stream_sequence;
                    handle(&cluster, last, &message.payload);
                    if is_fan {
                        // Rooms created here from now on start after it.
                        cluster.hub.sequenced(last);
                    }
                }
                // The ordered consumer recovers by itself (it recreates
                // itself after the last sequence it delivered).
                Some(Err(error)) => tracing::debug!(%error, filter, "the cluster's stream"),
                None => break,
            }
        }
    }
}

/// One entry of the stream, `seq` being its message id.
fn handle(cluster: &Cluster, seq: u64, payload: &[u8]) {
    let event: Event = match chat_api::serde_json::from_slice(payload) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, seq, "an unreadable entry in the cluster's stream was skipped");
            return;
        }
    };
    let mine = event.node() == cluster.node;
    let hub = &cluster.hub;
    hub.observe_message_id(seq);
    match event {
        Event::Say {
            session,
            from,
            room,
            text,
            ts,
            ..
        } => {
            let mut message = Message::new(seq, ts, MessageKind::Room, from, text);
            message.room = Some(room.clone());
            let payload = Payload::encode(&ServerFrame::Message(message));
            hub.deliver_sequenced(&room, seq, &payload, mine.then_some(session));
        }
        Event::Broadcast {
            session,
            from,
            text,
            ts,
            ..
        } => {
            let message = Message::new(seq, ts, MessageKind::Broadcast, from, text);
            let payload = Payload::encode(&ServerFrame::Message(message));
            hub.deliver_to_all_but(&payload, mine.then_some(session));
        }
        Event::Direct {
            from, to, text, ts, ..
        } => {
            let mut message = Message::new(seq, ts, MessageKind::Direct, from, text);
            message.to = Some(to.clone());
            hub.deliver_to_nick(&to, Payload::encode(&ServerFrame::Message(message)));
        }
        // This node's own changes: its sessions saw them from the hub.
        _ if mine => {}
        Event::Relay { op, node } => super::relay::execute(cluster, &node, op),
        other => tell(cluster, cluster.directory.apply(&other)),
    }
}

/// Delivers presence changes of other nodes' users to this node's rooms.
pub fn tell(cluster: &Cluster, notices: Vec<Notice>) {
    for n in notices {
        cluster.hub.deliver_remote_presence(
            &n.room,
            n.event,
            &n.nick,
            n.new_nick.as_deref(),
            n.reason.as_deref(),
        );
    }
}
