//! Runs password hashing off the async reactor, a bounded number at a time.
//!
//! A login storm must not take the CPU (or `memory_kib` per hash of memory)
//! from everyone else: at most `max_concurrent` hashes run on the blocking
//! pool at once, at most `max_waiting` requests wait for a slot, and the rest
//! are refused at once with `server_busy`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chat_api::Host;
use tokio::sync::{oneshot, Semaphore};

/// Why hashing work did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("too many logins are waiting; try again in a few seconds")]
    Busy,
    #[error("the hashing task failed")]
    Failed,
}

/// The limiter.
pub struct HashPool {
    host: Arc<dyn Host>,
    /// One permit per hash allowed to run.
    slots: Arc<Semaphore>,
    /// Requests waiting for a permit.
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// Decrements the waiting count however the wait ends (also if the caller's
/// future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    pub fn new(host: Arc<dyn Host>, max_concurrent: usize, max_waiting: usize) -> HashPool {
        HashPool {
            host,
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// Runs `work` on the host's blocking pool once a slot is free. The slot
    /// is held until `work` returns, even if the caller stops waiting, so
    /// the bound holds for the CPU, not just for callers.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let permit = {
            let waiting = self.waiting.fetch_add(1, Ordering::AcqRel);
            let _waiting = Waiting(&self.waiting);
            if waiting >= self.max_waiting && self.slots.available_permits() == 0 {
                return Err(PoolError::Busy);
            }
            self.slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| PoolError::Failed)?
        };
        let (done, result) = oneshot::channel();
        self.host.spawn_blocking(Box::new(move || {
            let value = work();
            drop(permit);
            let _ = done.send(value);
        }));
        // The sender is dropped without sending only if `work` panicked.
        result.await.map_err(|_| PoolError::Failed)
    }
}
