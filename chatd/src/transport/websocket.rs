//! The WebSocket transport: one protocol frame (the same JSON as on TCP,
//! without the newline) per text message, through the same session code as
//! every other connection.
//!
//! [`WsConnection`] is the session's [`Connection`]: tungstenite's protocol
//! engine, read and written by the session's one task without splitting
//! the socket, and the writer every transport shares. Message size is
//! bounded by tungstenite before a payload is buffered (`max_message_size`
//! and `max_frame_size` are set to `limits.max_frame_bytes` at the upgrade).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use chat_api::{ApiError, ErrorCode, Payload, ServerFrame, Transport};
use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite;

use super::writer::{FrameSink, Outgoing, Unsent};
use crate::hub::Peer;
use crate::session::{self, Connection, ReadEvent};
use crate::shared::{ConnectionSlot, Shared};

/// tungstenite's read buffer per connection (it reads at most this much
/// per system call; a message's payload gets room of its own).
pub(crate) const READ_BUFFER_BYTES: usize = 1024;

/// Close codes of RFC 6455 §7.4.1.
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_PROTOCOL_ERROR: u16 = 1002;
const CLOSE_INVALID_DATA: u16 = 1007;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;

/// Runs one WebSocket session until it ends; `slot` is held throughout.
/// `encrypted` tells whether it came over HTTPS; `token` is the resume token
/// of the upgrade's cookie, used by a `resume` frame without `token`.
/// Not an `async fn`: its future holds the socket once, inside the
/// connection (an `async fn` would keep its argument beside it).
pub fn run_session(
    shared: Arc<Shared>,
    slot: ConnectionSlot,
    socket: WebSocket,
    addr: SocketAddr,
    encrypted: bool,
    token: Option<String>,
) -> impl std::future::Future<Output = ()> + Send {
    let (peer, queue) = session::new_peer(&shared, Some(addr), Transport::WebSocket);
    if encrypted {
        peer.mark_encrypted();
    }
    if let Some(token) = token {
        peer.set_transport_token(&token);
    }
    let mut conn = WsConnection {
        socket: WsSocket {
            socket,
            close_sent: false,
        },
        out: Outgoing::new(queue, peer.closer.clone()),
        peer: Some(peer.clone()),
        max_frame_bytes: shared.limits().max_frame_bytes,
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

/// The socket, as the shared writer sees it.
struct WsSocket {
    socket: WebSocket,
    /// The close frame has been handed to tungstenite.
    close_sent: bool,
}

/// One WebSocket session's connection.
pub struct WsConnection {
    socket: WsSocket,
    out: Outgoing,
    /// For replies the transport itself owes (a binary message), and to end
    /// the session when the socket can no longer be read. Let go before the
    /// goodbye, which waits for the session to release its queue.
    peer: Option<Arc<Peer>>,
    max_frame_bytes: usize,
    /// A message was too large: the socket cannot be read any further.
    oversized: bool,
}

impl WsConnection {
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

    fn on_message(&mut self, message: Option<Result<Message, axum::Error>>) -> Option<ReadEvent> {
        match message {
            None | Some(Ok(Message::Close(_))) => Some(ReadEvent::Eof),
            Some(Ok(Message::Text(text))) => Some(ReadEvent::Frame(Bytes::from(text))),
            Some(Ok(Message::Binary(_))) => {
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
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
            Some(Err(error)) => Some(self.on_error(error)),
        }
    }

    fn on_error(&mut self, error: axum::Error) -> ReadEvent {
        let error = error.into_inner();
        match error.downcast_ref::<tungstenite::Error>() {
            // The message was refused from its header, before being buffered.
            // The socket cannot resynchronise after that: the session ends,
            // and the client gets the error, then `bye`.
            Some(tungstenite::Error::Capacity(_)) => {
                self.oversized = true;
                ReadEvent::TooLarge
            }
            // The stream cannot be read past a broken message either: the
            // session ends with a `bye` naming the cause, and the close code
            // RFC 6455 gives it (1007, 1002), not as if the user quit.
            Some(tungstenite::Error::Utf8(_)) => {
                self.peer().closer.close(
                    ErrorCode::MALFORMED_FRAME,
                    "a WebSocket text message was not valid UTF-8",
                );
                ReadEvent::Eof
            }
            Some(tungstenite::Error::Protocol(violation)) => {
                self.peer().closer.close(
                    ErrorCode::PROTOCOL_ERROR,
                    format!("WebSocket protocol error: {violation}"),
                );
                ReadEvent::Eof
            }
            _ => ReadEvent::Failed(io::Error::other(error)),
        }
    }
}

impl Connection for WsConnection {
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<ReadEvent> {
        if self.out.poll_write(&mut self.socket, cx).is_ready() {
            return Poll::Ready(ReadEvent::Failed(io::ErrorKind::BrokenPipe.into()));
        }
        if self.oversized {
            // The session has queued its `frame_too_large` error by now;
            // closing after it keeps the error ahead of the `bye`.
            self.peer().closer.close(
                ErrorCode::FRAME_TOO_LARGE,
                format!(
                    "a WebSocket message was longer than the server's {} bytes",
                    self.max_frame_bytes
                ),
            );
            return Poll::Ready(ReadEvent::Eof);
        }
        loop {
            // Partial messages stay inside tungstenite across `Pending`.
            let message = ready!(Pin::new(&mut self.socket.socket).poll_next(cx));
            if let Some(event) = self.on_message(message) {
                return Poll::Ready(event);
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.out.poll_write(&mut self.socket, cx)
    }
}

/// One text message per frame, one flush per batch.
impl FrameSink for WsSocket {
    fn poll_send(&mut self, cx: &mut Context<'_>, unsent: &mut Unsent) -> Poll<io::Result<()>> {
        let mut socket = Pin::new(&mut self.socket);
        while let Some(next) = unsent.frames.front() {
            ready!(socket.as_mut().poll_ready(cx)).map_err(io::Error::other)?;
            let message = text(next);
            unsent.frames.pop_front();
            socket
                .as_mut()
                .start_send(message)
                .map_err(io::Error::other)?;
        }
        socket.poll_flush(cx).map_err(io::Error::other)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>, code: &ErrorCode) -> Poll<io::Result<()>> {
        let mut socket = Pin::new(&mut self.socket);
        if !self.close_sent {
            ready!(socket.as_mut().poll_ready(cx)).map_err(io::Error::other)?;
            socket
                .as_mut()
                .start_send(Message::Close(Some(CloseFrame {
                    code: close_code(code),
                    // The close reason is limited to 123 bytes: the code fits.
                    reason: Utf8Bytes::from(code.as_str()),
                })))
                .map_err(io::Error::other)?;
            self.close_sent = true;
        }
        socket.poll_close(cx).map_err(io::Error::other)
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

/// A payload as a text message, without copying it.
fn text(payload: &Payload) -> Message {
    let json = payload.line().slice(..payload.json().len());
    // Encoded frames are UTF-8; a plugin's hand-made payload might not be.
    let text = Utf8Bytes::try_from(json.clone())
        .unwrap_or_else(|_| Utf8Bytes::from(String::from_utf8_lossy(&json).into_owned()));
    Message::Text(text)
}
