//! The WebSocket transport: one protocol frame (the same JSON as on TCP,
//! without the newline) per text message, through the same session code as
//! every other connection.
//!
//! [`WsConnection`] is the session's [`Connection`]: the socket (TCP or
//! TLS), read by the session's one task through tungstenite's protocol
//! engine (`WebSocketContext`), which also writes its own frames (pongs, the
//! close), and written by the writer every transport shares, which puts the
//! message frames together itself (see `poll_send`).
//! tungstenite keeps a read buffer and a write buffer for as long as its
//! engine lives, so an idle connection holds no engine: chatd reads the
//! socket itself (waiting for readiness first, as on TCP), hands tungstenite
//! whole frames only, and lets go of the engine once everything handed over
//! is read and everything written is flushed, with no message half received
//! and no close under way. The engine is then in the state a new one starts
//! in, so the next message gets a new one. Message size is bounded before a
//! payload is buffered (`max_message_size` and `max_frame_size` are
//! `limits.max_frame_bytes`).

use std::io::{self, Cursor, Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use chat_api::{ApiError, ErrorCode, Payload, ServerFrame, Transport};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite;
use tungstenite::protocol::frame::coding::OpCode;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Message, Utf8Bytes};

use super::framing::ReadReady;
use super::writer::{FrameSink, Outgoing, Unsent, MAX_BATCH_BYTES};
use crate::hub::Peer;
use crate::session::{self, Connection, ReadEvent};
use crate::shared::{ConnectionSlot, Shared};

/// tungstenite's read buffer while its engine lives (it copies at most this
/// much of a handed-over frame per step; a payload gets room of its own).
pub(crate) const READ_BUFFER_BYTES: usize = 1024;
/// Bytes read from the socket per call once a frame is in flight (a frame's
/// header asks for more when the frame is larger).
const READ_CHUNK: usize = 2048;

/// Close codes of RFC 6455 §7.4.1.
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_PROTOCOL_ERROR: u16 = 1002;
const CLOSE_INVALID_DATA: u16 = 1007;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;

/// What a WebSocket session runs on, besides the socket.
pub struct WsSetup {
    pub addr: SocketAddr,
    /// It came over HTTPS.
    pub encrypted: bool,
    /// The resume token of the upgrade's cookie, used by a `resume` frame
    /// without `token`.
    pub token: Option<String>,
    /// Bytes the client sent after the upgrade request, read by the HTTP
    /// server already.
    pub read_ahead: Bytes,
}

/// Runs one WebSocket session until it ends; `slot` is held throughout.
/// Not an `async fn`: its future holds the socket once, inside the
/// connection (an `async fn` would keep its argument beside it).
pub fn run_session<S>(
    shared: Arc<Shared>,
    slot: ConnectionSlot,
    io: S,
    setup: WsSetup,
) -> impl std::future::Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send,
{
    let (peer, queue) = session::new_peer(&shared, Some(setup.addr), Transport::WebSocket);
    if setup.encrypted {
        peer.mark_encrypted();
    }
    if let Some(token) = setup.token {
        peer.set_transport_token(&token);
    }
    let max_frame_bytes = shared.limits().max_frame_bytes;
    let mut socket = WsSocket {
        io,
        engine: None,
        input: None,
        whole: 0,
        handed_over: false,
        fragmented: false,
        max_frame_bytes,
        close_sent: false,
        batch_partly_written: false,
    };
    if !setup.read_ahead.is_empty() {
        socket.input = Some(BytesMut::from(&setup.read_ahead[..]));
        socket.scan_input();
    }
    let mut conn = WsConnection {
        socket,
        out: Outgoing::new(queue, peer.closer.clone()),
        peer: Some(peer.clone()),
        oversized: false,
    };
    async move {
        session::run(shared, peer, &mut conn).await;
        drop(slot);
        // Boxed: closing is rare, and its timers must not weigh on idle
        // sessions.
        Box::pin(conn.finish()).await;
    }
}

/// The socket and, while a message is in flight, tungstenite's engine.
struct WsSocket<S> {
    io: S,
    /// Present only while something is being read or written.
    engine: Option<Box<WebSocketContext>>,
    /// Bytes read from the socket and not yet handed to the engine; `None`,
    /// holding no memory, between frames.
    input: Option<BytesMut>,
    /// How many of `input`'s first bytes are whole frames the engine may
    /// have (plus the header of a frame it will refuse as too large).
    whole: usize,
    /// Bytes were handed to the engine since it last ran out of them.
    handed_over: bool,
    /// The last data frame handed over was not its message's last.
    fragmented: bool,
    max_frame_bytes: usize,
    /// The close frame has been handed to the engine.
    close_sent: bool,
    /// A batch of message frames is partly written: the engine may not
    /// write (a pong) until it is done, or frames would interleave.
    batch_partly_written: bool,
}

/// One WebSocket session's connection.
pub struct WsConnection<S> {
    socket: WsSocket<S>,
    out: Outgoing,
    /// For replies the transport itself owes (a binary message), and to end
    /// the session when the socket can no longer be read. Let go before the
    /// goodbye, which waits for the session to release its queue.
    peer: Option<Arc<Peer>>,
    /// A message was too large: the socket cannot be read any further.
    oversized: bool,
}

/// The engine's view of the socket: reads take handed-over input only,
/// writes go to the socket; `WouldBlock` where the socket would wait (its
/// waker is then registered with `cx`).
struct EngineIo<'a, 'b, S> {
    io: &'a mut S,
    input: &'a mut Option<BytesMut>,
    whole: &'a mut usize,
    handed_over: &'a mut bool,
    /// Writes wait while a batch of message frames is partly written.
    hold_writes: bool,
    cx: &'a mut Context<'b>,
}

impl<S> Read for EngineIo<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(input) = self.input.as_mut() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let n = buf.len().min(*self.whole);
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        buf[..n].copy_from_slice(&input[..n]);
        input.advance(n);
        *self.whole -= n;
        *self.handed_over = true;
        if input.is_empty() {
            *self.input = None;
        }
        Ok(n)
    }
}

impl<S: AsyncWrite + Unpin> Write for EngineIo<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.hold_writes {
            // Tried again once the batch is written (see `poll_send`).
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match Pin::new(&mut *self.io).poll_flush(self.cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

fn would_block(error: &tungstenite::Error) -> bool {
    matches!(error, tungstenite::Error::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
}

impl<S> WsSocket<S>
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin,
{
    /// The engine (a new one if there is none) and its view of the socket.
    fn engine<'a, 'b>(
        &'a mut self,
        cx: &'a mut Context<'b>,
    ) -> (&'a mut WebSocketContext, EngineIo<'a, 'b, S>) {
        let max = self.max_frame_bytes;
        let engine = self.engine.get_or_insert_with(|| {
            let config = WebSocketConfig::default()
                .read_buffer_size(READ_BUFFER_BYTES)
                // Only its own frames (pongs, the close) are written through
                // it; they go out with the next flush.
                .write_buffer_size(MAX_BATCH_BYTES)
                .max_message_size(Some(max))
                .max_frame_size(Some(max));
            Box::new(WebSocketContext::new(Role::Server, Some(config)))
        });
        let io = EngineIo {
            io: &mut self.io,
            input: &mut self.input,
            whole: &mut self.whole,
            handed_over: &mut self.handed_over,
            hold_writes: self.batch_partly_written,
            cx,
        };
        (engine, io)
    }

    /// Lets go of the engine (and its buffers) if it holds nothing a new
    /// one would not: no input, no message half received, nothing unwritten
    /// (a queued pong included), no close under way.
    fn release_if_idle(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.engine.is_none() || self.handed_over || self.fragmented || self.input.is_some() {
            return Ok(());
        }
        let (engine, mut io) = self.engine(cx);
        if !engine.can_write() {
            return Ok(());
        }
        match engine.flush(&mut io) {
            Ok(()) => self.engine = None,
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(io::Error::other(e)),
        }
        Ok(())
    }

    /// Writes out whatever the engine holds, if there is an engine.
    fn poll_flush_engine(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.engine.is_none() {
            return Poll::Ready(Ok(()));
        }
        let (engine, mut io) = self.engine(cx);
        match engine.flush(&mut io) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) if would_block(&e) => Poll::Pending,
            Err(e) => Poll::Ready(Err(io::Error::other(e))),
        }
    }

    /// The next message from the input handed over so far; `Ok(None)` once
    /// it is used up.
    fn next_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Result<Option<Message>, tungstenite::Error> {
        if self.engine.is_none() && self.whole == 0 {
            return Ok(None);
        }
        let (engine, mut io) = self.engine(cx);
        match engine.read(&mut io) {
            Ok(message) => Ok(Some(message)),
            Err(e) if would_block(&e) => {
                self.handed_over = false;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads from the socket into `input`, allocating it only now.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.input.is_none() {
            // An idle connection holds no buffer: wait for input first.
            ready!(self.io.poll_read_ready(cx))?;
        }
        let missing = self.missing_of_next_frame();
        let input = self
            .input
            .get_or_insert_with(|| BytesMut::with_capacity(READ_CHUNK));
        input.reserve(missing.max(READ_CHUNK));
        let read = tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, input);
        if input.is_empty() {
            self.input = None;
        }
        if let Poll::Ready(Ok(n)) = read {
            if n > 0 {
                self.scan_input();
            }
        }
        read
    }

    /// Bytes still to read for the frame after the whole ones, if its
    /// header is in.
    fn missing_of_next_frame(&self) -> usize {
        let Some(input) = &self.input else { return 0 };
        let rest = &input[self.whole..];
        let mut cursor = Cursor::new(rest);
        match FrameHeader::parse(&mut cursor) {
            Ok(Some((_, len))) => usize::try_from(len)
                .unwrap_or(usize::MAX)
                .min(self.max_frame_bytes)
                .saturating_add(cursor.position() as usize)
                .saturating_sub(rest.len()),
            _ => 0,
        }
    }

    /// Extends `whole` over the frames `input` now holds entirely; notes
    /// whether a message is left half received.
    fn scan_input(&mut self) {
        let Some(input) = &self.input else { return };
        loop {
            let rest = &input[self.whole..];
            if rest.is_empty() {
                return;
            }
            let mut cursor = Cursor::new(rest);
            let (header, len) = match FrameHeader::parse(&mut cursor) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return,
                // The engine sees the same bytes and names the error.
                Err(_) => {
                    self.whole = input.len();
                    return;
                }
            };
            let header_len = cursor.position() as usize;
            if len > self.max_frame_bytes as u64 {
                // The engine refuses it from its header.
                self.whole += header_len;
                return;
            }
            let frame_len = header_len + len as usize;
            if rest.len() < frame_len {
                return;
            }
            // Control frames may come between a message's fragments.
            if let OpCode::Data(_) = header.opcode {
                self.fragmented = !header.is_final;
            }
            self.whole += frame_len;
        }
    }
}

impl<S> WsConnection<S>
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send,
{
    async fn finish(self) {
        let WsConnection {
            mut socket,
            out,
            peer,
            ..
        } = self;
        // The goodbye waits until the session has let go of its queue.
        drop(peer);
        out.finish(&mut socket).await
    }

    fn peer(&self) -> &Arc<Peer> {
        self.peer
            .as_ref()
            .expect("the peer is kept while the session runs")
    }

    fn on_message(&mut self, message: Message) -> Option<ReadEvent> {
        match message {
            Message::Close(_) => Some(ReadEvent::Eof),
            Message::Text(text) => Some(ReadEvent::Frame(Bytes::from(text))),
            Message::Binary(_) => {
                self.peer().deliver(Payload::encode(&ServerFrame::error(
                    None,
                    &ApiError::new(
                        ErrorCode::MALFORMED_FRAME,
                        "binary WebSocket messages are not frames; send each JSON frame as one text message",
                    ),
                )));
                None
            }
            // tungstenite answers pings itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
        }
    }

    fn on_error(&mut self, error: tungstenite::Error) -> ReadEvent {
        match error {
            // The message was refused from its header, before being buffered.
            // The socket cannot resynchronise after that: the session ends,
            // and the client gets the error, then `bye`.
            tungstenite::Error::Capacity(_) => {
                self.oversized = true;
                ReadEvent::TooLarge
            }
            // The stream cannot be read past a broken message either: the
            // session ends with a `bye` naming the cause, and the close code
            // RFC 6455 gives it (1007, 1002), not as if the user quit.
            tungstenite::Error::Utf8(_) => {
                self.peer().closer.close(
                    ErrorCode::MALFORMED_FRAME,
                    "a WebSocket text message was not valid UTF-8",
                );
                ReadEvent::Eof
            }
            tungstenite::Error::Protocol(violation) => {
                self.peer().closer.close(
                    ErrorCode::PROTOCOL_ERROR,
                    format!("WebSocket protocol error: {violation}"),
                );
                ReadEvent::Eof
            }
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                ReadEvent::Eof
            }
            other => ReadEvent::Failed(io::Error::other(other)),
        }
    }
}

impl<S> Connection for WsConnection<S>
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send,
{
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<ReadEvent> {
        if self.out.poll_write(&mut self.socket, cx).is_ready() {
            return Poll::Ready(ReadEvent::Failed(io::ErrorKind::BrokenPipe.into()));
        }
        if self.oversized {
            // The session has queued its `frame_too_large` error by now;
            // closing after it keeps the error ahead of the `bye`.
            let max = self.socket.max_frame_bytes;
            self.peer().closer.close(
                ErrorCode::FRAME_TOO_LARGE,
                format!("a WebSocket message was longer than the server's {max} bytes"),
            );
            return Poll::Ready(ReadEvent::Eof);
        }
        loop {
            match self.socket.next_message(cx) {
                Ok(Some(message)) => {
                    if let Some(event) = self.on_message(message) {
                        return Poll::Ready(event);
                    }
                    continue;
                }
                Ok(None) => {}
                Err(error) => return Poll::Ready(self.on_error(error)),
            }
            if let Err(e) = self.socket.release_if_idle(cx) {
                return Poll::Ready(ReadEvent::Failed(e));
            }
            match ready!(self.socket.poll_fill(cx)) {
                Ok(0) => return Poll::Ready(ReadEvent::Eof),
                Ok(_) => {}
                Err(e) => return Poll::Ready(ReadEvent::Failed(e)),
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.out.poll_write(&mut self.socket, cx)
    }
}

/// Message frames put together straight into one buffer per batch (a
/// payload's JSON behind its frame header), one write and flush per batch,
/// as on a stream; the engine writes only its own frames (pongs, the
/// close), never in the middle of a batch.
impl<S> FrameSink for WsSocket<S>
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin,
{
    fn poll_send(&mut self, cx: &mut Context<'_>, unsent: &mut Unsent) -> Poll<io::Result<()>> {
        loop {
            if unsent.bytes.is_empty() {
                // What the engine owes (a pong) goes out whole, between
                // batches.
                match self.poll_flush_engine(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        unsent.unflushed = true;
                        return Poll::Pending;
                    }
                }
                if unsent.frames.is_empty() {
                    break;
                }
                let len = unsent
                    .frames
                    .iter()
                    .map(Payload::websocket_frame_capacity)
                    .sum();
                let mut batch = BytesMut::with_capacity(len);
                for payload in unsent.frames.drain(..) {
                    payload.extend_websocket_frame(&mut batch);
                }
                unsent.bytes = batch.freeze();
            }
            self.batch_partly_written = true;
            let written = ready!(Pin::new(&mut self.io).poll_write(cx, &unsent.bytes))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            unsent.bytes.advance(written);
            if unsent.bytes.is_empty() {
                // Lets go of the batch's memory.
                unsent.bytes = Bytes::new();
                self.batch_partly_written = false;
            }
        }
        // TLS needs the flush; on TCP it is free.
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        unsent.unflushed = flushed.is_pending();
        ready!(flushed)?;
        self.release_if_idle(cx)?;
        Poll::Ready(Ok(()))
    }

    fn poll_close(&mut self, cx: &mut Context<'_>, code: &ErrorCode) -> Poll<io::Result<()>> {
        let close_sent = std::mem::replace(&mut self.close_sent, true);
        let (engine, mut io) = self.engine(cx);
        let result = if close_sent {
            engine.flush(&mut io)
        } else {
            engine.close(
                &mut io,
                Some(CloseFrame {
                    code: close_code(code).into(),
                    // The close reason is limited to 123 bytes: the code fits.
                    reason: Utf8Bytes::from(code.as_str()),
                }),
            )
        };
        match result {
            Ok(()) | Err(tungstenite::Error::ConnectionClosed) => {}
            Err(e) if would_block(&e) => return Poll::Pending,
            Err(e) => return Poll::Ready(Err(io::Error::other(e))),
        }
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The close code RFC 6455 gives a session's end.
fn close_code(code: &ErrorCode) -> u16 {
    match code.as_str() {
        "shutting_down" => CLOSE_GOING_AWAY,
        "frame_too_large" => CLOSE_TOO_BIG,
        "slow_consumer" | "handshake_timeout" | "kicked" => CLOSE_POLICY,
        "malformed_frame" => CLOSE_INVALID_DATA,
        "protocol_error" => CLOSE_PROTOCOL_ERROR,
        _ => CLOSE_NORMAL,
    }
}
