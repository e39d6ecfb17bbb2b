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

#[cfg(test)]
mod tests {
    use super::*;
    use chat_api::{ApiError, BoxFuture, ErrorCode, Payload, RoomInfo, SessionId};
    use std::path::Path;
    use std::time::Duration;

    /// A host with only the runtime services; routing is never used here.
    struct RuntimeHost(tokio::runtime::Handle);

    impl Host for RuntimeHost {
        fn send_to_session(&self, _: SessionId, _: Payload) -> bool {
            false
        }
        fn send_to_user(&self, _: &str, _: Payload) -> Result<(), ApiError> {
            Ok(())
        }
        fn send_to_room(&self, _: &str, _: Payload) -> Result<usize, ApiError> {
            Ok(0)
        }
        fn broadcast(&self, _: Payload) -> usize {
            0
        }
        fn users(&self) -> Vec<String> {
            Vec::new()
        }
        fn rooms(&self) -> Vec<RoomInfo> {
            Vec::new()
        }
        fn room_members(&self, _: &str) -> Option<Vec<String>> {
            None
        }
        fn session_of(&self, _: &str) -> Option<SessionId> {
            None
        }
        fn join_room(&self, _: SessionId, r: &str) -> Result<(String, Vec<String>), ApiError> {
            Ok((r.to_string(), Vec::new()))
        }
        fn leave_room(&self, _: SessionId, _: &str, _: Option<&str>) -> Result<(), ApiError> {
            Ok(())
        }
        fn close_room(&self, _: &str, _: &str) {}
        fn disconnect(&self, _: SessionId, _: ErrorCode, _: &str) {}
        fn next_message_id(&self) -> (u64, u64) {
            (0, 0)
        }
        fn spawn(&self, task: BoxFuture<()>) {
            self.0.spawn(task);
        }
        fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send + 'static>) {
            self.0.spawn_blocking(work);
        }
        fn sleep(&self, duration: Duration) -> BoxFuture<()> {
            Box::pin(tokio::time::sleep(duration))
        }
        fn data_dir(&self) -> &Path {
            Path::new(".")
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_a_bounded_number_at_once_and_refuses_beyond_the_queue() {
        let host = Arc::new(RuntimeHost(tokio::runtime::Handle::current()));
        let pool = Arc::new(HashPool::new(host, 1, 1));
        // The first job holds the only slot until released.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel();
        let first = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    let _ = started_tx.send(());
                    held.recv().ok();
                    1
                })
                .await
            })
        };
        started.await.unwrap();
        // The second waits for it (the queue holds one)...
        let second = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| 2).await })
        };
        tokio::time::timeout(Duration::from_secs(10), async {
            while pool.waiting.load(Ordering::Acquire) == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the second job queues");
        // ...and a third is refused at once.
        assert_eq!(pool.run(|| 3).await, Err(PoolError::Busy));
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(second.await.unwrap(), Ok(2));
        // A panicking job is an error, and its slot is freed.
        assert_eq!(
            pool.run(|| -> i32 { panic!("boom") }).await,
            Err(PoolError::Failed)
        );
        assert_eq!(pool.run(|| 4).await, Ok(4));
    }
}
