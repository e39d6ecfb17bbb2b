//! The writer every transport shares: it drains a session's queue into the
//! connection in batches (one write and one flush per batch, for a stream;
//! one flush per batch of WebSocket messages) and says goodbye when the
//! session ends. It runs inside the connection's only task, polled beside
//! the reader (see [`crate::session::Connection`]).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use chat_api::{ErrorCode, Payload, ServerFrame};
use tokio::io::AsyncWrite;

use crate::closer::Closer;
use crate::outbox::OutboxReceiver;

/// Most bytes of queued frames taken for one write (stream) or one flush
/// (WebSocket).
pub const MAX_BATCH_BYTES: usize = 64 * 1024;
/// How long a closing connection may take to flush its last frames.
pub const LINGER: Duration = Duration::from_secs(2);

/// Frames taken from the queue and not yet written. Progress lives here,
/// not in a future, so a write interrupted by the session's close is
/// finished by the goodbye.
#[derive(Default)]
pub struct Unsent {
    /// Whole frames not yet handed to the transport.
    pub frames: VecDeque<Payload>,
    /// A stream's batch, from its first byte not yet written (empty, and
    /// holding no memory, between batches).
    pub bytes: Bytes,
    /// Handed to the transport but not flushed yet (the socket was full):
    /// the next batch waits, and the flush is tried again when the socket
    /// can take more, even if nothing new is queued.
    pub unflushed: bool,
}

impl Unsent {
    fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.bytes.is_empty() && !self.unflushed
    }
}

/// Where a connection's frames go: a byte stream or a WebSocket.
pub trait FrameSink {
    /// Writes and flushes everything in `unsent`, taking frames off it as
    /// they are handed to the transport.
    fn poll_send(&mut self, cx: &mut Context<'_>, unsent: &mut Unsent) -> Poll<io::Result<()>>;

    /// Ends the connection after the goodbye: shuts a stream down, or sends
    /// a WebSocket close frame whose code matches `code`.
    fn poll_close(&mut self, cx: &mut Context<'_>, code: &ErrorCode) -> Poll<io::Result<()>>;
}

/// Streams (TCP, TLS): frames are lines, a batch is one buffer.
impl<S: AsyncWrite + Unpin> FrameSink for S {
    fn poll_send(&mut self, cx: &mut Context<'_>, unsent: &mut Unsent) -> Poll<io::Result<()>> {
        loop {
            if unsent.bytes.is_empty() {
                unsent.bytes = match unsent.frames.len() {
                    0 => break,
                    // The common quiet case: one frame, written without copying.
                    1 => unsent.frames.pop_front().expect("one frame").line().clone(),
                    _ => {
                        let len = unsent.frames.iter().map(Payload::len).sum();
                        let mut batch = BytesMut::with_capacity(len);
                        for payload in unsent.frames.drain(..) {
                            batch.extend_from_slice(payload.line());
                        }
                        batch.freeze()
                    }
                };
            }
            let written = ready!(Pin::new(&mut *self).poll_write(cx, &unsent.bytes))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            unsent.bytes.advance(written);
            if unsent.bytes.is_empty() {
                // Lets go of the batch's memory.
                unsent.bytes = Bytes::new();
            }
        }
        // TLS needs the flush; on TCP it is free.
        let flushed = Pin::new(self).poll_flush(cx);
        unsent.unflushed = flushed.is_pending();
        flushed
    }

    fn poll_close(&mut self, cx: &mut Context<'_>, _code: &ErrorCode) -> Poll<io::Result<()>> {
        Pin::new(self).poll_shutdown(cx)
    }
}

/// A session's queue and what was taken from it: the writing half of a
/// connection.
pub struct Outgoing {
    queue: OutboxReceiver,
    unsent: Unsent,
    /// To end the session when the peer is gone, and for the goodbye's reason.
    closer: Arc<Closer>,
    /// Writing failed: nothing more is written.
    failed: bool,
}

impl Outgoing {
    pub fn new(queue: OutboxReceiver, closer: Arc<Closer>) -> Outgoing {
        Outgoing {
            queue,
            unsent: Unsent::default(),
            closer,
            failed: false,
        }
    }

    /// Writes whatever is queued, batch after batch; `Ready` only once,
    /// when writing fails (the session is then closed as lost).
    pub fn poll_write(&mut self, sink: &mut impl FrameSink, cx: &mut Context<'_>) -> Poll<()> {
        if self.failed {
            return Poll::Pending;
        }
        loop {
            if self.unsent.is_empty() {
                let queue = &mut self.queue;
                match queue.poll_recv_batch(cx, &mut self.unsent.frames, MAX_BATCH_BYTES) {
                    Poll::Ready(true) => {}
                    // Nothing queued, or the session has let go of its
                    // queue (it is ending; `finish` takes over).
                    Poll::Ready(false) | Poll::Pending => return Poll::Pending,
                }
            }
            match ready!(sink.poll_send(cx, &mut self.unsent)) {
                Ok(()) => {}
                Err(_) => {
                    // The peer is gone; the session ends without a goodbye.
                    self.failed = true;
                    self.closer.close(ErrorCode::QUIT, "connection lost");
                    return Poll::Ready(());
                }
            }
        }
    }

    /// Once the session has ended: the rest of the queue (unless the
    /// client was too slow to read it), including replies the session sent
    /// until it let go of its queue, and a `bye` go out within [`LINGER`];
    /// then the connection is closed.
    pub async fn finish(mut self, sink: &mut impl FrameSink) {
        if self.failed {
            return;
        }
        let reason = self.closer.reason();
        let deadline = tokio::time::Instant::now() + LINGER;
        if reason.code == ErrorCode::SLOW_CONSUMER {
            // A stream's partly written line is still finished, so the
            // `bye` starts on a line of its own.
            self.unsent.frames.clear();
        } else {
            let frames = &mut self.unsent.frames;
            let _ = tokio::time::timeout_at(
                deadline - LINGER / 2,
                self.queue.drain_until_released(frames),
            )
            .await;
            self.queue.try_recv_batch(frames, usize::MAX);
        }
        let _ = tokio::time::timeout_at(deadline, async {
            self.unsent
                .frames
                .push_back(Payload::encode(&ServerFrame::Bye {
                    code: reason.code.clone(),
                    reason: reason.reason,
                }));
            poll_fn(|cx| sink.poll_send(cx, &mut self.unsent)).await?;
            poll_fn(|cx| sink.poll_close(cx, &reason.code)).await
        })
        .await;
    }
}
