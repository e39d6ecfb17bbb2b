//! One client session, from handshake to goodbye: reads frames, passes them
//! through the pipeline, lets the core commands act on what is left, and cleans
//! up. Transport-independent: it reads from a [`Connection`] and writes to
//! the peer's queue, which the same connection drains to the socket while
//! the session waits or works (one task per connection).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use chat_api::Verdict;
use chat_api::{
    ApiError, ClientFrame, Delivery, ErrorCode, Identity, Inbound, Payload, Request, RequestId,
    ServerFrame, SessionId, Transport, PROTOCOL_VERSION,
};

mod catch_up;
pub mod forwarded;

use crate::closer::Closer;
use crate::commands::{self, Context};
use crate::config::LimitsConfig;
use crate::hub::Hub;
use crate::hub::{IdentityState, Peer};
use crate::metrics::LoginKind;
use crate::outbox::OutboxReceiver;
pub use crate::shared::ConnectionSlot;
use crate::shared::Shared;

/// What a connection read.
#[derive(Debug)]
pub enum ReadEvent {
    /// One frame without its line ending.
    Frame(Bytes),
    /// A frame exceeded the limit; it is being discarded.
    TooLarge,
    /// The first bytes of the connection are a TLS handshake.
    TlsOnPlainPort,
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
    /// Reading or writing failed.
    Failed(std::io::Error),
}

/// A session's connection: where its inbound frames come from and where its
/// queue (the peer's outbox) is written. One task polls both, so an idle
/// connection is one small task rather than a reader and a writer.
pub trait Connection: Send {
    /// The next inbound frame or event, writing queued frames meanwhile.
    /// Cancel-safe: bytes read and frames taken stay in the connection.
    fn poll_event(&mut self, cx: &mut std::task::Context<'_>) -> Poll<ReadEvent>;

    /// Writes queued frames; `Ready` only when writing has failed (the
    /// session is then closed as lost). For the time the session works on
    /// a frame, so that its own and others' frames keep flowing.
    fn poll_write(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()>;
}

/// Waits for the connection's next event.
fn next_event(conn: &mut impl Connection) -> impl Future<Output = ReadEvent> + Send + '_ {
    std::future::poll_fn(|cx| conn.poll_event(cx))
}

/// Runs `work` while the connection goes on writing.
async fn while_writing<T>(conn: &mut impl Connection, work: impl Future<Output = T>) -> T {
    let mut work = pin!(work);
    let mut writing = true;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if writing && conn.poll_write(cx).is_ready() {
            writing = false;
        }
        Poll::Pending
    })
    .await
}

/// Creates a session's hub handle and the queue its writer drains.
pub fn new_peer(
    shared: &Shared,
    addr: Option<SocketAddr>,
    transport: Transport,
) -> (Arc<Peer>, OutboxReceiver) {
    let id = shared.next_session_id();
    let limits = shared.limits();
    let (tx, rx) = crate::outbox::outbox(limits.outbound_queue, limits.outbound_queue_bytes);
    let closer = Arc::new(Closer::new());
    (Arc::new(Peer::new(id, addr, transport, tx, closer)), rx)
}

/// Runs a session: handshake, frames, cleanup.
pub async fn run(shared: Arc<Shared>, peer: Arc<Peer>, conn: &mut impl Connection) {
    let mut session = SessionTask {
        view: SessionView {
            peer: peer.clone(),
            hub: shared.hub.clone(),
            cluster: shared.cluster.clone(),
            departed: None,
        },
        limiter: RateLimiter::new(&shared.limits()),
        shared,
    };
    tracing::debug!(session = peer.id, addr = ?peer.addr, transport = ?peer.transport, "connected");
    if let Some(metrics) = &session.shared.metrics {
        metrics.connection_opened(peer.transport);
    }
    // Boxed (here and per frame below) so that the task of an idle
    // connection does not carry the space of these rarer, larger states.
    let greeted = Box::pin(session.handshake(conn)).await;
    if greeted {
        session.shared.hub.register(&peer);
        let start = Box::pin(session.shared.pipeline.session_start(&session.view));
        match while_writing(conn, start).await {
            Ok(()) => session.serve(conn).await,
            Err(error) => peer.closer.close(error.code, error.message),
        }
    }
    let reason = if peer.closer.is_closed() {
        peer.closer.reason()
    } else if session.shared.shutdown.is_cancelled() {
        let reason = crate::closer::shutting_down();
        peer.closer.close(reason.code, reason.reason);
        peer.closer.reason()
    } else {
        // The loop ended without a close reason only if the peer vanished.
        peer.closer.close(ErrorCode::QUIT, "connection closed");
        peer.closer.reason()
    };
    session.view.departed = session.shared.hub.remove(&peer, &reason.reason);
    if let Some(metrics) = &session.shared.metrics {
        metrics.connection_closed(peer.transport, &reason.code, peer.peak_queued_frames());
    }
    if greeted {
        Box::pin(session.shared.pipeline.session_end(&session.view)).await;
    }
    tracing::debug!(session = peer.id, code = %reason.code, reason = %reason.reason, "disconnected");
}

struct SessionTask {
    shared: Arc<Shared>,
    view: SessionView,
    limiter: RateLimiter,
}

impl SessionTask {
    fn peer(&self) -> &Arc<Peer> {
        &self.view.peer
    }

    /// What the core commands work with.
    fn context(&self) -> Context<'_> {
        Context {
            shared: &self.shared,
            peer: self.peer(),
        }
    }

    /// Clustered: a frame about a file transfer another node holds goes
    /// to that node, whose plugins answer it (docs/scaling.md).
    fn forward_if_held_elsewhere(&self, frame: &Inbound) -> bool {
        let (Some(cluster), chat_api::Request::Custom(fields)) =
            (&self.shared.cluster, &frame.request)
        else {
            return false;
        };
        let transfer = fields.get("transfer").and_then(|t| t.as_str());
        let Some(node) = cluster.owner_of(&frame.kind, transfer) else {
            return false;
        };
        let text = chat_api::serde_json::Value::Object(fields.clone()).to_string();
        cluster.forward(&node, self.peer(), text);
        true
    }

    fn reply(&self, frame: &ServerFrame) {
        self.peer().deliver_own(Payload::encode(frame));
    }

    fn reply_error(&self, id: Option<RequestId>, error: &ApiError) {
        if let Some(metrics) = &self.shared.metrics {
            metrics.error_sent(&error.code);
        }
        self.reply(&ServerFrame::error(id, error));
    }

    /// Waits for `hello`. Returns whether the session may proceed.
    async fn handshake(&mut self, conn: &mut impl Connection) -> bool {
        let deadline = tokio::time::Instant::now() + self.shared.limits().handshake_timeout();
        let closer = self.peer().closer.clone();
        let shared = self.shared.clone();
        loop {
            let event = tokio::select! {
                biased;
                _ = closer.closed() => return false,
                _ = shared.shutdown.cancelled() => return false,
                _ = tokio::time::sleep_until(deadline) => {
                    closer.close(ErrorCode::HANDSHAKE_TIMEOUT, format!(
                        "no hello within {} ms; send {{\"type\":\"hello\",\"protocol\":{PROTOCOL_VERSION}}} first",
                        self.shared.limits().handshake_timeout_ms));
                    return false;
                }
                event = next_event(conn) => event,
            };
            let line = match event {
                ReadEvent::Frame(line) => line,
                ReadEvent::TooLarge => {
                    self.reply_error(None, &too_large(&self.shared.limits()));
                    continue;
                }
                ReadEvent::TlsOnPlainPort => {
                    tracing::info!(session = self.peer().id, addr = ?self.peer().addr, "TLS handshake on the plaintext port; closing");
                    closer.close(
                        ErrorCode::MALFORMED_FRAME,
                        "this port speaks plaintext; connect without TLS or use the TLS port",
                    );
                    return false;
                }
                ReadEvent::Eof | ReadEvent::Failed(_) => return false,
            };
            let parsed = Inbound::parse(&line);
            if let Some(metrics) = &self.shared.metrics {
                metrics.frame_received(parsed.as_ref().ok().map(|f| f.kind.as_str()));
            }
            match parsed {
                Ok(Inbound {
                    request: Request::Core(ClientFrame::Hello { protocol, client }),
                    ..
                }) => {
                    if protocol != PROTOCOL_VERSION {
                        closer.close(
                            ErrorCode::UNSUPPORTED_PROTOCOL,
                            format!("this server speaks protocol {PROTOCOL_VERSION}, the client asked for {protocol}; upgrade the client or the server"),
                        );
                        return false;
                    }
                    tracing::debug!(session = self.peer().id, client = ?client, "hello");
                    self.peer().deliver(self.shared.welcome.clone());
                    return true;
                }
                Ok(frame) => self.reply_error(
                    frame.id,
                    &ApiError::new(
                        ErrorCode::HANDSHAKE_REQUIRED,
                        format!("send {{\"type\":\"hello\",\"protocol\":{PROTOCOL_VERSION}}} before '{}'", frame.kind),
                    ),
                ),
                Err(e) => self.reply_error(e.id, &e.error),
            }
        }
    }

    /// Handles frames until the session ends.
    async fn serve(&mut self, conn: &mut impl Connection) {
        let closer = self.peer().closer.clone();
        let shared = self.shared.clone();
        loop {
            let event = tokio::select! {
                biased;
                _ = closer.closed() => return,
                _ = shared.shutdown.cancelled() => return,
                event = next_event(conn) => event,
            };
            match event {
                ReadEvent::Frame(line) => while_writing(conn, Box::pin(self.on_line(line))).await,
                ReadEvent::TooLarge => self.reply_error(None, &too_large(&self.shared.limits())),
                ReadEvent::TlsOnPlainPort => {}
                ReadEvent::Eof => return,
                ReadEvent::Failed(e) => {
                    tracing::debug!(session = self.peer().id, error = %e, "read failed");
                    return;
                }
            }
        }
    }

    async fn on_line(&mut self, line: Bytes) {
        let parsed = Inbound::parse(&line);
        if let Some(metrics) = &self.shared.metrics {
            metrics.frame_received(parsed.as_ref().ok().map(|f| f.kind.as_str()));
        }
        let self_paced = matches!(&parsed, Ok(f) if self.shared.self_paced.contains(&f.kind));
        if !self_paced && !self.limiter.allow() {
            let id = match &parsed {
                Ok(frame) => frame.id,
                Err(e) => e.id,
            };
            self.reply_error(
                id,
                &ApiError::new(
                    ErrorCode::RATE_LIMITED,
                    format!(
                        "too many frames: at most {} per second; this one was dropped",
                        self.limiter.rate
                    ),
                ),
            );
            return;
        }
        let frame = match parsed {
            Ok(frame) => frame,
            Err(e) => return self.reply_error(e.id, &e.error),
        };
        // A login may be followed by a catch-up that must reach the client
        // before anything live: hold the queue from before it can happen.
        let login = self.login_request(&frame);
        if login.is_some() {
            self.peer().hold_deliveries();
        }
        let rooms_before = self.room_snapshot(&frame.kind);
        // An account's room change is answered once it is remembered: the
        // reply waits in the held queue, so a crash cannot lose a room
        // whose `joined` the client saw.
        let hold_for_rooms = rooms_before.is_some() && login.is_none();
        if hold_for_rooms {
            self.peer().hold_deliveries();
        }
        let identity_before = self.peer().identity();
        let login_kind = LoginKind::of(&frame.kind);
        self.handle(frame).await;
        let identity_after = self.peer().identity();
        let changed = match (&identity_before, &identity_after) {
            (Some(before), Some(after)) => !Arc::ptr_eq(before, after),
            (None, None) => false,
            _ => true,
        };
        // Counted before anything else awaits, as the reply is already queued.
        if let (Some(metrics), Some(kind)) = (&self.shared.metrics, login_kind) {
            let account = identity_after.as_ref().is_some_and(|i| i.account.is_some());
            metrics.login(kind, changed && account);
        }
        if changed {
            self.shared.pipeline.identity_changed(&self.view).await;
        }
        if let Some(before) = rooms_before {
            self.remember_rooms(before).await;
        }
        if hold_for_rooms {
            self.peer().release_deliveries(Vec::new());
        }
        if let Some(login) = login {
            let account = identity_after.as_ref().and_then(|i| i.account.clone());
            match account {
                Some(account) if changed => self.catch_up(login, &account).await,
                _ => self.peer().release_deliveries(Vec::new()),
            }
        }
    }

    /// Passes a frame through the pipeline and the core router.
    async fn handle(&mut self, mut frame: Inbound) {
        // Plugins may rewrite a chat message (masked words, a dice roll);
        // the text as typed tells whether the sender must be told.
        let typed = chat_text(&frame).map(str::to_owned);
        // Read before the pipeline, which takes the fields out of the frame.
        let uploaded = self
            .shared
            .metrics
            .as_ref()
            .and_then(|_| file_chunk_bytes(&frame));
        if self.forward_if_held_elsewhere(&frame) {
            return;
        }
        match self.shared.pipeline.process(&self.view, &mut frame).await {
            Verdict::Continue => {
                let id = frame.id;
                let mut delivered = None;
                match commands::route(self.context(), frame, typed, &mut delivered).await {
                    Ok(Some(reply)) => self.reply(&reply),
                    Ok(None) => {}
                    Err(error) => self.reply_error(id, &error),
                }
                if let Some(d) = delivered {
                    let delivery = Delivery::new(
                        d.kind,
                        d.target.as_deref(),
                        d.accepted.msg_id,
                        d.accepted.ts,
                        d.accepted.recipients,
                        &d.text,
                    );
                    self.shared.pipeline.delivered(&self.view, &delivery).await;
                }
            }
            Verdict::Done => {
                if let (Some(metrics), Some(bytes)) = (&self.shared.metrics, uploaded) {
                    metrics.file_bytes_uploaded(bytes);
                }
            }
            Verdict::Reject(error) => self.reply_error(frame.id, &error),
        }
    }
}

fn too_large(limits: &LimitsConfig) -> ApiError {
    ApiError::new(
        ErrorCode::FRAME_TOO_LARGE,
        format!(
            "frame longer than {} bytes; it was discarded",
            limits.max_frame_bytes
        ),
    )
}

/// The file bytes a `file_chunk` carries (its base64 `data`, decoded
/// length), counted once the files plugin has accepted the chunk.
fn file_chunk_bytes(frame: &Inbound) -> Option<u64> {
    let Request::Custom(fields) = &frame.request else {
        return None;
    };
    if frame.kind != "file_chunk" {
        return None;
    }
    let data = fields.get("data")?.as_str()?;
    let padding = data.bytes().rev().take_while(|&b| b == b'=').count();
    Some((data.len() / 4 * 3).saturating_sub(padding) as u64)
}

/// The text of a chat message (`say`, `msg`, `broadcast`); other frames
/// have none, so they cost nothing here.
fn chat_text(frame: &Inbound) -> Option<&str> {
    match &frame.request {
        Request::Core(
            ClientFrame::Say { text, .. }
            | ClientFrame::Msg { text, .. }
            | ClientFrame::Broadcast { text },
        ) => Some(text),
        _ => None,
    }
}

/// Token bucket for flood control (state lives in the session task).
struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    fn new(limits: &LimitsConfig) -> RateLimiter {
        RateLimiter {
            rate: f64::from(limits.frames_per_second),
            burst: f64::from(limits.frames_burst),
            tokens: f64::from(limits.frames_burst),
            last: Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The plugin API's view of a session.
pub struct SessionView {
    peer: Arc<Peer>,
    hub: Arc<Hub>,
    /// The other nodes, when clustered: a login's name is claimed there.
    cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Who the session was when it left the hub (which takes the identity
    /// away from the peer): what `on_session_end` reads.
    departed: Option<Arc<IdentityState>>,
}

impl SessionView {
    /// The current identity, or the last one once the session has ended.
    fn identity(&self) -> Option<Arc<IdentityState>> {
        self.peer.identity().or_else(|| self.departed.clone())
    }
}

impl chat_api::Session for SessionView {
    fn id(&self) -> SessionId {
        self.peer.id
    }
    fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer.addr
    }
    fn transport(&self) -> Transport {
        self.peer.transport
    }
    fn is_encrypted(&self) -> bool {
        self.peer.is_encrypted()
    }
    fn nick(&self) -> Option<String> {
        self.identity().map(|i| i.nick.to_string())
    }
    fn account(&self) -> Option<String> {
        self.identity().and_then(|i| i.account.clone())
    }
    fn is_admin(&self) -> bool {
        self.identity().is_some_and(|i| i.admin)
    }
    fn send(&self, payload: Payload) -> bool {
        self.peer.deliver_own(payload)
    }
    fn set_identity(&self, identity: Identity, replace: bool) -> Result<(), ApiError> {
        let Some(cluster) = &self.cluster else {
            return self.hub.set_identity(&self.peer, identity, replace);
        };
        if !replace && cluster.is_remote_user(&identity.nick) {
            return Err(ApiError::new(
                ErrorCode::NICK_TAKEN,
                format!("the nickname '{}' is in use; choose another", identity.nick),
            ));
        }
        let nick = identity.nick.clone();
        self.hub.set_identity(&self.peer, identity, replace)?;
        cluster.claim_for_login(self.peer.id, &nick, replace);
        Ok(())
    }
    fn clear_identity(&self) {
        self.hub.clear_identity(&self.peer)
    }
    fn close(&self, code: ErrorCode, reason: &str) {
        self.peer.closer.close(code, reason)
    }
    fn transport_token(&self) -> Option<String> {
        self.peer.transport_token().map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_burst_then_refuses() {
        let limits = LimitsConfig {
            frames_per_second: 1,
            frames_burst: 3,
            ..LimitsConfig::default()
        };
        let mut limiter = RateLimiter::new(&limits);
        assert!((0..3).all(|_| limiter.allow()));
        assert!(!limiter.allow());
    }
}
