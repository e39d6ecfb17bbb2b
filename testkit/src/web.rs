//! Clients of the web listener: a WebSocket client of `/ws` with the same
//! habits as `chat_client::Client` (requests by id, waiting on frames with
//! a deadline, frames kept for later), and one-shot HTTP/1.1 requests.

use std::collections::VecDeque;
use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::WAIT;

/// A WebSocket client of `/ws` with the same habits as `chat_client::Client`.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    backlog: VecDeque<Value>,
    next_id: u64,
    pub welcome: Value,
}

/// Why a WebSocket connection could not be opened.
#[derive(Debug)]
pub enum WsConnectError {
    /// The server answered the upgrade with this status and body.
    Refused {
        status: u16,
        body: String,
    },
    Other(String),
}

impl WsClient {
    /// Opens `/ws` (with an `Origin` header when given) without `hello`.
    pub async fn open(addr: SocketAddr, origin: Option<&str>) -> Result<WsClient, WsConnectError> {
        match origin {
            Some(origin) => WsClient::open_with(addr, &[("Origin", origin)]).await,
            None => WsClient::open_with(addr, &[]).await,
        }
    }

    /// Opens `/ws` with extra request headers (`Origin`, `Cookie`) without
    /// `hello`.
    pub async fn open_with(
        addr: SocketAddr,
        headers: &[(&'static str, &str)],
    ) -> Result<WsClient, WsConnectError> {
        let mut request = format!("ws://{addr}/ws")
            .into_client_request()
            .expect("valid URL");
        for (name, value) in headers {
            request
                .headers_mut()
                .append(*name, HeaderValue::from_str(value).unwrap());
        }
        match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await {
            Err(_) => Err(WsConnectError::Other("connect timed out".into())),
            Ok(Ok((socket, _))) => Ok(WsClient {
                socket,
                backlog: VecDeque::new(),
                next_id: 1,
                welcome: Value::Null,
            }),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
                let status = response.status().as_u16();
                let body = response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                Err(WsConnectError::Refused { status, body })
            }
            Ok(Err(e)) => Err(WsConnectError::Other(e.to_string())),
        }
    }

    /// Opens `/ws`, says `hello` and waits for `welcome`.
    pub async fn connect(addr: SocketAddr) -> WsClient {
        let mut client = WsClient::open(addr, None).await.expect("WebSocket opens");
        client
            .send(json!({"type": "hello", "protocol": 1, "client": "web-test"}))
            .await;
        client.welcome = client.expect(|f| f["type"] == "welcome").await;
        client
    }

    /// Connects and takes a nickname.
    pub async fn connect_as(addr: SocketAddr, nick: &str) -> WsClient {
        let mut client = WsClient::connect(addr).await;
        let reply = client.request(json!({"type": "nick", "nick": nick})).await;
        assert_eq!(reply["type"], "ok", "nick {nick}: {reply}");
        client
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("WebSocket send");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.socket
            .send(Message::Binary(bytes.into()))
            .await
            .expect("WebSocket send");
    }

    /// Sends a frame with a fresh id and returns the reply to it.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        frame["id"] = json!(id);
        self.send(frame).await;
        self.expect(|f| f["id"] == json!(id)).await
    }

    /// The next frame from the socket; `None` once it is closed. Non-text
    /// messages other than close are skipped.
    async fn read(&mut self) -> Option<Value> {
        loop {
            match self.socket.next().await? {
                Ok(Message::Text(text)) => {
                    return Some(serde_json::from_str(&text).expect("server sends JSON"))
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Waits (up to [`WAIT`]) for a frame matching `pred`; others are kept.
    pub async fn expect(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Value {
        if let Some(pos) = self.backlog.iter().position(&mut pred) {
            return self.backlog.remove(pos).unwrap();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.read())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no matching frame within {WAIT:?}; kept: {:?}",
                        self.backlog
                    )
                })
                .unwrap_or_else(|| panic!("connection closed; kept: {:?}", self.backlog));
            if pred(&frame) {
                return frame;
            }
            self.backlog.push_back(frame);
        }
    }

    /// Round-trips a ping; returns every frame that arrived before the pong.
    pub async fn sync(&mut self) -> Vec<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"type": "ping", "id": id})).await;
        let mut before: Vec<Value> = self.backlog.drain(..).collect();
        loop {
            let frame = tokio::time::timeout(WAIT, self.read())
                .await
                .expect("pong in time")
                .expect("connection open");
            if frame["type"] == "pong" && frame["id"] == json!(id) {
                return before;
            }
            before.push(frame);
        }
    }

    /// Reads until the server closes the connection; returns what came.
    pub async fn until_closed(&mut self) -> Vec<Value> {
        let mut frames: Vec<Value> = self.backlog.drain(..).collect();
        tokio::time::timeout(WAIT, async {
            while let Some(frame) = self.read().await {
                frames.push(frame);
            }
        })
        .await
        .expect("server closes the connection in time");
        frames
    }
}

/// One HTTP/1.1 GET on a fresh connection; returns (status, headers, body).
/// Test-side only: the server uses hyper.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, Vec<(String, String)>, String) {
    http_request(addr, "GET", path, &[], "").await
}

/// One HTTP/1.1 request on a fresh plaintext connection, with extra
/// `headers` and a `body`; returns (status, headers, body).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    http_exchange(stream, &addr.to_string(), method, path, headers, body).await
}

/// One HTTP/1.1 request over `stream` (plaintext or TLS), then reads the
/// response until the server closes. Test-side only: the server uses hyper.
pub async fn http_exchange(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    // A TLS server may end without close_notify; what came is enough.
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("response in time");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// The value of header `name` (lower case) among `headers`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
