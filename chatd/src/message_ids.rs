//! Message ids: handed out from memory on the hot path (one atomic add),
//! unique and increasing across restarts because ids are used only inside
//! a block that was first reserved in the database.
//!
//! The hub takes ids; a reserver task (see `history::message_ids`) keeps
//! the reservation ahead of them. After a crash, the next run starts past
//! everything reserved, so an id that reached a client is never handed out
//! again, even if its message was never stored.
//!
//! Several servers may share one database (PostgreSQL): each claims blocks
//! atomically, so no two hand out the same id. A server's next block
//! usually continues its current one; when another server claimed the ids
//! in between, this one jumps over them once its block is used up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

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
    /// The first id of the block in use.
    start: AtomicU64,
    /// Even while `last`, `start` and `limit` are stable; odd while a jump
    /// to the next block rewrites them (readers then try again).
    generation: AtomicU64,
    /// A block claimed by the reserver that does not continue the current
    /// one (another server claimed the ids in between): used once the
    /// current one is.
    next_block: Mutex<Option<(u64, u64)>>,
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
            start: AtomicU64::new(last.saturating_add(1)),
            generation: AtomicU64::new(0),
            next_block: Mutex::new(None),
            low: Notify::new(),
            warned: AtomicBool::new(false),
        }
    }

    /// The next id: one atomic add, unless the block is used up.
    pub fn next(&self) -> u64 {
        loop {
            let generation = self.generation.load(Ordering::SeqCst);
            let id = self.last.fetch_add(1, Ordering::SeqCst) + 1;
            let start = self.start.load(Ordering::SeqCst);
            let limit = self.limit.load(Ordering::SeqCst);
            if generation % 2 == 1 || self.generation.load(Ordering::SeqCst) != generation {
                // Taken while a jump rewrote the block: maybe from the old
                // one. Ids need not be dense; take another.
                std::hint::spin_loop();
                continue;
            }
            if limit == u64::MAX || (id >= start && id + BLOCK / 2 <= limit) {
                return id;
            }
            self.low.notify_one();
            if id <= limit && id >= start {
                return id;
            }
            if self.jump(limit) {
                continue;
            }
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    id,
                    limit,
                    "message ids are used faster than the database reserves them; after a crash now, ids could repeat"
                );
            }
            return id;
        }
    }

    /// Moves to the next claimed block once the current one (ending at
    /// `used_up`) is used up; false if none is claimed yet.
    fn jump(&self, used_up: u64) -> bool {
        let mut next = self.next_block.lock().unwrap_or_else(|e| e.into_inner());
        if self.limit.load(Ordering::SeqCst) != used_up {
            return true; // another caller jumped already
        }
        let Some((start, end)) = next.take() else {
            return false;
        };
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.start.store(start, Ordering::SeqCst);
        self.last.fetch_max(start - 1, Ordering::SeqCst);
        self.limit.store(end, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        true
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

    /// Records a block claimed in the database (ids `start..=end`), called
    /// by the reserver: it extends the current block if it continues it,
    /// else it is used once the current one is.
    pub fn add_block(&self, start: u64, end: u64) {
        if start <= self.limit().saturating_add(1) || start <= self.last().saturating_add(1) {
            self.limit.fetch_max(end, Ordering::SeqCst);
        } else {
            *self.next_block.lock().unwrap_or_else(|e| e.into_inner()) = Some((start, end));
        }
        self.warned.store(false, Ordering::Relaxed);
    }

    /// Whether the reserver should claim another block: the current one is
    /// half used and no claimed block waits.
    fn needs_block(&self) -> bool {
        self.last() + BLOCK / 2 > self.limit()
            && self
                .next_block
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_none()
    }

    /// Waits until the current block is half used and no claimed block
    /// waits.
    pub async fn running_low(&self) {
        loop {
            if self.needs_block() {
                return;
            }
            self.low.notified().await
        }
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
        ids.add_block(5, 6);
        assert_eq!(ids.limit(), 10 + BLOCK, "a reservation never shrinks");
    }

    #[test]
    fn a_block_that_does_not_continue_is_jumped_to_when_the_current_one_is_used() {
        // This server holds 1..=BLOCK; another claimed the next block; this
        // one got the block after.
        let ids = MessageIds::new(0, BLOCK);
        ids.add_block(2 * BLOCK + 1, 3 * BLOCK);
        assert_eq!(ids.limit(), BLOCK, "not contiguous: kept for later");
        let mut last = 0;
        for _ in 0..BLOCK {
            last = ids.next();
        }
        assert_eq!(last, BLOCK);
        assert_eq!(
            ids.next(),
            2 * BLOCK + 1,
            "the other server's ids are skipped"
        );
        assert_eq!(ids.next(), 2 * BLOCK + 2);
        // A block that continues the current one just extends it.
        ids.add_block(3 * BLOCK + 1, 4 * BLOCK);
        assert_eq!(ids.limit(), 4 * BLOCK);
    }

    #[test]
    fn concurrent_callers_crossing_a_jump_never_take_the_skipped_ids() {
        let ids = std::sync::Arc::new(MessageIds::new(0, BLOCK));
        ids.add_block(5 * BLOCK + 1, 6 * BLOCK);
        // 1.5 blocks' worth of ids: all fit in the two blocks.
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let ids = ids.clone();
                std::thread::spawn(move || (0..BLOCK / 2).map(|_| ids.next()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count, "no id twice");
        assert!(
            all.iter()
                .all(|&id| id <= BLOCK || (5 * BLOCK + 1..=6 * BLOCK).contains(&id)),
            "only ids of this server's blocks"
        );
    }
}
