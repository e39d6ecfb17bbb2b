//! A server-side TLS session on rustls's unbuffered API: the socket's bytes
//! are held by chatd, and only while a record is in flight, so an idle TLS
//! connection holds no record buffer (rustls's buffered `ServerConnection`
//! keeps a 4 KiB one for the connection's life).
//!
//! [`TlsStream`] is an `AsyncRead + AsyncWrite` like the TCP socket it wraps,
//! so the session code, the writer's batches (one write per flush) and the
//! web server use it unchanged.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, ReadTraffic, UnbufferedStatus,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::framing::ReadReady;

/// Bytes read from the socket per call once a record is in flight (a
/// record's header asks for more when the record is larger).
const READ_CHUNK: usize = 2048;
/// A TLS record's header: type, version, length.
const RECORD_HEADER: usize = 5;
/// Room guessed per record for its header, tag and padding when encrypting;
/// rustls names the exact size when the guess is short.
const RECORD_OVERHEAD: usize = 64;
/// Plaintext bytes per TLS record (rustls's default fragment size).
const RECORD_PLAINTEXT: usize = 16 * 1024;

/// A TLS session over a TCP socket, after its handshake.
pub struct TlsStream {
    tcp: TcpStream,
    /// Boxed, so that the session's task (which holds the stream) is hardly
    /// larger than a plaintext one's.
    tls: Box<Tls>,
}

/// rustls's connection state and the bytes in flight.
struct Tls {
    conn: UnbufferedServerConnection,
    /// TLS bytes received and not yet processed (a partial record, or a
    /// handshake message spread over records); `None`, holding no memory,
    /// between records.
    incoming: Option<BytesMut>,
    /// Decrypted bytes the reader has not taken yet (the rest of a record
    /// larger than the reader's buffer); empty between records.
    plaintext: BytesMut,
    /// Encrypted bytes not yet written to the socket; empty, holding no
    /// memory, between batches.
    outgoing: BytesMut,
    /// The peer sent `close_notify`: reads end.
    peer_closed: bool,
    /// Our `close_notify` is queued.
    close_sent: bool,
}

/// What the caller of [`TlsStream::process`] wants done with the records.
enum Goal<'a, 'b> {
    /// Drive the handshake (stop once it is complete or needs input).
    Handshake,
    /// Deliver application data into this buffer (stop after one batch of
    /// records, or when more input is needed).
    Read(&'a mut ReadBuf<'b>),
    /// Encrypt this application data into `outgoing`.
    Write(&'a [u8]),
    /// Queue `close_notify` in `outgoing`.
    Close,
}

/// Where [`TlsStream::process`] stopped.
#[derive(PartialEq, Eq)]
enum Stop {
    /// The goal is reached (bytes delivered or encrypted, handshake done).
    Done,
    /// More TLS bytes must be read from the peer first.
    NeedInput,
}

impl TlsStream {
    /// Runs the server side of a TLS handshake on `tcp`.
    pub async fn accept(config: Arc<rustls::ServerConfig>, tcp: TcpStream) -> io::Result<Self> {
        let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
        let mut stream = TlsStream {
            tcp,
            tls: Box::new(Tls {
                conn,
                incoming: None,
                plaintext: BytesMut::new(),
                outgoing: BytesMut::new(),
                peer_closed: false,
                close_sent: false,
            }),
        };
        match std::future::poll_fn(|cx| stream.poll_handshake(cx)).await {
            Ok(()) => Ok(stream),
            Err(error) => {
                stream.tls.send_alert(&stream.tcp);
                Err(error)
            }
        }
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let stop = self.tls.process(Goal::Handshake)?;
            // Our flight goes out before we wait for the peer's.
            ready!(self.poll_write_outgoing(cx))?;
            if stop == Stop::Done {
                return Poll::Ready(Ok(()));
            }
            if ready!(self.poll_fill(cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the client closed the connection during the TLS handshake",
                )));
            }
        }
    }

    /// Reads TLS bytes from the socket into `incoming`, allocating it only
    /// now: room for the rest of the record in flight, at least a chunk.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let incoming = self
            .tls
            .incoming
            .get_or_insert_with(|| BytesMut::with_capacity(READ_CHUNK));
        let wanted = match record_len(incoming) {
            Some(len) => len.saturating_sub(incoming.len()).max(READ_CHUNK),
            None => READ_CHUNK,
        };
        incoming.reserve(wanted);
        let read = tokio_util::io::poll_read_buf(Pin::new(&mut self.tcp), cx, incoming);
        if incoming.is_empty() {
            self.tls.incoming = None;
        }
        read
    }

    /// Writes `outgoing` to the socket; `Ready` once all of it is written
    /// (its memory is then let go).
    fn poll_write_outgoing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let outgoing = &mut self.tls.outgoing;
        while !outgoing.is_empty() {
            let written = ready!(Pin::new(&mut self.tcp).poll_write(cx, outgoing))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            outgoing.advance(written);
        }
        *outgoing = BytesMut::new();
        Poll::Ready(Ok(()))
    }
}

impl Tls {
    /// After a failed handshake, rustls has queued an alert telling the
    /// peer why; it goes out if the socket takes it at once.
    fn send_alert(&mut self, tcp: &TcpStream) {
        let mut incoming = self.incoming.take();
        let mut empty = [0u8; 0];
        let input = incoming.as_deref_mut().unwrap_or(&mut empty);
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) =
            self.conn.process_tls_records(input).state
        {
            let _ = append_encoded(&mut self.outgoing, 256, |out| match encode.encode(out) {
                Ok(written) => Ok(written),
                Err(EncodeError::InsufficientSize(e)) => Err(Some(e.required_size)),
                Err(EncodeError::AlreadyEncoded) => Err(None),
            });
        }
        let _ = tcp.try_write(&self.outgoing);
    }

    /// Feeds the buffered TLS bytes to rustls until `goal` is reached or
    /// more input is needed. Handshake and alert records rustls wants sent
    /// are appended to `outgoing` (in order, before any later data);
    /// application data goes to the reader's buffer or `plaintext`.
    fn process(&mut self, mut goal: Goal<'_, '_>) -> io::Result<Stop> {
        loop {
            let mut empty = [0u8; 0];
            let input = self.incoming.as_deref_mut().unwrap_or(&mut empty);
            let UnbufferedStatus { discard, state } = self.conn.process_tls_records(input);
            let step = match state.map_err(tls_error)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    let delivered = take_records(&mut traffic, &mut goal, &mut self.plaintext)?;
                    match goal {
                        Goal::Read(_) if delivered => Some(Stop::Done),
                        _ => None,
                    }
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    append_encoded(&mut self.outgoing, 4096, |out| match encode.encode(out) {
                        Ok(written) => Ok(written),
                        Err(EncodeError::InsufficientSize(e)) => Err(Some(e.required_size)),
                        Err(EncodeError::AlreadyEncoded) => Err(None),
                    })?;
                    None
                }
                // `outgoing` keeps the records in order and is written
                // before anything encrypted after them.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Stop::NeedInput),
                ConnectionState::PeerClosed => {
                    self.peer_closed = true;
                    match goal {
                        Goal::Read(_) => Some(Stop::Done),
                        _ => None,
                    }
                }
                ConnectionState::Closed => match goal {
                    Goal::Write(_) => return Err(io::ErrorKind::BrokenPipe.into()),
                    _ => Some(Stop::Done),
                },
                ConnectionState::WriteTraffic(mut traffic) => match &goal {
                    // TLS 1.3 lets the server write before the client's
                    // `Finished` has arrived: the handshake may go on.
                    Goal::Handshake => Some(if self.conn.is_handshaking() {
                        Stop::NeedInput
                    } else {
                        Stop::Done
                    }),
                    Goal::Read(_) => Some(Stop::NeedInput),
                    Goal::Write(data) => {
                        let records = data.len().div_ceil(RECORD_PLAINTEXT);
                        let room = data.len() + records * RECORD_OVERHEAD;
                        append_encoded(&mut self.outgoing, room, |out| {
                            encrypt_result(traffic.encrypt(data, out))
                        })?;
                        Some(Stop::Done)
                    }
                    Goal::Close => {
                        append_encoded(&mut self.outgoing, RECORD_OVERHEAD, |out| {
                            encrypt_result(traffic.queue_close_notify(out))
                        })?;
                        Some(Stop::Done)
                    }
                },
                // Early data is never accepted (`max_early_data_size` is 0).
                _ => return Err(tls_error("unexpected TLS state")),
            };
            self.discard(discard);
            if let Some(stop) = step {
                return Ok(stop);
            }
        }
    }

    /// Drops the TLS bytes rustls is done with; an empty buffer is freed.
    fn discard(&mut self, processed: usize) {
        if let Some(incoming) = &mut self.incoming {
            incoming.advance(processed);
            if incoming.is_empty() {
                self.incoming = None;
            }
        }
    }

    /// Whether `incoming` starts with a whole record rustls can process
    /// without another read.
    fn has_whole_record(&self) -> bool {
        self.incoming
            .as_ref()
            .is_some_and(|incoming| record_len(incoming).is_some_and(|len| incoming.len() >= len))
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.tls.plaintext.is_empty() {
                let n = this.tls.plaintext.len().min(buf.remaining());
                buf.put_slice(&this.tls.plaintext[..n]);
                this.tls.plaintext.advance(n);
                if this.tls.plaintext.is_empty() {
                    this.tls.plaintext = BytesMut::new();
                }
                return Poll::Ready(Ok(()));
            }
            if this.tls.peer_closed {
                return Poll::Ready(Ok(()));
            }
            if this.tls.process(Goal::Read(buf))? == Stop::Done {
                return Poll::Ready(Ok(()));
            }
            // Replies rustls owes the peer (a key update) go out when the
            // socket takes them; a full socket must not stop reading.
            if let Poll::Ready(Err(e)) = this.poll_write_outgoing(cx) {
                return Poll::Ready(Err(e));
            }
            if ready!(this.poll_fill(cx))? == 0 {
                // The peer closed without `close_notify`: a truncated line is
                // dropped by the reader, so this is an end like any other.
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // What was encrypted before goes first: `outgoing` stays one batch.
        ready!(this.poll_write_outgoing(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        this.tls.process(Goal::Write(buf))?;
        // One write for the batch now; the rest when the socket drains.
        if let Poll::Ready(Err(e)) = this.poll_write_outgoing(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_write_outgoing(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.tls.close_sent {
            ready!(this.poll_write_outgoing(cx))?;
            this.tls.process(Goal::Close)?;
            this.tls.close_sent = true;
        }
        ready!(this.poll_write_outgoing(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

impl ReadReady for TlsStream {
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if let Poll::Ready(Err(e)) = self.poll_write_outgoing(cx) {
            return Poll::Ready(Err(e));
        }
        let tls = &self.tls;
        if !tls.plaintext.is_empty() || tls.peer_closed || tls.has_whole_record() {
            return Poll::Ready(Ok(true));
        }
        // Waits in the socket's registration, holding no buffer.
        self.tcp.poll_read_ready(cx).map_ok(|()| true)
    }
}

/// Takes every decrypted record: into the reader's buffer if the goal is a
/// read and nothing is waiting before them, the rest into `plaintext`.
/// Returns whether there was any.
fn take_records(
    traffic: &mut ReadTraffic<'_, '_, ServerConnectionData>,
    goal: &mut Goal<'_, '_>,
    plaintext: &mut BytesMut,
) -> io::Result<bool> {
    let mut any = false;
    while let Some(record) = traffic.next_record() {
        let payload = record.map_err(tls_error)?.payload;
        let direct = match goal {
            Goal::Read(buf) if plaintext.is_empty() => {
                let n = payload.len().min(buf.remaining());
                buf.put_slice(&payload[..n]);
                n
            }
            _ => 0,
        };
        plaintext.extend_from_slice(&payload[direct..]);
        any = true;
    }
    Ok(any)
}

/// The length of the record `bytes` starts with, header included, once its
/// header is there.
fn record_len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..RECORD_HEADER)?;
    Some(RECORD_HEADER + usize::from(u16::from_be_bytes([header[3], header[4]])))
}

/// Appends what `encode` writes to `out`, giving it `room` bytes first and
/// as many as it asks for if that was not enough (`Err(Some(size))`).
fn append_encoded(
    out: &mut BytesMut,
    room: usize,
    mut encode: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> io::Result<()> {
    let start = out.len();
    let mut room = room;
    loop {
        out.resize(start + room, 0);
        match encode(&mut out[start..]) {
            Ok(written) => {
                out.truncate(start + written);
                return Ok(());
            }
            Err(Some(required)) if required > room => room = required,
            Err(_) => {
                out.truncate(start);
                return Err(tls_error("cannot encode a TLS record"));
            }
        }
    }
}

fn encrypt_result(result: Result<usize, EncryptError>) -> Result<usize, Option<usize>> {
    match result {
        Ok(written) => Ok(written),
        Err(EncryptError::InsufficientSize(e)) => Err(Some(e.required_size)),
        Err(_) => Err(None),
    }
}

fn tls_error(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}
