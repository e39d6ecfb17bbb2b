//! The cluster's store barrier. A login's catch-up on one node reads the
//! shared message log up to the ids it saw live; a message another node
//! sent may be in the stream (so its id was seen) but not yet stored by
//! its sender's node. Before reading, the catching-up node asks every
//! other node to flush (`<prefix>.flush.<node>`): each waits until every
//! message it had handed to NATS when asked is in its log queue, then for
//! its log writer to store the queue. Any message with an id this node has
//! seen was handed to NATS before the question was asked, so it is stored
//! once every answer is in.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;

use super::Cluster;
use crate::history::History;

/// How long a catch-up waits for another node's answer.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

/// Messages handed to NATS whose log entry is not queued yet, numbered in
/// the order they were handed over.
#[derive(Default)]
pub struct InFlight {
    state: Mutex<(u64, BTreeSet<u64>)>,
    changed: Notify,
}

/// One message in flight; done when dropped (queued for the log, or
/// failed).
pub struct Flight<'a> {
    set: &'a InFlight,
    number: u64,
}

impl InFlight {
    /// Marks a message as on its way.
    pub fn begin(&self) -> Flight<'_> {
        let mut state = self.state.lock().unwrap();
        let number = state.0;
        state.0 += 1;
        state.1.insert(number);
        Flight { set: self, number }
    }

    /// Waits until every message begun before this call is done.
    async fn settle(&self) {
        let target = self.state.lock().unwrap().0;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let pending_before = self
                .state
                .lock()
                .unwrap()
                .1
                .first()
                .is_some_and(|first| *first < target);
            if !pending_before {
                return;
            }
            changed.await;
        }
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.set.state.lock().unwrap().1.remove(&self.number);
        self.set.changed.notify_waiters();
    }
}

impl Cluster {
    /// Asks every other node to store what it sent (see the module's doc);
    /// a node that does not answer in time is logged and not waited for.
    pub async fn flush_others(&self) {
        let asks = self.directory.nodes().into_iter().map(|node| async move {
            let asked = self.client.request(self.names.flush(&node), bytes::Bytes::new());
            match tokio::time::timeout(FLUSH_TIMEOUT, asked).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, node, "a node did not confirm its messages are stored; a catch-up may miss its latest"),
                Err(_) => tracing::warn!(node, "a node did not confirm within 3 s that its messages are stored; a catch-up may miss its latest"),
            }
        });
        futures_util::future::join_all(asks).await;
    }
}

/// Answers the other nodes' flush requests.
pub async fn answer(
    cluster: Arc<Cluster>,
    history: Option<Arc<History>>,
    mut requests: async_nats::Subscriber,
) {
    while let Some(request) = requests.next().await {
        let Some(reply) = request.reply else { continue };
        let cluster = cluster.clone();
        let history = history.clone();
        tokio::spawn(async move {
            cluster.in_flight.settle().await;
            if let Some(history) = &history {
                history.flush().await;
            }
            let _ = cluster.client.publish(reply, bytes::Bytes::new()).await;
        });
    }
}
