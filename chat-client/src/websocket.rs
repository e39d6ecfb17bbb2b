//! The browser app's transport, for tools that want to speak it: chatd's
//! `GET /ws`, one protocol frame per WebSocket text message.
//!
//! The rest of this crate reads and writes lines, so the two halves here
//! adapt: reading yields each text message followed by `\n`, and writing
//! sends each complete line as one text message.
//!
//! tungstenite does the opening handshake and everything this side sends
//! (its engine masks client frames). Reading splits the server's frames
//! with tungstenite's frame-header parser and copies each text payload
//! straight into the caller's buffer: a load generator receiving millions
//! of messages a second spends its time on them, not on a message object
//! per frame. A server's ping is answered by the writing half, with the
//! next line it sends or its next flush.

use std::io::{self, Cursor, Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketContext};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::io::poll_read_buf;

use crate::ClientError;

/// Bytes read from the socket per call, at least.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes read per call at most, however long the message.
const MAX_READ_CHUNK: usize = 256 * 1024;

/// Opens the WebSocket on an established (TCP or TLS) stream; `host` is the
/// `host:port` the request names.
pub(crate) async fn open<S>(
    stream: S,
    host: &str,
    tls: bool,
) -> Result<(WsRead<S>, WsWrite<S>), ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let scheme = if tls { "wss" } else { "ws" };
    let url = format!("{scheme}://{host}/ws");
    let (socket, _response) =
        tokio_tungstenite::client_async(url.as_str(), UpToHeaderEnd::new(stream))
            .await
            .map_err(|e| ClientError::Protocol(format!("WebSocket handshake with {url}: {e}")))?;
    let UpToHeaderEnd { stream, held, .. } = socket.into_inner();
    let (read, write) = tokio::io::split(stream);
    let owed = OwedPong::default();
    Ok((
        WsRead {
            io: read,
            input: held,
            payload_left: 0,
            newline_due: false,
            closed: false,
            owed: owed.clone(),
        },
        WsWrite {
            io: write,
            engine: WebSocketContext::new(Role::Client, None),
            line: Vec::new(),
            owed,
        },
    ))
}

/// The stream during the handshake: reads stop at the end of the HTTP
/// response's header, so that tungstenite's handshake buffers nothing of
/// the frames after it (the server's `welcome` may come in the same
/// packet); those bytes are held for the reading half.
struct UpToHeaderEnd<S> {
    stream: S,
    /// Read from the stream, not yet handed to the handshake.
    held: BytesMut,
    /// How much of the blank line's `\r\n\r\n` the bytes handed over so
    /// far end with.
    matched: usize,
    /// The header's end has been handed over: nothing more is.
    done: bool,
}

impl<S> UpToHeaderEnd<S> {
    fn new(stream: S) -> Self {
        UpToHeaderEnd {
            stream,
            held: BytesMut::new(),
            matched: 0,
            done: false,
        }
    }

    /// How many of the first `limit` held bytes may be handed over: up to
    /// and including the header's blank line. Every byte looked at is
    /// handed over, so the count of `matched` stays true.
    fn releasable(&mut self, limit: usize) -> usize {
        for (i, &byte) in self.held[..limit].iter().enumerate() {
            self.matched = match (self.matched, byte) {
                (0 | 2, b'\r') | (1 | 3, b'\n') => self.matched + 1,
                (_, b'\r') => 1,
                _ => 0,
            };
            if self.matched == 4 {
                self.done = true;
                return i + 1;
            }
        }
        limit
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for UpToHeaderEnd<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(Ok(())); // the handshake reads no further
        }
        if this.held.is_empty() {
            this.held.reserve(READ_CHUNK);
            ready!(poll_read_buf(
                Pin::new(&mut this.stream),
                cx,
                &mut this.held
            ))?;
        }
        let n = this.releasable(this.held.len().min(buf.remaining()));
        buf.put_slice(&this.held[..n]);
        this.held.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for UpToHeaderEnd<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The payload of the last ping the reading half has not seen answered;
/// the writing half sends the pong.
type OwedPong = Arc<Mutex<Option<Bytes>>>;

/// The receiving half: text messages as lines.
pub struct WsRead<S> {
    io: ReadHalf<S>,
    /// Bytes read and not yet taken: frames, or the rest of one's payload.
    input: BytesMut,
    /// Bytes of the current text frame's payload still to hand out (its
    /// header is consumed).
    payload_left: usize,
    /// The current message's `\n` is still to be handed out.
    newline_due: bool,
    /// The server's close frame has come: the stream is at its end.
    closed: bool,
    owed: OwedPong,
}

impl<S: AsyncRead + Unpin> WsRead<S> {
    /// Hands out what `input` holds of messages into `buf`; `Ok(true)` if
    /// anything was.
    fn drain_into(&mut self, buf: &mut ReadBuf<'_>) -> io::Result<bool> {
        let mut wrote = false;
        while buf.remaining() > 0 && !self.closed {
            if self.payload_left > 0 {
                let n = self.payload_left.min(self.input.len()).min(buf.remaining());
                if n == 0 {
                    break; // more of the payload is still to be read
                }
                buf.put_slice(&self.input[..n]);
                self.input.advance(n);
                self.payload_left -= n;
                wrote = true;
                continue;
            }
            if self.newline_due {
                buf.put_slice(b"\n");
                self.newline_due = false;
                wrote = true;
                continue;
            }
            if !self.next_frame()? {
                break;
            }
        }
        Ok(wrote)
    }

    /// Takes the next frame's header (and a control frame whole) off
    /// `input`; `Ok(false)` if it is not all in yet.
    fn next_frame(&mut self) -> io::Result<bool> {
        let mut cursor = Cursor::new(&self.input[..]);
        let Some((header, len)) = FrameHeader::parse(&mut cursor).map_err(io::Error::other)? else {
            return Ok(false);
        };
        let header_len = cursor.position() as usize;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        if header.mask.is_some() {
            return Err(protocol_error("the server masked a frame"));
        }
        match header.opcode {
            OpCode::Data(Data::Text | Data::Continue) => {
                self.input.advance(header_len);
                self.payload_left = len;
                self.newline_due = header.is_final;
            }
            OpCode::Data(_) => {
                return Err(protocol_error(
                    "the server sent a binary message; chatd sends each frame as text",
                ))
            }
            OpCode::Control(control) => {
                if self.input.len() < header_len + len {
                    return Ok(false);
                }
                self.input.advance(header_len);
                let payload = self.input.split_to(len).freeze();
                match control {
                    Control::Ping => *self.owed.lock().expect("never poisoned") = Some(payload),
                    Control::Close => self.closed = true,
                    _ => {}
                }
            }
        }
        Ok(true)
    }
}

fn protocol_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("WebSocket: {what}"))
}

impl<S: AsyncRead + Unpin> AsyncRead for WsRead<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.drain_into(buf)? || this.closed {
                // Text handed out, or the end of the stream (nothing handed
                // out reads as end of file).
                return Poll::Ready(Ok(()));
            }
            // Room for more of a large payload (handed out as it comes, so
            // never all of it at once), or another chunk.
            this.input
                .reserve(this.payload_left.clamp(READ_CHUNK, MAX_READ_CHUNK));
            if ready!(poll_read_buf(Pin::new(&mut this.io), cx, &mut this.input))? == 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// The sending half: each complete line goes out as one text message,
/// through tungstenite's engine.
pub struct WsWrite<S> {
    io: WriteHalf<S>,
    engine: WebSocketContext,
    /// The start of a line not yet complete.
    line: Vec<u8>,
    owed: OwedPong,
}

/// The engine's view of the write half (`WouldBlock` where it would wait;
/// its waker is then registered with `cx`).
struct EngineIo<'a, 'b, S> {
    io: &'a mut WriteHalf<S>,
    cx: &'a mut Context<'b>,
}

impl<S> Read for EngineIo<'_, '_, S> {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        // The engine writes only; the reading half has the socket's input.
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl<S: AsyncWrite> Write for EngineIo<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
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

impl<S: AsyncWrite> WsWrite<S> {
    /// The engine and its view of the write half.
    fn engine<'a, 'b>(
        &'a mut self,
        cx: &'a mut Context<'b>,
    ) -> (&'a mut WebSocketContext, EngineIo<'a, 'b, S>) {
        let io = EngineIo {
            io: &mut self.io,
            cx,
        };
        (&mut self.engine, io)
    }

    /// Writes out and flushes everything the engine holds, after handing
    /// it the pong the reading half owes, if any.
    fn poll_engine_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let ping = self.owed.lock().expect("never poisoned").take();
        let (engine, mut io) = self.engine(cx);
        if let Some(ping) = ping {
            pass(engine.write(&mut io, Message::Pong(ping)))?;
        }
        match engine.flush(&mut io) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) if would_block(&e) => Poll::Pending,
            Err(e) => Poll::Ready(Err(io::Error::other(e))),
        }
    }
}

/// A write the socket could not take at once is not an error: the engine
/// keeps the frame for the next flush.
fn pass(result: Result<(), tungstenite::Error>) -> io::Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if would_block(&e) => Ok(()),
        Err(e) => Err(io::Error::other(e)),
    }
}

impl<S: AsyncWrite> AsyncWrite for WsWrite<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // One line per call at most; the previous ones are written out
        // first, so that the engine holds one at a time.
        ready!(self.poll_engine_flush(cx))?;
        let (taken, complete) = match memchr::memchr(b'\n', buf) {
            Some(end) => (end + 1, true),
            None => (buf.len(), false),
        };
        if !complete {
            self.line.extend_from_slice(buf);
            return Poll::Ready(Ok(taken));
        }
        let mut line = std::mem::take(&mut self.line);
        line.extend_from_slice(&buf[..taken - 1]);
        let text = String::from_utf8(line)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "frames are UTF-8 text"))?;
        // A frame the socket cannot take yet stays in the engine.
        let (engine, mut io) = self.engine(cx);
        pass(engine.write(&mut io, Message::text(text)))?;
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_engine_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let (engine, mut io) = this.engine(cx);
        // Sends the close frame once, then waits for it to be written.
        match engine.close(&mut io, None) {
            Ok(()) | Err(tungstenite::Error::ConnectionClosed) => {}
            Err(tungstenite::Error::AlreadyClosed) => {}
            Err(e) if would_block(&e) => return Poll::Pending,
            Err(e) => return Poll::Ready(Err(io::Error::other(e))),
        }
        ready!(this.poll_engine_flush(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;

    const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

    /// A server on the other end of an in-memory pipe, and the client's
    /// halves, opened over it.
    async fn pair() -> (
        tokio_tungstenite::WebSocketStream<tokio::io::DuplexStream>,
        WsRead<tokio::io::DuplexStream>,
        WsWrite<tokio::io::DuplexStream>,
    ) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let server = tokio::spawn(async move {
            let mut ws = tokio_tungstenite::accept_async(server).await.unwrap();
            // Sent at once after the 101, so that it shares a read with it.
            ws.send(Message::text("{\"type\":\"welcome\"}"))
                .await
                .unwrap();
            ws
        });
        let (read, write) = open(client, "127.0.0.1:1", false).await.unwrap();
        (server.await.unwrap(), read, write)
    }

    async fn line(read: &mut WsRead<tokio::io::DuplexStream>, len: usize) -> String {
        let mut buf = vec![0u8; len];
        tokio::time::timeout(WAIT, read.read_exact(&mut buf))
            .await
            .expect("the line arrives")
            .unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[tokio::test]
    async fn text_messages_read_as_lines_even_in_the_handshakes_packet() {
        let (mut server, mut read, mut write) = pair().await;
        assert_eq!(line(&mut read, 19).await, "{\"type\":\"welcome\"}\n");
        // A message in fragments, with a ping between them, is one line.
        server
            .send(Message::Frame(Frame::message(
                Bytes::from_static(b"{\"a\":"),
                OpCode::Data(Data::Text),
                false,
            )))
            .await
            .unwrap();
        server
            .send(Message::Ping(Bytes::from_static(b"hi")))
            .await
            .unwrap();
        server
            .send(Message::Frame(Frame::message(
                Bytes::from_static(b"1}"),
                OpCode::Data(Data::Continue),
                true,
            )))
            .await
            .unwrap();
        assert_eq!(line(&mut read, 8).await, "{\"a\":1}\n");
        // The ping is answered by the writing half with its next line.
        write.write_all(b"{\"b\":2}\n").await.unwrap();
        write.flush().await.unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            let message = tokio::time::timeout(WAIT, server.next()).await.unwrap();
            got.push(message.unwrap().unwrap());
        }
        assert_eq!(
            got,
            [
                Message::Pong(Bytes::from_static(b"hi")),
                Message::text("{\"b\":2}")
            ]
        );
    }

    #[tokio::test]
    async fn a_ping_is_answered_by_a_flush_alone() {
        let (mut server, mut read, mut write) = pair().await;
        line(&mut read, 19).await;
        server
            .send(Message::Ping(Bytes::from_static(b"x")))
            .await
            .unwrap();
        server.send(Message::text("{}")).await.unwrap();
        assert_eq!(line(&mut read, 3).await, "{}\n");
        write.flush().await.unwrap();
        let message = tokio::time::timeout(WAIT, server.next()).await.unwrap();
        assert_eq!(
            message.unwrap().unwrap(),
            Message::Pong(Bytes::from_static(b"x"))
        );
    }

    #[tokio::test]
    async fn the_servers_close_ends_the_stream_and_binary_is_refused() {
        let (mut server, mut read, _write) = pair().await;
        line(&mut read, 19).await;
        server
            .close(Some(CloseFrame {
                code: 1000.into(),
                reason: "bye".into(),
            }))
            .await
            .unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(WAIT, read.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert!(rest.is_empty());

        let (mut server, mut read, _write) = pair().await;
        line(&mut read, 19).await;
        server.send(Message::binary(vec![1, 2, 3])).await.unwrap();
        let mut buf = [0u8; 8];
        let error = tokio::time::timeout(WAIT, read.read(&mut buf))
            .await
            .unwrap()
            .unwrap_err();
        assert!(error.to_string().contains("binary"), "{error}");
    }
}
