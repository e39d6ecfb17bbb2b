//! Keeps the server responsive while a plugin call blocks its worker thread.
//!
//! Tokio's multi-thread runtime polls the I/O and timer driver only from a
//! worker that goes idle. When one worker is stuck inside a blocking poll
//! and the other workers were asleep (waiting on the scheduler's condition
//! variable rather than on the driver), nobody polls the driver: no socket
//! readiness and no timer reaches any task, so every session waits for the
//! blocking call to end.
//!
//! A plugin call marks its thread's [`Slot`] busy for the length of each
//! poll (two thread-local stores, no shared cache line). One process-wide
//! watch thread looks at the slots every [`TICK`]; a slot busy with the same
//! poll on two looks in a row is stalled, and the watch spawns an empty task
//! on that runtime. Spawning from outside the runtime wakes a sleeping
//! worker; that worker runs the empty task, finds nothing else to do, and
//! parks on the driver, which is free: from then on it delivers readiness
//! and timers, and steals the queued work of the stuck worker. Sessions
//! that are not waiting for the blocking call go on within a few ticks.
//!
//! An idle server costs the watch nothing: after [`IDLE_AFTER`] without any
//! plugin poll it parks, and the next poll to start wakes it (a flag read
//! per poll; the wake-up itself only on that transition).
//!
//! What it cannot do: give back a worker while *every* worker is blocked.
//! `runtime.worker_threads` bounds how many blocking calls the server
//! survives at once (docs/plugins.md).

use std::cell::OnceCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

/// How often the watch thread looks; a stalled poll is found within two.
pub const TICK: Duration = Duration::from_millis(2);

/// No plugin poll for this long and the watch thread parks until one.
pub const IDLE_AFTER: Duration = Duration::from_millis(100);

/// The watch thread is parked (or about to be): a starting poll wakes it.
static PARKED: AtomicBool = AtomicBool::new(false);

/// The watch thread, for waking it.
static WATCHER: OnceLock<std::thread::Thread> = OnceLock::new();

/// One worker thread's plugin polls: an odd count while a poll runs.
struct Slot {
    polls: AtomicU64,
    runtime: tokio::runtime::Handle,
}

thread_local! {
    /// This thread's slot; `None` off a Tokio runtime.
    static SLOT: OnceCell<Option<Arc<Slot>>> = const { OnceCell::new() };
}

/// Every slot the watch thread looks at (dropped slots are pruned).
fn slots() -> &'static Mutex<Vec<Weak<Slot>>> {
    static SLOTS: OnceLock<Mutex<Vec<Weak<Slot>>>> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let watcher = std::thread::Builder::new()
            .name("chatd-stall-watch".into())
            .spawn(watch)
            .expect("cannot start the stall watch thread");
        let _ = WATCHER.set(watcher.thread().clone());
        Mutex::new(Vec::new())
    })
}

/// Marks this thread busy with a plugin poll until the guard drops.
pub fn busy() -> Busy {
    SLOT.with(|cell| {
        if let Some(slot) = cell.get_or_init(register) {
            // Only this thread writes its slot: a plain load and store suffice.
            let n = slot.polls.load(Ordering::Relaxed);
            // SeqCst with the watch's own pair (set PARKED, then read the
            // slots): either it sees this poll or this poll sees it parked.
            slot.polls.store(n | 1, Ordering::SeqCst);
            if PARKED.load(Ordering::SeqCst) {
                if let Some(watcher) = WATCHER.get() {
                    watcher.unpark();
                }
            }
        }
    });
    Busy(std::marker::PhantomData)
}

/// Ends the mark set by [`busy`] (also when the poll panics). Not `Send`:
/// it is dropped on the thread whose slot it marked.
pub struct Busy(std::marker::PhantomData<*const ()>);

impl Drop for Busy {
    fn drop(&mut self) {
        SLOT.with(|cell| {
            if let Some(Some(slot)) = cell.get() {
                let n = slot.polls.load(Ordering::Relaxed);
                slot.polls.store((n | 1) + 1, Ordering::Release);
            }
        });
    }
}

/// This thread's slot, if it is a worker of a Tokio runtime.
fn register() -> Option<Arc<Slot>> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let slot = Arc::new(Slot {
        polls: AtomicU64::new(0),
        runtime,
    });
    slots()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(&slot));
    Some(slot)
}

/// The watch thread: runs for the life of the process.
fn watch() {
    /// A slot as seen at the previous look.
    struct Seen {
        slot: Weak<Slot>,
        polls: u64,
        woke: bool,
    }
    let mut seen: Vec<Seen> = Vec::new();
    let mut quiet_looks = 0u32;
    let idle_looks = (IDLE_AFTER.as_millis() / TICK.as_millis()).max(1) as u32;
    loop {
        if quiet_looks >= idle_looks {
            PARKED.store(true, Ordering::SeqCst);
            // A poll that started before the flag was up is seen here.
            let unchanged = live_slots().iter().all(|slot| {
                let polls = slot.polls.load(Ordering::SeqCst);
                seen.iter()
                    .any(|s| s.slot.as_ptr() == Arc::as_ptr(slot) && s.polls == polls)
            });
            if unchanged {
                std::thread::park();
            }
            PARKED.store(false, Ordering::SeqCst);
        } else {
            std::thread::sleep(TICK);
        }
        let live = live_slots();
        let active = live.iter().any(|slot| {
            let polls = slot.polls.load(Ordering::Acquire);
            !seen
                .iter()
                .any(|s| s.slot.as_ptr() == Arc::as_ptr(slot) && s.polls == polls)
        });
        quiet_looks = if active { 0 } else { quiet_looks + 1 };
        seen = live
            .into_iter()
            .map(|slot| {
                let polls = slot.polls.load(Ordering::Acquire);
                let before = seen.iter().find(|s| s.slot.as_ptr() == Arc::as_ptr(&slot));
                let stalled = polls & 1 == 1 && before.is_some_and(|b| b.polls == polls);
                let woke_before = stalled && before.is_some_and(|b| b.woke);
                if stalled && !woke_before {
                    // Once per stalled poll is enough: the woken worker
                    // parks on the driver and stays there.
                    tracing::debug!("a plugin poll holds a worker thread; waking another worker");
                    drop(slot.runtime.spawn(async {}));
                }
                Seen {
                    slot: Arc::downgrade(&slot),
                    polls,
                    woke: stalled,
                }
            })
            .collect();
    }
}

/// The slots of live worker threads (dropped ones are pruned).
fn live_slots() -> Vec<Arc<Slot>> {
    let mut list = slots().lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|w| w.strong_count() > 0);
    list.iter().filter_map(Weak::upgrade).collect()
}
