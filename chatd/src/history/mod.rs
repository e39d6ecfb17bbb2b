//! History: the durable message log and what is built on it (paging,
//! offline direct messages, remembered rooms, read markers, resuming).
//!
//! Where it sits in the flow of a message: the session reserves a slot in
//! the log writer's bounded queue, the hub assigns the id and queues the
//! message for its recipients, and, still under the room's lock, the entry
//! goes into the writer's queue. The writer ([`writer`]) commits batches
//! and then sends each sender its `sent`. The hub knows nothing of this:
//! it calls the recorder closure the session hands it.

pub mod sql;
pub mod store;
pub mod timed;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use chat_api::names::fold;
use chat_api::{ApiError, ErrorCode, SessionId};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::HistoryConfig;
use crate::hub::IdentityState;
use crate::message_ids::{MessageIds, BLOCK};
pub use store::{Cursor, Gap, LogEntry, MessageStore, Page, Retention, UnreadQuery};
pub use writer::{Ack, LogCommand};

/// The conversation key of broadcasts.
pub const BROADCAST_CONV: &str = "*";

/// The message log as the sessions use it.
pub struct History {
    pub store: Arc<dyn MessageStore>,
    log: mpsc::Sender<LogCommand>,
    pub config: HistoryConfig,
    /// Distinguishes this run's guests from earlier runs' (session ids
    /// start at 1 each run).
    boot: u32,
}

impl History {
    /// Starts the log writer and the pruning job.
    pub fn start(
        store: Arc<dyn MessageStore>,
        config: HistoryConfig,
        shutdown: CancellationToken,
    ) -> (Arc<History>, tokio::task::JoinHandle<()>) {
        let (log, queue) = mpsc::channel(config.queue);
        let writer = tokio::spawn(writer::run(store.clone(), queue, config.batch));
        tokio::spawn(prune_periodically(store.clone(), config.clone(), shutdown));
        let history = Arc::new(History {
            store,
            log,
            config,
            boot: rand_u32(),
        });
        (history, writer)
    }

    /// A slot in the writer's queue; waits (this sender only) while the
    /// disk is behind.
    pub async fn reserve(&self) -> Result<mpsc::Permit<'_, LogCommand>, ApiError> {
        self.log.reserve().await.map_err(|_| {
            ApiError::new(
                ErrorCode::INTERNAL,
                "the message log has stopped; the server is shutting down",
            )
        })
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) {
        let (done, committed) = oneshot::channel();
        if self.log.send(LogCommand::Flush(done)).await.is_ok() {
            let _ = committed.await;
        }
    }

    /// A party's key in direct conversations: the folded account name, or
    /// for a guest its session in this run.
    pub fn party_key(&self, session: SessionId, identity: &IdentityState) -> String {
        match &identity.account {
            Some(account) => fold(account),
            None => format!("~{:08x}.{session}", self.boot),
        }
    }

    /// The retention limits in the store's terms.
    pub fn retention(config: &HistoryConfig) -> Retention {
        Retention {
            max_age_ms: config.max_age_days.saturating_mul(24 * 3600 * 1000),
            max_per_room: config.max_messages_per_room,
            max_per_direct: config.max_messages_per_conversation,
        }
    }
}

/// The key of the direct conversation between two parties.
pub fn direct_conv(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a} {b}")
    } else {
        format!("{b} {a}")
    }
}

/// Loads the id reservation and keeps it ahead of use until shutdown.
pub async fn message_ids(
    store: Arc<dyn MessageStore>,
    shutdown: CancellationToken,
) -> Result<Arc<MessageIds>, store::HistoryError> {
    let last = store.reserved_ids().await?;
    let end = store.reserve_ids(BLOCK, last).await?;
    let ids = Arc::new(MessageIds::new(end - BLOCK, end));
    tracing::info!(
        first = end - BLOCK + 1,
        "message ids continue after the last reserved"
    );
    let keeper = ids.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = keeper.running_low() => {}
            }
            let after = keeper.last().max(keeper.limit());
            match store.reserve_ids(BLOCK, after).await {
                Ok(end) => keeper.add_block(end - BLOCK + 1, end),
                // The database closed under it at shutdown (see pruning).
                Err(_) if shutdown.is_cancelled() => return,
                Err(e) => {
                    tracing::error!(error = %e, "cannot reserve message ids; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(ids)
}

async fn prune_periodically(
    store: Arc<dyn MessageStore>,
    config: HistoryConfig,
    shutdown: CancellationToken,
) {
    let retention = History::retention(&config);
    let mut every = tokio::time::interval(Duration::from_secs(config.prune_interval_secs));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        // Each chunk of a purge is its own transaction: stopping between
        // two loses nothing, and the database may close right after.
        let pruned = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            pruned = store.prune(retention, crate::hub::now_ms()) => pruned,
        };
        match pruned {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "history pruned"),
            // Shutdown may cancel on another thread and close the database
            // in the middle of this task's poll, after its check above; the
            // prune then fails with "closed pool". A clean stop logs no
            // warning, so the cancellation is checked again.
            Err(_) if shutdown.is_cancelled() => return,
            Err(e) => tracing::warn!(error = %e, "history pruning failed; will retry"),
        }
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}
