//! Accept loops: one per listening socket. Each accepted connection gets its
//! own task; the TLS handshake runs inside that task, never in the loop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::framing::{ReadReady, StreamConnection};
use super::tls::TlsAcceptor;
use super::tls_stream::TlsStream;
use crate::metrics::Listener;
use crate::session;
use crate::shared::{ConnectionSlot, Shared};
use chat_api::{ErrorCode, Payload, ServerFrame, Transport};
use futures_util::future::Either;
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// Longest pause between accepts while the process is out of descriptors.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// How connections on one listener are secured.
#[derive(Clone)]
pub enum Security {
    Plain,
    Tls(TlsAcceptor),
}

/// Accepts connections until shutdown.
pub async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, security: Security) {
    let serve_shared = shared.clone();
    accept_each(shared, listener, "chat", move |stream, addr| {
        serve_connection(serve_shared.clone(), stream, addr, security.clone())
    })
    .await
}

/// The accept loop every listener shares: each accepted connection is served
/// by its own tracked task; running out of descriptors or memory pauses
/// accepting with an exponential back-off instead of spinning, and leaves
/// the connections already held alone.
pub(crate) async fn accept_each<F, Fut>(
    shared: Arc<Shared>,
    listener: TcpListener,
    what: &'static str,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let local = listener.local_addr().ok();
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => {
                backoff = Duration::from_millis(5);
                shared.tracker.spawn(serve(stream, addr));
            }
            Err(e) if is_resource_exhaustion(&e) => {
                tracing::warn!(listener = ?local, what, error = %e, pause_ms = backoff.as_millis() as u64,
                    "cannot accept: out of file descriptors or memory; pausing accepts, existing connections are unaffected");
                tokio::select! {
                    _ = shared.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
            Err(e) => {
                // Per-connection failures (e.g. reset before accept).
                tracing::debug!(listener = ?local, what, error = %e, "accept failed");
            }
        }
    }
    tracing::debug!(listener = ?local, what, "listener closed");
}

pub(crate) fn is_resource_exhaustion(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM
    matches!(e.raw_os_error(), Some(24) | Some(23) | Some(105) | Some(12))
}

/// Serves one accepted connection. Not an `async fn`, so that its future
/// holds each branch's state once (see [`serve_stream`]).
fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    addr: SocketAddr,
    security: Security,
) -> impl Future<Output = ()> + Send {
    let Some(slot) = shared.admit() else {
        if let Some(metrics) = &shared.metrics {
            metrics.connection_refused(match security {
                Security::Plain => Listener::Tcp,
                Security::Tls(_) => Listener::Tls,
            });
        }
        refuse_full(&shared, stream, addr);
        return Either::Left(std::future::ready(()));
    };
    configure_socket(&stream, shared.limits().tcp_keepalive_secs);
    Either::Right(match security {
        Security::Plain => Either::Left(serve_stream(shared, slot, stream, addr, Transport::Tcp)),
        // The handshake is boxed: plaintext connections must not pay for
        // it. The session then takes its place in the task (`then` keeps
        // one or the other, never both), so an established TLS session
        // keeps neither the handshake's space nor a box of its own.
        Security::Tls(acceptor) => {
            let handshake = Box::pin(tls_handshake(shared.clone(), stream, addr, acceptor));
            Either::Right(handshake.then(move |tls| match tls {
                Some(tls) => Either::Left(serve_stream(shared, slot, tls, addr, Transport::Tls)),
                None => Either::Right(std::future::ready(())),
            }))
        }
    })
}

/// Runs a session on a stream (TCP or TLS) in this one task, then says
/// goodbye. Not an `async fn`: its future captures the connection once,
/// where an `async fn` would keep its `io` argument beside the connection
/// it moves into (1.3 KB twice for TLS).
fn serve_stream<S>(
    shared: Arc<Shared>,
    slot: ConnectionSlot,
    io: S,
    addr: SocketAddr,
    transport: Transport,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send,
{
    let (peer, queue) = session::new_peer(&shared, Some(addr), transport);
    let mut conn = StreamConnection::new(
        io,
        queue,
        peer.closer.clone(),
        shared.limits().max_frame_bytes,
        transport == Transport::Tcp,
    );
    async move {
        session::run(shared, peer, &mut conn).await;
        drop(slot);
        // Boxed: closing is rare, and its timers must not weigh on idle
        // sessions.
        Box::pin(conn.finish()).await
    }
}

/// The TLS handshake, bounded by the handshake timeout; `None` if it failed.
async fn tls_handshake(
    shared: Arc<Shared>,
    stream: TcpStream,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
) -> Option<TlsStream> {
    let timeout = shared.limits().handshake_timeout();
    let handshake = tokio::select! {
        _ = shared.shutdown.cancelled() => return None,
        r = tokio::time::timeout(timeout, acceptor.accept(stream)) => r,
    };
    match handshake {
        Ok(Ok(tls)) => return Some(tls),
        Ok(Err(e)) => tracing::info!(%addr, error = %e, "TLS handshake failed"),
        Err(_) => tracing::info!(%addr, "TLS handshake timed out"),
    }
    tls_failed(&shared);
    None
}

fn tls_failed(shared: &Shared) {
    if let Some(metrics) = &shared.metrics {
        metrics.tls_handshake_failed(Listener::Tls);
    }
}

/// Tells a client the server is full, without waiting on it, and closes.
fn refuse_full(shared: &Shared, stream: TcpStream, addr: SocketAddr) {
    let max = shared.limits().max_connections;
    tracing::warn!(%addr, max, "refusing connection: limits.max_connections reached");
    let bye = Payload::encode(&ServerFrame::Bye {
        code: ErrorCode::SERVER_FULL,
        reason: format!("the server holds its maximum of {max} connections; try again later"),
    });
    let _ = stream.try_write(bye.line());
}

/// Low latency (no Nagle delay) and dead-peer detection by the kernel
/// rather than a timer per connection.
pub(crate) fn configure_socket(stream: &TcpStream, keepalive_secs: u64) {
    let _ = stream.set_nodelay(true);
    if keepalive_secs > 0 {
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(keepalive_secs))
            .with_interval(Duration::from_secs(keepalive_secs.clamp(1, 15)))
            .with_retries(4);
        let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive);
    }
}
