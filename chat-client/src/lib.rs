//! # chat-client: an async client for the chatd protocol
//!
//! Used by `client-tui`, `chat-bench` and chatd's own tests. Two levels:
//!
//! * [`Connection::connect`] opens TCP, TLS or a WebSocket ([`websocket`]),
//!   performs the handshake and returns a [`Reader`] and a [`Writer`] that
//!   can live in different tasks.
//! * [`files`] uploads and downloads files (the server's `files` plugin)
//!   with progress callbacks, resuming after a dropped connection.
//! * [`accounts`] logs in and resumes a login on a new connection with its
//!   resume token; [`history`] pages through conversations and keeps read
//!   markers.
//! * [`Reader::next_line`] hands out raw lines (for load generators that
//!   must not parse everything); [`Reader::next`] parses them into
//!   [`Received`] frames.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chat_client::ClientError> {
//! use chat_client::{ConnectOptions, Connection};
//! use chat_protocol::ClientFrame;
//! let (mut reader, mut writer, welcome) =
//!     Connection::connect("127.0.0.1:7878", &ConnectOptions::default()).await?;
//! writer.send(Some(1), &ClientFrame::Nick { nick: "alice".into() }).await?;
//! while let Some(frame) = reader.next().await? {
//!     println!("{frame:?}");
//! }
//! # Ok(()) }
//! ```

pub mod accounts;
pub mod files;
pub mod history;
pub mod websocket;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
pub use chat_protocol::protocol::Received;
use chat_protocol::{ClientFrame, ErrorCode, ServerFrame, PROTOCOL_VERSION};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// What can go wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {error}")]
    Connect { addr: String, error: io::Error },
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("the server sent a line that is not a frame: {0}")]
    Protocol(String),
    #[error("the server refused the handshake: {code}: {message}")]
    Refused { code: ErrorCode, message: String },
    #[error("no answer from the server within {0:?}")]
    Timeout(Duration),
    /// Not sent: the server would discard it and could not say which
    /// request its `frame_too_large` error answers.
    #[error("the frame is {size} bytes, over the server's limit of {limit} bytes (max_frame_bytes in its welcome); send less at once")]
    FrameTooLarge { size: usize, limit: usize },
}

/// A request the server refused or answered unexpectedly ([`accounts`],
/// [`history`]).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server answered with an `error` frame.
    #[error("the server refused: {code}: {message}")]
    Refused { code: ErrorCode, message: String },
    #[error("unexpected reply from the server: {0}")]
    Protocol(String),
}

impl RequestError {
    /// The server's error code, when the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            RequestError::Refused { code, .. } => Some(code.as_str()),
            _ => None,
        }
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Use TLS.
    pub tls: bool,
    /// Speak the browser app's transport: a WebSocket on `GET /ws` of the
    /// web listener (`addr` is then the web listener's address).
    pub websocket: bool,
    /// PEM file with the CA (or self-signed certificate) to trust; without
    /// it the system's roots are used.
    pub ca: Option<PathBuf>,
    /// Name to verify in the server's certificate (default: the host part
    /// of the address).
    pub server_name: Option<String>,
    /// Local address to connect from (load generators spread over several).
    pub bind: Option<SocketAddr>,
    /// Name and version sent in `hello`.
    pub client_name: String,
    /// Longest line accepted from the server.
    pub max_line: usize,
    /// Time allowed for connect and handshake.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            tls: false,
            websocket: false,
            ca: None,
            server_name: None,
            bind: None,
            client_name: concat!("chat-client/", env!("CARGO_PKG_VERSION")).to_string(),
            max_line: 1 << 20,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The server's `welcome`.
#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    pub server: String,
    pub version: String,
    pub protocol: u32,
    pub plugins: Vec<String>,
    pub features: Vec<String>,
    pub max_frame_bytes: usize,
    pub auth_required: bool,
}

type BoxRead = Pin<Box<dyn AsyncRead + Send>>;
type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// Opens connections.
pub struct Connection;

impl Connection {
    /// Connects, sends `hello` and waits for `welcome`.
    pub async fn connect(
        addr: &str,
        options: &ConnectOptions,
    ) -> Result<(Reader, Writer, Welcome), ClientError> {
        tokio::time::timeout(options.timeout, Self::connect_inner(addr, options))
            .await
            .map_err(|_| ClientError::Timeout(options.timeout))?
    }

    async fn connect_inner(
        addr: &str,
        options: &ConnectOptions,
    ) -> Result<(Reader, Writer, Welcome), ClientError> {
        let connect_err = |source| ClientError::Connect {
            addr: addr.to_string(),
            error: source,
        };
        let stream = match options.bind {
            None => TcpStream::connect(addr).await.map_err(connect_err)?,
            Some(local) => {
                let target: SocketAddr = tokio::net::lookup_host(addr)
                    .await
                    .map_err(connect_err)?
                    .next()
                    .ok_or_else(|| connect_err(io::Error::other("address resolves to nothing")))?;
                let socket = if target.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }
                .map_err(connect_err)?;
                socket.bind(local).map_err(connect_err)?;
                socket.connect(target).await.map_err(connect_err)?
            }
        };
        stream.set_nodelay(true)?;
        let (read, write): (BoxRead, BoxWrite) = if options.tls {
            let connector = tls_connector(options)?;
            let host = options
                .server_name
                .clone()
                .unwrap_or_else(|| host_part(addr).to_string());
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| ClientError::Tls(format!("bad server name {host:?}: {e}")))?;
            let tls = connector
                .connect(name, stream)
                .await
                .map_err(|e| ClientError::Tls(e.to_string()))?;
            if options.websocket {
                let (r, w) = websocket::open(tls, addr, true).await?;
                (Box::pin(r), Box::pin(w))
            } else {
                let (r, w) = tokio::io::split(tls);
                (Box::pin(r), Box::pin(w))
            }
        } else if options.websocket {
            let (r, w) = websocket::open(stream, addr, false).await?;
            (Box::pin(r), Box::pin(w))
        } else {
            let (r, w) = stream.into_split();
            (Box::pin(r), Box::pin(w))
        };
        let mut reader = Reader::new(read, options.max_line);
        let mut writer = Writer { inner: write };
        writer
            .send(
                None,
                &ClientFrame::Hello {
                    protocol: PROTOCOL_VERSION,
                    client: Some(options.client_name.clone()),
                },
            )
            .await?;
        let welcome = match reader.next().await? {
            Some(Received::Core(ServerFrame::Welcome {
                server,
                version,
                protocol,
                plugins,
                features,
                max_frame_bytes,
                auth_required,
            })) => Welcome {
                server,
                version,
                protocol,
                plugins,
                features,
                max_frame_bytes,
                auth_required,
            },
            Some(Received::Core(ServerFrame::Bye { code, reason })) => {
                return Err(ClientError::Refused {
                    code,
                    message: reason,
                })
            }
            Some(Received::Core(ServerFrame::Error { code, message, .. })) => {
                return Err(ClientError::Refused { code, message })
            }
            Some(other) => {
                return Err(ClientError::Protocol(format!(
                    "expected welcome, got {}",
                    other.kind()
                )))
            }
            None => return Err(ClientError::Closed),
        };
        Ok((reader, writer, welcome))
    }
}

fn host_part(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    }
}

fn tls_connector(options: &ConnectOptions) -> Result<tokio_rustls::TlsConnector, ClientError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match &options.ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    ClientError::Tls(format!("cannot read CA file {}: {e}", path.display()))
                })?;
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    ClientError::Tls(format!("bad CA certificate in {}: {e}", path.display()))
                })?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The receiving half of a connection.
pub struct Reader {
    inner: BoxRead,
    buf: BytesMut,
    max_line: usize,
}

impl Reader {
    /// A reader on any byte stream (e.g. for tools that open their own).
    pub fn from_stream(stream: impl AsyncRead + Send + 'static, max_line: usize) -> Reader {
        Reader::new(Box::pin(stream), max_line)
    }

    fn new(inner: BoxRead, max_line: usize) -> Reader {
        Reader {
            inner,
            buf: BytesMut::with_capacity(8192),
            max_line,
        }
    }

    /// The next raw line (without its newline); `None` at end of stream.
    /// Cancel-safe.
    pub async fn next_line(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf) {
                let mut line = self.buf.split_to(pos + 1);
                line.truncate(pos);
                return Ok(Some(line.freeze()));
            }
            if self.buf.len() > self.max_line {
                return Err(ClientError::Protocol(format!(
                    "line longer than {} bytes",
                    self.max_line
                )));
            }
            self.buf.reserve(16 * 1024);
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// The next frame; `None` at end of stream. Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<Received>, ClientError> {
        match self.next_line().await? {
            None => Ok(None),
            Some(line) => Received::parse(&line)
                .map(Some)
                .map_err(|e| ClientError::Protocol(e.to_string())),
        }
    }
}

/// The sending half of a connection.
pub struct Writer {
    inner: BoxWrite,
}

impl Writer {
    /// A writer on any byte stream (e.g. for tools that open their own).
    pub fn from_stream(stream: impl AsyncWrite + Send + 'static) -> Writer {
        Writer {
            inner: Box::pin(stream),
        }
    }

    /// Sends a core frame, with an optional request id.
    pub async fn send(&mut self, id: Option<u64>, frame: &ClientFrame) -> Result<(), ClientError> {
        let line = encode_request(id, frame);
        self.send_line(&line).await
    }

    /// Sends any serialisable object (plugin frames) with an optional id.
    pub async fn send_json<T: Serialize + ?Sized>(
        &mut self,
        id: Option<u64>,
        frame: &T,
    ) -> Result<(), ClientError> {
        let line = encode_request(id, frame);
        self.send_line(&line).await
    }

    /// Sends raw bytes as they are (a newline is not added).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.inner.write_all(bytes).await?;
        self.inner.flush().await?;
        Ok(())
    }

    async fn send_line(&mut self, line: &[u8]) -> Result<(), ClientError> {
        self.send_raw(line).await
    }

    /// Closes the sending direction.
    pub async fn shutdown(&mut self) -> Result<(), ClientError> {
        self.inner.shutdown().await?;
        Ok(())
    }
}

/// Encodes a frame as one line, inserting `"id":N` when given.
pub fn encode_request<T: Serialize + ?Sized>(id: Option<u64>, frame: &T) -> Vec<u8> {
    let json = serde_json::to_vec(frame).expect("frames serialise");
    let mut line = Vec::with_capacity(json.len() + 24);
    match id {
        Some(id) if json.first() == Some(&b'{') && json.len() > 2 => {
            line.extend_from_slice(format!("{{\"id\":{id},").as_bytes());
            line.extend_from_slice(&json[1..]);
        }
        Some(id) if json == b"{}" => line.extend_from_slice(format!("{{\"id\":{id}}}").as_bytes()),
        _ => line.extend_from_slice(&json),
    }
    line.push(b'\n');
    line
}

/// A connection with request/reply bookkeeping: every request gets a fresh
/// id, and frames that arrive while waiting for a reply are kept, in order,
/// for [`Client::recv`].
pub struct Client {
    pub reader: Reader,
    pub writer: Writer,
    pub welcome: Welcome,
    next_id: u64,
    backlog: std::collections::VecDeque<Received>,
}

impl Client {
    /// Connects and completes the handshake.
    pub async fn connect(addr: &str, options: &ConnectOptions) -> Result<Client, ClientError> {
        let (reader, writer, welcome) = Connection::connect(addr, options).await?;
        Ok(Client {
            reader,
            writer,
            welcome,
            next_id: 1,
            backlog: Default::default(),
        })
    }

    /// Connects to a plaintext server and sets a nickname.
    pub async fn connect_as(addr: &str, nick: &str) -> Result<Client, ClientError> {
        let mut client = Client::connect(addr, &ConnectOptions::default()).await?;
        client
            .request_ok(&ClientFrame::Nick {
                nick: nick.to_string(),
            })
            .await?;
        Ok(client)
    }

    /// A fresh request id.
    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends a frame with a fresh id and returns the reply to it (which may
    /// be an `error` frame). Other frames are kept for [`recv`](Self::recv).
    pub async fn request(&mut self, frame: &ClientFrame) -> Result<Received, ClientError> {
        self.request_json(frame).await
    }

    /// Like [`request`](Self::request) for plugin frames.
    pub async fn request_json<T: Serialize + ?Sized>(
        &mut self,
        frame: &T,
    ) -> Result<Received, ClientError> {
        let id = self.next_id();
        let line = encode_request(Some(id), frame);
        // The newline does not count.
        let size = line.len() - 1;
        if size > self.welcome.max_frame_bytes {
            let limit = self.welcome.max_frame_bytes;
            return Err(ClientError::FrameTooLarge { size, limit });
        }
        self.writer.send_line(&line).await?;
        self.reply_to(id).await
    }

    /// Sends a request and turns an `error` reply into [`ClientError::Refused`].
    pub async fn request_ok(&mut self, frame: &ClientFrame) -> Result<Received, ClientError> {
        match self.request(frame).await? {
            Received::Core(ServerFrame::Error { code, message, .. }) => {
                Err(ClientError::Refused { code, message })
            }
            reply => Ok(reply),
        }
    }

    /// Reads until the reply to request `id` arrives.
    pub async fn reply_to(&mut self, id: u64) -> Result<Received, ClientError> {
        loop {
            let frame = self.reader.next().await?.ok_or(ClientError::Closed)?;
            if frame.reply_to() == Some(id) {
                return Ok(frame);
            }
            self.backlog.push_back(frame);
        }
    }

    /// The next frame (kept ones first); `None` at end of stream.
    pub async fn recv(&mut self) -> Result<Option<Received>, ClientError> {
        if let Some(frame) = self.backlog.pop_front() {
            return Ok(Some(frame));
        }
        self.reader.next().await
    }

    /// The next frame within `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Received, ClientError> {
        match tokio::time::timeout(timeout, self.recv()).await {
            Err(_) => Err(ClientError::Timeout(timeout)),
            Ok(r) => r?.ok_or(ClientError::Closed),
        }
    }

    /// Waits (up to `timeout`) for a frame matching `pred`; frames before it
    /// that do not match are kept for [`recv`](Self::recv).
    pub async fn expect(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Received) -> bool,
    ) -> Result<Received, ClientError> {
        if let Some(pos) = self.backlog.iter().position(&mut pred) {
            return Ok(self.backlog.remove(pos).expect("position is valid"));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.reader.next())
                .await
                .map_err(|_| ClientError::Timeout(timeout))??;
            let frame = next.ok_or(ClientError::Closed)?;
            if pred(&frame) {
                return Ok(frame);
            }
            self.backlog.push_back(frame);
        }
    }

    /// Round-trips a `ping` and returns every frame that arrived before the
    /// `pong` (the backlog included). Anything the server queued for this
    /// client before it handled the ping is in the result, so this proves
    /// what was *not* delivered without sleeping.
    pub async fn sync(&mut self) -> Result<Vec<Received>, ClientError> {
        let id = self.next_id();
        self.writer
            .send(Some(id), &ClientFrame::Ping { token: None })
            .await?;
        let mut before: Vec<Received> = self.backlog.drain(..).collect();
        loop {
            let frame = self.reader.next().await?.ok_or(ClientError::Closed)?;
            if matches!(&frame, Received::Core(ServerFrame::Pong { id: Some(i), .. }) if *i == id) {
                return Ok(before);
            }
            before.push(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_spliced_in() {
        let line = encode_request(Some(5), &ClientFrame::Join { room: "#a".into() });
        assert_eq!(line, b"{\"id\":5,\"type\":\"join\",\"room\":\"#a\"}\n");
        let line = encode_request(None, &ClientFrame::Rooms {});
        assert_eq!(line, b"{\"type\":\"rooms\"}\n");
    }

    #[test]
    fn host_part_strips_port() {
        assert_eq!(host_part("localhost:7879"), "localhost");
        assert_eq!(host_part("[::1]:7879"), "::1");
    }
}
