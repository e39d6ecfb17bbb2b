//! How a session is told to stop, and why: shared by its connection task
//! and the hub, which knows nothing else of the transport.

use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use chat_api::ErrorCode;
use futures_util::task::AtomicWaker;

/// Why a session ended, as told to the client in `bye`.
#[derive(Debug, Clone)]
pub struct CloseReason {
    pub code: ErrorCode,
    pub reason: String,
}

/// Tells a session's task to stop, and why. Server shutdown reaches the
/// session through the server's own token, which the session also waits
/// on: no token per session (an idle connection would pay 112 bytes for it).
#[derive(Debug, Default)]
pub struct Closer {
    /// The first reason given wins; set means closed.
    reason: OnceLock<CloseReason>,
    /// The session's task while it waits in [`Closer::closed`].
    waker: AtomicWaker,
}

impl Closer {
    pub fn new() -> Closer {
        Closer::default()
    }

    /// Ends the session with a reason (the first call wins).
    pub fn close(&self, code: ErrorCode, reason: impl Into<String>) {
        let _ = self.reason.set(CloseReason {
            code,
            reason: reason.into(),
        });
        self.waker.wake();
    }

    pub fn is_closed(&self) -> bool {
        self.reason.get().is_some()
    }

    /// Completes once the session has been closed. One task (the
    /// session's) waits here at a time.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + '_ {
        std::future::poll_fn(|cx| self.poll_closed(cx))
    }

    fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_closed() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // Closed between the check and the registration: not missed.
        if self.is_closed() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// The reason the session ended (server shutdown when none was given).
    pub fn reason(&self) -> CloseReason {
        self.reason.get().cloned().unwrap_or_else(shutting_down)
    }
}

/// The reason every session ends with when the server stops.
pub fn shutting_down() -> CloseReason {
    CloseReason {
        code: ErrorCode::SHUTTING_DOWN,
        reason: "the server is shutting down".to_string(),
    }
}
