//! The bounded outbound queue of one connection.
//!
//! Many producers (whoever sends to this client) push encoded frames; one
//! consumer (the connection's writer task) drains them. A purpose-built
//! queue rather than a general channel because an idle connection must cost
//! little: it holds no slots until frames are waiting (a general bounded
//! channel preallocates a block of slots per connection), and the writer
//! takes everything waiting under one lock for one `write`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use chat_api::Payload;

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// `capacity` frames (or `max_bytes` bytes) are already waiting: the
    /// client is not reading.
    Full,
    /// The writer has finished; the connection is closing.
    Closed,
}

struct State {
    queue: VecDeque<Payload>,
    /// Bytes of the frames in `queue`.
    bytes: usize,
    /// The writer, when it is waiting for frames.
    waker: Option<Waker>,
    /// The writer still drains the queue.
    receiver_alive: bool,
    /// The producing side (the peer) still exists.
    sender_alive: bool,
    /// The writer must not take frames yet: frames that belong before the
    /// queued ones (a resume's catch-up) are being prepared.
    held: bool,
    /// While held: where the session's own frames go (after what was
    /// queued before the hold, before what others sent since).
    mark: usize,
    /// The most frames ever waiting at once (for the metrics).
    peak: usize,
}

struct Inner {
    state: Mutex<State>,
    capacity: usize,
    max_bytes: usize,
}

/// The producing side, owned by the hub's `Peer`.
pub struct Outbox {
    inner: Arc<Inner>,
}

/// The consuming side, owned by the writer task.
pub struct OutboxReceiver {
    inner: Arc<Inner>,
}

/// A queue holding at most `capacity` frames and `max_bytes` bytes (a
/// single frame larger than `max_bytes` is still accepted into an empty
/// queue).
pub fn outbox(capacity: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            bytes: 0,
            waker: None,
            receiver_alive: true,
            sender_alive: true,
            held: false,
            mark: 0,
            peak: 0,
        }),
        capacity: capacity.max(1),
        max_bytes,
    });
    (
        Outbox {
            inner: inner.clone(),
        },
        OutboxReceiver { inner },
    )
}

impl Outbox {
    /// Queues a frame without waiting.
    pub fn push(&self, payload: Payload) -> Result<(), PushError> {
        self.push_at(payload, false)
    }

    /// Queues a frame the session itself sends (a reply): while held it
    /// goes before what others sent since the hold.
    pub fn push_own(&self, payload: Payload) -> Result<(), PushError> {
        self.push_at(payload, true)
    }

    fn push_at(&self, payload: Payload, own: bool) -> Result<(), PushError> {
        let waker = {
            let mut state = self.inner.state.lock().unwrap();
            if !state.receiver_alive {
                return Err(PushError::Closed);
            }
            let too_many_bytes =
                !state.queue.is_empty() && state.bytes + payload.len() > self.inner.max_bytes;
            if state.queue.len() >= self.inner.capacity || too_many_bytes {
                return Err(PushError::Full);
            }
            state.bytes += payload.len();
            if own && state.held {
                let mark = state.mark;
                state.queue.insert(mark, payload);
                state.mark += 1;
            } else {
                state.queue.push_back(payload);
            }
            state.peak = state.peak.max(state.queue.len());
            state.waker.take()
        };
        // Woken outside the lock, so the writer never spins on it.
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Stops the writer from taking frames; pushes still queue (bounded as
    /// always). Used while a resume prepares the messages the client missed,
    /// which must reach it before anything live.
    pub fn hold(&self) {
        let mut state = self.inner.state.lock().unwrap();
        if !state.held {
            state.held = true;
            state.mark = state.queue.len();
        }
    }

    /// Puts `front` after the session's own frames sent while held, before
    /// what others sent, and lets the writer go on.
    /// `front` is not counted against the bounds: it is a bounded catch-up
    /// the server itself prepared.
    pub fn release(&self, front: Vec<Payload>) {
        let waker = {
            let mut state = self.inner.state.lock().unwrap();
            state.held = false;
            if state.receiver_alive {
                let mark = state.mark.min(state.queue.len());
                for (i, payload) in front.into_iter().enumerate() {
                    state.bytes += payload.len();
                    state.queue.insert(mark + i, payload);
                }
            }
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Frames waiting now.
    pub fn len(&self) -> usize {
        self.inner.state.lock().unwrap().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most frames that were ever waiting at once.
    pub fn peak(&self) -> usize {
        self.inner.state.lock().unwrap().peak
    }

    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    pub fn max_bytes(&self) -> usize {
        self.inner.max_bytes
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.inner.state.lock().unwrap();
            state.sender_alive = false;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl OutboxReceiver {
    /// Waits until frames are waiting, then moves up to `max_bytes` of them
    /// (at least one) into `batch`. Returns `false` once the queue is empty
    /// and its producer is gone. Cancel-safe: nothing is taken unless it
    /// returns.
    pub async fn recv_batch(&mut self, batch: &mut Vec<Payload>, max_bytes: usize) -> bool {
        std::future::poll_fn(|cx| self.poll_recv_batch(cx, batch, max_bytes)).await
    }

    /// [`OutboxReceiver::recv_batch`] as a poll: `Pending` (with the
    /// task's waker kept for the next push) while nothing may be taken.
    pub fn poll_recv_batch(
        &mut self,
        cx: &mut Context<'_>,
        batch: &mut impl Extend<Payload>,
        max_bytes: usize,
    ) -> Poll<bool> {
        let mut state = self.inner.state.lock().unwrap();
        if state.queue.is_empty() || state.held {
            if !state.sender_alive {
                return Poll::Ready(false);
            }
            if state.queue.is_empty() && state.queue.capacity() > 0 {
                // The connection goes idle: it holds no queue memory.
                state.queue = VecDeque::new();
            }
            match &state.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => state.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        take(&mut state, batch, max_bytes);
        Poll::Ready(true)
    }

    /// Moves every frame into `batch` until the producer is gone (the
    /// session has ended and dropped its peer). Used when closing, under a
    /// time limit: replies the session was still sending when it was told
    /// to close get out before the `bye`. Frames are in `batch` as soon as
    /// they are taken, so a timeout loses none of them.
    pub async fn drain_until_released(&mut self, batch: &mut impl Extend<Payload>) {
        while std::future::poll_fn(|cx| self.poll_recv_batch(cx, batch, usize::MAX)).await {}
    }

    /// Moves up to `max_bytes` of waiting frames into `batch` without
    /// waiting; returns how many.
    pub fn try_recv_batch(&mut self, batch: &mut impl Extend<Payload>, max_bytes: usize) -> usize {
        let mut state = self.inner.state.lock().unwrap();
        take(&mut state, batch, max_bytes)
    }
}

/// Takes frames from the front of `queue` while they fit in `max_bytes`
/// (always at least one); gives the queue's memory back once it is empty.
fn take(state: &mut State, batch: &mut impl Extend<Payload>, max_bytes: usize) -> usize {
    if state.held {
        return 0;
    }
    let queue = &mut state.queue;
    let mut bytes = 0;
    let mut n = 0;
    while let Some(front) = queue.front() {
        if n > 0 && bytes + front.len() > max_bytes {
            break;
        }
        bytes += front.len();
        n += 1;
        batch.extend(queue.pop_front());
    }
    if queue.is_empty() && queue.capacity() > 16 {
        *queue = VecDeque::new();
    }
    state.bytes -= bytes;
    n
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let mut state = self.inner.state.lock().unwrap();
        state.receiver_alive = false;
        // Frames still queued are dropped with the connection.
        state.queue = VecDeque::new();
        state.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Payload {
        Payload::from_line(bytes::Bytes::from(format!("{}\n", "x".repeat(n))))
    }

    #[tokio::test]
    async fn bounded_batched_and_closed() {
        let (tx, mut rx) = outbox(3, 1000);
        for _ in 0..3 {
            tx.push(frame(9)).unwrap();
        }
        assert_eq!(tx.push(frame(9)), Err(PushError::Full));
        let mut batch = Vec::new();
        assert!(rx.recv_batch(&mut batch, 25).await);
        assert_eq!(batch.len(), 2, "two 10-byte frames fit in 25 bytes");
        assert_eq!(rx.try_recv_batch(&mut batch, 1), 1, "at least one frame");
        drop(tx);
        assert!(
            !rx.recv_batch(&mut batch, 100).await,
            "ends when the producer is gone"
        );
        let (tx, rx) = outbox(3, 1000);
        drop(rx);
        assert_eq!(tx.push(frame(1)), Err(PushError::Closed));
    }

    #[tokio::test]
    async fn bounded_by_bytes_too() {
        let (tx, mut rx) = outbox(100, 25);
        tx.push(frame(9)).unwrap();
        tx.push(frame(9)).unwrap();
        assert_eq!(tx.push(frame(9)), Err(PushError::Full), "30 bytes > 25");
        let mut batch = Vec::new();
        assert!(rx.recv_batch(&mut batch, 1000).await);
        assert_eq!(batch.len(), 2);
        // Draining frees the bytes; one oversized frame fits an empty queue.
        tx.push(frame(99)).unwrap();
        assert_eq!(tx.push(frame(1)), Err(PushError::Full));
    }

    #[tokio::test]
    async fn held_frames_wait_and_released_ones_go_first() {
        let (tx, mut rx) = outbox(8, 1000);
        tx.push(frame(0)).unwrap();
        tx.hold();
        tx.push(frame(1)).unwrap();
        tx.push_own(frame(2)).unwrap();
        let mut batch = Vec::new();
        assert_eq!(rx.try_recv_batch(&mut batch, 1000), 0, "held");
        let writer = tokio::spawn(async move {
            let mut batch = Vec::new();
            rx.recv_batch(&mut batch, 1000).await;
            batch.iter().map(|p| p.len()).collect::<Vec<_>>()
        });
        tokio::task::yield_now().await;
        tx.release(vec![frame(3), frame(4)]);
        assert_eq!(
            writer.await.unwrap(),
            [1, 3, 4, 5, 2],
            "queued before, own replies, catch-up, then what others sent"
        );
    }

    #[tokio::test]
    async fn an_idle_queue_holds_no_memory() {
        let (tx, mut rx) = outbox(8, 1000);
        for _ in 0..3 {
            tx.push(frame(3)).unwrap();
        }
        let mut batch = Vec::new();
        assert!(rx.recv_batch(&mut batch, 1000).await);
        let waker = futures_util::task::noop_waker();
        let pending = rx.poll_recv_batch(&mut Context::from_waker(&waker), &mut batch, 1000);
        assert!(pending.is_pending(), "nothing is waiting");
        let capacity = tx.inner.state.lock().unwrap().queue.capacity();
        assert_eq!(
            capacity, 0,
            "the writer went idle: the queue's slots are freed"
        );
    }

    #[tokio::test]
    async fn a_waiting_writer_is_woken() {
        let (tx, mut rx) = outbox(8, 1000);
        let writer = tokio::spawn(async move {
            let mut batch = Vec::new();
            rx.recv_batch(&mut batch, 1000).await;
            batch.len()
        });
        tokio::task::yield_now().await;
        tx.push(frame(3)).unwrap();
        assert_eq!(writer.await.unwrap(), 1);
    }
}
