//! Bytes ⇄ frames for stream transports (TCP, TLS): newline-delimited
//! frames read with a hard size bound, and [`StreamConnection`], the one
//! task's worth of state a stream session needs (reader, writer, socket).
//!
//! Idle connections hold no buffers: the reader allocates when bytes arrive
//! and drops the buffer once every complete line in it has been consumed; the
//! writer holds a batch only while it is being written.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::writer::Outgoing;
use crate::closer::Closer;
use crate::outbox::OutboxReceiver;
use crate::session::{Connection, ReadEvent};

/// Bytes read per `read` call once data is flowing.
const READ_CHUNK: usize = 2048;

/// A stream that can tell when reading would not block, before a buffer is
/// allocated for the read.
pub trait ReadReady {
    /// `Ready(Ok(true))` once bytes can be read; `Ready(Ok(false))` at once
    /// if this stream cannot tell (the reader then reads one byte into a
    /// one-byte buffer first).
    fn poll_read_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        Poll::Ready(Ok(false))
    }
}

impl ReadReady for tokio::net::TcpStream {
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        // The waker lives in the socket's registration, not in a future.
        tokio::net::TcpStream::poll_read_ready(self, cx).map_ok(|()| true)
    }
}

/// Splits a byte stream into lines of at most `max` bytes.
pub struct FrameReader {
    /// Present only while unconsumed bytes are buffered.
    buf: Option<BytesMut>,
    max: usize,
    /// Dropping the rest of an oversized line.
    discarding: bool,
    /// No byte has been read yet (for the TLS-on-plain-port check).
    fresh: bool,
    check_tls: bool,
}

impl FrameReader {
    pub fn new(max: usize, check_tls: bool) -> Self {
        FrameReader {
            buf: None,
            max,
            discarding: false,
            fresh: true,
            check_tls,
        }
    }

    /// Reads the next event from `io`.
    pub async fn next<R: AsyncRead + ReadReady + Unpin>(&mut self, io: &mut R) -> ReadEvent {
        std::future::poll_fn(|cx| self.poll_next(io, cx)).await
    }

    /// Reads the next event from `io`. Bytes read stay buffered across
    /// `Pending`; an empty buffer is never kept.
    pub fn poll_next<R: AsyncRead + ReadReady + Unpin>(
        &mut self,
        io: &mut R,
        cx: &mut Context<'_>,
    ) -> Poll<ReadEvent> {
        loop {
            if let Some(event) = self.take_line() {
                return Poll::Ready(event);
            }
            if self.buf.is_none() {
                // An idle connection holds no buffer: wait for input first.
                match ready!(io.poll_read_ready(cx)) {
                    Ok(true) => {}
                    Ok(false) => {
                        let mut first = [0u8; 1];
                        let mut read = ReadBuf::new(&mut first);
                        match ready!(Pin::new(&mut *io).poll_read(cx, &mut read)) {
                            Err(e) => return Poll::Ready(ReadEvent::Failed(e)),
                            Ok(()) if read.filled().is_empty() => {
                                return Poll::Ready(ReadEvent::Eof)
                            }
                            Ok(()) => {
                                let mut buf = BytesMut::with_capacity(READ_CHUNK);
                                buf.extend_from_slice(read.filled());
                                self.buf = Some(buf);
                                if let Some(event) = self.check_first_bytes() {
                                    return Poll::Ready(event);
                                }
                                continue;
                            }
                        }
                    }
                    Err(e) => return Poll::Ready(ReadEvent::Failed(e)),
                }
            }
            let buf = self
                .buf
                .get_or_insert_with(|| BytesMut::with_capacity(READ_CHUNK));
            buf.reserve(READ_CHUNK);
            match tokio_util::io::poll_read_buf(Pin::new(&mut *io), cx, buf) {
                Poll::Pending => {
                    if buf.is_empty() {
                        self.buf = None;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(ReadEvent::Failed(e)),
                Poll::Ready(Ok(0)) => {
                    self.buf = None;
                    return Poll::Ready(ReadEvent::Eof);
                }
                Poll::Ready(Ok(_)) => {
                    if let Some(event) = self.check_first_bytes() {
                        return Poll::Ready(event);
                    }
                }
            }
        }
    }

    /// A TLS handshake on the plaintext port, seen in its first byte.
    fn check_first_bytes(&mut self) -> Option<ReadEvent> {
        if std::mem::take(&mut self.fresh)
            && self.check_tls
            && self.buf.as_ref().and_then(|b| b.first()) == Some(&0x16)
        {
            self.buf = None;
            return Some(ReadEvent::TlsOnPlainPort);
        }
        None
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

/// A stream session's connection: the socket, the reader and the writer,
/// all polled by the session's one task.
pub struct StreamConnection<S> {
    io: S,
    reader: FrameReader,
    out: Outgoing,
}

impl<S> StreamConnection<S>
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send,
{
    /// `check_tls`: report a TLS handshake on a plaintext port.
    pub fn new(
        io: S,
        queue: OutboxReceiver,
        closer: Arc<Closer>,
        max_frame_bytes: usize,
        check_tls: bool,
    ) -> Self {
        StreamConnection {
            io,
            reader: FrameReader::new(max_frame_bytes, check_tls),
            out: Outgoing::new(queue, closer),
        }
    }

    /// Flushes the rest and the goodbye, and closes (see [`Outgoing::finish`]).
    pub async fn finish(self) {
        let StreamConnection { mut io, out, .. } = self;
        out.finish(&mut io).await
    }
}

impl<S> Connection for StreamConnection<S>
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send,
{
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<ReadEvent> {
        if self.out.poll_write(&mut self.io, cx).is_ready() {
            return Poll::Ready(ReadEvent::Failed(io::ErrorKind::BrokenPipe.into()));
        }
        self.reader.poll_next(&mut self.io, cx)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.out.poll_write(&mut self.io, cx)
    }
}
