//! Bytes ⇄ frames for stream transports (TCP, TLS): reading newline-delimited
//! frames with a hard size bound, and the writer task that flushes a
//! session's queue in batches.
//!
//! Idle connections hold no buffers: the reader allocates when bytes arrive
//! and drops the buffer once every complete line in it has been consumed; the
//! writer allocates a batch buffer only while several frames are waiting.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::closer::Closer;
use crate::outbox::OutboxReceiver;
use bytes::{Bytes, BytesMut};
use chat_api::{ErrorCode, Payload, ServerFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes read per `read` call once data is flowing.
const READ_CHUNK: usize = 2048;
/// Most bytes gathered into one write.
const MAX_BATCH_BYTES: usize = 64 * 1024;
/// How long a closing connection may take to flush its last frames.
pub const LINGER: Duration = Duration::from_secs(2);

/// The read half of a stream transport.
pub trait ReadSide: AsyncRead + Unpin + Send + 'static {
    /// Waits until reading would not block, before a buffer is allocated;
    /// `false` at once if this side cannot tell (the reader then waits for
    /// one byte, read into a one-byte buffer).
    fn ready(&mut self) -> impl Future<Output = io::Result<bool>> + Send;
}

impl ReadSide for tokio::net::tcp::OwnedReadHalf {
    async fn ready(&mut self) -> io::Result<bool> {
        // `poll_read_ready` keeps its waker in the socket's registration;
        // `readable()` would keep a 180-byte waiter in every idle session's
        // future. Only this task reads the socket, so one waker is enough.
        let stream: &tokio::net::TcpStream = self.as_ref();
        std::future::poll_fn(|cx| stream.poll_read_ready(cx))
            .await
            .map(|()| true)
    }
}

impl<T: AsyncRead + Send + 'static> ReadSide for tokio::io::ReadHalf<T> {
    // A TLS stream's readiness is not the socket's (rustls may hold
    // plaintext already, or need more records for any).
    async fn ready(&mut self) -> io::Result<bool> {
        Ok(false)
    }
}

/// What the reader produced.
#[derive(Debug)]
pub enum ReadEvent {
    /// One frame without its line ending.
    Frame(Bytes),
    /// A line exceeded the limit; it is being discarded up to its newline.
    TooLarge,
    /// The first bytes of the connection are a TLS handshake.
    TlsOnPlainPort,
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
    Failed(io::Error),
}

/// Splits a byte stream into lines of at most `max` bytes.
pub struct FrameReader<R> {
    inner: R,
    /// Present only while unconsumed bytes are buffered.
    buf: Option<BytesMut>,
    max: usize,
    /// Dropping the rest of an oversized line.
    discarding: bool,
    /// No byte has been read yet (for the TLS-on-plain-port check).
    fresh: bool,
    check_tls: bool,
}

impl<R: ReadSide> FrameReader<R> {
    pub fn new(inner: R, max: usize, check_tls: bool) -> Self {
        FrameReader {
            inner,
            buf: None,
            max,
            discarding: false,
            fresh: true,
            check_tls,
        }
    }

    /// Reads the next event. Cancel-safe: bytes already read stay buffered.
    pub async fn next(&mut self) -> ReadEvent {
        loop {
            if let Some(event) = self.take_line() {
                return event;
            }
            // An idle connection holds no buffer: wait for input first.
            let ready = match self.buf {
                Some(_) => Ok(true),
                None => self.inner.ready().await,
            };
            let read = match ready {
                Ok(true) => {
                    let buf = self
                        .buf
                        .get_or_insert_with(|| BytesMut::with_capacity(READ_CHUNK));
                    buf.reserve(READ_CHUNK);
                    self.inner.read_buf(buf).await
                }
                Ok(false) => {
                    let mut first = [0u8; 1];
                    let read = self.inner.read(&mut first).await;
                    // Kept before any other await, so cancelling loses nothing.
                    if let Ok(1) = read {
                        let mut buf = BytesMut::with_capacity(READ_CHUNK);
                        buf.extend_from_slice(&first);
                        self.buf = Some(buf);
                    }
                    read
                }
                Err(e) => Err(e),
            };
            match read {
                Ok(0) => {
                    self.buf = None;
                    return ReadEvent::Eof;
                }
                Ok(_) => {
                    if std::mem::take(&mut self.fresh)
                        && self.check_tls
                        && self.buf.as_ref().and_then(|b| b.first()) == Some(&0x16)
                    {
                        self.buf = None;
                        return ReadEvent::TlsOnPlainPort;
                    }
                }
                Err(e) => return ReadEvent::Failed(e),
            }
        }
    }

    /// Takes one complete line out of the buffer, if there is one.
    fn take_line(&mut self) -> Option<ReadEvent> {
        loop {
            let buf = self.buf.as_mut()?;
            match buf.iter().position(|&b| b == b'\n') {
                Some(pos) => {
                    let mut line = buf.split_to(pos + 1);
                    if buf.is_empty() {
                        // Give the memory back while the connection is quiet.
                        self.buf = None;
                    }
                    if std::mem::take(&mut self.discarding) {
                        // The tail of an oversized line, already reported.
                        continue;
                    }
                    if line.len() > self.max {
                        return Some(ReadEvent::TooLarge);
                    }
                    line.truncate(pos);
                    if line.last() == Some(&b'\r') {
                        line.truncate(pos - 1);
                    }
                    return Some(ReadEvent::Frame(line.freeze()));
                }
                None if buf.len() >= self.max => {
                    // Never buffer more than `max`: drop what we have and
                    // keep dropping until the line ends.
                    self.buf = None;
                    let first = !self.discarding;
                    self.discarding = true;
                    return first.then_some(ReadEvent::TooLarge);
                }
                None => {
                    if buf.is_empty() {
                        self.buf = None;
                    }
                    return None;
                }
            }
        }
    }
}

/// Drains a session's queue into a stream, writing whatever is waiting in
/// one `write`. Ends when the session closes: then the rest of the queue
/// (unless the client was too slow to read it), including replies the
/// session sends until it has ended, and a `bye` are flushed within
/// [`LINGER`], and the stream is shut down.
pub async fn run_writer<W: AsyncWrite + Unpin + Send>(
    mut writer: W,
    mut queue: OutboxReceiver,
    closer: Arc<Closer>,
) {
    // Bytes taken from the queue but not yet written (a batch interrupted
    // by the close); flushed in the closing phase.
    let mut pending = BytesMut::new();
    loop {
        // Allocated per burst and dropped after it: idle connections hold
        // no batch memory.
        let mut batch: Vec<Payload> = Vec::new();
        let more = tokio::select! {
            biased;
            more = queue.recv_batch(&mut batch, MAX_BATCH_BYTES) => more,
            _ = closer.closed() => false,
        };
        if !more {
            break;
        }
        let write = if batch.len() == 1 {
            // The common quiet case: one frame, written without copying.
            let mut one = batch.pop().expect("one frame").line().clone();
            tokio::select! {
                r = write_buf(&mut writer, &mut one) => r,
                _ = closer.closed() => { pending.extend_from_slice(&one); break }
            }
        } else {
            pending.reserve(batch.iter().map(Payload::len).sum());
            for payload in batch.drain(..) {
                pending.extend_from_slice(payload.line());
            }
            let result = tokio::select! {
                r = write_buf(&mut writer, &mut pending) => r,
                _ = closer.closed() => break,
            };
            pending = BytesMut::new();
            result
        };
        if write.is_err() {
            // The peer is gone; the reader sees it too and ends the session.
            closer.close(ErrorCode::QUIT, "connection lost");
            return;
        }
    }
    let reason = closer.reason();
    let deadline = tokio::time::Instant::now() + LINGER;
    if reason.code != ErrorCode::SLOW_CONSUMER {
        let mut rest = Vec::new();
        let _ =
            tokio::time::timeout_at(deadline - LINGER / 2, queue.drain_until_released(&mut rest))
                .await;
        queue.try_recv_batch(&mut rest, usize::MAX);
        for payload in rest {
            pending.extend_from_slice(payload.line());
        }
    }
    let _ = tokio::time::timeout_at(deadline, async {
        pending.extend_from_slice(
            Payload::encode(&ServerFrame::Bye {
                code: reason.code,
                reason: reason.reason,
            })
            .line(),
        );
        write_buf(&mut writer, &mut pending).await?;
        writer.shutdown().await
    })
    .await;
}

/// Writes all of `buf` (advancing it, so progress survives cancellation) and
/// flushes (which TLS needs).
async fn write_buf<W: AsyncWrite + Unpin, B: bytes::Buf>(
    writer: &mut W,
    buf: &mut B,
) -> io::Result<()> {
    writer.write_all_buf(buf).await?;
    writer.flush().await
}
