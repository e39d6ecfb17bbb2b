//! The browser app's transport, for tools that want to speak it: chatd's
//! `GET /ws`, one protocol frame per WebSocket text message.
//!
//! The rest of this crate reads and writes lines, so the two halves here
//! adapt: reading yields each text message followed by `\n`, and writing
//! sends each complete line as one text message.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::ClientError;

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
    let (socket, _response) = tokio_tungstenite::client_async(url.as_str(), stream)
        .await
        .map_err(|e| ClientError::Protocol(format!("WebSocket handshake with {url}: {e}")))?;
    let (sink, stream) = socket.split();
    Ok((
        WsRead {
            stream,
            pending: Bytes::new(),
            newline_due: false,
        },
        WsWrite {
            sink,
            line: Vec::new(),
        },
    ))
}

/// The receiving half: text messages as lines.
pub struct WsRead<S> {
    stream: SplitStream<WebSocketStream<S>>,
    /// What is left of the current message.
    pending: Bytes,
    /// The current message's `\n` is still to be read.
    newline_due: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsRead<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            if self.newline_due {
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
                buf.put_slice(b"\n");
                self.newline_due = false;
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.stream).poll_next(cx)) {
                // The end of the stream reads as end of file.
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Ok(Message::Text(text))) => {
                    self.pending = Bytes::from(text);
                    self.newline_due = true;
                }
                Some(Ok(_)) => {} // pings are answered by tungstenite
                Some(Err(tungstenite::Error::ConnectionClosed)) => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
    }
}

/// The sending half: each complete line goes out as one text message.
pub struct WsWrite<S> {
    sink: SplitSink<WebSocketStream<S>, Message>,
    /// The start of a line not yet complete.
    line: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsWrite<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.sink).poll_ready(cx)).map_err(io::Error::other)?;
        // One line per call at most, so that poll_ready precedes each send.
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
        Pin::new(&mut self.sink)
            .start_send(Message::text(text))
            .map_err(io::Error::other)?;
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.sink)
            .poll_flush(cx)
            .map_err(io::Error::other)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.sink)
            .poll_close(cx)
            .map_err(io::Error::other)
    }
}
