//! The WebSocket transport: one protocol frame (the same JSON as on TCP,
//! without the newline) per text message, through the same session code as
//! every other connection.
//!
//! [`WsFrames`] is the session's [`FrameSource`]; [`run_writer`] drains the
//! session's queue like [`crate::transport::framing::run_writer`] does for streams, with
//! the same slow-consumer and goodbye semantics. Message size is bounded by
//! tungstenite before a payload is buffered (`max_message_size` and
//! `max_frame_size` are set to `limits.max_frame_bytes` at the upgrade).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use chat_api::{ApiError, ErrorCode, Payload, ServerFrame, Transport};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite;

use crate::closer::Closer;
use crate::hub::Peer;
use crate::outbox::OutboxReceiver;
use crate::session::{self, ConnectionSlot, FrameSource, Shared};
use crate::transport::framing::{ReadEvent, LINGER};

/// Most bytes of queued frames handed to the socket before one flush.
pub(crate) const MAX_BATCH_BYTES: usize = 64 * 1024;

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
pub async fn run_session(
    shared: Arc<Shared>,
    slot: ConnectionSlot,
    socket: WebSocket,
    addr: SocketAddr,
    encrypted: bool,
    token: Option<String>,
) {
    let (sink, stream) = socket.split();
    let (peer, queue) = session::new_peer(&shared, Some(addr), Transport::WebSocket);
    if encrypted {
        peer.mark_encrypted();
    }
    if let Some(token) = token {
        peer.set_transport_token(&token);
    }
    shared
        .tracker
        .spawn(run_writer(sink, queue, peer.closer.clone()));
    let mut frames = WsFrames {
        stream,
        peer: peer.clone(),
        max_frame_bytes: shared.limits().max_frame_bytes,
        oversized: false,
    };
    session::run(shared, peer, &mut frames).await;
    drop(slot);
}

/// Inbound frames of one WebSocket session.
pub struct WsFrames {
    stream: SplitStream<WebSocket>,
    /// For replies the transport itself owes (a binary message), and to end
    /// the session when the socket can no longer be read.
    peer: Arc<Peer>,
    max_frame_bytes: usize,
    /// A message was too large: the socket cannot be read any further.
    oversized: bool,
}

impl FrameSource for WsFrames {
    // Cancel-safe: the only await is the stream's `next`, which keeps
    // partial messages inside tungstenite.
    async fn next_event(&mut self) -> ReadEvent {
        if self.oversized {
            // The session has queued its `frame_too_large` error by now;
            // closing after it keeps the error ahead of the `bye`.
            self.peer.closer.close(
                ErrorCode::FRAME_TOO_LARGE,
                format!(
                    "a WebSocket message was longer than the server's {} bytes",
                    self.max_frame_bytes
                ),
            );
            return ReadEvent::Eof;
        }
        loop {
            match self.stream.next().await {
                None | Some(Ok(Message::Close(_))) => return ReadEvent::Eof,
                Some(Ok(Message::Text(text))) => return ReadEvent::Frame(Bytes::from(text)),
                Some(Ok(Message::Binary(_))) => {
                    self.peer.deliver(Payload::encode(&ServerFrame::error(
                        None,
                        &ApiError::new(
                            ErrorCode::MALFORMED_FRAME,
                            "binary WebSocket messages are not frames; send each JSON frame as one text message",
                        ),
                    )));
                }
                // tungstenite answers pings itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Err(error)) => return self.on_error(error),
            }
        }
    }
}

impl WsFrames {
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
                self.peer.closer.close(
                    ErrorCode::MALFORMED_FRAME,
                    "a WebSocket text message was not valid UTF-8",
                );
                ReadEvent::Eof
            }
            Some(tungstenite::Error::Protocol(violation)) => {
                self.peer.closer.close(
                    ErrorCode::PROTOCOL_ERROR,
                    format!("WebSocket protocol error: {violation}"),
                );
                ReadEvent::Eof
            }
            _ => ReadEvent::Failed(io::Error::other(error)),
        }
    }
}

/// Drains a session's queue into the socket, one text message per frame,
/// flushing once per batch. Ends when the session closes: then the rest of
/// the queue (unless the client was too slow to read it) and a `bye` are
/// sent within [`LINGER`], followed by a close frame.
pub async fn run_writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: OutboxReceiver,
    closer: Arc<Closer>,
) {
    // Frames taken from the queue and not yet handed to the socket; kept
    // across a cancelled write so that the goodbye flush still sends them.
    let mut unsent: VecDeque<Payload> = VecDeque::new();
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
        unsent.extend(batch);
        let write = async {
            while let Some(next) = unsent.front() {
                sink.feed(text(next)).await?;
                unsent.pop_front();
            }
            sink.flush().await
        };
        let written = tokio::select! {
            biased;
            r = write => r,
            _ = closer.closed() => break,
        };
        if written.is_err() {
            // The peer is gone; the reader sees it too and ends the session.
            closer.close(ErrorCode::QUIT, "connection lost");
            return;
        }
    }
    let reason = closer.reason();
    let deadline = tokio::time::Instant::now() + LINGER;
    let mut rest = Vec::new();
    if reason.code != ErrorCode::SLOW_CONSUMER {
        // Replies the session sends until it has ended come before `bye`.
        let _ =
            tokio::time::timeout_at(deadline - LINGER / 2, queue.drain_until_released(&mut rest))
                .await;
        queue.try_recv_batch(&mut rest, usize::MAX);
    } else {
        unsent.clear();
    }
    let _ = tokio::time::timeout_at(deadline, async {
        for next in unsent.drain(..).chain(rest) {
            sink.feed(text(&next)).await?;
        }
        let close_code = match reason.code.as_str() {
            "shutting_down" => CLOSE_GOING_AWAY,
            "frame_too_large" => CLOSE_TOO_BIG,
            "slow_consumer" | "handshake_timeout" | "kicked" => CLOSE_POLICY,
            "malformed_frame" => CLOSE_INVALID_DATA,
            "protocol_error" => CLOSE_PROTOCOL_ERROR,
            _ => CLOSE_NORMAL,
        };
        let bye = Payload::encode(&ServerFrame::Bye {
            code: reason.code.clone(),
            reason: reason.reason,
        });
        sink.feed(text(&bye)).await?;
        sink.send(Message::Close(Some(CloseFrame {
            code: close_code,
            // The close reason is limited to 123 bytes: the code fits.
            reason: Utf8Bytes::from(reason.code.as_str()),
        })))
        .await?;
        sink.close().await
    })
    .await;
}

/// A payload as a text message, without copying it.
fn text(payload: &Payload) -> Message {
    let json = payload.line().slice(..payload.json().len());
    // Encoded frames are UTF-8; a plugin's hand-made payload might not be.
    let text = Utf8Bytes::try_from(json.clone())
        .unwrap_or_else(|_| Utf8Bytes::from(String::from_utf8_lossy(&json).into_owned()));
    Message::Text(text)
}
