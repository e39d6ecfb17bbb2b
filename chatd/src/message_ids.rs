//! Message ids: handed out from memory on the hot path (one atomic add),
//! unique and increasing across restarts because ids are used only inside
//! a block that was first reserved in the database.
//!
//! The hub takes ids; a reserver task (see `history::reserve_ids`) keeps
//! the reservation ahead of them. After a crash, the next run starts past
//! everything reserved, so an id that reached a client is never handed out
//! again, even if its message was never stored.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;

/// Ids reserved at a time. A restart skips at most this many.
pub const BLOCK: u64 = 1 << 16;

/// The id allocator shared by the hub and the reserver.
pub struct MessageIds {
    /// The last id handed out.
    last: AtomicU64,
    /// The highest id that may be handed out (reserved in the database);
    /// `u64::MAX` when nothing persists ids.
    limit: AtomicU64,
    /// Wakes the reserver when half of the current block is used.
    low: Notify,
    /// Logged once per shortage, so a stalled database does not flood logs.
    warned: AtomicBool,
}

impl MessageIds {
    /// Ids starting after `last`, with nothing persisted (no database).
    pub fn unpersisted(last: u64) -> MessageIds {
        MessageIds::new(last, u64::MAX)
    }

    /// Ids starting after `last`, usable up to `limit`.
    pub fn new(last: u64, limit: u64) -> MessageIds {
        MessageIds {
            last: AtomicU64::new(last),
            limit: AtomicU64::new(limit),
            low: Notify::new(),
            warned: AtomicBool::new(false),
        }
    }

    /// The next id.
    pub fn next(&self) -> u64 {
        let id = self.last.fetch_add(1, Ordering::Relaxed) + 1;
        let limit = self.limit.load(Ordering::Relaxed);
        if limit != u64::MAX && id + BLOCK / 2 > limit {
            self.low.notify_one();
            if id > limit && !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    id,
                    limit,
                    "message ids are used faster than the database reserves them; after a crash now, ids could repeat"
                );
            }
        }
        id
    }

    /// The last id handed out.
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    /// Counts `id`, handed out elsewhere (the cluster's stream), as used:
    /// `last` never falls behind an id a client has seen.
    pub fn observe(&self, id: u64) {
        self.last.fetch_max(id, Ordering::Relaxed);
    }

    /// The highest id reserved.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Records a new reservation (called by the reserver after it is stored).
    pub fn extend(&self, limit: u64) {
        self.limit.fetch_max(limit, Ordering::Relaxed);
        self.warned.store(false, Ordering::Relaxed);
    }

    /// Waits until the current block is half used.
    pub async fn running_low(&self) {
        if self.last() + BLOCK / 2 > self.limit() {
            return;
        }
        self.low.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_running_low_is_signalled() {
        let ids = MessageIds::new(10, 10 + BLOCK);
        assert_eq!(ids.next(), 11);
        assert_eq!(ids.next(), 12);
        assert_eq!(ids.last(), 12);
        ids.extend(5);
        assert_eq!(ids.limit(), 10 + BLOCK, "a reservation never shrinks");
    }
}
