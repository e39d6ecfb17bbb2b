//! One async lock per room name (striped), serialising each room's changes.
//!
//! A room's state lives in two places, the database and the hub, and every
//! change (create, accept, join, kick, ban, delete, ...) checks the database,
//! writes it, then updates the hub. The lock is held across those `.await`s
//! on purpose, so that no other change to the same room interleaves and the
//! two never disagree. This is safe because:
//!
//! * it is a `tokio::sync::Mutex`, which yields instead of blocking a worker
//!   thread, and whose guard is `Send`;
//! * a task holds at most one room lock at a time, so there is no lock order
//!   to get wrong and no deadlock;
//! * inside it there is only bounded work: a few SQLite statements (with the
//!   database's busy timeout) and hub calls that never wait.
//!
//! Locks are striped by a hash of the folded name, so memory is fixed however
//! many rooms exist; two rooms sharing a stripe merely take turns.

use std::hash::{BuildHasher, RandomState};

use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 64;

pub struct RoomLocks {
    hasher: RandomState,
    stripes: Box<[Mutex<()>]>,
}

impl RoomLocks {
    pub fn new() -> RoomLocks {
        RoomLocks {
            hasher: RandomState::new(),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Waits for the lock of the room with this folded name.
    pub async fn lock(&self, room_key: &str) -> MutexGuard<'_, ()> {
        let stripe = (self.hasher.hash_one(room_key) as usize) % STRIPES;
        self.stripes[stripe].lock().await
    }
}

impl Default for RoomLocks {
    fn default() -> Self {
        RoomLocks::new()
    }
}
